"""The pure core: what SchedulerX reports now + what we knew -> alerts + new state.

No I/O and no clock: the caller passes `now`. New alert kinds (recoveries,
thresholds, stuck runs) grow here as further rules over the same records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace

from .model import InstanceStatus, JobInstance, JobKey
from .state import (
    RESULT_KEEP,
    Alert,
    InstanceRecord,
    JobRecord,
    State,
    attempt_of,
    clip,
)

# An instance SchedulerX stopped listing is forgotten after this long; until
# then a flaky listing that drops and re-adds it cannot announce it twice.
RETENTION_SECONDS = 24 * 3600
# Bound on the records of runs SchedulerX no longer lists, per job, even for
# jobs that run every second. Listed runs are always kept: forgetting one
# would announce it again.
MAX_UNLISTED_PER_JOB = 200
# An alert still undelivered after this long is dropped (and counted).
PENDING_MAX_AGE_SECONDS = 24 * 3600


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
    # Pending alerts older than the maximum age, dropped undelivered.
    expired: tuple[Alert, ...] = field(default=())


def diff(
    state: State,
    polls: Mapping[JobKey, Sequence[JobInstance]],
    targets: Mapping[JobKey, Target],
    now: float,
    first_run_lookback: float,
    pending_max_age: float = PENDING_MAX_AGE_SECONDS,
    max_unlisted: int = MAX_UNLISTED_PER_JOB,
    partial: AbstractSet[JobKey] = frozenset(),
    first: AbstractSet[JobKey] | None = None,
) -> DiffResult:
    """Compare this tick's listings with the state.

    `polls` holds only the jobs whose listing succeeded; every other job's
    records are carried over untouched, so a failed call never forgets or
    re-announces anything. A job in `partial` was listed in part (the runs a
    group query found), not everything SchedulerX lists for it: its last
    complete listing (`polled_at`) stays as it was. `first` names the jobs
    whose listing counts as a first poll (their older failures are history);
    without it, a job is polled first when the state has no record of it.
    """
    rule = _Rule(now, first_run_lookback, max_unlisted, dict(state.delivered))
    jobs: dict[JobKey, JobRecord] = {}
    for key, target in targets.items():
        previous = state.jobs.get(key)
        if key not in polls:
            if previous is not None:
                jobs[key] = previous
            continue
        first_poll = previous is None if first is None else key in first
        jobs[key] = rule.job(previous, polls[key], target, first_poll, key not in partial)

    receivers = {r for t in targets.values() for r in t.receivers}
    kept: list[Alert] = []
    dropped: list[Alert] = []
    expired: list[Alert] = []
    for alert in state.outbox:
        if alert.instance.job not in targets or alert.receiver not in receivers:
            dropped.append(alert)
        elif now - alert.created_at > pending_max_age:
            expired.append(alert)
        else:
            kept.append(alert)
    counts = dict(state.expired)
    for alert in expired:
        counts[alert.receiver] = counts.get(alert.receiver, 0) + 1
    delivered = {k: t for k, t in rule.delivered.items() if now - t < RETENTION_SECONDS}
    new_state = state.with_updates(
        jobs=jobs, outbox=(*kept, *rule.alerts), expired=counts, delivered=delivered
    )
    return DiffResult(
        new_state, tuple(rule.alerts), tuple(rule.history), tuple(dropped), tuple(expired)
    )


@dataclass
class _Rule:
    now: float
    first_run_lookback: float
    max_unlisted: int
    # Keys a dead tick delivered; consumed as the runs are seen again.
    delivered: dict[str, float]
    alerts: list[Alert] = field(default_factory=list)
    history: list[JobInstance] = field(default_factory=list)

    def job(
        self,
        previous: JobRecord | None,
        instances: Sequence[JobInstance],
        target: Target,
        first_poll: bool,
        complete: bool = True,
    ) -> JobRecord:
        # A job we have never polled has a past we did not watch: announce only
        # what ended recently, and keep the rest as already seen.
        known = previous.instances if previous else {}
        records: dict[int, InstanceRecord] = {}
        for inst in instances:
            before = known.get(inst.instance_id)
            alerted = before.alerted if before else ()
            if before is not None and _new_attempt(before, inst):
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
                if first_poll and before is None and _ended_before(inst, self.cutoff):
                    self.history.append(inst)
                else:
                    self.announce(inst, kind, target)
            record = InstanceRecord(inst.status_code, self.now, alerted, attempt_of(inst))
            if _end_unlisted(inst) and before is not None:
                # Keep the attempt we know, or the next listing that shows its
                # end would look like a new attempt and be announced again.
                record = replace(record, end=before.end, end_v1=before.end_v1)
            records[inst.instance_id] = record

        unlisted = sorted(
            (
                (record.seen, iid)
                for iid, record in known.items()
                if iid not in records and self.now - record.seen < RETENTION_SECONDS
            ),
            reverse=True,
        )
        for _, iid in unlisted[: self.max_unlisted]:
            records[iid] = known[iid]
        polled_at = self.now if complete else (previous.polled_at if previous else None)
        return JobRecord(instances=records, polled_at=polled_at)

    @property
    def cutoff(self) -> float:
        return self.now - self.first_run_lookback

    def announce(self, inst: JobInstance, kind: str, target: Target) -> None:
        # The stored alert keeps what a message can show of the error text.
        trimmed = replace(inst, result=clip(inst.result, RESULT_KEEP))
        for receiver in target.receivers:
            alert = Alert(kind, receiver, trimmed, target.job_name, self.now)
            if self.delivered.pop(alert.key, None) is None:
                self.alerts.append(alert)


def _end_unlisted(inst: JobInstance) -> bool:
    """A finished run listed without its end time: the attempt we know, not a re-run
    (a re-run is listed running, or ends at another time)."""
    return inst.end_time is None and inst.terminal


def _new_attempt(before: InstanceRecord, inst: JobInstance) -> bool:
    if _end_unlisted(inst):
        return False
    if before.end is not None:
        return attempt_of(inst) != before.end
    if before.end_v1 is not None:
        ended = inst.end_time.timestamp() if inst.end_time else None
        return ended != before.end_v1
    return False


def _ended_before(inst: JobInstance, cutoff: float) -> bool:
    ended = inst.finished_at
    # A failure with no time at all is treated as old: announcing a run we
    # cannot place in time on a first run would be noise.
    return ended is None or ended.timestamp() < cutoff
