"""The silence link endpoint is public: what it does for a request it should not act on.

A token it did not sign (or one past its expiry) is answered before anything is read:
the loopback OSS, which holds both the config and the state here, sees no request. A
POST acts only on the token in its body, and only when it comes from the link's own
confirmation page (`Sec-Fetch-Site`, else `Origin`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import index
from schedulerx_alert.config.actions import DEFAULT_KEY_ENV
from schedulerx_alert.delivery.links import ActionLinks, LinkTarget, SilenceRequest
from schedulerx_alert.links.serve import serve
from tests.fakes.base import ManualClock
from tests.test_actions import (
    KEY,
    OLD_KEY,
    OTHER_KEY,
    Chat,
    answer,
    context,
    fc_http_event,
    form_of,
    settings,
    the_alert,
)
from tests.test_config_oss import good
from tests.test_config_oss_commands import URL, config_reads, publish
from tests.world import ROBOT, ROBOT_SECRET, World

# The config's base_url: the origin the confirmation page is served from.
OWN_ORIGIN = "http://127.0.0.1:9"


@dataclass
class Endpoint:
    world: World
    chat: Chat

    def oss_requests(self) -> int:
        assert self.world.oss is not None
        return len(self.world.oss.requests)

    def link(self, clock: ManualClock | None = None) -> str:
        links = ActionLinks(self.chat.settings, "en", "Asia/Shanghai", clock or time.time)
        return self.chat.send_alert(links)[0]


@pytest.fixture
def endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    """The function with its config in OSS beside the state: any read is an OSS request."""
    with World(tmp_path, state="oss", real_time=True) as world:
        assert world.oss is not None
        chat = Chat(world, tmp_path, monkeypatch)
        raw = {
            **good(world),
            "templates": {"language": "en"},
            "actions": {
                "enabled": True,
                "base_url": f"{OWN_ORIGIN}/silence",
                "durations": ["1h", "until 09:00"],
            },
        }
        publish(world, raw)
        (tmp_path / "config.yaml").unlink()
        monkeypatch.setenv("SCHEDULERX_ALERT_CONFIG", URL)
        monkeypatch.setenv("FC_REGION", "cn-hangzhou")
        monkeypatch.setenv("SCHEDULERX_ALERT_CONFIG_ENDPOINT", world.oss.url)
        monkeypatch.setenv("DT_TOKEN", ROBOT)
        monkeypatch.setenv("DT_SECRET", ROBOT_SECRET)
        yield Endpoint(world, chat)


def event(
    url: str,
    method: str = "GET",
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """FC's HTTP trigger event for a request to `url`, with the browser's extra headers."""
    raw: dict[str, Any] = json.loads(fc_http_event(url, method, form))
    raw["headers"].update(headers or {})
    return json.dumps(raw).encode()


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["t"][0]


def test_a_token_not_ours_is_refused_before_the_config_or_the_state_is_read(
    endpoint: Endpoint,
) -> None:
    url = endpoint.link()
    token = token_of(url)
    base = url.split("?")[0]
    tampered = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    foreign = ActionLinks(settings(keys=(OTHER_KEY,)), "en").buttons(LinkTarget.of(the_alert()))
    garbage = {
        "tampered": (f"{base}?t={tampered}", None),
        "another key": (foreign[0].url, None),
        "no token": (base, None),
        "noise": (f"{base}?t=" + "x" * 1500, None),
        "tampered, posted": (base, {"t": tampered}),
        "noise, posted": (base, {"t": "eyJ2IjoxfQ.Zm9v.YmFy"}),
    }
    before = endpoint.oss_requests()
    for name, (link, form) in garbage.items():
        method = "GET" if form is None else "POST"
        response = answer(index.handler(event(link, method, form), context()))
        assert response["statusCode"] == 403, name
        assert "not valid" in response["body"] and "Nothing was changed" in response["body"]
        assert endpoint.oss_requests() == before, f"{name}: OSS was asked"
    # The control: a link of ours reads the config (from OSS) and the claims beside the state.
    opened = answer(index.handler(event(url), context()))
    assert opened["statusCode"] == 200 and config_reads(endpoint.world) == 1


def test_an_expired_token_is_refused_before_the_config_or_the_state_is_read(
    endpoint: Endpoint,
) -> None:
    clock = ManualClock(time.time())
    url = endpoint.link(clock)
    until_links = ActionLinks(endpoint.chat.settings, "en", "Asia/Shanghai", clock)
    lapsed = SilenceRequest(LinkTarget.of(the_alert()), "0123456789abcdef", until=clock() + 60)
    lapsed_url = url.split("?")[0] + "?t=" + until_links.signer.sign(lapsed)
    clock.advance(24 * 3600 + 60)  # past link_ttl_hours (24), and past the "until"
    before = endpoint.oss_requests()
    for link in (url, lapsed_url):
        for method in ("GET", "POST", "HEAD"):
            form = {"t": token_of(link)} if method == "POST" else None
            response = answer(serve(event(link, method, form), context(), Path("."), clock))
            assert response["statusCode"] == 403, (link, method)
            if method != "HEAD":
                assert "expired" in response["body"]
            assert endpoint.oss_requests() == before, (link, method)
    assert endpoint.chat.book.read().silences == ()


def test_a_link_signed_with_a_ttl_is_refused_after_it_even_when_the_config_allows_longer(
    endpoint: Endpoint,
) -> None:
    # A link carries the expiry it was made with; the keys' variable alone checks it.
    clock = ManualClock(time.time())
    short = ActionLinks(settings(keys=(KEY,), ttl_hours=1), "en", "Asia/Shanghai", clock)
    url = short.buttons(LinkTarget.of(the_alert()))[0].url
    assert answer(serve(event(url), context(), Path("."), clock))["statusCode"] == 200
    clock.advance(3600 + 60)
    before = endpoint.oss_requests()
    response = answer(serve(event(url), context(), Path("."), clock))
    assert response["statusCode"] == 403 and "expired" in response["body"]
    assert endpoint.oss_requests() == before


def test_a_post_with_the_token_only_in_its_url_creates_nothing(endpoint: Endpoint) -> None:
    url = endpoint.link()
    for form in (None, {}, {"other": "field"}):
        response = answer(index.handler(event(url, "POST", form), context()))
        assert response["statusCode"] == 403, form
    assert endpoint.chat.book.read().silences == ()
    # The confirmation page's own form carries the token in its body, and that works.
    page = answer(index.handler(event(url), context()))["body"]
    assert form_of(page).fields == {"t": token_of(url)}
    posted = answer(index.handler(event(url, "POST", form_of(page).fields), context()))
    assert posted["statusCode"] == 200 and "Silenced" in posted["body"]
    assert len(endpoint.chat.book.read().silences) == 1


def test_a_post_from_another_site_is_refused_and_the_pages_own_goes_through(
    endpoint: Endpoint,
) -> None:
    url = endpoint.link()
    form = {"t": token_of(url)}
    refused = [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},  # a sandboxed frame, a data: URL
        {"Origin": "http://127.0.0.1:9.evil.example"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        # Sec-Fetch-Site is the browser's word: an Origin that looks right does not help.
        {"Sec-Fetch-Site": "cross-site", "Origin": OWN_ORIGIN},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://other.127.0.0.1:9"},
    ]
    for headers in refused:
        response = answer(index.handler(event(url, "POST", form, headers), context()))
        assert response["statusCode"] == 403, headers
        assert "Nothing was changed" in response["body"]
    assert endpoint.chat.book.read().silences == ()
    # From the page itself: a browser with Sec-Fetch-* ...
    own = {"Sec-Fetch-Site": "same-origin", "Origin": OWN_ORIGIN}
    posted = answer(index.handler(event(url, "POST", form, own), context()))
    assert posted["statusCode"] == 200 and "Silenced" in posted["body"]
    # ... one without it, naming the endpoint's origin; and a user's reload (none).
    for headers in ({"Origin": OWN_ORIGIN}, {"Sec-Fetch-Site": "none"}, {}):
        again = answer(index.handler(event(url, "POST", form, headers), context()))
        assert again["statusCode"] == 200 and "Already silenced" in again["body"], headers
    assert len(endpoint.chat.book.read().silences) == 1


def test_keys_rotated_in_the_environment_check_links_before_the_config(
    endpoint: Endpoint,
) -> None:
    # Links signed with the previous key still work; the pre-check takes every listed key.
    previous = ActionLinks(settings(keys=(OLD_KEY,)), "en").buttons(LinkTarget.of(the_alert()))
    opened = answer(index.handler(event(previous[0].url), context()))
    assert opened["statusCode"] == 200


def test_without_keys_in_the_environment_no_link_costs_a_read(
    endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The keys live only in SCHEDULERX_ALERT_ACTION_KEYS (key_env may name no other): a
    link function deployed without them can hold no link, so none makes it read."""
    url = endpoint.link()
    monkeypatch.delenv(DEFAULT_KEY_ENV)
    before = endpoint.oss_requests()
    response = answer(index.handler(event(url), context()))
    assert response["statusCode"] == 403 and "Nothing was changed" in response["body"]
    assert endpoint.oss_requests() == before
