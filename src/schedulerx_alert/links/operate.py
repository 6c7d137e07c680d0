"""Answering an operation link: retry, mark as succeeded or stop one run, once.

GET (and HEAD) change nothing: the page says what will happen to which run and offers a
button that POSTs the token back (the same-site checks of serve.py apply). The POST:

1. refuses unless `actions.operations` lists the operation: a link signed with a valid
   key acts never while operations are off;
2. creates the link's record, `<state>.operation.<nonce>`, beside the state and the
   silence claims, with a create-only write: of two clicks racing, one creates it and
   acts, the other reads it and says what was done. A record left "claimed" by a click
   that died is never taken over: whether SchedulerX acted is then unknown, and acting
   twice is worse than asking the on-call to look at the console. One exception: when
   SchedulerX throttled the call, it did not act, and the on-call clicks again a minute
   later; so that try's record says `again: true` and a later click creates the next
   try's record, `<state>.operation.<nonce>.<n>` (n = 2, 3, ...), with the same
   create-only write (of two clicks racing, one acts), up to MAX_TRIES. Every try keeps
   its own record; any other outcome, and "claimed", is final;
3. re-reads the run (GetJobInstance) and refuses unless it is still in the status and
   attempt (EndTime) the link was made for: a run retried since, or stopped, is not acted
   on again by an old link;
4. calls SchedulerX, and writes the outcome into the record: time, source IP, user agent
   (who clicked cannot be known from a link), run, operation, SchedulerX's answer;
5. posts a short follow-up to the alert's group through the alert's receiver; when
   DingTalk does not take it, queues it for the next tick (storage/followups.py).

The follow-up is posted here rather than left to the next tick: it answers a person's
click, and a minute later is late for "it is running again". It goes through the same
DingTalkReceiver as alerts, with the same secret screen and signing; it is one message
per click, well inside a robot's 20 a minute. What happens next to the run is the tick's:
it follows the retried run like any other and announces its outcome (a recovery when it
succeeds). A follow-up DingTalk refuses is recorded (`announced: false`), logged and
queued: the next tick posts it through its own delivery, within the robot's budget, and
marks the record announced once DingTalk took it (delivery/followups.py).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from schedulerx_alert.config.timing import DEPLOYED_TIMEOUT
from schedulerx_alert.core.model import InstanceStatus, JobInstance, JobKey
from schedulerx_alert.delivery.links import LinkRefused, LinkSigner
from schedulerx_alert.delivery.operation_links import (
    WANTED_STATUS,
    OperationRequest,
    check_operation,
    follow_up,
    follow_up_line,
)
from schedulerx_alert.delivery.render import Message
from schedulerx_alert.links.http import HttpRequest, HttpResponse
from schedulerx_alert.links.page import page
from schedulerx_alert.sources.schedulerx import (
    OPERATION_CALLS,
    WRITE_RAM_ACTIONS,
    SchedulerXError,
)
from schedulerx_alert.storage.followups import FollowUpQueue, operation_key
from schedulerx_alert.storage.store import StateStore, StoreError
from schedulerx_alert.support import process_log as logs

log = logging.getLogger("schedulerx_alert")
MAX_RECORD_BYTES = 8192
# Tries of one link SchedulerX may throttle before the link sends the on-call to the
# console: each is a record, and a click reads them all (one GET each) before it acts.
MAX_TRIES = 5
Clock = Callable[[], float]


class Operator(Protocol):
    """The part of SchedulerXClient an operation needs."""

    def get_job_instance(self, job: JobKey, instance_id: int) -> JobInstance | None: ...

    def operate(self, operation: str, job: JobKey, instance_id: int) -> str: ...


# Sends the follow-up to the named receiver; raises when it could not.
Announce = Callable[[str, Message], None]

WORDS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "confirm_retry": "重跑任务 {job} 的运行 {run}？",
        "confirm_mark_success": "将任务 {job} 的运行 {run} 标记为成功？",
        "confirm_stop": "停止任务 {job} 的运行 {run}？",
        "what_retry": "SchedulerX 会重新运行这次失败的运行；之后的告警会通知它的结果。",
        "what_mark_success": "SchedulerX 会把这次失败的运行记为成功，它不会再运行。",
        "what_stop": "SchedulerX 会停止这次仍在运行的运行。",
        "button_retry": "确认重跑",
        "button_mark_success": "确认标记为成功",
        "button_stop": "确认停止",
        "nothing_yet": "点击按钮之前什么都不会改变。每个链接只会执行一次。",
        "refused_title": "没有执行",
        "already_title": "这个链接已经用过",
        "pending_title": "正在执行",
        "pending": "这个操作正在执行，请几秒后刷新页面。",
        "unknown": (
            "这个链接在 {at} 被使用过，但结果没有记录下来。请在 SchedulerX 控制台查看运行 {run}。"
        ),
        "off_title": "操作未启用",
        "off": "这个函数没有启用这个操作（actions.operations）。没有做任何更改。",
        "unavailable_title": "暂时无法执行",
        "unavailable": "状态存储或 SchedulerX 没有响应。没有执行操作，请稍后再打开这个链接。",
        "later": "群机器人这次没有接收后续通知；下一次检查（约一分钟内）会把它发到群里。",
        "at": "于 {at}",
        "job": "任务",
        "run": "运行",
        "group": "应用分组",
        "namespace": "命名空间",
    },
    "en": {
        "confirm_retry": "Retry run {run} of {job}?",
        "confirm_mark_success": "Mark run {run} of {job} as succeeded?",
        "confirm_stop": "Stop run {run} of {job}?",
        "what_retry": "SchedulerX runs this failed run again; the next alerts tell how it ends.",
        "what_mark_success": (
            "SchedulerX records this failed run as succeeded; it does not run again."
        ),
        "what_stop": "SchedulerX stops this run, which is still running.",
        "button_retry": "Retry",
        "button_mark_success": "Mark as succeeded",
        "button_stop": "Stop",
        "nothing_yet": "Nothing changes until you press the button. A link acts once.",
        "refused_title": "Not done",
        "already_title": "This link was used before",
        "pending_title": "Working",
        "pending": "This operation is under way; reload the page in a few seconds.",
        "unknown": (
            "This link was used at {at}, but its outcome was not recorded. Look at run {run} "
            "in the SchedulerX console."
        ),
        "off_title": "Operation not enabled",
        "off": (
            "This function does not offer this operation (actions.operations). Nothing was changed."
        ),
        "unavailable_title": "Cannot act right now",
        "unavailable": (
            "The state store or SchedulerX did not answer. Nothing was done; open this link "
            "again in a moment."
        ),
        "later": (
            "The group's robot did not take the follow-up now; the next check, within about "
            "a minute, posts it to the group."
        ),
        "at": "at {at}",
        "job": "Job",
        "run": "Run",
        "group": "Group",
        "namespace": "Namespace",
    },
}


# Each refusal in plain words: what became of which run, and that nothing was done. A
# refusal is final for its link (a link acts once), so none says "try again" of the link,
# but throttling: SchedulerX did not act, and the link may be pressed again (MAX_TRIES).
REFUSALS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "running": (
            "任务 {job} 的运行 {run} 已经在重新运行（告警之后被重跑过），所以没有{verb}。"
            "它的结果会在后续告警中通知。"
        ),
        "succeeded": "任务 {job} 的运行 {run} 在告警之后已经成功，所以没有{verb}。",
        "ended": "任务 {job} 的运行 {run} 在告警之后已经结束（现在：{status}），所以没有{verb}。",
        "attempt": (
            "任务 {job} 的运行 {run} 在告警之后又运行过一次，这个链接是为之前那一次生成的，"
            "所以没有{verb}。"
        ),
        "changed": (
            "任务 {job} 的运行 {run} 已经不是告警时的状态（现在：{status}），所以没有{verb}。"
        ),
        "gone": "SchedulerX 找不到任务 {job} 的运行 {run} 了，所以没有{verb}。",
        "denied": (
            "函数的角色没有{verb}运行的权限（RAM 操作 {ram}；部署时没有附加操作策略）。"
            "任务 {job} 的运行 {run} 没有任何变化。"
        ),
        "credentials": (
            "SchedulerX 拒绝了函数的凭证（{why}）。任务 {job} 的运行 {run} 没有任何变化。"
        ),
        "throttled": (
            "SchedulerX 正在限流，没有{verb}任务 {job} 的运行 {run}，它没有任何变化。"
            "这个链接还可以再用：如果仍然需要，请一分钟后再点一次按钮。"
        ),
        "throttled_last": (
            "SchedulerX 正在限流，没有{verb}任务 {job} 的运行 {run}，它没有任何变化。"
            "这个链接已经试过 {tries} 次，不会再执行：如果仍然需要，请在 SchedulerX 控制台操作。"
        ),
        "unclear": (
            "SchedulerX 没有给出明确答复（{why}）：任务 {job} 的运行 {run} 可能已经{done}，"
            "也可能没有。请先在 SchedulerX 控制台查看这次运行。"
        ),
        "refused": (
            "SchedulerX 拒绝{verb}任务 {job} 的运行 {run}，它的答复是：{said}。运行没有任何变化。"
        ),
    },
    "en": {
        "running": (
            "run {run} of {job} is already running again (it was retried since the alert), "
            "so it was not {done}; how it ends follows as an alert."
        ),
        "succeeded": "run {run} of {job} has succeeded since the alert, so it was not {done}.",
        "ended": (
            "run {run} of {job} has ended since the alert (now: {status}), so it was not {done}."
        ),
        "attempt": (
            "run {run} of {job} ran again since the alert and this link was made for the "
            "earlier attempt, so it was not {done}."
        ),
        "changed": (
            "run {run} of {job} is no longer as the alert showed it (now: {status}), so it "
            "was not {done}."
        ),
        "gone": "SchedulerX no longer knows run {run} of {job}, so it was not {done}.",
        "denied": (
            "the function's role may not {verb} runs (RAM action {ram}; the operations policy "
            "is not attached). Run {run} of {job} is unchanged."
        ),
        "credentials": (
            "SchedulerX refused the function's credentials ({why}). Run {run} of {job} is "
            "unchanged."
        ),
        "throttled": (
            "SchedulerX is throttling calls and did not {verb} run {run} of {job}; it is "
            "unchanged. The link can be used again: if the run still needs it, press the "
            "button again in a minute."
        ),
        "throttled_last": (
            "SchedulerX is throttling calls and did not {verb} run {run} of {job}; it is "
            "unchanged. The link was tried {tries} times and acts no more: if the run still "
            "needs it, {verb} it in the SchedulerX console."
        ),
        "unclear": (
            "SchedulerX gave no clear answer ({why}): run {run} of {job} may or may not have "
            "been {done}. Look at the run in the SchedulerX console."
        ),
        "refused": (
            "SchedulerX refused to {verb} run {run} of {job}, saying: {said}. The run is unchanged."
        ),
    },
}
# Each operation's verb and participle, as the refusals use them.
VERBS: dict[str, dict[str, tuple[str, str]]] = {
    "zh-CN": {
        "retry": ("重跑", "被重跑"),
        "mark_success": ("标记成功", "被标记为成功"),
        "stop": ("停止", "被停止"),
    },
    "en": {
        "retry": ("retry", "retried"),
        "mark_success": ("mark as succeeded", "marked as succeeded"),
        "stop": ("stop", "stopped"),
    },
}
_STATUS_WORDS = {
    "zh-CN": {1: "等待", 2: "就绪", 3: "运行中", 4: "成功", 5: "失败", 6: "已终止", 9: "被拒绝"},
    "en": {1: "waiting", 2: "ready", 3: "running", 4: "succeeded", 5: "failed", 6: "killed",
           9: "rejected"},
}  # fmt: skip


def refusal(
    kind: str,
    wanted: OperationRequest,
    language: str,
    status: int | None = None,
    why: str = "",
    said: str = "",
) -> str:
    """One refusal (a key of REFUSALS) as a sentence naming the job, the run and what
    became of it. `why` and `said` are SchedulerX's text: data, made one plain line by
    follow_up_line wherever the sentence is shown."""
    words = REFUSALS.get(language, REFUSALS["en"])
    verb, done = VERBS.get(language, VERBS["en"])[wanted.operation]
    named = _STATUS_WORDS.get(language, _STATUS_WORDS["en"])
    known = InstanceStatus.parse(status) if status is not None else None
    shown = named.get(status or 0) or (known.name.lower() if known is not None else str(status))
    action = OPERATION_CALLS[wanted.operation][0]
    return words[kind].format(
        job=wanted.job_text, run=wanted.instance_id, verb=verb, done=done, status=shown,
        ram=WRITE_RAM_ACTIONS[action], why=why[:200], said=said[:300] or "?", tries=MAX_TRIES,
    )  # fmt: skip


def error_refusal(
    error: SchedulerXError, wanted: OperationRequest, language: str, last: bool = False
) -> str:
    """A call that failed other than by a business refusal (Success=false), in plain words;
    `last`: the link's last try (MAX_TRIES), which a throttled call sends to the console."""
    if error.auth:
        denied = error.status == 403 or error.code.startswith("Forbidden")
        kind = "denied" if denied else "credentials"
        return refusal(kind, wanted, language, why=error.code or str(error.status))
    if error.throttled:
        return refusal("throttled_last" if last else "throttled", wanted, language)
    return refusal("unclear", wanted, language, why=error.message)


