"""The pure core's driver: what SchedulerX reports now + what we knew -> alerts + new state.

listings + state -> a `JobHistory` per polled job -> the alert rules (core/rules) ->
findings -> `route` (one alert per receiver) -> the outbox. No I/O and no clock: the
caller passes `now`. Which outcomes are new is decided here, from the state's run
records (an attempt is known by SchedulerX's zone-free EndTime); what they mean is
decided by the rules, whose memory each job record carries.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from schedulerx_alert.core.findings import Finding
from schedulerx_alert.core.group import DEFAULT_MIN_JOBS, group_shared_causes
from schedulerx_alert.core.model import InstanceStatus, JobInstance, JobKey
from schedulerx_alert.core.rules import (
    EMPTY,
    Evaluation,
    JobHistory,
    JobRuleState,
    RuleSettings,
    Seen,
    evaluate,
)
from schedulerx_alert.core.rules.failure import admitted, is_failure
from schedulerx_alert.core.rules.history import NOT_READ
from schedulerx_alert.core.rules.missed import LISTING_DEPTH
from schedulerx_alert.core.rules.schedules import schedules_of
from schedulerx_alert.core.rules.settings import DEFAULT_ALERT_ON, DEFAULT_SETTINGS
from schedulerx_alert.core.state import (
    Alert,
    InstanceRecord,
    JobRecord,
    State,
    attempt_of,
    receiver_key,
    trim,
)

if TYPE_CHECKING:
    from schedulerx_alert.core.catalog import JobInfo
    from schedulerx_alert.core.routing import Policy
    from schedulerx_alert.core.silence_hold import Held, HeldAlert, HeldBook
    from schedulerx_alert.core.workflows import WorkflowRun

# An instance SchedulerX stopped listing is forgotten after this long; until
# then a flaky listing that drops and re-adds it cannot announce it twice.
RETENTION_SECONDS = 24 * 3600
# Bound on the records of runs SchedulerX no longer lists, per job, even for
# jobs that run every second. Listed runs are always kept: forgetting one
# would announce it again.
MAX_UNLISTED_PER_JOB = 200
# A success nothing was announced for is let go once unlisted this long: twice what a
# group query's window reads again (sources/plan.py OVERLAP, 15 minutes; the caller gives
# twice the overlap its windows use, `DiffSettings.settled`). Kept for a day, a job's
# successes made most of the state, decoded and written again every tick.
SETTLED_SECONDS = 2 * 15 * 60.0
# A job read by its own listing (per-job polls, jobs named by id) keeps its newest records
# whatever they hold: what that listing shows (SchedulerX lists a job's last 10 runs), so
# no poll lists a run the state has let go of. A group query's job needs none: its per-job
# listings (follow-ups, cross-checks) add only runs inside the windows.
KEPT_NEWEST = LISTING_DEPTH
# An alert still undelivered after this long is dropped (and counted).
PENDING_MAX_AGE_SECONDS = 24 * 3600
DEFAULT_ZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class Target:
    """What to do with a watched job's runs: its watch entry's receivers and rule options."""

    job_name: str | None
    receivers: tuple[str, ...]
    alert_on: frozenset[InstanceStatus] = DEFAULT_ALERT_ON
    rules: RuleSettings = DEFAULT_SETTINGS

    @property
    def settings(self) -> RuleSettings:
        if self.rules.alert_on == self.alert_on:
            return self.rules
        return replace(self.rules, alert_on=self.alert_on)


@dataclass(frozen=True)
class DiffResult:
    state: State
    alerts: tuple[Alert, ...]
    # Failures older than the first-run lookback, recorded but not announced.
    history: tuple[JobInstance, ...] = ()
    # Pending alerts whose job is no longer watched, or that route to no receiver now
    # (one whose receiver is gone goes to the job's current receivers: `reroute`).
    dropped: tuple[Alert, ...] = field(default=())
    # Pending alerts older than the maximum age, dropped undelivered.
    expired: tuple[Alert, ...] = field(default=())
    # What the rules found this tick, before routing.
    findings: tuple[Finding, ...] = field(default=())
    # Alerts silences or quiet hours held back this tick (counted in `state.silenced`).
    held: tuple[HeldAlert, ...] = field(default=())


@dataclass(frozen=True)
class Reading:
    """What this tick read, as the diff takes it.

    `polls` holds only the jobs whose listing succeeded; every other job's records and
    rule memory are carried over untouched, so a failed call never forgets or
    re-announces anything. A job in `partial` was listed in part (the runs a group query
    found), not everything SchedulerX lists for it: its last complete listing
    (`polled_at`) stays as it was. `first` names the jobs whose listing counts as a
    first poll (their older failures are history); without it, a job is polled first
    when the state has no record of it. `covered` says, per job, up to when all its runs
    are known (core/rules/history.py `JobHistory.covered`); without it, a job's listing
    is read up to now and a job without one is not read. `catalog` is what SchedulerX
    says about the jobs themselves (schedule, timeout; core/catalog.py): without an
    entry, a job is never called missed and is stuck only after its `stuck_after`.
    `workflows`, when workflows are watched: the DAGs of the failed workflow instances
    read this tick (core/rules/workflow_failed.py).
    """

    polls: Mapping[JobKey, Sequence[JobInstance]]
    partial: AbstractSet[JobKey] = frozenset()
    first: AbstractSet[JobKey] | None = None
    covered: Mapping[JobKey, float] | None = None
    catalog: Mapping[JobKey, JobInfo] = field(default_factory=dict)
    workflows: Mapping[tuple[JobKey, int], WorkflowRun] | None = None


@dataclass(frozen=True)
class DiffSettings:
    """The config's part in a diff. `zone` is the zone crons are read in; `policy`
    holds `routes:`, silences and quiet hours (core/routing.py): without one an alert
    goes to its watch entry's receivers only."""

    first_run_lookback: float
    pending_max_age: float = PENDING_MAX_AGE_SECONDS
    max_unlisted: int = MAX_UNLISTED_PER_JOB
    settled: float = SETTLED_SECONDS
    zone: str = DEFAULT_ZONE
    shared_cause_min_jobs: int | None = DEFAULT_MIN_JOBS
    policy: Policy | None = None


