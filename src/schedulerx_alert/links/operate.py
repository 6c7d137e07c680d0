"""Answering an operation link: retry, mark as succeeded or stop one run, once.

GET (and HEAD) change nothing: the page says what will happen to which run and offers a
button that POSTs the token back (the same-site checks of serve.py apply). The POST:

1. refuses unless `actions.operations` lists the operation: a link signed with a valid
   key acts never while operations are off;
2. creates the link's record, `<state>.operation.<nonce>`, beside the state and the
   silence claims, with a create-only write: of two clicks racing, one creates it and
   acts, the other reads it and says what was done. A record left "claimed" by a click
   that died is never taken over: whether SchedulerX acted is then unknown, and acting
   twice is worse than asking the on-call to look at the console;
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
from schedulerx_alert.sources.schedulerx import SchedulerXError
from schedulerx_alert.storage.followups import FollowUpQueue, operation_key
from schedulerx_alert.storage.store import StateStore, StoreError
from schedulerx_alert.support import process_log as logs

log = logging.getLogger("schedulerx_alert")
MAX_RECORD_BYTES = 8192
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
        "stale": "运行已经不是告警时的状态（现在：{status}），可能已被重跑或停止。没有做任何更改。",
        "gone": "SchedulerX 找不到这次运行了。没有做任何更改。",
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
        "stale": (
            "The run is no longer as the alert showed it (now: {status}); it may have been "
            "retried or stopped since. Nothing was changed."
        ),
        "gone": "SchedulerX no longer knows this run. Nothing was changed.",
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


def refusal_words(error: SchedulerXError, language: str) -> str:
    """SchedulerX's refusal in plain words; its own message is kept, as data."""
    zh = language == "zh-CN"
    if error.auth:
        return (
            "函数的角色没有这个权限（部署时没有附加操作策略）。"
            if zh
            else "the function's role may not do this (the operations policy is not attached)."
        )
    if error.throttled:
        return (
            "SchedulerX 正在限流，请一分钟后再试。"
            if zh
            else "SchedulerX is throttling calls; try again in a minute."
        )
    if error.status is None or error.retryable:
        return (
            "SchedulerX 没有给出明确答复，请在控制台确认运行的状态。"
            if zh
            else "SchedulerX gave no clear answer; check the run in the console."
        )
    return error.message


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
        stale_after: float = 120.0,
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
        record = self._read(wanted.nonce)
        if record is not None:
            return self._already(wanted, record)
        w, op = self.words, wanted.operation
        title = w[f"confirm_{op}"].format(job=wanted.job_text, run=wanted.instance_id)
        response = page(
            200,
            self.language,
            title,
            [w[f"what_{op}"]],
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
        if not self.store.create(self._key(wanted.nonce), _encode(record)):
            return self._already(wanted, self._read(wanted.nonce) or {})
        outcome, reason, request_id = self._act(wanted)
        record.update(state="answered", outcome=outcome, reason=reason, schedulerx=request_id)
        record["announced"] = self._announce(wanted.receiver, record)
        notes = []
        try:
            self.store.write(self._key(wanted.nonce), _encode(record))
        except StoreError as exc:
            # The claim stays: a second click says the outcome is unknown, never acts again.
            log.warning("operation link: could not record its outcome: %s", exc)
        else:
            if not record["announced"] and self._queue(wanted.nonce):
                notes.append(self.words["later"])
        log.info("operation", extra=logs.fields({"event": "operation", **record}))
        title, sentence = follow_up_line(record, self.language, self.zone)
        status = 200 if outcome == "done" else 409
        response = page(
            status, self.language, title, [sentence], facts=self._facts(wanted), notes=notes
        )
        return response, outcome

    def _act(self, wanted: OperationRequest) -> tuple[str, str, str]:
        """(outcome, reason, SchedulerX's RequestId): outcome "done" or "refused"."""
        w = self.words
        try:
            run = self.operator.get_job_instance(wanted.job, wanted.instance_id)
            if run is None:
                return "refused", w["gone"], ""
            if run.status_code != WANTED_STATUS[wanted.operation] or (
                (run.attempt or "") != wanted.attempt
            ):
                status = InstanceStatus.parse(run.status_code)
                shown = status.name.lower() if status is not None else str(run.status_code)
                return "refused", w["stale"].format(status=shown), ""
            request_id = self.operator.operate(wanted.operation, wanted.job, wanted.instance_id)
        except SchedulerXError as exc:
            log.warning("operation link: SchedulerX refused: %s", exc)
            return "refused", refusal_words(exc, self.language), exc.request_id
        return "done", "", request_id

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

    def _read(self, nonce: str) -> dict[str, Any] | None:
        data = self.store.read(self._key(nonce))
        if data is None:
            return None
        try:
            record = json.loads(data[:MAX_RECORD_BYTES])
        except (ValueError, RecursionError):
            return {}
        return record if isinstance(record, dict) else {}


def _encode(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
