"""Sample alerts for `render`: the example instance of SchedulerX's GetJobInstanceList page.

The page shows one successful run (JobId 92583, InstanceId 11111111, 2020-07-27 11:52:10);
here it fails, or is rejected, with the text a Java worker would report. Every sample goes
through the same constructors the tick uses, so what `render` shows is what a tick sends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from ..model import InstanceStatus, JobInstance, JobKey, TriggerType
from ..state import Alert, HealthRecord

if TYPE_CHECKING:
    from ..render import Message, Renderer

ZONE = ZoneInfo("Asia/Shanghai")
NAMESPACE = "adcfc35d-e2fe-4fe9-bbaa-20e90ffc****"
GROUP = "testSchedulerx.defaultGroup"
RECEIVER = "ops"


def _at(hour: int, minute: int, second: int) -> datetime:
    return datetime(2020, 7, 27, hour, minute, second, tzinfo=ZONE)


# The page's instance, made to fail a few seconds after it started.
FAILED = JobInstance(
    job=JobKey(NAMESPACE, GROUP, 92583),
    instance_id=11111111,
    status_code=InstanceStatus.FAILED,
    result=(
        "java.lang.IllegalStateException: order sync failed: "
        "connection to 192.168.0.12:3306 refused\n"
        "\tat com.example.job.SyncOrdersProcessor.process(SyncOrdersProcessor.java:58)\n"
        "\tat com.alibaba.schedulerx.worker.container.ThreadContainer.run(ThreadContainer.java:63)"
    ),
    progress="failed",
    schedule_time=_at(11, 52, 10),
    start_time=_at(11, 52, 10),
    end_time=_at(11, 52, 13),
    data_time=_at(11, 52, 10),
    time_type=1,
    trigger_type=TriggerType.API,
    work_addr="192.168.0.0:16",
    executor="A",
)

# The same run refused by its worker.
REJECTED = replace(
    FAILED,
    status_code=InstanceStatus.REJECTED,
    result="worker 192.168.0.0:16 rejected the instance: the previous instance "
    "11111110 is still running (max concurrency 1)",
    progress="",
    end_time=_at(11, 52, 10),
    trigger_type=TriggerType.SCHEDULED,
)

HEALTH = HealthRecord(
    broken_ticks=3,
    impaired_announced=True,
    reason="SchedulerX rejects the function's credentials: "
    "InvalidAccessKeyId.NotFound: Specified access key is not found.",
)


def alert(instance: JobInstance, job_name: str | None = None) -> Alert:
    created = instance.end_time or instance.schedule_time or _at(11, 52, 10)
    return Alert(
        kind=instance.status_label,
        receiver=RECEIVER,
        instance=instance,
        job_name=job_name,
        created_at=created.timestamp() + 20,
    )


def summary_alerts() -> list[Alert]:
    """Several runs of one morning: what a summary message lists."""
    nightly = JobKey(NAMESPACE, GROUP, 92584)
    report = JobKey(NAMESPACE, GROUP, 92585)
    # In the order a tick lists them: job by job, each job's newest run first.
    return [
        alert(
            replace(
                FAILED,
                instance_id=11111170,
                result="java.net.SocketTimeoutException: Read timed out",
                schedule_time=_at(11, 55, 10),
                start_time=_at(11, 55, 10),
                end_time=_at(11, 56, 10),
                trigger_type=TriggerType.SYSTEM_RETRY,
            )
        ),
        alert(FAILED),
        alert(
            replace(
                FAILED,
                job=nightly,
                instance_id=11111150,
                result="java.lang.OutOfMemoryError: Java heap space",
                schedule_time=_at(11, 52, 0),
                start_time=_at(11, 52, 0),
                end_time=_at(11, 53, 41),
            ),
            job_name="nightly-etl",
        ),
        alert(replace(REJECTED, job=report, instance_id=11111162, end_time=_at(11, 54, 0))),
    ]


def _health(impaired: bool, record: HealthRecord, language: str) -> Message:
    # Imported here: the kind table is read by the CLI's parser, which should stay light.
    from ..health import IMPAIRED, RECOVERED, health_message

    return health_message(IMPAIRED if impaired else RECOVERED, record, language)


@dataclass(frozen=True)
class Kind:
    """A kind of message `render` can show, and how to make it from the samples."""

    name: str
    description: str
    # Which Renderer template `--template` replaces; None: the text is not templated.
    template: str | None
    message: Callable[[Renderer, str, Sequence[str]], Message]


# (renderer, language, at_mobiles) -> the message a tick would hand the receiver.
KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "failed",
            "one failed run (status 5)",
            "alert",
            lambda r, _lang, at: r.alert(alert(FAILED), at),
        ),
        Kind(
            "rejected",
            "one rejected run (status 9)",
            "alert",
            lambda r, _lang, at: r.alert(alert(REJECTED), at),
        ),
        Kind(
            "summary",
            "several runs in one message (more than summary_threshold at once)",
            "summary",
            lambda r, _lang, at: r.summary(summary_alerts(), at),
        ),
        Kind(
            "health",
            "the monitor itself is broken (health.impaired_after ticks in a row)",
            None,
            lambda _r, lang, _at: _health(True, HEALTH, lang),
        ),
        Kind(
            "recovered",
            "the monitor works again",
            None,
            lambda _r, lang, _at: _health(False, HealthRecord(), lang),
        ),
    )
}
