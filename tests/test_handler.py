"""The FC entry point as FC calls it: index.handler(event, context)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import index
from schedulerx_alert.config import ConfigError
from tests.world import AK, ROBOT, SECRETS, SK, STS, World


def write_config(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = dict(world.raw)
    raw["receivers"] = [
        {
            **raw["receivers"][0],
            "webhook": world.dt.webhook("${DT_TOKEN}").replace("%24%7BDT_TOKEN%7D", "${DT_TOKEN}"),
            "secret": "${DT_SECRET}",
        }
    ]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    monkeypatch.setenv("SCHEDULERX_ALERT_CONFIG", str(path))
    monkeypatch.setenv("DT_TOKEN", ROBOT)
    monkeypatch.setenv("DT_SECRET", world.raw["receivers"][0]["secret"])


def context(credentials: bool = True, timeout: int = 60) -> SimpleNamespace:
    ctx = SimpleNamespace(
        request_id="req-1",
        function=SimpleNamespace(name="schedulerx-alert", timeout=timeout, memory=128),
    )
    if credentials:
        ctx.credentials = SimpleNamespace(
            access_key_id=AK, access_key_secret=SK, security_token=STS
        )
    return ctx


TIMER_EVENT = json.dumps(
    {"triggerTime": "2026-11-25T02:00:00Z", "triggerName": "every-minute", "payload": ""}
).encode()


@pytest.fixture
def live_world(tmp_path: Path) -> Iterator[World]:
    # The handler signs with the real clock, so the fakes use it too.
    with World(tmp_path, real_time=True) as world:
        yield world


def test_python310_context_credentials(
    live_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(live_world, tmp_path, monkeypatch)
    for name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"):
        monkeypatch.delenv(name, raising=False)
    live_world.sx.add_instance(92583, status=5)
    summary = json.loads(index.handler(TIMER_EVENT, context()))
    assert (summary["event"], summary["status"], summary["alerts_sent"]) == ("tick", "ok", 1)


def test_python312_environment_credentials_with_sts_token(
    live_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(live_world, tmp_path, monkeypatch)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", AK)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SK)
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", STS)
    live_world.sx.add_instance(92583, status=5)
    summary = json.loads(index.handler(TIMER_EVENT, context(credentials=False)))
    assert summary["alerts_sent"] == 1
    # The fake rejects unsigned or token-less calls, so this proves the token was sent.
    assert all(r.ok for r in live_world.sx.requests)


def test_dry_run_payload_sends_and_saves_nothing(
    live_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(live_world, tmp_path, monkeypatch)
    live_world.sx.add_instance(92583, status=5)
    summary = json.loads(index.handler(b'{"dry_run": true}', context()))
    assert summary["dry_run"] is True and len(summary["preview"]) == 1
    assert live_world.texts() == [] and not live_world.state_path.exists()


def test_a_broken_config_raises_with_every_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("region: cn-hangzhou\nwatch: []\n", encoding="utf-8")
    monkeypatch.setenv("SCHEDULERX_ALERT_CONFIG", str(path))
    with pytest.raises(ConfigError) as caught:
        index.handler(TIMER_EVENT, context())
    assert "state.url: is required" in caught.value.problems
    assert "watch: must be a non-empty list" in caught.value.problems


def test_no_secret_in_any_log_line_or_summary_even_when_everything_fails(
    live_world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    write_config(live_world, tmp_path, monkeypatch)
    live_world.sx.add_instance(92583, status=5)
    live_world.sx.fail_next("5xx", times=10, job_id=92584)
    live_world.dt.fail_next(310000, times=5, errmsg=f"sign not match, token {ROBOT}")
    caplog.set_level(logging.DEBUG)
    line = index.handler(TIMER_EVENT, context())
    summary = json.loads(line)
    assert summary["alerts_pending"] == 1 and summary["errors"] and summary["problems"]
    logged = "\n".join(r.getMessage() for r in caplog.records) + line
    assert "310000" in logged and "92584" in logged
    for secret in SECRETS:
        assert secret not in logged, "a secret reached the logs"
