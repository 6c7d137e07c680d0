"""Is the monitor itself working? A pure judgement over one tick's outcome."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from schedulerx_alert.core.state import HealthRecord
from schedulerx_alert.delivery.render import Message

IMPAIRED = "impaired"
RECOVERED = "recovered"
# A reason quotes answers from SchedulerX and DingTalk, and through them job text.
REASON_CAP = 300


def assess(
    previous: HealthRecord, reasons: Sequence[str], impaired_after: int
) -> tuple[HealthRecord, str | None]:
    """The new health record and what to announce (IMPAIRED, RECOVERED or None).

    `reasons` are this tick's problems, most fundamental first: anything that
    left the monitor deaf to some job or mute towards some group (a job not
    polled, a listing that failed, an alert that could not go out). A tick
    with none is healthy."""
    if not reasons:
        announce = RECOVERED if previous.impaired_announced else None
        return HealthRecord(0, False, None), announce
    reason = reasons[0]
    count = previous.broken_ticks + 1
    if count >= impaired_after and not previous.impaired_announced:
        return HealthRecord(count, True, reason), IMPAIRED
    return replace(previous, broken_ticks=count, reason=reason), None


def health_message(announce: str, health: HealthRecord, language: str) -> Message:
    from schedulerx_alert.delivery.neutralise import (
        line,  # its regexes load with a notice, not at every start
    )

    reason = line(health.reason, REASON_CAP)
    if language == "en":
        if announce == IMPAIRED:
            title = "schedulerx-alert: alerting is impaired"
            text = (
                f"### {title}\n\nFor {health.broken_ticks} ticks in a row failed runs may "
                f"not be announced.\n\n> {reason}"
            )
        else:
            title = "schedulerx-alert: alerting works again"
            text = f"### {title}\n\nPending alerts are being delivered."
    elif announce == IMPAIRED:
        title = "schedulerx-alert：告警功能异常"
        text = (
            f"### {title}\n\n已连续 {health.broken_ticks} 次无法正常检查，"
            f"任务失败可能不会被通知。\n\n> {reason}"
        )
    else:
        title = "schedulerx-alert：告警功能已恢复"
        text = f"### {title}\n\n积压的告警正在发送。"
    return Message(title=title, text=text)
