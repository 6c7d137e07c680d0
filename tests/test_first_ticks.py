"""The first ticks of twenty groups on a server whose window is on the end time (issue 22,
5,000 jobs in 20 groups: at most 25 calls a tick, the mean a user reads). The first tick
reads every group's window (the lookback, so a failure is told within a tick), but the
scans of running and waiting runs come two groups a tick, each group's within the first
ten minutes, as the scans after them do; the first cross-checks likewise. A run stuck
since before the first tick, in the group scanned last, and a fire missed before its
group's first scan are still told, once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.estates import watch_groups
from tests.world import NS, START, World

GROUPS = tuple(f"estate.f{n:02d}" for n in range(20))
RUNNING, SUCCESS = 3, 4
MINUTE = 60.0
# The group the first scans reach last (two a tick, in the groups' order).
LATE = 18
# The group with a cron judged for missed fires (every five minutes, 2 minutes' grace): its
# 10:00 fire has no run, and its first scan comes when that fire's grace ends.
CRON = 19


def job(g: int, j: int) -> int:
    return 3000 + 10 * g + j


@pytest.fixture
def estate(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path, jobs=()) as world:
        for g, group in enumerate(GROUPS):
            for j in range(3):
                cron = g == CRON and j == 0
                world.sx.add_job(
                    NS,
                    group,
                    job(g, j),
                    name=f"job-{g}-{j}",
                    time_type=1 if cron else 100,
                    time_expression="0 */5 * * * ?" if cron else "",
                )
        # Rules that read runs not ended yet: every group's scans are wanted.
        watch_groups(world, GROUPS, history_of=job(0, 1), stuck_after="5m", flap_window="off")
        world.raw["watch"][CRON]["missed_grace"] = "2m"
        yield world


def successes(world: World, started: float) -> None:
    """A run in each group that ended a little before now, begun at `started`."""
    now = world.clock()
    for g in range(len(GROUPS)):
        world.sx.add_instance(
            job(g, 1), status=SUCCESS, schedule_time=started, start_time=started, end_time=now - 10
        )


def announced(world: World, mark: str) -> int:
    return "\n".join(world.texts()).count(mark)


def test_the_first_ticks_spread_the_scans_and_still_tell_a_stuck_run_and_a_missed_fire(
    estate: World,
) -> None:
    # Hung since twenty minutes before the first tick, in the group scanned last.
    estate.sx.add_instance(
        job(LATE, 2), status=RUNNING, schedule_time=START - 1200, start_time=START - 1200
    )
    calls: list[int] = []
    for n in range(18):
        # The first tick at 09:57: the 10:00 fire comes before the cron group's first scan.
        now = START + (n - 3) * MINUTE
        estate.clock.set(now)
        # Runs whose start lies before the first window and whose end inside it tell the
        # window is on the end time from the first answers on.
        successes(estate, now - 1200 if n == 0 else now - 40)
        if now in (START + 300, START + 600):  # the 10:00 fire has no run
            estate.sx.add_instance(
                job(CRON, 0), status=SUCCESS, schedule_time=now, start_time=now, end_time=now + 20
            )
        before = estate.sx.calls("GetJobInstanceList")
        summary = estate.tick()
        calls.append(estate.sx.calls("GetJobInstanceList") - before)
        # Spread within ten minutes, as the scans after them are: nothing is said.
        assert summary.status == "ok", (n, summary.problems)
        if n == 9:
            # The last group's first scan came within the first ten minutes.
            assert announced(estate, "任务卡住") == 1
    # Every group's window a tick; scans (two calls) and cross-checks of two groups a
    # tick, and the cron group's scan for its fire: never every group's at once.
    assert max(calls) <= len(GROUPS) + 2 * 2 + 2 * 2 + 2, calls
    assert announced(estate, "任务卡住") == 1
    missed = [t for t in estate.texts() if "未按时运行" in t.partition("\n")[0]]
    assert len(missed) == 1 and f"job-{CRON}-0" in missed[0], missed
    assert "10:00" in missed[0]


def test_a_scan_the_quota_cuts_off_is_said_and_goes_first_next_tick(tmp_path: Path) -> None:
    with World(tmp_path, jobs=()) as world:
        group = "estate.cut"
        for j in range(3):
            world.sx.add_job(NS, group, 4000 + j, time_type=100, time_expression="")
        world.raw["watch"] = [
            {"namespace": NS, "group": group, "jobs": "all", "receivers": ["ops"],
             "stuck_after": "5m"}
        ]  # fmt: skip
        sx = {"endpoint": world.sx.url, "concurrency": 1}
        world.sx.configure(window_field="end")
        for n in range(12):
            now = START + n * MINUTE
            world.clock.set(now)
            began = now - 1200 if n == 0 else now - 40
            world.sx.add_instance(
                4000, status=SUCCESS, schedule_time=began, start_time=began, end_time=now - 10
            )
            if n == 5:  # hangs: stuck from 10:10, seen by the group's next scan
                world.sx.add_instance(4001, status=RUNNING, schedule_time=now, start_time=now)
            # At 10:10, when the scan is due, the sliding minute has one call left (as when
            # the last tick's calls are still in it): the scan's first query is made, its
            # second is not.
            quota = 1 if n == 10 else 90
            summary = world.tick(schedulerx={**sx, "max_calls_per_minute": quota})
            if n == 10:
                assert summary.status != "ok"
                [cut] = [p for p in summary.problems if "scan of running and waiting" in p]
                assert f"{NS}/{group}" in cut and "cut off" in cut, cut
                assert "goes first next tick" in cut
                assert announced(world, "任务卡住") == 0
            else:
                assert summary.status == "ok", (n, summary.problems)
        # Next tick the scan is made first, and the hung run is told.
        assert announced(world, "任务卡住") == 1


def test_an_hourly_cross_check_of_a_run_the_window_listed_costs_one_call(
    tmp_path: Path,
) -> None:
    # A group read by group queries, with nothing that wants a scan: a window a call a tick,
    # and each hour a cross-check of the job that fired last. Its run ended inside this
    # tick's window, which listed it: only the job's own listing is asked for.
    with World(tmp_path, jobs=()) as world:
        group = "estate.check"
        world.sx.add_job(NS, group, 6000, name="minutely", time_expression="0 * * * * ?")
        for j in range(1, 12):
            world.sx.add_job(NS, group, 6000 + j, time_type=100, time_expression="")
        watch_groups(world, [group], history_of=6001)
        del world.raw["shared_cause"]  # its default, as this story had
        calls: list[int] = []
        for n in range(66):
            now = START + n * MINUTE
            world.clock.set(now)
            began = now - 1200 if n == 0 else now - 60
            world.sx.add_instance(
                6000, status=SUCCESS, schedule_time=began, start_time=began, end_time=now - 20
            )
            before = world.sx.calls("GetJobInstanceList")
            assert world.tick().status == "ok", n
            calls.append(world.sx.calls("GetJobInstanceList") - before)
    # The first tick scans (the window's time is not known yet) and learns the largest
    # page; then the window, a call a tick, and the job's listing at the first check (the
    # second tick) and an hour after it.
    assert calls[1] == calls[61] == 2, calls
    assert calls[2:61] == [1] * 59 and calls[62:] == [1] * 4, calls


def test_a_first_tick_spends_its_quota_on_windows_not_on_queries_it_learns_it_needs_not(
    tmp_path: Path,
) -> None:
    # Twenty groups, each with a run failed a minute ago, and 30 calls a minute. While the
    # window's time is not known, a group's window is planned with its rejected runs asked
    # besides, without a window (they may never start); the first answers show the window is
    # on the end time, and those queries are not made. The calls kept for them read other
    # groups' windows instead: every failure is told in the first tick, not half of them.
    with World(tmp_path, jobs=()) as world:
        for g, group in enumerate(GROUPS):
            for j in range(2):
                world.sx.add_job(NS, group, job(g, j), name=f"job-{g}-{j}", time_type=100)
        watch_groups(world, GROUPS, quota=30, history_of=job(0, 1))
        now = START
        world.clock.set(now)
        successes(world, now - 1200)
        for g in range(len(GROUPS)):
            world.sx.add_instance(
                job(g, 0), status=5, schedule_time=now - 90, start_time=now - 90, end_time=now - 60
            )
        world.tick()
        told = "\n".join(world.texts())
        assert sum(f"job-{g}-0" in told for g in range(len(GROUPS))) == len(GROUPS), told
        assert world.sx.calls("GetJobInstanceList") <= 30
