"""Stories of a group read by group queries on a server whose window is on the end time: the
window re-reads only a short overlap (sources/plan.py END_OVERLAP), and nothing is lost by
it: an end written late, a run that fails hours after it was scheduled (issue 22)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from schedulerx_alert.sources.plan import END_OVERLAP, SCAN_INTERVAL
from tests.world import GROUP, NS, START, World

JOBS = tuple(range(700, 720))
LIST = "GetJobInstanceList"


@pytest.fixture
def group(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path, jobs=()) as world:
        for job_id in JOBS:
            world.sx.add_job(NS, GROUP, job_id, name=f"etl-{job_id}")
        world.raw["watch"] = [
            {"namespace": NS, "group": GROUP, "jobs": "all", "receivers": ["ops"]}
        ]
        world.raw["shared_cause"] = False
        world.sx.configure(window_field="end")
        yield world


def busy_minute(world: World, per_minute: int) -> None:
    """`per_minute` successful runs that ended in the last minute, as a busy group has."""
    now = world.clock()
    for n in range(per_minute):
        world.sx.add_instance(
            JOBS[n % len(JOBS)],
            status=4,
            schedule_time=now - 50,
            start_time=now - 50,
            end_time=now - 55 + n * 50 / per_minute,
        )


def fields_learned(world: World) -> list[str]:
    state = json.loads(world.state_path.read_text())
    fields: list[str] = state["sources"]["server"]["fields"]
    return fields


def test_ends_written_late_and_hours_long_runs_are_announced_once(group: World) -> None:
    # Runs written, at minute m, with an end `late` seconds before the moment of writing
    # (a report retried, a worker's clock behind): each just after a tick, the worst moment,
    # since the last window reads up to that tick.
    late_writes = {6: END_OVERLAP - 5, 9: 100.0, 14: 30.0}
    long_run = group.sx.add_instance(JOBS[0], status=3, schedule_time=START - 5 * 3600)
    for minute in range(30):
        if minute:
            group.advance(60)
        busy_minute(group, 3)
        if minute == 20:
            group.sx.set_status(long_run, 5, result="the 5 h run failed at last")
        summary = group.tick()
        assert summary.status == "ok", (minute, summary.problems)
        if minute == 2:
            assert fields_learned(group) == ["end"]
        if minute in late_writes:
            now = group.clock()
            group.sx.add_instance(
                JOBS[minute],
                status=5,
                result=f"written {late_writes[minute]:.0f} s late",
                schedule_time=now - 600,
                start_time=now - 590,
                end_time=now - late_writes[minute],
            )
    text = "\n".join(group.texts())
    for late in late_writes.values():
        assert text.count(f"written {late:.0f} s late") == 1, late
    assert text.count("the 5 h run failed at last") == 1


@pytest.mark.parametrize("stuck_after", ["5m", "job_timeout"])
def test_a_busy_group_costs_one_call_a_tick_between_scans(group: World, stuck_after: str) -> None:
    # 15 runs a minute: a 16-minute window (the overlap on the schedule or start time)
    # holds 240 of them, three pages of 100; the window on the end time four minutes' worth.
    group.raw["watch"][0]["stuck_after"] = stuck_after
    calls: list[int] = []
    for minute in range(40):
        if minute:
            group.advance(60)
        busy_minute(group, 15)
        before = group.sx.calls(LIST)
        assert group.tick().status == "ok"
        calls.append(group.sx.calls(LIST) - before)
    steady = calls[20:]
    scans = [n for n in steady if n > 1]
    # A scan (running, waiting: two calls) every SCAN_INTERVAL; every other tick one call.
    # Where no rule reads runs not ended yet (no job has a timeout of its own, no
    # missed_grace), no scan at all: the window lists every run that ends.
    every = len(steady) // int(SCAN_INTERVAL // 60) if stuck_after == "5m" else 0
    assert len(scans) == every, calls
    assert all(n == 1 for n in steady if n not in scans), calls
    assert all(n == 3 for n in scans), calls


def test_a_quiet_group_with_a_day_of_history_costs_one_call_a_read(group: World) -> None:
    # Two runs a minute: no window holds a page of 100, so a short page alone does not tell
    # the end of a listing from a server whose largest page is smaller than asked. One page
    # of the group's history (a day of runs) shows pages of 100 are given, once for all.
    for n in range(150):
        yesterday = START - 86400 + 60 * n
        group.sx.add_instance(
            JOBS[n % len(JOBS)], status=4, schedule_time=yesterday, end_time=yesterday + 30
        )
    calls: list[int] = []
    for minute in range(25):
        if minute:
            group.advance(60)
        busy_minute(group, 2)
        before = group.sx.calls(LIST)
        assert group.tick().status == "ok"
        calls.append(group.sx.calls(LIST) - before)
    steady = calls[3:]
    assert all(n in (1, 3) for n in steady), f"{calls}"
    assert steady.count(3) <= len(steady) // int(SCAN_INTERVAL // 60) + 1, f"{calls}"


def test_a_server_whose_pages_are_smaller_than_asked_still_has_every_failure_read(
    group: World,
) -> None:
    # Pages of 30 whatever is asked, silently: the page of history shows 30, not 100, so a
    # page of 30 is not taken for the end of a listing, and the smaller page is found out.
    group.sx.configure(max_page_size=30, oversize="clamp")
    for n in range(150):
        yesterday = START - 86400 + 60 * n
        group.sx.add_instance(
            JOBS[n % len(JOBS)], status=4, schedule_time=yesterday, end_time=yesterday + 30
        )
    for minute in range(4):
        if minute:
            group.advance(60)
        busy_minute(group, 2)
        assert group.tick().status == "ok"
    group.advance(60)
    now = group.clock()
    failed = [
        group.sx.add_instance(
            JOBS[n % len(JOBS)], status=5, result=f"burst {n}", schedule_time=now - 40 - n
        )
        for n in range(45)
    ]
    assert group.tick().status == "ok"
    text = "\n".join(group.texts())
    assert [text.count(str(run)) for run in failed] == [1] * 45
    assert json.loads(group.state_path.read_text())["sources"]["server"]["page"] == 30


def test_scans_every_stuck_threshold_tell_a_hung_run_as_soon_as_one_every_ten_minutes(
    group: World,
) -> None:
    # stuck_after 30m: a run must be listed once before it can be stuck, and from then on it
    # is remembered and judged every tick; so a scan every 30 minutes, not 10, tells it on
    # the tick it reaches its 30 minutes.
    group.raw["watch"][0]["stuck_after"] = "30m"
    calls: list[int] = []
    told: list[int] = []
    seen = 0
    for minute in range(75):
        if minute:
            group.advance(60)
        busy_minute(group, 3)
        if minute == 7:
            group.sx.add_instance(JOBS[3], status=3, result="hung")
        before = group.sx.calls(LIST)
        assert group.tick().status == "ok", minute
        calls.append(group.sx.calls(LIST) - before)
        told += [minute for t in group.texts()[seen:] if "任务卡住" in t]
        seen = len(group.texts())
    # After the first ticks (the first scan, the largest page learnt): a window a tick, and
    # a scan (two calls more) every 30 minutes.
    scans = [m for m in range(5, 75) if calls[m] >= 3]  # (the hourly check: 2)
    assert scans == [30, 60], calls
    assert told == [37], told
