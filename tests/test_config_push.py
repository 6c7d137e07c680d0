"""`schedulerx-alert config push FILE --to oss://BUCKET/KEY` against a loopback OSS, and
the function picking the pushed config up on its next tick."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from schedulerx_alert.cli.main import main
from schedulerx_alert.handler import Instance, handle
from tests.test_handler import TIMER_EVENT, context
from tests.world import AK, ROBOT, ROBOT_SECRET, SK, STS, World

BUCKET = "alert-bucket"


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with World(tmp_path, state="oss", real_time=True) as world:
        # The operator's shell: their keys for OSS, the robot's secrets for the check only.
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", AK)
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SK)
        monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", STS)
        monkeypatch.setenv("DT_TOKEN", ROBOT)
        monkeypatch.setenv("DT_SECRET", ROBOT_SECRET)
        yield world


def config_file(world: World, path: Path, **changes: Any) -> Path:
    raw = copy.deepcopy(world.raw)
    raw["receivers"][0]["webhook"] = world.dt.webhook("TOKEN").replace("TOKEN", "${DT_TOKEN}")
    raw["receivers"][0]["secret"] = "${DT_SECRET}"
    raw.update(changes)
    path.write_text("# the operator's comment\n" + yaml.safe_dump(raw), encoding="utf-8")
    return path


def push(world: World, path: Path, key: str) -> int:
    assert world.oss is not None
    to = f"oss://{BUCKET}/{key}"
    return main(["config", "push", str(path), "--to", to, "--endpoint", world.oss.url])


def stored(world: World) -> dict[str, bytes]:
    assert world.oss is not None
    return world.oss.objects_in(BUCKET)


def test_a_bad_config_is_refused_and_nothing_is_uploaded(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file(world, tmp_path / "config.yaml")
    assert push(world, path, "cfg/config.yaml") == 0
    before = stored(world)
    broken = copy.deepcopy(world.raw)
    broken["watch"][0]["receivers"] = ["nobody"]
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    capsys.readouterr()
    assert push(world, path, "cfg/config.yaml") == 2
    err = capsys.readouterr().err
    assert "watch[0].receivers[0]: unknown receiver 'nobody'" in err
    assert f"nothing was uploaded to oss://{BUCKET}/cfg/config.yaml" in err
    assert stored(world) == before
    # A broken template is refused as `validate` refuses it.
    (tmp_path / "broken.md.j2").write_text("{% if %}", encoding="utf-8")
    config_file(world, path, templates={"alert": "broken.md.j2"})
    assert push(world, path, "cfg/config.yaml") == 2
    assert "broken.md.j2" in capsys.readouterr().err
    assert stored(world) == before


def test_a_good_config_is_uploaded_as_it_is_and_the_previous_version_kept(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = config_file(world, tmp_path / "first.yaml")
    assert push(world, first, "cfg/config.yaml") == 0
    assert stored(world)["cfg/config.yaml"] == first.read_bytes()
    assert "cfg/config.yaml.previous" not in stored(world)

    second = config_file(world, tmp_path / "second.yaml", timezone="Asia/Shanghai")
    assert push(world, second, "cfg/config.yaml") == 0
    out = capsys.readouterr().out
    assert f"the version it replaced is oss://{BUCKET}/cfg/config.yaml.previous" in out
    objects = stored(world)
    assert objects["cfg/config.yaml"] == second.read_bytes()
    assert objects["cfg/config.yaml.previous"] == first.read_bytes()
    # The ${VAR}s travel as references: the shell's values were for the check only.
    for data in objects.values():
        assert b"${DT_TOKEN}" in data and b"${DT_SECRET}" in data
        assert ROBOT.encode() not in data and ROBOT_SECRET.encode() not in data

    # Pushing the same file again changes nothing, and keeps the previous version.
    assert push(world, second, "cfg/config.yaml") == 0
    assert "nothing changed" in capsys.readouterr().out
    assert stored(world) == objects


def test_a_json_key_gets_json_that_the_function_reads_on_its_next_tick(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert world.oss is not None
    path = config_file(world, tmp_path / "config.yaml")
    assert push(world, path, "cfg/config.json") == 0
    shipped = json.loads(stored(world)["cfg/config.json"])
    assert shipped["receivers"][0]["secret"] == "${DT_SECRET}"
    assert shipped == yaml.safe_load(path.read_text(encoding="utf-8"))

    # The function, with its own role's credentials, reads what was pushed.
    monkeypatch.setenv("SCHEDULERX_ALERT_CONFIG", f"oss://{BUCKET}/cfg/config.json")
    monkeypatch.setenv("SCHEDULERX_ALERT_CONFIG_ENDPOINT", world.oss.url)
    monkeypatch.setenv("FC_REGION", "cn-hangzhou")
    world.sx.add_instance(92583, status=5, result="NullPointerException")
    summary = json.loads(handle(TIMER_EVENT, context(), tmp_path, Instance(tmp_path / "i")))
    assert (summary["status"], summary["alerts_sent"]) == ("ok", 1)


def test_push_needs_the_operators_credentials_and_an_object_url(
    world: World,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = config_file(world, tmp_path / "config.yaml")
    assert main(["config", "push", str(path), "--to", f"oss://{BUCKET}/cfg/"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("--to:") and "must be oss://BUCKET/KEY (an object, not a folder)" in err
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_ID")
    assert push(world, path, "cfg/config.yaml") == 2
    assert "no credentials" in capsys.readouterr().err
    assert stored(world) == {}
