"""The pure core: what SchedulerX reports now + what we knew -> alerts + new state.

No I/O and no clock: the caller passes `now`. New alert kinds (recoveries,
thresholds, stuck runs) grow here as further rules over the same records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .model import InstanceStatus, JobInstance, JobKey
from .state import Alert, InstanceRecord, JobRecord, State

# An instance SchedulerX stopped listing is forgotten after this long; until
# then a flaky listing that drops and re-adds it cannot announce it twice.
RETENTION_SECONDS = 24 * 3600
# Bound per job even for jobs that run every second.
MAX_INSTANCES_PER_JOB = 200


@dataclass(frozen=True)
class Target:
    """What to do with a watched job's runs."""

    job_name: str | None
    receivers: tuple[str, ...]
    alert_on: frozenset[InstanceStatus]


@dataclass(frozen=True)
class DiffResult:
    state: State
    alerts: tuple[Alert, ...]
    # Failures older than the first-run lookback, recorded but not announced.
    history: tuple[JobInstance, ...] = ()
    # Pending alerts whose receiver or job is no longer configured.
    dropped: tuple[Alert, ...] = field(default=())


def diff(
    state: State,
    polls: Mapping[JobKey, Sequence[JobInstance]],
    targets: Mapping[JobKey, Target],
    now: float,
    first_run_lookback: float,
) -> DiffResult:
    """Compare this tick's listings with the state.

    `polls` holds only the jobs whose listing succeeded; every other job's
    records are carried over untouched, so a failed call never forgets or
    re-announces anything.
    """
    alerts: list[Alert] = []
    history: list[JobInstance] = []
    jobs: dict[JobKey, JobRecord] = {}
    for key, target in targets.items():
        previous = state.jobs.get(key)
        if key not in polls:
            if previous is not None:
                jobs[key] = previous
            continue
        jobs[key] = _diff_job(
            previous, polls[key], target, now, first_run_lookback, alerts, history
        )

    receivers = {r for t in targets.values() for r in t.receivers}
    kept: list[Alert] = []
    dropped: list[Alert] = []
    for alert in state.outbox:
        wanted = alert.instance.job in targets and alert.receiver in receivers
        (kept if wanted else dropped).append(alert)
    new_state = state.with_updates(jobs=jobs, outbox=(*kept, *alerts))
    return DiffResult(new_state, tuple(alerts), tuple(history), tuple(dropped))


def _diff_job(
    previous: JobRecord | None,
    instances: Sequence[JobInstance],
    target: Target,
    now: float,
    first_run_lookback: float,
    alerts: list[Alert],
    history: list[JobInstance],
) -> JobRecord:
    # A job we have never polled has a past we did not watch: announce only
    # what ended recently, and keep the rest as already seen.
    first_poll = previous is None
    known = previous.instances if previous else {}
    records: dict[int, InstanceRecord] = {}
    for inst in instances:
        before = known.get(inst.instance_id)
        ended = inst.end_time.timestamp() if inst.end_time else None
        alerted = before.alerted if before else ()
        if before is not None and before.ended is not None and ended != before.ended:
            alerted = ()  # re-run of the same instance: a new attempt
        kind = inst.status_label
        status = inst.status
        if (
            inst.terminal
            and status is not None
            and status in target.alert_on
            and kind not in alerted
        ):
            alerted = (*alerted, kind)
            if first_poll and before is None and _ended_before(inst, now - first_run_lookback):
                history.append(inst)
            else:
                alerts.extend(
                    Alert(kind, receiver, inst, target.job_name, now)
                    for receiver in target.receivers
                )
        records[inst.instance_id] = InstanceRecord(inst.status_code, now, alerted, ended)

    for iid, record in known.items():
        if iid not in records and now - record.seen < RETENTION_SECONDS:
            records[iid] = record
    if len(records) > MAX_INSTANCES_PER_JOB:
        newest = sorted(records, key=lambda i: (records[i].seen, i))[-MAX_INSTANCES_PER_JOB:]
        records = {i: records[i] for i in newest}
    return JobRecord(instances=records, polled_at=now)


def _ended_before(inst: JobInstance, cutoff: float) -> bool:
    ended = inst.finished_at
    # A failure with no time at all is treated as old: announcing a run we
    # cannot place in time on a first run would be noise.
    return ended is None or ended.timestamp() < cutoff
