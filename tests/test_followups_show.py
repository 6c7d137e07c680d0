"""`state show` lists the operation follow-ups queued beside the state: operations from the
chat whose follow-up DingTalk refused at the click, waiting for a tick to post them
(storage/followups.py). What was done, on which run of which job, for whom, since when and
how often it was tried; never the link's nonce, the signed link or a secret.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_actions_operations import KEY, Chat, failed_run, follow_ups
from tests.test_state_cmd import show, state_cmd
from tests.world import GROUP, NS, ROBOT, World

MINUTE = 60.0


def test_state_show_lists_a_queued_follow_up_its_attempts_and_forgets_it_once_posted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with World(tmp_path, state="file") as world:
        chat = Chat(world, tmp_path, monkeypatch, ["retry"])
        run = failed_run(chat)
        assert show(world, capsys)["follow_ups"] == {
            "count": 0,
            "posted_by_ticks": True,
            "entries": [],
        }
        url = chat.buttons()["Retry this run"]
        world.advance(5)
        world.dt.fail_next(130101, token=ROBOT)  # the robot's minute is over at the click
        assert chat.post(url, clock=world.clock)["statusCode"] == 200
        (record_file,) = world.state_path.parent.glob("*.operation.*")
        nonce = record_file.name.rsplit(".", 1)[-1]

        (entry,) = show(world, capsys)["follow_ups"]["entries"]
        assert entry["operation"] == "retry" and entry["instance"] == run
        assert entry["job"] == f"{NS}/{GROUP}/92583" and entry["receiver"] == "ops"
        assert entry["attempts"] == 1 and entry["last_error"] == ""
        assert entry["queued_age_s"] == 0.0
        assert entry["queued_at"] is not None and entry["dropped_in_s"] > 0

        # A tick tries and DingTalk refuses again: counted, with its reason.
        world.advance(MINUTE)
        world.dt.fail_next(310000, token=ROBOT)
        assert world.tick().status == "degraded" and follow_ups(chat) == []
        code, out, _ = state_cmd(world, capsys, "show")
        assert code == 0
        (head, said) = [ln for ln in out.splitlines() if ln.startswith(("follow-ups", "  #"))]
        assert head.startswith("follow-ups 1 queued: operations from the chat")
        assert said.startswith(f"  #1 retry on run {run}, job {NS}/{GROUP}/92583, for ops, queued ")
        assert "(1m00s ago), 2 attempt(s), dropped in " in said
        assert "last error: " in said and "310000" in said
        for secret in (nonce, KEY, "access_token", "t=", "http"):
            assert secret not in out, secret
        code, out, _ = state_cmd(world, capsys, "show", "--json")
        assert nonce not in out and "source_ip" not in out and "127.0.0.1" not in out

        # Posted by the next tick: no longer listed.
        world.advance(MINUTE)
        assert world.tick().problems == [] and len(follow_ups(chat)) == 1
        assert show(world, capsys)["follow_ups"]["count"] == 0
        code, out, _ = state_cmd(world, capsys, "show")
        assert "follow-ups" not in out


def test_with_operations_off_state_show_says_no_tick_posts_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with World(tmp_path, state="file") as world:
        chat = Chat(world, tmp_path, monkeypatch, ["retry"])
        failed_run(chat)
        world.advance(5)
        world.dt.fail_next(130101, token=ROBOT)
        chat.post(chat.buttons()["Retry this run"], clock=world.clock)
        del world.raw["actions"]["operations"]  # turned off since

        code, out, _ = state_cmd(world, capsys, "show")
        assert code == 0
        assert "follow-ups 1 queued" in out
        assert "`operations` is off in this config: no tick posts them" in out
