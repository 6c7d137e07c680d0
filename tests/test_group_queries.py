"""Stories of whole groups watched with `jobs: all` and name patterns, read by group queries
against the loopback SchedulerX, whichever way its undocumented parts turn out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from schedulerx_alert.core.state import State, load_state
from tests.fakes.schedulerx import WindowField
from tests.world import GROUP, NS, START, World

ETL = tuple(range(500, 530))  # etl-500 .. etl-529, hourly at a minute of their own


@pytest.fixture
def big(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path, jobs=()) as world:
        for job_id in ETL:
            world.sx.add_job(
                NS, GROUP, job_id, name=f"etl-{job_id}", time_expression=f"0 {job_id % 60} * * * ?"
            )
        world.raw["watch"] = [
            {"namespace": NS, "group": GROUP, "jobs": "all", "receivers": ["ops"]}
        ]
        # These stories count one alert per failure; their error texts differ only in
        # numbers, which the shared-cause rule would fold into one message.
        world.raw["shared_cause"] = False
        yield world


def state_of(world: World) -> State:
    return load_state(world.state_path.read_bytes())


def tick_ok(world: World, **changes: Any) -> Any:
    summary = world.tick(**changes)
    assert summary.status == "ok", summary.problems
    return summary


def test_jobs_all_reads_the_group_and_names_the_job_in_the_message(big: World) -> None:
    big.sx.add_instance(517, status=5, result="disk full")
    first = tick_ok(big)
    assert (first.jobs, first.polled, first.alerts_sent) == (30, 30, 1)
    [text] = big.texts()
    assert "etl-517" in text and "disk full" in text
    # Discovery is kept in the state: the job list, with each job's schedule.
    catalog = state_of(big).catalog
    assert len(catalog) == 30 and {i.time_expression for i in catalog.values()} >= {"0 37 * * * ?"}
    # A few calls for thirty jobs, not thirty.
    assert first.calls["GetJobInstanceList"] <= 8 and first.calls["ListJobs"] == 1
    for _ in range(3):
        big.advance(60)
        assert tick_ok(big).alerts_new == 0
    assert len(big.texts()) == 1


def test_new_jobs_are_picked_up_deleted_ones_dropped_disabled_ones_ignored(big: World) -> None:
    tick_ok(big)
    big.sx.add_job(NS, GROUP, 600, name="etl-new")
    big.sx.add_job(NS, GROUP, 505, name="etl-505", status=0)  # disabled
    big.advance(60)
    # A job created after its group's list was read: found in the group's runs, looked up.
    big.sx.add_instance(600, status=5, result="first run fails")
    assert tick_ok(big).alerts_sent == 1
    assert "etl-new" in big.texts()[-1]
    big.advance(11 * 60)  # the list is read again (discovery_interval 10 min)
    summary = tick_ok(big)
    catalog = state_of(big).catalog
    assert summary.jobs == 30  # 600 joined, 505 left
    assert not next(i for k, i in catalog.items() if k.job_id == 505).enabled
    big.sx.add_instance(505, status=5, result="run by hand while disabled")
    big.advance(60)
    assert tick_ok(big).alerts_new == 0


def test_name_patterns_and_excludes_choose_the_jobs(big: World) -> None:
    big.sx.add_job(NS, GROUP, 700, name="report-a")
    big.sx.add_job(NS, GROUP, 701, name="report-ab")
    big.raw["watch"] = [
        {
            "namespace": NS,
            "group": GROUP,
            "job_names": ["report-?", "etl-51*"],
            "exclude_names": ["etl-519"],
            "exclude_jobs": [510],
            "receivers": ["ops"],
        }
    ]
    for job_id in (700, 701, 510, 511, 519, 520):
        big.sx.add_instance(job_id, status=5, result=f"boom {job_id}")
    summary = tick_ok(big)
    assert summary.jobs == 1 + 8  # report-a; etl-511..518
    text = "\n".join(big.texts())
    assert "report-a" in text and "etl-511" in text
    for left_out in ("report-ab", "etl-510", "etl-519", "etl-520"):
        assert left_out not in text


@pytest.mark.parametrize("window_field", ["schedule", "start", "end"])
def test_a_run_scheduled_hours_ago_that_fails_now_is_announced_whatever_the_window_is_on(
    big: World, window_field: WindowField
) -> None:
    big.sx.configure(window_field=window_field)
    long_run = big.sx.add_instance(501, status=3, schedule_time=START - 3 * 3600)
    waiting = big.sx.add_instance(502, status=1, schedule_time=START - 3600, started=False)
    tick_ok(big)
    for minute in range(1, 40):
        big.advance(60)
        if minute == 30:
            big.sx.set_status(long_run, 5, result="after three hours: out of memory")
            big.sx.set_status(waiting, 9, result="no worker available")
            big.sx.add_instance(503, status=9, result="rejected at once", started=False)
            big.sx.add_instance(504, status=5, result="quick failure")
        summary = tick_ok(big)
        assert summary.alerts_new == (4 if minute == 30 else 0), minute
    text = "\n".join(big.texts())
    for what in ("out of memory", "no worker available", "rejected at once", "quick failure"):
        assert text.count(what) == 1
    assert big.sx.max_calls_in_any_minute("GetJobInstanceList") <= 12


def test_each_window_field_is_told_apart_from_the_answers(big: World) -> None:
    outcomes = {}
    for window_field in ("schedule", "end"):
        big.sx.configure(window_field=window_field)
        big.state_path.unlink(missing_ok=True)
        run = big.sx.add_instance(
            520 if window_field == "end" else 521,
            status=5,
            schedule_time=big.clock() - 300,
            start_time=big.clock() - 290,
            end_time=big.clock() - 10,
        )
        tick_ok(big)
        outcomes[window_field] = state_of(big).sources.server.fields
        big.sx.remove_instance(run)
        big.advance(60)
    assert outcomes["end"] == ("end",)
    assert "end" not in outcomes["schedule"]


def test_after_an_outage_the_ticks_catch_up_window_by_window_within_the_quota(
    big: World,
) -> None:
    # Small pages (the server's largest is 5: found out, not configured) and a small quota,
    # so that catching up takes several ticks.
    big.sx.configure(max_page_size=5)
    sx = {"endpoint": big.sx.url, "max_calls_per_minute": 6}
    tick_ok(big, schedulerx=sx)
    failed = []
    for n in range(40):  # two hours without a tick, forty failures in them
        big.advance(180)
        failed.append(big.sx.add_instance(ETL[n % 30], status=5, result=f"outage failure {n}"))
    announced = 0
    ticks = 0
    while announced < 40:
        big.advance(60)
        ticks += 1
        if ticks == 2:
            # A failure now is not queued behind the two hours: the newest window goes first.
            big.sx.add_instance(529, status=5, result="fresh during the catch-up")
        summary = big.tick(schedulerx=sx)
        if ticks == 2:
            assert "fresh during the catch-up" in "\n".join(big.texts())
        announced += summary.alerts_new - (ticks == 2)
        assert ticks < 20, "the catch-up does not progress"
    assert ticks > 2  # it did take several ticks
    assert state_of(big).sources.server.page_size == 5
    text = "\n".join(big.texts())
    assert [text.count(str(run)) for run in failed] == [1] * 40
    assert big.sx.max_calls_in_any_minute("GetJobInstanceList") <= 6
    # Windows begun are read on to their end (not merged and read again from the start):
    # a tick or two more, with nothing new in them, then quiet again.
    for _ in range(2):
        big.advance(60)
        assert big.tick(schedulerx=sx).alerts_new == 0
    for _ in range(3):
        big.advance(60)
        assert tick_ok(big, schedulerx=sx).alerts_new == 0


@pytest.mark.parametrize(
    ("order", "oversize"),
    [("schedule_desc", "refuse"), ("id_asc", "clamp"), ("end_asc", "refuse")],
)
def test_every_failure_of_a_busy_minute_is_read_whatever_the_order_and_page_limit(
    big: World, order: str, oversize: str
) -> None:
    big.sx.configure(order=order, max_page_size=20, oversize=oversize)  # type: ignore[arg-type]
    tick_ok(big)
    big.advance(60)
    failed = [
        big.sx.add_instance(
            ETL[n % 30], status=5, result=f"busy {n}", schedule_time=big.clock() - n
        )
        for n in range(45)
    ]
    summary = tick_ok(big)
    assert summary.alerts_new == 45
    text = "\n".join(big.texts())
    assert [text.count(str(run)) for run in failed] == [1] * 45
    assert state_of(big).sources.server.page_size <= 20
