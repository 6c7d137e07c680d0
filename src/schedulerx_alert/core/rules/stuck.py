"""A run still waiting or running after `stuck_after` is announced once.

Its end, when it comes, is an ordinary outcome for the other rules.
"""

from __future__ import annotations

from dataclasses import replace

from schedulerx_alert.core.findings import STUCK, Finding, finding, job_fingerprint
from schedulerx_alert.core.model import InstanceStatus, JobInstance
from schedulerx_alert.core.rules.failure import admitted
from schedulerx_alert.core.rules.history import JobHistory, JobSchedule
from schedulerx_alert.core.rules.memory import MAX_STUCK, JobRuleState
from schedulerx_alert.core.rules.settings import RuleSettings

# Not ended and not deliberately held (paused) or unreadable (unknown).
_UNDERWAY = frozenset(
    {
        InstanceStatus.WAITING,
        InstanceStatus.READY,
        InstanceStatus.RUNNING,
        InstanceStatus.SUBMITTED,
        InstanceStatus.ACCEPTED,
    }
)


def check(
    history: JobHistory,
    settings: RuleSettings,
    schedule: JobSchedule,
    state: JobRuleState,
    now: float,
) -> tuple[list[Finding], JobRuleState]:
    threshold = settings.stuck_threshold(schedule.timeout)
    underway = {i.instance_id: i for i in history.instances if i.status in _UNDERWAY}
    # Forget runs seen to end (a re-run may get stuck again); keep those the listing
    # no longer shows, so a run that drops out and comes back is not announced twice.
    listed = {i.instance_id for i in history.instances}
    stuck = [iid for iid in state.stuck if iid in underway or iid not in listed]
    findings: list[Finding] = []
    if threshold is not None:
        for iid, inst in sorted(underway.items()):
            running_for = _running_for(inst, now)
            if iid in stuck or running_for is None or running_for < threshold:
                continue
            if not admitted(inst, settings):
                continue
            stuck.append(iid)
            findings.append(_stuck(inst, now, running_for, threshold))
    kept = tuple(stuck[-MAX_STUCK:])
    return findings, state if kept == state.stuck else replace(state, stuck=kept)


def _running_for(inst: JobInstance, now: float) -> float | None:
    # A waiting run has no start yet: it has been stuck since it was due.
    began = inst.start_time or inst.schedule_time
    return None if began is None else now - began.timestamp()


def _stuck(inst: JobInstance, now: float, running_for: float, threshold: float) -> Finding:
    began = inst.start_time or inst.schedule_time
    started = int(began.timestamp()) if began else 0
    return finding(
        STUCK,
        inst.job,
        job_fingerprint(STUCK, inst.job, inst.instance_id, started),
        now,
        (inst,),
        running_for_seconds=running_for,
        stuck_after_seconds=threshold,
        status=inst.status_label,
    )
