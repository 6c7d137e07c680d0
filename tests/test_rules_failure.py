"""Stories of the failure rule (threshold, trigger filter) and of recovery."""

from __future__ import annotations

from schedulerx_alert.core.findings import RECOVERED
from schedulerx_alert.core.model import InstanceStatus, TriggerType
from schedulerx_alert.core.rules import JobHistory, RuleSettings, evaluate
from tests.builders import T0
from tests.rules_driver import MINUTE, Monitor, key, kinds, run, with_settings

FAILED = InstanceStatus.FAILED
SUCCESS = InstanceStatus.SUCCESS


def test_job_92583_fails_twice_then_recovers() -> None:
    monitor = Monitor()
    first = monitor.tick(T0 + MINUTE, run(1, FAILED, ended=T0))
    second = monitor.tick(T0 + 11 * MINUTE, run(2, FAILED, ended=T0 + 10 * MINUTE))
    back = monitor.tick(T0 + 21 * MINUTE, run(3, SUCCESS, ended=T0 + 20 * MINUTE))

    assert kinds(first) == ["failed"]
    assert first[0].facts["streak"] == 1
    assert first[0].fingerprint == f"failed:{key().encode()}:1:2026-11-25 10:00:00"
    assert kinds(second) == ["failed"]
    assert second[0].facts["streak"] == 2
    assert kinds(back) == [RECOVERED]
    assert back[0].subject == str(key())
    assert back[0].facts["failed_runs"] == 2
    assert back[0].facts["broken_for_seconds"] == 20 * MINUTE
    assert back[0].instances[0].instance_id == 3


def test_a_run_listed_again_is_not_announced_again() -> None:
    monitor = Monitor()
    assert kinds(monitor.tick(T0 + MINUTE, run(1, FAILED, ended=T0))) == ["failed"]
    assert monitor.tick(T0 + 2 * MINUTE) == []
    assert monitor.tick(T0 + 3 * MINUTE) == []


def test_a_rerun_of_the_same_instance_is_a_new_attempt() -> None:
    monitor = Monitor()
    first = monitor.tick(T0 + MINUTE, run(1, FAILED, ended=T0))
    monitor.tick(T0 + 2 * MINUTE, run(1, InstanceStatus.RUNNING, started=T0 + 90))
    again = monitor.tick(T0 + 3 * MINUTE, run(1, FAILED, ended=T0 + 150))
    assert kinds(again) == ["failed"]
    assert again[0].fingerprint != first[0].fingerprint
    assert again[0].facts["streak"] == 2


def test_threshold_three_announces_only_the_third_failure_in_a_row() -> None:
    monitor = Monitor(settings=with_settings(consecutive_failures=3))
    outcomes = [FAILED, FAILED, SUCCESS, FAILED, FAILED, FAILED]
    findings = []
    for n, status in enumerate(outcomes, start=1):
        findings += monitor.tick(
            T0 + n * 10 * MINUTE, run(n, status, ended=T0 + n * 10 * MINUTE - 30)
        )
    assert kinds(findings) == ["failed"]
    assert findings[0].facts["streak"] == 3
    assert findings[0].instances[0].instance_id == 6


def test_recovery_only_follows_an_announced_failure() -> None:
    monitor = Monitor(settings=with_settings(consecutive_failures=2))
    monitor.tick(T0 + MINUTE, run(1, FAILED, ended=T0))
    assert monitor.tick(T0 + 2 * MINUTE, run(2, SUCCESS, ended=T0 + 90)) == []


def test_recovery_can_be_turned_off() -> None:
    monitor = Monitor(settings=with_settings(recovery=False))
    monitor.tick(T0 + MINUTE, run(1, FAILED, ended=T0))
    assert monitor.tick(T0 + 2 * MINUTE, run(2, SUCCESS, ended=T0 + 90)) == []


def test_failures_and_a_success_in_one_tick_are_taken_in_the_order_they_ended() -> None:
    monitor = Monitor()
    found = monitor.tick(
        T0 + 5 * MINUTE,
        run(3, SUCCESS, ended=T0 + 4 * MINUTE),
        run(1, FAILED, ended=T0 + 2 * MINUTE),
        run(2, FAILED, ended=T0 + 3 * MINUTE),
    )
    assert kinds(found) == ["failed", "failed", RECOVERED]
    assert found[2].facts["failed_runs"] == 2


def test_manual_reruns_are_ignored_when_the_entry_leaves_them_out() -> None:
    monitor = Monitor(settings=with_settings(trigger_types=frozenset({TriggerType.SCHEDULED})))
    manual = monitor.tick(T0 + MINUTE, run(1, FAILED, ended=T0, trigger=TriggerType.MANUAL_RERUN))
    scheduled = monitor.tick(T0 + 2 * MINUTE, run(2, FAILED, ended=T0 + 90))
    manual_fix = monitor.tick(
        T0 + 3 * MINUTE, run(3, SUCCESS, ended=T0 + 150, trigger=TriggerType.MANUAL_RERUN)
    )
    assert manual == []
    assert kinds(scheduled) == ["failed"]
    assert scheduled[0].facts["streak"] == 1  # the ignored manual rerun did not count
    assert manual_fix == []  # nor does its success end the streak


def test_a_run_of_unknown_trigger_type_is_watched() -> None:
    monitor = Monitor(settings=with_settings(trigger_types=frozenset({TriggerType.SCHEDULED})))
    assert kinds(monitor.tick(T0 + MINUTE, run(1, FAILED, ended=T0, trigger=None))) == ["failed"]
    assert kinds(monitor.tick(T0 + 2 * MINUTE, run(2, FAILED, ended=T0 + 60, trigger=77))) == [
        "failed"
    ]


def test_any_terminal_status_in_alert_on_is_its_own_kind() -> None:
    settings = with_settings(alert_on=frozenset({InstanceStatus.KILLED, InstanceStatus.FAILED}))
    monitor = Monitor(settings=settings)
    found = monitor.tick(T0 + MINUTE, run(1, InstanceStatus.KILLED, ended=T0))
    rejected = monitor.tick(T0 + 2 * MINUTE, run(2, InstanceStatus.REJECTED, ended=T0 + 60))
    assert kinds(found) == ["killed"]
    assert rejected == []  # not announced, and neither a failure nor a success for the streak


def test_first_poll_counts_old_failures_but_does_not_announce_them() -> None:
    history = JobHistory(
        key(),
        (run(1, FAILED, ended=T0 - 3600), run(2, FAILED, ended=T0 - 30)),
        quiet_before=T0 - 600,
    )
    found, memory = evaluate({key(): history}, {key(): RuleSettings()}, {}, {}, T0)
    assert kinds(list(found)) == ["failed"]
    assert found[0].facts["streak"] == 2
    assert memory[key()].streak_since == T0 - 3600


def test_a_job_not_polled_this_tick_keeps_its_memory() -> None:
    monitor = Monitor()
    monitor.tick(T0 + MINUTE, run(1, FAILED, ended=T0))
    found, memory = evaluate({}, monitor.settings, {}, monitor.memory, T0 + 2 * MINUTE)
    assert found == ()
    assert memory == monitor.memory


def test_an_unwatched_job_is_forgotten() -> None:
    monitor = Monitor()
    monitor.tick(T0 + MINUTE, run(1, FAILED, ended=T0))
    assert evaluate({}, {}, {}, monitor.memory, T0 + 2 * MINUTE).memory == {}
