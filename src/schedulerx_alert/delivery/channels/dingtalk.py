"""DingTalk custom group robots: signing, limits, and what each errcode means."""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from urllib.parse import parse_qs, parse_qsl, quote_plus, urlsplit

import requests

from schedulerx_alert.config import ReceiverConfig
from schedulerx_alert.delivery.render import Message
from schedulerx_alert.support.bounded import TooLarge, read_capped
from schedulerx_alert.support.redact import Redactor, Screen

# DingTalk's errmsg is text we do not control: it may echo the request (token,
# sign) or anything else, and it ends up in the state and in health messages.
ERRMSG_CAP = 200
# The robot answers `{"errcode":0,"errmsg":"ok"}`, and an error in a line: 64 KiB leaves
# a proxy's error page room to be recognised as not JSON, and no more (bounded.py).
MAX_ANSWER_BYTES = 64 << 10


class Failure(enum.Enum):
    RETRY = "retry"  # the service or network failed; try again later
    THROTTLED = "throttled"  # DingTalk blocks this robot for ten minutes
    CONFIG = "config"  # token, secret, keyword or IP allowlist is wrong
    TOO_LARGE = "too_large"  # the body is over the size limit
    BAD_MESSAGE = "bad_message"  # DingTalk refuses this body as such
    WITHHELD = "withheld"  # the body would carry a secret we hold: never posted


class TransportError(Exception):
    """A message that was not delivered; `permanent` means resending it as is cannot help."""

    def __init__(self, message: str, failure: Failure, errcode: int | None = None) -> None:
        super().__init__(message)
        self.failure = failure
        self.errcode = errcode

    @property
    def permanent(self) -> bool:
        return self.failure in (
            Failure.CONFIG,
            Failure.TOO_LARGE,
            Failure.BAD_MESSAGE,
            Failure.WITHHELD,
        )


# errcode -> what it means for delivery (FACTS.md; DingTalk's robot docs).
ERRCODES: dict[int, Failure] = {
    -1: Failure.RETRY,
    130101: Failure.THROTTLED,
    310000: Failure.CONFIG,
    300001: Failure.CONFIG,
    300005: Failure.CONFIG,
    460101: Failure.TOO_LARGE,
    43004: Failure.BAD_MESSAGE,
}


def robot_id(webhook: str) -> str:
    """A robot's name in the state: the same for every receiver on the robot, and
    no use to whoever reads the state (a short hash, never the access_token)."""
    parts = urlsplit(webhook)
    token = parse_qs(parts.query).get("access_token", [""])[0]
    where = f"{parts.hostname}:{parts.port or ''}{parts.path}"
    return "robot-" + hashlib.sha256(f"{where}\n{token}".encode()).hexdigest()[:12]


class Receiver(ABC):
    """A channel alerts are delivered to; declares its own limits."""

    name: str
    max_bytes: int
    max_per_minute: int
    # How long one send may take, to judge whether another fits the tick.
    timeout: float
    # How long the channel refuses everything once it says "too fast".
    block_seconds: float
    # Who is @-mentioned in every message to this channel.
    at_mobiles: tuple[str, ...] = ()
    at_user_ids: tuple[str, ...] = ()

    @property
    def robot(self) -> str:
        """Whose rate budget this channel spends: receivers on one robot share it."""
        return self.name

    @property
    @abstractmethod
    def redacted_url(self) -> str:
        """The destination, fit for logs."""

    @abstractmethod
    def size(self, message: Message) -> int:
        """Bytes the message takes on the wire, to compare with max_bytes."""

    @abstractmethod
    def send(self, message: Message) -> None:
        """Deliver or raise TransportError."""

    def as_sent(self, message: Message) -> dict[str, str]:
        """The message as the group reads it (what a dry run previews): its type, title
        and text with whatever the channel adds to them."""
        return {"msgtype": "markdown", "title": message.title, "text": message.text}


