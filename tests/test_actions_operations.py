"""Act from the chat (`actions.operations`): retry, mark as succeeded or stop a run.

Stories on the loopback servers: a tick sends a failed run's alert with its buttons to
the DingTalk robot, a button's URL is opened and confirmed as FC 3.0's HTTP trigger would
pass it to `index.handler`, the loopback SchedulerX takes the write (with its signature
checks), the group reads the follow-up, and the next ticks follow the run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import yaml

import index
from schedulerx_alert.config.actions import parse_actions
from schedulerx_alert.core.model import JobKey
from schedulerx_alert.delivery.operation_links import (
    OperationRequest,
    check_operation,
    follow_up,
    operation_signer,
)
from schedulerx_alert.links.serve import serve
from tests.test_actions import answer, context, fc_http_event, form_of
from tests.world import GROUP, NS, ROBOT, World

KEY = "k" * 32 + "-current-signing-key"
ZONE = ZoneInfo("Asia/Shanghai")
ENV_KEYS = {"SCHEDULERX_ALERT_ACTION_KEYS": KEY}
JOB = 92583
OSS_STATE = "schedulerx-alert/state.json"


class Chat:
    """A World whose ticks send buttons, and the link endpoint reading the same config."""

    def __init__(
        self,
        world: World,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        operations: list[str] | None,
    ) -> None:
        self.world = world
        self.tmp_path = tmp_path
        actions: dict[str, Any] = {
            "enabled": True,
            "base_url": "http://127.0.0.1:9/act",
            "durations": ["1h"],
        }
        if operations is not None:
            actions["operations"] = operations
        world.raw["templates"] = {"language": "en"}
        world.raw["actions"] = actions
        world.env.update(ENV_KEYS)
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(world.raw), encoding="utf-8")
        monkeypatch.setenv("SCHEDULERX_ALERT_CONFIG", str(path))
        monkeypatch.setenv("SCHEDULERX_ALERT_ACTION_KEYS", KEY)
        self.settings, problems = parse_actions(
            {**actions, "operations": ["retry", "mark_success", "stop"]}, ENV_KEYS, True
        )
        assert problems == []

    def buttons(self) -> dict[str, str]:
        card = self.world.dt.messages(ROBOT)[-1]
        assert card["msgtype"] == "actionCard", card
        return {b["title"]: b["actionURL"] for b in card["actionCard"]["btns"]}

    def open(self, url: str) -> dict[str, Any]:
        return answer(index.handler(fc_http_event(url), context()))

    def confirm(self, url: str) -> dict[str, Any]:
        form = form_of(self.open(url)["body"]).fields
        assert form, "the page offers no form"
        return answer(index.handler(fc_http_event(url, "POST", form), context()))

    def post(self, url: str, clock: Any = time.time) -> dict[str, Any]:
        token = parse_qs(urlsplit(url).query)["t"][0]
        event = fc_http_event(url, "POST", {"t": token})
        env = {"SCHEDULERX_ALERT_CONFIG": str(self.tmp_path / "config.yaml"), **ENV_KEYS}
        return answer(serve(event, context(), self.tmp_path, clock, env))

    def records(self) -> dict[str, dict[str, Any]]:
        assert self.world.oss is not None
        return {k: json.loads(v) for k, v in self.world.oss.objects.items() if ".operation." in k}


def make_chat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, operations: list[str] | None
) -> Iterator[Chat]:
    with World(tmp_path, state="oss", real_time=True) as world:
        yield Chat(world, tmp_path, monkeypatch, operations)


@pytest.fixture
def chat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Chat]:
    yield from make_chat(tmp_path, monkeypatch, ["retry", "mark_success", "stop"])


@pytest.fixture
def chat_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Chat]:
    yield from make_chat(tmp_path, monkeypatch, None)


def failed_run(chat: Chat) -> int:
    run = chat.world.sx.add_instance(JOB, status=5, result="java.lang.IllegalStateException")
    summary = chat.world.tick()
    assert summary.alerts_sent == 1, summary
    return run


def test_a_retry_from_the_chat_is_confirmed_acts_once_and_its_rerun_is_announced_recovered(
    chat: Chat,
) -> None:
    run = failed_run(chat)
    buttons = chat.buttons()
    assert list(buttons) == ["Silence 1 h", "Retry this run", "Mark as succeeded"]
    sent = len(chat.world.texts())

    # Opening the link shows what will happen to which run, and changes nothing.
    opened = chat.open(buttons["Retry this run"])
    assert opened["statusCode"] == 200
    assert f"Retry run {run} of {JOB}?" in opened["body"]
    assert "runs this failed run again" in opened["body"]
    assert chat.world.sx.operations == [] and chat.records() == {}

    # The page's POST retries it: SchedulerX runs it again, the group reads a follow-up.
    done = chat.confirm(buttons["Retry this run"])
    assert done["statusCode"] == 200, done["body"]
    assert f"run {run} is running again" in done["body"]
    assert chat.world.sx.operations == [("RetryJobInstance", run)]
    assert chat.world.sx.instance(run).status == 3
    # Sent as the SDK sends it: a signed POST, its parameters in the query, no body.
    sx_requests = chat.world.sx.requests
    (write,) = [r for r in sx_requests if r.headers["x-acs-action"] == "RetryJobInstance"]
    assert write.method == "POST" and write.body == b"" and write.ok
    assert write.query["JobInstanceId"] == str(run) and write.query["JobId"] == str(JOB)
    follow = chat.world.texts()[sent:]
    assert len(follow) == 1 and "Retried at" in follow[0] and f"run {run} is running" in follow[0]
    (record,) = chat.records().values()
    assert record["state"] == "answered" and record["outcome"] == "done"
    assert record["operation"] == "retry" and record["instance"] == run
    assert record["source_ip"] == "127.0.0.1" and "DingTalk" in record["user_agent"]
    assert record["schedulerx"] and record["announced"] is True

    # Clicked again, or opened again: nothing more is done, the page says what was.
    for again in (chat.post(buttons["Retry this run"]), chat.open(buttons["Retry this run"])):
        assert again["statusCode"] == 200
        assert "This link was used before" in again["body"] and "Retried" in again["body"]
    assert chat.world.sx.operations == [("RetryJobInstance", run)]
    assert len(chat.world.texts()) == sent + 1

    # The other button was made for the failed attempt: the run has moved on, it acts never.
    stale = chat.confirm(buttons["Mark as succeeded"])
    assert stale["statusCode"] == 409
    assert f"run {run} of {JOB} is already running again" in stale["body"]
    assert "so it was not marked as succeeded" in stale["body"]
    assert chat.world.sx.operations == [("RetryJobInstance", run)]

    # The ticks follow the rerun; its success is announced as a recovery.
    chat.world.tick()
    chat.world.sx.set_status(run, 4)
    chat.world.tick()
    recovered = [t for t in chat.world.texts() if "recovered" in t]
    assert len(recovered) == 1 and str(run) in recovered[0]


def test_clicks_racing_on_one_link_act_once(chat: Chat) -> None:
    failed_run(chat)
    url = chat.buttons()["Retry this run"]
    with ThreadPoolExecutor(4) as pool:
        pages = list(pool.map(lambda _: chat.post(url), range(4)))
    assert len(chat.world.sx.operations) == 1
    statuses = sorted(p["statusCode"] for p in pages)
    assert statuses.count(200) >= 1 and set(statuses) <= {200, 409}


def test_an_expired_or_changed_operation_link_acts_never(chat: Chat) -> None:
    failed_run(chat)
    url = chat.buttons()["Retry this run"]
    later = time.time() + 25 * 3600
    expired = chat.post(url, clock=lambda: later)
    assert expired["statusCode"] == 403 and "expired" in expired["body"].lower()
    token = parse_qs(urlsplit(url).query)["t"][0]
    position = len(token) // 2
    changed = token[:position] + ("A" if token[position] != "A" else "B") + token[position + 1 :]
    tampered = chat.post(url.replace(token, changed))
    assert tampered["statusCode"] == 403
    assert chat.world.sx.operations == [] and chat.records() == {}


def test_with_operations_off_no_button_and_no_link_acts(chat_off: Chat) -> None:
    run = failed_run(chat_off)
    assert list(chat_off.buttons()) == ["Silence 1 h"]
    # A link signed with the function's own key, as if operations had been on.
    forged = OperationRequest(
        "retry", JobKey(NS, GROUP, JOB), run, "", "ops", "0123456789abcdef",
        time.time() + 3600, None,
    )  # fmt: skip
    signer = operation_signer(chat_off.settings, time.time)
    url = f"http://127.0.0.1:9/act?t={signer.sign_wire(forged.to_wire())}"
    for page in (chat_off.open(url), chat_off.post(url)):
        assert page["statusCode"] == 403 and "not enabled" in page["body"].lower()
    assert chat_off.world.sx.operations == [] and chat_off.records() == {}


def test_schedulerx_refusing_is_shown_on_the_page_and_in_the_follow_up(chat: Chat) -> None:
    failed_run(chat)
    sent = len(chat.world.texts())
    chat.world.sx.writes = "basic"
    refused = chat.confirm(chat.buttons()["Retry this run"])
    assert refused["statusCode"] == 409
    assert "only the professional edition supports this operation" in refused["body"]
    (follow,) = chat.world.texts()[sent:]
    assert "Not retried at" in follow and "SchedulerX refused" in follow
    assert "professional edition" in follow
    assert chat.world.sx.operations == []

    failed_run(chat)
    chat.world.sx.writes = "forbidden"
    denied = chat.confirm(chat.buttons()["Mark as succeeded"])
    assert denied["statusCode"] == 409 and "operations policy is not attached" in denied["body"]


def test_a_stuck_run_offers_stop(chat: Chat) -> None:
    run = chat.world.sx.add_instance(JOB, status=3, start_time=time.time() - 3 * 3600)
    chat.world.raw["watch"][0]["stuck_after"] = "30m"
    chat.world.tick()
    buttons = chat.buttons()
    assert "Stop" in buttons and "Retry this run" not in buttons
    stopped = chat.confirm(buttons["Stop"])
    assert stopped["statusCode"] == 200 and f"run {run} is stopped" in stopped["body"]
    assert chat.world.sx.operations == [("StopInstance", run)]


def test_the_follow_up_is_plain_text_whatever_the_job_name_or_refusal_says() -> None:
    record = {
        "operation": "retry",
        "at": 1795572120.0,
        "instance": 1700000000003,
        "job": "[click](http://evil.example/x) @13800000000",
        "outcome": "refused",
        "reason": "<b>no</b> see http://evil.example",
    }
    message = follow_up(record, "en", "Asia/Shanghai")
    assert message.title == "Not retried 10:02"
    assert "http://" not in message.text and "](" not in message.text


def test_operations_are_off_unless_listed_and_checked_with_their_paths() -> None:
    base = {"enabled": True, "base_url": "https://alert.example.com/act"}
    settings, problems = parse_actions(base, ENV_KEYS)
    assert problems == [] and settings.operations == ()
    settings, problems = parse_actions({**base, "operations": ["stop", "retry"]}, ENV_KEYS)
    assert problems == [] and settings.operations == ("retry", "stop")
    settings, problems = parse_actions(
        {**base, "operations": ["retry", "rerun", "retry"]}, ENV_KEYS
    )
    assert problems == [
        "actions.operations[1]: 'rerun' is not one of: retry, mark_success, stop",
        "actions.operations[2]: retry is listed twice",
    ]
    assert settings.operations == () and not settings.usable
    _, problems = parse_actions({**base, "operations": "retry"}, ENV_KEYS)
    assert problems == ["actions.operations: must be a list such as [retry, mark_success, stop]"]


def test_the_demo_ends_with_a_retry_from_the_chat_and_its_recovery(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests import demo

    assert demo.main() == 0
    out = capsys.readouterr().out
    story = out[out.index("=== tick 6") :]
    assert "buttons: 静默 1 小时, 重跑这次运行, 标记为成功" in story
    assert "SchedulerX took RetryJobInstance" in story
    assert "### 已重跑" in story and "正在重新运行" in story
    assert "=== tick 7" in story and "任务已恢复：nightly-etl (92583)" in story


def test_operations_listed_while_actions_are_off_are_a_problem_not_quietly_off() -> None:
    settings, problems = parse_actions({"operations": ["retry"]}, ENV_KEYS)
    assert problems == ["actions.operations: needs actions.enabled: true (the buttons carry them)"]
    assert not settings.usable


def test_a_silence_token_is_never_an_operation_token_nor_the_reverse(chat: Chat) -> None:
    from schedulerx_alert.delivery.links import LinkRefused, LinkSigner, check_link

    wanted = OperationRequest(
        "retry", JobKey(NS, GROUP, JOB), 1, "", "ops", "0123456789abcdef", time.time() // 1 + 60
    )
    silence_signer = LinkSigner((KEY,), 3600)
    operation = operation_signer(chat.settings, time.time)
    with pytest.raises(LinkRefused, match="signature"):
        check_operation(operation, silence_signer.sign_wire(wanted.to_wire()), time.time())
    with pytest.raises(LinkRefused, match="signature"):
        check_link(silence_signer, operation.sign_wire(wanted.to_wire()), time.time())
    # The same payload signed as an operation link reads back whole.
    assert check_operation(operation, operation.sign_wire(wanted.to_wire()), time.time()) == wanted


def test_an_operation_post_from_another_site_or_with_a_foreign_key_acts_never(
    chat: Chat,
) -> None:
    run = failed_run(chat)
    url = chat.buttons()["Retry this run"]
    token = parse_qs(urlsplit(url).query)["t"][0]
    event = json.loads(fc_http_event(url, "POST", {"t": token}))
    event["headers"]["Sec-Fetch-Site"] = "cross-site"
    crossing = answer(index.handler(json.dumps(event).encode(), context()))
    assert crossing["statusCode"] == 403 and "own page" in crossing["body"]

    assert chat.world.oss is not None
    before = len(chat.world.oss.requests)
    foreign = OperationRequest(
        "retry", JobKey(NS, GROUP, JOB), run, "", "ops", "0123456789abcdef", time.time() + 60
    )
    other_settings, _ = parse_actions(
        {"enabled": True, "base_url": "https://x.example.com/a"},
        {"SCHEDULERX_ALERT_ACTION_KEYS": "x" * 40},
    )
    other = operation_signer(other_settings, time.time).sign_wire(foreign.to_wire())
    refused = chat.post(f"http://127.0.0.1:9/act?t={other}")
    assert refused["statusCode"] == 403
    # Refused before the config or the state is read.
    assert len(chat.world.oss.requests) == before
    assert chat.world.sx.operations == [] and chat.records() == {}


def test_the_loopback_schedulerx_checks_a_write_s_signature_as_a_read_s(chat: Chat) -> None:
    from zoneinfo import ZoneInfo

    from schedulerx_alert.sources.schedulerx import SchedulerXClient, SchedulerXError
    from schedulerx_alert.support.credentials import Credentials
    from tests.world import AK, STS

    run = failed_run(chat)
    job = JobKey(NS, GROUP, JOB)
    wrong = Credentials(AK, "not-the-secret-0123456789", STS)
    client = SchedulerXClient(chat.world.sx.url, "cn-hangzhou", wrong, ZoneInfo("Asia/Shanghai"))
    with pytest.raises(SchedulerXError) as refused:
        client.operate("retry", job, run)
    assert refused.value.auth and chat.world.sx.operations == []
    client.credentials = chat.world.credentials
    assert client.get_job_instance(job, run) is not None
    assert client.operate("mark_success", job, run)  # SchedulerX's RequestId
    assert chat.world.sx.operations == [("SetJobInstanceSuccess", run)]
    with pytest.raises(SchedulerXError, match="Success=false") as wrong_state:
        client.operate("stop", job, run)  # a finished run cannot be stopped
    assert not wrong_state.value.auth and not wrong_state.value.retryable


def test_each_write_goes_with_the_method_the_official_sdk_uses_and_no_other(chat: Chat) -> None:
    """The loopback SchedulerX takes each write as alibabacloud_schedulerx220190430 sends it
    (RetryJobInstance and SetJobInstanceSuccess by POST, StopInstance by GET) and refuses
    another method, so a story whose client sends a write the wrong way fails."""
    from alibabacloud_schedulerx220190430 import models as sdk_models
    from alibabacloud_schedulerx220190430.client import Client as SdkClient
    from alibabacloud_tea_openapi.models import Config as SdkConfig

    from schedulerx_alert.sources.schedulerx import (
        OPERATION_CALLS,
        WRITE_METHODS,
        SchedulerXClient,
        SchedulerXError,
    )
    from tests.world import AK, SK, STS

    sx = chat.world.sx
    sdk = SdkClient(
        SdkConfig(
            access_key_id=AK, access_key_secret=SK, security_token=STS,
            region_id="cn-hangzhou", endpoint=sx.endpoint, protocol="http",
        )
    )  # fmt: skip
    ids = {"region_id": "cn-hangzhou", "namespace": NS, "group_id": GROUP, "job_id": JOB}
    failed = sx.add_instance(JOB, status=5, result="boom")
    sdk.retry_job_instance(sdk_models.RetryJobInstanceRequest(job_instance_id=failed, **ids))
    sdk.stop_instance(sdk_models.StopInstanceRequest(instance_id=failed, **ids))  # rerunning
    again = sx.add_instance(JOB, status=5, result="boom")
    success = sdk_models.SetJobInstanceSuccessRequest(job_instance_id=again, **ids)
    sdk.set_job_instance_success(success)
    assert sx.operations == [
        ("RetryJobInstance", failed), ("StopInstance", failed), ("SetJobInstanceSuccess", again),
    ]  # fmt: skip
    sx.set_status(again, 5)
    sent = {r.headers["x-acs-action"]: r.method for r in sx.requests if r.ok}
    assert {a: sent[a] for a in WRITE_METHODS} == dict(WRITE_METHODS)

    # The product's client sends them the same way; the other method is refused.
    client = SchedulerXClient(sx.url, "cn-hangzhou", chat.world.credentials, ZONE)
    job = JobKey(NS, GROUP, JOB)
    for operation, (action, id_name) in OPERATION_CALLS.items():
        other = "GET" if WRITE_METHODS[action] == "POST" else "POST"
        params = {"Namespace": NS, "GroupId": GROUP, "JobId": str(JOB), id_name: str(again)}
        with pytest.raises(SchedulerXError, match="UnsupportedHTTPMethod") as refused:
            client.request(other, action, params)
        assert not refused.value.retryable and operation
    assert sx.operations[3:] == []
    client.operate("retry", job, again)
    assert sx.operations[3:] == [("RetryJobInstance", again)]


# -- the follow-up is never lost ---------------------------------------------------------------


def follow_ups(chat: Chat) -> list[str]:
    return [t for t in chat.world.texts() if "Retried at" in t]


def test_a_follow_up_dingtalk_refused_at_the_click_is_posted_by_the_next_tick_once(
    chat: Chat,
) -> None:
    run = failed_run(chat)
    url = chat.buttons()["Retry this run"]
    # The robot is over its minute at the click: DingTalk answers 130101.
    chat.world.dt.fail_next(130101, token=ROBOT)
    done = chat.confirm(url)
    assert done["statusCode"] == 200 and f"run {run} is running again" in done["body"]
    assert "the next check, within about a minute, posts it to the group" in done["body"]
    assert chat.world.sx.operations == [("RetryJobInstance", run)]
    assert follow_ups(chat) == []
    (record,) = chat.records().values()
    assert record["announced"] is False

    # The next tick posts it through its own delivery, counted against the robot's minute.
    summary = chat.world.tick()
    (posted,) = follow_ups(chat)
    assert f"run {run} is running again" in posted and str(JOB) in posted
    assert summary.problems == [] and summary.messages == 1, summary
    (record,) = chat.records().values()
    assert record["announced"] is True and record["announced_by"] == "tick"
    assert len(chat.world.dt.messages(ROBOT)) == 2  # the alert, then the follow-up
    state = json.loads(chat.world.oss.objects[OSS_STATE])  # type: ignore[union-attr]
    assert sum(len(r["sent"]) for r in state["robots"].values()) == 2

    # Never twice: the ticks after it post nothing more, and the link says what was done.
    for _ in range(2):
        assert chat.world.tick().messages == 0
    again = chat.open(url)
    assert again["statusCode"] == 200 and "This link was used before" in again["body"]
    assert len(follow_ups(chat)) == 1


def test_a_follow_up_the_robot_keeps_refusing_is_a_problem_of_each_tick_until_it_goes(
    chat: Chat,
) -> None:
    run = failed_run(chat)
    chat.world.dt.fail_next("5xx", token=ROBOT)
    chat.confirm(chat.buttons()["Retry this run"])
    assert follow_ups(chat) == []

    # The robot's keyword or signature is wrong for a while: a problem, not a silence.
    chat.world.dt.fail_next(310000, times=2, token=ROBOT)
    for _ in range(2):
        summary = chat.world.tick()
        assert summary.status != "ok"
        (problem,) = [p for p in summary.problems if "follow-up" in p]
        assert f"retry on run {run}" in problem and "310000" in problem
        assert "a later tick tries again" in problem
        assert follow_ups(chat) == []
        (record,) = chat.records().values()
        assert record["announced"] is False

    # Fixed: the next tick posts it, once.
    summary = chat.world.tick()
    assert summary.problems == [] and len(follow_ups(chat)) == 1
    chat.world.tick()
    assert len(follow_ups(chat)) == 1


def test_follow_ups_of_two_clicks_refused_at_once_each_go_once_in_order(chat: Chat) -> None:
    first = failed_run(chat)
    url_first = chat.buttons()["Retry this run"]
    second = failed_run(chat)
    url_second = chat.buttons()["Retry this run"]
    chat.world.dt.set_down()
    chat.confirm(url_first)
    chat.confirm(url_second)
    chat.world.dt.set_down(False)
    assert follow_ups(chat) == []
    chat.world.tick()
    posted = follow_ups(chat)
    assert len(posted) == 2
    assert f"run {first} is" in posted[0] and f"run {second} is" in posted[1]
    chat.world.tick()
    assert len(follow_ups(chat)) == 2


def test_a_queued_follow_up_waits_for_the_robot_s_minute_behind_the_alerts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the minute clock: the follow-up spends the robot's budget like any message, and
    a new failure's alert goes first."""
    with World(tmp_path, state="file") as world:
        world.raw["dingtalk"]["max_per_minute"] = 1
        chat = Chat(world, tmp_path, monkeypatch, ["retry"])
        run = failed_run(chat)
        world.advance(5)
        world.dt.fail_next(130101, token=ROBOT)
        done = chat.post(chat.buttons()["Retry this run"], clock=world.clock)
        assert done["statusCode"] == 200 and world.sx.operations == [("RetryJobInstance", run)]
        assert follow_ups(chat) == []

        # A minute later another job fails: its alert takes the robot's one message.
        other = world.sx.add_instance(92584, status=5, result="java.lang.OutOfMemoryError")
        world.advance(55)
        summary = world.tick()
        assert summary.alerts_sent == 1 and summary.messages == 1
        assert str(other) in world.texts()[-1] and follow_ups(chat) == []
        assert summary.problems == []
        assert any("follow-up of retry on run" in n and "rate budget" in n for n in summary.notes)

        # The minute after, the follow-up goes.
        world.advance(60)
        summary = world.tick()
        assert summary.messages == 1 and summary.problems == []
        (posted,) = follow_ups(chat)
        assert f"run {run} is running again" in posted
        world.advance(60)
        assert world.tick().messages == 0 and len(follow_ups(chat)) == 1