def diff(
    state: State,
    reading: Reading,
    targets: Mapping[JobKey, Target],
    now: float,
    settings: DiffSettings,
) -> DiffResult:
    """Compare this tick's reading with the state and run the alert rules."""
    polls, partial, first, covered = reading.polls, reading.partial, reading.first, reading.covered
    policy, zone, max_unlisted = settings.policy, settings.zone, settings.max_unlisted
    settled = settings.settled
    cutoff = now - settings.first_run_lookback
    histories: dict[JobKey, JobHistory] = {}
    quiet: list[JobInstance] = []
    rules = {key: target.settings for key, target in targets.items()}
    for key in targets:
        if key in polls:
            previous = state.jobs.get(key)
            first_poll = previous is None if first is None else key in first
            # A complete listing is read up to now; a group query's, as far as its group was.
            read_to = math.inf if covered is None else covered.get(key, math.inf)
            histories[key] = _history(key, previous, polls[key], cutoff, first_poll, read_to)
            if first_poll:
                quiet += _quiet_failures(histories[key], rules[key])
    evaluation = evaluate(
        histories,
        rules,
        schedules_of(reading.catalog, targets, zone),
        {key: record.rules for key, record in state.jobs.items() if key in targets},
        now,
        # Grouped per receiver in `route`, after what a dead tick delivered is taken out.
        shared_cause_min_jobs=None,
        # Every job of every group read, each tick: most have no run listed.
        covered=covered,
    )
    if reading.workflows is not None:
        evaluation = _fold_workflows(evaluation, reading.workflows, targets, state.jobs)
    alerted = _alerted(evaluation.findings, quiet)
    jobs: dict[JobKey, JobRecord] = {}
    for key in targets:
        previous = state.jobs.get(key)
        memory = evaluation.memory.get(key, EMPTY)
        if key in polls:
            complete = key not in partial
            jobs[key] = _record(
                previous, polls[key], now, max_unlisted, alerted, memory, complete, settled
            )
        elif previous is not None:
            # Most jobs, most ticks: nothing listed and nothing remembered anew.
            same = previous.rules is memory or previous.rules == memory
            record = previous if same else replace(previous, rules=memory)
            if record.instances and covered is not None and covered.get(key, NOT_READ) > NOT_READ:
                # Its group was read and listed none of its runs: what its records may let
                # go of is what a listing of its group would let go of (a daily job's one
                # success would otherwise be carried, decoded and written, all day).
                record = _unlisted_only(record, now, max_unlisted, settled)
            jobs[key] = record
        elif memory != EMPTY:
            jobs[key] = JobRecord(rules=memory)

    delivered = dict(state.delivered)
    held: list[HeldAlert] = []
    alerts = route(
        evaluation.findings,
        targets,
        now,
        delivered=delivered,
        shared_cause_min_jobs=settings.shared_cause_min_jobs,
        policy=policy,
        held=held,
    )
    receivers = {r for t in targets.values() for r in t.receivers}
    receivers |= policy.route_receivers if policy else frozenset()
    kept: list[Alert] = []
    dropped: list[Alert] = []
    expired: list[Alert] = []
    owed = {a.key for a in (*state.outbox, *alerts)} | set(delivered)
    for alert in state.outbox:
        if alert.jobs and not any(job in targets for job in alert.jobs):
            dropped.append(alert)
        elif now - alert.created_at > settings.pending_max_age:
            expired.append(alert)
        elif alert.receiver in receivers:
            kept.append(alert)
        else:
            # Its receiver was renamed or removed: the job's receivers now hear of it.
            moved = reroute(alert, targets, now, owed, policy, held)
            if moved is None:
                dropped.append(alert)
            else:
                kept += moved
    counts = dict(state.expired)
    # A dropped alert is counted like an expired one: the next message to its receiver
    # (or, with that gone too, to whom the tick names) says how many never went.
    for alert in (*expired, *dropped):
        counts[alert.receiver] = counts.get(alert.receiver, 0) + 1
    delivered = {k: t for k, t in delivered.items() if now - t < RETENTION_SECONDS}
    new_state = state.with_updates(
        jobs=jobs,
        outbox=(*kept, *alerts),
        expired=counts,
        delivered=delivered,
        silenced=_hold(state.silenced, held),
    )
    return DiffResult(
        new_state,
        tuple(alerts),
        tuple(quiet),
        tuple(dropped),
        tuple(expired),
        evaluation.findings,
        tuple(held),
    )


