"""Which SchedulerX calls this tick makes, and in what order: pure, no I/O, no clock.

Each watched group is read one of three ways:

- **group queries** (`schedulerx.query: auto`): GetJobInstanceList without JobId and without
  Status finds every run of the group (failures, and the successes and running runs the rules
  need) inside a time window that starts where the last one ended, less an overlap. Nobody
  documents which instance time the window filters on, so the window reaches back, for the
  alerting statuses only, to the earliest run still unfinished at the last *scan* (status
  running and waiting, no window, every few minutes), which covers schedule and start times;
  an end time is covered by the window itself. Where the server may
  filter on the start time, statuses whose runs never start (rejected) are asked without a
  window. A window not read to the end (quota, time) is kept and read on, newest first;
  older windows (after an outage) take a share of the calls before the newest ones.
  Where the window is on the end time and the quota cannot pay for every newest window
  and the scans every SCAN_INTERVAL, the scans are stretched (`_stretch_scans`, said in
  the tick's problems) rather than the windows left waiting.
- **per-job polls**, schedule-aware (`per_job`, and where a server cannot answer group
  queries): a job is polled in the tick after one of its fire times, while it has an
  unfinished run, and at least every `sweep_interval` (runs started by hand or by API).
- **every job every tick** (`every_job`): the loop of old, for comparison.

Work comes in phases, each run to the end (as far as the quota and the time allow) before the
next: what is due (windows of now, fires passed, unfinished runs, first job lists), then
catching up (older windows, cross-checks), then the sweep, then refreshing job lists.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import tzinfo
from typing import TYPE_CHECKING

from schedulerx_alert.config import Config
from schedulerx_alert.core.model import TERMINAL, InstanceStatus, JobInstance, JobKey, TriggerType
from schedulerx_alert.core.polling import (
    GROUP_QUERIES,
    MAX_UNFINISHED,
    PER_JOB,
    GroupCursor,
    GroupKey,
    Query,
    ServerFacts,
    SourceState,
    Span,
)
from schedulerx_alert.core.state import JobRecord
from schedulerx_alert.sources import discovery

if TYPE_CHECKING:
    from schedulerx_alert.core.catalog import JobInfo

    # Loaded only when a job's schedule is computed (a catalog from discovery or
    # GetJobInfo): jobs named by id alone never need it.
    from schedulerx_alert.core.schedule import Schedule

#: A window starts this far before where the previous one ended: clock skew, late writes,
#: and runs that start a little after they are scheduled.
OVERLAP = 15 * 60.0
#: The overlap of a window known to be on the end time (`overlap`): a run is listed by the
#: window that covers its end, so only clock skew and an end written late matter: 3 minutes
#: is seconds of skew (NTP-kept clocks) plus an end written up to about 3 minutes late.
END_OVERLAP = 3 * 60.0
#: Running and waiting runs are listed this often, so that no run lasts longer than the
#: overlap without being seen unfinished (SCAN_INTERVAL + a tick < OVERLAP: for a window on
#: the schedule or start time; one on the end time lists a run when it ends, however late).
SCAN_INTERVAL = 10 * 60.0
#: Of the groups read by group queries, at most this part scans in one tick (1.5 times the
#: steady rate, one scan per group every SCAN_INTERVAL), so that scans due at once spread.
SCAN_SPREAD = 1.5 * 60.0 / SCAN_INTERVAL
#: Where the window is on the end time and the quota cannot pay for every group's newest
#: window a tick and its scans every SCAN_INTERVAL, the scans are stretched: they get what
#: the windows leave, but never less than this part of the calls (a run with no end yet is
#: listed by a scan only: stuck and long runs, a fire's run still waiting) ...
SCAN_SHARE = 0.1
#: ... and are made at least this often, whatever that costs the windows.
SCAN_STRETCH_LIMIT = 3600.0
#: A window reaches back at most this far for runs still unfinished; older ones are read
#: by id every tick until they end (poll.py `_follow_long`).
FOLLOW_LIMIT = 6 * 3600.0
#: The newest window is at most this long; older time goes into a window read after it.
#: The same whatever the overlap: it bounds a read after a pause, not the steady window.
LIVE_LIMIT = 2 * OVERLAP
#: The part of a tick's calls the older windows (after an outage) may take before the
#: newest windows, oldest groups first; the rest of them come after the newest windows.
#: Without it, where every call goes to newest windows (100 groups at 90 calls a minute),
#: the older windows are never reached.
CATCH_UP_SHARE = 0.4
#: Older windows kept apart, each read on where it stopped; more are merged into one.
MAX_OLDER = 4
#: How often a group's answers are compared with a per-job poll of one of its jobs.
CHECK_INTERVAL = 3600.0
#: After a server refused (or misread) group queries, they are tried again this much later.
RETRY_GROUP_QUERIES = 24 * 3600.0
#: A group that lists at most this many job ids, and no patterns, is polled per job every
#: tick, as before group queries: ten calls a tick fit the quota many times over, a per-job
#: listing shows every run of the job, and no job list (nor the permission ListJobs needs)
#: is required. Larger groups cost two or three calls a tick with group queries.
SMALL_GROUP = 10
#: Statuses of runs that can end without ever starting: a window on the start time misses them.
UNSTARTED = frozenset({InstanceStatus.REJECTED.value, InstanceStatus.SKIPPED.value})
#: What a scan lists: the runs still to be followed to their end.
UNFINISHED = (InstanceStatus.RUNNING.value, InstanceStatus.WAITING.value)
#: Modes of a group this tick.
EVERY = "every"
#: FC's timer calls the function once a minute: a run that ended after a poll is first
#: seen by the poll of the next tick.
TICK = 60.0

DUE, CATCH_UP, SWEEP, REFRESH = "due", "catch_up", "sweep", "refresh"
PHASES = (DUE, CATCH_UP, SWEEP, REFRESH)


@dataclass(frozen=True)
class GroupRead:
    """Group queries for one group, in order: a scan first (when due), then the windows."""

    group: GroupKey
    scan: bool
    spans: tuple[Span, ...]
    # Whether the group is read for the first time: its past is history, as on a first poll.
    first: bool = False
    # An older window read in the catch-up's share of the calls (Plan.catch_up_share).
    share: bool = False
    # A first scan that waits its turn (`_spread_scans`) once the window is known to be on
    # the end time: made unless this tick's first answers tell so before the group's turn.
    until_end: bool = False
    # Queries this tick's first answers may make needless: a status asked without a window
    # while the window may be on the start time (`queries`; poll.py `_started_is_out`).
    unsure: int = 0

    @property
    def cost(self) -> int:
        # What may not be made is not planned for (a scan `until_end`, the `unsure`
        # queries): on the end time (most servers) the calls kept for them would be left
        # unspent while groups wait; where they are made, the quota stops the last reads
        # and those groups go first next tick.
        scan = self.scan and not self.until_end
        return len(UNFINISHED) * scan + sum(len(s.todo) for s in self.spans) - self.unsure


@dataclass(frozen=True)
class JobPoll:
    """One GetJobInstanceList for one job; `why`: fire, grace, unfinished, every, sweep,
    check. With `by_id`, one GetJobInstance of that run instead (a quota of its own): the
    job is polled only because that run was unfinished (`_why_due`), and its listing is
    made only if the run cannot be read so (poll.py `_read_by_id`)."""

    job: JobKey
    why: str
    by_id: int | None = None

    cost = 1


@dataclass(frozen=True)
class Discover:
    """The next pages of a group's job list (ListJobs)."""

    group: GroupKey
    page: int

    cost = 1


