"""Owners and evidence as stories: SchedulerX, DingTalk and the state on loopback.

`mention_owners` @-mentions a job's SchedulerX contacts (read with GetJobInfo when no job
list was read, and kept in the catalog); `at_user_ids` mentions DingTalk users by id;
`include_log` adds the failed run's last log lines (GetLog), and whatever becomes of that
call (slow, failing, an edition without it, no quota left) the alert goes on time without it.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from schedulerx_alert.config import ConfigError
from schedulerx_alert.core.catalog import Contact
from schedulerx_alert.core.evidence import LOG_CHARS, LOG_LINES, NO_EVIDENCE, Evidence, excerpt
from schedulerx_alert.core.model import InstanceStatus
from schedulerx_alert.core.state import STATE_VERSION, dump_state, load_state
from schedulerx_alert.delivery.evidence_text import log_context
from schedulerx_alert.delivery.mentions import MAX_MESSAGE_OWNERS, mentions, mobile, owners_of
from schedulerx_alert.delivery.render import Renderer
from tests.builders import alert
from tests.fakes.dingtalk import notified
from tests.fakes.schedulerx import UNSUPPORTED_LOG_MESSAGE
from tests.world import GROUP, NS, ROBOT, World

FAILED, SUCCESS = InstanceStatus.FAILED, InstanceStatus.SUCCESS
MINUTE = 60.0
OWNER = "13800001111"
DING_TOKEN = "contact-robot-token-0123456789"
# A log a job wrote, with everything that would be markup if a message let it be.
HOSTILE_LOG = (
    "2026-11-25 10:00:01.100 INFO  [main] starting nightly-report",
    "2026-11-25 10:00:02.200 WARN  see [the runbook](https://evil.example/phish) or ![x](https://evil.example/x.png)",
    "2026-11-25 10:00:03.300 ERROR ping @13800009999 and @all, # not a heading",
    "```",
    "2026-11-25 10:00:04.400 ERROR **bold** <b>html</b> ``` closing fence",
    "2026-11-25 10:00:05.500 ERROR java.lang.IllegalStateException: boom",
)


def owner_job(world: World, job_id: int = 92583, *contacts: dict[str, str]) -> None:
    world.sx.add_job(
        NS,
        GROUP,
        job_id,
        name=f"job-{job_id}",
        contacts=list(contacts) or [{"UserName": "Li Lei", "UserPhone": "138-0000-1111"}],
    )


def watch(world: World, **options: Any) -> None:
    world.raw["watch"][0].update(options)


def messages(world: World) -> list[dict[str, Any]]:
    return world.dt.messages(ROBOT)


def body(message: dict[str, Any]) -> str:
    return str(message["markdown"]["text"])


# -- owners --------------------------------------------------------------------------------


def test_owners_are_mentioned_from_get_job_info_once_and_kept_in_the_catalog(
    world: World,
) -> None:
    owner_job(
        world,
        92583,
        {"UserName": "Li Lei", "UserPhone": "138-0000-1111"},
        {"UserName": "Han Meimei", "UserPhone": "call me maybe"},
        {
            "UserName": "Robot",
            "Ding": f"https://oapi.dingtalk.com/robot/send?access_token={DING_TOKEN}",
        },
    )
    watch(world, mention_owners=True)
    world.sx.add_instance(92583, status=FAILED, result="disk full")
    first = world.tick()
    world.advance(MINUTE)
    world.sx.add_instance(92583, status=FAILED, result="disk full again")
    world.tick()

    one, two = messages(world)
    for message in (one, two):
        assert message["at"]["atMobiles"] == [OWNER]
        assert f"@{OWNER}" in body(message)
        assert notified(message) == ([OWNER], [])
    # Looked up once, then read from the catalog in the state: the read that gives the
    # rules each job's own timeout (stuck_after: job_timeout) gives the owners too.
    assert world.sx.calls("GetJobInfo") == 2  # 92583 and 92584
    assert first.calls["GetJobInfo"] == 2
    stored = load_state(world.state_path.read_bytes())
    contacts = stored.catalog[next(iter(stored.catalog))].contacts
    assert contacts[0] == Contact("Li Lei", "138-0000-1111", "")
    # The malformed number is a note naming the contact, never the alert's end.
    assert any("contact 1 ('Han Meimei')" in note for note in first.notes)
    assert not any("call me maybe" in note for note in first.notes)
    # The contact's robot webhook (its token) reaches neither a message nor the state.
    raw_state = world.state_path.read_text()
    assert DING_TOKEN not in raw_state
    assert all(DING_TOKEN not in json.dumps(m) for m in messages(world))


def test_a_top_level_default_an_entry_overrides_and_recoveries_page_nobody(
    tmp_path: Path,
) -> None:
    with World(tmp_path, jobs=(92583,)) as world:
        owner_job(world, 92583)
        world.sx.add_job(NS, "quiet.group", 70001, contacts=[{"UserPhone": "13900002222"}])
        world.raw["mention_owners"] = True
        world.raw["watch"].append(
            {
                "namespace": NS,
                "group": "quiet.group",
                "jobs": [70001],
                "receivers": ["ops"],
                "mention_owners": False,
                # Its rules need nothing of the job itself either.
                "stuck_after": "2h",
            }
        )
        world.sx.add_instance(92583, status=FAILED, result="disk full")
        world.sx.add_instance(70001, status=FAILED, result="queue gone")
        world.tick()
        world.advance(MINUTE)
        world.sx.add_instance(92583, status=SUCCESS)
        world.tick()

        by_job = {("92583" in body(m), "70001" in body(m)): m for m in messages(world)[:2]}
        assert by_job[(True, False)]["at"]["atMobiles"] == [OWNER]
        assert by_job[(False, True)]["at"]["atMobiles"] == []
        recovered = messages(world)[2]
        assert "已恢复" in body(recovered)
        assert recovered["at"]["atMobiles"] == []
        # No lookup for the entry that does not ask for owners.
        assert world.sx.calls("GetJobInfo") == 1


def test_at_user_ids_beside_at_mobiles(world: World) -> None:
    world.raw["receivers"][0]["at_mobiles"] = ["13700003333"]
    world.raw["receivers"][0]["at_user_ids"] = ["manager01", "oncall-2"]
    world.sx.add_instance(92583, status=FAILED, result="disk full")
    world.tick()

    (message,) = messages(world)
    assert message["at"]["atMobiles"] == ["13700003333"]
    assert message["at"]["atUserIds"] == ["manager01", "oncall-2"]
    assert notified(message) == (["13700003333"], ["manager01", "oncall-2"])


def test_a_summary_mentions_the_union_of_owners_bounded(tmp_path: Path) -> None:
    jobs = tuple(range(80001, 80013))  # 12 jobs, 12 owners
    with World(tmp_path, jobs=jobs) as world:
        for n, job_id in enumerate(jobs):
            owner_job(world, job_id, {"UserPhone": f"1390000{n:04d}"})
            world.sx.add_instance(job_id, status=FAILED, result=f"failure {'abcdefghijkl'[n]}")
        world.raw["shared_cause"] = False
        watch(world, mention_owners=True)
        summary = world.tick()

    (message,) = messages(world)
    assert "12 个任务实例异常" in body(message)
    mobiles = message["at"]["atMobiles"]
    assert len(mobiles) == MAX_MESSAGE_OWNERS == len(set(mobiles))
    assert set(mobiles) <= {f"1390000{n:04d}" for n in range(12)}
    assert notified(message)[0] == mobiles
    # A group of more than ten ids has its job list read (ListJobs): the contacts come with it.
    assert "GetJobInfo" not in summary.calls and summary.calls["ListJobs"] >= 1


def test_mentions_never_come_from_job_text(world: World) -> None:
    watch(world, mention_owners=True)
    owner_job(world)
    world.sx.add_instance(92583, status=FAILED, result="call @13800009999 now, or @all")
    world.tick()

    (message,) = messages(world)
    assert message["at"]["atMobiles"] == [OWNER]
    assert "@13800009999" not in body(message)
    assert "＠13800009999" in body(message)
    assert notified(message) == ([OWNER], [])


# -- evidence: GetLog ------------------------------------------------------------------------


def log_story(world: World, *lines: str) -> int:
    watch(world, include_log=True)
    run = world.sx.add_instance(92583, status=FAILED, result="boom")
    world.sx.add_log(run, *lines)
    return run


def test_a_hostile_log_arrives_as_inert_code(world: World) -> None:
    log_story(world, *HOSTILE_LOG)
    summary = world.tick()

    (message,) = messages(world)
    text = body(message)
    assert summary.calls["GetLog"] == 1
    block = text[text.index("**最近日志**") :]
    # One fenced block, opened and closed by us: no fence in the log survives to close it.
    assert text.count("```") == 2
    inside = block.split("```")[1]
    assert "starting nightly-report" in inside
    assert inside.strip().endswith("java.lang.IllegalStateException: boom")  # oldest first
    for live in ("](", "![", "https://", "<b>", "**", "@13800009999", "@all", "# not"):
        assert live not in inside, live
    assert "hxxps://evil［.］example" in inside
    assert "＠13800009999" in inside
    assert message["at"]["atMobiles"] == []


def test_a_retried_alert_keeps_its_log_and_does_not_ask_again(world: World) -> None:
    log_story(world, "2026-11-25 10:00:05 ERROR disk full on /data")
    world.dt.set_down()
    down = world.tick()
    assert down.alerts_pending == 1
    stored = load_state(world.state_path.read_bytes())
    assert stored.outbox[0].evidence.log == ("2026-11-25 10:00:05 ERROR disk full on /data",)
    world.dt.set_down(False)
    world.advance(MINUTE)
    world.tick()

    (message,) = messages(world)
    assert "disk full on /data" in body(message)
    assert world.sx.calls("GetLog") == 1


def test_a_slow_get_log_costs_the_log_not_the_alert(world: World) -> None:
    log_story(world, "never shown")
    world.raw["schedulerx"]["timeout_seconds"] = 0.5
    world.sx.configure(log_mode="slow", log_delay=5.0)
    began = time.monotonic()
    summary = world.tick()
    took = time.monotonic() - began

    assert summary.alerts_sent == 1
    assert took < 3.0
    (message,) = messages(world)
    assert "（日志不可用：GetLog timed out）" in body(message)
    assert "never shown" not in body(message)


def test_a_failing_get_log_is_not_retried_and_the_alert_goes(world: World) -> None:
    log_story(world, "never shown")
    world.sx.configure(log_mode="fail")
    summary = world.tick()

    assert summary.alerts_sent == 1 and summary.status == "ok"
    assert world.sx.calls("GetLog") == 1
    (message,) = messages(world)
    assert "日志不可用：SchedulerX did not answer GetLog" in body(message)


def test_an_edition_without_get_log_is_asked_once_per_group(world: World) -> None:
    watch(world, include_log=True)
    world.sx.configure(log_mode="unsupported")
    world.sx.add_instance(92583, status=FAILED, result="boom")
    world.sx.add_instance(92584, status=FAILED, result="bust")
    world.raw["dingtalk"]["summary_threshold"] = 5
    world.raw["schedulerx"]["concurrency"] = 1
    summary = world.tick()

    texts = [body(m) for m in messages(world)]
    assert len(texts) == 2
    for text in texts:
        assert f"日志不可用：SchedulerX: {UNSUPPORTED_LOG_MESSAGE}" in text
    assert world.sx.calls("GetLog") == 1
    # include_log is set and cannot work there: the tick says so, it is not `ok`.
    assert summary.status == "degraded" and summary.alerts_sent == 2
    assert summary.problems == [
        f"include_log: GetLog refused in {NS}/{GROUP} (SchedulerX: {UNSUPPORTED_LOG_MESSAGE}); "
        "2 failure message(s) went without their log lines"
    ]


def test_a_run_without_log_lines_says_so(world: World) -> None:
    log_story(world)  # the Basic edition's log service, or a worker that logged nothing
    world.tick()
    (message,) = messages(world)
    assert "SchedulerX has no log lines for this run" in body(message)


def test_no_get_log_quota_left_sends_the_alert_without_asking(tmp_path: Path) -> None:
    with World(tmp_path, jobs=(92583,)) as world:
        world.raw["schedulerx"]["max_calls_per_minute"] = 1
        log_story(world, "first run's log")
        world.tick()
        # Ticks share each API's minute: the call is kept in the state with the others'.
        assert "GetLog" in load_state(world.state_path.read_bytes()).sources.calls
        world.advance(61)  # the next minute: one poll, one GetLog again
        world.sx.add_instance(92583, status=FAILED, result="boom again")
        world.sx.add_instance(92583, status=FAILED, result="and again")
        second = world.tick()

        first, *again = messages(world)
        assert "first run's log" in body(first)
        # Two failed runs, one GetLog left in the minute: the other goes without asking.
        assert world.sx.calls("GetLog") == 2
        assert second.alerts_sent == 2 and second.calls["GetLog"] == 1
        notes = [t for t in map(body, again) if "GetLog quota for this minute is used up" in t]
        assert len(notes) == 1


def test_logs_are_asked_for_failures_only_and_only_where_asked(world: World) -> None:
    world.raw["watch"][0]["jobs"] = [92583]
    world.raw["watch"].append(
        {"namespace": NS, "group": GROUP, "jobs": [92584], "receivers": ["ops"]}
    )
    log_story(world, "shown")
    other = world.sx.add_instance(92584, status=FAILED, result="bust")
    world.sx.add_log(other, "not asked for")
    world.tick()
    world.advance(MINUTE)
    world.sx.add_instance(92583, status=SUCCESS)
    world.tick()

    assert world.sx.calls("GetLog") == 1
    texts = [body(m) for m in messages(world)]
    assert any("shown" in t for t in texts)
    assert not any("not asked for" in t or "日志不可用" in t for t in texts)


def test_the_english_template_shows_the_log_too(world: World) -> None:
    world.raw["templates"] = {"language": "en"}
    log_story(world, "2026-11-25 10:00:05 ERROR boom")
    world.tick()
    (message,) = messages(world)
    assert "**Last log lines**:\n\n```\n2026-11-25 10:00:05 ERROR boom\n```" in body(message)


# -- the pieces ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800001111", "13800001111"),
        ("+86 138 0000 1111", "13800001111"),
        ("86-138-0000-1111", "13800001111"),
        ("+852-61234567", "+852-61234567"),
        ("12800001111", None),
        ("138000011112", None),
        ("call me", None),
        ("", None),
        ("13800001111\n@all", None),
        ("1" * 100, None),
    ],
)
def test_contact_numbers_are_checked(raw: str, expected: str | None) -> None:
    assert mobile(raw) == expected


def test_owners_of_contacts_dedupe_and_bound() -> None:
    contacts = [Contact(phone=f"1390000{n:04d}") for n in range(12)]
    contacts.append(Contact(phone="13900000000"))
    owners, notes = owners_of(contacts, "job x")
    assert len(owners) == 10 and owners[0] == "13900000000"
    assert notes == ["job x: 12 contacts, the first 10 are mentioned"]


def test_a_message_mentions_the_receivers_own_first_and_each_once() -> None:
    one = alert(1)
    two = alert(2)
    from dataclasses import replace

    one = replace(one, evidence=Evidence(owners=("13800001111", "13700003333")))
    two = replace(two, evidence=Evidence(owners=("13800001111", "13900002222")))
    at = mentions(("13700003333",), ("boss",), (one, two))
    assert at.mobiles == ("13700003333", "13800001111", "13900002222")
    assert at.user_ids == ("boss",)


def test_the_excerpt_keeps_the_end_of_the_log() -> None:
    lines = [f"line {n}" for n in range(100)] + ["", "   ", "x" * 1000]
    kept = excerpt(lines)
    assert len(kept) == LOG_LINES
    assert kept[-1].startswith("xxx") and kept[-1].endswith("…") and len(kept[-1]) == 300
    assert kept[0] == "line 81"
    assert sum(map(len, excerpt(["y" * 299] * 50))) <= LOG_CHARS


def test_a_fence_in_the_log_never_closes_ours() -> None:
    lines = ("```", "````markdown", "~~~", "[x](https://e.example)", "`inline`")
    ctx = log_context(Evidence(log=lines), 1500)
    fenced = ctx["log"]
    assert fenced.startswith("```\n") and fenced.endswith("\n```")
    assert fenced.count("`") == 6
    assert ctx["log_note"] is None
    assert log_context(Evidence(log=lines), 0)["log"] == ""  # shrunk to nothing: dropped


def test_the_log_shrinks_from_its_start_with_the_message() -> None:
    lines = tuple(f"{n:03d} " + "z" * 90 for n in range(20))
    full = log_context(Evidence(log=lines), 1500)["log_lines"]
    short = log_context(Evidence(log=lines), 400)["log_lines"]
    assert len(short) < len(full) == 20
    assert short[-1] == full[-1]


def test_evidence_round_trips_and_a_state_without_it_still_loads() -> None:
    with_evidence = alert(1)
    from dataclasses import replace

    with_evidence = replace(
        with_evidence,
        evidence=Evidence(owners=(OWNER,), log=("a", "b"), log_note=""),
    )
    noted = replace(alert(2), evidence=Evidence(log_note="GetLog timed out"))
    from schedulerx_alert.core.state import State

    state = State(outbox=(with_evidence, noted, alert(3)))
    again = load_state(dump_state(state))
    assert [a.evidence for a in again.outbox] == [
        Evidence(owners=(OWNER,), log=("a", "b")),
        Evidence(log_note="GetLog timed out"),
        NO_EVIDENCE,
    ]
    assert again.outbox[1].evidence.log_tried
    # The document the previous build wrote (no evidence key) reads as before.
    doc = json.loads(dump_state(State(outbox=(alert(3),))))
    assert doc["version"] == STATE_VERSION and "evidence" not in doc["outbox"][0]
    assert load_state(json.dumps(doc).encode()).outbox[0].evidence == NO_EVIDENCE


def test_a_renderer_without_evidence_shows_nothing_of_it() -> None:
    message = Renderer().alert(alert(1, result="boom"))
    assert "日志" not in message.text
    assert message.at_user_ids == ()


def test_config_problems_name_their_paths(world: World) -> None:
    world.raw["receivers"][0]["at_user_ids"] = ["ok-id", "not an id", 7]
    world.raw["watch"][0]["mention_owners"] = "yes"
    world.raw["include_log"] = 1
    with pytest.raises(ConfigError) as caught:
        world.config()
    problems = caught.value.problems
    wrong_id = "receivers[0].at_user_ids[1]: must be a DingTalk user id"
    assert any(p.startswith(wrong_id) for p in problems)
    assert any(p.startswith("receivers[0].at_user_ids[2]:") for p in problems)
    assert "watch[0].mention_owners: must be true or false, not 'yes'" in problems
    assert "include_log: must be true or false, not 1" in problems


def test_the_role_may_read_logs() -> None:
    from schedulerx_alert.sources.schedulerx import RAM_ACTIONS

    assert RAM_ACTIONS["GetLog"] == "edas:ReadSchedulerxLogQuery"
    for deployment in ("s.yaml", "template.yml"):
        text = (Path(__file__).parent.parent / deployment).read_text()
        assert re.search(r"- edas:ReadSchedulerxLogQuery\n", text), deployment
