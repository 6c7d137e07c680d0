"""Stories of flap detection: one message when a job starts alternating, one when it settles."""

from __future__ import annotations

from schedulerx_alert.core.findings import FLAPPING, RECOVERED, SETTLED, STUCK
from schedulerx_alert.core.model import InstanceStatus
from tests.builders import T0
from tests.rules_driver import HOUR, MINUTE, Monitor, kinds, run, with_settings

FAILED = InstanceStatus.FAILED
SUCCESS = InstanceStatus.SUCCESS


def every_ten_minutes(
    monitor: Monitor, outcomes: list[InstanceStatus], first: int = 1
) -> list[str]:
    """Runs ending every ten minutes from T0, each seen by a tick 30 s later."""
    seen: list[str] = []
    for n, status in enumerate(outcomes, start=first):
        ended = T0 + (n - 1) * 10 * MINUTE
        seen += kinds(monitor.tick(ended + 30, run(n, status, ended=ended)))
    return seen


def test_four_changes_within_an_hour_make_one_flapping_message_then_silence() -> None:
    monitor = Monitor()
    before = every_ten_minutes(monitor, [FAILED, SUCCESS, FAILED, SUCCESS])
    start = every_ten_minutes(monitor, [FAILED], first=5)
    during = every_ten_minutes(monitor, [SUCCESS, FAILED, FAILED, FAILED], first=6)

    assert before == ["failed", RECOVERED, "failed", RECOVERED]
    assert start == [FLAPPING]
    assert during == []


def test_it_settles_after_a_stable_window_and_says_how() -> None:
    monitor = Monitor()
    every_ten_minutes(monitor, [FAILED, SUCCESS, FAILED, SUCCESS, FAILED, SUCCESS, FAILED])
    # The last change is run 7 at T0 + 60 min; the job keeps failing.
    still = every_ten_minutes(monitor, [FAILED] * 5, first=8)
    settled = monitor.tick(T0 + 2 * HOUR + 30, run(13, FAILED, ended=T0 + 2 * HOUR))
    fixed = monitor.tick(
        T0 + 2 * HOUR + 11 * MINUTE, run(14, SUCCESS, ended=T0 + 2 * HOUR + 10 * MINUTE)
    )

    assert still == []
    assert kinds(settled) == [SETTLED]
    assert settled[0].facts["settled_as"] == "failing"
    assert settled[0].facts["streak"] == 7
    # The settled message said "failing": its end is a recovery like any other.
    assert kinds(fixed) == [RECOVERED]
    assert fixed[0].facts["failed_runs"] == 7


def test_settling_as_working_needs_no_recovery() -> None:
    monitor = Monitor()
    every_ten_minutes(monitor, [FAILED, SUCCESS, FAILED, SUCCESS, FAILED, SUCCESS])
    settled = monitor.tick(T0 + 50 * MINUTE + HOUR)
    assert kinds(settled) == [SETTLED]
    assert settled[0].facts["settled_as"] == "ok"
    assert every_ten_minutes(monitor, [SUCCESS, FAILED], first=13) == ["failed"]


def test_changes_spread_wider_than_the_window_are_not_flapping() -> None:
    monitor = Monitor(settings=with_settings(flap_window=25 * MINUTE))
    seen = every_ten_minutes(monitor, [FAILED, SUCCESS, FAILED, SUCCESS, FAILED, SUCCESS])
    assert FLAPPING not in seen
    assert seen.count(RECOVERED) == 3


def test_flapping_can_be_turned_off() -> None:
    monitor = Monitor(settings=with_settings(flap_window=None))
    seen = every_ten_minutes(monitor, [FAILED, SUCCESS] * 4)
    assert seen == ["failed", RECOVERED] * 4


def test_a_stuck_run_is_still_announced_while_flapping() -> None:
    monitor = Monitor(settings=with_settings(stuck_after=30 * MINUTE))
    every_ten_minutes(monitor, [FAILED, SUCCESS, FAILED, SUCCESS, FAILED])
    hung = run(6, InstanceStatus.RUNNING, started=T0 + 41 * MINUTE)
    assert kinds(monitor.tick(T0 + 72 * MINUTE, hung)) == [STUCK]
