"""Sample alerts for `render`: the example instance of SchedulerX's GetJobInstanceList page.

The page shows one successful run (JobId 92583, InstanceId 11111111, 2020-07-27 11:52:10);
here it fails, or is rejected, with the text a Java worker would report. Every sample goes
through the same constructors the tick uses, so what `render` shows is what a tick sends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from schedulerx_alert.core.findings import (
    FLAPPING,
    MISSED,
    RECOVERED,
    SETTLED,
    STUCK,
    Fact,
    Finding,
    attempt_id,
    finding,
    job_fingerprint,
)
from schedulerx_alert.core.group import group_shared_causes
from schedulerx_alert.core.model import InstanceStatus, JobInstance, JobKey, TriggerType
from schedulerx_alert.core.rules.workflow_failed import fold
from schedulerx_alert.core.state import Alert, HealthRecord, run_alert, trim
from schedulerx_alert.core.workflows import WorkflowNode, WorkflowRun, workflow_key

if TYPE_CHECKING:
    from schedulerx_alert.core.heartbeat import Digest
    from schedulerx_alert.delivery.outbox import Planner
    from schedulerx_alert.delivery.render import Message, Renderer

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


def alert(instance: JobInstance, job_name: str | None = None, **facts: Fact) -> Alert:
    created = instance.end_time or instance.schedule_time or _at(11, 52, 10)
    return run_alert(
        instance.status_label,
        RECEIVER,
        instance,
        job_name,
        created.timestamp() + 20,
        **{"streak": 1, **facts},
    )


def _routed(found: Finding, *names: str) -> Alert:
    return Alert(RECEIVER, trim(found), found.at, names or ("",) * len(found.jobs))


def _minutes(hour: int, minute: int, second: int = 0) -> float:
    return _at(hour, minute, second).timestamp()


# The sample job failed at 11:52:13 and once more at 12:01:13; a run at 12:10:13 succeeded.
RECOVERED_RUN = replace(
    FAILED,
    instance_id=11111180,
    status_code=InstanceStatus.SUCCESS,
    result="",
    progress="complete",
    schedule_time=_at(12, 10, 10),
    start_time=_at(12, 10, 10),
    end_time=_at(12, 10, 13),
    trigger_type=TriggerType.SCHEDULED,
)
# Started at 11:52:10 and still running at 12:39:10.
RUNNING = replace(
    FAILED,
    status_code=InstanceStatus.RUNNING,
    result="",
    progress="running",
    end_time=None,
    trigger_type=TriggerType.SCHEDULED,
)
NIGHTLY = JobKey(NAMESPACE, GROUP, 92584)


def in_a_row() -> Alert:
    """The third failed run in a row of a job with `consecutive_failures: 3`."""
    third = replace(
        FAILED,
        instance_id=11111190,
        schedule_time=_at(12, 10, 10),
        start_time=_at(12, 10, 10),
        end_time=_at(12, 10, 13),
        trigger_type=TriggerType.SCHEDULED,
    )
    return alert(third, streak=3, since=_minutes(11, 52, 13))


def recovered() -> Alert:
    return _routed(
        finding(
            RECOVERED,
            RECOVERED_RUN.job,
            job_fingerprint(RECOVERED, RECOVERED_RUN.job, RECOVERED_RUN.instance_id),
            _minutes(12, 10, 33),
            (RECOVERED_RUN,),
            broken_for_seconds=_minutes(12, 10, 13) - _minutes(11, 52, 13),
            failed_runs=2,
            since=_minutes(11, 52, 13),
        )
    )


def stuck() -> Alert:
    return _routed(
        finding(
            STUCK,
            RUNNING.job,
            job_fingerprint(STUCK, RUNNING.job, RUNNING.instance_id),
            _minutes(12, 39, 10),
            (RUNNING,),
            running_for_seconds=47 * 60.0,
            stuck_after_seconds=30 * 60.0,
            status=RUNNING.status_label,
        )
    )


def missed() -> Alert:
    """The nightly job's 02:00 run did not come within `missed_grace: 10m`."""
    expected = _minutes(2, 0)
    return _routed(
        finding(
            MISSED,
            NIGHTLY,
            job_fingerprint(MISSED, NIGHTLY, int(expected)),
            _minutes(2, 10, 30),
            expected_at=expected,
            last_expected_at=expected,
            missed_count=1,
            missed_fires=(expected,),
            grace_seconds=600.0,
            zone=str(ZONE),
        ),
        "nightly-etl",
    )


