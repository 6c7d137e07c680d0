"""One tick: lease, poll, diff, deliver, commit, summarise.

Every edge is passed in (see `Edges`), so the same code runs on FC, from the
CLI, in the demo and against the tests' loopback servers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .config import Config
from .deliver import DeliveryReport, Planner, deliver
from .diff import Target, diff
from .dingtalk import Receiver, TransportError
from .fetch import CallBudget, FetchResult, RetryPolicy, fetch_all
from .health import assess, health_message
from .model import JobKey
from .render import Message, Renderer
from .schedulerx import SchedulerXClient
from .session import LeaseHeld, LeaseLost, StateRefused, StateSession
from .state import State
from .store import StateStore, StoreError

log = logging.getLogger("schedulerx_alert")


@dataclass
class Edges:
    """Everything a tick talks to, built by the caller."""

    store: StateStore
    state_key: str
    schedulerx: SchedulerXClient | None
    receivers: Mapping[str, Receiver]
    renderer: Renderer
    owner: str = "local"
    # The function's timeout: the lease's lifetime and the tick's time budget.
    timeout: float = 60.0
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    credentials_problem: str | None = None


@dataclass
class TickSummary:
    status: str = "ok"
    jobs: int = 0
    polled: int = 0
    deferred: int = 0
    api_calls: int = 0
    instances: int = 0
    alerts_new: int = 0
    alerts_sent: int = 0
    alerts_pending: int = 0
    messages: int = 0
    history: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
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


def targets_of(config: Config) -> dict[JobKey, Target]:
    return {
        JobKey(rule.namespace, rule.group, job.job_id): Target(
            job.name, rule.receivers, rule.alert_on
        )
        for rule in config.watch
        for job in rule.jobs
    }


def poll_order(targets: Mapping[JobKey, Target], state: State) -> list[JobKey]:
    """Least recently polled first, so jobs deferred by the quota go first next time."""

    def last(key: JobKey) -> float:
        record = state.jobs.get(key)
        return (record.polled_at or 0.0) if record else 0.0

    return sorted(targets, key=lambda k: (last(k), k))


def run_tick(config: Config, edges: Edges, dry_run: bool = False) -> TickSummary:
    clock = edges.clock
    started = clock()
    # Stop starting work early enough to commit before FC kills the function,
    # and stop polling early enough that what was found can still be sent.
    deadline = started + edges.timeout - max(3.0, edges.timeout * 0.15)
    poll_deadline = deadline - min(15.0, edges.timeout * 0.25)
    summary = TickSummary(dry_run=dry_run)
    targets = targets_of(config)
    summary.jobs = len(targets)
    session = StateSession(edges.store, edges.state_key, edges.owner, edges.timeout, clock)
    try:
        state = session.peek() if dry_run else session.begin()
    except LeaseHeld as exc:
        summary.status = "skipped"
        summary.notes.append(str(exc))
        return _finish(summary, started, clock)
    except (StoreError, StateRefused) as exc:
        summary.status = "failed"
        summary.problems.append(f"state unusable: {exc}")
        return _finish(summary, started, clock)
    summary.notes.extend(session.notes)

    try:
        fetched, api_calls = _fetch(config, edges, targets, state, poll_deadline, summary)
        result = diff(
            state,
            fetched.polls,
            targets,
            clock(),
            config.first_run_lookback.total_seconds(),
        )
        summary.alerts_new = len(result.alerts)
        summary.history = len(result.history)
        for alert in result.dropped:
            summary.notes.append(f"dropped pending alert {alert.key}: no longer configured")

        if dry_run:
            _preview(result.state, edges, config, summary)
            return _finish(summary, started, clock)

        def checkpoint(progress: DeliveryReport) -> None:
            # Record each accepted message before sending the next, so a crash
            # re-announces at most the message DingTalk had just accepted.
            sent = {a.key for a in progress.delivered}
            session.checkpoint(
                result.state.with_updates(
                    outbox=tuple(a for a in result.state.outbox if a.key not in sent),
                    robots={**result.state.robots, **progress.robots},
                    api_calls=api_calls,
                )
            )

        report = deliver(
            result.state.outbox,
            edges.receivers,
            edges.renderer,
            result.state.robots,
            deadline,
            config.dingtalk.summary_threshold,
            clock,
            edges.sleep,
            on_delivered=checkpoint,
        )
        summary.alerts_sent = len(report.delivered)
        summary.alerts_pending = len(report.pending)
        summary.messages = report.messages
        summary.problems.extend(report.problems)

        new_state = result.state.with_updates(
            outbox=tuple(report.pending),
            robots=report.robots,
            api_calls=api_calls,
        )
        new_state = _watch_health(config, edges, new_state, fetched, report, summary)
        session.commit(new_state, sleep=edges.sleep)
    except LeaseLost as exc:
        summary.problems.append(str(exc))
    except StoreError as exc:
        summary.problems.append(f"state not saved: {exc}; the next tick repeats this one")
        session.release()
    except BaseException:
        session.release()
        raise
    if summary.problems or summary.errors:
        summary.status = "degraded" if summary.polled else "failed"
    return _finish(summary, started, clock)


def _fetch(
    config: Config,
    edges: Edges,
    targets: Mapping[JobKey, Target],
    state: State,
    deadline: float,
    summary: TickSummary,
) -> tuple[FetchResult, tuple[float, ...]]:
    """Poll the jobs; also the API call times to keep for the next tick's quota."""
    budget = CallBudget(config.schedulerx.max_calls_per_minute, state.api_calls, edges.clock)
    if edges.schedulerx is None:
        return FetchResult(), budget.recent()
    result = fetch_all(
        edges.schedulerx,
        poll_order(targets, state),
        budget,
        deadline,
        config.schedulerx.concurrency,
        edges.retry,
        edges.clock,
        edges.sleep,
    )
    summary.polled = len(result.polls)
    summary.deferred = len(result.deferred)
    summary.api_calls = result.calls
    summary.instances = sum(len(v) for v in result.polls.values())
    for job, error in sorted(result.errors.items()):
        summary.errors.append({"job": str(job), "error": error})
        log.warning("job %s: %s", job, error)
    if result.deferred:
        summary.notes.append(
            f"{len(result.deferred)} job(s) deferred to the next tick (quota or time)"
        )
    return result, budget.recent()


