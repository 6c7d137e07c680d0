"""Workflows watched as a whole (config `workflows:`), as stories on the loopback servers.

A SchedulerX workflow runs its jobs as the nodes of a workflow instance. When a node
fails, the instance fails and the nodes below it never run: the on-call engineer gets
one message naming the workflow, its instance, the failed node with its error and the
nodes that did not run, not one job alert per node; a later successful instance is its
recovery; a silence that matches the workflow holds it like a job's failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from schedulerx_alert.config import ConfigError
from tests.world import GROUP, NS, ROBOT, World

MINUTE = 60.0
EXTRACT, LOAD, REPORT = 92583, 92584, 92585
ERROR = "java.sql.SQLException: ORA-01017: invalid username/password; logon denied"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path, jobs=(EXTRACT, LOAD, REPORT)) as w:
        # The jobs are watched one by one as well: their failures must still fold.
        w.raw["workflows"] = [
            {"namespace": NS, "group": GROUP, "workflows": "all", "receivers": ["ops"]}
        ]
        # extract -> load, extract -> report: when extract fails, neither runs.
        add_etl(w, 301, ((EXTRACT, LOAD), (EXTRACT, REPORT)))
        yield w


def add_etl(world: World, workflow: int, edges: tuple[tuple[int, int], ...]) -> None:
    """The three ETL jobs in SchedulerX, and workflow `nightly-etl` over them."""
    world.sx.add_job(NS, GROUP, EXTRACT, name="extract-orders")
    world.sx.add_job(NS, GROUP, LOAD, name="load-warehouse")
    world.sx.add_job(NS, GROUP, REPORT, name="daily-report")
    world.sx.workflows.add(NS, GROUP, workflow, "nightly-etl", (EXTRACT, LOAD, REPORT), edges)


def fail_extract(world: World) -> int:
    return world.sx.workflows.run(301, status=5, nodes={EXTRACT: (5, ERROR)})


def minute(world: World, **changes: Any) -> Any:
    world.advance(MINUTE)
    return world.tick(**changes)


def test_a_failed_node_and_two_skipped_nodes_arrive_as_one_message(world: World) -> None:
    assert world.tick().status == "ok"
    wf_instance = fail_extract(world)
    summary = minute(world)

    texts = world.texts()
    assert len(texts) == 1, texts
    text = texts[0]
    assert "nightly-etl" in text and "301" in text
    assert str(wf_instance) in text
    extract_run = world.sx.workflows._instances[wf_instance].nodes[EXTRACT]
    assert "extract-orders (92583)" in text and str(extract_run) in text
    assert "ORA-01017" in text
    assert "load-warehouse (92584)" in text and "daily-report (92585)" in text
    assert "工作流失败" in text
    # The node's own failure is folded in: no job alert for it, now or later.
    assert "SchedulerX 任务失败" not in text
    assert summary.alerts_new == 1 and summary.status == "ok"
    assert summary.calls["ListWorkflowInstance"] == 1
    assert summary.calls["GetWorkflowInstance"] == 1
    minute(world)
    assert len(world.texts()) == 1


def test_nodes_marked_skipped_below_the_failed_one_did_not_run_either(world: World) -> None:
    world.tick(templates={"language": "en"})
    world.sx.workflows.run(301, status=5, nodes={EXTRACT: (5, ERROR), REPORT: (12, "")})
    minute(world, templates={"language": "en"})
    (text,) = world.texts()
    assert "(2): load-warehouse (92584), daily-report (92585)" in text


def test_the_message_in_english_says_which_nodes_did_not_run(world: World) -> None:
    world.tick(templates={"language": "en"})
    fail_extract(world)
    minute(world, templates={"language": "en"})
    (text,) = world.texts()
    assert text.startswith("### SchedulerX workflow failed: nightly-etl (301)")
    assert "**Failed node**: extract-orders (92583)" in text
    assert "**Did not run because of it** (2): load-warehouse (92584), daily-report (92585)" in text


def test_a_later_successful_instance_is_a_recovery_of_the_workflow_only(world: World) -> None:
    world.tick()
    fail_extract(world)
    minute(world)
    good = world.sx.workflows.run(301, status=4)
    summary = minute(world)
    texts = world.texts()
    assert len(texts) == 2, texts
    assert "工作流已恢复" in texts[1] and "nightly-etl" in texts[1] and str(good) in texts[1]
    # The extract job succeeding again is no recovery of its own: its failure was the
    # workflow's to announce.
    assert "任务已恢复" not in texts[1]
    assert summary.alerts_new == 1
    # A successful instance needs no DAG.
    assert "GetWorkflowInstance" not in summary.calls


def test_a_silence_matching_the_workflow_holds_it(world: World) -> None:
    world.tick()
    zone = ZoneInfo("Asia/Shanghai")
    now = world.clock()
    world.raw["silences"] = [
        {
            "match": {"job_names": ["nightly-*"], "kinds": ["workflow_failed"]},
            "start": datetime.fromtimestamp(now, zone).strftime("%Y-%m-%d %H:%M"),
            "end": datetime.fromtimestamp(now + 3600, zone).strftime("%Y-%m-%d %H:%M"),
            "comment": "warehouse migration",
        }
    ]
    fail_extract(world)
    summary = minute(world)
    assert summary.alerts_silenced == 1 and summary.alerts_sent == 0
    assert world.texts() == []


def test_a_route_by_the_workflows_name_and_kind_sends_it_to_another_group(world: World) -> None:
    dba = "dba-robot-token-0123456789"
    world.dt.add_robot(dba)
    world.raw["receivers"].append({"name": "dba", "webhook": world.dt.webhook(dba)})
    world.raw["routes"] = [
        {"match": {"job_names": ["nightly-*"], "kinds": ["workflow_failed"]}, "receivers": ["dba"]}
    ]
    world.tick()
    fail_extract(world)
    minute(world)
    assert len(world.texts()) == 1 and len(world.texts(dba)) == 1
    assert "工作流失败：nightly-etl" in world.texts(dba)[0]


def test_all_leaves_a_disabled_workflow_out_and_ids_watch_it(world: World) -> None:
    world.sx.workflows.add(NS, GROUP, 302, "paused-flow", (LOAD,), status=0)
    world.sx.workflows.run(302, status=5, nodes={LOAD: (5, "disk full")})
    summary = world.tick()
    assert summary.calls["ListWorkflowInstance"] == 1  # 301 only
    world.raw["workflows"][0]["workflows"] = [302]
    world.advance(MINUTE)
    world.sx.workflows.run(302, status=5, nodes={LOAD: (5, "disk full")})
    minute(world)
    assert any("工作流失败：paused-flow（302）" in t for t in world.texts())


def test_a_job_failure_outside_any_workflow_still_alerts_on_its_own(world: World) -> None:
    world.tick()
    world.sx.add_instance(LOAD, status=5, result="disk full", end_time=world.clock() - 5)
    minute(world)
    (text,) = world.texts()
    assert "任务失败" in text and "disk full" in text


def test_workflows_by_id_and_a_workflow_that_cannot_be_read_is_a_problem(world: World) -> None:
    world.raw["workflows"] = [
        {"namespace": NS, "group": GROUP, "workflows": [301, 999], "receivers": ["ops"]}
    ]
    summary = world.tick()
    assert summary.status == "degraded"
    assert any("workflow" in p and "999" in p for p in summary.problems), summary.problems
    fail_extract(world)
    minute(world)
    (text,) = world.texts()
    # Named by id: the name is the group's list's, as for `workflows: all`.
    assert "nightly-etl（301）" in text and "extract-orders (92583)" in text


def test_a_first_tick_keeps_old_failed_instances_as_history_without_reading_their_nodes(
    world: World,
) -> None:
    world.sx.workflows.run(
        301, status=5, nodes={EXTRACT: (5, ERROR)}, end_time=world.clock() - 3600
    )
    summary = world.tick()
    assert world.texts() == [] and summary.status == "ok"
    assert "GetWorkflowInstance" not in summary.calls
    assert summary.calls["ListWorkFlows"] == 1 and summary.calls["ListWorkflowInstance"] == 1


def test_nodes_that_cannot_be_read_still_announce_the_instance_and_say_so(world: World) -> None:
    world.tick()
    fail_extract(world)
    world.sx.fail_next("5xx", 3, action="GetWorkflowInstance")
    summary = minute(world)
    assert summary.status == "degraded"
    assert any("GetWorkflowInstance" in p and "its nodes" in p for p in summary.problems)
    texts = world.texts()
    assert any(
        "工作流失败：nightly-etl" in t and "GetWorkflowInstance 读取失败" in t for t in texts
    )
    # Not folded: the node's own failure is announced too, so nothing is lost.
    assert any("ORA-01017" in t and "任务失败" in t for t in texts)


def test_workflow_calls_share_the_one_minute_budget_across_ticks(world: World) -> None:
    world.raw["schedulerx"]["max_calls_per_minute"] = 1
    world.tick()
    fail_extract(world)
    world.advance(20)  # within the minute of the first tick's ListWorkflowInstance call
    summary = world.tick()
    assert "ListWorkflowInstance" not in summary.calls
    assert summary.status in ("degraded", "failed")
    assert any(
        "workflow read(s) failed" in p and "quota" in p and "read again next tick" in p
        for p in summary.problems
    ), summary.problems
    assert world.texts() == []
    world.advance(60)
    world.tick()
    workflow = [t for t in world.texts() if "工作流失败：nightly-etl" in t]
    assert len(workflow) == 1
    assert not any(t.startswith("### SchedulerX 任务失败") for t in world.texts())


def test_a_pending_workflow_alert_outlives_a_tick_that_cannot_list_the_workflows(
    world: World,
) -> None:
    world.tick()
    fail_extract(world)
    world.dt.set_down(True)
    assert minute(world).alerts_pending == 1
    world.dt.set_down(False)
    world.sx.fail_next("5xx", 3, action="ListWorkFlows")
    summary = minute(world)
    assert summary.alerts_sent == 1 and summary.status == "degraded"
    (text,) = world.texts()
    assert "工作流失败：nightly-etl" in text


def test_validate_refuses_a_bad_workflows_entry(world: World) -> None:
    world.raw["workflows"] = [
        {"namespace": NS, "group": GROUP, "workflows": ["etl"], "receivers": ["nobody"]},
        {"namespace": NS, "workflows": "some", "receivers": ["ops"], "extra": 1},
        {"namespace": " ", "group": GROUP, "workflows": "all", "receivers": ["ops"],
         "mention_owners": "yes"},
    ]  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        world.config()
    text = "\n".join(caught.value.problems)
    assert "workflows[0].workflows[0]: must be a workflow id" in text
    assert "workflows[0].receivers[0]: unknown receiver 'nobody'" in text
    assert "workflows[1].group: is required" in text
    assert "workflows[2].namespace: must be a non-empty string, not ' '" in text
    assert "workflows[2].mention_owners: must be true or false, not 'yes'" in text
    assert "workflows[1].workflows: must be `all` or a list of workflow ids" in text
    assert "workflows[1].extra: unknown key" in text


def test_the_sandbox_fails_a_workflow_from_its_controls(tmp_path: Path) -> None:
    import copy
    import math
    import time

    import yaml

    from tests.fakes.base import ManualClock
    from tests.sandbox import Sandbox
    from tests.test_sandbox import CONFIG, DATA

    raw = copy.deepcopy(CONFIG)
    raw["watch"] = [
        {"namespace": DATA, "group": "data.etl", "jobs": "all", "receivers": ["data-team"]}
    ]
    raw["workflows"] = [
        {"namespace": DATA, "group": "data.etl", "workflows": "all", "receivers": ["data-team"]}
    ]
    config = tmp_path / "my.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    clock = ManualClock(math.floor(time.time() / 60) * 60 + 5)
    with Sandbox(config, tmp_path / "sandbox", clock=clock) as box:
        box.start()
        assert "fail-workflow 301" in box.banner()
        assert box.tick().status == "ok"
        answer = box.control("fail-workflow", "301")
        assert answer["status"] == "failed"
        summary = box.tick()
        assert summary.status == "ok" and summary.alerts_new == 1
        [robot] = [r for r in box.robots if r.receiver == "data-team"]
        (text,) = box.dt.texts(robot.token)
        first = box.jobs[0]
        assert text.startswith("### SchedulerX workflow failed: workflow-301 (301)")
        assert f"**Failed node**: {first.name} ({first.job_id})" in text
        assert "**Did not run because of it** (2)" in text


def test_what_did_not_run_is_everything_below_a_failed_node_and_nothing_beside_it() -> None:
    from schedulerx_alert.core.workflows import WorkflowNode, WorkflowRun, workflow_key

    # a -> b -> c, and d beside them (its own root), which ran; a failed.
    a, b, c, d = (WorkflowNode(n, 100 + n, name, status) for n, name, status in (
        (1, "a", 5), (2, "b", 1), (3, "c", 12), (4, "d", 4),
    ))  # fmt: skip
    edges = ((0, 101), (101, 102), (102, 103), (0, 104))
    run = WorkflowRun(workflow_key(NS, GROUP, 7), 1, "flow", (a, b, c, d), edges)
    assert run.failed_nodes() == (a,)
    assert run.not_run() == (b, c)
    # Without edges: every node that did not run.
    assert WorkflowRun(run.workflow, 1, "flow", (a, b, c, d)).not_run() == (b, c)


def test_owners_and_logs_are_not_asked_of_a_workflow(world: World) -> None:
    world.raw["watch"] = [
        {
            "namespace": NS,
            "group": GROUP,
            "jobs": "all",
            "receivers": ["ops"],
            "mention_owners": True,
            "include_log": True,
        }
    ]
    world.tick()
    world.advance(MINUTE)
    fail_extract(world)
    summary = minute(world)
    assert summary.status == "ok", summary.problems
    texts = [t for t in world.texts() if "工作流失败：nightly-etl" in t]
    assert len(texts) == 1
    assert not any("-301" in note for note in summary.notes), summary.notes
    assert world.sx.calls("GetLog") == 0


def test_the_heartbeat_names_a_failing_workflow_as_a_workflow(tmp_path: Path) -> None:
    from tests.fakes.base import ManualClock
    from tests.test_heartbeat import at, heartbeats, tick_at

    with World(
        tmp_path / "hb", jobs=(EXTRACT, LOAD, REPORT), clock=ManualClock(at(25, 8, 30))
    ) as w:
        w.raw["heartbeat"] = {"receiver": "ops", "at": "09:00"}
        w.raw["workflows"] = [
            {"namespace": NS, "group": GROUP, "workflows": [301], "receivers": ["ops"]}
        ]
        w.sx.workflows.add(NS, GROUP, 301, "nightly-etl", (EXTRACT, LOAD), ((EXTRACT, LOAD),))
        tick_at(w, at(25, 8, 30))
        tick_at(w, at(25, 9, 0))
        w.clock.set(at(25, 10, 0))
        w.sx.workflows.run(301, status=5, nodes={EXTRACT: (5, ERROR)})
        w.tick()
        tick_at(w, at(26, 9, 0, 10))
        text = heartbeats(w)[-1]
        assert "**nightly-etl (workflow 301)**" in text, text


def test_a_workflow_message_has_silence_buttons_and_no_operations_a_jobs_has_both(
    world: World,
) -> None:
    # A silence link selects the workflow (tests/test_workflow_owners_silences.py); an
    # operation acts on a job's run, not on a workflow instance.
    world.raw["actions"] = {
        "enabled": True,
        "base_url": "https://alert.example.com/silence",
        "operations": ["retry", "mark_success"],
    }
    world.env["SCHEDULERX_ALERT_ACTION_KEYS"] = "k" * 32 + "-current-signing-key"
    world.tick()
    fail_extract(world)
    world.sx.add_instance(REPORT, status=5, result="disk full", end_time=world.clock() - 5)
    assert minute(world).status == "ok"
    cards = {("工作流" in str(m)): m["actionCard"] for m in world.dt.messages(ROBOT)}
    assert set(cards) == {True, False}
    flow, job = ([b["title"] for b in cards[k]["btns"]] for k in (True, False))
    assert flow and all(title.startswith("静默") for title in flow), flow
    assert len(job) > len(flow)  # the same silences, and the operations


def test_the_loopback_server_checks_the_workflow_calls_signatures(world: World) -> None:
    from zoneinfo import ZoneInfo

    from schedulerx_alert.sources.schedulerx import SchedulerXClient, SchedulerXError
    from schedulerx_alert.support.credentials import Credentials
    from tests.world import AK, STS

    params = {"Namespace": NS, "GroupId": GROUP, "WorkflowId": "301"}
    zone = ZoneInfo("Asia/Shanghai")
    good = SchedulerXClient(world.sx.url, "cn-hangzhou", world.credentials, zone, clock=world.clock)
    answer = good.call("ListWorkflowInstance", params)
    assert answer["Data"] == {"WfInstanceInfos": []}
    forged = Credentials(AK, "not-the-secret", STS)
    bad = SchedulerXClient(world.sx.url, "cn-hangzhou", forged, zone, clock=world.clock)
    for action in ("ListWorkFlows", "ListWorkflowInstance", "GetWorkflowInstance"):
        with pytest.raises(SchedulerXError) as refused:
            bad.call(action, {**params, "WfInstanceId": "1"})
        assert refused.value.auth or "Signature" in str(refused.value), str(refused.value)