Task = GroupRead | JobPoll | Discover


@dataclass(frozen=True)
class Plan:
    now: float
    phases: tuple[tuple[str, tuple[Task, ...]], ...]
    # The groups' cursors with this tick's windows set up; the executor moves them on.
    cursors: dict[GroupKey, GroupCursor]
    # How each group is read this tick: GROUP_QUERIES, PER_JOB or EVERY.
    modes: dict[GroupKey, str]
    # Per-job polls of group-read groups: runs that ended before this are not news.
    news_since: dict[GroupKey, float]
    # Work left out for the quota, per phase: (what, how many).
    deferred: tuple[tuple[str, int], ...] = ()
    notes: tuple[str, ...] = field(default=())
    # Calls the older windows may make first (GroupRead.share), before the newest windows.
    catch_up_share: int = 0
    # What the quota costs this tick that the tick must say (it is then degraded).
    problems: tuple[str, ...] = ()

    def tasks(self, phase: str) -> tuple[Task, ...]:
        return next((tasks for name, tasks in self.phases if name == phase), ())


@dataclass(frozen=True)
class Budget:
    """Calls this tick may make, per API (what the one-minute window has left)."""

    instance_lists: int
    list_jobs: int
    # GetJobInstance: per-job polls of an unfinished run alone (JobPoll.by_id).
    by_id: int = 0


