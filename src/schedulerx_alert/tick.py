"""One tick: lease, poll, diff, deliver, commit, summarise.

Every edge is passed in (see `Edges`), so the same code runs on FC, from the
CLI, in the demo and against the tests' loopback servers.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from schedulerx_alert.config import Config
from schedulerx_alert.config.timing import DEPLOYED_TIMEOUT, Timing
from schedulerx_alert.core.diff import DiffResult, DiffSettings, Reading, Target, diff
from schedulerx_alert.core.heartbeat_record import HeartbeatRecord
from schedulerx_alert.core.model import JobInstance, JobKey
from schedulerx_alert.core.state import Alert, HealthRecord, State, TickRecord
from schedulerx_alert.delivery.alert_log import log_outcomes
from schedulerx_alert.delivery.channels.dingtalk import Receiver
from schedulerx_alert.delivery.health import IMPAIRED, assess, health_message
from schedulerx_alert.delivery.held_digests import (
    action_links,
    action_problems,
    held_note,
    read_silences,
    send_digests,
)
from schedulerx_alert.delivery.outbox import WINDOW_SECONDS, Delivery, DeliveryReport, Notice
from schedulerx_alert.delivery.render import Renderer
from schedulerx_alert.sources.discovery import (
    rule_for_unlisted,
    same_watch,
    unmatched,
    watched_jobs,
)
from schedulerx_alert.sources.fetch import CallBudget, RetryPolicy
from schedulerx_alert.sources.jobinfo import refresh as refresh_job_info
from schedulerx_alert.sources.plan import DUE, Budget, Discover, JobPoll, Plan, make_plan, overlap
from schedulerx_alert.sources.poll import (
    GET_INSTANCE,
    JOB_INFO,
    LIST,
    LIST_JOBS,
    Budgets,
    Calls,
    Known,
    PollResult,
    execute,
    merge,
    refused_groups,
)
from schedulerx_alert.sources.schedulerx import SchedulerXClient
from schedulerx_alert.sources.workflows import WorkflowRead, read_workflows
from schedulerx_alert.storage.fallback import LocalHealth, LocalHealthFile, fold
from schedulerx_alert.storage.session import LeaseHeld, LeaseLost, StateRefused, StateSession
from schedulerx_alert.storage.store import StateStore, StoreError
from schedulerx_alert.support.process_log import Progress, progress_reporter

if TYPE_CHECKING:
    from schedulerx_alert.core.catalog import JobInfo
    from schedulerx_alert.core.polling import SourceState
    from schedulerx_alert.core.silence import Silence

log = logging.getLogger("schedulerx_alert")


@dataclass
class Edges:
    """Everything a tick talks to, built by the caller."""

    # None when no store could be opened; `store_problem` says why.
    store: StateStore | None
    state_key: str
    schedulerx: SchedulerXClient | None
    receivers: Mapping[str, Receiver]
    renderer: Renderer
    owner: str = "local"
    # The function's timeout: the lease's lifetime and the tick's time budget.
    timeout: float = DEPLOYED_TIMEOUT
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    credentials_problem: str | None = None
    # The config this tick should have run with was unreadable or refused (config/source.py).
    config_problem: str | None = None
    store_problem: str | None = None
    # Per-call timeouts and reserves; derived from `timeout` when not given.
    timing: Timing | None = None
    # Counts broken ticks while the state cannot be read.
    local_health: LocalHealthFile | None = None
    progress: Progress = field(default_factory=progress_reporter)  # e.g. ("jobs polled", 4, 9)
    # What SchedulerX says about the jobs themselves (schedule, timeout), from the state
    # this tick loaded: see `catalog_of`.
    catalog: Callable[[State], Mapping[JobKey, JobInfo]] | None = None


@dataclass
class TickSummary:
    status: str = "ok"
    jobs: int = 0
    polled: int = 0
    deferred: int = 0
    api_calls: int = 0
    # Calls per SchedulerX API (GetJobInstanceList, ListJobs, GetJobInfo).
    calls: dict[str, int] = field(default_factory=dict)
    instances: int = 0
    alerts_new: int = 0
    alerts_sent: int = 0
    alerts_pending: int = 0
    # Alerts silences or quiet hours held back this tick: counted, listed by a digest later.
    alerts_silenced: int = 0
    messages: int = 0
    history: int = 0
    # Consecutive ticks, this one included, that were degraded or failed.
    broken_ticks: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    # Listed runs that could not be read: job, instance, field, value, reason, outcome.
    entry_problems: list[dict[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    duration_ms: int = 0
    dry_run: bool = False
    preview: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": "tick", **self.__dict__}
        if not self.dry_run:
            del out["preview"], out["dry_run"]
        return out


def targets_of(
    config: Config,
    catalog: Mapping[JobKey, JobInfo] | None = None,
    listed: Iterable[JobKey] = (),
) -> dict[JobKey, Target]:
    """The watched jobs: named by id, found in their group's job list (`catalog`), or
    `listed` this tick by a group whose job list does not show them yet."""
    watched = watched_jobs(config, catalog or {})
    targets = {
        key: Target(w.name, w.rule.receivers, w.rule.alert_on, w.rule.rules)
        for key, w in watched.items()
    }
    for key in listed:
        rule = None if key in targets else rule_for_unlisted(config, key)
        if rule is not None:
            targets[key] = Target(None, rule.receivers, rule.alert_on, rule.rules)
    return targets


def _with_listed(
    config: Config, targets: Mapping[JobKey, Target], listed: Iterable[JobKey]
) -> dict[JobKey, Target]:
    """`targets_of(config, catalog, listed)` from `targets_of(config, catalog)` (`targets`),
    without going through the catalog again."""
    out = dict(targets)
    for key in listed:
        rule = None if key in out else rule_for_unlisted(config, key)
        if rule is not None:
            out[key] = Target(None, rule.receivers, rule.alert_on, rule.rules)
    return out


def catalog_of(edges: Edges, state: State) -> Mapping[JobKey, JobInfo]:
    """The job records (core/catalog.py) the rules read: a cron's fire times for missed
    runs, the job's own timeout for stuck runs. Discovery keeps them in the state; a
    test may supply its own. Without one, a job is never called missed and is stuck
    only after its watch entry's `stuck_after`."""
    return edges.catalog(state) if edges.catalog is not None else state.catalog