def flapping() -> Alert:
    return _routed(
        finding(
            FLAPPING,
            FAILED.job,
            job_fingerprint(FLAPPING, FAILED.job, int(_minutes(11, 52, 13))),
            _minutes(11, 52, 33),
            (FAILED,),
            changes=4,
            window_seconds=3600.0,
            since=_minutes(11, 10, 13),
        )
    )


def settled() -> Alert:
    since = _minutes(11, 52, 13)
    return _routed(
        finding(
            SETTLED,
            FAILED.job,
            job_fingerprint(SETTLED, FAILED.job, int(since)),
            _minutes(12, 55, 0),
            settled_as="ok",
            flapping_since=since,
            stable_since=_minutes(11, 54, 13),
            streak=0,
        )
    )


SHARED_ERROR = "Communications link failure: Connection refused 10.0.0.5:3306"


def shared_cause() -> Alert:
    """Twelve jobs lose the same database within a minute: one message."""
    members = [
        alert(
            replace(
                FAILED,
                job=JobKey(NAMESPACE, GROUP, 92583 + n),
                instance_id=11111200 + n,
                result=f"{SHARED_ERROR} (request {4711 + n})",
                end_time=_at(11, 52, 13 + n),
            ),
            streak=1,
        ).finding
        for n in range(12)
    ]
    [grouped] = group_shared_causes(members)
    names = tuple("nightly-etl" if job == NIGHTLY else "" for job in grouped.jobs)
    return _routed(grouped, *names)


# Workflow 301 "nightly-etl": extract-orders (92583) feeds load-warehouse (92584) and
# daily-report (92585). Its instance of 02:00 fails at extract; the other two never run.
WORKFLOW = workflow_key(NAMESPACE, GROUP, 301)
WORKFLOW_NAME = "nightly-etl"
WORKFLOW_RUN = JobInstance(
    job=WORKFLOW,
    instance_id=18000001,
    status_code=InstanceStatus.FAILED,
    schedule_time=_at(2, 0, 0),
    start_time=_at(2, 0, 0),
    end_time=_at(2, 3, 41),
    data_time=_at(2, 0, 0),
)
WORKFLOW_DAG = WorkflowRun(
    WORKFLOW,
    18000001,
    WORKFLOW_NAME,
    (
        WorkflowNode(92583, 11111301, "extract-orders", InstanceStatus.FAILED, FAILED.result),
        WorkflowNode(92584, 11111302, "load-warehouse", InstanceStatus.WAITING),
        WorkflowNode(92585, 11111303, "daily-report", InstanceStatus.WAITING),
    ),
    ((0, 11111301), (11111301, 11111302), (11111301, 11111303)),
)


def _workflow(found: Finding, runs: Sequence[WorkflowRun] = ()) -> Alert:
    """A finding about the workflow, turned as the tick turns it (core/rules)."""
    [turned] = fold([found], {(run.workflow, run.instance_id): run for run in runs}, {
        WORKFLOW: WORKFLOW_NAME
    })  # fmt: skip
    return _routed(turned, WORKFLOW_NAME)


def workflow_failed() -> Alert:
    """One message for the failed instance: the failed node, and the two that did not run."""
    found = finding(
        WORKFLOW_RUN.status_label,
        WORKFLOW,
        f"{WORKFLOW_RUN.status_label}:{attempt_id(WORKFLOW_RUN)}",
        _minutes(2, 4, 1),
        (WORKFLOW_RUN,),
        streak=1,
    )
    return _workflow(found, [WORKFLOW_DAG])


def workflow_recovered() -> Alert:
    good = replace(
        WORKFLOW_RUN,
        instance_id=18000002,
        status_code=InstanceStatus.SUCCESS,
        schedule_time=_at(3, 0, 0),
        start_time=_at(3, 0, 0),
        end_time=_at(3, 9, 12),
    )
    found = finding(
        RECOVERED,
        WORKFLOW,
        job_fingerprint(RECOVERED, WORKFLOW, good.instance_id),
        _minutes(3, 9, 32),
        (good,),
        broken_for_seconds=_minutes(3, 9, 12) - _minutes(2, 3, 41),
        failed_runs=1,
        since=_minutes(2, 3, 41),
    )
    return _workflow(found)


def every_kind() -> list[Alert]:
    """One alert of each kind, as one summary lists them."""
    return [
        alert(FAILED),
        in_a_row(),
        alert(REJECTED),
        recovered(),
        stuck(),
        missed(),
        flapping(),
        settled(),
        shared_cause(),
        workflow_failed(),
        workflow_recovered(),
    ]