def _fold_workflows(
    evaluation: Evaluation,
    runs: Mapping[tuple[JobKey, int], WorkflowRun],
    targets: Mapping[JobKey, Target],
    known: Mapping[JobKey, JobRecord],
) -> Evaluation:
    from schedulerx_alert.core.rules.workflow_failed import fold  # only with workflows watched

    names = {key: t.job_name or "" for key, t in targets.items() if key.job_id < 0}
    kept = fold(evaluation.findings, runs, names)
    memory = dict(evaluation.memory)
    for found in evaluation.findings:
        if any(job.job_id < 0 for job in found.jobs) or found in kept:
            continue
        # A node's failure its workflow announced was not announced as the job's: its
        # next success is no recovery of the job (the workflow's is announced).
        for job in found.jobs:
            before = known[job].rules if job in known else EMPTY
            if job in memory:
                memory[job] = replace(
                    memory[job], announced=before.announced, last_failure=before.last_failure
                )
    return Evaluation(tuple(kept), memory)


def _hold(book: HeldBook, held: list[HeldAlert]) -> dict[str, tuple[Held, ...]]:
    if not book and not held:
        return {}  # what hold() makes of nothing, without loading it
    from schedulerx_alert.core.silence_hold import (
        hold,  # only silences and quiet hours hold alerts back
    )

    return hold(book, held)


