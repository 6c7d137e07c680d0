"""A config kept in OSS: read with the function's role, once per change, never replaced
by a bad version. The FC handler runs as FC runs it, against loopback SchedulerX,
DingTalk and OSS (which holds both the state and the config)."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from schedulerx_alert.config import ConfigError
from schedulerx_alert.handler import Instance, handle
from tests.test_handler import TIMER_EVENT, context
from tests.world import ROBOT, ROBOT_SECRET, SECRETS, World

BUCKET = "alert-bucket"
KEY = "schedulerx-alert-config/config.json"
URL = f"oss://{BUCKET}/{KEY}"


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    # The OSS client signs with the real clock, so the fakes use it too.
    with World(tmp_path, state="oss", real_time=True) as world:
        assert world.oss is not None
        monkeypatch.setenv("SCHEDULERX_ALERT_CONFIG", URL)
        monkeypatch.setenv("FC_REGION", "cn-hangzhou")
        monkeypatch.setenv("SCHEDULERX_ALERT_CONFIG_ENDPOINT", world.oss.url)
        monkeypatch.setenv("DT_TOKEN", ROBOT)
        monkeypatch.setenv("DT_SECRET", ROBOT_SECRET)
        yield world


def good(world: World, **changes: Any) -> dict[str, Any]:
    """The world's config as an operator pushes it: secrets as ${VAR}s."""
    raw = copy.deepcopy(world.raw)
    raw["receivers"][0]["webhook"] = world.dt.webhook("TOKEN").replace("TOKEN", "${DT_TOKEN}")
    raw["receivers"][0]["secret"] = "${DT_SECRET}"
    raw.update(changes)
    return raw


def bad(world: World) -> dict[str, Any]:
    raw = good(world)
    raw["watch"][0]["receivers"] = ["nobody"]
    return raw


def publish(world: World, raw: dict[str, Any]) -> None:
    assert world.oss is not None
    world.oss.put_raw(KEY, json.dumps(raw).encode(), bucket=BUCKET)


def tick(instance: Instance, code: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(handle(TIMER_EVENT, context(), code, instance))
    return summary


def config_reads(world: World) -> list[int]:
    assert world.oss is not None
    return [r.status for r in world.oss.requests if unquote(r.path) == f"/{BUCKET}/{KEY}"]


def test_the_function_reads_its_config_from_oss_once_per_version(
    world: World, tmp_path: Path
) -> None:
    instance = Instance(tmp_path / "instance")
    publish(world, good(world))
    assert tick(instance, tmp_path)["status"] == "ok"
    # Unchanged: one conditional GET, answered 304 without a body, and nothing parsed again.
    assert tick(instance, tmp_path)["status"] == "ok"
    assert config_reads(world) == [200, 304]
    assert world.oss is not None
    etag = world.oss.stored(KEY, BUCKET).etag
    conditional = [r for r in world.oss.requests if unquote(r.path) == f"/{BUCKET}/{KEY}"][-1]
    assert conditional.headers["if-none-match"] == etag
    # A new version is read on the next tick: here it names the jobs.
    renamed = good(world)
    renamed["watch"][0]["jobs"] = [{"id": 92583, "name": "nightly-etl"}, 92584]
    publish(world, renamed)
    world.sx.add_instance(92583, status=5, result="NullPointerException")
    summary = tick(instance, tmp_path)
    assert (summary["status"], summary["alerts_sent"]) == ("ok", 1)
    assert config_reads(world) == [200, 304, 200]
    assert "nightly-etl" in world.texts()[-1]


def test_a_bad_version_never_replaces_a_working_config_and_the_group_hears_of_it(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    instance = Instance(tmp_path / "instance")
    publish(world, good(world))
    assert tick(instance, tmp_path)["status"] == "ok"

    publish(world, bad(world))
    world.sx.add_instance(92583, status=5, result="NullPointerException")
    caplog.clear()
    first = tick(instance, tmp_path)
    # The tick ran with the last good config: the failure was polled and announced...
    assert (first["polled"], first["alerts_sent"]) == (2, 1)
    # ...and it says, once, at ERROR, which version was refused and why.
    assert first["status"] == "degraded"
    (problem,) = first["problems"]
    assert problem.startswith(f"config {URL}: the version with ETag ")
    assert "1 problem(s): watch[0].receivers[0]: unknown receiver 'nobody'" in problem
    assert "this tick runs with the last good version" in problem
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [problem]

    # Every tick says so until it is fixed, without reading the bad version again;
    # the third broken tick tells the group that alerting is impaired.
    second, third = tick(instance, tmp_path), tick(instance, tmp_path)
    assert second["problems"] == third["problems"] == [problem]
    assert third["broken_ticks"] == 3
    assert "told ops that alerting is impaired" in third["notes"]
    assert "告警功能异常" in world.texts()[-1]
    assert config_reads(world)[-3:] == [200, 304, 304]

    publish(world, good(world, timezone="Asia/Shanghai"))
    fixed = tick(instance, tmp_path)
    assert (fixed["status"], fixed["problems"]) == ("ok", [])
    assert "told ops that alerting works again" in fixed["notes"]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in SECRETS:
        assert secret not in logged


def test_a_restarted_process_keeps_the_last_good_version_a_new_instance_fails_clearly(
    world: World, tmp_path: Path
) -> None:
    instance_tmp = tmp_path / "instance"
    publish(world, good(world))
    assert tick(Instance(instance_tmp), tmp_path)["status"] == "ok"
    publish(world, bad(world))
    # The same FC instance after its process restarted: its /tmp remembers the good one.
    restarted = tick(Instance(instance_tmp), tmp_path)
    assert restarted["status"] == "degraded" and restarted["polled"] == 2
    assert "unknown receiver 'nobody'" in restarted["problems"][0]
    # A new instance has no good version to fall back on: it refuses, like a bad file.
    with pytest.raises(ConfigError) as caught:
        tick(Instance(tmp_path / "new-instance"), tmp_path)
    assert caught.value.source == URL
    assert "unknown receiver 'nobody'" in str(caught.value)


def test_an_unreadable_config_object_falls_back_or_fails_clearly(
    world: World, tmp_path: Path
) -> None:
    assert world.oss is not None
    with pytest.raises(ConfigError, match="no such object"):
        tick(Instance(tmp_path / "empty"), tmp_path)
    instance = Instance(tmp_path / "instance")
    publish(world, good(world))
    assert tick(instance, tmp_path)["status"] == "ok"
    world.oss.fail_next("403", key=KEY)
    summary = tick(instance, tmp_path)
    assert summary["status"] == "degraded" and summary["polled"] == 2
    (problem,) = summary["problems"]
    assert problem.startswith(f"config {URL}: cannot be read: OSS read {KEY}: HTTP 403")
    assert tick(instance, tmp_path)["status"] == "ok"
