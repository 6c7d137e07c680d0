"""Answering a silence link: check it, create the silence once, say what happened.

GET (and HEAD) change nothing: a link that is opened shows what it would silence and
a button that POSTs it back. Chat clients, link scanners and previews fetch links on
their own; a silence is too quiet a failure to let one of them create it. The POST
creates it.

Once, however often it is posted: the link's nonce names a create-only claim object
beside the state, `<state>.action.<nonce>.<n>`. Whoever creates claim 0 adds the
silence to the book under the nonce as its uid, then writes the result into the claim;
everyone else reads the claim and answers "already silenced". A claim whose creator
died before finishing (older than the function's timeout, no result) is looked up in
the book by uid and, when absent, taken over at the next number.

A changed link, one signed with a key no longer accepted, or an expired one gets a
403 and changes nothing. It is refused before anything is read: the endpoint is public,
so a token is checked against the keys in the environment (and the expiry signed into
it) before the config is read or OSS is asked anything; a request costs I/O only with a
token this function signed. The keys are always in SCHEDULERX_ALERT_ACTION_KEYS (the
config may name no other variable, since it is read only after the check).

A POST acts on the token in its body only, and only when it comes from the confirmation
page itself: `Sec-Fetch-Site` same-origin or none, or, from a browser that sends no
Sec-Fetch-Site, an `Origin` equal to `base_url`'s. A request with neither header is not
a browser's cross-site form (every browser sends at least one of them on a cross-site
POST), so it is accepted: it holds the token, as a `curl` by the on-call would.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from schedulerx_alert.config import ConfigError
from schedulerx_alert.config.actions import DEFAULT_KEY_ENV, load_actions
from schedulerx_alert.config.source import config_location
from schedulerx_alert.config.timing import CALL_SHARE, DEPLOYED_TIMEOUT, MIN_CALL_SECONDS
from schedulerx_alert.core.silence import Silence
from schedulerx_alert.delivery.links import (
    QUERY_NAME,
    LinkRefused,
    LinkSigner,
    SilenceRequest,
    check_link,
    span_words,
)
from schedulerx_alert.handler import secrets_of
from schedulerx_alert.links.http import HttpRequest, HttpResponse, http_event, parse_request
from schedulerx_alert.links.page import page, words, workflow_words
from schedulerx_alert.storage.config_text import read_config_text
from schedulerx_alert.storage.silence_book import SilenceBook, SilenceBookError
from schedulerx_alert.storage.store import StoreError, open_state_store
from schedulerx_alert.support import process_log as logs
from schedulerx_alert.support.credentials import resolve_credentials
from schedulerx_alert.support.redact import Redactor
from schedulerx_alert.support.urls import HttpUrl

log = logging.getLogger("schedulerx_alert")
WHO = "dingtalk link"
MAX_CLAIMS = 4
MAX_MARKER_BYTES = 4096
# The longest `actions.link_ttl_hours` a config may set: the bound for a link checked
# before the config is read that carries no expiry of its own (signed by an older version).
MAX_LINK_TTL = 168 * 3600
Clock = Callable[[], float]
# Sec-Fetch-Site values of a request the confirmation page's own form makes (none: the
# user's own navigation, such as a reload).
_OWN_SITE = frozenset({"same-origin", "none"})


@dataclass(frozen=True)
class Answer:
    response: HttpResponse
    outcome: str  # one word for the log line: confirm, silenced, already, refused, ...
    silence_id: str | None = None


class SilenceDesk:
    """Answers the requests of silence links against one silence book."""

    def __init__(
        self,
        signer: LinkSigner,
        book: SilenceBook,
        language: str = "zh-CN",
        zone: str = "Asia/Shanghai",
        clock: Clock = time.time,
        stale_after: float = 2 * DEPLOYED_TIMEOUT,
        request_id: str = "",
        origin: str | None = None,
    ) -> None:
        self.signer = signer
        # The endpoint's own origin (`base_url`'s), which a same-origin POST names.
        self.origin = origin
        self.book = book
        self.language = language
        self.zone = zone
        self.clock = clock
        self.stale_after = stale_after
        self.request_id = request_id
        self.words = words(language)

    # -- the request ---------------------------------------------------------------------------

    def answer(self, request: HttpRequest) -> Answer:
        if request.method not in ("GET", "HEAD", "POST"):
            w = self.words
            response = page(
                405,
                self.language,
                w["method_title"],
                [w["method"]],
                extra_headers={"Allow": "GET, HEAD, POST"},
            )
            return Answer(response, "method")
        token = token_of(request)
        now = self.clock()
        try:
            wanted = check_link(self.signer, token, now)
        except LinkRefused as refused:
            return Answer(self._refused(refused.reason), f"refused: {refused.reason}")
        if request.method == "POST":
            crossing = cross_site(request, self.origin)
            if crossing is not None:
                log.warning("silence link: a POST from another site refused (%s)", crossing)
                return Answer(_bilingual(403, *_CROSS_SITE), "refused: cross-site")
        try:
            if request.method == "POST":
                answer = self._post(wanted, now)
            else:
                answer = self._confirm(wanted, token, now)
        except StoreError as exc:
            log.error("silence link: the state store failed: %s", exc)
            answer = Answer(self._unavailable(), "unavailable")
        if request.method == "HEAD":
            response = answer.response
            answer = Answer(HttpResponse(response.status, "", response.headers), answer.outcome)
        return answer

    def _confirm(self, wanted: SilenceRequest, token: str, now: float) -> Answer:
        for generation in range(MAX_CLAIMS):
            marker = self._read_marker(wanted.nonce, generation)
            if marker is None:
                break
            if marker.get("state") == "done":
                return self._already(wanted, marker)
        w = self._words(wanted)
        job = _job(wanted)
        if wanted.until is not None:
            what = w["confirm_until"].format(until=self._local(wanted.until))
        else:
            what = w["confirm_for"].format(span=span_words(wanted.seconds or 0, self.language))
        response = page(
            200,
            self.language,
            w["confirm_title"].format(job=job),
            [what, w["held"]],
            facts=_facts(wanted, w),
            token=token,
            notes=[w["nothing_yet"]],
        )
        return Answer(response, "confirm")

    def _post(self, wanted: SilenceRequest, now: float) -> Answer:
        for generation in range(MAX_CLAIMS):
            claim = {"v": 1, "state": "claimed", "at": now, "by": self.request_id}
            if self.book.store.create(self._marker_key(wanted.nonce, generation), _encode(claim)):
                return self._create(wanted, generation, now)
            marker = self._read_marker(wanted.nonce, generation) or {}
            state = marker.get("state")
            if state == "done":
                return self._already(wanted, marker)
            if state == "failed":
                continue  # its creator gave up; the next number may try again
            at = marker.get("at")
            # A claim made after our clock read `now` is as fresh as can be: no lower bound.
            fresh = isinstance(at, int | float) and now - at < self.stale_after
            if state == "claimed" and fresh:
                return Answer(self._pending(), "pending")
            # Its creator died; it may have added the silence before it did.
            found = self._in_book(wanted.nonce)
            if found is not None:
                self._write_done(wanted.nonce, generation, found)
                return self._already(wanted, _done(found))
        return Answer(self._unavailable(), "unavailable")

    def _create(self, wanted: SilenceRequest, generation: int, now: float) -> Answer:
        if generation > 0:
            found = self._in_book(wanted.nonce)
            if found is not None:
                self._write_done(wanted.nonce, generation, found)
                return self._already(wanted, _done(found))
        try:
            silence = self.book.add(
                wanted.matcher(),
                now,
                wanted.end(now),
                _why(wanted),
                WHO,
                now,
                uid=wanted.nonce,
            )
        except SilenceBookError as exc:
            self._write_marker(wanted.nonce, generation, {"state": "failed", "at": now})
            w = self.words
            response = page(409, self.language, w["failed_title"], [w["failed"].format(reason=exc)])
            return Answer(response, "failed")
        except StoreError:
            self._write_marker(wanted.nonce, generation, {"state": "failed", "at": now})
            raise
        self._write_done(wanted.nonce, generation, silence)
        w = self._words(wanted)
        job = _job(wanted)
        response = page(
            200,
            self.language,
            w["silenced_title"].format(job=job),
            [
                w["silenced"].format(job=job, until=self._local(silence.until), id=silence.id),
                w["held"],
            ],
            facts=_facts(wanted, w),
            notes=[w["expire_hint"].format(id=silence.id)],
        )
        return Answer(response, "silenced", silence.id)

    # -- claims --------------------------------------------------------------------------------

    def _marker_key(self, nonce: str, generation: int) -> str:
        return f"{self.book.state_key}.action.{nonce}.{generation}"

    def _read_marker(self, nonce: str, generation: int) -> dict[str, Any] | None:
        data = self.book.store.read(self._marker_key(nonce, generation))
        if data is None:
            return None
        try:
            marker = json.loads(data[:MAX_MARKER_BYTES])
        except (ValueError, RecursionError):
            return {}
        return marker if isinstance(marker, dict) else {}

    def _write_marker(self, nonce: str, generation: int, marker: Mapping[str, Any]) -> None:
        """Best effort: a claim left without its result is looked up in the book later."""
        try:
            data = _encode({"v": 1, "by": self.request_id, **marker})
            self.book.store.write(self._marker_key(nonce, generation), data)
        except StoreError as exc:
            log.warning("silence link: could not record the outcome of its claim: %s", exc)

    def _write_done(self, nonce: str, generation: int, silence: Silence) -> None:
        self._write_marker(nonce, generation, _done(silence))

    def _in_book(self, nonce: str) -> Silence | None:
        view = self.book.read()
        silence_id = next((sid for sid, uid in view.uids.items() if uid == nonce), None)
        return view.get(silence_id) if silence_id is not None else None

    # -- pages ---------------------------------------------------------------------------------

    def _words(self, wanted: SilenceRequest) -> dict[str, str]:
        """The page's words: a workflow's link says "workflow" where a job's says "job"."""
        if wanted.target.workflow_id is None:
            return self.words
        return workflow_words(self.language)

    def _already(self, wanted: SilenceRequest, marker: Mapping[str, Any]) -> Answer:
        w = self._words(wanted)
        until = marker.get("until")
        until_text = self._local(until) if isinstance(until, int | float) else "?"
        silence_id = str(marker.get("silence", "?"))[:40]
        text = w["already"].format(job=_job(wanted), until=until_text, id=silence_id)
        response = page(200, self.language, w["already_title"], [text], facts=_facts(wanted, w))
        return Answer(response, "already", silence_id)

    def _refused(self, reason: str) -> HttpResponse:
        w = self.words
        if reason == "expired":
            hours = f"{self.signer.ttl / 3600:g}"
            return page(403, self.language, w["expired_title"], [w["expired"].format(hours=hours)])
        return page(403, self.language, w["invalid_title"], [w["invalid"]])

    def _pending(self) -> HttpResponse:
        w = self.words
        return page(409, self.language, w["pending_title"], [w["pending"]])

    def _unavailable(self) -> HttpResponse:
        w = self.words
        return page(503, self.language, w["unavailable_title"], [w["unavailable"]])

    def _local(self, epoch: float) -> str:
        moment = datetime.fromtimestamp(epoch, ZoneInfo(self.zone))
        return f"{moment:%Y-%m-%d %H:%M} ({self.zone})"


