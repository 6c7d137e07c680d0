"""Workflows watched as a whole, issue 23's remaining promises, as stories on the loopback
servers: a node failing while its instance still runs is no job alert of its own; the
workflow message mentions its failed nodes' owners; a workflow is silenced from the chat
and the command line like a job.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from schedulerx_alert.core.silence import Matcher, Subject, parse_silence
from schedulerx_alert.links.serve import serve
from schedulerx_alert.storage.silence_book import SilenceBook
from schedulerx_alert.storage.store import open_store
from tests.fakes.base import ManualClock
from tests.fakes.dingtalk import notified
from tests.test_actions import answer, context, fc_http_event, form_of
from tests.test_heartbeat import at, heartbeats, make_world, tick_at
from tests.test_silence_stories import HOUR, cli, local, tick, write_config
from tests.test_workflows import ERROR, EXTRACT, LOAD, MINUTE, REPORT, add_etl, minute
from tests.world import AK, GROUP, NS, ROBOT, SK, STS, World

# extract and load side by side, report below both: when extract fails, load still runs.
BRANCHES = 303


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path, jobs=(EXTRACT, LOAD, REPORT)) as w:
        # The jobs are watched one by one as well: their failures must fold all the same.
        w.raw["workflows"] = [
            {"namespace": NS, "group": GROUP, "workflows": [BRANCHES], "receivers": ["ops"]}
        ]
        add_etl(w, BRANCHES, ((EXTRACT, REPORT), (LOAD, REPORT)))
        yield w


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


# -- silences -----------------------------------------------------------------------------

KEYS = "s" * 40 + "-signing-key-for-the-silence-links"


def oss_world(tmp_path: Path) -> World:
    """The fixture's world with its state in OSS and the real time (as `silence add` and
    the HTTP trigger stamp it), in English."""
    clock = ManualClock(time.time())
    world = World(tmp_path, jobs=(EXTRACT, LOAD, REPORT), state="oss", clock=clock)
    world.raw["templates"] = {"language": "en"}
    world.raw["workflows"] = [
        {"namespace": NS, "group": GROUP, "workflows": [BRANCHES], "receivers": ["ops"]}
    ]
    world.sx.add_job(NS, GROUP, EXTRACT, name="extract-orders")
    world.sx.workflows.add(
        NS, GROUP, BRANCHES, "nightly-etl", (EXTRACT, LOAD, REPORT),
        ((EXTRACT, REPORT), (LOAD, REPORT)),
    )  # fmt: skip
    return world


def test_a_workflow_silenced_from_its_messages_button_holds_its_failures_until_it_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"SCHEDULERX_ALERT_ACTION_KEYS": KEYS}
    with oss_world(tmp_path) as world:
        world.raw["actions"] = {
            "enabled": True,
            "base_url": "http://127.0.0.1:9/silence",
            "operations": ["retry"],
        }
        path = tmp_path / "config.yaml"
        write_config(world, path)
        monkeypatch.setenv("SCHEDULERX_ALERT_CONFIG", str(path))
        monkeypatch.setenv("SCHEDULERX_ALERT_ACTION_KEYS", KEYS)
        tick(world, env)
        first = fail_extract(world)
        world.advance(MINUTE)
        assert tick(world, env).alerts_sent == 1
        (card,) = world.dt.messages(ROBOT)
        assert card["msgtype"] == "actionCard" and "nightly-etl" in card["actionCard"]["text"]
        # Its silence buttons only: an operation acts on a job's run, not on an instance.
        titles = [b["title"] for b in card["actionCard"]["btns"]]
        assert titles and all(t.startswith("Silence") for t in titles), titles
        url = card["actionCard"]["btns"][0]["actionURL"]

        opened = answer(serve(fc_http_event(url), context(), tmp_path, world.clock))
        assert opened["statusCode"] == 200
        assert "Silence workflow nightly-etl (303)?" in opened["body"]
        assert "Workflow" in opened["body"]
        fields = form_of(opened["body"]).fields
        posted = answer(serve(fc_http_event(url, "POST", fields), context(), tmp_path, world.clock))
        assert posted["statusCode"] == 200
        assert "Silenced workflow nightly-etl (303)" in posted["body"]
        assert "Alerts of workflow nightly-etl (303) are silenced" in posted["body"]
        config = world.config()
        store, key = open_store(
            config.state.url, config.state.endpoint, config.region, world.credentials
        )
        (silence,) = SilenceBook(store, key).read().silences
        assert silence.matcher.workflow_ids == {BRANCHES} and not silence.matcher.job_ids
        assert silence.comment == f"from a DingTalk alert's button (workflow_failed run {first})"

        # The workflow's next failure is held and counted, a job's own failure still pages.
        world.advance(MINUTE)
        fail_extract(world)
        world.sx.add_instance(REPORT, status=5, result="disk full", end_time=world.clock() - 5)
        held = tick(world, env)
        assert (held.alerts_new, held.alerts_sent, held.alerts_silenced) == (1, 1, 1)
        assert held.status == "ok", held.problems
        assert "disk full" in str(world.dt.messages(ROBOT)[-1])
        assert len(world.dt.messages(ROBOT)) == 2

        world.advance(HOUR)  # the silence the button made is over: one digest names it
        after = tick(world, env)
        assert after.messages == 1
        text = world.dt.messages(ROBOT)[-1]["markdown"]["text"]
        assert "1 alert(s) held back while silenced" in text
        assert "**nightly-etl (workflow 303)** workflow failed ×1" in text
        assert "silence 1: from a DingTalk alert" in text


def test_silence_add_list_and_expire_name_a_workflow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (
        ("USER", "alice"),
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", AK),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SK),
        ("ALIBABA_CLOUD_SECURITY_TOKEN", STS),
    ):
        monkeypatch.setenv(name, value)
    with oss_world(tmp_path) as world:
        config = write_config(world, tmp_path / "config.yaml")
        tick(world)
        code, out, err = cli(
            capsys, "silence", "add", "-c", config, "--workflow", str(BRANCHES), "--for", "2h",
            "--why", "rebuilding the warehouse",
        )  # fmt: skip
        assert code == 0 and out.startswith("silence 1 added: workflow=303 until"), out
        assert err == ""  # the config watches it
        code, _, err = cli(
            capsys, "silence", "add", "-c", config, "--workflow", "999", "--for", "1h",
            "--why", "not ours",
        )  # fmt: skip
        assert code == 0 and "workflow 999 is not in the config's workflows list" in err
        code, _, err = cli(
            capsys, "silence", "add", "-c", config, "--workflow", "0", "--for", "1h", "--why", "x"
        )
        assert code == 2 and "--workflow: workflow ids are positive integers, not 0" in err

        world.advance(MINUTE)
        fail_extract(world)
        held = tick(world)
        assert (held.alerts_sent, held.alerts_silenced) == (0, 1)
        assert world.texts() == []

        code, out, _ = cli(
            capsys, "silence", "list", "-c", config, "--workflow", str(BRANCHES), "--json"
        )
        rows = json.loads(out)
        assert code == 0 and [(r["id"], r["match"]) for r in rows] == [("1", {"workflows": [303]})]
        code, out, _ = cli(capsys, "silence", "list", "-c", config)
        assert "workflow=303" in out and "workflow=999" in out

        code, out, _ = cli(
            capsys, "silence", "expire", "-c", config, "--workflow", str(BRANCHES), "--who", "bob"
        )
        assert code == 0 and out.startswith("silence 1 expired by bob (workflow=303)"), out
        code, _, err = cli(capsys, "silence", "expire", "-c", config, "--workflow", str(BRANCHES))
        assert code == 2 and "no silence of workflow 303 in force" in err

        world.advance(MINUTE)
        after = tick(world)
        assert after.messages == 1  # the digest of what it held
        assert "**nightly-etl (workflow 303)** workflow failed ×1" in world.texts()[-1]
        world.advance(MINUTE)
        fail_extract(world)
        assert tick(world).alerts_sent == 1  # over: the workflow pages again


def test_a_book_written_before_workflows_reads_as_it_did_and_a_workflow_record_round_trips() -> (
    None
):
    old = {"id": "1", "match": {"jobs": [EXTRACT]}, "start": 1.0, "end": 2.0}
    problems: list[str] = []
    silence = parse_silence(old, "book", problems)
    assert problems == [] and silence is not None
    assert silence.matcher == Matcher(job_ids=frozenset({EXTRACT}))
    new = Matcher(group=GROUP, workflow_ids=frozenset({BRANCHES}))
    again = parse_silence({**old, "match": new.to_dict()}, "book", problems)
    assert problems == [] and again is not None and again.matcher == new
    # A workflow's alert is about its key, the id negated: a job id never matches it.
    workflow = Subject(NS, GROUP, -BRANCHES, "nightly-etl", "workflow_failed")
    job = Subject(NS, GROUP, BRANCHES, "job-303", "failed")
    assert new.matches(workflow) and not new.matches(job)
    assert not Matcher(job_ids=frozenset({BRANCHES})).matches(workflow)
    assert new.mismatch(replace(workflow, job_id=-1)) == (
        "job 'nightly-etl' (workflow 1) is not workflow 303"
    )


def test_the_heartbeat_counts_what_a_workflow_silence_held(tmp_path: Path) -> None:
    with make_world(tmp_path, at(25, 8, 0), jobs=(EXTRACT, LOAD, REPORT)) as world:
        world.raw["workflows"] = [
            {"namespace": NS, "group": GROUP, "workflows": [BRANCHES], "receivers": ["ops"]}
        ]
        world.sx.workflows.add(NS, GROUP, BRANCHES, "nightly-etl", (EXTRACT, LOAD))
        world.raw["silences"] = [
            {
                "match": {"workflows": [BRANCHES]},
                "start": local(at(25, 8, 0)),
                "end": local(at(26, 18, 0)),
                "comment": "warehouse rebuild",
            }
        ]
        tick_at(world, at(25, 8, 0))
        tick_at(world, at(25, 9, 0))
        for hour in (10, 11):
            world.clock.set(at(25, hour, 5))
            world.sx.workflows.run(BRANCHES, status=5, nodes={EXTRACT: (5, ERROR)})
            assert world.tick().alerts_silenced == 1
        tick_at(world, at(26, 9, 0, 5))
        day = heartbeats(world)[-1]
        assert "- **静默**：1 条生效中，24 小时内拦截告警 2 条" in day, day
        assert any(line.startswith("- workflow=303") for line in day.splitlines()), day
        assert not any("工作流失败" in t for t in world.texts())


def test_a_workflow_silence_is_written_as_version_2_and_a_book_without_one_as_before(
    tmp_path: Path,
) -> None:
    # A version that knows no workflows reads version 1 as it always did, and leaves what
    # is newer alone (tests/test_silence_book.py) rather than drop the workflow's silence.
    from schedulerx_alert.storage.store import FileStateStore

    store = FileStateStore(tmp_path)
    book = SilenceBook(store, "state.json")
    now = 1_790_000_000.0
    job = book.add(Matcher(job_ids=frozenset({EXTRACT})), now, now + 3600, "a job", "alice", now)
    flow = Matcher(workflow_ids=frozenset({BRANCHES}))
    workflow = book.add(flow, now, now + 3600, "a workflow", "alice", now)

    def version(key: str) -> Any:
        return json.loads(store.read(key) or b"")["v"]

    assert [version(book.record_key(n)) for n in (1, 2)] == [1, 2]
    view = book.read()
    assert view.problems == () and [s.matcher for s in view.silences] == [job.matcher, flow]
    assert book.compact(now).changed and version(book.snapshot_key) == 2
    assert [s.id for s in book.read().silences] == [job.id, workflow.id]
    # Once the workflow's silence is let go, the snapshot is version 1 again.
    book.expire(workflow.id, "bob", now + 60)
    assert book.compact(now + 60, keep_ended=0).changed
    assert version(book.snapshot_key) == 1
    assert [s.id for s in book.read().silences] == [job.id]


def test_a_workflows_link_carries_the_workflow_and_nothing_else_reads_as_one() -> None:
    from schedulerx_alert.delivery.links import LinkTarget, SilenceRequest

    target = LinkTarget(NS, GROUP, -BRANCHES, "nightly-etl", "workflow_failed", 18)
    wanted = SilenceRequest(target, "0123456789abcdef", seconds=3600)
    wire = wanted.to_wire()
    assert wire["w"] == BRANCHES and "j" not in wire
    assert SilenceRequest.from_wire(wire) == wanted
    assert wanted.matcher() == Matcher(
        namespace=NS, group=GROUP, workflow_ids=frozenset({BRANCHES})
    )
    for bad in ({**wire, "j": EXTRACT}, {**wire, "w": 0}, {**wire, "w": -BRANCHES}):
        with pytest.raises(ValueError, match="missing or malformed fields"):
            SilenceRequest.from_wire(bad)
    job = SilenceRequest(replace(target, job_id=EXTRACT), "0123456789abcdef", seconds=60)
    assert job.to_wire()["j"] == EXTRACT and "w" not in job.to_wire()
    assert job.matcher().job_ids == {EXTRACT} and not job.matcher().workflow_ids
