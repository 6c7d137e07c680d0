"""`schedulerx-alert routes --workflow ID`: where a workflow's alerts go and why, the same
answer the tick gives (the `workflows:` entry's receivers, then `routes:`; the config's
silences that name it), beside `routes --job`'s stories (tests/test_silence_stories.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_silence_stories import ROBOTS, cli, tick, write_config
from tests.test_workflows import ERROR, EXTRACT, LOAD, REPORT
from tests.world import GROUP, NS, ROBOT, World

MINUTE = 60.0
# A second entry: every workflow of the group to dba, without recoveries.
ALL_TO_DBA = {"namespace": NS, "group": GROUP, "workflows": "all", "receivers": ["dba"],
              "recovery": False}  # fmt: skip


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path, jobs=(EXTRACT,))
    for name in ("dba", "finance"):
        w.dt.add_robot(ROBOTS[name])
        w.raw["receivers"].append({"name": name, "webhook": w.dt.webhook(ROBOTS[name])})
    w.raw["workflows"] = [
        {"namespace": NS, "group": GROUP, "workflows": [301], "receivers": ["ops"]}
    ]
    w.sx.add_job(NS, GROUP, EXTRACT, name="extract-orders")
    w.sx.add_job(NS, GROUP, LOAD, name="load-warehouse")
    w.sx.add_job(NS, GROUP, REPORT, name="daily-report")
    w.sx.workflows.add(NS, GROUP, 301, "nightly-etl", (EXTRACT, LOAD, REPORT), ((EXTRACT, LOAD),))
    return w


def test_routes_answers_for_a_workflow_as_the_tick_routes_it(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with world:
        world.raw["routes"] = [
            # A job id never selects a workflow, even one with the same number.
            {"match": {"jobs": [301]}, "receivers": ["finance"]},
            {"match": {"workflows": [301], "kinds": ["workflow_failed"]}, "receivers": ["dba"],
             "continue": True},
            {"match": {"job_names": ["nightly-*"]}, "receivers": ["finance"]},
        ]  # fmt: skip
        assert tick(world).status == "ok"
        world.sx.workflows.run(301, status=5, nodes={EXTRACT: (5, ERROR)})
        world.advance(MINUTE)
        assert tick(world).alerts_sent == 3
        heard = {
            name: any("工作流失败：nightly-etl" in t for t in world.dt.texts(token))
            for name, token in (
                ("ops", ROBOT),
                ("dba", ROBOTS["dba"]),
                ("finance", ROBOTS["finance"]),
            )
        }
        assert heard == {"ops": True, "dba": True, "finance": True}

        config = write_config(world, tmp_path / "config.yaml")
        code, out, _ = cli(
            capsys, "routes", "-c", config, "--workflow", "301", "--name", "nightly-etl",
            "--kind", "workflow_failed", "--json",
        )  # fmt: skip
        assert code == 0
        (entry,) = json.loads(out)["entries"]
        (decision,) = entry["kinds"]
        said = {r["receiver"]: r["reason"] for r in decision["receivers"]}
        assert set(said) == {name for name, got in heard.items() if got}
        assert said["ops"] == "workflows[0]"
        assert said["dba"].startswith("routes[1] (workflow=301")

        code, out, _ = cli(
            capsys, "routes", "-c", config, "--workflow", "301", "--name", "nightly-etl"
        )
        lines = out.splitlines()
        assert code == 0
        assert lines[0] == f"workflow 301 (nightly-etl) in workflows[0]: {NS}/{GROUP}"
        assert lines[1] == "  workflow_failed:"
        assert lines[2] == "    -> ops  because workflows[0]"
        assert lines[3] == "    -> dba  because routes[1] (workflow=301, kind=workflow_failed)"
        assert lines[4] == "    -> finance  because routes[2] (name=nightly-*)"
        assert lines[5] == (
            "       routes[0] (job=301): no match: job 'nightly-etl' (workflow 301) is not 301"
        )
        # The recovery: the entry announces it, and only the name route takes it further.
        recovered = out[out.index("  workflow_recovered:") :]
        assert "-> ops  because workflows[0]" in recovered and "-> dba" not in recovered
        assert "-> finance  because routes[2] (name=nightly-*)" in recovered


def test_without_its_name_routes_says_which_matchers_need_it(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with world:
        world.raw["routes"] = [{"match": {"job_names": ["nightly-*"]}, "receivers": ["finance"]}]
        world.raw["silences"] = [
            {"match": {"workflows": [301]}, "start": "2026-01-01 00:00", "end": "2099-01-01 00:00",
             "comment": "migration"},
        ]  # fmt: skip
        config = write_config(world, tmp_path / "config.yaml")
        code, out, _ = cli(capsys, "routes", "-c", config, "--workflow", "301")
        assert code == 0
        assert out.count("give --name for what selects by name: routes[0])") == 1
        assert out.count("held back now by the config's silences[0]") == 2
        code, out, _ = cli(capsys, "routes", "-c", config, "--workflow", "301", "--json")
        (entry,) = json.loads(out)["entries"]
        assert entry["by_name_unknown"] == ["routes[0]"] and entry["name"] is None
        assert [d["silenced_by"] for d in entry["kinds"]] == ["silences[0]", "silences[0]"]


def test_routes_refuses_what_a_workflow_cannot_be_asked(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with world:
        world.raw["workflows"].append(dict(ALL_TO_DBA))
        config = write_config(world, tmp_path / "config.yaml")
        code, _, err = cli(capsys, "routes", "-c", config, "--workflow", "301", "--kind", "failed")
        assert code == 2 and "a workflow's alerts are workflow_failed or workflow_recovered" in err
        code, _, err = cli(capsys, "routes", "-c", config, "--job", "92583", "--name", "x")
        assert code == 2 and "--name is for --workflow" in err
        world.raw["workflows"] = [world.raw["workflows"][0]]
        config = write_config(world, tmp_path / "config.yaml")
        code, _, err = cli(capsys, "routes", "-c", config, "--workflow", "302")
        assert code == 2 and "workflow 302 is in no `workflows:` entry" in err


def test_two_entries_watching_one_workflow_say_which_the_tick_uses(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An entry naming 301 by id and a later `workflows: all` entry of the same group: 301
    belongs to the one naming it, as a job belongs to its watch entry."""
    with world:
        world.raw["workflows"].append(dict(ALL_TO_DBA))
        config = write_config(world, tmp_path / "config.yaml")
        code, out, _ = cli(capsys, "routes", "-c", config, "--workflow", "301", "--json")
        first, second = json.loads(out)["entries"]
        assert (first["used_by_tick"], second["used_by_tick"]) == (True, False)
        assert [d["kind"] for d in second["kinds"]] == ["workflow_failed"]  # recovery: false
        code, out, _ = cli(capsys, "routes", "-c", config, "--workflow", "301")
        assert code == 0
        assert "(workflows[0] watches it too, and the tick routes it by that entry" in out
        assert "(watched through `workflows: all`: while its group lists it as enabled)" in out


def test_a_workflow_two_entries_watch_goes_by_the_entry_naming_it_once(world: World) -> None:
    """Story: `workflows: all` to dba first, then an entry naming 301 to ops. 301 fails: ops
    hears of it once, dba not at all, and its instances are listed once a tick."""
    with world:
        world.raw["workflows"].insert(
            0, {"namespace": NS, "group": GROUP, "workflows": "all", "receivers": ["dba"]}
        )
        assert tick(world).status == "ok"
        world.sx.workflows.run(301, status=5, nodes={EXTRACT: (5, ERROR)})
        world.advance(MINUTE)
        summary = tick(world)
        assert summary.status == "ok", summary.problems
        assert summary.calls["ListWorkflowInstance"] == 1
        assert summary.alerts_sent == 1
        assert [t for t in world.dt.texts(ROBOT) if "nightly-etl" in t]
        assert not world.dt.texts(ROBOTS["dba"])
