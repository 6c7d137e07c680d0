"""A loopback DingTalk custom group robot endpoint (``POST /robot/send?access_token=…``).

It answers like oapi.dingtalk.com: always HTTP 200 with ``{"errcode": N, "errmsg": …}``
(unless a fault or :meth:`FakeDingTalk.set_down` says otherwise) and enforces the robot's
security settings (signature "加签", keywords), the 20000-byte body limit and the rate limit
of 20 messages per minute, after which the robot is muted for 10 minutes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from tests.fakes.base import (
    Clock,
    FakeServer,
    Fault,
    Request,
    Response,
    SlidingWindow,
    TimeoutThen,
    normalise_filters,
)

MAX_BODY_BYTES = 20000
#: A signed request's timestamp (ms) must be within one hour of DingTalk's clock.
TIMESTAMP_TTL_MS = 3600 * 1000
MESSAGE_TYPES = frozenset({"text", "markdown", "actionCard", "link", "feedCard"})
SECURITY_DOC = "https://open.dingtalk.com/document/robots/customize-robot-security-settings"

#: errmsg for the errcodes the fake produces (also used by injected errcode faults).
ERRMSG = {
    0: "ok",
    -1: "系统繁忙",
    43002: "需要POST请求",
    43004: "无效的HTTP HEADER Content-Type",
    130101: "send too fast, exceed 20 times per minute",
    300001: "token is not exist",
    310000: "sign not match",
    460101: "message too long, exceed 20000 bytes",
}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")), not URL-encoded."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


class _Refusal(Exception):
    def __init__(self, errcode: int, errmsg: str | None = None) -> None:
        super().__init__(errcode)
        self.errcode = errcode
        self.errmsg = errmsg or ERRMSG.get(errcode, "error")


@dataclass
class Robot:
    token: str
    secret: str | None
    keywords: tuple[str, ...]
    accepted: list[dict[str, Any]] = field(default_factory=list)
    sent: SlidingWindow = field(default_factory=lambda: SlidingWindow(60.0))
    muted_until: float = 0.0


def message_text(message: dict[str, Any]) -> str:
    """The human-readable body of a message (markdown text, text content, ...)."""
    kind = message.get("msgtype")
    part = message.get(kind) if isinstance(kind, str) else None
    if not isinstance(part, dict):
        return ""
    if kind == "text":
        return str(part.get("content", ""))
    if kind == "feedCard":
        return "\n".join(str(link.get("title", "")) for link in part.get("links", []))
    return str(part.get("text", ""))


#: The message types whose ``at`` DingTalk documents: the others (actionCard, link,
#: feedCard) reach the group and notify no one.
NOTIFYING_TYPES = frozenset({"text", "markdown"})


def notified(message: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Whom DingTalk would notify: the ``at`` mobiles and user ids of a text or markdown
    message, each only if ``@`` and it also appear in a markdown text, as the robot
    documentation requires. Other message types notify no one."""
    if message.get("msgtype") not in NOTIFYING_TYPES:
        return [], []
    at = message.get("at") or {}
    text = message_text(message)
    markdown = message.get("msgtype") != "text"

    def shown(who: object) -> bool:
        return isinstance(who, str) and (
            not markdown or re.search(rf"@{re.escape(who)}(?![0-9A-Za-z])", text) is not None
        )

    mobiles = [m for m in at.get("atMobiles") or [] if shown(m)]
    users = [u for u in at.get("atUserIds") or [] if shown(u)]
    return mobiles, users


def _searchable(message: dict[str, Any]) -> str:
    """Everything a keyword may appear in: titles and texts."""
    kind = message.get("msgtype")
    part = message.get(kind) if isinstance(kind, str) else None
    if not isinstance(part, dict):
        return ""
    pieces = [str(part.get("title", "")), message_text(message)]
    pieces += [str(b.get("title", "")) for b in part.get("btns", []) if isinstance(b, dict)]
    return "\n".join(pieces)


