"""`schedulerx-alert jobs`: per watch entry the jobs it watches and the kinds that apply,
then the jobs no entry watches; from the state's job lists, or live from SchedulerX."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from schedulerx_alert.cli.main import main
from tests.world import AK, GROUP, NS, SECRETS, SK, STS, World

HOSTILE = "etl-\u202eevil\nname"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path, jobs=()) as world:
        world.sx.add_job(NS, GROUP, 101, name="etl-load", monitor={"TimeoutEnable": True})
        world.sx.add_job(NS, GROUP, 102, name=HOSTILE, time_type=100, time_expression="")
        world.sx.add_job(NS, GROUP, 103, name="etl-old", status=0)
        world.sx.add_job(NS, GROUP, 104, name="report")
        world.sx.add_job(NS, GROUP, 105, name="named-by-id", time_type=3, time_expression="60")
        world.raw["watch"] = [
            {"namespace": NS, "group": GROUP, "jobs": [105], "receivers": ["ops"]},
            {
                "namespace": NS,
                "group": GROUP,
                "job_names": ["etl-*"],
                "receivers": ["ops"],
                "missed_grace": "5m",
                "stuck_after": "job_timeout",
            },
            {"namespace": NS, "group": GROUP, "job_names": ["ETL_*"], "receivers": ["ops"]},
        ]
        yield world


def jobs(world: World, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    config = world.root / "config.yaml"
    config.write_text(yaml.safe_dump(world.raw, allow_unicode=True), encoding="utf-8")
    capsys.readouterr()
    code = main(["jobs", "-c", str(config), *args], clock=world.clock)
    out, err = capsys.readouterr()
    for secret in SECRETS:
        assert secret not in out and secret not in err
    return code, out, err


def by_id(entry: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {job["id"]: job for job in entry["jobs"]}


def test_jobs_lists_each_entrys_jobs_and_kinds_and_the_unwatched_from_the_state(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.tick()
    code, out, _ = jobs(world, capsys, "--json")
    assert code == 1  # entry 3 matches nothing
    doc = json.loads(out)
    ids, etl, nothing = doc["entries"]
    assert (doc["source"], [e["watch"] for e in doc["entries"]]) == ("state", [1, 2, 3])
    [named] = ids["jobs"]
    assert (named["id"], named["name"], named["by_id"]) == (105, "named-by-id", True)
    assert etl["picks"] == "job_names: etl-*"
    load, hostile = by_id(etl)[101], by_id(etl)[102]
    assert load["schedule"] == {
        "type": "cron",
        "expression": "0 */5 * * * ?",
        "calendar": "",
        "timeout_s": 7200.0,
    }
    # A cron job with a timeout of its own can be missed and stuck; an API job is neither.
    assert load["kinds"] == ["failed", "rejected", "recovered", "stuck", "missed", "flapping"]
    assert hostile["kinds"] == ["failed", "rejected", "recovered", "flapping"]
    assert hostile["name"] == HOSTILE
    assert nothing["jobs"] == [] and nothing["problem"] == "matches no enabled job"
    assert doc["problems"] == [
        f"watch entry 3 (job_names: ETL_*) in {NS}/{GROUP} matches no enabled job"
    ]
    assert [(j["id"], j["enabled"]) for j in doc["unwatched"]] == [(103, False), (104, True)]

    code, text, _ = jobs(world, capsys)
    assert code == 1
    # Job text is escaped on a terminal: no bidi override, no line break of its own.
    assert "\u202e" not in text and "etl-\\u202eevil name" in text
    assert "watch entry 2: " in text and "  101 etl-load  cron 0 */5 * * * ?  timeout 7200s" in text
    assert "[failed, rejected, recovered, stuck, missed, flapping]" in text
    assert "not watched: 2 job(s) of the watched groups" in text
    assert "  103 etl-old  cron 0 */5 * * * ?  disabled  in " in text
    assert "watch entry 3 (job_names: ETL_*)" in text and "matches no enabled job" in text


def test_jobs_live_reads_schedulerx_now(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    world.tick()
    world.sx.add_job(NS, GROUP, 106, name="ETL_NEW")
    for name, value in (
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", AK),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SK),
        ("ALIBABA_CLOUD_SECURITY_TOKEN", STS),
    ):
        monkeypatch.setenv(name, value)
    code, out, _ = jobs(world, capsys, "--live", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["source"] == "live"
    assert [j["id"] for j in doc["entries"][2]["jobs"]] == [106]
    # The state's lists are not what was read: they have no job 106.
    code, out, _ = jobs(world, capsys, "--json")
    assert [j["id"] for j in json.loads(out)["entries"][2]["jobs"]] == []


def test_jobs_live_says_when_a_group_cannot_be_listed(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    world.raw["watch"][2]["group"] = "no.such.group"
    for name, value in (
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", AK),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SK),
    ):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", STS)
    code, text, _ = jobs(world, capsys, "--live")
    assert code == 1
    assert f"{NS}/no.such.group: ListJobs page 1:" in text and "is not existed" in text
