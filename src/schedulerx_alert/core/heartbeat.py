"""The daily heartbeat: rolling 24 h counters, when the digest is due, and the digest.

Pure: no I/O and no clock (`now` is passed in). The counters live in the state as one
bucket per hour (runs seen, failures, recoveries, ticks by status, API calls, the jobs that
failed most, the alerts silences and quiet hours held back), so their size does not grow
with the number of jobs: a bucket names at most `JOBS_PER_HOUR` jobs and
`HOLDERS_PER_HOUR` silences, and counts the others without naming them.

The heartbeat is the monitor's proof of life. So the digest never reads "all quiet" when
the monitor was not listening: hours without a committed tick, broken ticks, jobs never
read, counters that cover less than the day (a new or reset state) are each said first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from schedulerx_alert.core.heartbeat_record import HeartbeatRecord as HeartbeatRecord
from schedulerx_alert.core.heartbeat_record import Hour as Hour
from schedulerx_alert.core.model import JobKey

if TYPE_CHECKING:
    from schedulerx_alert.core.silence import Silence

HOUR = 3600
WINDOW_HOURS = 24
# Failing jobs named per hour bucket, the most failing first; the rest are only counted.
JOBS_PER_HOUR = 10
# APIs counted per bucket (SchedulerX has three the tick calls); a bound, not a list.
MAX_APIS = 8
PROBLEM_KEEP = 300
# Holders (a silence, quiet hours) named per hour bucket, the most holding first; the
# alerts the others held are only counted.
HOLDERS_PER_HOUR = 10
HOLDER_KEEP = 64  # holders are `config:silences[N]`, `oss:N`, `quiet`
# Active silences the digest lists; the rest are counted.
SILENCES_LISTED = 10
API_KEEP = 60
TICK_STATUSES = ("ok", "degraded", "failed")


@dataclass(frozen=True)
class TickCounts:
    """One tick's observations."""

    runs: int = 0
    # Failed runs per job.
    failures: Mapping[JobKey, int] = field(default_factory=dict)
    recoveries: int = 0
    calls: Mapping[str, int] = field(default_factory=dict)
    # Alerts held back per holder.
    held: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class HeldSilence:
    """An active silence as the digest lists it."""

    description: str
    until: float
    comment: str = ""
    # Alerts it held back in the digest's window.
    held: int = 0
    who: str = ""


@dataclass(frozen=True)
class SilenceCounts:
    """What silences did, as whoever applies them (core/silence.py) reports it."""

    active: tuple[HeldSilence, ...] = ()
    # Alerts held back in the window, by any silence or quiet hours, active or not.
    held: int = 0
    # Active silences beyond those listed in `active`.
    more: int = 0


@dataclass(frozen=True)
class Reading:
    """How well the watched jobs are being read, judged when the digest is made."""

    watched: int = 0
    # Jobs no tick has ever read, and jobs not read for longer than `stale_after`.
    never: int = 0
    stale: int = 0
    stale_after: float = HOUR
    # Broken ticks in a row right now (state.health).
    broken_now: int = 0
    broken_reason: str | None = None


@dataclass(frozen=True)
class FailingJob:
    job: JobKey
    failures: int


@dataclass(frozen=True)
class Digest:
    """The heartbeat message's content, before it is rendered."""

    day: date
    since: float
    until: float
    # Whether the counters cover the whole window (they began before it).
    whole_window: bool
    reading: Reading
    runs: int
    failures: int
    recoveries: int
    failing_jobs: tuple[FailingJob, ...]
    # Failing jobs beyond those named (a lower bound when some hour named only its worst).
    more_failing_jobs: int
    unnamed_failures: int
    ticks_ok: int
    ticks_degraded: int
    ticks_failed: int
    # Hours of the window (after `since`) in which no tick committed.
    silent_hours: int
    calls: tuple[tuple[str, int], ...]
    last_problem: str | None
    last_problem_at: float | None
    silences: SilenceCounts | None

    @property
    def impaired(self) -> tuple[str, ...]:
        """Why the day's quiet cannot be read as health: codes for the template, most
        fundamental first; empty when the monitor listened all day."""
        why: list[str] = []
        if self.reading.broken_now:
            why.append("broken_now")
        if self.silent_hours:
            why.append("silent_hours")
        if self.ticks_failed:
            why.append("ticks_failed")
        if self.ticks_degraded:
            why.append("ticks_degraded")
        if self.reading.never:
            why.append("never_read")
        if self.reading.stale:
            why.append("stale")
        if not self.whole_window:
            why.append("short_window")
        return tuple(why)


# -- counting ----------------------------------------------------------------------------


