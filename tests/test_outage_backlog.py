"""A SchedulerX outage over many groups whose newest windows take about the whole quota:
after the resume the older windows get their share of the calls, oldest first, so every
failure of the outage is announced within ten ticks, once, while new failures still go
out (issue 22)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.world import NS, World

GROUPS = tuple(f"estate.g{n}" for n in range(8))
# A call or two a tick reads each group's newest window, and scans add two calls per group
# every ten minutes: the quota is about what they take (as at 20,000 jobs in 100 groups).
QUOTA = {"max_calls_per_minute": 12}


@pytest.fixture
def estate(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path, jobs=()) as world:
        for g, group in enumerate(GROUPS):
            for j in range(5):
                world.sx.add_job(NS, group, 1000 + 10 * g + j, name=f"job-{g}-{j}")
        world.raw["watch"] = [
            {"namespace": NS, "group": group, "jobs": "all", "receivers": ["ops"]}
            for group in GROUPS
        ]
        world.raw["shared_cause"] = False
        world.raw["schedulerx"] = {"endpoint": world.sx.url, **QUOTA}
        yield world


def announced(world: World, marks: list[str]) -> list[int]:
    text = "\n".join(world.texts())
    return [text.count(mark) for mark in marks]


def test_after_a_40_minute_outage_every_group_catches_up_within_ten_ticks(
    estate: World,
) -> None:
    for _ in range(3):
        estate.tick()
        estate.advance(60)
    estate.sx.fail_next("5xx", 10**9)
    failures = []
    for minute in range(40):
        if minute % 10 == 5:  # a failure in every group, four times in the outage
            for g in range(len(GROUPS)):
                mark = f"outage failure {g}/{minute}"
                estate.sx.add_instance(1000 + 10 * g + minute % 5, status=5, result=mark)
                failures.append(mark)
        assert estate.tick().status == "failed"
        estate.advance(60)
    estate.sx.faults.clear()
    fresh = "fresh failure during the catch-up"
    for tick in range(1, 16):
        if tick == 3:
            estate.sx.add_instance(1073, status=5, result=fresh)
        summary = estate.tick()
        catching_up = [p for p in summary.problems if "catching up" in p]
        # The groups that wait are named, with the oldest.
        assert all("estate.g" in p for p in catching_up), catching_up
        if tick == 5:  # new failures are not queued behind the backlog
            assert announced(estate, [fresh]) == [1]
        if tick >= 10:
            assert announced(estate, failures) == [1] * len(failures)
            assert not catching_up, (tick, catching_up)
        estate.advance(60)
    assert announced(estate, [*failures, fresh]) == [1] * (len(failures) + 1)
    assert estate.sx.max_calls_in_any_minute("GetJobInstanceList") <= 12
