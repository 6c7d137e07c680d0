"""One answer listing thousands of runs of a job: at most MAX_RUNS_PER_JOB are kept (its
failed and unfinished runs first, then the newest), and what is left out is reported.

The answers are written by the loopback SchedulerX (`rewrite_answers`): the fake's own
run of the job, copied into as many entries as the story needs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from schedulerx_alert.core.state import load_state
from schedulerx_alert.sources.listing import (
    MAX_ENTRIES_PER_ANSWER,
    MAX_RUNS_PER_JOB,
    parse_group_listing,
)
from tests.world import World

JOB = 92583
FIRST = 5_000_000
ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path) as w:
        yield w


def listing(total: int, status: Callable[[int], int]) -> Callable[[dict[str, Any]], str]:
    """An answer of `total` runs of the job, run n (oldest first) in `status(n)`."""

    def edit(body: dict[str, Any]) -> str:
        [template] = body["Data"]["JobInstanceDetails"]
        body["Data"]["JobInstanceDetails"] = [
            {**template, "InstanceId": FIRST + n, "Status": status(n)} for n in range(total)
        ]
        return json.dumps(body)

    return edit


def records(world: World) -> dict[int, Any]:
    state = load_state(world.state_path.read_bytes())
    [record] = [r for key, r in state.jobs.items() if key.job_id == JOB]
    return record.instances


def test_twenty_thousand_runs_keep_the_newest_and_the_failure_among_them(world: World) -> None:
    world.sx.add_instance(JOB, status=4)
    failed = 700  # an old run among them: kept, and announced
    world.sx.rewrite_answers(JOB, listing(20_000, lambda n: 5 if n == failed else 4))
    summary = world.tick()
    # Announced (and, the newest run having ended well, its recovery with it).
    assert summary.alerts_sent == 2 and str(FIRST + failed) in world.texts()[0]
    kept = records(world)
    assert len(kept) == MAX_RUNS_PER_JOB
    assert FIRST + failed in kept and FIRST + 19_999 in kept and FIRST + 19_801 in kept
    assert FIRST + 19_800 not in kept
    [problem] = summary.entry_problems
    assert problem["outcome"] == "cut" and problem["field"] == "JobInstanceDetails"
    assert problem["reason"].startswith(
        f"19800 of 20000 runs left out, over the {MAX_RUNS_PER_JOB} read per job and answer"
    )
    # Only runs that ended well were left out: nothing the monitor should see went unseen.
    assert summary.status == "ok"
    world.advance(60)
    again = world.tick()
    assert again.alerts_sent == 0 and len(records(world)) <= 2 * MAX_RUNS_PER_JOB


def test_failed_and_unfinished_runs_over_the_cap_are_left_out_loudly(world: World) -> None:
    world.sx.add_instance(JOB, status=4)
    # 150 running, 150 failed, 1,000 that ended well: 100 of the failed ones do not fit.
    statuses = [3] * 150 + [5] * 150 + [4] * 1000
    world.sx.rewrite_answers(JOB, listing(len(statuses), statuses.__getitem__))
    summary = world.tick()
    assert summary.status == "degraded"
    [problem] = summary.entry_problems
    assert problem["outcome"] == "skipped"
    assert problem["reason"].startswith("1100 of 1300 runs left out")
    assert problem["reason"].endswith("; 100 of them failed or unfinished, and are not looked at")
    assert any("left out" in line and "failed or unfinished" in line for line in summary.problems)
    kept = records(world)
    assert len(kept) == MAX_RUNS_PER_JOB
    # The newest of them are kept: the failed runs (listed after the running ones) first.
    assert all(FIRST + n in kept for n in range(100, 300))
    assert FIRST + 99 not in kept and FIRST + 1299 not in kept


def test_a_group_answer_over_its_cap_reads_the_failures_and_the_newest() -> None:
    # A group query's page, as a server that ignores PageSize might answer it.
    ok = {"Status": 4, "EndTime": "2026-11-25 10:00:00"}
    entries = [
        {**ok, "InstanceId": FIRST + n, "JobId": 100 + n % 50, "Status": 5 if n == 7 else 4}
        for n in range(MAX_ENTRIES_PER_ANSWER + 500)
    ]
    read = parse_group_listing("ns", "g", {"Data": {"JobInstanceDetails": entries}}, ZONE)
    runs = {i.instance_id for listing in read.jobs.values() for i in listing.instances}
    assert len(runs) == MAX_ENTRIES_PER_ANSWER and read.entries == len(entries)
    assert FIRST + 7 in runs and FIRST + 500 not in runs and FIRST + 501 in runs
    [problem] = read.problems
    assert (problem.job.job_id, problem.outcome) == (0, "cut")
    assert problem.reason.startswith(
        f"500 of {len(entries)} runs left out, over the {MAX_ENTRIES_PER_ANSWER} read per answer"
    )