def summary_alerts() -> list[Alert]:
    """Several runs of one morning: what a summary message lists."""
    nightly = JobKey(NAMESPACE, GROUP, 92584)
    report = JobKey(NAMESPACE, GROUP, 92585)
    # In the order a tick lists them: job by job, each job's runs in the order they ended.
    return [
        alert(FAILED),
        alert(
            replace(
                FAILED,
                instance_id=11111170,
                result="java.net.SocketTimeoutException: Read timed out",
                schedule_time=_at(11, 55, 10),
                start_time=_at(11, 55, 10),
                end_time=_at(11, 56, 10),
                trigger_type=TriggerType.SYSTEM_RETRY,
            ),
            # The job's second failure in a row, after the one above.
            streak=2,
            since=_minutes(11, 52, 13),
        ),
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


def heartbeat_digest(impaired: bool = False, at: str = "09:00", zone: str = ZONE.key) -> Digest:
    """The 2020-07-28 digest of the samples' day, sent at `at` ("HH:MM", in `zone`): the
    sample job failed twice and recovered, nightly-etl ran out of memory three times; the
    impaired day also lost an hour to a robot that would not take messages and left a
    group unread for a while."""
    from schedulerx_alert.core.heartbeat import (
        Digest,
        FailingJob,
        HeldSilence,
        Reading,
        SilenceCounts,
    )

    hour, minute = (int(part) for part in at.split(":"))
    until = datetime(2020, 7, 28, hour, minute, 20, tzinfo=ZoneInfo(zone)).timestamp()
    nightly, report = JobKey(NAMESPACE, GROUP, 92584), JobKey(NAMESPACE, GROUP, 92585)
    reading = Reading(watched=42, stale=3 if impaired else 0)
    silence = HeldSilence(
        f"group={GROUP}, name=report-*", until + 3 * 3600, "warehouse migration", 4
    )
    return Digest(
        day=date(2020, 7, 28),
        since=until - 24 * 3600,
        until=until,
        whole_window=True,
        reading=reading,
        runs=1873,
        failures=6,
        recoveries=1,
        failing_jobs=(
            FailingJob(nightly, 3),
            FailingJob(FAILED.job, 2),
            FailingJob(report, 1),
        ),
        more_failing_jobs=0,
        unnamed_failures=0,
        ticks_ok=1379 if impaired else 1440,
        ticks_degraded=7 if impaired else 0,
        ticks_failed=2 if impaired else 0,
        silent_hours=1 if impaired else 0,
        calls=(("GetJobInstanceList", 64812), ("ListJobs", 147)),
        last_problem="receiver ops (https://oapi.dingtalk.com/robot/send?access_token=***): "
        "DingTalk answered HTTP 503; 2 alert(s) stay pending for the next tick"
        if impaired
        else None,
        last_problem_at=until - 5 * 3600 if impaired else None,
        silences=SilenceCounts((silence,), 4),
    )


def _heartbeat(renderer: Renderer, impaired: bool, at: str, zone: str) -> Message:
    from schedulerx_alert.delivery.heartbeat import heartbeat_message

    names = {FAILED.job: "orders-sync", JobKey(NAMESPACE, GROUP, 92584): "nightly-etl"}
    return heartbeat_message(renderer, heartbeat_digest(impaired, at, zone), names, at, zone)


def _health(impaired: bool, record: HealthRecord, language: str) -> Message:
    # Imported here: the kind table is read by the CLI's parser, which should stay light.
    from schedulerx_alert.delivery.health import IMPAIRED, RECOVERED, health_message

    return health_message(IMPAIRED if impaired else RECOVERED, record, language)


# A refusal as links/operate.py words it, quoting SchedulerX's answer for the Basic edition.
_REFUSED = {
    "zh-CN": (
        "SchedulerX 拒绝重跑任务 orders-sync (92583) 的运行 11111111，它的答复是："
        "only the professional edition supports this operation。运行没有任何变化。"
    ),
    "en": (
        "SchedulerX refused to retry run 11111111 of orders-sync (92583), saying: only the "
        "professional edition supports this operation. The run is unchanged."
    ),
}


def _operation(done: bool, language: str, zone: str) -> Message:
    # Imported here: the kind table is read by the CLI's parser, which should stay light.
    from schedulerx_alert.delivery.operation_links import follow_up

    record = {
        "operation": "retry",
        "at": _at(12, 4, 0).timestamp(),
        "job": "orders-sync (92583)",
        "instance": FAILED.instance_id,
        "outcome": "done" if done else "refused",
        "reason": "" if done else _REFUSED.get(language, _REFUSED["en"]),
    }
    return follow_up(record, language, zone)


@dataclass(frozen=True)
class Sample:
    """What shapes a sample message besides the data: as the tick has it from the config."""

    renderer: Renderer
    language: str
    # The heartbeat's time of day ("HH:MM") and the zone its times are shown in.
    heartbeat_at: str = "09:00"
    zone: str = ZONE.key


@dataclass(frozen=True)
class Kind:
    """A kind of message `render` can show, and how to make it from the samples."""

    name: str
    description: str
    # Which Renderer template `--template` replaces; None: the text is not templated.
    template: str | None
    # The alerts a tick would hand delivery: one is a single alert's message, several
    # a summary (delivery/outbox.py's Planner makes both, as for a tick).
    alerts: Callable[[], Sequence[Alert]] | None = None
    # A message about the monitor itself, sent as it is made (a notice).
    notice: Callable[[Sample], Message] | None = None

    def message(self, sample: Sample, planner: Planner) -> Message:
        """The message a tick would send; `planner` is delivery's, for the receiver."""
        if self.notice is not None:
            return self.notice(sample)
        assert self.alerts is not None
        alerts = self.alerts()
        if len(alerts) == 1:
            return planner.single(alerts[0]).message
        return planner.summary(alerts)


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("failed", "one failed run (status 5)", "alert", lambda: [alert(FAILED)]),
        Kind("rejected", "one rejected run (status 9)", "alert", lambda: [alert(REJECTED)]),
        Kind(
            "summary",
            "several runs in one message (more than summary_threshold at once)",
            "summary",
            summary_alerts,
        ),
        Kind("summary-kinds", "one alert of every kind in one summary", "summary", every_kind),
        Kind(
            "failed-in-a-row",
            "the third failed run in a row (consecutive_failures: 3)",
            "alert",
            lambda: [in_a_row()],
        ),
        Kind(
            "recovered",
            "a job works again after failed runs (recovery)",
            "recovered",
            lambda: [recovered()],
        ),
        Kind("stuck", "a run still running after stuck_after", "stuck", lambda: [stuck()]),
        Kind("missed", "a cron fire with no run within missed_grace", "missed", lambda: [missed()]),
        Kind(
            "flapping",
            "a job alternating between failure and success (flap_window, flap_changes)",
            "flapping",
            lambda: [flapping()],
        ),
        Kind("settled", "a flapping job has stopped changing", "settled", lambda: [settled()]),
        Kind(
            "shared_cause",
            "twelve jobs failing with the same error, in one message",
            "shared_cause",
            lambda: [shared_cause()],
        ),
        Kind(
            "workflow_failed",
            "a workflow instance failed: its failed node and the two nodes that did not run",
            "workflow_failed",
            lambda: [workflow_failed()],
        ),
        Kind(
            "workflow_recovered",
            "a workflow works again: its next instance succeeded",
            "workflow_recovered",
            lambda: [workflow_recovered()],
        ),
        Kind(
            "heartbeat",
            "the daily digest (heartbeat: {receiver, at}): runs, failures, checks, API calls",
            None,
            notice=lambda s: _heartbeat(s.renderer, False, s.heartbeat_at, s.zone),
        ),
        Kind(
            "heartbeat-impaired",
            "the daily digest of a day the monitor itself was broken for a while",
            None,
            notice=lambda s: _heartbeat(s.renderer, True, s.heartbeat_at, s.zone),
        ),
        Kind(
            "health",
            "the monitor itself is broken (health.impaired_after ticks in a row)",
            None,
            notice=lambda s: _health(True, HEALTH, s.language),
        ),
        Kind(
            "health-recovered",
            "the monitor works again",
            None,
            notice=lambda s: _health(False, HealthRecord(), s.language),
        ),
        Kind(
            "operation",
            "a run retried from an alert's button (actions.operations): the follow-up",
            None,
            notice=lambda s: _operation(True, s.language, s.zone),
        ),
        Kind(
            "operation-refused",
            "SchedulerX refused an operation from an alert's button: the follow-up",
            None,
            notice=lambda s: _operation(False, s.language, s.zone),
        ),
    )
}