def token_of(request: HttpRequest) -> str:
    """A POST's token from its body only: one in the URL alone would let any page that
    can make a browser POST to a link (a bodiless cross-site form) act on it."""
    if request.method == "POST":
        return request.form().get(QUERY_NAME, "")
    return request.query.get(QUERY_NAME, "")


def cross_site(request: HttpRequest, origin: str | None) -> str | None:
    """Why a POST did not come from the confirmation page itself, or None when it did.

    `Sec-Fetch-Site` is set by the browser and cannot be forged by a page, so when
    present it decides; older browsers without it send `Origin` on every POST. Neither
    header: not a browser's cross-site form, and accepted (see the module's docstring).
    """
    site = request.headers.get("sec-fetch-site", "").strip().lower()
    if site:
        return None if site in _OWN_SITE else f"Sec-Fetch-Site: {site[:40]}"
    sent = request.headers.get("origin")
    if sent is None:
        return None
    if origin is None or sent.strip().lower() != origin:
        return f"Origin: {sent[:100]}"
    return None


def origin_of(url: HttpUrl) -> str:
    """The origin a browser names in `Origin` for a page at `url` (no default port)."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{host}{port}"


_CROSS_SITE = (
    ("请求被拒绝", "Request refused"),
    (
        "静默只能在这个链接自己的确认页面上确认。没有做任何更改。",
        "A silence can only be confirmed on this link's own page. Nothing was changed.",
    ),
)
_REFUSED = {
    "invalid": (
        ("链接无效", "Link not valid"),
        (
            "这个链接无效：它被改动过，或者签名所用的密钥已不再被接受。没有做任何更改。",
            "This link is not valid: it was changed, or signed with a key this function no "
            "longer accepts. Nothing was changed.",
        ),
    ),
    "expired": (
        ("链接已过期", "Link expired"),
        (
            "这个链接已过期，或者它要静默到的时间已经过去。没有做任何更改。",
            "This link has expired, or the time it silences until has passed. Nothing was changed.",
        ),
    ),
}
_METHOD = (
    ("不支持的请求", "Not supported"),
    ("请在钉钉中打开这个链接。", "Open this link from the DingTalk message."),
)


def _bilingual(
    status: int,
    title: tuple[str, str],
    text: tuple[str, str],
    extra_headers: dict[str, str] | None = None,
) -> HttpResponse:
    """A page answered before the config, and so its language, is known: in both."""
    return page(status, "zh-CN", " / ".join(title), list(text), extra_headers=extra_headers)


def before_io(request: HttpRequest, env: Mapping[str, str], clock: Clock) -> Answer | None:
    """The answer to a request refused without reading anything; None to go on.

    The keys are always the default variable's (`actions.key_env` may name no other):
    without them no link can hold, so nothing is read for any."""
    if request.method not in ("GET", "HEAD", "POST"):
        response = _bilingual(405, *_METHOD, extra_headers={"Allow": "GET, HEAD, POST"})
        return Answer(response, "method")
    keys = tuple(k.strip() for k in env.get(DEFAULT_KEY_ENV, "").split(",") if k.strip())
    token = token_of(request)
    if not keys:
        response = _bilingual(403, *_REFUSED["invalid"])
        if request.method == "HEAD":
            response = HttpResponse(response.status, "", response.headers)
        return Answer(response, "refused: no keys")
    try:
        check_link(LinkSigner(keys, MAX_LINK_TTL, clock), token, clock())
    except LinkRefused as refused:
        if refused.reason == "invalid":
            operation = _operation_refusal(keys, token, clock)
            if operation is None:
                return None  # an operation link's: checked in full once the config is read
            if operation.reason == "expired":
                refused = operation
        response = _bilingual(403, *_REFUSED[refused.reason])
        if request.method == "HEAD":
            response = HttpResponse(response.status, "", response.headers)
        return Answer(response, f"refused: {refused.reason}")
    return None


def _operation_refusal(keys: tuple[str, ...], token: str, clock: Clock) -> LinkRefused | None:
    """Why the token is no operation link that holds now; None when it is one."""
    from schedulerx_alert.delivery.operation_links import SALT, check_operation

    try:
        check_operation(LinkSigner(keys, MAX_LINK_TTL, clock, salt=SALT), token, clock())
    except LinkRefused as refused:
        return refused
    return None


def _is_operation(keys: tuple[str, ...], token: str, clock: Clock) -> bool:
    """Whether this function signed the token as an operation link (expired or not)."""
    from schedulerx_alert.delivery.operation_links import SALT

    try:
        LinkSigner(keys, MAX_LINK_TTL, clock, salt=SALT).verify_wire(token)
    except LinkRefused as refused:
        return refused.reason == "expired"
    return True


def _done(silence: Silence) -> dict[str, Any]:
    return {"state": "done", "silence": silence.id, "until": silence.until}


def _encode(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _job(wanted: SilenceRequest) -> str:
    target = wanted.target
    number = target.workflow_id or target.job_id
    return f"{target.job_name} ({number})" if target.job_name else str(number)


def _facts(wanted: SilenceRequest, w: Mapping[str, str]) -> list[tuple[str, str]]:
    target = wanted.target
    return [
        (w["job"], _job(wanted)),
        (w["group"], target.group),
        (w["namespace"], target.namespace),
    ]


def _why(wanted: SilenceRequest) -> str:
    target = wanted.target
    about = " ".join(
        part
        for part in (target.kind, f"run {target.instance_id}" if target.instance_id else "")
        if part
    )
    return (
        f"from a DingTalk alert's button ({about})" if about else "from a DingTalk alert's button"
    )


# -- the FC entry for HTTP events --------------------------------------------------------------


def serve(
    event: Any,
    context: Any,
    default_dir: Path,
    clock: Clock = time.time,
    env: Mapping[str, str] | None = None,
) -> str:
    """index.handler's answer to an HTTP trigger event: FC's response struct as JSON."""
    env = os.environ if env is None else env
    credentials = resolve_credentials(context, env)
    logs.install(Redactor(secrets_of(None, credentials)))
    started = time.monotonic()
    answer = _serve(event, context, default_dir, clock, env, credentials)
    log.info(
        "silence link",
        extra=logs.fields(
            {
                "event": "action",
                "status": answer.response.status,
                "outcome": answer.outcome,
                "silence": answer.silence_id,
                "duration_ms": round((time.monotonic() - started) * 1000),
            }
        ),
    )
    return answer.response.to_json()


def _serve(
    event: Any,
    context: Any,
    default_dir: Path,
    clock: Clock,
    env: Mapping[str, str],
    credentials: Any,
) -> Answer:
    parsed = http_event(event)
    try:
        if parsed is None:
            raise ValueError("not an HTTP trigger event")
        request = parse_request(parsed)
    except ValueError as exc:
        log.warning("silence link: unreadable request: %s", exc)
        return Answer(page(400, "en", "Bad request", [str(exc)]), "bad request")
    refused = before_io(request, env, clock)
    if refused is not None:
        return refused
    function = getattr(context, "function", None)
    timeout = float(getattr(function, "timeout", 0) or DEPLOYED_TIMEOUT)
    try:
        # The tick's config, a file or an OSS object; read once per click (no ETag cache:
        # clicks are rare, and each wants the current actions: settings).
        location = config_location(default_dir, env)
        call = min(5.0, max(MIN_CALL_SECONDS, timeout * CALL_SHARE))
        text = read_config_text(
            location, credentials, env, call, base_dir=default_dir, public=False
        )
        config, settings = load_actions(text, env)
    except ConfigError as exc:
        log.error("config rejected: %s", exc)
        texts = [
            "这个函数的配置有误，请联系值班。",
            "This function's config has problems; tell the on-call.",
        ]
        return Answer(page(500, "zh-CN", "配置错误 / Config error", texts), "config error")
    logs.install(Redactor([*secrets_of(config, credentials), *settings.keys]))
    language = config.templates.language
    if not settings.enabled:
        w = words(language)
        return Answer(page(404, language, w["invalid_title"], [w["invalid"]]), "disabled")
    try:
        store, key = open_state_store(config, credentials)
    except StoreError as exc:
        log.error("silence link: state unusable: %s", exc)
        w = words(language)
        return Answer(
            page(503, language, w["unavailable_title"], [w["unavailable"]]), "unavailable"
        )
    request_id = request.request_id or str(getattr(context, "request_id", "") or "")
    if request.method in ("GET", "HEAD", "POST") and _is_operation(
        settings.keys, token_of(request), clock
    ):
        return _operate(
            request, config, settings, credentials, store, key, clock, timeout, request_id
        )
    desk = SilenceDesk(
        LinkSigner(settings.keys, settings.link_ttl, clock),
        SilenceBook(store, key),
        language,
        config.timezone,
        clock,
        stale_after=timeout + 30,
        request_id=request_id,
        origin=origin_of(settings.base_url) if settings.base_url is not None else None,
    )
    return desk.answer(request)


def _operate(
    request: HttpRequest,
    config: Any,
    settings: Any,
    credentials: Any,
    store: Any,
    key: str,
    clock: Clock,
    timeout: float,
    request_id: str,
) -> Answer:
    """An operation link's answer (links/operate.py), with the same-site checks."""
    from schedulerx_alert.delivery.channels.dingtalk import DingTalkReceiver
    from schedulerx_alert.delivery.operation_links import operation_signer
    from schedulerx_alert.delivery.render import Message
    from schedulerx_alert.handler import screen_of
    from schedulerx_alert.links.operate import WORDS as OPERATION_WORDS
    from schedulerx_alert.links.operate import OperationDesk
    from schedulerx_alert.sources.schedulerx import SchedulerXClient

    if request.method == "POST":
        origin = origin_of(settings.base_url) if settings.base_url is not None else None
        crossing = cross_site(request, origin)
        if crossing is not None:
            log.warning("operation link: a POST from another site refused (%s)", crossing)
            return Answer(_bilingual(403, *_CROSS_SITE_OPERATION), "refused: cross-site")
    if credentials is None:
        log.error("operation link: no credentials to call SchedulerX with")
        language = config.templates.language
        w = OPERATION_WORDS.get(language, OPERATION_WORDS["en"])
        response = page(503, language, w["unavailable_title"], [w["unavailable"]])
        return Answer(response, "unavailable")
    call = min(5.0, max(MIN_CALL_SECONDS, timeout * CALL_SHARE))
    client = SchedulerXClient(
        config.schedulerx.endpoint, config.region, credentials, config.zone, call, clock=clock
    )
    screen = screen_of(config, credentials)

    def announce(receiver: str, message: Message) -> None:
        receiver_config = config.receivers.get(receiver)
        if receiver_config is None:
            raise ValueError(f"receiver {receiver} is no longer in the config")
        DingTalkReceiver(receiver_config, call, clock=clock, screen=screen).send(message)

    desk = OperationDesk(
        operation_signer(settings, clock),
        store,
        key,
        settings.operations,
        client,
        announce,
        config.templates.language,
        config.timezone,
        clock,
        stale_after=timeout + 30,
        request_id=request_id,
    )
    response, outcome = desk.answer(request, token_of(request))
    if request.method == "HEAD":
        response = HttpResponse(response.status, "", response.headers)
    return Answer(response, outcome)


_CROSS_SITE_OPERATION = (
    ("请求被拒绝", "Request refused"),
    (
        "操作只能在这个链接自己的确认页面上确认。没有做任何更改。",
        "An operation can only be confirmed on this link's own page. Nothing was changed.",
    ),
)
