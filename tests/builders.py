"""Small constructors for domain records used across tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from schedulerx_alert.core.diff import Target
from schedulerx_alert.core.model import InstanceStatus, JobInstance, JobKey
from schedulerx_alert.core.rules import RuleSettings
from schedulerx_alert.core.rules.settings import DEFAULT_SETTINGS
from schedulerx_alert.core.state import Alert, run_alert

SHANGHAI = ZoneInfo("Asia/Shanghai")
NS = "adcfc35d-e2fe-4fe9-bbaa-20e90ffc1234"
GROUP = "testSchedulerx.defaultGroup"
T0 = datetime(2026, 11, 25, 10, 0, 0, tzinfo=SHANGHAI).timestamp()


def job(job_id: int = 92583) -> JobKey:
    return JobKey(NS, GROUP, job_id)


def instance(
    instance_id: int,
    status: int = InstanceStatus.FAILED,
    job_id: int = 92583,
    ended: float | None = T0,
    result: str = "",
) -> JobInstance:
    end = datetime.fromtimestamp(ended, SHANGHAI) if ended is not None else None
    return JobInstance(
        job=job(job_id),
        instance_id=instance_id,
        status_code=int(status),
        result=result,
        schedule_time=end - timedelta(seconds=30) if end else None,
        start_time=end - timedelta(seconds=20) if end else None,
        end_time=end,
        trigger_type=1,
        time_type=1,
        work_addr="10.0.0.5:16888",
    )


# The rules with flap detection off: every failure of an alternating job is then its
# own announcement, which is what the properties of the diff's bookkeeping count.
EVERY_FAILURE = RuleSettings(flap_window=None)


def target(
    *receivers: str, name: str | None = None, rules: RuleSettings = DEFAULT_SETTINGS
) -> Target:
    return Target(
        job_name=name,
        receivers=receivers or ("ops",),
        alert_on=frozenset({InstanceStatus.FAILED, InstanceStatus.REJECTED}),
        rules=rules,
    )


def alert(instance_id: int, receiver: str = "ops", job_id: int = 92583, result: str = "") -> Alert:
    return run_alert(
        "failed", receiver, instance(instance_id, job_id=job_id, result=result), None, T0
    )
