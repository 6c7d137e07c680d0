"""Is the monitor itself working? A pure judgement over one tick's outcome."""

from __future__ import annotations

from dataclasses import replace

from .deliver import DeliveryReport
from .fetch import FetchResult
from .render import Message
from .state import HealthRecord

IMPAIRED = "impaired"
RECOVERED = "recovered"


def assess(
    previous: HealthRecord,
    jobs: int,
    fetched: FetchResult,
    report: DeliveryReport,
    impaired_after: int,
    credentials_problem: str | None = None,
) -> tuple[HealthRecord, str | None]:
    """The new health record and what to announce (IMPAIRED, RECOVERED or None)."""
    reason: str | None = None
    if credentials_problem:
        reason = credentials_problem
    elif jobs and not fetched.polls and fetched.errors:
        first = next(iter(fetched.errors.values()))
        if fetched.auth_errors == len(fetched.errors):
            reason = f"SchedulerX rejects the function's credentials: {first}"
        else:
            reason = f"every job's listing failed ({len(fetched.errors)}), e.g. {first}"
    elif report.problems:
        reason = report.problems[0]
    if reason is None:
        announce = RECOVERED if previous.impaired_announced else None
        return HealthRecord(0, False, None), announce
    count = previous.broken_ticks + 1
    if count >= impaired_after and not previous.impaired_announced:
        return HealthRecord(count, True, reason), IMPAIRED
    return replace(previous, broken_ticks=count, reason=reason), None


def health_message(announce: str, health: HealthRecord, language: str) -> Message:
    if language == "en":
        if announce == IMPAIRED:
            title = "schedulerx-alert: alerting is impaired"
            text = (
                f"### {title}\n\nFor {health.broken_ticks} ticks in a row failed runs may "
                f"not be announced.\n\n> {health.reason}"
            )
        else:
            title = "schedulerx-alert: alerting works again"
            text = f"### {title}\n\nPending alerts are being delivered."
    elif announce == IMPAIRED:
        title = "schedulerx-alert：告警功能异常"
        text = (
            f"### {title}\n\n已连续 {health.broken_ticks} 次无法正常检查，"
            f"任务失败可能不会被通知。\n\n> {health.reason}"
        )
    else:
        title = "schedulerx-alert：告警功能已恢复"
        text = f"### {title}\n\n积压的告警正在发送。"
    return Message(title=title, text=text)
