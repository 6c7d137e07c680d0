"""Stories of the stuck-run rule."""

from __future__ import annotations

from dataclasses import replace

from schedulerx_alert.core.findings import STUCK
from schedulerx_alert.core.model import InstanceStatus, TriggerType
from schedulerx_alert.core.rules import JobSchedule
from tests.builders import T0
from tests.rules_driver import MINUTE, Monitor, key, kinds, run, with_settings

RUNNING = InstanceStatus.RUNNING


def test_a_run_going_for_47_minutes_is_announced_once_then_its_failure_as_usual() -> None:
    monitor = Monitor(settings=with_settings(stuck_after=30 * MINUTE))
    assert monitor.tick(T0 + 20 * MINUTE, run(7, RUNNING, started=T0)) == []
    stuck = monitor.tick(T0 + 47 * MINUTE)
    later = monitor.tick(T0 + 48 * MINUTE)
    ended = monitor.tick(T0 + 61 * MINUTE, run(7, InstanceStatus.FAILED, ended=T0 + 60 * MINUTE))

    assert kinds(stuck) == [STUCK]
    assert stuck[0].facts["running_for_seconds"] == 47 * MINUTE
    assert stuck[0].facts["stuck_after_seconds"] == 30 * MINUTE
    assert stuck[0].instances[0].instance_id == 7
    assert later == []
    assert kinds(ended) == ["failed"]
    assert monitor.memory.get(key()) is None or monitor.memory[key()].stuck == ()


def test_the_default_is_the_jobs_own_timeout_when_its_monitor_has_one() -> None:
    with_timeout = Monitor(schedules={key(): JobSchedule(time_type=1, timeout=1800)})
    without = Monitor(schedules={key(): JobSchedule(time_type=1)})
    for monitor in (with_timeout, without):
        monitor.report(run(7, RUNNING, started=T0))
    assert kinds(with_timeout.tick(T0 + 31 * MINUTE)) == [STUCK]
    assert without.tick(T0 + 600 * MINUTE) == []


def test_off_turns_it_off_even_with_a_job_timeout() -> None:
    monitor = Monitor(
        settings=with_settings(stuck_after="off"),
        schedules={key(): JobSchedule(time_type=1, timeout=60)},
    )
    assert monitor.tick(T0 + 600 * MINUTE, run(7, RUNNING, started=T0)) == []


def test_a_waiting_run_is_stuck_from_when_it_was_due() -> None:
    waiting = replace(run(8, InstanceStatus.WAITING, started=T0), start_time=None)
    monitor = Monitor(settings=with_settings(stuck_after=30 * MINUTE))
    found = monitor.tick(T0 + 40 * MINUTE, waiting)
    assert kinds(found) == [STUCK]
    assert found[0].facts["status"] == "waiting"
    # Starting at last is the same run, not a new stuck one.
    assert monitor.tick(T0 + 41 * MINUTE, run(8, RUNNING, started=T0 + 40 * MINUTE)) == []


def test_a_stuck_run_that_drops_out_of_the_listing_and_back_is_not_announced_again() -> None:
    monitor = Monitor(settings=with_settings(stuck_after=30 * MINUTE))
    assert kinds(monitor.tick(T0 + 31 * MINUTE, run(7, RUNNING, started=T0))) == [STUCK]
    assert monitor.tick(T0 + 32 * MINUTE, hidden=frozenset({7})) == []
    assert monitor.tick(T0 + 33 * MINUTE) == []


def test_paused_runs_and_filtered_triggers_are_not_stuck() -> None:
    monitor = Monitor(
        settings=with_settings(
            stuck_after=30 * MINUTE, trigger_types=frozenset({TriggerType.SCHEDULED})
        )
    )
    paused = run(7, InstanceStatus.PAUSED, started=T0)
    manual = run(8, RUNNING, started=T0, trigger=TriggerType.MANUAL_RERUN)
    assert monitor.tick(T0 + 90 * MINUTE, paused, manual) == []


def test_two_runs_of_one_job_stuck_since_the_same_second_are_two_findings() -> None:
    """A job whose runs may overlap (a second one started by hand): each stuck run is
    announced, and each keeps its own fingerprint, so neither is taken for the other."""
    monitor = Monitor(settings=with_settings(stuck_after=30 * MINUTE))
    monitor.report(run(7, RUNNING, started=T0), run(8, RUNNING, started=T0))
    stuck = monitor.tick(T0 + 31 * MINUTE)
    assert sorted(f.instances[0].instance_id for f in stuck) == [7, 8]
    assert len({f.fingerprint for f in stuck}) == 2


def test_a_run_still_waiting_is_stuck_from_its_scheduled_time() -> None:
    """No start time yet: it has been stuck since it was due (10 s before T0 here)."""
    monitor = Monitor(settings=with_settings(stuck_after=30 * MINUTE))
    waiting = replace(run(9, InstanceStatus.WAITING, started=T0), start_time=None)
    monitor.report(waiting)
    [stuck] = monitor.tick(T0 + 31 * MINUTE)
    assert stuck.facts["running_for_seconds"] == 31 * MINUTE + 10
    assert stuck.fingerprint.endswith(f":9:{int(T0 - 10)}")


def test_a_younger_run_listed_first_does_not_hide_an_older_stuck_one() -> None:
    monitor = Monitor(settings=with_settings(stuck_after=30 * MINUTE))
    monitor.report(run(7, RUNNING, started=T0 + 20 * MINUTE), run(8, RUNNING, started=T0))
    stuck = monitor.tick(T0 + 31 * MINUTE)
    assert [f.instances[0].instance_id for f in stuck] == [8]