def run_tick(config: Config, edges: Edges, dry_run: bool = False) -> TickSummary:
    # A tick builds its state's objects (tens of thousands) and drops them in one go,
    # cycles hardly ever: the collector's passes over them as they grew cost a tenth of
    # a large tick's CPU and found next to nothing. It runs again once the tick is over.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _run_tick(config, edges, dry_run)
    finally:
        if collecting:
            gc.enable()


def _run_tick(config: Config, edges: Edges, dry_run: bool) -> TickSummary:
    clock = edges.clock
    started = clock()
    timing = edges.timing or Timing.of(config, edges.timeout)
    # Stop starting work early enough to commit before FC kills the function,
    # and stop polling early enough that what was found can still be sent.
    deadline = started + timing.send_until
    poll_deadline = started + timing.poll_until
    summary = TickSummary(dry_run=dry_run)
    targets = targets_of(config)
    summary.jobs = len(targets)
    # Most fundamental first: the first problem is the reason the health record keeps.
    if edges.credentials_problem:
        summary.problems.append(edges.credentials_problem)
    if edges.config_problem:
        summary.problems.append(edges.config_problem)
    summary.problems.extend(timing.problems())
    summary.problems.extend(action_problems(config))
    if edges.store is None:
        return _unreadable(config, edges, summary, f"{edges.store_problem}", deadline, started)
    session = StateSession(edges.store, edges.state_key, edges.owner, edges.timeout, clock)
    try:
        # A dry run sees the state as the next tick will: with what ticks that died
        # before their commit recorded as delivered.
        state = session.inspect().state if dry_run else session.begin()
    except LeaseHeld as exc:
        summary.problems.clear()
        summary.status = "skipped"
        summary.notes.append(str(exc))
        return _finish(summary, started, clock)
    except (StoreError, StateRefused) as exc:
        return _unreadable(config, edges, summary, str(exc), deadline, started)
    summary.notes.extend(session.notes)
    targets = targets_of(config, state.catalog)
    summary.jobs = len(targets)
    local = None if dry_run or edges.local_health is None else edges.local_health.load()
    if local is not None:
        state = fold(state, local)
        summary.notes.append(
            f"folded in {local.health.broken_ticks} broken tick(s) counted on this instance "
            "while the state could not be read"
        )

    try:
        # Under the lease: the silence book is compacted by one tick at a time.
        silences = read_silences(config, edges.store, edges.state_key, clock(), compact=not dry_run)
        summary.problems.extend(silences.problems)
        summary.notes.extend(silences.notes)
        read, api_calls, targets = _read(
            config, edges, targets, state, poll_deadline, timing, summary
        )
        polls = read.polls()
        summary.jobs = len(targets)
        summary.polled = read.read(targets)
        flows = _workflows(config, edges, state, read.sources, poll_deadline, summary, polls)
        polls = {**polls, **flows.polls}
        targets = {**targets, **flows.targets}
        reading = Reading(
            polls,
            partial=set(polls) - read.complete - set(flows.polls),
            first=read.first | {key for key in flows.polls if key not in state.jobs},
            covered=read.covered(targets),
            catalog=catalog_of(edges, state),
            workflows=flows.runs if config.workflows else None,
        )
        settings = DiffSettings(
            config.first_run_lookback.total_seconds(),
            pending_max_age=config.pending_max_age.total_seconds(),
            zone=config.timezone,
            shared_cause_min_jobs=config.shared_cause_min_jobs,
            policy=silences.policy(config),
            # A success is let go once no window would read it again: on the end time
            # that is minutes, not the half hour a schedule or start time needs.
            settled=2 * overlap(read.sources.server),
        )
        updated = state.with_updates(catalog=read.catalog, sources=flows.sources)
        result = diff(updated, reading, targets, clock(), settings)
        summary.alerts_new = len(result.alerts)
        summary.alerts_silenced = len(result.held)
        summary.notes.extend(filter(None, [held_note(result.held)]))
        summary.history = len(result.history)
        result = _report_dropped(result, config, summary)
        # Owners and log lines for the new alerts that ask for them, in polling's time.
        result = _gather(config, edges, result, poll_deadline, summary)

        if dry_run:
            _preview(result.state, edges, config, summary, deadline)
            return _finish(summary, started, clock)

        def checkpoint(progress: DeliveryReport) -> None:
            # Record each accepted message before sending the next, so a crash
            # re-announces at most the message DingTalk had just accepted.
            session.checkpoint(
                progress.delivered, progress.robots, api_calls, margin=timing.commit_margin
            )

        delivery = Delivery(
            edges.receivers,
            edges.renderer,
            result.state.robots,
            deadline,
            config.dingtalk.summary_threshold,
            clock,
            edges.sleep,
            settle=timing.store_call,
            links=action_links(config, clock),
        )
        report = delivery.alerts(result.state.outbox, checkpoint, result.state.expired)
        summary.alerts_sent = len(report.delivered)
        summary.alerts_pending = len(report.pending)
        summary.messages = report.messages
        summary.problems.extend(report.problems)
        summary.notes.extend(report.notes)
        # One log line per alert and outcome, for SLS (alert_log.py).
        log_outcomes(
            edges.receivers, sent=report.delivered, held=result.held, pending=report.pending,
            dropped=result.dropped, expired=result.expired,
        )  # fmt: skip

        new_state = result.state.mentioned(report.mentioned).with_updates(
            outbox=tuple(report.pending),
            robots=report.robots,
            api_calls=api_calls,
        )
        markers: list[Alert] = []

        def journal(marker: Alert) -> None:
            # A digest or heartbeat a robot took, checkpointed like an alert.
            markers.append(marker)
            delivered = [*delivery.report.delivered, *markers]
            session.checkpoint(delivered, delivery.report.robots, api_calls)

        digests = send_digests(
            config, delivery, new_state.silenced, silences, clock(), new_state.delivered, journal
        )
        summary.messages += digests.messages
        summary.notes.extend(digests.notes)
        new_state = new_state.with_updates(
            silenced=digests.book,
            robots=delivery.report.robots,
            delivered={k: t for k, t in new_state.delivered.items() if k not in digests.consumed},
        )
        if config.actions is not None and config.actions.operations:
            # Follow-ups of operations from the chat that DingTalk refused at the click.
            from schedulerx_alert.delivery.followups import post_follow_ups

            posted = post_follow_ups(config, edges.store, edges.state_key, delivery, clock())
            summary.messages += posted.messages
            summary.notes.extend(posted.notes)
            summary.problems.extend(posted.problems)
        new_state = _watch_health(config, delivery, new_state, summary)
        new_state = _heartbeat(
            config, edges, delivery, state, new_state, result, polls, targets, summary,
            silences.silences, journal,
        )  # fmt: skip
        summary.status = _status(summary)
        new_state = _count_tick(config, new_state, summary, started, local)
        new_state = new_state.with_updates(
            last_tick=_record(summary, started, clock(), edges.owner)
        )
        session.commit(new_state, margin=timing.commit_margin, sleep=edges.sleep)
        if local is not None and edges.local_health is not None:
            edges.local_health.clear()
    except LeaseLost as exc:
        summary.problems.append(str(exc))
    except StoreError as exc:
        summary.problems.append(f"state not saved: {exc}; the next tick repeats this one")
        session.release()
    except BaseException:
        session.release()
        raise
    summary.status = _status(summary)
    return _finish(summary, started, clock)


