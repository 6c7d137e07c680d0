"""`include_log` for workflows, as stories on the loopback servers.

A user who sets `include_log: true` expects the log of what failed in every failure
message: a failed workflow instance's message shows the last log lines of its first failed
node's run (one GetLog call per instance), as inert text; when SchedulerX refuses GetLog the
message goes without them, saying why, and the tick is degraded with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from schedulerx_alert.config import ConfigError
from tests.fakes.schedulerx import UNSUPPORTED_LOG_MESSAGE
from tests.test_owners_evidence import HOSTILE_LOG
from tests.test_workflows import ERROR, EXTRACT, LOAD, REPORT, add_etl, minute
from tests.world import GROUP, NS, ROBOT, World

EXTRACT_LOG = (
    "2026-11-25 02:03:39.100 INFO  [main] connecting to orders-db",
    "2026-11-25 02:03:40.200 ERROR [main] ORA-01017: invalid username/password; logon denied",
)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path, jobs=(EXTRACT, LOAD, REPORT)) as w:
        w.raw["include_log"] = True  # the top-level default, read by every workflows: entry
        w.raw["workflows"] = [
            {"namespace": NS, "group": GROUP, "workflows": "all", "receivers": ["ops"]}
        ]
        # extract and load side by side, report below both.
        add_etl(w, 301, ((EXTRACT, REPORT), (LOAD, REPORT)))
        yield w


def fail(world: World, *lines: str, nodes: dict[int, tuple[int, str]] | None = None) -> int:
    """A failed instance of the workflow; `lines`: what its extract node's run logged."""
    wf_instance = world.sx.workflows.run(301, status=5, nodes=nodes or {EXTRACT: (5, ERROR)})
    if lines:
        world.sx.add_log(world.sx.workflows.node(wf_instance, EXTRACT), *lines)
    return wf_instance


def test_a_failed_workflow_shows_its_failed_nodes_last_log_lines(world: World) -> None:
    assert world.tick().status == "ok"
    fail(world, *EXTRACT_LOG)
    summary = minute(world)

    (text,) = world.texts()
    assert "工作流失败：nightly-etl" in text
    block = text[text.index("**最近日志**（extract-orders (92583)）：") :]
    assert block.count("```") == 2
    inside = block.split("```")[1]
    assert "connecting to orders-db" in inside
    assert inside.strip().endswith("logon denied")  # oldest first
    assert summary.calls["GetLog"] == 1 and world.sx.calls("GetLog") == 1
    assert summary.status == "ok", summary.problems
    # Asked once: a later tick does not ask again.
    minute(world)
    assert world.sx.calls("GetLog") == 1


def test_the_english_message_names_whose_log_it_shows(world: World) -> None:
    world.tick(templates={"language": "en"})
    fail(world, *EXTRACT_LOG)
    minute(world, templates={"language": "en"})
    (text,) = world.texts()
    assert "**Last log lines** of extract-orders (92583):" in text
    assert "connecting to orders-db" in text


def test_a_hostile_node_log_arrives_as_inert_text(world: World) -> None:
    world.tick()
    fail(world, *HOSTILE_LOG)
    minute(world)

    (message,) = world.dt.messages(ROBOT)
    text = str(message["markdown"]["text"])
    inside = text[text.index("**最近日志**") :].split("```")[1]
    assert text.count("```") == 2
    assert "starting nightly-report" in inside
    for live in ("](", "![", "https://", "<b>", "**", "@13800009999", "@all", "# not"):
        assert live not in inside, live
    assert "＠13800009999" in inside
    assert message["at"]["atMobiles"] == []


def test_two_failed_nodes_cost_one_get_log_the_first_nodes(world: World) -> None:
    world.tick()
    wf_instance = fail(world, *EXTRACT_LOG, nodes={EXTRACT: (5, ERROR), LOAD: (5, "disk full")})
    world.sx.add_log(world.sx.workflows.node(wf_instance, LOAD), "load's own log line")
    minute(world)

    (text,) = world.texts()
    assert "connecting to orders-db" in text
    assert "load's own log line" not in text
    assert world.sx.calls("GetLog") == 1


def test_get_log_refused_sends_the_message_without_it_and_degrades_the_tick(
    world: World,
) -> None:
    world.tick()
    world.sx.configure(log_mode="unsupported")
    fail(world, *EXTRACT_LOG)
    summary = minute(world)

    (text,) = world.texts()
    assert "工作流失败：nightly-etl" in text and "ORA-01017" in text
    assert "connecting to orders-db" not in text
    assert f"（日志不可用：SchedulerX: {UNSUPPORTED_LOG_MESSAGE}）" in text
    assert summary.alerts_sent == 1
    assert summary.status == "degraded"
    (problem,) = [p for p in summary.problems if "GetLog" in p]
    assert f"GetLog refused in {NS}/{GROUP}" in problem
    assert UNSUPPORTED_LOG_MESSAGE in problem
    assert "1 failure message(s) went without their log lines" in problem


def test_a_failing_get_log_is_a_note_of_the_tick_and_the_message_says_why(world: World) -> None:
    world.tick()
    world.sx.configure(log_mode="fail")
    fail(world, *EXTRACT_LOG)
    summary = minute(world)

    (text,) = world.texts()
    assert "日志不可用：SchedulerX did not answer GetLog" in text
    # A passing failure of the call, not a setting that cannot work: noted, not degraded.
    assert summary.status == "ok", summary.problems
    assert any(
        n.startswith("include_log: 1 run(s) without their log lines") for n in summary.notes
    ), summary.notes


def test_an_entry_turns_the_top_level_default_off(world: World) -> None:
    world.raw["workflows"][0]["include_log"] = False
    world.tick()
    fail(world, *EXTRACT_LOG)
    minute(world)

    (text,) = world.texts()
    assert "最近日志" not in text and "日志不可用" not in text
    assert world.sx.calls("GetLog") == 0


def test_an_entry_turns_it_on_without_the_top_level_option(world: World) -> None:
    del world.raw["include_log"]
    world.raw["workflows"][0]["include_log"] = True
    world.tick()
    fail(world, *EXTRACT_LOG)
    minute(world)

    (text,) = world.texts()
    assert "connecting to orders-db" in text


def test_validate_names_a_bad_include_log(world: World) -> None:
    world.raw["workflows"][0]["include_log"] = "yes"
    with pytest.raises(ConfigError) as caught:
        world.config()
    assert "workflows[0].include_log: must be true or false, not 'yes'" in caught.value.problems
