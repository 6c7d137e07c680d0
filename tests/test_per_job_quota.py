"""Polled job by job on a quota too small for every job due: a job the quota left out
waits one tick, not until the fires stop (issue 22, the older server's row)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.world import GROUP, NS, START, World

MINUTE = 60.0
QUOTA = 10
# Ten hourly jobs fire at each minute from 10:31 to 10:36 (eleven at 10:31) and fail at
# once: each minute asks for all ten calls of the quota, and 10:31 for one more.
BATCHES = {
    minute: tuple(range(100 * minute, 100 * minute + QUOTA + (minute == 31)))
    for minute in range(31, 37)
}
# A job that fires at 10:30, runs half a minute and fails: seen running at 10:30, its
# failure is first listable at 10:31. Its id sorts after the batches'. Its run is read by
# id (GetJobInstance, a quota of its own), so the listings' quota does not hold it back.
LONG = 9000


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path, jobs=()) as world:
        for minute, jobs in BATCHES.items():
            for job_id in jobs:
                world.sx.add_job(
                    NS, GROUP, job_id, name=f"at-{minute}-{job_id}",
                    time_expression=f"0 {minute} * * * ?",
                )  # fmt: skip
        world.sx.add_job(NS, GROUP, LONG, name="long", time_expression="0 30 * * * ?")
        world.raw["schedulerx"] = {
            "endpoint": world.sx.url,
            "query": "per_job",
            "max_calls_per_minute": QUOTA,
        }
        world.raw["watch"] = [
            {"namespace": NS, "group": GROUP, "jobs": "all", "receivers": ["ops"]}
        ]
        yield world


def test_a_job_left_out_for_the_quota_goes_before_jobs_due_since(world: World) -> None:
    ends: dict[int, float] = {}  # instance id: when its failure became listable
    announced: dict[int, float] = {}
    long_run = None
    while world.clock() < START + 40 * MINUTE:
        now = world.clock()
        minute = round((now - START) / MINUTE)
        if minute == 30:
            long_run = world.sx.add_instance(LONG, status=3, schedule_time=now)
        if minute == 31 and long_run is not None:
            world.sx.set_status(long_run, 5, result="failed after 30 s", end_time=now - 30)
            ends[long_run] = now
        for job_id in BATCHES.get(minute, ()):
            failed = world.sx.add_instance(job_id, status=5, result="boom", schedule_time=now)
            ends[failed] = now
        seen = len(world.texts())
        world.tick()
        for text in world.texts()[seen:]:
            for instance in ends:
                if str(instance) in text:
                    announced.setdefault(instance, now)
        # A minute a tick, as FC's timer: the next tick starts on the next minute.
        world.advance(START + (minute + 1) * MINUTE - world.clock())
    # 10:31 has eleven listings due for ten calls; from then on one poll a minute is left
    # for the next tick, and goes first there: every failure is announced in the tick it
    # became listable in or the next (before: at 10:37, six ticks on, behind five minutes
    # of fires of jobs polled longer ago). The long run's is announced at once: its run
    # was read by id (before: it took one of the listings' calls, and waited a tick).
    late = {i: (announced.get(i, float("inf")) - at) / MINUTE for i, at in ends.items()}
    assert len(late) == 1 + sum(len(jobs) for jobs in BATCHES.values())
    assert max(late.values()) <= 1, sorted(late.items(), key=lambda kv: -kv[1])[:5]
    assert sorted(late.values()).count(1) >= 5  # a poll was left out each minute
    assert late[long_run or 0] == 0