def _status(summary: TickSummary) -> str:
    if not summary.problems:
        return summary.status
    # A tick that polled or delivered something was of some use.
    return "degraded" if summary.polled or summary.alerts_sent else "failed"


def _record(summary: TickSummary, started: float, now: float, owner: str) -> TickRecord:
    """What `state show` tells of this tick; written with the commit, so only a
    tick that committed is ever the last one."""
    return TickRecord(
        status=summary.status,
        at=started,
        duration_ms=int((now - started) * 1000),
        owner=owner,
        jobs=summary.jobs,
        polled=summary.polled,
        alerts_new=summary.alerts_new,
        alerts_sent=summary.alerts_sent,
        alerts_pending=summary.alerts_pending,
        problems=len(summary.problems),
        problem=summary.problems[0] if summary.problems else None,
    )


def _report_dropped(result: DiffResult, config: Config, summary: TickSummary) -> DiffResult:
    """One problem each for alerts no longer configured and alerts owed too long; the
    result with the counts of receivers no longer configured moved to one that is."""
    if result.dropped:
        by_receiver = Counter(a.receiver for a in result.dropped)
        who = ", ".join(f"{name}: {n}" for name, n in sorted(by_receiver.items()))
        summary.problems.append(
            f"dropped {len(result.dropped)} pending alert(s) whose job is no longer watched "
            f"or routes to no configured receiver ({who}); the next summary to each receiver "
            "gives the count"
        )
    if result.expired:
        hours = config.pending_max_age.total_seconds() / 3600
        by_receiver = Counter(a.receiver for a in result.expired)
        who = ", ".join(f"{name}: {n}" for name, n in sorted(by_receiver.items()))
        summary.problems.append(
            f"dropped {len(result.expired)} pending alert(s) undelivered for more than "
            f"{hours:g} h ({who}); the next summary to each receiver gives the count"
        )
    counts = result.state.expired
    gone = {name: n for name, n in counts.items() if name not in config.receivers}
    heir = config.health.receiver or next(iter(config.receivers), None)
    if not gone or heir is None:
        return result
    # Counts for a receiver no one can send to: the health receiver (else the first
    # configured one) is told instead, so the count still reaches a group.
    moved = {name: n for name, n in counts.items() if name not in gone}
    moved[heir] = moved.get(heir, 0) + sum(gone.values())
    return replace(result, state=result.state.with_updates(expired=moved))


