"""The commands and the silence links read the config where the function does: a file, or
`oss://BUCKET/KEY` (by --config or SCHEDULERX_ALERT_CONFIG), against the loopback OSS that
also holds the state. Each reads the object once; a missing or bad one is refused with
its problems, each naming the object."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

import index
from schedulerx_alert.cli.main import main
from schedulerx_alert.delivery.links import ActionLinks
from tests.test_actions import KEY, OLD_KEY, Chat, answer, context, fc_http_event, form_of
from tests.test_config_oss import bad, good
from tests.world import AK, ROBOT, ROBOT_SECRET, SECRETS, SK, STS, World

BUCKET = "alert-bucket"
OBJECT = "cfg/config.json"
URL = f"oss://{BUCKET}/{OBJECT}"


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    # The OSS client signs with the real clock, so the fakes use it too.
    with World(tmp_path, state="oss", real_time=True) as world:
        assert world.oss is not None
        # An operator's shell: their keys, the region, and (off Alibaba Cloud) the
        # endpoint; the config's ${VAR}s.
        for name, value in {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": AK,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SK,
            "ALIBABA_CLOUD_SECURITY_TOKEN": STS,
            "ALIBABA_CLOUD_REGION_ID": "cn-hangzhou",
            "SCHEDULERX_ALERT_CONFIG_ENDPOINT": world.oss.url,
            "DT_TOKEN": ROBOT,
            "DT_SECRET": ROBOT_SECRET,
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("SCHEDULERX_ALERT_CONFIG", raising=False)
        monkeypatch.chdir(tmp_path)
        yield world


def publish(world: World, raw: dict[str, Any], key: str = OBJECT) -> None:
    assert world.oss is not None
    world.oss.put_raw(key, json.dumps(raw).encode(), bucket=BUCKET)


def config_reads(world: World, key: str = OBJECT) -> int:
    assert world.oss is not None
    return sum(1 for r in world.oss.requests if unquote(r.path) == f"/{BUCKET}/{key}")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    for secret in SECRETS:
        assert secret not in out and secret not in err
    return code, out, err


def test_check_runs_a_tick_with_the_config_in_oss(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(world, good(world))
    world.sx.add_instance(92583, status=5, result="NullPointerException")
    code, out, err = run(capsys, "check", "--config", URL)
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["status"], summary["alerts_sent"]) == ("ok", 1)
    assert config_reads(world) == 1
    assert len(world.texts()) == 1


def test_state_show_and_forget_read_the_config_the_function_reads(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(world, good(world))
    world.sx.add_instance(92583, status=5)
    world.dt.set_down(True)
    world.tick()
    monkeypatch.setenv("SCHEDULERX_ALERT_CONFIG", URL)  # no --config: the function's setting
    code, out, err = run(capsys, "state", "show", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["state"]["where"] == "oss://alert-bucket/schedulerx-alert/state.json"
    assert doc["pending"]["count"] == 1
    code, out, err = run(capsys, "state", "forget", "--job", "92584", "--json")
    assert code == 0, err
    assert config_reads(world) == 2


def test_a_config_object_missing_or_bad_is_refused_naming_it(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "check", "--config", URL)
    assert code == 2
    assert err.startswith(f"{URL}:") and "cannot be read: no such object" in err
    publish(world, bad(world))
    for argv in (("check", "-c", URL), ("state", "show", "-c", URL)):
        code, _, err = run(capsys, *argv)
        assert code == 2 and err.startswith(f"{URL}:"), err
        assert "watch[0].receivers" in err and "nobody" in err
    assert world.tick().status == "ok"  # nothing of it reached the state


def test_a_command_needs_a_config_named_somewhere(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "state", "show")
    assert code == 2 and "--config FILE or oss://BUCKET/KEY" in err
    code, _, err = run(capsys, "check", "-c", f"oss://{BUCKET}/")
    assert code == 2 and "must be oss://BUCKET/KEY" in err


def test_a_silence_link_reads_the_actions_from_the_config_in_oss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with World(tmp_path, state="oss", real_time=True) as world:
        assert world.oss is not None
        chat = Chat(world, tmp_path, monkeypatch)
        raw = {
            **good(world),
            "templates": {"language": "en"},
            "actions": {
                "enabled": True,
                "base_url": "http://127.0.0.1:9/silence",
                "durations": ["1h", "until 09:00"],
            },
        }
        publish(world, raw)
        (tmp_path / "config.yaml").unlink()  # nothing to fall back on
        monkeypatch.setenv("SCHEDULERX_ALERT_CONFIG", URL)
        monkeypatch.setenv("SCHEDULERX_ALERT_ACTION_KEYS", f"{KEY},{OLD_KEY}")
        monkeypatch.setenv("FC_REGION", "cn-hangzhou")
        monkeypatch.setenv("SCHEDULERX_ALERT_CONFIG_ENDPOINT", world.oss.url)
        monkeypatch.setenv("DT_TOKEN", ROBOT)
        monkeypatch.setenv("DT_SECRET", ROBOT_SECRET)
        [url, _] = chat.send_alert(ActionLinks(chat.settings, "en", "Asia/Shanghai"))

        opened = answer(index.handler(fc_http_event(url), context()))
        assert opened["statusCode"] == 200, opened["body"]
        fields = form_of(opened["body"]).fields
        confirmed = answer(index.handler(fc_http_event(url, "POST", fields), context()))
        assert "Silenced" in confirmed["body"]
        assert len(chat.book.read().silences) == 1
        assert config_reads(world) == 2  # once per click

        # Actions switched off in the object: the next click is refused, read afresh.
        publish(world, {**raw, "actions": {**raw["actions"], "enabled": False}})
        again = answer(index.handler(fc_http_event(url), context()))
        assert again["statusCode"] == 404