def hour_of(now: float) -> int:
    return int(now // HOUR)


def observe(record: HeartbeatRecord, counts: TickCounts, now: float) -> HeartbeatRecord:
    """The record with one tick's observations added to the current hour."""
    hour, others = _current(record, now)
    jobs = dict(hour.jobs)
    for job, n in counts.failures.items():
        if n > 0:
            jobs[job.encode()] = jobs.get(job.encode(), 0) + n
    jobs, unnamed = _top(jobs, hour.unnamed)
    calls = dict(hour.calls)
    for api, n in counts.calls.items():
        if n > 0 and (api[:API_KEEP] in calls or len(calls) < MAX_APIS):
            calls[api[:API_KEEP]] = calls.get(api[:API_KEEP], 0) + n
    held_by, _ = _top(
        _added(hour.held_by, {h[:HOLDER_KEEP]: n for h, n in counts.held.items()}),
        0,
        HOLDERS_PER_HOUR,
    )
    hour = replace(
        hour,
        held=hour.held + sum(n for n in counts.held.values() if n > 0),
        held_by=held_by,
        runs=hour.runs + max(0, counts.runs),
        failures=hour.failures + sum(n for n in counts.failures.values() if n > 0),
        recoveries=hour.recoveries + max(0, counts.recoveries),
        calls=calls,
        jobs=jobs,
        unnamed=unnamed,
    )
    return _with_hour(record, others, hour, now)


def record_tick(
    record: HeartbeatRecord, status: str, problem: str | None, now: float, ticks: int = 1
) -> HeartbeatRecord:
    """The record with `ticks` ticks of `status` (ok, degraded, failed) counted; a broken
    tick's first problem becomes the record's last one. Other statuses (skipped) count
    nothing."""
    if status not in TICK_STATUSES or ticks <= 0:
        return record
    hour, others = _current(record, now)
    hour = replace(hour, **{status: getattr(hour, status) + ticks})
    if status != "ok" and problem:
        record = replace(record, problem=problem[:PROBLEM_KEEP], problem_at=now)
    return _with_hour(record, others, hour, now)


def _current(record: HeartbeatRecord, now: float) -> tuple[Hour, list[Hour]]:
    start = hour_of(now)
    kept = [h for h in record.hours if start - WINDOW_HOURS <= h.start <= start]
    current = next((h for h in kept if h.start == start), Hour(start))
    return current, [h for h in kept if h.start != start]


def _with_hour(
    record: HeartbeatRecord, others: list[Hour], hour: Hour, now: float
) -> HeartbeatRecord:
    hours = tuple(sorted([*others, hour], key=lambda h: h.start))
    since = now if record.since is None else record.since
    return replace(record, hours=hours, since=since)


def _top(
    jobs: Mapping[str, int], unnamed: int, keep: int = JOBS_PER_HOUR
) -> tuple[dict[str, int], int]:
    """The `keep` jobs that failed most (ties by key, so the result is stable);
    the others' failures are added to `unnamed`."""
    ranked = sorted(jobs.items(), key=lambda item: (-item[1], item[0]))
    kept = dict(ranked[:keep])
    return kept, unnamed + sum(n for _, n in ranked[keep:])


def _added(counts: Mapping[str, int], more: Mapping[str, int]) -> dict[str, int]:
    out = dict(counts)
    for key, n in more.items():
        if n > 0:
            out[key] = out.get(key, 0) + n
    return out


# -- when the digest is due --------------------------------------------------------------


def local_day(now: float, zone: ZoneInfo) -> tuple[date, int]:
    """The local date at `now` and the minute of that day."""
    moment = datetime.fromtimestamp(now, zone)
    return moment.date(), moment.hour * 60 + moment.minute


def arm(record: HeartbeatRecord, now: float, zone: ZoneInfo, at: int) -> HeartbeatRecord:
    """A record that has never sent a digest counts as having sent the last one due before
    `now`: the first digest comes at the next `at`, not at the first tick."""
    if record.sent_for is not None:
        return record
    day, minute = local_day(now, zone)
    return replace(record, sent_for=day if minute >= at else day - timedelta(days=1))


def due(record: HeartbeatRecord, now: float, zone: ZoneInfo, at: int) -> date | None:
    """The local date whose digest is owed at `now`, or None.

    Owed once the local time has reached `at` on a date later than the last one sent for,
    so a function that was down at `at` sends it at its first tick after, and never twice
    for a date. Dates only move forward: after a change of zone that puts the local date
    behind the one last sent for, nothing is owed until the zone's date passes it."""
    if record.sent_for is None:
        return None
    day, minute = local_day(now, zone)
    if minute < at or day <= record.sent_for:
        return None
    return day


def mark_sent(record: HeartbeatRecord, day: date, now: float) -> HeartbeatRecord:
    if record.sent_for is not None and day <= record.sent_for:
        return record
    return replace(record, sent_for=day, sent_at=now)


# -- the digest --------------------------------------------------------------------------


def digest(
    record: HeartbeatRecord,
    day: date,
    now: float,
    reading: Reading,
    top_jobs: int,
    silences: SilenceCounts | None = None,
) -> Digest:
    """The last 24 h as the counters saw them."""
    # The window: the 24 whole hours before the current one, and the current one so far.
    current = hour_of(now)
    hours = [h for h in record.hours if current - WINDOW_HOURS <= h.start <= current]
    window_start = float((current - WINDOW_HOURS) * HOUR)
    since = window_start if record.since is None else max(record.since, window_start)
    whole = record.since is not None and record.since <= window_start
    jobs: dict[str, int] = {}
    calls: dict[str, int] = {}
    for h in hours:
        for key, n in h.jobs.items():
            jobs[key] = jobs.get(key, 0) + n
        for api, n in h.calls.items():
            calls[api] = calls.get(api, 0) + n
    ranked = sorted(jobs.items(), key=lambda item: (-item[1], item[0]))
    failing = tuple(
        FailingJob(job, n) for key, n in ranked[:top_jobs] if (job := _decode(key)) is not None
    )
    # Hours wholly after the counters began, inside the window, without a committed tick.
    first = hour_of(since) + (0 if since % HOUR == 0 else 1)
    counted = {h.start for h in hours if h.ticks}
    silent = sum(
        1 for start in range(max(first, current - WINDOW_HOURS), current) if start not in counted
    )
    recent = record.problem_at is not None and record.problem_at >= window_start
    return Digest(
        day=day,
        since=since,
        until=now,
        whole_window=whole,
        reading=reading,
        runs=sum(h.runs for h in hours),
        failures=sum(h.failures for h in hours),
        recoveries=sum(h.recoveries for h in hours),
        failing_jobs=failing,
        more_failing_jobs=max(0, len(jobs) - len(failing)),
        unnamed_failures=sum(h.unnamed for h in hours),
        ticks_ok=sum(h.ok for h in hours),
        ticks_degraded=sum(h.degraded for h in hours),
        ticks_failed=sum(h.failed for h in hours),
        silent_hours=silent,
        calls=tuple(sorted(calls.items())),
        last_problem=record.problem if recent else None,
        last_problem_at=record.problem_at if recent else None,
        silences=silences,
    )


def _decode(key: str) -> JobKey | None:
    try:
        return JobKey.decode(key)
    except ValueError:
        return None


def reading(
    watched: Iterable[JobKey],
    last_read: Mapping[JobKey, float | None],
    now: float,
    stale_after: float,
    broken_now: int = 0,
    broken_reason: str | None = None,
) -> Reading:
    """How the watched jobs are being read: `last_read` is when each was last seen whole
    (its own listing, or its group's query window), None or absent when never."""
    jobs = list(watched)
    never = sum(1 for job in jobs if last_read.get(job) is None)
    stale = sum(
        1 for job in jobs if (t := last_read.get(job)) is not None and now - t > stale_after
    )
    return Reading(len(jobs), never, stale, stale_after, broken_now, broken_reason)


def held_in_window(record: HeartbeatRecord, now: float) -> tuple[int, dict[str, int]]:
    """Alerts held back in the digest's window (see `digest`), in all and per holder
    (the holders an hour did not name are only in the total)."""
    current = hour_of(now)
    total = 0
    by: dict[str, int] = {}
    for h in record.hours:
        if current - WINDOW_HOURS <= h.start <= current:
            total += h.held
            by = _added(by, h.held_by)
    return total, by


def silence_counts(
    silences: Iterable[Silence], held: Mapping[str, int], total_held: int, now: float
) -> SilenceCounts | None:
    """The digest's view of silences (core/silence.py): those active at `now`, each with
    the alerts it held back in the window (`held`, by holder: `source:id`), and every
    alert held back in the window (`total_held`), by silences or quiet hours. None on a
    day without either: the digest then says nothing of silences."""
    from schedulerx_alert.core.silence_hold import holder_of

    active = sorted((s for s in silences if s.active(now)), key=lambda s: (s.until, s.id))
    if not active and total_held <= 0:
        return None
    listed = tuple(
        HeldSilence(
            s.matcher.describe(),
            s.until,
            s.comment,
            held.get(holder_of(s)[:HOLDER_KEEP], 0),
            s.created_by,
        )
        for s in active[:SILENCES_LISTED]
    )
    return SilenceCounts(listed, max(0, total_held), max(0, len(active) - SILENCES_LISTED))