def _read(
    config: Config,
    edges: Edges,
    targets: Mapping[JobKey, Target],
    state: State,
    deadline: float,
    timing: Timing,
    summary: TickSummary,
) -> tuple[PollResult, tuple[float, ...], dict[JobKey, Target]]:
    """Plan this tick's calls and make them; also the GetJobInstanceList call times to keep
    for the next tick's quota (the other APIs' are in the sources' state), and the watched
    jobs as this tick knows them now (`targets_of` what it read)."""
    budgets = Budgets(
        config.schedulerx.max_calls_per_minute,
        {LIST: state.api_calls, **state.sources.calls},
        edges.clock,
    )
    if edges.schedulerx is None:
        unread = PollResult(sources=state.sources, catalog=dict(state.catalog))
        return unread, budgets[LIST].recent(), targets_of(config, unread.catalog, unread.polls())
    now = edges.clock()
    client = edges.schedulerx
    sources, catalog = state.sources, state.catalog

    calls = Calls(
        client,
        budgets,
        deadline,
        config.schedulerx.concurrency,
        edges.retry,
        edges.clock,
        edges.sleep,
        edges.progress,
    )

    def plan_and_run(the_plan: Plan) -> PollResult:
        return execute(config, the_plan, Known(sources, catalog, state.jobs, targets), calls)

    def plan(only: Config = config) -> Plan:
        # What frees in the sliding minute before the last call may start is this tick's.
        by = deadline - client.timeout
        budget = Budget(
            budgets.left(LIST, by), budgets.left(LIST_JOBS, by), budgets.left(GET_INSTANCE, by)
        )
        return make_plan(only, sources, catalog, state.jobs, targets, now, budget)

    the_plan = plan()
    first_lists = tuple(t for t in the_plan.tasks(DUE) if isinstance(t, Discover))
    lists = None
    if first_lists:
        # Which jobs to poll depends on job lists never read: read them, then plan again.
        lists = plan_and_run(replace(the_plan, phases=((DUE, first_lists),)))
        sources, catalog = lists.sources, lists.catalog
        targets = targets_of(config, catalog)
        the_plan = plan()
    result = plan_and_run(the_plan)
    if lists is not None:
        result.calls.update(lists.calls)
        result.notes[:0] = lists.notes
        result.group_errors = {**lists.group_errors, **result.group_errors}
    plans = [the_plan]
    refused = refused_groups(the_plan, result)
    if refused:
        # A group whose queries were refused just now is polled job by job in this tick,
        # with the calls and time left, not from the next: its fires of this minute would
        # wait a tick more (issue 22). The other groups are not planned, so not read, again.
        alone = tuple(r for r in config.watch if (r.namespace, r.group) in refused)
        if not same_watch(catalog, result.catalog):
            targets = targets_of(config, result.catalog)
        sources, catalog = result.sources, result.catalog
        plans.append(plan(replace(config, watch=alone)))
        polls = tuple(
            (name, tuple(t for t in tasks if isinstance(t, JobPoll)))
            for name, tasks in plans[-1].phases
        )
        result = merge(result, plan_and_run(replace(plans[-1], phases=polls)))
    known = refresh_job_info(
        config,
        client,
        result.catalog,
        budgets,
        deadline,
        now,
        edges.retry,
        edges.clock,
        edges.sleep,
    )
    result.calls[JOB_INFO] += known.calls
    result.notes.extend(known.notes)
    result.sources = replace(
        result.sources, calls={a: t for a, t in budgets.recent().items() if a != LIST and t}
    )
    deferred = sum(count for p in plans for phase, count in p.deferred if phase == DUE)
    summary.deferred = len(result.deferred) + deferred
    summary.api_calls = result.calls[LIST]
    summary.calls = {action: n for action, n in sorted(result.calls.items()) if n}
    summary.instances = sum(len(v) for v in result.listings.values())
    summary.notes.extend(note for p in plans for note in p.notes)
    summary.notes.extend(result.notes)
    for job, error in sorted(result.errors.items()):
        summary.errors.append({"job": str(job), "error": error})
        log.warning("job %s: %s", job, error)
    for group, error in sorted(result.group_errors.items()):
        summary.errors.append({"group": f"{group[0]}/{group[1]}", "error": error})
        log.warning("group %s/%s: %s", group[0], group[1], error)
    for problem in result.entry_problems:
        summary.entry_problems.append(problem.as_dict())
        log.warning("%s", problem)
    # The jobs this tick knows of now: a first tick learns them from the job lists it read.
    if same_watch(catalog, result.catalog):  # a job list read again: mostly the same jobs
        known_now = _with_listed(config, targets, result.polls())
    else:
        known_now = targets_of(config, result.catalog, result.polls())
    summary.jobs = len(known_now)
    summary.problems.extend(
        _read_problems(timing, summary, result, budgets[LIST], summary.deferred, now)
    )
    summary.problems.extend(
        unmatched(config, result.catalog, result.sources.groups, result.group_errors)
    )
    summary.problems.extend(known.problems)
    summary.problems.extend(result.problems)
    return result, budgets[LIST].recent(), known_now


