"""Twelve groups on a server whose window is on the end time, at a quota that cannot pay for
every group's newest window each tick (as at 20,000 jobs in 100 groups at 90 calls a minute,
issue 22): the scans of running and waiting runs are stretched and the ticks say so, a
failure in any group is announced within two ticks, and a run hung in a group is still
announced as stuck, by the group's next scan, as late as the stretch makes it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.estates import watch_groups
from tests.world import NS, World

GROUPS = tuple(f"estate.s{n:02d}" for n in range(12))
# Twelve newest windows a tick and a scan (2 calls) per group every ten minutes would take
# 12 + 2.4 calls a minute: 8 leave every group's window to every second tick.
QUOTA = 8


def job(g: int, j: int) -> int:
    return 2000 + 10 * g + j


@pytest.fixture
def estate(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path, jobs=()) as world:
        for g, group in enumerate(GROUPS):
            for j in range(4):
                world.sx.add_job(NS, group, job(g, j), name=f"job-{g}-{j}")
        # Failures and successes of one job alternate here: no flapping episode.
        watch_groups(world, GROUPS, quota=QUOTA, stuck_after="5m", flap_window="off")
        yield world


def successes(world: World) -> None:
    """A run a group that ended in the last minute, after it started: what the windows
    list every tick (and what shows the window is on the end time)."""
    now = world.clock()
    for g in range(len(GROUPS)):
        world.sx.add_instance(
            job(g, 0), status=4, schedule_time=now - 50, start_time=now - 50, end_time=now - 20
        )


def announced(world: World, mark: str) -> int:
    return "\n".join(world.texts()).count(mark)


def test_a_short_quota_stretches_the_scans_and_still_announces_within_two_ticks(
    estate: World,
) -> None:
    # The first ticks read every group's first window and scan it (three calls a group).
    for _ in range(12):
        successes(estate)
        estate.tick()
        estate.advance(60)
    pending: dict[str, int] = {}  # mark: the tick it must be announced by
    stretched = 0
    hung_at = 14
    for tick in range(12, 56):
        g = tick % len(GROUPS)
        if tick < 48:  # a failure a tick, each in the next group round
            mark = f"failure {g} at tick {tick}"
            estate.sx.add_instance(job(g, tick % 4), status=5, result=mark)
            pending[mark] = tick + 1  # this tick, or the next one
        if tick == hung_at:  # hangs: stuck from 5 ticks later
            estate.sx.add_instance(job(5, 3), status=3, result="hung")
        successes(estate)
        summary = estate.tick()
        assert summary.status == "degraded", tick
        # Which groups wait is said: the windows, with the oldest, and the scans with
        # what their stretch costs.
        behind = [p for p in summary.problems if "not read up to now" in p]
        assert all("estate.s" in p for p in behind), behind
        scans = [p for p in summary.problems if "wait for their scan" in p]
        stretched += bool(scans)
        assert all("estate.s" in p and "stuck, long and waiting runs" in p for p in scans)
        for mark, by in list(pending.items()):
            if announced(estate, mark):
                del pending[mark]
            else:
                assert tick < by, (mark, tick, summary.problems)
        if tick == hung_at + 13:
            # Stuck after 5 minutes, seen by the group's next scan: stretched to about
            # every 12 minutes, later than stuck_after, never dropped.
            assert announced(estate, "任务卡住") == 1, tick
        estate.advance(60)
    assert not pending
    assert stretched >= 10
    assert estate.sx.max_calls_in_any_minute("GetJobInstanceList") <= QUOTA
