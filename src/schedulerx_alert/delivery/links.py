"""Signed silence links, and the buttons that carry them.

A link names the silence it creates (namespace, group, job or workflow, how long) and a
nonce that makes it create that silence once, however often it is opened. It is signed
with itsdangerous (HMAC-SHA256, a timestamp, key rotation): changing one character
breaks the signature, and a link older than `link_ttl_hours` is refused. The
signature says who made the link, not who clicks it: whoever holds a link can use it,
so links go only where the alert goes.

A duration ("1h") counts from the click; a time ("until 09:00") is fixed when the
alert is sent, the next 09:00 of the config's timezone after it, as the button says.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from schedulerx_alert.config.actions import ActionSettings, Span
from schedulerx_alert.core.silence import Matcher
from schedulerx_alert.core.state import Alert
from schedulerx_alert.delivery.render import Action, Message

# A new salt makes every earlier link invalid: change it with the payload's meaning.
SALT = "schedulerx-alert.silence-link"
VERSION = 1
MAX_TOKEN_CHARS = 2000
MAX_NAME_CHARS = 100
QUERY_NAME = "t"
_NONCE = re.compile(r"[0-9a-f]{16}")
_TEXT_CAP = 200

Clock = Callable[[], float]


@dataclass(frozen=True)
class LinkTarget:
    """What an alert is about, as far as a silence link needs it. A workflow's alert is
    about its key (core/workflows.py): `job_id` is the workflow id negated."""

    namespace: str
    group: str
    job_id: int
    job_name: str | None = None
    kind: str = ""
    instance_id: int | None = None

    @property
    def workflow_id(self) -> int | None:
        return -self.job_id if self.job_id < 0 else None

    @classmethod
    def of(cls, alert: Alert) -> LinkTarget:
        """The alert's job (the first, for a shared cause: see `ActionLinks.attach`)."""
        job = alert.job
        if job is None:
            raise ValueError("an alert about no job has no silence link")
        return cls(
            job.namespace,
            job.group,
            job.job_id,
            alert.job_name,
            alert.kind,
            alert.instance.instance_id if alert.instance else None,
        )


