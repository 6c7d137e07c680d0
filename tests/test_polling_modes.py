"""Where a server cannot answer group queries, the group is polled job by job, after each
job's fire times; the fallback is detected, not configured, and undone a day later."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from schedulerx_alert.core.polling import GROUP_QUERIES, PER_JOB
from schedulerx_alert.core.state import State, load_state
from tests.fakes.schedulerx import LegacyMode
from tests.world import GROUP, NS, START, World

# Thirty hourly jobs, each at a minute of its own (500 fires at :20, ..., 529 at :49).
JOBS = tuple(range(500, 530))
HOUR = 3600.0


def minute_of(job_id: int) -> int:
    return job_id % 60


@pytest.fixture
def group(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path, jobs=()) as world:
        for job_id in JOBS:
            world.sx.add_job(
                NS, GROUP, job_id, name=f"hourly-{job_id}",
                time_expression=f"0 {minute_of(job_id)} * * * ?",
            )  # fmt: skip
            # Each job's last run (09:20 .. 09:49) succeeded.
            fired = START - HOUR + 60 * (minute_of(job_id) - 0)
            world.sx.add_instance(
                job_id, status=4, schedule_time=fired, start_time=fired + 1, end_time=fired + 30
            )
        world.raw["watch"] = [
            {"namespace": NS, "group": GROUP, "jobs": "all", "receivers": ["ops"]}
        ]
        yield world


def state_of(world: World) -> State:
    return load_state(world.state_path.read_bytes())


def mode_of(world: World) -> str:
    return state_of(world).sources.groups[(NS, GROUP)].mode


@pytest.mark.parametrize("legacy", ["missing_param", "refuse", "ignore_filters", "empty"])
def test_a_server_that_cannot_answer_group_queries_gets_per_job_polls_and_a_retry_a_day_later(
    group: World, legacy: LegacyMode
) -> None:
    group.sx.configure(legacy=legacy)
    failed = group.sx.add_instance(507, status=5, result="boom", schedule_time=START - 30)
    announced = 0
    for _ in range(4):
        summary = group.tick()
        announced += summary.alerts_new
        assert summary.status == "ok", summary.problems
        group.advance(60)
    # Found out within the first ticks, without being told; the failure still announced.
    assert mode_of(group) == PER_JOB and announced == 1
    assert str(failed) in group.texts()[0]
    reason = state_of(group).sources.groups[(NS, GROUP)].reason
    assert reason
    # Polled job by job after each fire: 512 fires at 10:32 and fails at once; it is
    # announced in that tick, and the ticks cost a few calls each, not thirty.
    calls = []
    while group.clock() < START + 40 * 60:
        if group.clock() == START + 32 * 60:
            late = group.sx.add_instance(512, status=5, result="late", schedule_time=group.clock())
        before = group.sx.calls("GetJobInstanceList")
        summary = group.tick()
        calls.append(group.sx.calls("GetJobInstanceList") - before)
        if group.clock() == START + 32 * 60:
            assert summary.alerts_new == 1 and str(late) in group.texts()[-1]
        group.advance(60)
    assert sum(calls[10:]) / len(calls[10:]) < 5
    # A day later group queries are tried again; the server answers them now.
    group.sx.configure(legacy=None)
    group.advance(24 * HOUR)
    assert group.tick().status == "ok"
    assert mode_of(group) == GROUP_QUERIES


def per_job(world: World) -> None:
    world.raw["schedulerx"] = {
        "endpoint": world.sx.url,
        "query": "per_job",
        "sweep_interval": "15m",
    }


def test_per_job_polls_follow_fire_times_unfinished_runs_and_a_sweep(group: World) -> None:
    per_job(group)
    group.sx.add_job(NS, GROUP, 900, name="by-api", time_type=100, time_expression="")
    polled: dict[int, list[float]] = {}
    original = group.sx._get_job_instance_list

    def spy(params: dict[str, str]) -> object:
        polled.setdefault(int(params["JobId"]), []).append(group.clock())
        return original(params)

    group.sx._handlers["GetJobInstanceList"] = spy  # type: ignore[assignment]
    by_id: dict[int, list[float]] = {}
    one = group.sx._get_job_instance

    def spy_one(params: dict[str, str]) -> object:
        by_id.setdefault(int(params["JobId"]), []).append(group.clock())
        return one(params)

    group.sx._handlers["GetJobInstance"] = spy_one  # type: ignore[assignment]
    long_run = None
    for minute in range(60):
        if minute == 21:  # 501 fired at 10:21 and runs for eight minutes, then fails
            long_run = group.sx.add_instance(501, status=3, schedule_time=group.clock())
        if minute == 29 and long_run is not None:
            group.sx.set_status(long_run, 5, result="after eight minutes")
        if minute == 40:  # someone runs the API job by hand; it fails at once
            group.sx.add_instance(900, status=5, result="manual run failed", trigger_type=4)
        summary = group.tick()
        assert summary.status == "ok", summary.problems
        if minute == 29:
            assert summary.alerts_new == 1  # the tick after it ended
        group.advance(60)
    text = "\n".join(group.texts())
    assert "after eight minutes" in text and "manual run failed" in text
    # Each scheduled job was polled right after its fire (10:20 .. 10:49) ...
    for job_id in JOBS:
        fire = START + 60 * minute_of(job_id)
        assert any(fire <= t < fire + 60 for t in polled[job_id]), job_id
    # ... 501 every tick while its run was unfinished: listed after its fire, then that
    # run read by id (GetJobInstance, a quota of its own) ...
    during = [t for t in (*polled[501], *by_id[501]) if START + 21 * 60 <= t <= START + 29 * 60]
    assert len(during) >= 8
    assert len([t for t in by_id[501] if START + 22 * 60 <= t <= START + 29 * 60]) >= 7
    # ... and every job, the API job too, at least every sweep interval.
    for job_id in (*JOBS, 900):
        times = [START - 1, *polled[job_id], START + 59 * 60]
        assert max(b - a for a, b in itertools.pairwise(times)) <= 16 * 60, job_id
    # Far fewer calls than one per job per tick.
    assert sum(len(v) for v in polled.values()) < 60 * len(JOBS) / 5


def test_a_first_tick_that_cannot_poll_every_discovered_job_counts_them_all(group: World) -> None:
    """Thirty jobs found by their group's job list, a quota of ten calls a minute: the
    problem line counts the thirty the first tick learned of, not the none it began with."""
    group.raw["schedulerx"] = {**group.raw.get("schedulerx", {}), "query": "every_job"}
    group.raw["schedulerx"]["max_calls_per_minute"] = 10
    summary = group.tick()
    assert summary.status == "degraded" and summary.jobs == len(JOBS)
    [line] = [p for p in summary.problems if "not polled this tick" in p]
    assert f"of {len(JOBS)} job(s) not polled this tick" in line, line