class DingTalkReceiver(Receiver):
    # DingTalk refuses bodies over 20000 bytes; keep a margin for framing.
    max_bytes = 19_500
    max_per_minute = 20
    block_seconds = 600.0

    def __init__(
        self,
        config: ReceiverConfig,
        timeout: float = 5.0,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        max_per_minute: int = 20,
        screen: Screen | None = None,
    ) -> None:
        """`screen`: the secrets no body may carry (app.screen_of: every one the function
        holds); by default this robot's own token and secret."""
        self.name = config.name
        self.config = config
        self.at_mobiles = config.at_mobiles
        self.at_user_ids = config.at_user_ids
        self.timeout = timeout
        self.session = session or requests.Session()
        self.clock = clock
        self.max_per_minute = max_per_minute
        self.screen = screen or Screen(
            [("a robot access token", config.access_token), ("a robot secret", config.secret)]
        )

    @property
    def robot(self) -> str:
        return robot_id(self.config.webhook)

    @property
    def redacted_url(self) -> str:
        url = self.config.url
        return f"{url.origin}{url.path}?access_token=***"

    def payload(self, message: Message) -> dict[str, object]:
        text = message.text
        keyword = self.config.keyword
        if keyword and keyword not in text and keyword not in message.title:
            text = f"{text}\n\n{keyword}"
        mentions = (*message.at_mobiles, *message.at_user_ids)
        if message.actions and mentions:
            # DingTalk documents `at` for text and markdown messages only: an actionCard
            # would reach the group and notify no one. A message that mentions someone
            # goes as markdown, its buttons as links under the text.
            links = "  \n".join(f"[{a.title}]({a.url})" for a in message.actions)
            text = f"{text}\n\n{links}"
        for who in mentions:
            # DingTalk only notifies a mobile (or user id) that also appears in markdown text.
            if f"@{who}" not in text:
                text = f"{text} @{who}"
        at: dict[str, object] = {"atMobiles": list(message.at_mobiles), "isAtAll": False}
        if message.at_user_ids:
            at["atUserIds"] = list(message.at_user_ids)
        if message.actions and not mentions:
            buttons = [{"title": a.title, "actionURL": a.url} for a in message.actions]
            card = {
                "title": message.title,
                "text": text,
                "btns": buttons,
                # Side by side while two fit on a phone's width, else one under another.
                "btnOrientation": "1" if len(buttons) <= 2 else "0",
            }
            return {"msgtype": "actionCard", "actionCard": card, "at": at}
        return {"msgtype": "markdown", "markdown": {"title": message.title, "text": text}, "at": at}

    def as_sent(self, message: Message) -> dict[str, str]:
        payload = self.payload(message)
        kind = str(payload["msgtype"])
        part = payload[kind]
        assert isinstance(part, dict)
        shown = {"msgtype": kind, "title": str(part["title"]), "text": str(part["text"])}
        if kind == "actionCard":
            shown["buttons"] = " | ".join(str(b["title"]) for b in part["btns"])
        return shown

    def body(self, message: Message) -> bytes:
        return json.dumps(self.payload(message), ensure_ascii=False).encode("utf-8")

    def size(self, message: Message) -> int:
        return len(self.body(message))

    def signed_url(self) -> str:
        """The webhook config checked, plus timestamp and sign when the robot signs.

        Built from the checked record (urls.HttpUrl), never by pasting strings,
        so the host connected to is the host that was checked.
        """
        url = self.config.url
        secret = self.config.secret
        if not secret:
            return str(url)
        timestamp = str(int(self.clock() * 1000))
        digest = hmac.new(
            secret.encode("utf-8"), f"{timestamp}\n{secret}".encode(), hashlib.sha256
        ).digest()
        sign = quote_plus(base64.b64encode(digest).decode("ascii"))
        return str(url.with_query(f"{url.query}&timestamp={timestamp}&sign={sign}"))

    def send(self, message: Message) -> None:
        body = self.body(message)
        # The last line: whatever shaped the text (a job's output, a template), a body
        # that carries a secret is not posted.
        carried = self.screen.find(body.decode("utf-8"))
        if carried is not None:
            raise TransportError(
                f"the message would carry {carried}; it is not sent", Failure.WITHHELD
            )
        if len(body) > self.max_bytes:
            raise TransportError(
                f"message is {len(body)} bytes, over {self.max_bytes}", Failure.TOO_LARGE
            )
        url = self.signed_url()
        try:
            response = self.session.post(
                url,
                data=body,
                headers={"Content-Type": "application/json; charset=utf-8"},
                timeout=self.timeout,
                # A redirect would carry the body (and, in its Location, maybe the
                # token) to a host nobody checked; DingTalk's robot never redirects.
                allow_redirects=False,
                stream=True,
            )
            # Read before the status is looked at, so that the connection is released.
            content = read_capped(response, MAX_ANSWER_BYTES)
        except TooLarge as exc:
            # Not known whether the message was taken: sent again, it may arrive twice.
            raise TransportError(f"DingTalk: {exc}", Failure.RETRY) from None
        except requests.Timeout:
            raise TransportError("DingTalk timed out", Failure.RETRY) from None
        except requests.RequestException as exc:
            # The exception text would contain the URL and so the token.
            raise TransportError(f"network error ({type(exc).__name__})", Failure.RETRY) from None
        if 300 <= response.status_code < 400:
            raise TransportError(
                f"DingTalk answered HTTP {response.status_code}, a redirect (not followed)",
                Failure.CONFIG,
            )
        if response.status_code != 200:
            raise TransportError(f"DingTalk answered HTTP {response.status_code}", Failure.RETRY)
        try:
            answer = json.loads(content)
            errcode = int(answer.get("errcode", -1))
            errmsg: object = answer.get("errmsg", "")
        except (ValueError, AttributeError, TypeError, RecursionError):
            raise TransportError("DingTalk answer is not JSON", Failure.RETRY) from None
        if errcode == 0:
            return
        failure = ERRCODES.get(errcode, Failure.RETRY)
        raise TransportError(
            f"DingTalk errcode {errcode}: {self._errmsg(errmsg, url)}", failure, errcode
        )

    def _errmsg(self, errmsg: object, url: str) -> str:
        """DingTalk's errmsg without the robot's secrets, on one line, capped."""
        secrets: list[str | None] = [self.config.secret]
        for query in (urlsplit(url).query, urlsplit(self.config.webhook).query):
            for name, value in parse_qsl(query):
                if name in ("access_token", "sign"):
                    secrets += [value, quote_plus(value)]
        from schedulerx_alert.delivery.neutralise import (
            fold,  # its regexes load with the first error, not every start
        )

        return fold(Redactor(secrets)(str(errmsg)), ERRMSG_CAP)
