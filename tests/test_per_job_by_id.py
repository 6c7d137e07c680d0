"""Polled job by job, a job due only because its one run is unfinished has that run read
by id (GetJobInstance, a quota of its own): GetJobInstanceList's quota goes to the fires,
and a long run's end is seen in the tick after it, not behind them (issue 22, the older
server's row)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.world import GROUP, NS, START, World

MINUTE = 60.0
QUOTA = 4
# Three jobs fire every minute and succeed: three of the four listings a minute.
EVERY_MINUTE = (301, 302, 303)
# Five jobs fire at 10:05 and run for minutes; each ends at its own moment (after the
# minute's tick: first seen by the next), how it ends.
LONG = {201: (9.5, 5), 202: (10.5, 4), 203: (11.5, 5), 204: (12.5, 4), 205: (15.5, 5)}
# The server refuses GetJobInstance (another tool of the account spent its quota) in the
# tick that first sees 205 ended.
THROTTLED = 16


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path, jobs=()) as world:
        world.sx.configure(legacy="missing_param")  # no group queries: job by job
        for job_id in EVERY_MINUTE:
            world.sx.add_job(
                NS, GROUP, job_id, name=f"minutely-{job_id}", time_expression="0 * * * * ?"
            )
        for job_id in LONG:
            world.sx.add_job(
                NS, GROUP, job_id, name=f"long-{job_id}", time_expression="0 5 * * * ?"
            )
        world.raw["schedulerx"] = {"endpoint": world.sx.url, "max_calls_per_minute": QUOTA}
        world.raw["watch"] = [
            {"namespace": NS, "group": GROUP, "jobs": "all", "receivers": ["ops"]}
        ]
        yield world


def test_a_long_runs_end_is_read_by_id_while_the_fires_take_the_listings_quota(
    world: World,
) -> None:
    runs: dict[int, int] = {}  # job id: its long run
    announced: dict[int, list[int]] = {}  # instance id: the minutes it was named in
    by_id: dict[int, int] = {}  # minute: GetJobInstance calls
    for minute in range(21):
        now = world.clock()
        for job_id in EVERY_MINUTE:
            world.sx.add_instance(job_id, status=4, schedule_time=now, end_time=now + 2)
        if minute == 5:
            for job_id in LONG:
                runs[job_id] = world.sx.add_instance(job_id, status=3, schedule_time=now)
        for job_id, (ends, status) in LONG.items():
            if minute == int(ends) + 1:  # ended half a minute before this tick
                result = "boom" if status == 5 else ""
                end = START + ends * MINUTE
                world.sx.set_status(runs[job_id], status, result=result, end_time=end)
        if minute == THROTTLED:
            world.sx.fail_next("throttle", 20, action="GetJobInstance")
        seen, calls = len(world.texts()), world.sx.calls("GetJobInstance")
        world.tick()
        world.sx.faults.clear()
        by_id[minute] = world.sx.calls("GetJobInstance") - calls
        for text in world.texts()[seen:]:
            for instance in runs.values():
                if str(instance) in text:
                    announced.setdefault(instance, []).append(minute)
        # A minute a tick, as FC's timer: the next tick starts on the next minute.
        world.advance(START + (minute + 1) * MINUTE - world.clock())
    # Every failure is announced once, in the first tick after its run ended: the fires
    # (three listings a minute) and the five runs unfinished (a listing each, before)
    # want more than four GetJobInstanceList calls a minute, so the runs are read by id
    # (four of them; the fifth takes the fourth listing).
    failed = {runs[j]: int(ends) + 1 for j, (ends, status) in LONG.items() if status == 5}
    assert {i: announced.get(i) for i in failed} == {i: [m] for i, m in failed.items()}
    # While five runs are unfinished, GetJobInstance's quota reads four; then fewer.
    assert [by_id[m] for m in range(5, 12)] == [0, *[QUOTA] * 6]
    assert all(by_id[m] > 0 for m in range(12, 16))
    # 205's end was seen while the server refused GetJobInstance: read in its listing.
    assert world.sx.calls("GetJobInstanceList") > 0 and by_id[THROTTLED] > 0


def test_a_run_gone_from_the_server_is_looked_for_in_its_jobs_listing(world: World) -> None:
    """201's run, seen running at 10:05, is deleted on the server at 10:07 (GetJobInstance
    answers that it does not exist); at 10:08 someone runs 201 by hand and it fails. The
    tick that cannot read the run by id lists the job instead, and finds the failure."""
    manual = None
    for minute in range(11):
        now = world.clock()
        if minute == 5:
            gone = world.sx.add_instance(201, status=3, schedule_time=now)
        if minute == 7:
            world.sx.remove_instance(gone)
        if minute == 8:
            manual = world.sx.add_instance(
                201, status=5, result="by hand", schedule_time=now - 20, end_time=now - 10,
                trigger_type=4,
            )  # fmt: skip
        listed, by_id = world.sx.calls("GetJobInstanceList"), world.sx.calls("GetJobInstance")
        summary = world.tick()
        if minute >= 6:
            assert summary.status == "ok", summary.problems
            assert not summary.errors
        if minute == 8:  # read by id, not found; then listed
            assert [str(manual) in text for text in world.texts()] == [True]
            assert world.sx.calls("GetJobInstance") > by_id
            assert world.sx.calls("GetJobInstanceList") > listed
        world.advance(START + (minute + 1) * MINUTE - world.clock())
    assert manual is not None
