"""Workflows watched as a whole, issue 23's remaining promises, as stories on the loopback
servers: a node failing while its instance still runs is no job alert of its own; the
workflow message mentions its failed nodes' owners; a workflow is silenced from the chat
and the command line like a job.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_workflows import ERROR, EXTRACT, LOAD, MINUTE, REPORT
from tests.world import GROUP, NS, ROBOT, World

# extract and load side by side, report below both: when extract fails, load still runs.
BRANCHES = 303


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path, jobs=(EXTRACT, LOAD, REPORT)) as w:
        # The jobs are watched one by one as well: their failures must fold all the same.
        w.raw["workflows"] = [
            {"namespace": NS, "group": GROUP, "workflows": [BRANCHES], "receivers": ["ops"]}
        ]
        w.sx.add_job(NS, GROUP, EXTRACT, name="extract-orders")
        w.sx.add_job(NS, GROUP, LOAD, name="load-warehouse")
        w.sx.add_job(NS, GROUP, REPORT, name="daily-report")
        w.sx.workflows.add(
            NS,
            GROUP,
            BRANCHES,
            "nightly-etl",
            (EXTRACT, LOAD, REPORT),
            ((EXTRACT, REPORT), (LOAD, REPORT)),
        )
        yield w


def minute(world: World, **changes: Any) -> Any:
    world.advance(MINUTE)
    return world.tick(**changes)


def fail_extract_while_load_runs(world: World) -> int:
    return world.sx.workflows.run(BRANCHES, status=3, nodes={EXTRACT: (5, ERROR), LOAD: (3, "")})


# -- no duplicate from a node -------------------------------------------------------------


def test_a_node_failing_while_another_branch_runs_is_announced_once_by_its_workflow(
    world: World,
) -> None:
    assert world.tick().status == "ok"
    wf_instance = fail_extract_while_load_runs(world)
    # The load branch runs on for several ticks: the extract job's failure waits for its
    # workflow's message, and the DAG is read once, when the failure is new.
    reads = 0
    for _ in range(4):
        summary = minute(world)
        assert summary.status == "ok", summary.problems
        assert world.texts() == []
        reads += summary.calls.get("GetWorkflowInstance", 0)
    assert reads == 1
    world.sx.set_status(world.sx.workflows.node(wf_instance, LOAD), 4)
    world.sx.workflows.finish(wf_instance, 5)
    summary = minute(world)
    (text,) = world.texts()
    assert "工作流失败：nightly-etl（303）" in text and str(wf_instance) in text
    assert "extract-orders (92583)" in text and "ORA-01017" in text
    assert "daily-report (92585)" in text  # it never ran
    assert summary.alerts_new == 1
    minute(world)
    minute(world)
    assert len(world.texts()) == 1
    assert not any("任务失败" in t for t in world.texts())


def test_a_node_of_a_workflow_not_watched_alerts_as_a_job(world: World) -> None:
    world.sx.workflows.add(NS, GROUP, 304, "adhoc", (LOAD,))
    world.tick()
    world.sx.workflows.run(304, status=3, nodes={LOAD: (5, "disk full")})
    summary = minute(world)
    (text,) = world.texts()
    assert "任务失败：92584" in text and "disk full" in text
    # Only the watched workflow's instances are read, and it has none running.
    assert "GetWorkflowInstance" not in summary.calls


def test_a_running_instance_whose_nodes_cannot_be_read_lets_the_job_alert_go(
    world: World,
) -> None:
    world.tick()
    fail_extract_while_load_runs(world)
    world.sx.fail_next("5xx", 3, action="GetWorkflowInstance")
    summary = minute(world)
    assert summary.status == "degraded"
    assert any("its nodes" in p for p in summary.problems), summary.problems
    # Nothing is held back on a guess: the job's failure goes on its own.
    (text,) = world.texts()
    assert "任务失败" in text and "ORA-01017" in text


# -- owners -------------------------------------------------------------------------------

OWNER, OTHER = "13800001111", "13900002222"


def with_owners(world: World) -> None:
    world.sx.add_job(
        NS, GROUP, EXTRACT, name="extract-orders",
        contacts=[{"UserName": "Li Lei", "UserPhone": "138-0000-1111"}],
    )  # fmt: skip
    world.sx.add_job(
        NS, GROUP, LOAD, name="load-warehouse",
        contacts=[{"UserName": "Han Meimei", "UserPhone": OTHER}],
    )  # fmt: skip


def fail_extract(world: World, error: str = ERROR) -> int:
    return world.sx.workflows.run(BRANCHES, status=5, nodes={EXTRACT: (5, error), LOAD: (4, "")})


def test_the_workflow_message_mentions_the_failed_nodes_owners_never_its_text(
    world: World,
) -> None:
    from tests.fakes.dingtalk import notified

    with_owners(world)
    world.raw["workflows"][0]["mention_owners"] = True
    world.tick()
    fail_extract(world, ERROR + " ping @13800009999 and @all")
    summary = minute(world)
    assert summary.status == "ok", summary.problems
    (message,) = world.dt.messages(ROBOT)
    assert "工作流失败：nightly-etl" in str(message)
    # extract-orders failed: its contact is mentioned; load-warehouse ran fine: not its.
    assert notified(message) == ([OWNER], [])
    assert f"@{OWNER}" in world.texts()[0] and OTHER not in world.texts()[0]
    assert "@13800009999" not in world.texts()[0]
    world.sx.workflows.run(BRANCHES, status=4)
    minute(world)
    fail_extract(world)
    minute(world)
    # The recovery between them paged no one.
    assert [notified(m)[0] for m in world.dt.messages(ROBOT)] == [[OWNER], [], [OWNER]]


def test_owners_follow_the_top_level_default_unless_the_entry_says_otherwise(
    world: World,
) -> None:
    from tests.fakes.dingtalk import notified

    with_owners(world)
    world.raw["mention_owners"] = True
    world.tick()
    fail_extract(world)
    minute(world)
    assert notified(world.dt.messages(ROBOT)[-1]) == ([OWNER], [])
    world.raw["workflows"][0]["mention_owners"] = False
    fail_extract(world)
    minute(world)
    assert len(world.dt.messages(ROBOT)) == 2
    assert notified(world.dt.messages(ROBOT)[-1]) == ([], [])


def test_a_failed_node_whose_job_is_not_watched_still_has_its_owners_mentioned(
    world: World,
) -> None:
    from tests.fakes.dingtalk import notified

    with_owners(world)
    world.raw["watch"][0]["jobs"] = [REPORT]
    world.raw["schedulerx"]["query"] = "every_job"  # no job list is read
    world.raw["workflows"][0]["mention_owners"] = True
    world.tick()
    fail_extract(world)
    summary = minute(world)
    assert summary.status == "ok", summary.problems
    assert summary.calls["GetJobInfo"] == 1
    assert notified(world.dt.messages(ROBOT)[-1]) == ([OWNER], [])