def make_plan(
    config: Config,
    sources: SourceState,
    catalog: Mapping[JobKey, JobInfo],
    records: Mapping[JobKey, JobRecord],
    watched: Collection[JobKey],
    now: float,
    budget: Budget,
) -> Plan:
    """This tick's calls, most urgent first, trimmed to `budget`."""
    zone = config.zone
    lookback = max(OVERLAP, config.first_run_lookback.total_seconds())
    sweep = config.schedulerx.sweep_interval.total_seconds()
    by_group: dict[GroupKey, list[JobKey]] = {}
    for key in sorted(watched):
        by_group.setdefault((key.namespace, key.group), []).append(key)
    schedules = _Schedules(zone)
    cursors: dict[GroupKey, GroupCursor] = {}
    modes: dict[GroupKey, str] = {}
    news_since: dict[GroupKey, float] = {}
    due: list[Task] = []
    polls: list[tuple[float, JobPoll]] = []
    catch_up: list[Task | _Check] = []
    sweeps: list[tuple[float, JobPoll]] = []
    # Jobs polled one by one, and since when the earliest group of them is (`_behind`).
    one_by_one = 0
    began = now
    refresh: list[Task] = []
    notes: list[str] = []
    judged: set[GroupKey] = set()
    # Groups whose scans are wanted, and first checks (spread like first scans).
    intervals: dict[GroupKey, float] = {}
    first_checks: list[Task | _Check] = []
    for group in discovery.groups_of(config):
        cursor = sources.group(group)
        mode, cursor = _mode(config, group, cursor, now)
        modes[group] = mode
        jobs = by_group.get(group, [])
        if _discovered_here(config, group, mode) and discovery.due(
            cursor, now, config.schedulerx.discovery_interval.total_seconds()
        ):
            first_list = cursor.discovered_at is None
            # A first list is due work where the jobs to poll depend on it.
            urgent = first_list and (mode != GROUP_QUERIES or discovery.needs_names(config, group))
            (due if urgent else refresh).append(Discover(group, max(cursor.discovery_page, 1)))
        if mode == GROUP_QUERIES:
            # Unless the window is known to be on the schedule time, only a scan lists a
            # fire's run still running (or waiting): one is made when a fire may be judged
            # (since the last scan, or since the group was first read: the rules judge its
            # fires from then, poll.py `_read_to`).
            looked = cursor.scanned_at if cursor.scanned_at is not None else cursor.since
            judge = (
                sources.server.fields != ("schedule",)
                and looked is not None
                and _grace_ended(config, group, jobs, catalog, schedules, looked, now)
            )
            if judge:
                judged.add(group)
            every = (
                scan_every(config, group, jobs, catalog, cursor)
                if sources.server.field_known == "end"
                else SCAN_INTERVAL
            )
            read, backlog, cursor = _group_reads(
                config, group, cursor, sources.server, now, lookback, judge, every
            )
            if every is not None:
                intervals[group] = every
            news_since[group] = min(
                (span.lo for span in (*read.spans, *(backlog.spans if backlog else ()))),
                default=now - lookback,
            )
            if backlog is not None:
                catch_up.append(backlog)
                if cursor.scanned_at is not None and sources.server.field_known == "end":
                    # Catching up, a scan waits: its calls go to the windows, and fires are
                    # judged no further than the older windows are read anyway.
                    read = replace(read, scan=False)
            due.append(read)
            checking = cursor.checked_at is None or now - cursor.checked_at >= CHECK_INTERVAL
            # Which job is checked is chosen once the quota reaches the check (`_checks`):
            # choosing costs a cron step per schedule, and the quota often does not reach it.
            if checking and (jobs or any((k.namespace, k.group) == group for k in records)):
                (first_checks if cursor.checked_at is None else catch_up).append(_Check(group))
        else:
            for key in jobs if mode == EVERY else ():
                polls.append((_next_tick(records.get(key), now), JobPoll(key, "every")))
            # A small group of ids is polled every tick whatever the catalog knows of its
            # jobs (GetJobInfo reads their schedules for the rules, sources/jobinfo.py).
            known = {} if small_group(config, group) else catalog
            if mode == PER_JOB:
                if cursor.since is None:
                    # Per-job polls by configuration begin now: a job never polled is due
                    # from here on, and behind its sweep an interval later.
                    cursor = replace(cursor, since=now)
                one_by_one += len(jobs)
                began = min(began, cursor.since or now)
            for key in jobs if mode == PER_JOB else ():
                why = _why_due(
                    key,
                    known.get(key),
                    records.get(key),
                    cursor,
                    schedules,
                    now,
                    sources.anchors.get(key),
                    _missed_grace(config, group),
                    sweep,
                )
                if why is not None:
                    polls.append((why[1], JobPoll(key, why[0], why[2])))
                    continue
                last = _polled(records.get(key))
                if last is None or now - last >= sweep:
                    sweeps.append((last or 0.0, JobPoll(key, "sweep")))
        cursors[group] = cursor
    scanned = {g: c.scanned_at for g, c in cursors.items()}
    # A fire is judged on time unless older windows are read too (after an outage).
    exempt = set() if any(isinstance(t, GroupRead) for t in catch_up) else judged
    # A first round, of scans or of checks, is spread over SCAN_INTERVAL: every group's
    # in one tick would take two or three times the calls of the ticks after it.
    rate = max(1, math.ceil(len(intervals) * TICK / SCAN_INTERVAL))
    wanted = {t.group for t in due if isinstance(t, GroupRead) and t.scan}
    due = _spread_scans(due, scanned, exempt, rate, sources.server.field_known == "end")
    queried = sum(mode == GROUP_QUERIES for mode in modes.values())
    catch_up.extend(first_checks[: max(1, math.ceil(queried * TICK / SCAN_INTERVAL))])
    # Oldest first, so that what the quota leaves out goes first next tick: groups by where
    # their window starts, jobs by their last poll.
    due.sort(
        key=lambda t: (t.spans[0].lo, t.group) if isinstance(t, GroupRead) else (0.0, ("", ""))
    )
    # Per-job polls by when they fell due, so that one the quota left out last tick goes
    # before those due since (a run that ended waits a tick, not two or three), whatever
    # its job's last poll: an hourly job that just fired waits behind it.
    polls.sort(key=lambda item: (item[0], item[1].job))
    due.extend(_by_id_within(polls, budget.by_id))
    sweeps.sort(key=lambda item: (item[0], item[1].job))
    # Older windows, oldest first: their share of the calls before the newest windows, and
    # what is left of them after those (each read goes on where the last one stopped).
    catch_up.sort(key=_oldest_first)
    older = [t for t in catch_up if isinstance(t, GroupRead)]
    # No more than the older windows may want (a page or two a query): calls set aside and
    # not spent would leave newest windows unread for nothing.
    share = min(math.ceil(budget.instance_lists * CATCH_UP_SHARE), 2 * sum(t.cost for t in older))
    problems: list[str] = []
    scans: list[Task] = []
    if sources.server.field_known == "end":
        due, scans, problems = _stretch_scans(
            due, scanned, exempt, budget.instance_lists - share, now, (intervals, wanted)
        )
    phases, deferred = _trim(
        (
            # The stretched scans are paid for first (they are few, and each waited its
            # stretched interval), and made after the windows that waited (`_in_order`).
            (DUE, [*scans, *due]),
            (CATCH_UP, catch_up),
            (SWEEP, [p for _, p in sweeps]),
            (REFRESH, refresh),
        ),
        replace(budget, instance_lists=budget.instance_lists - share),
    )
    if scans:
        phases = tuple(
            (name, _in_order(tasks, now - END_OVERLAP - 1.5 * 60) if name == DUE else tasks)
            for name, tasks in phases
        )
    chosen = _checks(phases, by_group, catalog, records, schedules, now)
    if share:
        first = tuple(replace(read, share=True) for read in older)
        chosen = tuple((name, (*first, *tasks) if name == DUE else tasks) for name, tasks in chosen)
    # A tick or more past their sweep (one never polled: since per-job polls began), so
    # that a first sweep spread over its interval, or one a tick late, is no problem.
    swept = len(dict(chosen)[SWEEP])
    behind = [(last, p) for last, p in sweeps[swept:] if now - (last or began) >= sweep + TICK]
    if behind:
        problems.append(
            _behind(config, behind, swept, one_by_one, began, budget.instance_lists, now)
        )
    return Plan(
        now, chosen, cursors, modes, news_since, deferred, tuple(notes), share,
        tuple(problems),
    )  # fmt: skip


