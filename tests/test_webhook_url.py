"""A webhook is posted to exactly the host its check saw.

`urllib.parse` and urllib3 (what `requests` connects with) read odd URLs
differently; the config accepts only URLs both read as it does, and the
receiver posts to the record the config rebuilt from the checked parts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from urllib3.util import parse_url

from schedulerx_alert.config import ConfigError, parse_config
from schedulerx_alert.delivery.channels.dingtalk import DingTalkReceiver, Failure, TransportError
from schedulerx_alert.delivery.render import Message
from schedulerx_alert.support.urls import UrlError, parse_http_url
from tests.fakes.dingtalk import FakeDingTalk
from tests.world import ROBOT, World

TOKEN = "tok-0123456789abcdef"
BYPASS = f"https://evil:443\\@oapi.dingtalk.com/robot/send?access_token={TOKEN}"


def config_with(webhook: str, **top: Any) -> dict[str, Any]:
    return {
        "region": "cn-hangzhou",
        "state": {"url": "file:///tmp/state.json"},
        "receivers": [{"name": "ops", "webhook": webhook}],
        "watch": [{"namespace": "ns", "group": "g", "jobs": [1], "receivers": ["ops"]}],
        **top,
    }


def problems_of(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, {})
    return caught.value.problems


def test_the_bypass_from_the_issue_is_refused_at_its_path() -> None:
    # urlsplit sees oapi.dingtalk.com (allowed); requests would connect to evil.
    assert urlsplit(BYPASS).hostname == "oapi.dingtalk.com"
    assert parse_url(requests.Request("POST", BYPASS).prepare().url or "").host == "evil"
    problems = problems_of(config_with(BYPASS))
    assert problems == ["receivers[0].webhook: must not contain a backslash"]


def test_no_connection_reaches_the_host_urllib3_would_have_picked(tmp_path: Path) -> None:
    """The story on loopback: the robot lives on `localhost`, `evil` on 127.0.0.1."""
    with World(tmp_path) as world, FakeDingTalk() as evil:
        good_port = world.dt.port
        world.raw["dingtalk"] = {"allowed_hosts": ["localhost"]}
        world.raw["receivers"][0]["webhook"] = (
            f"http://127.0.0.1:{evil.port}\\@localhost:{good_port}/robot/send?access_token={ROBOT}"
        )
        world.sx.add_instance(92583, status=5, result="disk full")
        with pytest.raises(ConfigError) as caught:
            world.tick()
        assert caught.value.problems == ["receivers[0].webhook: must not contain a backslash"]
        assert evil.requests == [] and world.dt.requests == []


@pytest.mark.parametrize(
    ("webhook", "reason"),
    [
        (f"https://x@oapi.dingtalk.com/robot/send?access_token={TOKEN}", "user info"),
        (f"https://oapi.dingtalk.com:443@evil/robot/send?access_token={TOKEN}", "user info"),
        (f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}#x", "fragment"),
        (f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN} ", "spaces"),
        (f"https://oapi.dingtalk.com/robot/send\t?access_token={TOKEN}", "control"),
        (f"https://oapi.dingtalk%2ecom/robot/send?access_token={TOKEN}", "percent"),
        (f"https://oapi.dingtalk.com./robot/send?access_token={TOKEN}", "plain DNS name"),
        (f"https://oapi。dingtalk.com/robot/send?access_token={TOKEN}", "ASCII"),
        (f"https://127.1/robot/send?access_token={TOKEN}", "dotted IPv4"),
        (f"https://0x7f000001/robot/send?access_token={TOKEN}", "dotted IPv4"),
        (f"https://[::1%25eth0]/robot/send?access_token={TOKEN}", "IPv6 zone"),
        (f"https://oapi.dingtalk.com:99999/robot/send?access_token={TOKEN}", "port"),
        (f"https://oapi.dingtalk.com/robot/%2e%2e/send?access_token={TOKEN}", "'..'"),
        (f"http://oapi.dingtalk.com/robot/send?access_token={TOKEN}", "https://"),
        (f"ftp://oapi.dingtalk.com/robot/send?access_token={TOKEN}", "https://"),
        ("https://oapi.dingtalk.com/robot/send", "access_token"),
        (f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}&access_token=b", "exactly"),
        (f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}&sign=x", "sign"),
        (f"https://evil.example.com/robot/send?access_token={TOKEN}", "allowed_hosts"),
    ],
)
def test_hostile_or_ambiguous_webhooks_are_refused_without_the_token(
    webhook: str, reason: str
) -> None:
    problems = problems_of(config_with(webhook))
    assert problems and all(p.startswith("receivers[0].webhook: ") for p in problems)
    assert any(reason in p for p in problems), problems
    assert not any(TOKEN in p for p in problems)


def test_http_reaches_only_loopback_and_only_when_allowed() -> None:
    local = f"http://127.0.0.1:8080/robot/send?access_token={TOKEN}"
    loopback_config = {**config_with(local), "dingtalk": {"allowed_hosts": ["127.0.0.1"]}}
    [problem] = problems_of(loopback_config)
    assert problem.startswith("receivers[0].webhook: must use https://")
    assert "allow_loopback_http: true" in problem
    config = parse_config({**loopback_config, "allow_loopback_http": True}, {})
    assert config.receivers["ops"].webhook == local


def test_the_webhook_is_kept_in_one_normalised_spelling() -> None:
    written = f"HTTPS://OAPI.DingTalk.COM:443/robot/send?access_token={TOKEN}"
    receiver = parse_config(config_with(written), {}).receivers["ops"]
    assert receiver.webhook == f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}"
    assert receiver.access_token == TOKEN


# -- the receiver posts to the record, and nowhere else -----------------------------------


class _Redirect(BaseHTTPRequestHandler):
    target = ""

    def do_POST(self) -> None:
        self.send_response(307)
        self.send_header("Location", f"{self.target}/robot/send?access_token={ROBOT}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def redirecting(tmp_path: Path) -> Iterator[tuple[str, FakeDingTalk]]:
    """A server on an allowed host that answers every post with a redirect to `evil`."""
    with FakeDingTalk() as evil:
        evil.add_robot(ROBOT)
        handler = type("Handler", (_Redirect,), {"target": evil.url})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}", evil
        finally:
            server.shutdown()
            server.server_close()


def test_a_redirect_is_not_followed_to_a_host_nobody_checked(
    redirecting: tuple[str, FakeDingTalk],
) -> None:
    base, evil = redirecting
    raw = {
        **config_with(f"{base}/robot/send?access_token={ROBOT}", allow_loopback_http=True),
        "dingtalk": {"allowed_hosts": ["127.0.0.1"]},
    }
    receiver = DingTalkReceiver(parse_config(raw, {}).receivers["ops"])
    with pytest.raises(TransportError) as caught:
        receiver.send(Message(title="t", text="job 92583 failed"))
    assert caught.value.failure is Failure.CONFIG and "redirect" in str(caught.value)
    assert evil.requests == []


# -- the rule behind it, for any string ----------------------------------------------------

_CHARS = list("abcAZ019.-_~=&:/?#[]@!$'()*+,;%\\ \t\x00é。")
_URLISH = st.text(alphabet=st.sampled_from(_CHARS), max_size=16)
_PLAIN = st.text(alphabet=st.sampled_from(list("abcAZ019.-_~%")), max_size=10)
_HOSTS = st.sampled_from(
    ["oapi.dingtalk.com", "OAPI.dingtalk.com", "127.0.0.1", "[::1]", "localhost", "127.1"]
)
# Plain hosts and paths with hostile pieces around them, so that many inputs come
# close to passing and some pass.
_AUTHORITY = st.one_of(
    _URLISH,
    st.builds(
        "".join,
        st.tuples(
            st.sampled_from(["", "", "", "evil@", "evil:443\\@", "a:b@", "%65", "[", "evil\\"]),
            _HOSTS,
            st.sampled_from(["", "", "", ":8080", ":443", ":", ":0x1", "@evil", "\\@evil", "."]),
        ),
    ),
)
_REST = st.one_of(
    _URLISH,
    st.builds(lambda path, query: f"/{path}?{query}&", _PLAIN, _URLISH),
    st.builds(lambda path, query: f"/{path}?{query}&", _PLAIN, _PLAIN),
    st.just("/robot/send?"),
)


@settings(deadline=None)
@given(
    scheme=st.sampled_from(["https://", "http://", "HTTPS://", "https:/", "https:///", ""]),
    authority=_AUTHORITY,
    rest=_REST,
)
def test_an_accepted_url_is_read_alike_by_every_parser(
    scheme: str, authority: str, rest: str
) -> None:
    text = f"{scheme}{authority}{rest}access_token=Zq9x7"
    try:
        url = parse_http_url(text, allow_loopback_http=True)
    except UrlError as exc:
        refusal = str(exc)
        # Nothing of the URL is repeated: its query may hold a token.
        assert "Zq9x7" not in refusal and len(refusal) < 120
        return
    for reading in (text, str(url)):
        split = urlsplit(reading)
        prepared = requests.Request("POST", reading).prepare()
        connected = parse_url(prepared.url or "")
        assert (split.hostname or "") == url.host
        assert (connected.host or "").strip("[]") == url.host
        assert split.port in (url.port, 443 if url.scheme == "https" else 80)
        assert connected.port in (url.port, 443 if url.scheme == "https" else 80)
    assert parse_http_url(str(url), allow_loopback_http=True) == url