def route(
    findings: Iterable[Finding],
    targets: Mapping[JobKey, Target],
    now: float,
    *,
    delivered: dict[str, float] | None = None,
    shared_cause_min_jobs: int | None = DEFAULT_MIN_JOBS,
    policy: Policy | None = None,
    held: list[HeldAlert] | None = None,
) -> list[Alert]:
    """Findings -> alerts, one per receiver: the one place where it is decided who
    hears of what.

    A finding goes to the receivers of the watch entries that hold its jobs, then to
    those of `routes:` (`policy`, core/routing.py). What a dead tick's checkpoints
    show as delivered to a receiver (`delivered`, consumed here) is not owed again.
    What a silence or the receiver's quiet hours hold back now is appended to `held`
    instead (counted, never sent as such: a digest lists it when the holder is over).
    Then each receiver's failures that share an error become one shared-cause alert
    listing the jobs that receiver watches.
    """
    delivered = {} if delivered is None else delivered
    held = [] if held is None else held
    owed: dict[str, list[Finding]] = {}
    for found in findings:
        owners = [
            (j, targets[j].job_name, targets[j].receivers) for j in found.jobs if j in targets
        ]
        if policy is None:
            receivers = list(dict.fromkeys(r for _, _, watch in owners for r in watch))
        else:
            receivers = policy.receivers(found, owners)
        for receiver in receivers:
            if delivered.pop(f"{receiver_key(receiver)}:{found.fingerprint}", None) is not None:
                continue
            kept = policy.hold(found, owners, receiver, now) if policy else None
            if kept is None:
                owed.setdefault(receiver, []).append(found)
            else:
                held.append(kept)
    alerts: list[Alert] = []
    routed: dict[JobKey, set[str]] = {}
    for receiver, theirs in owed.items():
        for found in theirs:
            for job in found.jobs:
                routed.setdefault(job, set()).add(receiver)
    for receiver, theirs in owed.items():
        if shared_cause_min_jobs is not None:
            theirs = group_shared_causes(theirs, shared_cause_min_jobs)
        for one in theirs:
            one = trim(one)
            names = tuple((targets[j].job_name or "") if j in targets else "" for j in one.jobs)
            peers = tuple(sorted(set().union(*(routed.get(j, set()) for j in one.jobs))))
            alerts.append(Alert(receiver, one, now, names, peers=peers))
    return alerts


def reroute(
    alert: Alert,
    targets: Mapping[JobKey, Target],
    now: float,
    owed: set[str],
    policy: Policy | None = None,
    held: list[HeldAlert] | None = None,
) -> list[Alert] | None:
    """A pending alert whose receiver is no longer configured, owed instead to the
    receivers its finding routes to now (`route`'s choice) that are not owed it already
    (`owed`: alert keys, updated); None when it routes to no one. What a silence or quiet
    hours hold back for one of them goes to `held`. A receiver the finding was routed to
    when the alert was made (`peers`) had its own copy and is skipped; an alert written
    before peers were kept goes to every current receiver: twice beats never."""
    found = alert.finding
    owners = [(j, targets[j].job_name, targets[j].receivers) for j in found.jobs if j in targets]
    if policy is None:
        chosen = list(dict.fromkeys(r for _, _, watch in owners for r in watch))
    else:
        chosen = policy.receivers(found, owners)
    if not chosen:
        return None
    moved: list[Alert] = []
    for receiver in chosen:
        key = f"{receiver_key(receiver)}:{found.fingerprint}"
        if key in owed or receiver in alert.peers:
            continue
        owed.add(key)
        kept = policy.hold(found, owners, receiver, now) if policy else None
        if kept is None:
            moved.append(replace(alert, receiver=receiver))
        elif held is not None:
            held.append(kept)
    return moved


def _history(
    key: JobKey,
    previous: JobRecord | None,
    instances: Sequence[JobInstance],
    cutoff: float,
    first_poll: bool,
    covered: float = math.inf,
) -> JobHistory:
    """The job as the rules see it: the listing, and the outcomes the state already knows.

    An instance the state has a record of is seen with the record's status; its attempt
    is the listed one unless the listing shows a new attempt (a re-run), so an outcome
    is new exactly when the record's status or attempt differs.
    """
    known = previous.instances if previous else {}
    seen: dict[int, Seen] = {}
    for inst in instances:
        before = known.get(inst.instance_id)
        if before is not None:
            same = not _new_attempt(before, inst)
            seen[inst.instance_id] = Seen(before.status, inst.attempt if same else before.end)
    # A job we have never polled has a past we did not watch: its outcomes before the
    # lookback count towards streaks but are not announced.
    return JobHistory(key, tuple(instances), seen, cutoff if first_poll else None, covered)


def _quiet_failures(history: JobHistory, settings: RuleSettings) -> list[JobInstance]:
    return [
        inst
        for inst in history.outcomes()
        if is_failure(inst, settings) and admitted(inst, settings) and history.quiet(inst)
    ]