def _validate(message: object) -> dict[str, Any]:
    """Raise 43004-style refusals for bodies DingTalk would not accept."""
    if not isinstance(message, dict):
        raise _Refusal(43004, "invalid message body")
    kind = message.get("msgtype")
    if kind not in MESSAGE_TYPES:
        raise _Refusal(43004, f"msgtype {kind!r} is missing or not supported")
    part = message.get(kind)
    if not isinstance(part, dict):
        raise _Refusal(43004, f"{kind} is missing")
    required = {
        "text": ("content",),
        "markdown": ("title", "text"),
        "actionCard": ("title", "text"),
        "link": ("title", "text", "messageUrl"),
        "feedCard": ("links",),
    }[kind]
    for name in required:
        if not part.get(name):
            raise _Refusal(43004, f"{kind}.{name} is missing")
    if kind == "actionCard" and not (
        (part.get("singleTitle") and part.get("singleURL")) or part.get("btns")
    ):
        raise _Refusal(43004, "actionCard needs singleTitle/singleURL or btns")
    at = message.get("at")
    if at is not None and not isinstance(at, dict):
        raise _Refusal(43004, "at must be an object")
    return message


class FakeDingTalk(FakeServer):
    """Fake ``oapi.dingtalk.com``; register robots with :meth:`add_robot`."""

    FAULT_KINDS = frozenset({"5xx", "timeout", "errcode"})

    def __init__(
        self,
        clock: Clock = time.time,
        *,
        rate_limit: int = 20,
        mute_seconds: float = 600.0,
        max_skew_ms: int | None = TIMESTAMP_TTL_MS,
    ) -> None:
        """``rate_limit`` messages per robot per 60 s; the next one mutes the robot for
        ``mute_seconds`` (every message then gets errcode 130101). ``max_skew_ms``: how far
        a signed request's timestamp may be from ``clock`` (None: unchecked)."""
        super().__init__(clock)
        self.max_skew_ms = max_skew_ms
        self.rate_limit = rate_limit
        self.mute_seconds = mute_seconds
        self._robots: dict[str, Robot] = {}
        self._down = False

    # -- scripting / assertions ------------------------------------------------------------

    def add_robot(
        self, access_token: str, secret: str | None = None, keywords: tuple[str, ...] = ()
    ) -> str:
        """Register a robot; returns its webhook URL (without timestamp/sign)."""
        with self._lock:
            self._robots[access_token] = Robot(access_token, secret, tuple(keywords))
        return self.webhook(access_token)

    def webhook(self, access_token: str) -> str:
        return f"{self.url}/robot/send?access_token={quote(access_token, safe='')}"

    def messages(self, access_token: str) -> list[dict[str, Any]]:
        """Accepted messages (parsed JSON bodies), oldest first."""
        with self._lock:
            return [json.loads(json.dumps(m)) for m in self._robots[access_token].accepted]

    def notified(self, access_token: str) -> list[tuple[list[str], list[str]]]:
        """Whom each accepted message notified (mobiles, user ids): see :func:`notified`."""
        return [notified(m) for m in self.messages(access_token)]

    def texts(self, access_token: str) -> list[str]:
        """The markdown text / text content of each accepted message."""
        return [message_text(m) for m in self.messages(access_token)]

    def mute(self, access_token: str, seconds: float | None = None) -> None:
        """Put a robot in the 130101 penalty box as if it had sent too fast."""
        with self._lock:
            duration = self.mute_seconds if seconds is None else seconds
            self._robots[access_token].muted_until = self.clock() + duration

    def muted_until(self, access_token: str) -> float:
        with self._lock:
            return self._robots[access_token].muted_until

    @property
    def down(self) -> bool:
        return self._down

    def set_down(self, down: bool = True) -> None:
        """While down, every request gets HTTP 503 (an outage, not a DingTalk errcode)."""
        self._down = down

    # -- faults ----------------------------------------------------------------------------

    def fail_next(
        self,
        fault: str | int,
        times: int = 1,
        *,
        token: str | None = None,
        seconds: float = 1.0,
        then: TimeoutThen = "drop",
        errmsg: str | None = None,
    ) -> None:
        """Make the next ``times`` matching requests misbehave.

        ``fault``: "5xx" (HTTP 502), "timeout" (stall ``seconds`` then ``then``="drop" or
        "answer"), or an int errcode answered as HTTP 200 ``{"errcode": fault}`` (e.g. -1,
        130101, 310000, 300001, 460101; an injected 130101 does not mute the robot).
        Filter: ``token`` (the robot's access_token).
        """
        filters = normalise_filters(token=token)
        if isinstance(fault, int):
            self._queue_fault("errcode", times, filters, errcode=fault, errmsg=errmsg)
        else:
            self._queue_fault(fault, times, filters, seconds=seconds, then=then)

    # -- server hooks ----------------------------------------------------------------------

    def _dispatch(self, request: Request) -> Response:
        if self._down:
            response = Response(
                503,
                b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
                {"Content-Type": "text/html"},
                verdict="down",
            )
            self._record(request, response)
            return response
        return super()._dispatch(request)

    def _context(self, request: Request) -> dict[str, str]:
        return {"token": request.query.get("access_token", "")}

    def _fault_response(self, fault: Fault, request: Request) -> Response:
        if fault.kind == "5xx":
            return Response(
                502,
                b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                {"Content-Type": "text/html"},
            )
        if fault.kind == "errcode":
            errcode = int(fault.options["errcode"])
            errmsg = fault.options.get("errmsg") or ERRMSG.get(errcode, "error")
            return _answer(errcode, errmsg)
        raise AssertionError(fault.kind)

    def _handle(self, request: Request) -> Response:
        if request.path != "/robot/send":
            return Response(404, b"Not Found", {"Content-Type": "text/plain"}, verdict="404")
        try:
            with self._lock:
                self._accept(request)
        except _Refusal as refusal:
            return _answer(refusal.errcode, refusal.errmsg)
        return _answer(0, "ok")

    def _accept(self, request: Request) -> None:
        """Check a send request in DingTalk's order; raise :class:`_Refusal` to refuse it."""
        if request.method != "POST":
            raise _Refusal(43002)
        robot = self._robots.get(request.query.get("access_token", ""))
        if robot is None:
            raise _Refusal(300001)
        if len(request.body) > MAX_BODY_BYTES:
            raise _Refusal(460101)
        if not request.header("content-type").lower().startswith("application/json"):
            raise _Refusal(43004)
        try:
            parsed = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _Refusal(43004, "invalid json body") from None
        message = _validate(parsed)
        if robot.secret is not None:
            self._check_sign(robot.secret, request)
        if robot.keywords and not any(k in _searchable(message) for k in robot.keywords):
            raise _Refusal(310000, f"keywords not in content, more: [{SECURITY_DOC}]")
        now = self.clock()
        if now < robot.muted_until:
            raise _Refusal(130101)
        if robot.sent.count(now) >= self.rate_limit:
            robot.muted_until = now + self.mute_seconds
            raise _Refusal(130101)
        robot.sent.add(now)
        robot.accepted.append(message)

    def _check_sign(self, secret: str, request: Request) -> None:
        # parse_qsl already URL-decoded ``sign`` once, which is exactly what DingTalk expects:
        # a signature encoded twice (or not at all, when it contains '+') does not match.
        raw_timestamp = request.query.get("timestamp", "")
        if not raw_timestamp.isdigit():
            raise _Refusal(310000, f"sign not match, more: [{SECURITY_DOC}]")
        timestamp = int(raw_timestamp)
        skew = abs(self.clock() * 1000 - timestamp)
        if self.max_skew_ms is not None and skew > self.max_skew_ms:
            raise _Refusal(310000, f"invalid timestamp, more: [{SECURITY_DOC}]")
        expected = dingtalk_sign(secret, timestamp)
        if not hmac.compare_digest(expected, request.query.get("sign", "")):
            raise _Refusal(310000, f"sign not match, more: [{SECURITY_DOC}]")


def _answer(errcode: int, errmsg: str) -> Response:
    verdict = "ok" if errcode == 0 else f"errcode={errcode}"
    return Response.json(200, {"errcode": errcode, "errmsg": errmsg}, verdict=verdict)
