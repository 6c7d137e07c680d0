"""Signed links that act on a run (`actions.operations`), and the follow-up they announce.

A failed run's alert offers "Retry this run" and "Mark as succeeded", a stuck run's
"Stop". The link names the run and the attempt it was made for (the instance id and
SchedulerX's EndTime text, `JobInstance.attempt`), the status it had, the operation, the
receiver whose group gets the follow-up, an expiry and a nonce. It is signed like a
silence link but with a salt of its own, so a silence token never passes for an
operation token or the other way round. Opening it shows a confirmation page; only the
page's POST acts (links/operate.py), once, and only while the run is still as the link
saw it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from schedulerx_alert.config.actions import ActionSettings
from schedulerx_alert.core.model import JobKey
from schedulerx_alert.core.state import Alert
from schedulerx_alert.delivery.links import QUERY_NAME, LinkRefused, LinkSigner
from schedulerx_alert.delivery.neutralise import line
from schedulerx_alert.delivery.render import Action, Message

SALT = "schedulerx-alert.operation-link"
VERSION = 1
_NONCE = re.compile(r"[0-9a-f]{16}")
_TEXT_CAP = 200
# The alert kinds each operation is offered under, and the run status it acts on.
OFFERED = {"retry": "failed", "mark_success": "failed", "stop": "stuck"}
WANTED_STATUS = {"retry": 5, "mark_success": 5, "stop": 3}

Clock = Callable[[], float]


@dataclass(frozen=True)
class OperationRequest:
    """One operation on one attempt of one run, as a link asks for it."""

    operation: str
    job: JobKey
    instance_id: int
    attempt: str  # the run's EndTime text when the link was made ("" for a running run)
    receiver: str
    nonce: str
    expires: float
    job_name: str | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "v": VERSION,
            "op": self.operation,
            "ns": self.job.namespace,
            "g": self.job.group,
            "j": self.job.job_id,
            "i": self.instance_id,
            "a": self.attempt,
            "r": self.receiver,
            "e": int(self.expires),
            "x": self.nonce,
        }
        if self.job_name:
            wire["n"] = self.job_name[:100]
        return wire

    @classmethod
    def from_wire(cls, wire: Any) -> OperationRequest:
        """Raises ValueError for anything this version did not write."""
        if not isinstance(wire, dict) or wire.get("v") != VERSION:
            raise ValueError("not a version 1 operation link")
        op, namespace, group = wire.get("op"), _text(wire.get("ns")), _text(wire.get("g"))
        job_id, instance_id = _integer(wire.get("j")), _integer(wire.get("i"))
        attempt, receiver, name = wire.get("a"), _text(wire.get("r")), wire.get("n")
        expires, nonce = _integer(wire.get("e")), wire.get("x")
        if (
            op not in OFFERED
            or not namespace
            or not group
            or job_id is None
            or instance_id is None
            or not isinstance(attempt, str)
            or len(attempt) > 40
            or not receiver
            or not (name is None or _text(name))
            or expires is None
            or not isinstance(nonce, str)
            or not _NONCE.fullmatch(nonce)
        ):
            raise ValueError("an operation link with missing or malformed fields")
        return cls(
            op, JobKey(namespace, group, job_id), instance_id, attempt, receiver, nonce,
            float(expires), name,
        )  # fmt: skip

    @property
    def job_text(self) -> str:
        job_id = self.job.job_id
        return f"{self.job_name} ({job_id})" if self.job_name else str(job_id)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= _TEXT_CAP else None


def _integer(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63
    return value if ok else None


def operation_signer(settings: ActionSettings, clock: Clock) -> LinkSigner:
    return LinkSigner(settings.keys, settings.link_ttl, clock, salt=SALT)


def check_operation(signer: LinkSigner, token: str, now: float) -> OperationRequest:
    """The operation a token carries while it holds at `now`; raises LinkRefused."""
    wire, _ = signer.verify_wire(token)
    try:
        wanted = OperationRequest.from_wire(wire)
    except ValueError as exc:
        raise LinkRefused("invalid", str(exc)) from None
    if wanted.expires <= now:
        raise LinkRefused("expired", "the link is past the expiry signed into it")
    return wanted


_LABELS = {
    "zh-CN": {"retry": "重跑这次运行", "mark_success": "标记为成功", "stop": "停止运行"},
    "en": {"retry": "Retry this run", "mark_success": "Mark as succeeded", "stop": "Stop"},
}


def operation_buttons(
    settings: ActionSettings, alert: Alert, language: str, clock: Clock
) -> tuple[Action, ...]:
    """The operation buttons an alert of one run gets: none for other kinds."""
    run = alert.instance
    if run is None or settings.base_url is None or len(alert.instances) != 1:
        return ()
    labels = _LABELS.get(language, _LABELS["en"])
    signer = operation_signer(settings, clock)
    now = clock()
    buttons = []
    for op in settings.operations:
        if OFFERED[op] != alert.kind or run.status_code != WANTED_STATUS[op]:
            continue
        wanted = OperationRequest(
            op, run.job, run.instance_id, run.attempt or "", alert.receiver,
            secrets.token_hex(8), now + settings.link_ttl, alert.job_name,
        )  # fmt: skip
        token = signer.sign_wire(wanted.to_wire())
        url = str(settings.base_url.with_query(f"{QUERY_NAME}={token}"))
        buttons.append(Action(labels[op], url))
    return tuple(buttons)


# -- the follow-up -------------------------------------------------------------------------

_HEADS = {
    "zh-CN": {
        "retry": ("已重跑", "没有重跑"),
        "mark_success": ("已标记为成功", "没有标记为成功"),
        "stop": ("已停止", "没有停止"),
    },
    "en": {
        "retry": ("Retried", "Not retried"),
        "mark_success": ("Marked as succeeded", "Not marked as succeeded"),
        "stop": ("Stopped", "Not stopped"),
    },
}
_FOLLOW = {
    "zh-CN": {
        "done_retry": "运行 {run} 正在重新运行，结果会在后续告警中通知。",
        "done_mark_success": "运行 {run} 已被标记为成功。",
        "done_stop": "运行 {run} 已被停止。",
        "refused": "{reason}",
        "sentence": "{head}（{at}）：{what}",
        "job": "任务",
        "run": "运行",
        "source": "来自告警消息中的按钮；点击的人无法从链接得知，记录里有时间、来源 IP 和浏览器。",
    },
    "en": {
        "done_retry": "run {run} is running again; its outcome follows as an alert.",
        "done_mark_success": "run {run} is marked as succeeded.",
        "done_stop": "run {run} is stopped.",
        "refused": "{reason}",
        "sentence": "{head} at {at}, {what}",
        "job": "Job",
        "run": "Run",
        "source": (
            "From an alert's button; who pressed it cannot be known from a link, the record "
            "keeps the time, source IP and browser."
        ),
    },
}


def follow_up_line(record: Mapping[str, Any], language: str, zone: str) -> tuple[str, str]:
    """(heading, sentence) of what an operation did: "Retried 10:42", "Retried at 10:42,
    run … is running again; …", or the refusal in plain words. Every value is made one
    plain line here (a job name or SchedulerX's message is data, never markup)."""
    words = _FOLLOW.get(language, _FOLLOW["en"])
    op = str(record.get("operation", ""))
    done, not_done = _HEADS.get(language, _HEADS["en"]).get(op, ("?", "?"))
    at = record.get("at")
    moment = (
        datetime.fromtimestamp(at, ZoneInfo(zone)).strftime("%H:%M")
        if isinstance(at, int | float)
        else "?"
    )
    run = line(record.get("instance", "?"), 40)
    if record.get("outcome") == "done":
        head = done
        what = words[f"done_{op}"].format(run=run) if f"done_{op}" in words else ""
    else:
        head = not_done
        what = words["refused"].format(reason=line(record.get("reason", "?"), 300))
    return f"{head} {moment}", words["sentence"].format(head=head, at=moment, what=what)


def follow_up(record: Mapping[str, Any], language: str, zone: str) -> Message:
    """The short message the group gets after an operation from its alert."""
    words = _FOLLOW.get(language, _FOLLOW["en"])
    title, sentence = follow_up_line(record, language, zone)
    job = line(record.get("job", "?"))
    run = line(record.get("instance", "?"), 40)
    text = (
        f"### {title}\n{sentence}\n\n- **{words['job']}**: {job}\n- **{words['run']}**: {run}"
        f"\n\n{words['source']}"
    )
    return Message(title, text)