def _spread_scans(
    tasks: list[Task],
    scanned: Mapping[GroupKey, float | None],
    exempt: Collection[GroupKey],
    rate: int,
    on_end: bool,
) -> list[Task]:
    """At most a share of the groups scan in one tick, the longest unscanned first: after an
    outage every group's scan falls due at once, and those calls would otherwise take the
    newest windows' quota, tick after tick, every SCAN_INTERVAL. A scan put off keeps the
    group's fires judged only up to its last scan (PollResult.read_to), and its unfinished
    runs as they were; one `exempt` (a fire to judge) is made at once.

    First scans (a first tick, a group newly watched) come `rate` a tick, in the groups'
    order, so that every group is scanned within SCAN_INTERVAL and the round after comes as
    evenly. Until then a group's stuck runs are seen no later than a scan every
    SCAN_INTERVAL sees them, and its fires are judged from its first read on, at its first
    scan. That holds only where the window is on the end time (`on_end`); while that is not
    known, the first scans beyond `rate` are made `until_end` (a scan is how far a window on
    the schedule or start time reaches back)."""

    def spread(t: Task) -> bool:
        return isinstance(t, GroupRead) and t.scan and t.group not in exempt

    reads = [t for t in tasks if isinstance(t, GroupRead) and spread(t)]
    routine = [t for t in reads if scanned.get(t.group) is not None]
    cap = math.ceil(SCAN_SPREAD * len([t for t in tasks if isinstance(t, GroupRead)]))
    keep = {
        t.group for t in sorted(routine, key=lambda t: (scanned.get(t.group) or 0.0, t.group))[:cap]
    }
    firsts = sorted(t.group for t in reads if scanned.get(t.group) is None)
    keep.update(firsts[:rate])
    if len(keep) == len(reads):
        return tasks
    return [
        t
        if not isinstance(t, GroupRead) or not spread(t) or t.group in keep
        else replace(t, until_end=True)
        if scanned.get(t.group) is None and not on_end
        else replace(t, scan=False)
        for t in tasks
    ]