# -- what the page and the follow-up say of each refusal ----------------------------------------


def _running_meanwhile(chat: Chat, run: int) -> None:
    # Someone retries the run in the console between the link's re-read and its write.
    def latency(action: str) -> float:
        if action == "RetryJobInstance":
            chat.world.sx.set_status(run, 3)
        return 0.0

    chat.world.sx.latency = latency


REFUSED: dict[str, tuple[Callable[[Chat, int], object], list[str]]] = {
    "already running, seen before the write": (
        lambda chat, run: chat.world.sx.set_status(run, 3),
        ["run {run} of {job} is already running again", "so it was not retried",
         "how it ends follows as an alert"],
    ),
    "already running, said by SchedulerX": (
        _running_meanwhile,
        ["run {run} of {job} is already running again", "so it was not retried"],
    ),
    "permission denied": (
        lambda chat, run: setattr(chat.world.sx, "writes", "forbidden"),
        ["the function's role may not retry runs", "edas:ManageSchedulerxJobInstRun",
         "operations policy is not attached", "Run {run} of {job} is unchanged"],
    ),
    "wrong state, said by SchedulerX": (
        lambda chat, run: chat.world.sx.fail_next(
            "success_false", action="RetryJobInstance", message="instance status not allowed"
        ),
        ["SchedulerX refused to retry run {run} of {job}, saying: instance status not allowed",
         "The run is unchanged"],
    ),
    "wrong state, succeeded since": (
        lambda chat, run: chat.world.sx.set_status(run, 4),
        ["run {run} of {job} has succeeded since the alert, so it was not retried"],
    ),
    "throttled": (
        lambda chat, run: chat.world.sx.fail_next("throttle", action="RetryJobInstance"),
        ["SchedulerX is throttling calls and did not retry run {run} of {job}",
         "it is unchanged", "The link can be used again", "press the button again in a minute"],
    ),
    "no clear answer": (
        lambda chat, run: chat.world.sx.fail_next("5xx", action="RetryJobInstance"),
        ["SchedulerX gave no clear answer", "run {run} of {job} may or may not have been retried",
         "Look at the run in the SchedulerX console"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSED))
def test_each_refusal_names_the_job_the_run_and_what_became_of_it_on_page_and_in_chat(
    chat: Chat, case: str
) -> None:
    import html

    run = failed_run(chat)
    url = chat.buttons()["Retry this run"]
    sent = len(chat.world.texts())
    confirm = html.unescape(chat.open(url)["body"])
    assert f"Retry run {run} of {JOB}?" in confirm
    assert "SchedulerX runs this failed run again" in confirm

    arrange, expected = REFUSED[case]
    arrange(chat, run)
    page = chat.confirm(url)
    body = html.unescape(page["body"])
    (follow,) = chat.world.texts()[sent:]
    assert page["statusCode"] == 409
    for words in expected:
        sentence = words.format(run=run, job=JOB)
        assert sentence in body, (case, body)
        assert sentence in follow, (case, follow)
    # The page and the message name the job and the run in their facts too.
    assert f"<dd>{JOB}</dd>" in page["body"] and f"<dd>{run}</dd>" in page["body"]
    assert f"- **Job**: {JOB}" in follow and f"- **Run**: {run}" in follow
    assert "Not retried at" in follow and "Success=false" not in follow + body
    assert chat.world.sx.operations == []


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_every_refusal_reads_in_both_languages_for_every_operation(language: str) -> None:
    from schedulerx_alert.core.model import JobInstance
    from schedulerx_alert.links.operate import REFUSALS, changed, refusal

    for operation in ("retry", "mark_success", "stop"):
        wanted = OperationRequest(
            operation, JobKey(NS, GROUP, JOB), 1700000000003, "2026-11-25 10:40:00", "ops",
            "0123456789abcdef", time.time() + 60, "nightly-etl",
        )  # fmt: skip
        for kind in REFUSALS[language]:
            sentence = refusal(kind, wanted, language, 6, why="HTTP 503", said="nope")
            assert "nightly-etl (92583)" in sentence and "1700000000003" in sentence, kind
            assert "{" not in sentence, sentence

    # A stop link whose run ended since: what it is now, in words.
    stop = OperationRequest(
        "stop", JobKey(NS, GROUP, JOB), 7, "", "ops", "0123456789abcdef", time.time(), None
    )
    ended = JobInstance(JobKey(NS, GROUP, JOB), 7, 5)
    said = changed(stop, ended, language)
    assert said is not None
    assert ("failed" if language == "en" else "失败") in said
    assert ("not stopped" if language == "en" else "所以没有停止") in said
