"""Silence from the chat: buttons under an alert whose signed links create a silence.

The stories run against the loopback DingTalk robot and OSS server: an alert goes out
as an actionCard, its button's URL is opened as FC 3.0's HTTP trigger would pass it to
`index.handler`, and the silence book beside the state is read back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import pytest
import yaml

import index
from schedulerx_alert.config import ReceiverConfig
from schedulerx_alert.config.actions import DEFAULT_KEY_ENV, ActionSettings, Span, parse_actions
from schedulerx_alert.core.state import Alert, run_alert
from schedulerx_alert.delivery.channels.dingtalk import DingTalkReceiver
from schedulerx_alert.delivery.links import (
    ActionLinks,
    LinkRefused,
    LinkSigner,
    LinkTarget,
    SilenceRequest,
    attach_actions,
    next_local_time,
)
from schedulerx_alert.delivery.render import Action, Message, Renderer
from schedulerx_alert.links.http import HttpRequest, http_event
from schedulerx_alert.links.serve import WHO, SilenceDesk, serve
from schedulerx_alert.storage.silence_book import SilenceBook
from schedulerx_alert.storage.store import FileStateStore, StateStore, open_store
from schedulerx_alert.support.credentials import Credentials
from schedulerx_alert.support.urls import parse_http_url
from tests.builders import T0, instance
from tests.fakes.base import ManualClock
from tests.world import AK, ROBOT, SK, STS, World

KEY = "k" * 32 + "-current-signing-key"
OLD_KEY = "o" * 32 + "-previous-signing-key"
OTHER_KEY = "x" * 32 + "-someone-elses-key"
BASE = "https://alert.example.com/silence"
HOSTILE_NAME = "<script>alert(1)</script> & nightly"
TIMER_EVENT = json.dumps(
    {"triggerTime": "2026-11-25T02:00:00Z", "triggerName": "every-minute", "payload": ""}
).encode()


def settings(
    keys: tuple[str, ...] = (KEY,), base: str = BASE, ttl_hours: float = 24
) -> ActionSettings:
    return ActionSettings(
        enabled=True,
        base_url=parse_http_url(base, allow_loopback_http=True),
        keys=keys,
        link_ttl=ttl_hours * 3600,
    )


def the_alert(name: str | None = HOSTILE_NAME) -> Alert:
    return run_alert("failed", "ops", instance(11111111), name, T0)


def fc_http_event(url: str, method: str = "GET", form: dict[str, str] | None = None) -> bytes:
    """The event FC 3.0's HTTP trigger hands a built-in runtime for a request to `url`."""
    parts = urlsplit(url)
    query = {k: ",".join(v) for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    headers = {"Host": parts.netloc, "User-Agent": "Mozilla/5.0 DingTalk/7.6"}
    body = ""
    if form is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        body = urlencode(form)
    event = {
        "version": "v1",
        "rawPath": parts.path or "/",
        "body": body,
        "isBase64Encoded": False,
        "headers": headers,
        "queryParameters": query,
        "requestContext": {
            "accountId": "1234567890123456",
            "domainName": parts.netloc,
            "domainPrefix": "silence",
            "http": {
                "method": method,
                "path": unquote(parts.path) or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers["User-Agent"],
            },
            "requestId": "1-6543210f-abcdef",
            "time": "2026-11-25T02:00:00Z",
            "timeEpoch": "1795572000000",
        },
    }
    return json.dumps(event).encode()


class _Form(HTMLParser):
    """The confirmation page's form: its method, action and hidden fields."""

    def __init__(self) -> None:
        super().__init__()
        self.method: str | None = None
        self.action: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.method = values.get("method", "get").upper()
            self.action = values.get("action")
        elif tag == "input" and values.get("type") == "hidden":
            self.fields[values["name"]] = values.get("value", "")


def form_of(body: str) -> _Form:
    parser = _Form()
    parser.feed(body)
    return parser


def context(timeout: int = 60) -> SimpleNamespace:
    return SimpleNamespace(
        request_id="req-http-1",
        function=SimpleNamespace(name="schedulerx-alert", timeout=timeout, memory=128),
        credentials=SimpleNamespace(access_key_id=AK, access_key_secret=SK, security_token=STS),
    )


def answer(raw: str) -> dict[str, Any]:
    response: dict[str, Any] = json.loads(raw)
    assert set(response) == {"statusCode", "headers", "body", "isBase64Encoded"}
    return response


# -- the story, on the loopback servers ------------------------------------------------------


class Chat:
    """A World with OSS state, the function's config file and its signing keys."""

    def __init__(self, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.world = world
        raw = dict(world.raw)
        raw["templates"] = {"language": "en"}
        raw["actions"] = {
            "enabled": True,
            "base_url": "http://127.0.0.1:9/silence",
            "durations": ["1h", "until 09:00"],
        }
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(raw), encoding="utf-8")
        monkeypatch.setenv("SCHEDULERX_ALERT_CONFIG", str(path))
        monkeypatch.setenv("SCHEDULERX_ALERT_ACTION_KEYS", f"{KEY},{OLD_KEY}")
        self.config = world.config()
        self.settings, problems = parse_actions(
            raw["actions"], {"SCHEDULERX_ALERT_ACTION_KEYS": f"{KEY},{OLD_KEY}"}, True
        )
        assert problems == []
        store, key = open_store(
            self.config.state.url,
            self.config.state.endpoint,
            self.config.region,
            Credentials(AK, SK, STS),
        )
        self.book = SilenceBook(store, key)

    def send_alert(self, links: ActionLinks) -> list[str]:
        """Render one alert, put its buttons on, post it to the robot; the button URLs."""
        message = Renderer("en", "cn-hangzhou").alert(the_alert())
        message = attach_actions(message, the_alert(), links)
        receiver = DingTalkReceiver(self.config.receivers["ops"], timeout=5.0)
        receiver.send(message)
        card = self.world.dt.messages(ROBOT)[-1]
        assert card["msgtype"] == "actionCard"
        return [button["actionURL"] for button in card["actionCard"]["btns"]]

    def objects(self) -> dict[str, bytes]:
        assert self.world.oss is not None
        return self.world.oss.objects


@pytest.fixture
def chat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Chat]:
    # The handler signs OSS requests with the real clock, so the fakes use it too.
    with World(tmp_path, state="oss", real_time=True) as world:
        yield Chat(world, tmp_path, monkeypatch)


