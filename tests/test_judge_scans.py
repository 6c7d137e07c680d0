"""Twelve groups of crons that fire every minute, each with `missed_grace`, on a server
whose window is on the end time, at a quota that cannot pay for every group's newest window
and a scan a tick (issue 22's loose end: a fire to judge took a scan a tick per group,
outside the stretch, and half the windows waited every second tick). The scans for fires
to judge are stretched with the others, those with a fire first: every window is read
every tick, a failure is told within two ticks, and a missed fire is still told, once,
by its group's next scan."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.estates import watch_groups
from tests.world import NS, START, World

GROUPS = tuple(f"estate.m{n:02d}" for n in range(12))
SUCCESS, FAILED = 4, 5
MINUTE = 60.0
# Two days before the first tick: history no window reaches.
OLD = START - 2 * 86400
# Twelve windows a tick leave 8 calls: four scans, not twelve (24 calls).
QUOTA = 20
# The fire with no run: group 3's at 10:20.
SKIPPED = (3, 20)


def job(g: int) -> int:
    return 5000 + g


@pytest.fixture
def estate(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path, jobs=()) as world:
        for g, group in enumerate(GROUPS):
            world.sx.add_job(NS, group, job(g), name=f"cron-{g}", time_expression="0 * * * * ?")
        watch_groups(
            world, GROUPS, quota=QUOTA, history_of=job(0), missed_grace="2m", stuck_after="off",
            flap_window="off", recovery=False,
        )  # fmt: skip
        yield world


def texts_with(world: World, mark: str) -> list[str]:
    return [t for t in world.texts() if mark in t]


def test_fires_to_judge_are_scanned_within_the_stretch_and_missed_runs_still_told(
    estate: World,
) -> None:
    pending: dict[str, int] = {}
    for n in range(40):
        now = START + n * MINUTE
        estate.clock.set(now)
        for g in range(len(GROUPS)):
            if n == 0:
                # The fires before the first tick ran; the first began before the first
                # window and ended inside it: the first answers tell the window is on the
                # end time.
                for fire, began in ((now - 120, now - 1200), (now - 60, now - 60)):
                    estate.sx.add_instance(
                        job(g), status=SUCCESS, schedule_time=fire, start_time=began,
                        end_time=now - 10,
                    )  # fmt: skip
                continue
            if (g, n - 1) == SKIPPED:
                continue
            # Last minute's fire ran and ended.
            failed = n - 1 >= 10 and (n - 1) % len(GROUPS) == g
            mark = f"failure {g} at {n - 1}"
            estate.sx.add_instance(
                job(g), status=FAILED if failed else SUCCESS, result=mark,
                schedule_time=now - 60, start_time=now - 60, end_time=now - 10,
            )  # fmt: skip
            if failed:
                pending[mark] = n + 1  # this tick, or the next one
        summary = estate.tick()
        # Once the first windows are caught up (the first tick reads the job lists, paced
        # over the minute, and the 15-minute lookback), every group's window is read
        # every tick (with a judge scan riding with each window, half of them waited
        # every second tick).
        late = [p for p in summary.problems if "not read up to now" in p]
        assert n < 5 or not late, (n, late)
        if n >= 12:
            # Scans wait, the fires to judge among them: said.
            assert summary.status == "degraded", n
            assert any("have a fire to judge" in p for p in summary.problems), summary.problems
        for mark, by in list(pending.items()):
            if texts_with(estate, mark):
                del pending[mark]
            else:
                assert n < by, (mark, n, summary.problems)
    assert not pending
    missed = texts_with(estate, "未按时运行")
    assert len(missed) == 1 and "cron-3" in missed[0] and "10:20" in missed[0], missed
    assert estate.sx.max_calls_in_any_minute("GetJobInstanceList") <= QUOTA
