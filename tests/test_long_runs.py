"""Stories of runs that end hours after they were scheduled, in groups read by group
queries: whichever time the server's window filters on, each is announced within two ticks
of its end, however long it ran (issue 22)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.schedulerx import WindowField
from tests.world import GROUP, NS, START, World

JOBS = tuple(range(800, 830))


@pytest.fixture
def group(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path, jobs=()) as world:
        for job_id in JOBS:
            world.sx.add_job(
                NS, GROUP, job_id, name=f"nightly-{job_id}", time_expression="0 0 1 * * ?"
            )
        world.raw["watch"] = [
            {"namespace": NS, "group": GROUP, "jobs": "all", "receivers": ["ops"]}
        ]
        world.raw["shared_cause"] = False
        yield world


@pytest.mark.parametrize("window_field", ["schedule", "start", "end"])
def test_runs_that_fail_hours_after_their_schedule_are_announced_within_two_ticks(
    group: World, window_field: WindowField
) -> None:
    group.sx.configure(window_field=window_field)
    # Hours: 9.5 (older than any window reaches), 5.95 (becomes so while it runs), 3 (a
    # window still reaches it), and one that still runs at the end.
    plan = ((9.5, 13), (5.95, 7), (3.0, 24), (8.0, None), (7.0, 17))  # hours ago, fails at
    runs = {
        group.sx.add_instance(800 + n, status=3, schedule_time=START - hours * 3600): (n, fails)
        for n, (hours, fails) in enumerate(plan)
    }
    failed_at: dict[int, int] = {}
    seen_at: dict[int, int] = {}
    for minute in range(0, 30):
        if minute:
            group.advance(60)
        for run, (n, fails) in runs.items():
            if fails == minute:
                group.sx.set_status(run, 5, result=f"long run {n} ran out of memory")
                failed_at[run] = minute
        summary = group.tick()
        assert summary.status == "ok", (minute, summary.problems)
        text = "\n".join(group.texts())
        for run, (n, _) in runs.items():
            if f"long run {n} ran" in text:
                seen_at.setdefault(run, minute)
    assert set(seen_at) == set(failed_at)  # the one still running is not announced
    late = {run: seen_at[run] - failed_at[run] for run in failed_at}
    assert all(0 <= ticks <= 1 for ticks in late.values()), late
    text = "\n".join(group.texts())
    for n in range(5):
        assert text.count(f"long run {n} ran") == (n != 3)


def test_long_runs_the_quota_cannot_all_follow_are_a_problem_and_followed_in_turn(
    group: World,
) -> None:
    group.sx.configure(window_field="start")
    sx = {"endpoint": group.sx.url, "max_calls_per_minute": 6}
    runs = [
        group.sx.add_instance(800 + n, status=3, schedule_time=START - (7 + n / 10) * 3600)
        for n in range(10)
    ]
    group.tick(schedulerx=sx)
    group.advance(60)
    # Ten runs older than any window, six GetJobInstance calls a minute: said, not silent.
    summary = group.tick(schedulerx=sx)
    assert summary.status == "degraded"
    [problem] = [p for p in summary.problems if "unfinished since before the window" in p]
    assert "4 of 10 run(s)" in problem and "from 7.9 h ago" in problem
    for n, run in enumerate(runs):
        group.sx.set_status(run, 5, result=f"long run {n} failed")
    ticks = 0
    while any(f"long run {n} failed" not in "\n".join(group.texts()) for n in range(10)):
        group.advance(60)
        ticks += 1
        group.tick(schedulerx=sx)
        assert ticks <= 3, "the runs left out are not followed in turn"
    text = "\n".join(group.texts())
    assert [text.count(f"long run {n} failed") for n in range(10)] == [1] * 10
    group.advance(60)
    assert group.tick(schedulerx=sx).status == "ok"
