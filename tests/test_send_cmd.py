"""`send-test RECEIVER` and `heartbeat --now`, against the loopback robot (which checks the
signature, keywords and the 20-a-minute limit): a user sees a message arrive now, and
reads DingTalk's answer in words, never a token or a secret."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from schedulerx_alert.cli.main import main
from tests.test_heartbeat import at, heartbeats, make_world, tick_at, ticks_every
from tests.world import ROBOT, SECRETS, World


def config_file(world: World) -> str:
    path = world.root / "config.yaml"
    path.write_text(yaml.safe_dump(world.raw, allow_unicode=True), encoding="utf-8")
    return str(path)


def cli(world: World, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([*argv, "-c", config_file(world)], clock=world.clock)
    out, err = capsys.readouterr()
    for secret in SECRETS:
        assert secret not in out and secret not in err
    return code, out, err


def test_send_test_posts_a_signed_message_and_tells_the_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with World(tmp_path) as world:
        world.raw["receivers"][0]["keyword"] = "告警"
        world.dt.add_robot(ROBOT, secret=world.raw["receivers"][0]["secret"], keywords=("告警",))
        code, out, _ = cli(world, capsys, "send-test", "ops")
        assert code == 0
        assert out == f"send-test ops ({world.dt.url}/robot/send): DingTalk took it (errcode 0)\n"
        [text] = world.texts()
        assert "schedulerx-alert send-test" in text and "**ops**" in text and "告警" in text
        # Without the keyword the robot refuses; the answer is told in words.
        world.raw["receivers"][0].pop("keyword")
        code, out, _ = cli(world, capsys, "send-test", "ops", "--json")
        doc = json.loads(out)
        assert code == 1 and (doc["sent"], doc["errcode"]) == (False, 310000)
        assert doc["answer"].startswith("the signature, keyword or IP allowlist is wrong")
        # A token DingTalk does not know.
        world.dt.add_robot("another-token-0123456789", secret=None)
        world.raw["receivers"][0]["webhook"] = world.dt.webhook("unknown-token-0123456789")
        code, out, _ = cli(world, capsys, "send-test", "ops")
        assert code == 1 and "DingTalk knows no robot with this access_token" in out
        assert "unknown-token" not in out
        code, _, err = cli(world, capsys, "send-test", "nobody")
        assert code == 2 and "no receiver 'nobody' in the config (its receivers: ops)" in err
        assert len(world.texts()) == 1


def test_heartbeat_now_sends_the_days_digest_and_leaves_the_scheduled_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with make_world(tmp_path, at(25, 20, 0)) as world:
        world.tick()
        world.sx.add_instance(92583, status=5, result="NullPointerException")
        ticks_every(world, at(25, 20, 1), at(26, 8, 0), 3600)
        world.clock.set(at(26, 8, 0))
        code, out, err = cli(world, capsys, "heartbeat", "--now")
        assert code == 0, err
        assert out == (
            "heartbeat for 2026-11-26 to ops: DingTalk took it (errcode 0); not recorded: "
            "the scheduled digest still goes at 09:00 Asia/Shanghai\n"
        )
        [now] = heartbeats(world)
        # The digest a tick sends: its template, its counters.
        assert now.startswith("### SchedulerX 每日心跳 2026-11-26")
        assert "统计区间**：2026-11-25 20:00 至 2026-11-26 08:00" in now
        tick_at(world, at(26, 9, 0, 5))
        assert len(heartbeats(world)) == 2, "the scheduled digest still goes"
        # --dry-run: printed, not sent.
        code, out, _ = cli(world, capsys, "heartbeat", "--now", "--dry-run", "--json")
        doc: dict[str, Any] = json.loads(out)
        assert code == 0 and doc["sent"] is False and "每日心跳" in doc["text"]
        assert len(heartbeats(world)) == 2
        # Without a heartbeat: section there is nothing to send.
        world.raw.pop("heartbeat")
        code, _, err = cli(world, capsys, "heartbeat", "--now")
        assert code == 2 and "no heartbeat: section" in err
