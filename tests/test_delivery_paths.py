"""Nothing configured is silently off, on the way out (issue 18, items 7, 8, 10, 11, 13).

Stories against the loopback robot: a broken `actions:` section, a receiver renamed
while alerts wait for it, two receivers on one robot, owners mentioned under buttons,
and previews that are what is sent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from schedulerx_alert.cli.config_cmd import check
from schedulerx_alert.cli.main import main
from schedulerx_alert.config import ConfigError
from schedulerx_alert.config.actions import load_actions
from tests.fakes.dingtalk import notified
from tests.world import GROUP, NS, ROBOT, World

KEY_ENV = "SCHEDULERX_ALERT_ACTION_KEYS"
KEY = "k" * 32 + "-current-signing-key"
ACTIONS = {"enabled": True, "base_url": "https://alert.example.com/silence"}


# -- item 7: a broken `actions:` section costs the buttons, not the alerts --------------------


@pytest.mark.parametrize("keys", [None, "", "  ", "too-short-a-key"])
def test_actions_without_usable_keys_send_the_alert_without_buttons_and_say_so(
    world: World, keys: str | None
) -> None:
    world.raw["actions"] = ACTIONS
    if keys is not None:
        world.env[KEY_ENV] = keys
    world.sx.add_instance(92583, status=5, result="disk full")
    summary = world.tick()
    assert summary.alerts_sent == 1
    (message,) = world.dt.messages(ROBOT)
    assert message["msgtype"] == "markdown"
    assert "disk full" in message["markdown"]["text"]
    assert summary.status == "degraded"
    (problem,) = [p for p in summary.problems if p.startswith("actions.key_env:")]
    assert KEY_ENV in problem and "without silence buttons" in problem
    if keys and keys.strip():
        assert keys not in json.dumps(summary.as_dict())
    # The next tick still says so: the buttons stay off until the keys are there.
    world.advance(60)
    assert any(p.startswith("actions.key_env:") for p in world.tick().problems)


def test_a_working_actions_section_still_puts_buttons_under_the_alert(world: World) -> None:
    world.raw["actions"] = ACTIONS
    world.env[KEY_ENV] = KEY
    world.sx.add_instance(92583, status=5, result="disk full")
    summary = world.tick()
    assert summary.status == "ok" and summary.alerts_sent == 1
    (message,) = world.dt.messages(ROBOT)
    assert message["msgtype"] == "actionCard"


def test_a_malformed_actions_section_costs_only_the_buttons(world: World) -> None:
    world.raw["actions"] = {**ACTIONS, "durations": ["forever"], "colour": "red"}
    world.env[KEY_ENV] = KEY
    world.sx.add_instance(92583, status=5, result="disk full")
    summary = world.tick()
    assert summary.alerts_sent == 1
    assert world.dt.messages(ROBOT)[0]["msgtype"] == "markdown"
    assert [p.partition(":")[0] for p in summary.problems] == [
        "actions.colour",
        "actions.durations[0]",
    ]


def test_validate_and_the_link_endpoint_refuse_a_broken_actions_section(
    world: World, tmp_path: Path
) -> None:
    raw = {**world.raw, "actions": ACTIONS}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        check(path, 60.0, {KEY_ENV: "too-short-a-key"})
    assert [p.partition(":")[0] for p in refused.value.problems] == ["actions.key_env"]
    assert "too-short-a-key" not in str(refused.value)
    with pytest.raises(ConfigError):
        load_actions(path, {})
    _, settings = load_actions(path, {KEY_ENV: KEY})
    assert settings.usable and settings.keys == (KEY,)


# -- item 11: with buttons on, an alert that mentions someone still notifies them -------------

OWNER = "13800001111"


def test_an_alert_that_mentions_its_owner_goes_as_markdown_with_the_buttons_as_links(
    world: World,
) -> None:
    world.raw["actions"] = ACTIONS
    world.env[KEY_ENV] = KEY
    world.raw["templates"] = {"language": "en"}
    world.sx.add_job(
        NS, GROUP, 92583, name="job-92583", contacts=[{"UserName": "Li", "UserPhone": OWNER}]
    )
    world.raw["watch"][0]["mention_owners"] = True
    world.sx.add_instance(92583, status=5, result="disk full")
    summary = world.tick()
    assert summary.status == "ok" and summary.alerts_sent == 1
    (message,) = world.dt.messages(ROBOT)
    assert message["msgtype"] == "markdown"
    assert world.dt.notified(ROBOT) == [([OWNER], [])]
    text = message["markdown"]["text"]
    link = r"\[(Silence [^\]]+)\]\((https://alert\.example\.com/silence\?t=[^)]+)\)"
    links = re.findall(link, text)
    assert [title for title, _ in links] == ["Silence 1 h", "Silence until tomorrow 09:00"]


def test_a_receivers_own_mentions_also_turn_the_buttons_into_links(world: World) -> None:
    world.raw["actions"] = ACTIONS
    world.env[KEY_ENV] = KEY
    world.raw["receivers"][0]["at_user_ids"] = ["oncall-1"]
    world.sx.add_instance(92583, status=5, result="disk full")
    world.tick()
    (message,) = world.dt.messages(ROBOT)
    assert message["msgtype"] == "markdown" and "alert.example.com/silence?t=" in str(message)
    assert world.dt.notified(ROBOT) == [([], ["oncall-1"])]


def test_the_fake_robot_notifies_no_one_from_an_action_card() -> None:
    card = {
        "msgtype": "actionCard",
        "actionCard": {"title": "T", "text": "x @13800001111", "btns": [{"title": "a"}]},
        "at": {"atMobiles": ["13800001111"]},
    }
    markdown = {
        "msgtype": "markdown",
        "markdown": {"title": "T", "text": "x @13800001111"},
        "at": {"atMobiles": ["13800001111"]},
    }
    assert notified(card) == ([], []) and notified(markdown) == (["13800001111"], [])


# -- item 10: one finding reaches one robot once ----------------------------------------------


def two_receivers_on_one_robot(world: World) -> None:
    """`ops` and `ops-critical` post to one group's robot, as a user builds quiet-hours
    exceptions; each mentions its own people."""
    ops = world.raw["receivers"][0]
    ops["at_mobiles"] = ["13800000001"]
    critical = {**ops, "name": "ops-critical", "at_mobiles": ["13800000002"]}
    critical["at_user_ids"] = ["boss-1"]
    world.raw["receivers"].append(critical)
    # The watch entry says `ops`; a route adds `ops-critical` for the same jobs.
    world.raw["routes"] = [{"match": {"jobs": [92583, 92584]}, "receivers": ["ops-critical"]}]


def test_one_finding_for_two_receivers_on_one_robot_is_one_message_mentioning_both(
    world: World,
) -> None:
    two_receivers_on_one_robot(world)
    world.sx.add_instance(92583, status=5, result="disk full")
    summary = world.tick()
    assert (summary.alerts_sent, summary.alerts_pending, summary.messages) == (2, 0, 1)
    (message,) = world.dt.messages(ROBOT)
    assert world.dt.notified(ROBOT) == [(["13800000001", "13800000002"], ["boss-1"])]
    assert "disk full" in message["markdown"]["text"]
    # Both alerts are recorded as delivered: nothing is owed or sent again.
    world.advance(60)
    again = world.tick()
    assert (again.alerts_sent, again.alerts_pending, again.messages) == (0, 0, 0)
    assert len(world.dt.messages(ROBOT)) == 1


def test_a_burst_for_two_receivers_on_one_robot_is_one_summary(world: World) -> None:
    two_receivers_on_one_robot(world)
    world.raw["shared_cause"] = False
    for job_id in (92583, 92584):
        for n in range(3):
            world.sx.add_instance(job_id, status=5, result=f"job {job_id} broke {n}")
    summary = world.tick()
    assert (summary.alerts_sent, summary.alerts_pending) == (12, 0)
    texts = world.texts()
    assert len(texts) == 1
    assert all(f"broke {n}" in texts[0] for n in range(3))


def test_a_robot_that_is_down_keeps_every_receivers_alert_pending(world: World) -> None:
    two_receivers_on_one_robot(world)
    world.sx.add_instance(92583, status=5, result="disk full")
    world.dt.set_down()
    summary = world.tick()
    assert (summary.alerts_sent, summary.alerts_pending) == (0, 2)
    world.dt.set_down(False)
    world.advance(60)
    later = world.tick()
    assert (later.alerts_sent, later.alerts_pending, later.messages) == (2, 0, 1)
    assert len(world.texts()) == 1


def test_receivers_on_two_robots_each_get_the_finding(world: World) -> None:
    other = world.dt.add_robot("other-robot-token-0123456789")
    world.raw["receivers"].append({"name": "dba", "webhook": other})
    world.raw["watch"][0]["receivers"] = ["ops", "dba"]
    world.sx.add_instance(92583, status=5, result="disk full")
    assert world.tick().messages == 2
    assert len(world.texts()) == 1 and len(world.texts("other-robot-token-0123456789")) == 1


# -- item 8: a pending alert whose receiver was renamed or removed -----------------------------


def rename_ops(world: World, new: str = "oncall") -> None:
    world.raw["receivers"][0]["name"] = new
    world.raw["watch"][0]["receivers"] = [new]


def test_a_pending_alert_follows_its_receivers_new_name(world: World) -> None:
    world.sx.add_instance(92583, status=5, result="disk full")
    world.dt.set_down()
    assert world.tick().alerts_pending == 1
    world.dt.set_down(False)
    rename_ops(world)
    world.advance(60)
    summary = world.tick()
    assert (summary.status, summary.alerts_sent, summary.alerts_pending) == ("ok", 1, 0)
    assert not summary.problems
    (text,) = world.texts()
    assert "disk full" in text


def test_a_pending_alert_of_a_removed_receiver_goes_to_the_jobs_current_receivers(
    world: World,
) -> None:
    other = "dba-robot-token-0123456789"
    world.raw["receivers"].append({"name": "dba", "webhook": world.dt.add_robot(other)})
    world.raw["watch"][0]["receivers"] = ["dba"]
    world.sx.add_instance(92583, status=5, result="disk full")
    world.dt.set_down()
    world.tick()
    world.dt.set_down(False)
    # dba leaves the config; the job is ops's again.
    world.raw["receivers"].pop()
    world.raw["watch"][0]["receivers"] = ["ops"]
    world.advance(60)
    summary = world.tick()
    assert (summary.status, summary.alerts_sent, summary.alerts_pending) == ("ok", 1, 0)
    assert ["disk full" in t for t in world.texts()] == [True]


def test_a_dropped_pending_alert_is_a_problem_counted_in_the_next_message(world: World) -> None:
    world.raw["watch"] = [
        {**world.raw["watch"][0], "jobs": [92583]},
        {**world.raw["watch"][0], "jobs": [92584]},
    ]
    other = "dba-robot-token-0123456789"
    world.raw["receivers"].append({"name": "dba", "webhook": world.dt.add_robot(other)})
    world.raw["watch"][1]["receivers"] = ["dba"]
    world.sx.add_instance(92584, status=5, result="disk full")
    world.dt.set_down()
    world.tick()
    world.dt.set_down(False)
    # Both dba and the job it watched leave the config: nobody is left to tell of it.
    world.raw["receivers"].pop()
    world.raw["watch"].pop()
    world.advance(60)
    dropped = world.tick()
    assert dropped.status == "degraded"
    (problem,) = [p for p in dropped.problems if p.startswith("dropped 1 pending alert")]
    assert "dba: 1" in problem
    # The next message to a receiver that is still there says one alert never went.
    world.sx.add_instance(92583, status=5, result="timeout")
    world.advance(60)
    after = world.tick()
    assert after.status == "ok" and after.alerts_sent == 1
    (text,) = world.texts()
    assert "timeout" in text and "1 条较早的告警" in text


# -- item 13: previews are what is sent -------------------------------------------------------


def test_a_dry_runs_preview_is_the_text_the_robot_then_receives(world: World) -> None:
    world.dt.add_robot("keyword-robot-token-0123456789", keywords=("SchedulerX-oncall",))
    world.raw["receivers"] = [
        {
            "name": "ops",
            "webhook": world.dt.webhook("keyword-robot-token-0123456789"),
            "keyword": "SchedulerX-oncall",
            "at_mobiles": ["13800000001"],
            "at_user_ids": ["oncall-1"],
        }
    ]
    world.sx.add_instance(92583, status=5, result="disk full")
    preview = world.tick(dry_run=True).preview
    assert world.dt.requests == []
    sent = world.tick()
    assert sent.alerts_sent == 1
    (message,) = world.dt.messages("keyword-robot-token-0123456789")
    assert preview == [
        {
            "receiver": "ops",
            "msgtype": "markdown",
            "title": message["markdown"]["title"],
            "text": message["markdown"]["text"],
        }
    ]
    assert "@oncall-1" in preview[0]["text"] and "SchedulerX-oncall" in preview[0]["text"]


def test_a_dry_run_previews_one_message_per_finding_and_robot(world: World) -> None:
    two_receivers_on_one_robot(world)
    world.sx.add_instance(92583, status=5, result="disk full")
    (preview,) = world.tick(dry_run=True).preview
    assert "@13800000001" in preview["text"] and "@boss-1" in preview["text"]


def test_a_dry_run_previews_the_buttons_a_tick_puts_under_an_alert(world: World) -> None:
    world.raw["actions"] = ACTIONS
    world.env[KEY_ENV] = KEY
    world.sx.add_instance(92583, status=5, result="disk full")
    (preview,) = world.tick(dry_run=True).preview
    assert preview["msgtype"] == "actionCard" and preview["buttons"].count("|") == 1


def test_render_shows_the_heartbeat_at_the_configured_time(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = {**world.raw, "heartbeat": {"receiver": "ops", "at": "09:30"}}
    raw["templates"] = {"language": "en"}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert main(["render", "--kind", "heartbeat", "--config", str(path)]) == 0
    text = json.loads(capsys.readouterr().out)["markdown"]["text"]
    assert "Sent every day at 09:30 (Asia/Shanghai)" in text
    assert "09:00" not in text


def test_render_shows_the_heartbeat_in_the_configured_zone(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = {**world.raw, "heartbeat": {"receiver": "ops", "at": "07:45"}, "timezone": "UTC"}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert main(["render", "--kind", "heartbeat-impaired", "--config", str(path)]) == 0
    text = json.loads(capsys.readouterr().out)["markdown"]["text"]
    # The digest covers the day up to its sending time, in the config's zone.
    assert "07:45（UTC）" in text or "07:45 (UTC)" in text
    assert "2020-07-28 07:45" in text