def _alerted(
    findings: Iterable[Finding], quiet: Iterable[JobInstance]
) -> dict[tuple[JobKey, int], tuple[str, ...]]:
    """Per run, the status labels announced (or recorded as history) this tick."""
    out: dict[tuple[JobKey, int], tuple[str, ...]] = {}
    runs = [i for f in findings if f.is_run_failure for i in f.instances]
    for inst in (*runs, *quiet):
        where = (inst.job, inst.instance_id)
        if inst.status_label not in out.get(where, ()):
            out[where] = (*out.get(where, ()), inst.status_label)
    return out


def _record(
    previous: JobRecord | None,
    instances: Sequence[JobInstance],
    now: float,
    max_unlisted: int,
    alerted_now: Mapping[tuple[JobKey, int], tuple[str, ...]],
    memory: JobRuleState,
    complete: bool = True,
    settled: float = SETTLED_SECONDS,
) -> JobRecord:
    known = previous.instances if previous else {}
    records: dict[int, InstanceRecord] = {}
    for inst in instances:
        before = known.get(inst.instance_id)
        alerted = before.alerted if before else ()
        if before is not None and _new_attempt(before, inst):
            alerted = ()  # re-run of the same instance: a new attempt
        for kind in alerted_now.get((inst.job, inst.instance_id), ()):
            if kind not in alerted:
                alerted = (*alerted, kind)
        record = InstanceRecord(inst.status_code, now, alerted, attempt_of(inst))
        if _end_unlisted(inst) and before is not None:
            # Keep the attempt we know, or the next listing that shows its
            # end would look like a new attempt and be announced again.
            record = replace(record, end=before.end, end_v1=before.end_v1)
        records[inst.instance_id] = record

    # A success let go and listed again is told from a new one by the rules' memory of
    # the latest outcome (core/rules/engine.py): a job without one keeps its successes.
    newest: AbstractSet[int] | None = None
    if memory.last_outcome_at is not None:
        newest = _newest(records, known) if complete else frozenset()
    for iid in _kept_unlisted(known, records, now, max_unlisted, newest, settled):
        records[iid] = known[iid]
    polled_at = now if complete else (previous.polled_at if previous else None)
    return JobRecord(instances=records, polled_at=polled_at, rules=memory)


def _kept_unlisted(
    known: Mapping[int, InstanceRecord],
    listed: Mapping[int, InstanceRecord],
    now: float,
    max_unlisted: int,
    newest: AbstractSet[int] | None,
    settled: float,
) -> list[int]:
    """The runs of `known` not `listed` whose records are kept: the newest `max_unlisted`
    seen within the retention, but for successes `settled` where `newest` (the runs a
    job's own listing shows) says they may go (None: none may)."""
    unlisted = sorted(
        (
            (record.seen, iid)
            for iid, record in known.items()
            if iid not in listed
            and now - record.seen < RETENTION_SECONDS
            and (newest is None or iid in newest or not _settled(record, now, settled))
        ),
        reverse=True,
    )
    return [iid for _, iid in unlisted[:max_unlisted]]


def _unlisted_only(record: JobRecord, now: float, max_unlisted: int, settled: float) -> JobRecord:
    """`_record` of a group query that listed none of the job's runs (its `polled_at` is
    kept); `record` itself when it would keep every run, as it mostly does. A job its own
    listing has read (`polled_at`) keeps that listing's newest runs, as `_record` does."""
    known = record.instances
    newest: AbstractSet[int] | None = None
    if record.rules.last_outcome_at is not None:
        newest = frozenset() if record.polled_at is None else _newest({}, known)
    kept = _kept_unlisted(known, {}, now, max_unlisted, newest, settled)
    if len(kept) == len(known):
        return record
    return replace(record, instances={iid: known[iid] for iid in kept})


def _newest(listed: Mapping[int, InstanceRecord], known: Mapping[int, InstanceRecord]) -> set[int]:
    # By instance id: SchedulerX numbers a job's runs in the order it creates them (as
    # far as seen; were it not so, the rules' memory still keeps a success let go from
    # ending a streak).
    return set(heapq.nlargest(KEPT_NEWEST, known.keys() | listed.keys()))


def _settled(record: InstanceRecord, now: float, settled: float) -> bool:
    """A success nothing was announced for, unlisted for longer than `settled` (twice what
    a window reads again)."""
    return (
        record.status == InstanceStatus.SUCCESS
        and not record.alerted
        and now - record.seen > settled
    )


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