def _stretch_scans(
    tasks: list[Task],
    scanned: Mapping[GroupKey, float | None],
    exempt: Collection[GroupKey],
    calls: int,
    now: float,
    scanning: tuple[Mapping[GroupKey, float], Collection[GroupKey]],
) -> tuple[list[Task], list[Task], list[str]]:
    """Where the quota cannot pay for every group's newest window each tick and its scans
    (each of `scanning`'s groups at its interval, and those with a fire to judge; its
    groups, those whose scan is due, spread or not, are said to wait):
    the tasks without their scans, the scans kept (those with a fire to judge, then the
    longest unscanned, as many as the calls the windows leave, or SCAN_SHARE of them, pay
    for: each a task of its own), and what the stretch costs, said. Only where the window
    is on the end time: there a run that ends is listed by the window that covers its end
    however long it ran; on the schedule or start time the scan is what the window reaches
    back to (SCAN_INTERVAL + a tick < OVERLAP)."""
    intervals, wanted = scanning
    scanners = len(intervals)
    reads = [t for t in tasks if isinstance(t, GroupRead)]
    # A group's first scan waits too (never scanned, it goes first): on a first tick,
    # every group's first scan with its first window would take three times the calls. So
    # does one with a fire to judge: a frequent cron's fire is judged every tick, and a
    # scan a tick per group would take the windows' calls (its missed fires wait for it).
    routine = {t.group for t in reads if t.scan}
    judging = routine & set(exempt)
    first = {t.group for t in reads if t.first}
    scan_cost = len(UNFINISHED)
    # What is due besides these scans: every newest window, and the per-job polls due.
    windows = sum(
        t.cost - scan_cost * (isinstance(t, GroupRead) and t.group in routine)
        for t in tasks
        if not isinstance(t, Discover)  # ListJobs: a quota of its own
    )
    steady = math.ceil(sum(scan_cost * 60.0 / every for every in intervals.values()))
    if not routine or windows + max(steady, scan_cost * len(judging)) <= calls:
        return tasks, [], []
    spare = max(calls - windows, math.ceil(SCAN_SHARE * calls))
    per_tick = max(math.ceil(scanners * 60.0 / SCAN_STRETCH_LIMIT), spare // scan_cost, 1)
    order = sorted(routine, key=lambda g: (g not in judging, scanned.get(g) or 0.0, g))
    kept = order[:per_tick]
    rest = [replace(t, scan=False) if isinstance(t, GroupRead) and t.group in routine else t
            for t in tasks]  # fmt: skip
    scans: list[Task] = [GroupRead(g, True, (), first=g in first) for g in kept]
    waiting = (routine | set(wanted)) - set(kept)
    if not waiting:
        return rest, scans, []
    oldest = min(waiting, key=lambda g: (scanned.get(g) or 0.0, g))
    at = scanned.get(oldest)
    last = "never scanned" if at is None else f"scanned {(now - at) / 60:.0f} min ago"
    every = math.ceil(scanners / per_tick)
    base = min((intervals.get(g, SCAN_INTERVAL) for g in waiting), default=SCAN_INTERVAL) / 60
    judged = waiting & judging
    fires = (
        f"; {len(judged)} of them have a fire to judge: a missed run there is told at "
        "the group's scan"
        if judged
        else ""
    )
    problem = (
        f"{len(waiting)} group(s) wait for their scan of running and waiting runs "
        f"(SchedulerX quota, schedulerx.max_calls_per_minute: the newest windows of "
        f"{len(reads)} group(s) want {windows} of {calls} calls a tick), e.g. "
        f"{oldest[0]}/{oldest[1]} {last}: scans are stretched from every {base:g} min to "
        f"about every {max(every, 1)} min ({per_tick} a tick), so stuck, long and waiting "
        f"runs may be seen up to {max(0, every - base):g} min later{fires}"
    )
    return rest, scans, [problem]


def _in_order(tasks: Sequence[Task | _Check], fresh: float) -> tuple[Task | _Check, ...]:
    """The order the executor makes the chosen calls in: newest windows that waited a tick
    (starting before `fresh`) before the stretched scans, the other windows after them. A
    window that needs more pages than planned then takes its calls from the last ones."""

    def rank(task: Task | _Check) -> int:
        if isinstance(task, GroupRead) and not task.spans:
            return 1
        waited = isinstance(task, GroupRead) and task.spans[0].lo < fresh
        return 0 if waited else 2

    return tuple(sorted(tasks, key=rank))


def _oldest_first(task: Task | _Check) -> tuple[float, GroupKey]:
    if isinstance(task, GroupRead):
        return (task.spans[0].lo, task.group)
    if isinstance(task, (Discover, _Check)):
        return (0.0, task.group)
    return (0.0, (task.job.namespace, task.job.group))


# -- modes --------------------------------------------------------------------------------


def small_group(config: Config, group: GroupKey) -> bool:
    rules = [r for r in config.watch if (r.namespace, r.group) == group]
    return not any(r.discovers for r in rules) and sum(len(r.jobs) for r in rules) <= SMALL_GROUP


def _mode(
    config: Config, group: GroupKey, cursor: GroupCursor, now: float
) -> tuple[str, GroupCursor]:
    query = config.schedulerx.query
    if query == "every_job":
        return EVERY, cursor
    if query == "per_job" or small_group(config, group):
        return PER_JOB, cursor
    if cursor.mode == PER_JOB and cursor.retry_at is not None and now >= cursor.retry_at:
        # A day later: perhaps the server answers group queries now.
        return GROUP_QUERIES, GroupCursor(
            discovered_at=cursor.discovered_at,
            discovery_page=cursor.discovery_page,
            discovery_started=cursor.discovery_started,
            since=now,
        )
    return cursor.mode, cursor


def _discovered_here(config: Config, group: GroupKey, mode: str) -> bool:
    """Whether the group's job list is read: needed for patterns and `jobs: all`, and for
    the schedules of per-job polling; a small group of ids does without it (and without the
    permission ListJobs needs)."""
    if discovery.discovers(config, group):
        return True
    return mode != EVERY and not small_group(config, group)


def fall_back(cursor: GroupCursor, reason: str, now: float) -> GroupCursor:
    """The group is polled per job from now on, and its group queries tried again a day later."""
    return replace(
        cursor,
        mode=PER_JOB,
        reason=reason[:300],
        retry_at=now + RETRY_GROUP_QUERIES,
        since=now,
        spans=(),
        covered=None,
        floor=None,
        scanned_at=None,
        ancient=(),
        unfinished=(),
    )


# -- group queries ------------------------------------------------------------------------


def queries(config: Config, group: GroupKey, server: ServerFacts) -> tuple[Query, ...]:
    """One query in every status within the window: the rules see the group's failures and
    also the successes and running runs that answer fires and end failure streaks. While
    the server may filter on the start time, the alerting statuses whose runs may never
    start are asked besides, each without a window."""
    statuses = sorted(
        {
            status.value
            for r in config.watch
            if (r.namespace, r.group) == group
            for status in r.alert_on
        }
    )
    maybe_start = "start" in server.fields
    unstarted = tuple(Query(s, windowed=False) for s in statuses if maybe_start and s in UNSTARTED)
    return (Query(None), *unstarted)


def following(config: Config, group: GroupKey, server: ServerFacts) -> tuple[Query, ...]:
    """The alerting statuses still asked within the window, besides `queries`: where the
    window reaches back for runs unfinished at the last scan, only their failures are
    looked for that far (a long run's success comes from a per-job poll of its job once a
    scan no longer lists it), not every run of the group in those hours."""
    unwindowed = {q.status for q in queries(config, group, server) if not q.windowed}
    statuses = sorted(
        {
            status.value
            for r in config.watch
            if (r.namespace, r.group) == group
            for status in r.alert_on
        }
        - unwindowed
    )
    return tuple(Query(s) for s in statuses)


def scan_every(
    config: Config,
    group: GroupKey,
    jobs: Iterable[JobKey],
    catalog: Mapping[JobKey, JobInfo],
    cursor: GroupCursor,
) -> float | None:
    """How often a group whose window is on the end time is scanned: there only a scan
    lists runs not ended yet, which only the stuck rule (`stuck_after` a duration, or
    `job_timeout` with a job that has a timeout or whose entry is not read yet) and the
    missed-run rule read. None: only when a fire is to be judged (`missed_grace`), or
    never. A run a scan lists is remembered, and the stuck rule sees it every tick
    (poll.py `_follow`): a run needs only to be listed once before it can be stuck, so a
    scan every shortest stuck threshold (SCAN_INTERVAL at least, and at most
    SCAN_STRETCH_LIMIT) tells a stuck run as soon as one every SCAN_INTERVAL would. Not
    while the runs remembered are at their bound (the oldest are dropped)."""
    entries = [r.rules for r in config.watch if (r.namespace, r.group) == group]
    thresholds = [r.stuck_after for r in entries if not isinstance(r.stuck_after, str)]
    if any(r.stuck_after == "job_timeout" for r in entries):
        for key in jobs:
            info = catalog.get(key)
            if info is None:
                return SCAN_INTERVAL
            if info.timeout_enabled and info.timeout_seconds:
                thresholds.append(info.timeout_seconds)
    if not thresholds:
        return None  # missed fires only (a scan when one is to be judged), or nothing
    if len(cursor.unfinished) >= MAX_UNFINISHED:
        return SCAN_INTERVAL
    return min(max(min(thresholds), SCAN_INTERVAL), SCAN_STRETCH_LIMIT)


def _missed_grace(config: Config, group: GroupKey) -> float | None:
    graces = [
        r.rules.missed_grace
        for r in config.watch
        if (r.namespace, r.group) == group and r.rules.missed_grace is not None
    ]
    return max(graces) if graces else None


def _grace_ended(
    config: Config,
    group: GroupKey,
    jobs: list[JobKey],
    catalog: Mapping[JobKey, JobInfo],
    schedules: _Schedules,
    since: float,
    now: float,
) -> bool:
    """Whether a watched cron's fire reached the end of its grace since `since`: its run
    may be running or waiting, which only a scan lists unless the window is on the
    schedule time."""
    grace = _missed_grace(config, group)
    if grace is None:
        return False
    for key in jobs:
        info = catalog.get(key)
        schedule = schedules.of(info) if info is not None and info.enabled else None
        if schedule is not None and schedule.fires_between(since - grace, now - grace, 1):
            return True
    return False


def _group_reads(
    config: Config,
    group: GroupKey,
    cursor: GroupCursor,
    server: ServerFacts,
    now: float,
    lookback: float,
    scan_now: bool = False,
    every: float | None = SCAN_INTERVAL,
) -> tuple[GroupRead, GroupRead | None, GroupCursor]:
    """This tick's window for the group (and an older one still to read), and its cursor."""
    todo = queries(config, group, server)
    first = cursor.covered is None
    start = now - lookback if first else min(cursor.covered or now, now) - overlap(server)
    kept: list[Span] = []
    for span in cursor.spans:
        if span.started:
            kept.append(span)
        else:  # never began: this tick's window takes its place
            start = min(start, span.lo)
    follow = _follow_from(cursor, server, now)
    live_lo = max(start, now - LIVE_LIMIT)
    live = Span(live_lo, now, todo)
    if follow is not None and follow < live_lo:
        live = Span(follow, now, (*todo, *following(config, group, server)), recent=live_lo)
    if start < now - LIVE_LIMIT:
        # Older time not read yet, less what windows begun (read on where they stopped)
        # cover: a window begun is never read from its start again.
        for span in sorted(kept, key=lambda s: s.lo):
            if span.lo <= start < span.hi:
                start = span.hi
        if start < now - LIVE_LIMIT:
            kept.append(Span(start, now - LIVE_LIMIT + overlap(server), todo))
    if len(kept) > MAX_OLDER:
        # Merged, they are read from the start again: only where windows pile up.
        kept = [Span(min(s.lo for s in kept), max(s.hi for s in kept), todo)]
    kept.sort(key=lambda s: s.lo)
    # Whatever the window is on, the scan lists the runs the rules follow between windows
    # (stuck runs, a fire's run still running).
    scan = scan_now or (
        every is not None and (cursor.scanned_at is None or now - cursor.scanned_at >= every)
    )
    cursor = replace(cursor, covered=now, spans=(*kept, live), since=cursor.since or now)
    # A first read's queries without a window may be needless once this tick's first
    # answers show the window's time; a server that has not shown it by then may never
    # (quiet groups), and later plans count them, lest they overrun the quota each tick.
    unsure = sum(not q.windowed for q in todo) if first and len(server.fields) > 1 else 0
    read = GroupRead(group, scan, (live,), first=first, unsure=unsure)
    backlog = GroupRead(group, False, tuple(kept)) if kept else None
    return read, backlog, cursor


def overlap(server: ServerFacts) -> float:
    """How far a window reaches back before where the last one ended. On the schedule or
    start time (or not known yet) it also covers runs that start a little after they are
    scheduled, or began since the last scan; on the end time a run is in the window that
    covers its end, once that end is written."""
    return END_OVERLAP if server.field_known == "end" else OVERLAP


def _follow_from(cursor: GroupCursor, server: ServerFacts, now: float) -> float | None:
    """How far back a window reaches for runs that were unfinished at the last scan. Not
    needed when the server filters on the end time: a run that ends now is in any window
    that ends now."""
    if server.field_known == "end" or cursor.floor is None:
        return None
    return max(cursor.floor, now - FOLLOW_LIMIT)


@dataclass(frozen=True)
class _Check:
    """A group's check (`_check_job`) before its job is chosen: it costs one call."""

    group: GroupKey

    cost = 1


def _checks(
    phases: tuple[tuple[str, tuple[Task | _Check, ...]], ...],
    by_group: Mapping[GroupKey, list[JobKey]],
    catalog: Mapping[JobKey, JobInfo],
    records: Mapping[JobKey, JobRecord],
    schedules: _Schedules,
    now: float,
) -> tuple[tuple[str, tuple[Task, ...]], ...]:
    """The checks the quota reached, each with its job chosen."""
    chosen: list[tuple[str, tuple[Task, ...]]] = []
    for name, tasks in phases:
        kept: list[Task] = []
        for task in tasks:
            if not isinstance(task, _Check):
                kept.append(task)
                continue
            jobs = by_group.get(task.group, [])
            job = _check_job(task.group, jobs, catalog, records, schedules, now)
            if job is not None:  # always: a check is planned only where one can be chosen
                kept.append(JobPoll(job, "check"))
        chosen.append((name, tuple(kept)))
    return tuple(chosen)


def _check_job(
    group: GroupKey,
    jobs: list[JobKey],
    catalog: Mapping[JobKey, JobInfo],
    records: Mapping[JobKey, JobRecord],
    schedules: _Schedules,
    now: float,
) -> JobKey | None:
    """The job whose per-job listing best tests the group's answers: the one that fired
    most recently (its run has probably ended), else the one seen most recently."""
    best: tuple[float, JobKey] | None = None
    for key in jobs:
        info = catalog.get(key)
        fired = schedules.last_fire(info, now - 60) if info is not None else None
        if fired is not None and (best is None or fired > best[0]):
            best = (fired, key)
    if best is not None:
        return best[1]
    seen = [
        (max((r.seen for r in rec.instances.values()), default=0.0), k)
        for k, rec in records.items()
        if (k.namespace, k.group) == group
    ]
    if seen:
        return max(seen)[1]
    return jobs[0] if jobs else None


# -- per-job polls ------------------------------------------------------------------------


def _polled(record: JobRecord | None) -> float | None:
    return record.polled_at if record is not None else None


def _next_tick(record: JobRecord | None, now: float, since: float | None = None) -> float:
    """When a job polled for what ends after its last poll fell due: the tick after it (one
    never polled: the tick before per-job polls began, `since`, whose group queries read
    nothing, as its fires count from there, `_listing_due`; else a tick ago, so that it
    goes before the jobs polled last tick, which are due now)."""
    last = _polled(record)
    if last is None:
        return now - TICK if since is None else min(since, now) - TICK
    return min(last + TICK, now)


def _why_due(
    key: JobKey,
    info: JobInfo | None,
    record: JobRecord | None,
    cursor: GroupCursor,
    schedules: _Schedules,
    now: float,
    anchor: float | None = None,
    grace: float | None = None,
    sweep: float = math.inf,
) -> tuple[str, float, int | None] | None:
    """Why a job is polled this tick, since when it is due (the quota serves the longest
    due first), and the run to read by id where that run, unfinished, is all that is due;
    or None when only the sweep would poll it."""
    if record is None or all(finished(r.status) for r in record.instances.values()):
        return _listing_due(info, record, cursor, schedules, now, anchor, grace)
    since = _next_tick(record, now, cursor.since)
    run = _by_id(record, cursor, now, sweep)
    # The listing is made where it shows more than the one run: a first poll, runs fired
    # since the last listing (a fire or a grace due, or no schedule to go by); else the
    # run is read by id, leaving GetJobInstanceList's quota to the fires.
    listing = (
        None if run is None else _listing_due(info, record, cursor, schedules, now, anchor, grace)
    )
    if listing is not None:
        return "unfinished", min(since, listing[1]), None
    return "unfinished", since, run


def _behind(
    config: Config,
    behind: Sequence[tuple[float, JobPoll]],
    swept: int,
    jobs: int,
    began: float,
    calls: int,
    now: float,
) -> str:
    """What a sweep the quota leaves behind costs: the jobs past their sweep_interval not
    polled this tick (oldest first: the longest waiting first), how long the longest
    has waited, what the quota paid instead, what the sweep would need, and what would
    pay for it."""
    every = config.schedulerx.sweep_interval.total_seconds()
    need = math.ceil(jobs * 60 / every)
    never = sum(1 for last, _ in behind if last == 0.0)
    oldest = behind[0][0]
    waited = f"{(now - (oldest or began)) / 60:.0f} min"
    if oldest == 0.0:
        waited += ", since per-job polls began"
    return (
        f"the sweep is behind: {len(behind)} of {jobs} job(s) polled one by one were not "
        f"polled for over {every / 60:g} min (sweep_interval), nor this tick ({never} never "
        f"yet; the longest unpolled for {waited}), so runs started by hand or by API are "
        f"seen only when the sweep reaches them; GetJobInstanceList's quota "
        f"(schedulerx.max_calls_per_minute: {config.schedulerx.max_calls_per_minute}) went "
        f"to due polls (fires, graces, unfinished runs) first and left {swept} of this "
        f"tick's {calls} call(s) to the sweep, which needs up to {need} a minute: raise "
        f"max_calls_per_minute by about {max(1, need - swept)} (with the account's quota)"
        + (f", or set sweep_interval to about {math.ceil(jobs / swept)} min" if swept else "")
    )


def _by_id(record: JobRecord, cursor: GroupCursor, now: float, sweep: float) -> int | None:
    """The job's one unfinished run, where reading it alone (GetJobInstance) tells as much
    as the job's listing: not where more than one run is unfinished, nor where the last
    listing is before per-job polls began (the next one is a first poll, `_poll`) or a
    sweep interval old (a run of hours still gets its job listed that often, for runs
    started by hand, and the heartbeat counts the job read)."""
    runs = [iid for iid, r in record.instances.items() if not finished(r.status)]
    last = record.polled_at
    if len(runs) != 1 or last is None or now - last >= sweep:
        return None
    if cursor.since is not None and cursor.reason != "" and last < cursor.since:
        return None
    return runs[0]


def _by_id_within(polls: Iterable[tuple[float, JobPoll]], calls: int) -> list[JobPoll]:
    """The polls, those read by id as many as GetJobInstance's quota pays for (longest
    due first), the rest made as listings (they go with GetJobInstanceList's)."""
    out: list[JobPoll] = []
    for _, poll in polls:
        if poll.by_id is not None:
            if calls <= 0:
                poll = replace(poll, by_id=None)
            calls -= 1
        out.append(poll)
    return out


def _listing_due(
    info: JobInfo | None,
    record: JobRecord | None,
    cursor: GroupCursor,
    schedules: _Schedules,
    now: float,
    anchor: float | None,
    grace: float | None,
) -> tuple[str, float, int | None] | None:
    """Why the job's listing is due, besides an unfinished run, and since when."""
    schedule = schedules.of(info) if info is not None else None
    if schedule is None:
        # No schedule to go by (a job named by id whose list was not read, a cron this
        # version cannot compute): every tick, as before.
        return "every", _next_tick(record, now, cursor.since), None
    if not schedule.fires:
        return None  # API-triggered: the sweep finds its runs
    from schedulerx_alert.core.schedule import TimeType  # loaded with the schedule

    if anchor is not None:
        schedule = schedule.with_anchor(anchor)
    elif not schedule.exact and schedule.kind == TimeType.FIXED_RATE:
        # A fixed rate whose phase no listing has shown yet (no run seen): its fires
        # here are a guess up to a period off, so it is polled every tick till one shows.
        return "every", _next_tick(record, now, cursor.since), None
    last = _polled(record)
    if last is None:
        # Never polled: fires from the tick before per-job polls began (after a fallback,
        # that tick's group queries were refused and read nothing), or the last minute.
        last = (cursor.since if cursor.since is not None else now) - TICK
    fire = schedule.next_fire(last)
    if fire is not None and fire <= now:
        return "fire", fire, None
    if grace is not None:
        # A fire whose grace ended since the last poll is judged on a listing of now.
        judged = schedule.next_fire(last - grace)
        if judged is not None and judged + grace <= now:
            return "grace", judged + grace, None
    return None


def anchor_of(info: JobInfo | None, runs: Iterable[JobInstance]) -> float | None:
    """The phase of a fixed rate (its latest scheduled fire) or of a second delay (the end of
    its latest run, from which the delay counts), from one job's listing."""
    if info is None or info.time_type is None:
        return None
    from schedulerx_alert.core.schedule import TimeType

    if info.time_type not in (TimeType.FIXED_RATE, TimeType.SECOND_DELAY):
        return None
    scheduled = [r for r in runs if r.trigger_type in (None, TriggerType.SCHEDULED)]
    if info.time_type == TimeType.FIXED_RATE:
        times = [r.schedule_time for r in scheduled if r.schedule_time is not None]
    else:
        times = [r.end_time for r in scheduled if r.end_time is not None]
    return max(times).timestamp() if times else None


def finished(status: int) -> bool:
    parsed = InstanceStatus.parse(status)
    # A status this version does not know is not followed: it may never change.
    return parsed is None or parsed in TERMINAL


class _Schedules:
    """Schedules by TimeConfig, each read once per tick."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self._known: dict[tuple[int | None, str, str], Schedule | None] = {}
        self._last: dict[tuple[int | None, str, str, float], float | None] = {}

    def last_fire(self, info: JobInfo, before: float) -> float | None:
        """The job's last fire before `before`; one computation per schedule and moment
        (an estate of 20,000 jobs has a few thousand schedules, every group's check asks)."""
        key = (info.time_type, info.time_expression, info.calendar, before)
        if key not in self._last:
            schedule = self.of(info)
            fires = schedule is not None and schedule.fires
            self._last[key] = schedule.prev_fire(before) if schedule is not None and fires else None
        return self._last[key]

    def of(self, info: JobInfo) -> Schedule | None:
        key = (info.time_type, info.time_expression, info.calendar)
        if key not in self._known:
            from schedulerx_alert.core.schedule import Schedule, ScheduleError

            try:
                self._known[key] = (
                    None
                    if info.time_type is None
                    else Schedule.from_time_config(
                        info.time_type, info.time_expression, self.zone, calendar=info.calendar
                    )
                )
            except ScheduleError:
                self._known[key] = None
        return self._known[key]


# -- the quota ----------------------------------------------------------------------------


def _trim(
    phases: Iterable[tuple[str, Sequence[Task | _Check]]], budget: Budget
) -> tuple[tuple[tuple[str, tuple[Task | _Check, ...]], ...], tuple[tuple[str, int], ...]]:
    """Keep, phase by phase, what the quota can pay for (at the least cost of each task)."""
    left = {"instances": budget.instance_lists, "jobs": budget.list_jobs, "by_id": budget.by_id}
    kept: list[tuple[str, tuple[Task | _Check, ...]]] = []
    deferred: list[tuple[str, int]] = []
    for name, tasks in phases:
        chosen: list[Task | _Check] = []
        dropped = 0
        for task in tasks:
            purse = (
                "jobs"
                if isinstance(task, Discover)
                else "by_id"
                if isinstance(task, JobPoll) and task.by_id is not None
                else "instances"
            )
            cost = task.cost
            if isinstance(task, GroupRead):
                cost = min(cost, 1)  # a read may stop after any call and go on next tick
            if left[purse] >= cost and (left[purse] > 0 or cost == 0):
                left[purse] -= task.cost
                chosen.append(task)
            elif isinstance(task, (JobPoll, _Check)):  # a group left out shows as behind
                dropped += 1
        kept.append((name, tuple(chosen)))
        if dropped:
            deferred.append((name, dropped))
    return tuple(kept), tuple(deferred)