def _workflows(
    config: Config,
    edges: Edges,
    state: State,
    sources: SourceState,
    deadline: float,
    summary: TickSummary,
    polls: Mapping[JobKey, Sequence[JobInstance]],
) -> WorkflowRead:
    """The watched workflows' instances (sources/workflows.py), counted in the summary."""
    flows = read_workflows(
        config, edges.schedulerx, state, sources, deadline, edges.retry, edges.clock,
        edges.sleep, polls,
    )  # fmt: skip
    for action, count in flows.calls.items():
        if count:
            summary.calls[action] = summary.calls.get(action, 0) + count
    # A workflow is watched and polled as a job is (its instances are its runs).
    summary.jobs += len(flows.targets)
    summary.polled += len(flows.polls)
    summary.instances += sum(len(runs) for runs in flows.polls.values())
    summary.problems.extend(flows.problems)
    return flows


def _read_problems(
    timing: Timing,
    summary: TickSummary,
    result: PollResult,
    budget: CallBudget,
    deferred: int,
    now: float,
) -> list[str]:
    """One line per way this tick failed to see a job: each leaves the monitor deaf to it."""
    problems = []
    jobs = summary.jobs
    if result.errors:
        job, first = sorted(result.errors.items())[0]
        listed = result.listings or result.groups_read
        if not listed and result.auth_errors >= len(result.errors):
            problems.append(f"SchedulerX rejects the function's credentials: {first}")
        elif not listed:
            problems.append(f"every job's listing failed ({len(result.errors)}), e.g. {first}")
        else:
            problems.append(
                f"{len(result.errors)} of {jobs} job(s) could not be listed, e.g. {job}: {first}"
            )
    if result.group_errors:
        (namespace, group), first = sorted(result.group_errors.items())[0]
        problems.append(
            f"{len(result.group_errors)} group(s) could not be read, "
            f"e.g. {namespace}/{group}: {first}"
        )
    deaf = [p for p in result.entry_problems if p.deafens]
    if deaf:
        problems.append(
            f"{len(deaf)} listed run(s) left out or in an unknown status, e.g. {deaf[0]}"
        )
    if len(budget.recent()) >= budget.limit or (result.stopped and "time" not in result.stopped):
        why = (
            f"SchedulerX quota used up: {budget.limit} calls a minute, "
            "schedulerx.max_calls_per_minute"
        )
    elif not result.stopped:
        # Nothing ran out while reading: the plan left it out, for what the sliding minute
        # still held of the last tick's calls when this one began.
        why = (
            f"SchedulerX quota: the plan fits what the sliding minute left of {budget.limit} "
            "calls a minute, schedulerx.max_calls_per_minute"
        )
    else:
        why = (
            f"no time left: polling stops {timing.poll_until:.3g}s into the "
            f"{timing.function_timeout:g}s function timeout"
        )
    if deferred:
        problems.append(
            f"{deferred} of {jobs} job(s) not polled this tick ({why}); they go first next tick"
        )
    behind = {g: lo for g, lo in result.behind.items() if g not in result.group_errors}
    if behind:
        (namespace, group), since = min(behind.items(), key=lambda item: item[1])
        minutes = max(0.0, (now - since) / 60)
        problems.append(
            f"{len(behind)} group(s) not read up to now ({why}), e.g. {namespace}/{group} "
            f"from {minutes:.0f} min ago; they go first next tick"
        )
    late = {g: lo for g, lo in result.catching_up.items() if g not in behind}
    if late:
        (namespace, group), since = min(late.items(), key=lambda item: item[1])
        problems.append(
            f"{len(late)} group(s) still catching up on older runs ({why}), e.g. "
            f"{namespace}/{group} from {max(0.0, (now - since) / 60):.0f} min ago; "
            "newer runs are read first"
        )
    return problems


