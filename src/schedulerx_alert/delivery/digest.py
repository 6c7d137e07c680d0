"""The digest of what silences and quiet hours held back: one message per receiver.

One line per job and kind (how many, when), at most `LISTED` lines, the rest counted.
Job names, silence comments and who made them are data: every one goes through
neutralise.line, so none can add a link, an image or an @-mention.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from schedulerx_alert.core.model import InstanceStatus
from schedulerx_alert.core.silence import Silence
from schedulerx_alert.core.silence_hold import QUIET, Held, holder_of
from schedulerx_alert.delivery.render import KIND_WORDS, STATUS_WORDS, Message

LISTED = 20
_ID = re.compile(r"silences\[[0-9]{1,4}\]|[0-9]{1,19}")
NAME_CAP = 80
COMMENT_CAP = 80

_WORDS = {
    "zh-CN": {
        "title": "SchedulerX：静默期间暂缓的 {n} 条告警",
        "intro": "以下告警在静默或免打扰时段内没有发送，现在汇总如下：",
        "more": "- 另有 {n} 条告警（{jobs} 个任务）未列出",
        "other_jobs": "其他任务",
        "quiet": "免打扰时段",
        "silence": "静默 {id}",
        "times": "{n} 次",
        "any": "告警",
        "workflow": "工作流 {id}",
        "line": "- **{job}** {kind} {times}，{span}（{why}）",
    },
    "en": {
        "title": "SchedulerX: {n} alert(s) held back while silenced",
        "intro": "These alerts were not sent during a silence or quiet hours:",
        "more": "- {n} more alert(s) of {jobs} job(s) not listed",
        "other_jobs": "other jobs",
        "quiet": "quiet hours",
        "silence": "silence {id}",
        "times": "×{n}",
        "any": "alerts",
        "workflow": "workflow {id}",
        "line": "- **{job}** {kind} {times}, {span} ({why})",
    },
}


def digest_message(
    entries: Sequence[Held],
    silences: Sequence[Silence],
    language: str = "zh-CN",
    zone: str = "Asia/Shanghai",
) -> Message:
    from schedulerx_alert.delivery.neutralise import (
        line,  # its regexes load with a message, not at every start
    )

    words = _WORDS.get(language, _WORDS["en"])
    known = {holder_of(s): s for s in silences}
    tz = ZoneInfo(zone)
    total = sum(e.count for e in entries)
    ordered = sorted(entries, key=lambda e: (e.first, e.job is None, e.job or "", e.kind))
    lines: list[str] = []
    for entry in ordered[:LISTED]:
        job = words["other_jobs"]
        if entry.job is not None:
            job = str(entry.job.job_id)
            if entry.job.job_id < 0:  # a workflow, kept under its id negated (core/workflows.py)
                job = words["workflow"].format(id=-entry.job.job_id)
            if entry.name:
                job = f"{line(entry.name, NAME_CAP)} ({job})"
        span = _clock(entry.first, tz)
        if entry.last - entry.first >= 60:
            last = _clock(entry.last, tz)
            span += f" – {last[6:] if last[:5] == span[:5] else last}"
        why = _holder(entry.holder, known, words)
        kind = words["any"] if entry.kind == "*" else _kind(entry.kind, language)
        times = words["times"].format(n=entry.count)
        lines.append(words["line"].format(job=job, kind=kind, times=times, span=span, why=why))
    rest = ordered[LISTED:]
    if rest:
        jobs = len({e.job for e in rest})
        lines.append(words["more"].format(n=sum(e.count for e in rest), jobs=jobs))
    title = words["title"].format(n=total)
    text = f"### {title}\n\n{words['intro']}\n\n" + "\n".join(lines)
    return Message(title=title, text=text)


def _holder(holder: str, known: Mapping[str, Silence], words: Mapping[str, str]) -> str:
    from schedulerx_alert.delivery.neutralise import line as neutral

    if holder == QUIET:
        return words["quiet"]
    silence = known.get(holder)
    ident = holder.partition(":")[2] or holder
    # The ids this code gives (`silences[0]`, `3`) are shown as they are; anything else
    # came from a stored record and is neutralised like job text.
    text = words["silence"].format(id=ident if _ID.fullmatch(ident) else neutral(ident, 40))
    if silence is not None and silence.comment:
        text += f": {neutral(silence.comment, COMMENT_CAP)}"
    return text


def _kind(kind: str, language: str) -> str:
    words = KIND_WORDS.get(language, KIND_WORDS["en"])
    if kind in words:
        return words[kind]
    status = next((s for s in InstanceStatus if s.label == kind), None)
    if status is not None:
        return STATUS_WORDS.get(language, STATUS_WORDS["en"])[status]
    return kind


def _clock(when: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(when, tz).strftime("%m-%d %H:%M")
