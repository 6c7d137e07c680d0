"""Stories of the missed-run rule, with stub schedules (the integration plugs in
core/schedule.Schedule, which has the same `fires_between`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from schedulerx_alert.core.findings import MISSED
from schedulerx_alert.core.model import InstanceStatus, JobInstance
from schedulerx_alert.core.rules import JobSchedule
from tests.builders import SHANGHAI
from tests.rules_driver import MINUTE, Daily, Every, Monitor, at, key, kinds, run, with_settings

DAY = 24 * 3600.0
DAILY_2AM = JobSchedule(time_type=1, fires=Daily(2), zone="Asia/Shanghai")


def clock(hour: int, minute: int = 0, second: int = 0, day: int = 26) -> float:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=SHANGHAI).timestamp()


def due_at(instance_id: int, when: float) -> JobInstance:
    inst = run(instance_id, InstanceStatus.RUNNING, started=when)
    return replace(inst, schedule_time=at(when), start_time=at(when))


def nightly(schedule: JobSchedule = DAILY_2AM) -> Monitor:
    monitor = Monitor(settings=with_settings(missed_grace=10 * MINUTE), schedules={key(): schedule})
    assert monitor.tick(clock(1, 0)) == []  # the first look starts the watch
    return monitor


def test_a_nightly_job_with_nothing_by_0210_is_announced_once() -> None:
    monitor = nightly()
    assert monitor.tick(clock(2, 5)) == []  # still within the grace
    found = monitor.tick(clock(2, 10))
    assert kinds(found) == [MISSED]
    assert found[0].facts["expected_at"] == clock(2, 0)
    assert found[0].facts["missed_count"] == 1
    assert found[0].facts["zone"] == "Asia/Shanghai"
    assert found[0].instances == ()
    assert monitor.tick(clock(2, 20)) == []
    assert monitor.tick(clock(9, 0)) == []
    # The next night is a fire of its own.
    assert kinds(monitor.tick(clock(2, 11, day=27))) == [MISSED]


def test_a_run_at_020003_is_the_fire_s_run() -> None:
    monitor = nightly()
    assert monitor.tick(clock(2, 10), due_at(1, clock(2, 0, 3))) == []


def test_a_run_due_at_another_time_does_not_answer_the_fire() -> None:
    monitor = nightly()
    assert kinds(monitor.tick(clock(2, 10), due_at(1, clock(1, 30)))) == [MISSED]


def test_fires_are_read_in_the_job_s_own_zone() -> None:
    utc = JobSchedule(time_type=1, fires=Daily(2, zone=ZoneInfo("UTC")), zone="UTC")
    monitor = nightly(utc)
    # 02:10 in Shanghai is 18:10 UTC the day before: no UTC 02:00 fire has passed.
    assert monitor.tick(clock(2, 10)) == []
    found = monitor.tick(clock(10, 10))  # 02:10 UTC
    assert kinds(found) == [MISSED]
    assert found[0].facts["expected_at"] == clock(10, 0)
    assert found[0].facts["zone"] == "UTC"


def test_disabled_fixed_rate_and_api_jobs_never_miss() -> None:
    for schedule in (
        replace(DAILY_2AM, enabled=False),
        replace(DAILY_2AM, time_type=3),  # fixed rate
        replace(DAILY_2AM, time_type=100),  # API
        JobSchedule(),  # nothing known about the job
    ):
        monitor = nightly(schedule)
        assert monitor.tick(clock(2, 10)) == []
        assert monitor.tick(clock(3, 0, day=28)) == []


def test_a_job_enabled_again_does_not_count_its_disabled_nights() -> None:
    monitor = nightly(replace(DAILY_2AM, enabled=False))
    monitor.tick(clock(3, 0, day=28))
    monitor.schedules = {key(): DAILY_2AM}
    assert monitor.tick(clock(12, 0, day=28)) == []
    assert kinds(monitor.tick(clock(2, 10, day=29))) == [MISSED]


def test_off_by_default() -> None:
    monitor = Monitor(schedules={key(): DAILY_2AM})
    monitor.tick(clock(1, 0))
    assert monitor.tick(clock(2, 30)) == []


def test_fires_missed_while_nobody_looked_make_one_finding() -> None:
    every_minute = JobSchedule(time_type=1, fires=Every(MINUTE, anchor=clock(0, 0)))
    monitor = Monitor(
        settings=with_settings(missed_grace=2 * MINUTE), schedules={key(): every_minute}
    )
    monitor.tick(clock(1, 0))
    found = monitor.tick(clock(1, 30))
    assert kinds(found) == [MISSED]
    assert found[0].facts["missed_count"] == 30  # 00:59 to 01:28
    assert found[0].facts["expected_at"] == clock(1, 0) - 2 * MINUTE + MINUTE
    assert len(found[0].facts["missed_fires"]) == 10  # type: ignore[arg-type]


def test_a_run_answers_its_own_fire_not_the_one_before() -> None:
    every_minute = JobSchedule(time_type=1, fires=Every(MINUTE, anchor=clock(0, 0)))
    monitor = Monitor(
        settings=with_settings(missed_grace=5 * MINUTE), schedules={key(): every_minute}
    )
    monitor.tick(clock(1, 5))
    runs = [due_at(i, clock(1, minute)) for i, minute in enumerate((1, 2, 4), start=1)]
    found = monitor.tick(clock(1, 10), *runs)
    assert kinds(found) == [MISSED]
    # 01:04's run is within 01:03's grace, but it is 01:04's.
    assert found[0].facts["missed_fires"] == (clock(1, 3), clock(1, 5))