def _preview(
    state: State, edges: Edges, config: Config, summary: TickSummary, deadline: float
) -> None:
    """What this tick would send, made by the delivery a tick sends with (its budgets,
    merging, mentions, buttons and the channel's payload); nothing is sent."""
    from schedulerx_alert.delivery.rehearsal import rehearsals

    shown: list[dict[str, str]] = []
    delivery = Delivery(
        rehearsals(edges.receivers, shown),
        edges.renderer,
        state.robots,
        deadline,
        config.dingtalk.summary_threshold,
        edges.clock,
        lambda _seconds: None,
        links=action_links(config, edges.clock),
    )
    delivery.alerts(state.outbox, None, state.expired)
    summary.preview.extend(shown)
    summary.alerts_pending = len(state.outbox)


def _health_notice(config: Config, announce: str, health: HealthRecord) -> Notice | None:
    """The notice for the health receiver, or another receiver when it cannot take it."""
    name = config.health.receiver
    if name is None:
        return None
    others = tuple(r for r in config.receivers if r != name)
    message = health_message(announce, health, config.templates.language)
    return Notice(message, (name, *others))


def _announce(
    config: Config,
    delivery: Delivery,
    announce: str,
    health: HealthRecord,
    summary: TickSummary,
) -> bool:
    """Send a health notice within the robots' budgets; whether it went."""
    notice = _health_notice(config, announce, health)
    if notice is None:
        return True
    before = delivery.report.messages
    taken = delivery.notice(notice)
    summary.messages += delivery.report.messages - before
    what = "alerting is impaired" if announce == IMPAIRED else "alerting works again"
    if taken is not None:
        summary.notes.append(f"told {taken} that {what}")
        return True
    why = delivery.report.unannounced[-1][1]
    summary.problems.append(f"could not tell anyone that {what} ({why}); trying again next tick")
    return False