@dataclass(frozen=True)
class SilenceRequest:
    """The silence a link asks for: the job, `seconds` from the click or `until` a time."""

    target: LinkTarget
    nonce: str
    seconds: int | None = None
    until: float | None = None
    # When the link stops working (signing time + link_ttl_hours then), signed into it so
    # that the endpoint can refuse an expired link before it reads the config.
    expires: float | None = None

    def end(self, now: float) -> float:
        return self.until if self.until is not None else now + (self.seconds or 0)

    def matcher(self) -> Matcher:
        workflow = self.target.workflow_id
        return Matcher(
            namespace=self.target.namespace,
            group=self.target.group,
            job_ids=frozenset() if workflow is not None else frozenset({self.target.job_id}),
            workflow_ids=frozenset() if workflow is None else frozenset({workflow}),
        )

    def to_wire(self) -> dict[str, Any]:
        t = self.target
        wire: dict[str, Any] = {"v": VERSION, "ns": t.namespace, "g": t.group}
        # A workflow by its own id under its own name: a link without "w" reads as before.
        if t.workflow_id is not None:
            wire["w"] = t.workflow_id
        else:
            wire["j"] = t.job_id
        if t.job_name:
            wire["n"] = t.job_name[:MAX_NAME_CHARS]
        if t.kind:
            wire["k"] = t.kind
        if t.instance_id is not None:
            wire["i"] = t.instance_id
        if self.until is not None:
            wire["u"] = int(self.until)
        else:
            wire["s"] = self.seconds
        if self.expires is not None:
            wire["e"] = int(self.expires)
        wire["x"] = self.nonce
        return wire

    @classmethod
    def from_wire(cls, wire: Any) -> SilenceRequest:
        """Raises ValueError for anything this version did not write."""
        if not isinstance(wire, dict) or wire.get("v") != VERSION:
            raise ValueError("not a version 1 silence link")
        namespace, group = _text(wire.get("ns")), _text(wire.get("g"))
        job_id, instance_id = _integer(wire.get("j")), wire.get("i")
        if "w" in wire:
            workflow = _integer(wire.get("w"))
            job_id = -workflow if workflow and "j" not in wire else None
        nonce = wire.get("x")
        name, kind = wire.get("n"), wire.get("k", "")
        seconds, until = wire.get("s"), wire.get("u")
        expires = wire.get("e")
        if (
            not namespace
            or not group
            or job_id is None
            or not (name is None or _text(name))
            or not isinstance(kind, str)
            or len(kind) > 40
            or (instance_id is not None and _integer(instance_id) is None)
            or not isinstance(nonce, str)
            or not _NONCE.fullmatch(nonce)
            or (seconds is None) == (until is None)
            or (seconds is not None and _integer(seconds) is None)
            or (until is not None and _integer(until) is None)
            or (expires is not None and _integer(expires) is None)
        ):
            raise ValueError("a silence link with missing or malformed fields")
        target = LinkTarget(namespace, group, job_id, name, kind, instance_id)
        return cls(
            target,
            nonce,
            seconds,
            float(until) if until is not None else None,
            float(expires) if expires is not None else None,
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= _TEXT_CAP else None


def _integer(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63
    return value if ok else None


class LinkRefused(Exception):
    """A link that creates nothing: `expired`, or `invalid` (changed, another key, malformed)."""

    def __init__(self, reason: Literal["expired", "invalid"], detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class LinkSigner:
    """Signs with the first key, accepts any; refuses links older than `ttl` seconds."""

    def __init__(
        self, keys: Sequence[str], ttl: float, clock: Clock = time.time, salt: str = SALT
    ) -> None:
        if not keys:
            raise ValueError("no signing key")
        self.ttl = int(ttl)
        self.clock = clock

        class _Signer(TimestampSigner):
            # The clock the rest of the product runs on, so tests can move it.
            def get_timestamp(self) -> int:
                return int(clock())

        # itsdangerous signs with the last key of its list and tries every one.
        self._serializer = URLSafeTimedSerializer(
            list(reversed(keys)),
            salt=salt,
            signer=_Signer,
            signer_kwargs={"digest_method": hashlib.sha256},
        )

    def sign(self, request: SilenceRequest) -> str:
        return self.sign_wire(request.to_wire())

    def sign_wire(self, wire: dict[str, Any]) -> str:
        token = self._serializer.dumps(wire)
        assert isinstance(token, str)
        return token

    def verify(self, token: str) -> tuple[SilenceRequest, float]:
        """The request a token carries and when it was signed; raises LinkRefused."""
        wire, signed_at = self.verify_wire(token)
        try:
            request = SilenceRequest.from_wire(wire)
        except ValueError as exc:
            raise LinkRefused("invalid", str(exc)) from None
        return request, signed_at

    def verify_wire(self, token: str) -> tuple[Any, float]:
        """A token's signed payload and when it was signed; raises LinkRefused."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise LinkRefused("invalid", "no token, or one too long to be ours")
        try:
            wire, signed_at = self._serializer.loads(token, max_age=self.ttl, return_timestamp=True)
        except SignatureExpired:
            hours = self.ttl / 3600
            raise LinkRefused("expired", f"the link is older than {hours:g} h") from None
        except BadData:
            raise LinkRefused("invalid", "the signature does not match") from None
        return wire, signed_at.timestamp()


def check_link(signer: LinkSigner, token: str, now: float) -> SilenceRequest:
    """The request a token carries when it still holds at `now`; raises LinkRefused."""
    wanted, _ = signer.verify(token)
    if wanted.expires is not None and wanted.expires <= now:
        raise LinkRefused("expired", "the link is past the expiry signed into it")
    if wanted.until is not None and wanted.until <= now:
        raise LinkRefused("expired", "the time it silences until has passed")
    return wanted


def next_local_time(now: float, hour: int, minute: int, zone: str) -> float:
    """The first hour:minute of `zone` after `now`."""
    tz = ZoneInfo(zone)
    local = datetime.fromtimestamp(now, tz)
    day = local.date()
    for _ in range(3):
        # Built from the wall clock so that a DST day still lands on hour:minute.
        candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).timestamp()
        if candidate > now:
            return candidate
        day += timedelta(days=1)
    raise AssertionError("unreachable: a day later is always after now")


_LABELS = {
    "zh-CN": {"for": "静默 {span}", "until": "静默至 {time}", "tomorrow": "静默至明天 {time}"},
    "en": {
        "for": "Silence {span}",
        "until": "Silence until {time}",
        "tomorrow": "Silence until tomorrow {time}",
    },
}
_UNITS = {"zh-CN": ("天", "小时", "分钟"), "en": ("d", "h", "min")}


def span_words(seconds: int, language: str) -> str:
    days, rest = divmod(seconds, 86400)
    hours, minutes = divmod(rest // 60, 60)
    units = _UNITS.get(language, _UNITS["en"])
    parts = [f"{n} {u}" for n, u in zip((days, hours, minutes), units, strict=True) if n]
    return " ".join(parts)


class ActionLinks:
    """Makes the buttons under an alert; one per configured duration."""

    def __init__(
        self,
        settings: ActionSettings,
        language: str = "zh-CN",
        zone: str = "Asia/Shanghai",
        clock: Clock = time.time,
    ) -> None:
        if not settings.enabled or settings.base_url is None or not settings.keys:
            raise ValueError("actions are not enabled, or have no base_url or keys")
        self.settings = settings
        self.language = language if language in _LABELS else "en"
        self.zone = zone
        self.clock = clock
        self.signer = LinkSigner(settings.keys, settings.link_ttl, clock)

    def link(self, request: SilenceRequest) -> str:
        assert self.settings.base_url is not None
        token = self.signer.sign(request)
        return str(self.settings.base_url.with_query(f"{QUERY_NAME}={token}"))

    def request(self, target: LinkTarget, span: Span, now: float) -> SilenceRequest:
        nonce = secrets.token_hex(8)
        expires = now + self.settings.link_ttl
        if span.until is not None:
            until = next_local_time(now, span.until[0], span.until[1], self.zone)
            return SilenceRequest(target, nonce, until=until, expires=expires)
        return SilenceRequest(target, nonce, seconds=span.seconds, expires=expires)

    def label(self, request: SilenceRequest, now: float) -> str:
        words = _LABELS[self.language]
        if request.until is None:
            return words["for"].format(span=span_words(request.seconds or 0, self.language))
        tz = ZoneInfo(self.zone)
        until = datetime.fromtimestamp(request.until, tz)
        same_day = until.date() == datetime.fromtimestamp(now, tz).date()
        return words["until" if same_day else "tomorrow"].format(time=until.strftime("%H:%M"))

    def buttons(self, target: LinkTarget) -> tuple[Action, ...]:
        now = self.clock()
        requests = [self.request(target, span, now) for span in self.settings.spans]
        return tuple(Action(self.label(r, now), self.link(r)) for r in requests)

    def attach(self, message: Message, alert: Alert) -> Message:
        """The message of one alert, with its buttons; the one call delivery makes."""
        if len(alert.jobs) != 1:
            # A shared cause: a button could silence only one of its jobs.
            return message
        buttons = self.buttons(LinkTarget.of(alert))
        # An operation acts on a job's run, not on a workflow instance (core/workflows.py):
        # a workflow's message has its silence buttons only.
        if self.settings.operations and alert.jobs[0].job_id > 0:
            from schedulerx_alert.delivery.operation_links import operation_buttons

            buttons += operation_buttons(self.settings, alert, self.language, self.clock)
        return replace(message, actions=buttons)


def attach_actions(message: Message, alert: Alert, links: ActionLinks | None) -> Message:
    """Buttons when actions are enabled; the message as it was otherwise."""
    return message if links is None else links.attach(message, alert)
