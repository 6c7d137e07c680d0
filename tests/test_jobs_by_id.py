"""Jobs named by id get what their rules need from SchedulerX (GetJobInfo): a cron's fire
times for missed runs, the job's own timeout for stuck runs, in every mode the function can
poll them; and when that cannot be read, the tick says so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from schedulerx_alert.core.state import load_state
from tests.world import GROUP, NS, START, World


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path, jobs=()) as world:
        # Every five minutes; its own timeout alarm at ten.
        world.sx.add_job(
            NS, GROUP, 92583, name="etl-daily", monitor={"TimeoutEnable": True, "Timeout": 600}
        )
        world.sx.add_job(NS, GROUP, 92584, name="report")
        world.raw["watch"][0]["jobs"] = [92583, 92584]
        yield world


def minutes(world: World, count: int, **changes: Any) -> list[Any]:
    summaries = []
    for _ in range(count):
        summary = world.tick(**changes)
        assert summary.status == "ok", summary.problems
        summaries.append(summary)
        world.advance(60)
    return summaries


@pytest.mark.parametrize("query", ["auto", "every_job"])
def test_a_job_named_by_id_that_stops_running_is_called_missed(world: World, query: str) -> None:
    world.raw["watch"][0]["missed_grace"] = "3m"
    world.raw["schedulerx"]["query"] = query
    # 92584 runs at each fire; 92583 never runs at all.
    for fire in range(0, 30, 5):
        world.sx.add_instance(
            92584, status=4, schedule_time=START + fire * 60, end_time=START + fire * 60 + 5
        )
    minutes(world, 20)
    texts = world.texts()
    assert texts and all(t.startswith("### SchedulerX 任务未按时运行：92583") for t in texts)
    # The schedule is read once and kept, not asked for every tick.
    assert world.sx.calls("GetJobInfo") <= 2 * 3  # both jobs, once per discovery_interval
    catalog = load_state(world.state_path.read_bytes()).catalog
    assert {k.job_id: i.time_expression for k, i in catalog.items()} == {
        92583: "0 */5 * * * ?",
        92584: "0 */5 * * * ?",
    }


def test_a_job_named_by_id_is_stuck_after_its_own_timeout(world: World) -> None:
    world.sx.add_instance(92583, status=3, schedule_time=START, start_time=START)
    minutes(world, 9)
    assert world.texts() == []
    minutes(world, 3)
    [stuck] = world.texts()
    assert stuck.startswith("### SchedulerX 任务卡住：92583")


def test_a_small_group_of_ids_is_still_polled_every_tick(world: World) -> None:
    minutes(world, 5)
    assert world.sx.calls("GetJobInstanceList") == 2 * 5


def test_a_schedule_that_cannot_be_read_is_a_problem_not_silence(world: World) -> None:
    world.raw["watch"][0]["missed_grace"] = "3m"
    world.sx.fail_next("5xx", 3 * 4, action="GetJobInfo", job_id=92583)
    for _ in range(4):
        summary = world.tick()
        assert summary.status == "degraded"
        [problem] = summary.problems
        assert "1 job(s) named by id have no schedule" in problem and "92583" in problem
        world.advance(60)
    # Once read, a failed refresh later is a note: the entry kept still serves.
    assert world.tick().status == "ok"
    world.advance(11 * 60)
    world.sx.fail_next("5xx", 3, action="GetJobInfo", job_id=92583)
    summary = world.tick()
    assert summary.status == "ok", summary.problems
    assert any("92583" in n and "not refreshed" in n for n in summary.notes), summary.notes


def test_a_large_group_of_ids_whose_job_list_fails_reads_each_job(world: World) -> None:
    ids = [92583, 92584, *range(93000, 93010)]
    for job_id in ids[2:]:
        world.sx.add_job(NS, GROUP, job_id, name=f"other-{job_id}", time_type=100)
    world.raw["watch"][0].update(jobs=ids, missed_grace="3m")
    # Polled one by one, by their fire times: a larger group than SMALL_GROUP has its list
    # read for them. (Under group queries, whether rules without a new run run at all is
    # the rules' matter, not this one's.)
    world.raw["schedulerx"]["query"] = "per_job"
    # ListJobs is not allowed for the function's role: the list is only a help here.
    world.sx.fail_next(
        "success_false", 1000, action="ListJobs", code="Forbidden.RAM", message="denied"
    )
    for fire in range(0, 30, 5):
        world.sx.add_instance(
            92584, status=4, schedule_time=START + fire * 60, end_time=START + fire * 60 + 5
        )
    minutes(world, 20)
    texts = world.texts()
    assert texts and all("任务未按时运行：etl-daily (92583)" in text for text in texts)
    assert world.sx.calls("GetJobInfo") == len(ids)