def _watch_health(config: Config, delivery: Delivery, state: State, summary: TickSummary) -> State:
    # Every problem so far left the monitor deaf to a job or mute towards a group.
    health, announce = assess(state.health, summary.problems, config.health.impaired_after)
    summary.broken_ticks = health.broken_ticks
    if announce is not None and not _announce(config, delivery, announce, health, summary):
        # Not announced after all: try again on the next tick.
        health = replace(health, impaired_announced=state.health.impaired_announced)
    return state.with_updates(health=health, robots=delivery.report.robots)


def _heartbeat(
    config: Config,
    edges: Edges,
    delivery: Delivery,
    before: State,
    state: State,
    result: DiffResult,
    polls: Mapping[JobKey, Any],
    targets: Mapping[JobKey, Target],
    summary: TickSummary,
    silences: Iterable[Silence],
    journal: Callable[[Alert], None],
) -> State:
    """Count this tick's runs and held alerts for the daily digest and send the digest
    when it is due (heartbeat.py); a digest a robot took is checkpointed at once, like
    an alert."""
    if config.heartbeat is None:
        # Counters left from before are dropped (heartbeat.disabled), without loading it.
        return state.with_updates(heartbeat=HeartbeatRecord())
    from schedulerx_alert.delivery import (
        heartbeat,  # counting and the digest: only with `heartbeat:` configured
    )

    state = heartbeat.observe(
        config, before, state, polls, targets, result.findings, summary.calls, edges.clock(),
        result.held,
    )  # fmt: skip
    now = edges.clock()
    state = heartbeat.send_if_due(
        config, delivery, state, targets, now, summary.notes, summary.problems, journal,
        heartbeat.silences_of(state, silences, now),
    )  # fmt: skip
    summary.messages = delivery.report.messages
    return state