def test_a_silence_link_opened_confirmed_and_clicked_again_creates_one_silence(
    chat: Chat,
) -> None:
    urls = chat.send_alert(ActionLinks(chat.settings, "en", "Asia/Shanghai"))
    card = chat.world.dt.messages(ROBOT)[-1]["actionCard"]
    assert card["btns"][0]["title"] == "Silence 1 h"
    assert card["btns"][1]["title"].startswith("Silence until ")
    assert "09:00" in card["btns"][1]["title"]
    before = chat.objects()

    # Opening the link (GET) shows what it would do and changes nothing.
    opened = answer(index.handler(fc_http_event(urls[0]), context()))
    assert opened["statusCode"] == 200
    assert opened["headers"]["Content-Type"] == "text/html; charset=utf-8"
    page = opened["body"]
    assert "Silence" in page and "92583" in page and "1 h" in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; nightly" in page
    assert chat.objects() == before
    form = form_of(page)
    assert (form.method, form.action) == ("POST", None)  # posts back to the link itself

    # Confirming (the form's POST) creates the silence.
    confirmed = answer(index.handler(fc_http_event(urls[0], "POST", form.fields), context()))
    assert confirmed["statusCode"] == 200
    assert "Silenced" in confirmed["body"] and "silence #1" in confirmed["body"]
    view = chat.book.read()
    (silence,) = view.silences
    assert silence.created_by == WHO == "dingtalk link"
    assert silence.comment == "from a DingTalk alert's button (failed run 11111111)"
    assert silence.matcher.job_ids == {92583}
    assert silence.matcher.group == chat.world.raw["watch"][0]["group"]
    assert 3590 <= silence.until - silence.start <= 3600
    assert abs(silence.start - time.time()) < 60

    # Clicked twice (and opened again): one silence, and the page says so.
    again = answer(index.handler(fc_http_event(urls[0], "POST", form.fields), context()))
    assert again["statusCode"] == 200 and "Already silenced" in again["body"]
    reopened = answer(index.handler(fc_http_event(urls[0]), context()))
    assert reopened["statusCode"] == 200 and "Already silenced" in reopened["body"]
    assert len(chat.book.read().silences) == 1

    # The other button is a silence of its own, until the next 09:00 in Shanghai.
    second = answer(index.handler(fc_http_event(urls[1]), context()))
    posted = answer(
        index.handler(fc_http_event(urls[1], "POST", form_of(second["body"]).fields), context())
    )
    assert posted["statusCode"] == 200
    until = {s.id: s.until for s in chat.book.read().silences}["2"]
    assert until == next_local_time(until - 1, 9, 0, "Asia/Shanghai")