def changed(wanted: OperationRequest, run: JobInstance | None, language: str) -> str | None:
    """Why the run is no longer the one the link was made for, in plain words; None when
    it still is."""
    if run is None:
        return refusal("gone", wanted, language)
    status = run.status_code
    if status == WANTED_STATUS[wanted.operation]:
        if (run.attempt or "") != wanted.attempt:
            return refusal("attempt", wanted, language)
        return None
    if status == 3:
        return refusal("running", wanted, language)
    if status == 4:
        return refusal("succeeded", wanted, language)
    if wanted.operation == "stop" and status in (5, 6, 9):
        return refusal("ended", wanted, language, status)
    return refusal("changed", wanted, language, status)


class OperationDesk:
    """Answers the requests of operation links against one state store."""

    def __init__(
        self,
        signer: LinkSigner,
        store: StateStore,
        state_key: str,
        operations: tuple[str, ...],
        operator: Operator,
        announce: Announce,
        language: str = "zh-CN",
        zone: str = "Asia/Shanghai",
        clock: Clock = time.time,
        stale_after: float = 2 * DEPLOYED_TIMEOUT,
        request_id: str = "",
    ) -> None:
        self.signer = signer
        self.store = store
        self.state_key = state_key
        self.operations = operations
        self.operator = operator
        self.announce = announce
        self.language = language
        self.zone = zone
        self.clock = clock
        self.stale_after = stale_after
        self.request_id = request_id
        self.words = WORDS.get(language, WORDS["en"])

    def answer(self, request: HttpRequest, token: str) -> tuple[HttpResponse, str]:
        """The response, and one word for the log line."""
        now = self.clock()
        w = self.words
        try:
            wanted = check_operation(self.signer, token, now)
        except LinkRefused as refused:
            return page(403, self.language, w["refused_title"], [str(refused)]), (
                f"refused: {refused.reason}"
            )
        if wanted.operation not in self.operations:
            # Signed by this function, but the operation is off: it acts never.
            return page(403, self.language, w["off_title"], [w["off"]]), "refused: disabled"
        try:
            if request.method == "POST":
                return self._post(wanted, request, now)
            return self._confirm(wanted, token)
        except StoreError as exc:
            log.error("operation link: the state store failed: %s", exc)
            return page(503, self.language, w["unavailable_title"], [w["unavailable"]]), (
                "unavailable"
            )

    # -- pages ---------------------------------------------------------------------------------

    def _confirm(self, wanted: OperationRequest, token: str) -> tuple[HttpResponse, str]:
        _, record, throttled = self._tries(wanted.nonce)
        if record is not None:
            return self._already(wanted, record)
        w, op = self.words, wanted.operation
        title = w[f"confirm_{op}"].format(job=wanted.job_text, run=wanted.instance_id)
        paragraphs = [w[f"what_{op}"]]
        if throttled is not None:
            paragraphs.append(follow_up_line(throttled, self.language, self.zone)[1])
        response = page(
            200,
            self.language,
            title,
            paragraphs,
            facts=self._facts(wanted),
            token=token,
            notes=[w["nothing_yet"]],
            button=w[f"button_{op}"],
        )
        return response, "confirm"

    def _already(
        self, wanted: OperationRequest, record: Mapping[str, Any]
    ) -> tuple[HttpResponse, str]:
        w = self.words
        state = record.get("state")
        if state == "claimed":
            at = record.get("at")
            fresh = isinstance(at, int | float) and self.clock() - at < self.stale_after
            if fresh:
                return page(409, self.language, w["pending_title"], [w["pending"]]), "pending"
            text = w["unknown"].format(at=self._local(at), run=wanted.instance_id)
            return page(409, self.language, w["already_title"], [text]), "unknown"
        _, sentence = follow_up_line(record, self.language, self.zone)
        response = page(
            200, self.language, w["already_title"], [sentence], facts=self._facts(wanted)
        )
        return response, "already"

    def _facts(self, wanted: OperationRequest) -> list[tuple[str, str]]:
        w = self.words
        return [
            (w["job"], wanted.job_text),
            (w["run"], str(wanted.instance_id)),
            (w["group"], wanted.job.group),
            (w["namespace"], wanted.job.namespace),
        ]

    def _local(self, epoch: Any) -> str:
        if not isinstance(epoch, int | float):
            return "?"
        moment = datetime.fromtimestamp(epoch, ZoneInfo(self.zone))
        return f"{moment:%Y-%m-%d %H:%M} ({self.zone})"

    # -- acting --------------------------------------------------------------------------------

    def _post(
        self, wanted: OperationRequest, request: HttpRequest, now: float
    ) -> tuple[HttpResponse, str]:
        record: dict[str, Any] = {
            "v": 1,
            "state": "claimed",
            "at": now,
            "operation": wanted.operation,
            "namespace": wanted.job.namespace,
            "group": wanted.job.group,
            "job_id": wanted.job.job_id,
            "job": wanted.job_text,
            "instance": wanted.instance_id,
            "attempt": wanted.attempt,
            "receiver": wanted.receiver,
            "source_ip": request.source_ip,
            "user_agent": request.headers.get("user-agent", "")[:300],
            "request": self.request_id,
        }
        number, known, _ = self._tries(wanted.nonce)
        if known is not None:
            return self._already(wanted, known)
        nonce = try_nonce(wanted.nonce, number)
        if number > 1:
            record["try"] = number
        if not self.store.create(self._key(nonce), _encode(record)):
            return self._already(wanted, self._read(nonce) or {})
        outcome, reason, request_id, again = self._act(wanted, last=number >= MAX_TRIES)
        record.update(state="answered", outcome=outcome, reason=reason, schedulerx=request_id)
        if again:
            record["again"] = True
        record["announced"] = self._announce(wanted.receiver, record)
        notes = []
        try:
            self.store.write(self._key(nonce), _encode(record))
        except StoreError as exc:
            # The claim stays: a second click says the outcome is unknown, never acts again.
            log.warning("operation link: could not record its outcome: %s", exc)
        else:
            if not record["announced"] and self._queue(nonce):
                notes.append(self.words["later"])
        log.info("operation", extra=logs.fields({"event": "operation", **record}))
        title, sentence = follow_up_line(record, self.language, self.zone)
        status = 200 if outcome == "done" else 409
        response = page(
            status, self.language, title, [sentence], facts=self._facts(wanted), notes=notes
        )
        return response, outcome

    def _act(self, wanted: OperationRequest, last: bool) -> tuple[str, str, str, bool]:
        """(outcome, reason, SchedulerX's RequestId, again): outcome "done" or "refused",
        the reason a sentence naming the job, the run and what became of it; `again` when
        SchedulerX surely did not act for a passing reason (throttled) and this is not the
        link's `last` try: a later click may try again."""
        language = self.language
        try:
            run = self.operator.get_job_instance(wanted.job, wanted.instance_id)
            moved = changed(wanted, run, language)
            if moved is not None:
                return "refused", moved, "", False
            request_id = self.operator.operate(wanted.operation, wanted.job, wanted.instance_id)
        except SchedulerXError as exc:
            log.warning("operation link: SchedulerX refused: %s", exc)
            if exc.status is None or exc.status >= 400 or exc.retryable:
                # Throttling is an answer (HTTP 400 Throttling.*): the call was not taken.
                # A timeout or a 5xx is no answer: it may have acted, so it stays final.
                again = exc.throttled and not exc.auth and not last
                sentence = error_refusal(exc, wanted, language, last)
                return "refused", sentence, exc.request_id, again
            # A business refusal (Success=false): the run may have moved on since it was
            # read (retried by someone else); SchedulerX's own words otherwise.
            return "refused", self._business(wanted, exc), exc.request_id, False
        return "done", "", request_id, False

    def _business(self, wanted: OperationRequest, error: SchedulerXError) -> str:
        try:
            run = self.operator.get_job_instance(wanted.job, wanted.instance_id)
        except SchedulerXError:
            run = None
        moved = changed(wanted, run, self.language) if run is not None else None
        return moved or refusal("refused", wanted, self.language, said=error.detail or str(error))

    def _announce(self, receiver: str, record: Mapping[str, Any]) -> bool:
        try:
            self.announce(receiver, follow_up(record, self.language, self.zone))
        except Exception as exc:
            log.warning("operation link: the follow-up was not posted: %s", exc)
            return False
        return True

    def _queue(self, nonce: str) -> bool:
        """Leave the follow-up DingTalk refused to the next tick; whether it is queued."""
        try:
            number = FollowUpQueue(self.store, self.state_key).enqueue(nonce)
        except StoreError as exc:
            log.warning("operation link: the follow-up could not be queued either: %s", exc)
            return False
        log.info("operation link: follow-up %d queued for the next tick", number)
        return True

    # -- the record ----------------------------------------------------------------------------

    def _key(self, nonce: str) -> str:
        return operation_key(self.state_key, nonce)

    def _tries(self, nonce: str) -> tuple[int, dict[str, Any] | None, dict[str, Any] | None]:
        """(number, record, throttled): the link's first try whose record is not a
        throttled one (`again`), and that record (None: no click made that try yet, a
        click may); `throttled`, the try before it when SchedulerX throttled that one."""
        throttled: dict[str, Any] | None = None
        for number in range(1, MAX_TRIES + 1):
            record = self._read(try_nonce(nonce, number))
            if record is None or not _again(record):
                return number, record, throttled
            throttled = record
        # Only a record written by hand says `again` on the last try: it is final.
        return MAX_TRIES, throttled, None

    def _read(self, nonce: str) -> dict[str, Any] | None:
        data = self.store.read(self._key(nonce))
        if data is None:
            return None
        try:
            record = json.loads(data[:MAX_RECORD_BYTES])
        except (ValueError, RecursionError):
            return {}
        return record if isinstance(record, dict) else {}


def try_nonce(nonce: str, number: int) -> str:
    """The name of a link's `number`th try's record: the nonce itself for the first, as
    links made before retries were possible name it."""
    return nonce if number == 1 else f"{nonce}.{number}"


def _again(record: Mapping[str, Any]) -> bool:
    return record.get("state") == "answered" and record.get("again") is True


def _encode(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
