"""Quiet hours that still page some jobs and routes: "quiet at night except `critical-*`"
without a second receiver, in every way the function reads SchedulerX.

The world starts on Wednesday 2026-11-25 10:00 in Shanghai; the quiet window is 09:30-11:00.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from schedulerx_alert.cli.main import main
from schedulerx_alert.config import ConfigError, parse_config
from tests.world import GROUP, NS, START, World

MINUTE = 60.0
QUIET = {"days": "weekdays", "time": "09:30-11:00"}
DBA = "dba-robot-token-0123456789"
# How a watch entry names its jobs: by id with names, by name pattern, all of the group.
SELECTIONS: dict[str, Any] = {
    "ids": [{"id": 92583, "name": "critical-etl"}, {"id": 92584, "name": "report-daily"}],
    "names": None,
    "all": "all",
}


def watched(world: World, selection: str, query: str) -> None:
    world.sx.add_job(NS, GROUP, 92585, name="critical-billing")
    entry: dict[str, Any] = {"namespace": NS, "group": GROUP, "receivers": ["ops"]}
    if selection == "names":
        entry["job_names"] = ["critical-*", "report-*"]
    elif selection == "all":
        entry["jobs"] = "all"
    else:
        entry["jobs"] = SELECTIONS["ids"] + [{"id": 92585, "name": "critical-billing"}]
    world.raw["watch"] = [entry]
    world.raw["schedulerx"]["query"] = query


ERRORS = {92583: "disk full", 92584: "NullPointerException", 92585: "connection refused"}


def fail(world: World, job_id: int) -> None:
    # Errors of their own: failures that share one become one shared-cause alert.
    world.sx.add_instance(job_id, status=5, end_time=world.clock() - 5, result=ERRORS[job_id])


@pytest.mark.parametrize("query", ["auto", "per_job", "every_job"])
@pytest.mark.parametrize("selection", ["ids", "names", "all"])
def test_quiet_hours_still_page_the_critical_jobs_and_hold_the_rest_in_every_mode(
    tmp_path: Path, selection: str, query: str
) -> None:
    with World(tmp_path, jobs=()) as world:
        world.sx.add_job(NS, GROUP, 92583, name="critical-etl")
        world.sx.add_job(NS, GROUP, 92584, name="report-daily")
        watched(world, selection, query)
        world.raw["receivers"][0]["quiet_hours"] = {
            "windows": [QUIET],
            "except_jobs": ["critical-*"],
        }
        assert world.tick().status == "ok"  # a first tick reads what there is to read
        world.advance(MINUTE)
        for job_id in (92583, 92584, 92585):
            fail(world, job_id)
        # Per-job polls find a run after its job's fire time (every 5 minutes) or sweep.
        sent = silenced = 0
        while sent + silenced < 3 and world.clock() < START + 20 * MINUTE:
            summary = world.tick()
            assert summary.status == "ok", summary.problems
            sent, silenced = sent + summary.alerts_sent, silenced + summary.alerts_silenced
            world.advance(MINUTE)
        assert (sent, silenced) == (2, 1)
        paged = " ".join(world.texts())
        assert "92583" in paged and "92585" in paged and "92584" not in paged
        world.advance(61 * MINUTE)  # 11:02: the quiet hours are over, the digest follows
        world.tick()
        digest = world.texts()[-1]
        assert "92584" in digest and "免打扰时段" in digest


def test_a_job_excepted_by_id_pages_and_a_job_whose_name_is_not_known_is_not_held(
    world: World,
) -> None:
    # Named by id without a name: whether "critical-*" fits cannot be told, so it pages.
    world.raw["receivers"][0]["quiet_hours"] = {
        "windows": [QUIET],
        "except_jobs": [92583, "critical-*"],
    }
    world.raw["watch"][0]["jobs"] = [92583, 92584]
    fail(world, 92583)
    fail(world, 92584)
    summary = world.tick()
    assert (summary.alerts_sent, summary.alerts_silenced) == (2, 0)
    # Only the id: the unnamed job waits for the quiet hours to end.
    world.raw["receivers"][0]["quiet_hours"]["except_jobs"] = [92583]
    world.advance(MINUTE)
    fail(world, 92583)
    fail(world, 92584)
    summary = world.tick()
    assert (summary.alerts_sent, summary.alerts_silenced) == (1, 1)
    assert "92583" in world.texts()[-1]


def test_what_a_named_route_sends_still_pages_and_routes_says_so(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.dt.add_robot(DBA)
    world.raw["receivers"].append(
        {
            "name": "dba",
            "webhook": world.dt.webhook(DBA),
            "quiet_hours": {"windows": [QUIET], "except_routes": ["etl-pages"]},
        }
    )
    world.raw["watch"][0]["jobs"] = [
        {"id": 92583, "name": "etl-nightly"},
        {"id": 92584, "name": "report-daily"},
    ]
    world.raw["routes"] = [
        {"match": {"job_names": ["etl-*"]}, "receivers": ["dba"], "name": "etl-pages"},
        {"match": {"job_names": ["report-*"]}, "receivers": ["dba"], "name": "reports"},
    ]
    fail(world, 92583)
    fail(world, 92584)
    summary = world.tick()
    # ops (no quiet hours) hears both; dba hears what etl-pages sends, holds the report.
    assert (summary.alerts_sent, summary.alerts_silenced) == (3, 1)
    dba = world.dt.texts(DBA)
    assert any("92583" in t for t in dba) and not any("92584" in t for t in dba)

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(world.raw), encoding="utf-8")
    for job, quiet in (("92583", False), ("92584", True)):
        argv = ["routes", "-c", str(path), "--job", job, "--kind", "failed", "--json"]
        assert main(argv, clock=world.clock) == 0
        (entry,) = json.loads(capsys.readouterr().out)["entries"]
        (decision,) = entry["kinds"]
        [said] = [r for r in decision["receivers"] if r["receiver"] == "dba"]
        assert said["quiet_now"] is quiet
    argv = ["routes", "-c", str(path), "--job", "92583", "--kind", "failed"]
    assert main(argv, clock=world.clock) == 0
    assert "route 'etl-pages' still pages" in capsys.readouterr().out


def test_validate_refuses_unknown_keys_routes_and_job_values_with_their_path(
    world: World,
) -> None:
    world.raw["routes"] = [
        {"match": {"kinds": ["failed"]}, "receivers": ["ops"], "name": "first"},
        {"match": {"kinds": ["rejected"]}, "receivers": ["ops"], "name": "first"},
    ]
    world.raw["receivers"][0]["quiet_hours"] = {
        "windows": [QUIET],
        "except_job": ["critical-*"],
        "except_jobs": [True, -3, ""],
        "except_routes": ["nobody", 7],
        "except": {"kinds": ["missed"]},
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(world.raw, {}, "world", world.root)
    said = str(caught.value)
    for problem in (
        "routes[1].name: 'first' already names routes[0]",
        "receivers[0].quiet_hours.except_job: unknown key",
        "receivers[0].quiet_hours.except: unknown key",
        "receivers[0].quiet_hours.except_jobs: job ids are positive integers, not True",
        "receivers[0].quiet_hours.except_jobs: job ids are positive integers, not -3",
        "receivers[0].quiet_hours.except_jobs: must be 1 to 200 characters, not 0",
        "receivers[0].quiet_hours.except_routes[0]: no route is named 'nobody'",
        "receivers[0].quiet_hours.except_routes[1]: route names are strings, not 7",
    ):
        assert problem in said, (problem, said)


def test_an_empty_exception_list_is_refused_rather_than_read_as_nothing(world: World) -> None:
    world.raw["receivers"][0]["quiet_hours"] = {"windows": [QUIET], "except_jobs": []}
    with pytest.raises(ConfigError, match=r"receivers\[0\]\.quiet_hours\.except_jobs: is empty"):
        parse_config(world.raw, {}, "world", world.root)