def _preview(state: State, edges: Edges, config: Config, summary: TickSummary) -> None:
    """Render what would be sent, send nothing."""
    by_receiver: dict[str, list[Any]] = {}
    for alert in state.outbox:
        by_receiver.setdefault(alert.receiver, []).append(alert)
    for name, alerts in by_receiver.items():
        receiver = edges.receivers.get(name)
        if receiver is None:
            continue
        planner = Planner(edges.renderer, receiver, config.dingtalk.summary_threshold)
        for batch in planner.plan(alerts, receiver.max_per_minute):
            summary.preview.append(
                {"receiver": name, "title": batch.message.title, "text": batch.message.text}
            )
    summary.alerts_pending = len(state.outbox)


def _watch_health(
    config: Config,
    edges: Edges,
    state: State,
    fetched: FetchResult,
    report: DeliveryReport,
    summary: TickSummary,
) -> State:
    health, announce = assess(
        state.health,
        summary.jobs,
        fetched,
        report,
        config.health.impaired_after,
        edges.credentials_problem,
    )
    if health.reason and health.reason not in summary.problems:
        summary.problems.append(
            f"monitor broken for {health.broken_ticks} tick(s): {health.reason}"
        )
    name = config.health.receiver
    receiver = edges.receivers.get(name) if name else None
    if name in report.unusable:
        # Telling a robot that refuses messages would only hammer it; the
        # summary line carries the problem, and the announcement waits.
        receiver = None
        if announce is not None:
            health = replace(health, impaired_announced=state.health.impaired_announced)
    if announce is not None and receiver is not None:
        message: Message = health_message(announce, health, config.templates.language)
        try:
            receiver.send(message)
        except TransportError as exc:
            summary.problems.append(f"could not tell {name} about monitor health: {exc}")
            # Not announced after all: try again on the next tick.
            health = replace(health, impaired_announced=state.health.impaired_announced)
    return state.with_updates(health=health)


def _finish(summary: TickSummary, started: float, clock: Callable[[], float]) -> TickSummary:
    summary.duration_ms = int((clock() - started) * 1000)
    # One ERROR line per problem, so a log alert can key on the level alone.
    for problem in summary.problems:
        log.error("%s", problem)
    return summary
