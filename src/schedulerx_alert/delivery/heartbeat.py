"""The daily heartbeat in the tick: count what each tick saw, send the digest when due.

The counting and the judgement are pure (core/heartbeat.py); this module feeds them
from one tick (its listings, findings, calls and status), renders the digest and hands
it to the robots like any notice about the monitor itself (`Delivery.notice`: the same
per-robot budget). A digest no robot took is owed again next tick; it is recorded as
sent only once a robot took it, and a checkpoint records that at once, so a tick that
dies after sending it does not make the next one send it again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from schedulerx_alert.config import Config
from schedulerx_alert.core import heartbeat as core
from schedulerx_alert.core.diff import Target
from schedulerx_alert.core.findings import RECOVERED, Finding
from schedulerx_alert.core.heartbeat import Digest, HeartbeatRecord, SilenceCounts, TickCounts
from schedulerx_alert.core.model import JobInstance, JobKey
from schedulerx_alert.core.polling import GROUP_QUERIES
from schedulerx_alert.core.rules.failure import admitted, is_failure
from schedulerx_alert.core.rules.history import ended_at
from schedulerx_alert.core.silence import Silence
from schedulerx_alert.core.silence_hold import HeldAlert
from schedulerx_alert.core.state import Alert, InstanceRecord, JobRecord, State, receiver_key
from schedulerx_alert.delivery.outbox import Delivery, Notice
from schedulerx_alert.delivery.render import Message, Renderer

HEARTBEAT = "heartbeat"
# A digest owed for longer than this is a problem of the tick, not a note.
OVERDUE_SECONDS = 3600.0
LABEL_CAP = 120


def tick_counts(
    previous: Mapping[JobKey, JobRecord],
    polls: Mapping[JobKey, Sequence[JobInstance]],
    targets: Mapping[JobKey, Target],
    findings: Iterable[Finding],
    calls: Mapping[str, int],
    now: float,
    lookback: float,
) -> TickCounts:
    """What one tick saw: runs it saw finish (an outcome the state did not know yet),
    the failures among them (the watch entry's `alert_on`, its trigger filter), the
    recoveries the rules found, and the calls per API. On a job's first poll, runs
    that ended before the first-run lookback are history, not today's runs."""
    runs = 0
    failures: dict[JobKey, int] = {}
    for key, listing in polls.items():
        target = targets.get(key)
        if target is None:
            continue
        before = previous.get(key)
        known = before.instances if before is not None else {}
        settings = target.settings
        for inst in listing:
            if not inst.terminal or not admitted(inst, settings):
                continue
            record = known.get(inst.instance_id)
            if _known(record, inst):
                continue
            failed = is_failure(inst, settings)
            latest = before.rules.last_outcome_at if before is not None else None
            if not failed and latest is not None and ended_at(inst, now) <= latest:
                # A success that ended no later than the job's latest outcome: as a rule
                # one listed again after its record was let go (core/diff.py `_record`),
                # counted when first seen. One listed late for the first time goes
                # uncounted: the two cannot be told apart, and counting twice is worse.
                continue
            ended = inst.end_time.timestamp() if inst.end_time is not None else now
            if before is None and ended < now - lookback:
                continue
            runs += 1
            if failed:
                failures[key] = failures.get(key, 0) + 1
    recoveries = sum(1 for f in findings if f.kind == RECOVERED)
    return TickCounts(runs, failures, recoveries, dict(calls))


def _known(record: InstanceRecord | None, inst: JobInstance) -> bool:
    """Whether the state already knows this outcome: same status, same attempt."""
    if record is None or record.status != inst.status_code:
        return False
    return record.end is None or inst.attempt in (None, record.end)


def observe(
    config: Config,
    before: State,
    after: State,
    polls: Mapping[JobKey, Sequence[JobInstance]],
    targets: Mapping[JobKey, Target],
    findings: Iterable[Finding],
    calls: Mapping[str, int],
    now: float,
    held: Iterable[HeldAlert] = (),
) -> State:
    """The state with this tick's observations counted (nothing without `heartbeat:`),
    the alerts silences and quiet hours `held` back among them."""
    if config.heartbeat is None:
        return after.with_updates(heartbeat=HeartbeatRecord())
    counts = tick_counts(
        before.jobs,
        polls,
        targets,
        findings,
        calls,
        now,
        config.first_run_lookback.total_seconds(),
    )
    counts = replace(counts, held=Counter(h.holder for h in held))
    return after.with_updates(heartbeat=core.observe(after.heartbeat, counts, now))


def silences_of(state: State, silences: Iterable[Silence], now: float) -> SilenceCounts | None:
    """The digest's silences line: the `silences` (config's and book's) active now, and
    what silences and quiet hours held back in its window, from the hourly counters
    (the held book itself is emptied by each silence digest). None when there is
    neither."""
    total, by_holder = core.held_in_window(state.heartbeat, now)
    return core.silence_counts(silences, by_holder, total, now)


def disabled(state: State) -> State:
    """Without `heartbeat:` nothing is counted, and counters left from before are dropped."""
    return state.with_updates(heartbeat=HeartbeatRecord())


def count_tick(
    config: Config, state: State, status: str, problem: str | None, now: float, ticks: int = 1
) -> State:
    """The state with this tick (or `ticks` broken ticks folded in) counted by status."""
    if config.heartbeat is None:
        return state
    return state.with_updates(
        heartbeat=core.record_tick(state.heartbeat, status, problem, now, ticks)
    )


def send_if_due(
    config: Config,
    delivery: Delivery,
    state: State,
    targets: Mapping[JobKey, Target],
    now: float,
    notes: list[str],
    problems: list[str],
    journal: Callable[[Alert], None] | None = None,
    silences: SilenceCounts | None = None,
) -> State:
    """Send the digest when it is due; the state records it only once a robot took it."""
    settings = config.heartbeat
    if settings is None:
        return state
    zone = config.zone
    record = core.arm(state.heartbeat, now, zone, settings.at)
    day = core.due(record, now, zone, settings.at)
    if day is None:
        return state.with_updates(heartbeat=record)
    receiver = settings.receiver
    if marker_key(receiver, day) in state.delivered:
        # A tick that died after a robot took this digest left a checkpoint saying so.
        notes.append(f"heartbeat for {day} was sent by a tick that did not commit")
        return state.with_updates(heartbeat=core.mark_sent(record, day, now))
    found = core.digest(
        record, day, now, reading_of(config, state, targets, now), settings.top_jobs, silences
    )
    message = heartbeat_message(
        delivery.renderer, found, _names(targets), settings.at_text, config.timezone
    )
    taken = delivery.notice(Notice(message, (receiver,)))
    if taken is None:
        why = delivery.report.unannounced[-1][1]
        line = f"heartbeat for {day} not sent ({why}); trying again next tick"
        late = (
            now - datetime.combine(day, time(settings.at // 60, settings.at % 60), zone).timestamp()
        )
        (problems if late > OVERDUE_SECONDS else notes).append(line)
        return state.with_updates(heartbeat=record, robots=delivery.report.robots)
    notes.append(f"heartbeat for {day} sent to {taken}")
    if journal is not None:
        journal(_marker(receiver, day, now))
    return state.with_updates(
        heartbeat=core.mark_sent(record, day, now), robots=delivery.report.robots
    )


def marker_key(receiver: str, day: date) -> str:
    """How a checkpoint names a digest a robot took (an alert key: receiver, fingerprint)."""
    return f"{receiver_key(receiver)}:{HEARTBEAT}:{day.isoformat()}"


def _marker(receiver: str, day: date, now: float) -> Alert:
    found = Finding(kind=HEARTBEAT, subject="monitor", fingerprint=f"{HEARTBEAT}:{day}", at=now)
    return Alert(receiver, found, now)


def reading_of(
    config: Config, state: State, targets: Mapping[JobKey, Target], now: float
) -> core.Reading:
    """When each watched job was last read whole: its own listing, or its group's
    queries up to the start of the oldest window still to read."""
    covered: dict[tuple[str, str], float | None] = {}
    for group, cursor in state.sources.groups.items():
        if cursor.mode != GROUP_QUERIES:
            continue
        covered[group] = min((s.lo for s in cursor.spans), default=cursor.covered)
    last: dict[JobKey, float | None] = {}
    for key in targets:
        record = state.jobs.get(key)
        times = [
            t
            for t in (
                record.polled_at if record is not None else None,
                covered.get((key.namespace, key.group)),
            )
            if t is not None
        ]
        last[key] = max(times, default=None)
    sweep = config.schedulerx.sweep_interval.total_seconds()
    return core.reading(
        targets,
        last,
        now,
        max(core.HOUR, 2 * sweep),
        state.health.broken_ticks,
        state.health.reason,
    )


def _names(targets: Mapping[JobKey, Target]) -> dict[JobKey, str]:
    return {key: t.job_name for key, t in targets.items() if t.job_name}


# -- the message -------------------------------------------------------------------------


def heartbeat_message(
    renderer: Renderer, found: Digest, names: Mapping[JobKey, str], at: str, zone: str
) -> Message:
    """The digest as the receiver reads it; `at` is the configured time of day, `zone`
    the config's time zone, in which its times are shown."""
    return renderer.heartbeat(context(found, names, renderer.language, ZoneInfo(zone), zone, at))


def context(
    found: Digest,
    names: Mapping[JobKey, str],
    language: str,
    zone: ZoneInfo,
    zone_name: str,
    at: str,
) -> dict[str, Any]:
    """What the heartbeat template may print; every text from a job, SchedulerX, a
    problem line or a silence already neutralised."""
    from schedulerx_alert.delivery.neutralise import line
    from schedulerx_alert.delivery.render import _span as span

    def when(t: float | None) -> str | None:
        return None if t is None else datetime.fromtimestamp(t, zone).strftime("%Y-%m-%d %H:%M")

    def label(job: JobKey) -> str:
        name = names.get(job)
        # A workflow is kept under its id negated (core/workflows.py).
        ident = str(job.job_id) if job.job_id >= 0 else f"workflow {-job.job_id}"
        return f"{line(name, LABEL_CAP)} ({ident})" if name else ident

    reading = found.reading
    silences = found.silences
    return {
        "day": found.day.isoformat(),
        "at": at,
        "zone": line(zone_name, 60),
        "since": when(found.since),
        "until": when(found.until),
        "whole_window": found.whole_window,
        "covered": span(language, found.until - found.since),
        "impaired": list(found.impaired),
        "watched": reading.watched,
        "never_read": reading.never,
        "stale": reading.stale,
        "stale_after": span(language, reading.stale_after),
        "broken_now": reading.broken_now,
        "broken_reason": line(reading.broken_reason, 300) if reading.broken_reason else None,
        "runs": found.runs,
        "failures": found.failures,
        "recoveries": found.recoveries,
        "failing_jobs": [
            {"label": label(j.job), "failures": j.failures} for j in found.failing_jobs
        ],
        "more_failing_jobs": found.more_failing_jobs,
        "unnamed_failures": found.unnamed_failures,
        "ticks": found.ticks_ok + found.ticks_degraded + found.ticks_failed,
        "ticks_ok": found.ticks_ok,
        "ticks_degraded": found.ticks_degraded,
        "ticks_failed": found.ticks_failed,
        "silent_hours": found.silent_hours,
        "calls": [{"api": line(api, 60), "count": n} for api, n in found.calls],
        "calls_total": sum(n for _, n in found.calls),
        "last_problem": line(found.last_problem, 300) if found.last_problem else None,
        "last_problem_at": when(found.last_problem_at),
        "silences": None
        if silences is None
        else {
            "held": silences.held,
            "more": silences.more,
            "active": [
                {
                    "description": line(s.description, 200),
                    "until": when(s.until),
                    "comment": line(s.comment, 200) if s.comment else None,
                    "held": s.held,
                    "who": line(s.who, 80) if s.who else None,
                }
                for s in silences.active
            ],
        },
    }
