"""The tick that finds a group's queries refused polls that group job by job in the same
tick (issue 22's older server): a run that failed in the minute before it is announced
then, not a tick later, and so when the retry a day later is refused again. A group
whose server answers group queries, in the same config, is read once a tick as before."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from schedulerx_alert.core.polling import PER_JOB
from schedulerx_alert.core.state import State, load_state
from schedulerx_alert.tick import TickSummary
from tests.fakes.schedulerx import LEGACY_MESSAGE, BusinessError
from tests.world import GROUP, NS, START, World

OLD = "older.group"  # its server refuses group queries
OLD_JOBS = tuple(range(700, 712))
NEW_JOBS = tuple(range(800, 804))
DAY = 24 * 3600.0


def cron(job_id: int) -> str:
    """Every 5 minutes at a minute of its own, at second 30 (700: 09:55:30, 10:00:30, ...)."""
    return f"30 {job_id % 5}/5 * * * ?"


class Estate:
    """Two groups of one namespace, on a server that refuses OLD's group queries and
    answers GROUP's; each GetJobInstanceList is recorded (when, group, job id, the rest of
    its parameters)."""

    def __init__(self, root: Path, watched: tuple[str, ...] = (OLD, GROUP)) -> None:
        self.world = World(root, jobs=())
        self.asked: list[tuple[float, str, str, tuple[tuple[str, str], ...]]] = []
        sx = self.world.sx
        for group, jobs in ((OLD, OLD_JOBS), (GROUP, NEW_JOBS)):
            for job_id in jobs:
                sx.add_job(NS, group, job_id, name=f"job-{job_id}", time_expression=cron(job_id))
        self.world.raw["watch"] = [
            {"namespace": NS, "group": group, "jobs": "all", "receivers": ["ops"]}
            for group in watched
        ]
        # One message per failure, so that each is counted where it is announced.
        self.world.raw["shared_cause"] = False
        original: Callable[[dict[str, str]], Any] = sx._handlers["GetJobInstanceList"]

        def handler(params: dict[str, str]) -> Any:
            group, job = params["GroupId"], params.get("JobId", "")
            rest = tuple(sorted((k, v) for k, v in params.items() if k not in ("GroupId", "JobId")))
            self.asked.append((self.world.clock(), group, job, rest))
            if group == OLD and not job:
                raise BusinessError(LEGACY_MESSAGE)
            return original(params)

        sx._handlers["GetJobInstanceList"] = handler

    def fail(self, job_id: int, fired: float, status: int = 5) -> int:
        """A run of the job's fire at `fired` that failed 10 s later."""
        return self.world.sx.add_instance(
            job_id, status=status, result=f"boom {job_id}", schedule_time=fired,
            start_time=fired + 1, end_time=fired + 10,
        )  # fmt: skip

    def tick(self) -> TickSummary:
        summary = self.world.tick()
        assert summary.status == "ok", summary.problems
        return summary

    def state(self) -> State:
        return load_state(self.world.state_path.read_bytes())

    def mode(self, group: str) -> str:
        return self.state().sources.groups[(NS, group)].mode

    def group_queries(self, group: str, at: float) -> list[tuple[tuple[str, str], ...]]:
        return sorted(rest for t, g, job, rest in self.asked if t == at and g == group and not job)

    def polls(self, group: str, at: float) -> list[str]:
        return sorted(job for t, g, job, _ in self.asked if t == at and g == group and job)


@pytest.fixture
def estates(tmp_path: Path) -> Iterator[tuple[Estate, Estate]]:
    """Both groups watched, and (to compare with) GROUP alone, each on a server of its own."""
    both, alone = Estate(tmp_path / "both"), Estate(tmp_path / "alone", watched=(GROUP,))
    try:
        yield both, alone
    finally:
        both.world.close()
        alone.world.close()


def announced(estate: Estate, run: int) -> int:
    return sum(str(run) in text for text in estate.world.texts())


def test_a_failure_in_the_minute_the_fallback_is_found_is_announced_in_that_tick(
    estates: tuple[Estate, Estate],
) -> None:
    both, alone = estates
    # 09:59:30: job 704 fires and fails; 09:59:40: job 801 of the other group too.
    runs = [both.fail(704, START - 30), both.fail(801, START - 20)]
    alone.fail(801, START - 20)
    # 10:00: the first tick finds OLD's group queries refused, and polls its jobs.
    assert both.tick().alerts_new == 2 and alone.tick().alerts_new == 1
    assert all(announced(both, run) == 1 for run in runs)
    assert both.mode(OLD) == PER_JOB
    assert "704" in both.polls(OLD, START)
    # The other group is read as where it is watched alone: once, and its cursor alike.
    assert both.group_queries(GROUP, START) == alone.group_queries(GROUP, START)
    assert both.polls(GROUP, START) == alone.polls(GROUP, START)
    assert both.state().sources.groups[(NS, GROUP)] == alone.state().sources.groups[(NS, GROUP)]

    # Ten minutes on, a tick a minute: each failure once, in the tick after it.
    for minute in range(1, 11):
        for estate in estates:
            estate.world.advance(60)
        now = both.world.clock()
        # OLD's job that fired at second 30 of the minute before; GROUP's every third minute.
        runs.append(both.fail(700 + (minute - 1) % 5, now - 30))
        others = minute % 3 == 0
        if others:
            runs.append(both.fail(800 + minute % 4, now - 25))
            alone.fail(800 + minute % 4, now - 25)
        assert both.tick().alerts_new == 1 + others, minute
        assert alone.tick().alerts_new == others
        assert both.group_queries(GROUP, now) == alone.group_queries(GROUP, now)
        assert both.polls(GROUP, now) == alone.polls(GROUP, now)
        assert both.state().sources.groups[(NS, GROUP)] == alone.state().sources.groups[(NS, GROUP)]
    assert all(announced(both, run) == 1 for run in runs)
    assert len(both.world.texts()) == len(runs)


def test_the_retry_a_day_later_refused_again_loses_no_tick(
    estates: tuple[Estate, Estate],
) -> None:
    old, _ = estates
    old.tick()  # 10:00: group queries refused, tried again a day later
    assert old.state().sources.groups[(NS, OLD)].retry_at == START + DAY
    old.world.advance(DAY - 180)
    for _ in range(3):  # 09:57 to 09:59 the next day
        old.tick()
        old.world.advance(60)
    assert old.mode(OLD) == PER_JOB
    # 09:59:30: job 704 fires and fails; 10:00 tries group queries again, refused again.
    run = old.fail(704, START + DAY - 30)
    now = old.world.clock()
    summary = old.tick()
    assert old.group_queries(OLD, now), "group queries tried again"
    assert old.state().sources.groups[(NS, OLD)].retry_at == START + 2 * DAY
    assert summary.alerts_new == 1 and announced(old, run) == 1
    for _ in range(3):
        old.world.advance(60)
        assert old.tick().alerts_new == 0
    assert len(old.world.texts()) == 1