def _gather(
    config: Config, edges: Edges, result: DiffResult, deadline: float, summary: TickSummary
) -> DiffResult:
    """Owners and log lines for the new alerts whose watch entries ask for them."""
    if not result.alerts or not (
        any(r.mention_owners or r.include_log for r in config.watch)
        or any(w.mention_owners or w.include_log for w in config.workflows)
    ):
        return result  # what gather returns then; its module loads only when it can act
    from schedulerx_alert.sources.evidence import gather

    gathered = gather(
        config, edges.schedulerx, result.state, result.alerts, deadline, edges.clock, edges.sleep
    )
    summary.notes.extend(gathered.notes)
    summary.problems.extend(gathered.problems)
    for action, count in gathered.calls.items():
        if count:
            summary.calls[action] = summary.calls.get(action, 0) + count
    return replace(result, state=gathered.state)


def _count_tick(
    config: Config, state: State, summary: TickSummary, started: float, local: LocalHealth | None
) -> State:
    """This tick, by its final status, in the heartbeat's counters; and the ticks this
    instance counted while the state could not be read, each a failed one."""
    if config.heartbeat is None:
        return state  # nothing is counted (heartbeat.count_tick), and it need not load
    from schedulerx_alert.delivery import heartbeat

    first = summary.problems[0] if summary.problems else None
    state = heartbeat.count_tick(config, state, summary.status, first, started)
    if local is None:
        return state
    health = local.health
    return heartbeat.count_tick(
        config, state, "failed", health.reason, started, health.broken_ticks
    )


def _unreadable(
    config: Config,
    edges: Edges,
    summary: TickSummary,
    problem: str,
    deadline: float,
    started: float,
) -> TickSummary:
    """A tick without a state: nothing is polled or sent, and the broken tick is
    counted on this instance (see fallback.py) so the group still hears of it."""
    summary.status = "failed"
    summary.problems.insert(0, f"state unusable: {problem}")
    local = edges.local_health
    if summary.dry_run or local is None:
        return _finish(summary, started, edges.clock)
    now = edges.clock()
    previous = local.load() or LocalHealth(HealthRecord(), since=now, last=now)
    health, announce = assess(previous.health, summary.problems, config.health.impaired_after)
    summary.broken_ticks = health.broken_ticks
    summary.notes.append("broken ticks counted on this FC instance: the state cannot be read")
    robots = previous.robots
    if announce is not None:
        if now - previous.since < WINDOW_SECONDS:
            # The robots' sends of the last minute are in the state we cannot read.
            told = False
            summary.notes.append("the health notice waits until the robots' last minute is over")
        else:
            delivery = Delivery(
                edges.receivers, edges.renderer, robots, deadline, clock=edges.clock
            )
            told = _announce(config, delivery, announce, health, summary)
            robots = delivery.report.robots
        if not told:
            health = replace(health, impaired_announced=previous.health.impaired_announced)
    local.save(LocalHealth(health, previous.since, now, robots))
    return _finish(summary, started, edges.clock)


def _finish(summary: TickSummary, started: float, clock: Callable[[], float]) -> TickSummary:
    summary.duration_ms = int((clock() - started) * 1000)
    # One ERROR line per problem, so a log alert can key on the level alone.
    for problem in summary.problems:
        log.error("%s", problem)
    return summary