def test_a_tampered_link_gets_403_and_writes_nothing(chat: Chat) -> None:
    (url, _) = chat.send_alert(ActionLinks(chat.settings, "en", "Asia/Shanghai"))
    token = parse_qs(urlsplit(url).query)["t"][0]
    before = chat.objects()
    for position in (5, len(token) // 2, len(token) - 3):
        changed = "A" if token[position] != "A" else "B"
        tampered = token[:position] + changed + token[position + 1 :]
        for method in ("GET", "POST"):
            form = {"t": tampered} if method == "POST" else None
            event = fc_http_event(f"{BASE}?t={tampered}", method, form)
            response = answer(index.handler(event, context()))
            assert response["statusCode"] == 403, (position, method)
            assert "not valid" in response["body"] and "Nothing was changed" in response["body"]
    assert chat.objects() == before
    assert chat.book.read().silences == ()


def test_a_link_signed_with_another_key_gets_403(chat: Chat) -> None:
    foreign = ActionLinks(settings(keys=(OTHER_KEY,)), "en")
    url = foreign.buttons(LinkTarget.of(the_alert()))[0].url
    before = chat.objects()
    response = answer(index.handler(fc_http_event(url, "POST", {}), context()))
    assert response["statusCode"] == 403
    assert chat.objects() == before


def test_an_expired_link_gets_403_and_writes_nothing(
    chat: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock(time.time())
    (url, _) = chat.send_alert(ActionLinks(chat.settings, "en", "Asia/Shanghai", clock))
    token = parse_qs(urlsplit(url).query)["t"][0]
    before = chat.objects()
    clock.advance(24 * 3600 - 60)
    fresh = answer(serve(fc_http_event(url), context(), Path("."), clock))
    assert fresh["statusCode"] == 200
    clock.advance(120)  # past link_ttl_hours (24)
    for method in ("GET", "POST"):
        event = fc_http_event(url, method, {"t": token} if method == "POST" else None)
        response = answer(serve(event, context(), Path("."), clock))
        assert response["statusCode"] == 403
        assert "expired" in response["body"] and "Nothing was changed" in response["body"]
    assert chat.objects() == before


def test_a_link_signed_with_the_previous_key_still_works(chat: Chat) -> None:
    # Keys rotate by putting the new one first: links already in the chat keep working.
    previous = ActionLinks(settings(keys=(OLD_KEY,)), "en")
    url = previous.buttons(LinkTarget.of(the_alert()))[0].url
    opened = answer(index.handler(fc_http_event(url), context()))
    assert opened["statusCode"] == 200
    posted = answer(
        index.handler(fc_http_event(url, "POST", form_of(opened["body"]).fields), context())
    )
    assert posted["statusCode"] == 200 and len(chat.book.read().silences) == 1


def test_clicks_racing_on_one_link_create_one_silence(chat: Chat) -> None:
    links = ActionLinks(chat.settings, "en", "Asia/Shanghai")
    token = links.signer.sign(links.request(LinkTarget.of(the_alert()), Span(3600), time.time()))
    signer = LinkSigner(chat.settings.keys, chat.settings.link_ttl)
    form = urlencode({"t": token}).encode()
    headers = {"content-type": "application/x-www-form-urlencoded"}

    def click(_: int) -> str:
        desk = SilenceDesk(signer, chat.book, "en", "Asia/Shanghai")
        return desk.answer(HttpRequest("POST", headers=headers, body=form)).outcome

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = sorted(pool.map(click, range(6)))
    assert outcomes.count("silenced") == 1
    assert set(outcomes) <= {"silenced", "already", "pending"}
    assert len(chat.book.read().silences) == 1


def test_a_timer_event_is_not_an_http_event() -> None:
    assert http_event(TIMER_EVENT) is None
    assert http_event(b'{"dry_run": true}') is None
    assert http_event(b"") is None and http_event(b"not json") is None
    assert http_event(fc_http_event(BASE)) is not None


# -- links ---------------------------------------------------------------------------------


def request(nonce: str = "0123456789abcdef", seconds: int = 3600) -> SilenceRequest:
    return SilenceRequest(LinkTarget("ns", "group", 92583, "etl", "failed", 7), nonce, seconds)


def test_a_token_carries_its_request_and_refuses_any_change() -> None:
    clock = ManualClock(T0)
    signer = LinkSigner([KEY], 24 * 3600, clock)
    token = signer.sign(request())
    assert signer.verify(token) == (request(), float(int(T0)))
    for position in range(len(token)):
        changed = (
            token[:position] + ("A" if token[position] != "A" else "B") + token[position + 1 :]
        )
        with pytest.raises(LinkRefused) as refused:
            signer.verify(changed)
        assert refused.value.reason in ("invalid", "expired"), position
    for bad in ("", "x" * 3000, token + "x", token[:-1]):
        with pytest.raises(LinkRefused):
            signer.verify(bad)


def test_a_token_expires_after_the_ttl_and_any_listed_key_verifies() -> None:
    clock = ManualClock(T0)
    token = LinkSigner([OLD_KEY], 3600, clock).sign(request())
    rotated = LinkSigner([KEY, OLD_KEY], 3600, clock)
    assert rotated.verify(token)[0] == request()
    # The first key signs: a verifier that knows only the new key accepts new links.
    assert LinkSigner([KEY], 3600, clock).verify(rotated.sign(request()))[0] == request()
    with pytest.raises(LinkRefused) as wrong:
        LinkSigner([OTHER_KEY], 3600, clock).verify(token)
    assert wrong.value.reason == "invalid"
    clock.advance(3601)
    with pytest.raises(LinkRefused) as expired:
        rotated.verify(token)
    assert expired.value.reason == "expired"


def test_a_signed_payload_of_another_shape_is_invalid() -> None:
    for wire in (
        {"v": 2, "ns": "n", "g": "g", "j": 1, "s": 60, "x": "0123456789abcdef"},
        {"v": 1, "ns": "n", "g": "g", "j": 1, "s": 60, "x": "../../state.json"},
        {"v": 1, "ns": "n", "g": "g", "j": 1, "s": 60, "u": 5, "x": "0123456789abcdef"},
        {"v": 1, "ns": "", "g": "g", "j": 1, "s": 60, "x": "0123456789abcdef"},
        {"v": 1, "ns": "n", "g": "g", "j": True, "s": 60, "x": "0123456789abcdef"},
    ):
        with pytest.raises(ValueError, match="silence link"):
            SilenceRequest.from_wire(wire)


def test_buttons_say_how_long_and_until_when_in_the_configured_language() -> None:
    # 2026-11-25 10:00 in Shanghai: the next 09:00 is tomorrow's.
    clock = ManualClock(T0)
    spans = (Span(seconds=90 * 60), Span(until=(9, 0)), Span(until=(18, 30)))
    chosen = ActionSettings(True, parse_http_url(BASE), spans, keys=(KEY,))
    zh = ActionLinks(chosen, "zh-CN", "Asia/Shanghai", clock).buttons(LinkTarget.of(the_alert()))
    assert [b.title for b in zh] == ["静默 1 小时 30 分钟", "静默至明天 09:00", "静默至 18:30"]
    en = ActionLinks(chosen, "en", "Asia/Shanghai", clock).buttons(LinkTarget.of(the_alert()))
    assert [b.title for b in en] == [
        "Silence 1 h 30 min",
        "Silence until tomorrow 09:00",
        "Silence until 18:30",
    ]
    assert all(b.url.startswith(f"{BASE}?t=") for b in en)
    # Every button has its own nonce: each creates its own silence, once.
    signer = LinkSigner([KEY], 3600, clock)
    nonces = {signer.verify(parse_qs(urlsplit(b.url).query)["t"][0])[0].nonce for b in en}
    assert len(nonces) == 3


def test_next_local_time_is_the_first_after_now() -> None:
    assert next_local_time(T0, 9, 0, "Asia/Shanghai") == T0 + 23 * 3600
    assert next_local_time(T0, 10, 0, "Asia/Shanghai") == T0 + 24 * 3600
    assert next_local_time(T0, 10, 1, "Asia/Shanghai") == T0 + 60


def test_delivery_asks_for_buttons_with_one_call() -> None:
    message = Message("title", "text")
    assert attach_actions(message, the_alert(), None) is message
    links = ActionLinks(settings(), "en", clock=ManualClock(T0))
    with_buttons = attach_actions(message, the_alert(), links)
    assert (with_buttons.title, with_buttons.text) == ("title", "text")
    assert [a.title for a in with_buttons.actions] == [
        "Silence 1 h",
        "Silence until tomorrow 09:00",
    ]


def test_dingtalk_sends_buttons_as_an_action_card_unless_the_message_mentions_someone() -> None:
    webhook = parse_http_url("https://oapi.dingtalk.com/robot/send?access_token=t")
    receiver = DingTalkReceiver(ReceiverConfig(name="ops", url=webhook, keyword="SchedulerX"))
    plain = receiver.payload(Message("T", "body", ("13800000000",)))
    assert plain["msgtype"] == "markdown"
    buttons = (
        Action("Silence 1 h", "https://a.example/s?t=1"),
        Action("Until 09:00", "https://a.example/s?t=2"),
    )
    card = receiver.payload(Message("T", "body", (), buttons))
    assert card["msgtype"] == "actionCard"
    assert card["actionCard"] == {
        "title": "T",
        "text": "body\n\nSchedulerX",
        "btns": [
            {"title": "Silence 1 h", "actionURL": "https://a.example/s?t=1"},
            {"title": "Until 09:00", "actionURL": "https://a.example/s?t=2"},
        ],
        "btnOrientation": "1",
    }
    # DingTalk notifies `at` only from text and markdown: a message that mentions
    # someone goes as markdown, its buttons as links.
    mentioning = receiver.payload(Message("T", "body", ("13800000000",), buttons))
    assert mentioning["msgtype"] == "markdown"
    assert mentioning["markdown"] == {
        "title": "T",
        "text": (
            "body\n\nSchedulerX\n\n[Silence 1 h](https://a.example/s?t=1)  \n"
            "[Until 09:00](https://a.example/s?t=2) @13800000000"
        ),
    }
    assert mentioning["at"] == plain["at"]


# -- answering a click, at the unit level --------------------------------------------------


class Desk:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = ManualClock(T0)
        self.store: StateStore = FileStateStore(tmp_path)
        self.book = SilenceBook(self.store, "state.json")
        self.signer = LinkSigner([KEY], 24 * 3600, self.clock)
        self.desk = SilenceDesk(self.signer, self.book, "en", "Asia/Shanghai", self.clock, 120)

    def post(self, token: str) -> tuple[int, str]:
        form = urlencode({"t": token}).encode()
        headers = {"content-type": "application/x-www-form-urlencoded"}
        response = self.desk.answer(HttpRequest("POST", headers=headers, body=form)).response
        return response.status, response.body

    def marker(self, nonce: str, generation: int) -> str:
        return f"state.json.action.{nonce}.{generation}"


def test_a_click_whose_first_attempt_died_before_adding_takes_over(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    wanted = request()
    claim = {"v": 1, "state": "claimed", "at": T0 - 600, "by": "dead"}
    desk.store.write(desk.marker(wanted.nonce, 0), json.dumps(claim).encode())
    status, body = desk.post(desk.signer.sign(wanted))
    assert status == 200 and "Silenced" in body
    assert len(desk.book.read().silences) == 1
    assert json.loads(desk.store.read(desk.marker(wanted.nonce, 1)) or b"")["state"] == "done"


def test_a_click_whose_first_attempt_died_after_adding_creates_nothing_more(
    tmp_path: Path,
) -> None:
    desk = Desk(tmp_path)
    wanted = request()
    desk.book.add(wanted.matcher(), T0, T0 + 3600, "first", WHO, T0, uid=wanted.nonce)
    claim = {"v": 1, "state": "claimed", "at": T0 - 600, "by": "dead"}
    desk.store.write(desk.marker(wanted.nonce, 0), json.dumps(claim).encode())
    status, body = desk.post(desk.signer.sign(wanted))
    assert status == 200 and "Already silenced" in body
    assert len(desk.book.read().silences) == 1


def test_a_click_while_another_is_creating_the_silence_waits(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    wanted = request()
    claim = {"v": 1, "state": "claimed", "at": T0 - 5, "by": "busy"}
    desk.store.write(desk.marker(wanted.nonce, 0), json.dumps(claim).encode())
    status, body = desk.post(desk.signer.sign(wanted))
    assert status == 409 and "being created" in body
    assert desk.book.read().silences == ()


def test_an_until_link_whose_time_has_passed_is_expired(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    wanted = SilenceRequest(LinkTarget("ns", "g", 1), "0123456789abcdef", until=T0 + 60)
    token = desk.signer.sign(wanted)
    desk.clock.advance(61)
    status, body = desk.post(token)
    assert status == 403 and "expired" in body
    assert desk.book.read().silences == ()


def test_head_changes_nothing_and_other_methods_are_refused(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    token = desk.signer.sign(request())
    head = desk.desk.answer(HttpRequest("HEAD", query={"t": token})).response
    assert (head.status, head.body) == (200, "")
    put = desk.desk.answer(HttpRequest("PUT", query={"t": token})).response
    assert put.status == 405 and put.headers["Allow"] == "GET, HEAD, POST"
    assert list(tmp_path.iterdir()) == []


def test_pages_forbid_framing_caching_and_outside_resources(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    response = desk.desk.answer(HttpRequest("GET", query={"t": desk.signer.sign(request())}))
    headers = response.response.headers
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "http" not in response.response.body.replace('content="width', "")


# -- the actions: section ----------------------------------------------------------------


def test_actions_are_off_by_default() -> None:
    assert parse_actions(None, {}) == (ActionSettings(), [])
    off, problems = parse_actions({"enabled": False}, {})
    assert not off.enabled and problems == []


def test_enabled_actions_need_an_https_custom_domain_and_long_keys() -> None:
    env = {"SCHEDULERX_ALERT_ACTION_KEYS": "short-secret-value, " + KEY}
    _, problems = parse_actions({"enabled": True}, env)
    assert problems == [
        "actions.base_url: is required when actions are enabled "
        "(the custom domain of the function's HTTP trigger)",
        "actions.key_env: key 1 of 2 in SCHEDULERX_ALERT_ACTION_KEYS is shorter than 32 characters",
    ]
    assert all("short-secret-value" not in p for p in problems)
    _, problems = parse_actions({"enabled": True, "base_url": "http://alert.example.com/"}, {})
    assert problems[0].startswith("actions.base_url: must use https://")
    assert problems[1].startswith(
        "actions.key_env: environment variable SCHEDULERX_ALERT_ACTION_KEYS is not set"
    )
    _, problems = parse_actions(
        {"enabled": True, "base_url": "https://silence-abc.cn-hangzhou.fcapp.run"},
        {"SCHEDULERX_ALERT_ACTION_KEYS": KEY},
    )
    assert len(problems) == 1 and "custom domain" in problems[0]


def test_durations_and_other_fields_are_checked_with_their_paths() -> None:
    env = {DEFAULT_KEY_ENV: KEY, "MY_KEYS": KEY}
    ok, problems = parse_actions(
        {
            "enabled": True,
            "base_url": "https://alert.example.com/s",
            "durations": ["30m", "2h30m", "until 7:05"],
            "link_ttl_hours": 48,
        },
        env,
    )
    assert problems == []
    assert ok.spans == (Span(seconds=1800), Span(seconds=9000), Span(until=(7, 5)))
    assert (ok.keys, ok.link_ttl, str(ok.base_url)) == (
        (KEY,),
        48 * 3600,
        "https://alert.example.com/s",
    )
    assert KEY not in repr(ok)
    _, problems = parse_actions(
        {
            "enabled": "yes",
            "durations": ["1h", "1h", "forever", "until 25:00"],
            "key_env": "FC_KEYS",
            "link_ttl_hours": 0,
            "colour": "red",
        },
        {},
    )
    assert problems == [
        "actions.colour: unknown key "
        "(one of: base_url, durations, enabled, key_env, link_ttl_hours, operations)",
        "actions.enabled: must be true or false, not 'yes'",
        "actions.durations: at most 3 buttons fit under a message, not 4",
        "actions.key_env: FC reserves names that start with FC_",
        "actions.link_ttl_hours: must be a number from 1 to 168, not 0",
    ]
    # The link function knows only its own environment before a link is checked.
    _, problems = parse_actions({"enabled": False, "key_env": "MY_KEYS"}, env)
    assert problems == [
        "actions.key_env: the link function checks each link against "
        "SCHEDULERX_ALERT_ACTION_KEYS before it reads the config; put the keys there and "
        "leave key_env out"
    ]
    _, problems = parse_actions({"durations": ["1h", "1h", "2m"]}, {})
    assert problems == [
        "actions.durations[1]: 1h is listed twice",
        "actions.durations[2]: '2m' is not a duration such as 30m, 1h, 2h30m, 1d (from 5m to 7d) "
        'or a time such as "until 09:00"',
    ]
