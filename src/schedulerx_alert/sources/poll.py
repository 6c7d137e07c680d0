"""The one executor: makes the calls a `Plan` lists, within the quota and the tick's time.

Phases run one after the other, the tasks of a phase side by side (`concurrency` at a time);
a group's own calls run in order (scan, then its windows, page after page). What the server
turns out to do is learnt on the way and kept for the next tick:

- a group query answered with an error (HTTP 400, `Success: false`) or with runs outside
  what was asked (another status, times outside the window) means this server cannot answer
  group queries: the group is polled per job from now (tick.py plans again for it, `merge`),
  and tried again a day later;
- a window returning runs whose schedule, start or end time lies outside it tells which time
  it filters on; so does a probe with a window around one known run's end;
- a page shorter than asked but followed by more means a smaller largest page, and a refused
  PageSize a smaller one to try;
- a group answering nothing at all where a per-job poll of one of its jobs lists a run is
  caught by the hourly cross-check.

Nothing here decides what is news: the listings go to the diff, with whether each is a job's
complete listing and whether it counts as a first poll.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from functools import partial
from typing import TYPE_CHECKING, Any

from schedulerx_alert.config import Config
from schedulerx_alert.core.model import JobInstance, JobKey
from schedulerx_alert.core.polling import (
    GROUP_QUERIES,
    MAX_UNFINISHED,
    MIN_PAGE,
    PER_JOB,
    GroupCursor,
    GroupKey,
    Query,
    ServerFacts,
    SourceState,
    Span,
    Unfinished,
)
from schedulerx_alert.core.rules.history import NOT_READ
from schedulerx_alert.core.state import JobRecord
from schedulerx_alert.sources import discovery, plan
from schedulerx_alert.sources.fetch import (
    WINDOW_SECONDS,
    Attempt,
    CallBudget,
    RetryPolicy,
    attempt,
    poll_job,
)
from schedulerx_alert.sources.listing import EntryProblem, GroupListing, cut
from schedulerx_alert.sources.plan import EVERY, Discover, GroupRead, JobPoll, Plan, Task
from schedulerx_alert.sources.schedulerx import SchedulerXClient
from schedulerx_alert.support.process_log import Progress, no_progress

if TYPE_CHECKING:
    from schedulerx_alert.core.catalog import JobInfo

log = logging.getLogger("schedulerx_alert")

LIST = "GetJobInstanceList"
LIST_JOBS = "ListJobs"
JOB_INFO = "GetJobInfo"
GET_INSTANCE = "GetJobInstance"
#: Ancient runs kept per group (unfinished longer than the follow limit).
MAX_ANCIENT = 200


class Budgets:
    """One sliding one-minute window per API, seeded with the calls earlier ticks made.

    SchedulerX's quota is per API, so each action has its own; any action a caller names
    (GetLog, later) gets one on first use, and is kept in the state like the others.
    """

    def __init__(
        self,
        limit: int,
        history: Mapping[str, tuple[float, ...]],
        clock: Callable[[], float],
    ) -> None:
        self.limit = limit
        self.clock = clock
        self._history = dict(history)
        self._lock = threading.Lock()
        self._budgets: dict[str, CallBudget] = {}
        for action in (LIST, LIST_JOBS, JOB_INFO, *history):
            self[action]

    def __getitem__(self, action: str) -> CallBudget:
        with self._lock:
            budget = self._budgets.get(action)
            if budget is None:
                budget = CallBudget(self.limit, self._history.get(action, ()), self.clock)
                self._budgets[action] = budget
            return budget

    def left(self, action: str, by: float | None = None) -> int:
        """Calls `action` may make now, or by the moment `by` (as earlier calls leave the
        window: the executor waits for them, CallBudget.acquire)."""
        if by is None:
            return max(0, self.limit - len(self[action].recent()))
        return self[action].free_by(by)

    def recent(self) -> dict[str, tuple[float, ...]]:
        with self._lock:
            budgets = dict(self._budgets)
        return {action: budget.recent() for action, budget in budgets.items()}


@dataclass
class PollResult:
    # Each job's runs read this tick (merged from every answer that listed it).
    listings: dict[JobKey, dict[int, JobInstance]] = field(default_factory=dict)
    # Jobs whose listing is a per-job poll's: everything SchedulerX lists for the job.
    complete: set[JobKey] = field(default_factory=set)
    # Jobs whose listing counts as a first poll (their past is history).
    first: set[JobKey] = field(default_factory=set)
    errors: dict[JobKey, str] = field(default_factory=dict)
    group_errors: dict[GroupKey, str] = field(default_factory=dict)
    entry_problems: list[EntryProblem] = field(default_factory=list)
    # Per-job polls that were due and not made (quota, time), and sweep polls left.
    deferred: list[JobKey] = field(default_factory=list)
    swept_left: int = 0
    # Groups whose newest window was not read to the end, and groups with older windows
    # still to read (after an outage): from when.
    behind: dict[GroupKey, float] = field(default_factory=dict)
    catching_up: dict[GroupKey, float] = field(default_factory=dict)
    # Jobs polled one by one, and groups whose newest window was read to the end.
    polled: set[JobKey] = field(default_factory=set)
    groups_read: set[GroupKey] = field(default_factory=set)
    # Groups read by group queries: up to when every run of their jobs is known (the
    # rules judge missed fires no further; core/rules/history.py `covered`).
    read_to: dict[GroupKey, float] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    auth_errors: int = 0
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    sources: SourceState = field(default_factory=SourceState)
    catalog: dict[JobKey, JobInfo] = field(default_factory=dict)
    stopped: str = ""  # why work was left ("quota", "time"), if it was
    # Groups whose scan of running and waiting runs the quota or the time cut off.
    scans_cut: list[GroupKey] = field(default_factory=list)

    def polls(self) -> dict[JobKey, list[JobInstance]]:
        return {job: list(runs.values()) for job, runs in self.listings.items()}

    def covered(self, jobs: Iterable[JobKey]) -> dict[JobKey, float]:
        """Up to when each job's runs are known, for jobs not listed in full: a job of a
        group read to the end is known that far even without a run to list; any other
        job without a complete listing is not known at all."""
        return {
            j: self.read_to.get((j.namespace, j.group), NOT_READ)
            for j in jobs
            if j not in self.complete
        }

    def read(self, jobs: Iterable[JobKey]) -> int:
        """How many of `jobs` this tick saw every run of that needs attention."""
        return sum(
            1 for j in jobs if j in self.polled or (j.namespace, j.group) in self.groups_read
        )


def merge(first: PollResult, then: PollResult) -> PollResult:
    """One tick's reading from two executions: `then` planned from `first`'s sources and
    catalog for some groups only (its cursors are of those groups alone). Each group's
    cursor is the one its last reader left; a job `then` polled is no longer an error or
    due. Nothing is dropped: runs of a job listed twice go by their progress (`_keep`)."""
    listings = {job: dict(runs) for job, runs in first.listings.items()}
    for job, runs in then.listings.items():
        _keep(listings.setdefault(job, {}), runs.values())
    deferred = [job for job in first.deferred if job not in then.polled]
    return PollResult(
        listings=listings,
        complete=first.complete | then.complete,
        first=first.first | then.first,
        errors={
            **{job: e for job, e in first.errors.items() if job not in then.polled},
            **then.errors,
        },
        group_errors={**first.group_errors, **then.group_errors},
        entry_problems=[*first.entry_problems, *then.entry_problems],
        deferred=[*deferred, *(job for job in then.deferred if job not in deferred)],
        swept_left=first.swept_left + then.swept_left,
        behind=_earliest(first.behind, then.behind),
        catching_up=_earliest(first.catching_up, then.catching_up),
        polled=first.polled | then.polled,
        groups_read=first.groups_read | then.groups_read,
        read_to=_earliest(first.read_to, then.read_to),
        calls=first.calls + then.calls,
        auth_errors=first.auth_errors + then.auth_errors,
        notes=[*first.notes, *then.notes],
        problems=[*first.problems, *then.problems],
        sources=SourceState(
            # Learnt from `first`'s on: the later facts, and the calls of both.
            server=then.sources.server,
            groups={**first.sources.groups, **then.sources.groups},
            calls={**first.sources.calls, **then.sources.calls},
            anchors={**first.sources.anchors, **then.sources.anchors},
        ),
        catalog={**first.catalog, **then.catalog},
        stopped=first.stopped or then.stopped,
        scans_cut=[*first.scans_cut, *then.scans_cut],
    )


def _keep(known: dict[int, JobInstance], runs: Iterable[JobInstance]) -> None:
    """Each run as the furthest on of the answers that listed it (an answer read a
    moment earlier may show it still running)."""
    for run in runs:
        before = known.get(run.instance_id)
        if before is None or _progress(run) >= _progress(before):
            known[run.instance_id] = run


def _earliest(a: Mapping[GroupKey, float], b: Mapping[GroupKey, float]) -> dict[GroupKey, float]:
    return {g: min(a.get(g, math.inf), b.get(g, math.inf)) for g in (*a, *b)}


def refused_groups(the_plan: Plan, result: PollResult) -> set[GroupKey]:
    """The groups the plan read by group queries whose server refused them in this
    execution: polled one by one from now, and not yet this tick."""
    return {
        group
        for group, mode in the_plan.modes.items()
        if mode == GROUP_QUERIES and result.sources.group(group).mode == PER_JOB
    }


@dataclass
class _Run:
    """Everything one execution shares between its threads (under `lock`)."""

    config: Config
    plan: Plan
    client: SchedulerXClient
    budgets: Budgets
    deadline: float
    retry: RetryPolicy
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    records: Mapping[JobKey, JobRecord]
    watched: Mapping[JobKey, Any]
    server: ServerFacts
    cursors: dict[GroupKey, GroupCursor]
    catalog: dict[JobKey, JobInfo]
    result: PollResult
    lock: threading.Lock = field(default_factory=threading.Lock)
    # One task of a group at a time: a group's tasks read and write its cursor (an older
    # window's read and its newest one may share a phase), and an interleaving of two
    # could leave the cursor saying runs were read that were not.
    group_locks: dict[GroupKey, threading.Lock] = field(default_factory=dict)
    probing: bool = False
    # Whether this tick asked for a page of a group's history to learn the largest page.
    paged: bool = False
    anchors: dict[JobKey, float] = field(default_factory=dict)
    followed: set[JobKey] = field(default_factory=set)
    # Calls left of the catch-up's share (Plan.catch_up_share).
    share_left: int = 0
    # Runs this tick's group queries listed, per group: a cross-check of one needs no call.
    group_listed: dict[GroupKey, set[int]] = field(default_factory=dict)

    # -- shared state --------------------------------------------------------------------

    def cursor(self, group: GroupKey) -> GroupCursor:
        with self.lock:
            return self.cursors.get(group) or GroupCursor()

    def update(self, group: GroupKey, **changes: Any) -> None:
        with self.lock:
            self.cursors[group] = replace(self.cursors.get(group) or GroupCursor(), **changes)

    def call(self, action: str, fn: Callable[[], Any]) -> Attempt[Any]:
        tried = attempt(
            fn,
            self.budgets[action],
            self.deadline,
            self.client.timeout,
            self.retry,
            self.clock,
            self.sleep,
        )
        with self.lock:
            self.result.calls[action] += tried.calls
            if tried.value is None and tried.error is None and tried.stopped:
                self.result.stopped = self.result.stopped or tried.stopped
            if tried.error is not None and tried.error.auth:
                self.result.auth_errors += 1
        return tried

    def add(self, job: JobKey, runs: tuple[JobInstance, ...], complete: bool, first: bool) -> None:
        with self.lock:
            _keep(self.result.listings.setdefault(job, {}), runs)
            if complete:
                self.result.complete.add(job)
            if first:
                self.result.first.add(job)

    def follow_up(self, job: JobKey) -> bool:
        """Whether the job is still to be polled for a run that ended unseen (once a tick)."""
        with self.lock:
            if job in self.followed:
                return False
            self.followed.add(job)
            return True

    def is_first(self, job: JobKey, group_first: bool) -> bool:
        record = self.records.get(job)
        if record is None:
            return group_first
        return False


@dataclass(frozen=True)
class Known:
    """What earlier ticks left that the executor reads: how far each group was read and
    what its server does, the job catalog, each job's run records, the watched jobs."""

    sources: SourceState
    catalog: Mapping[JobKey, JobInfo]
    records: Mapping[JobKey, JobRecord]
    watched: Mapping[JobKey, Any]


@dataclass(frozen=True)
class Calls:
    """How the executor reaches SchedulerX: the client, the quota, the time it has.
    `progress` hears of each task done (a status line on a terminal)."""

    client: SchedulerXClient
    budgets: Budgets
    deadline: float
    concurrency: int = 4
    retry: RetryPolicy | None = None
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    progress: Progress = no_progress


def execute(config: Config, the_plan: Plan, known: Known, calls: Calls) -> PollResult:
    """Make the plan's calls; every failure is collected per job or group, never raised."""
    sources, client, budgets = known.sources, calls.client, calls.budgets
    server = sources.server
    if server.endpoint != client.base_url:
        # Another endpoint is another server: what was learnt of the old one does not hold.
        server = ServerFacts(endpoint=client.base_url)
    run = _Run(
        config=config,
        plan=the_plan,
        client=client,
        budgets=budgets,
        deadline=calls.deadline,
        retry=calls.retry or RetryPolicy(),
        clock=calls.clock,
        sleep=calls.sleep,
        records=known.records,
        watched=known.watched,
        server=server,
        cursors=dict(the_plan.cursors),
        catalog=dict(known.catalog),
        result=PollResult(),
        anchors=dict(sources.anchors),
        share_left=the_plan.catch_up_share,
    )
    total = sum(len(tasks) for _, tasks in the_plan.phases)
    done = 0

    def one(phase: str, task: Task) -> None:
        nonlocal done
        _guarded(run, phase, task)
        with run.lock:
            done += 1
            calls.progress("SchedulerX reads", done, total)

    for name, tasks in the_plan.phases:
        if not tasks:
            continue
        with ThreadPoolExecutor(max_workers=max(1, calls.concurrency)) as pool:
            list(pool.map(one, [name] * len(tasks), tasks))
    result = run.result
    result.problems.extend(the_plan.problems)
    if result.scans_cut:
        result.problems.append(_cut_scans(result.scans_cut, result.stopped))
    for group, cursor in run.cursors.items():
        if the_plan.modes.get(group) == GROUP_QUERIES and cursor.mode == GROUP_QUERIES:
            for span in cursor.spans:
                late = result.behind if span.hi >= the_plan.now else result.catching_up
                late[group] = min(late.get(group, span.lo), span.lo)
            if group in result.groups_read:
                # Older windows still to read (after an outage) may hold a fire's run.
                read_to = _read_to(run.server, cursor, the_plan.now)
                result.read_to[group] = min(read_to, result.catching_up.get(group, read_to))
    result.sources = SourceState(
        server=run.server,
        groups={
            group: cursor
            for group, cursor in run.cursors.items()
            if group in the_plan.modes  # groups no longer watched are forgotten
        },
        calls={
            action: times for action, times in budgets.recent().items() if action != LIST and times
        },
        anchors={
            key: at
            for key, at in run.anchors.items()
            if the_plan.modes.get((key.namespace, key.group)) in (PER_JOB, EVERY)
        },
    )
    result.catalog = run.catalog
    for phase, count in the_plan.deferred:
        if phase == plan.SWEEP:
            result.swept_left += count
    return result


def _cut_scans(groups: list[GroupKey], why: str) -> str:
    """What a scan cut off costs: it goes first next tick (its group is the longest
    unscanned), and until then its stuck and waiting runs are as the last scan saw them."""
    ordered = sorted(groups)
    names = ", ".join(f"{g[0]}/{g[1]}" for g in ordered[:3])
    more = f" and {len(ordered) - 3} more" if len(ordered) > 3 else ""
    cause = f" ({cut(why)})" if why else ""
    return (
        f"the scan of running and waiting runs of {len(ordered)} group(s) was cut off this "
        f"tick by the SchedulerX quota or the tick's time{cause}: {names}{more}; it goes "
        "first next tick, and until then their stuck, long and waiting runs (and fires to "
        "judge) wait for it"
    )


def _guarded(run: _Run, phase: str, task: Task) -> None:
    group = (task.job.namespace, task.job.group) if isinstance(task, JobPoll) else task.group
    with run.lock:
        group_lock = run.group_locks.setdefault(group, threading.Lock())
    with group_lock:
        _one_task(run, phase, task)


def _one_task(run: _Run, phase: str, task: Task) -> None:
    try:
        if isinstance(task, GroupRead):
            _read_group(run, task)
        elif isinstance(task, JobPoll):
            _poll(run, task)
        else:
            _discover(run, task)
    except Exception as exc:  # a defect must cost one task, never the tick
        log.exception("%s task failed", phase)
        what = f"{type(exc).__name__}: {cut(str(exc))}"
        with run.lock:
            if isinstance(task, JobPoll):
                run.result.errors[task.job] = f"could not be polled ({what})"
            else:
                run.result.group_errors[task.group] = f"could not be read ({what})"


# -- per-job polls --------------------------------------------------------------------------


def _poll(run: _Run, task: JobPoll) -> None:
    group = (task.job.namespace, task.job.group)
    if task.by_id is not None and _read_by_id(run, task.job, task.by_id):
        return
    outcome = poll_job(
        run.client, task.job, run.budgets[LIST], run.deadline, run.retry, run.clock, run.sleep
    )
    with run.lock:
        run.result.calls[LIST] += outcome.calls
        if outcome.auth:
            run.result.auth_errors += 1
    listing = outcome.listing
    if listing is None:
        with run.lock:
            if outcome.deferred:
                if task.why == "sweep":
                    run.result.swept_left += 1
                elif task.why != "check":  # a cross-check waits for the next tick
                    run.result.deferred.append(task.job)
                run.result.stopped = run.result.stopped or (outcome.error or "")
            else:
                run.result.errors[task.job] = outcome.error or "unknown error"
        return
    with run.lock:
        run.result.entry_problems.extend(listing.problems)
    if listing.entries and not listing.instances:
        with run.lock:
            run.result.errors[task.job] = (
                f"GetJobInstanceList: none of the {listing.entries} run(s) listed "
                f"could be read, e.g. {listing.problems[0]}"
            )
        return
    mode = run.plan.modes.get(group, PER_JOB)
    if mode == GROUP_QUERIES:
        # The group's windows decide what is news; a per-job listing adds only runs that
        # ended inside them (a follow-up or a cross-check), and never prunes anything.
        since = run.plan.news_since.get(group, run.plan.now)
        recent = tuple(r for r in listing.instances if r.terminal and _ended(r) >= since)
        run.add(task.job, recent, complete=False, first=False)
        if task.why == "check":
            _cross_check(run, group, listing.instances)
        return
    cursor = run.plan.cursors.get(group) or GroupCursor()
    record = run.records.get(task.job)
    first = (
        record is None
        or record.polled_at is None
        or (cursor.since is not None and cursor.reason != "" and record.polled_at < cursor.since)
    )
    run.add(task.job, listing.instances, complete=True, first=first)
    anchor = plan.anchor_of(run.catalog.get(task.job), listing.instances)
    with run.lock:
        run.result.polled.add(task.job)
        if anchor is not None:
            run.anchors[task.job] = anchor


def _read_by_id(run: _Run, job: JobKey, iid: int) -> bool:
    """Read a job's one unfinished run by id (GetJobInstance): whether it was. Its quota
    spent, no time left, an error, or no such run (deleted, or never listed again): the
    job's listing is made instead, as it would have been. What was read is a part of the
    job's runs (its last complete listing stays as it was: fires since it are due, plan.py
    `_why_due`), and, of a fixed rate or second delay, moves its phase on."""
    tried = run.call(GET_INSTANCE, partial(run.client.get_job_instance, job, iid))
    found = tried.value
    if found is None:
        return False
    run.add(job, (found,), complete=False, first=False)
    anchor = plan.anchor_of(run.catalog.get(job), (found,))
    with run.lock:
        run.result.polled.add(job)
        if anchor is not None and anchor > run.anchors.get(job, -math.inf):
            run.anchors[job] = anchor
    return True


# -- group queries --------------------------------------------------------------------------


class _Stop(Exception):
    """Group reading stops for this tick (quota, time, an error); `fell_back` if the server
    cannot answer group queries."""

    def __init__(self, why: str, fell_back: bool = False) -> None:
        super().__init__(why)
        self.why = why
        self.fell_back = fell_back


def _read_group(run: _Run, task: GroupRead) -> None:
    group = task.group
    if run.cursor(group).mode != GROUP_QUERIES:
        return  # fell back earlier this tick
    scanned: set[int] | None = None
    if task.spans and task.spans[-1].hi >= run.plan.now:
        _follow_long(run, group, task.spans[0].lo)
    before = run.cursor(group).unfinished
    scan = task.scan
    if scan and task.until_end:
        with run.lock:
            # Learnt from this tick's first answers: on the end time it waits its turn.
            scan = run.server.field_known != "end"
    try:
        if scan:
            try:
                scanned = _scan(run, group, task.first)
            except _Stop as stop:
                if not stop.why and not stop.fell_back:
                    with run.lock:
                        run.result.scans_cut.append(group)
                raise
        for span in task.spans:
            current = _current(run, group, span)
            if current is not None:
                _read_span(run, group, current, task.first, task.share)
    except _Stop as stop:
        if not stop.fell_back:
            _follow(run, group, task.first, before, scanned)
        if stop.fell_back:
            with run.lock:
                run.cursors[group] = plan.fall_back(run.cursors[group], stop.why, run.plan.now)
                run.result.notes.append(
                    f"group {group[0]}/{group[1]}: the server cannot answer group queries "
                    f"({cut(stop.why)}); its jobs are polled one by one, and group queries "
                    "tried again in 24 h"
                )
        elif stop.why:
            with run.lock:
                run.result.group_errors.setdefault(group, stop.why)
        return
    _follow(run, group, task.first, before, scanned)
    if task.spans and task.spans[-1].hi >= run.plan.now:
        with run.lock:
            run.result.groups_read.add(group)


def _follow_long(run: _Run, group: GroupKey, reach: float) -> None:
    """Read, one by one (GetJobInstance, a quota of its own), the runs remembered unfinished
    that this tick's window cannot list when they end: scheduled or started before `reach`,
    where the window may be on the schedule or start time. However long a run lasts, its
    end is seen in the tick it happens. When the quota or the time leaves some unread, the
    tick says so, and the next tick starts where this one stopped."""
    with run.lock:
        fields = tuple(f for f in run.server.fields if f != "end")
        remembered = (run.cursors.get(group) or GroupCursor()).unfinished
    if not fields:
        return  # a window on the end time lists any run that ends now
    old = sorted(
        item
        for item in remembered
        if _before(item, fields, reach) and _may_watch(run, JobKey(group[0], group[1], item[0]))
    )
    if not old:
        return
    room = run.budgets.left(GET_INSTANCE)
    if 0 < room < len(old):
        # Turn by turn: each is read every few ticks rather than some never.
        turn = (int(run.plan.now // 60) * room) % len(old)
        old = old[turn:] + old[:turn]
    followed = 0
    why = ""
    for job_id, iid, *_ in old:
        key = JobKey(group[0], group[1], job_id)
        tried = run.call(GET_INSTANCE, partial(run.client.get_job_instance, key, iid))
        if tried.value is None and tried.error is None:
            why = tried.stopped or "no time left in this tick"
            break
        if tried.value is None:
            why = str(tried.error) if tried.error is not None else "its answer lists no run"
            continue
        followed += 1
        found = tried.value
        if key in run.watched or (
            found.status_code in _alerting(run.config, group) and _resolve(run, key)
        ):
            run.add(key, (found,), complete=False, first=run.is_first(key, False))
    if followed < len(old):
        oldest = min((t for item in old for t in item[3:5] if t is not None), default=reach)
        with run.lock:
            run.result.problems.append(
                f"group {group[0]}/{group[1]}: {len(old) - followed} of {len(old)} run(s) "
                f"unfinished since before the window (the oldest from "
                f"{(run.plan.now - oldest) / 3600:.1f} h ago) could not be read this tick "
                f"({cut(why)}): their end, if it came, is seen next tick"
            )


def _may_watch(run: _Run, job: JobKey) -> bool:
    """Watched, or of a group whose job list does not show it yet (a first tick reads the
    list after its scan): its run is remembered, and looked up if it fails."""
    if job in run.watched:
        return True
    with run.lock:
        listed = job in run.catalog
    return not listed and discovery.discovers(run.config, (job.namespace, job.group))


def _before(item: Unfinished, fields: tuple[str, ...], reach: float) -> bool:
    """Whether a window from `reach` on one of `fields` may miss the run's end."""
    _, _, _, scheduled, started, _ = item
    times = {"schedule": scheduled, "start": started}
    for name in fields:
        moment = times.get(name)
        if name == "schedule" and moment is None:
            return True  # not known: followed, to be safe
        if moment is not None and moment < reach:
            return True
    return False  # a run not started yet starts inside the window


def _page_size(run: _Run) -> int:
    with run.lock:
        return run.server.page_size


def _query_pages(
    run: _Run,
    group: GroupKey,
    query: Query,
    window: tuple[float, float] | None,
    first_page: int,
    on_page: Callable[[int, GroupListing], None],
    share: bool = False,
) -> None:
    """Page through one group query from `first_page` to a short page; `on_page` sees each.

    Raises `_Stop` when the quota, the time, the catch-up's share (`share`) or the server
    ends it.
    """
    page = first_page
    size = _page_size(run)
    while True:
        with run.lock:
            seen = run.server.page_seen
        if share and not _claim_share(run):
            raise _Stop("")
        listing = _ask(run, group, query, window, page, size)
        if listing is None:  # the page size changed: from the start again
            size, page = _page_size(run), 1
            continue
        on_page(page, listing)
        with run.lock:
            run.server = replace(run.server, page_seen=max(run.server.page_seen, listing.entries))
        if listing.entries >= size:
            page += 1
            continue
        if listing.entries > 0 and listing.entries >= seen:
            # Fewer runs than asked for, and never more on one page: the end, or a server
            # whose largest page is smaller than asked. A longer page of the group's
            # history tells once for all (page_seen); else the next page tells.
            if share and not _claim_share(run):
                raise _Stop("")
            longest = _longest_page(run, group, size)
            if longest is not None and longest > listing.entries:
                return
            if longest is not None and share and not _claim_share(run):
                raise _Stop("")
            more = _ask(run, group, query, window, page + 1, size)
            if more is not None and more.entries:
                with run.lock:
                    run.server = replace(
                        run.server, page_size=min(run.server.page_size, listing.entries)
                    )
                size, page = _page_size(run), 1
                continue
        return


def _longest_page(run: _Run, group: GroupKey, size: int) -> int | None:
    """The runs on one page of the group's history (no window, every status), once a tick
    while no page as long as asked was seen: a group keeps days of runs, so the page is
    usually full, and from then on a shorter page is the end of any listing (page_seen).
    None when not asked, 0 when not answered."""
    with run.lock:
        if run.paged or run.server.page_seen >= size:
            return None
        run.paged = True
    tried = run.call(
        LIST, lambda: run.client.group_instance_list(group[0], group[1], None, None, 1, size)
    )
    if tried.value is None:
        return 0  # the next page is asked instead, and says why if it fails too
    entries: int = tried.value.entries
    with run.lock:
        run.server = replace(run.server, page_seen=max(run.server.page_seen, entries))
    return entries


def _ask(
    run: _Run,
    group: GroupKey,
    query: Query,
    window: tuple[float, float] | None,
    page: int,
    size: int,
) -> GroupListing | None:
    """One page; None when the server wants smaller pages. Checks that the answer honours
    the filters, and learns from it which time the window filters on."""
    bounds = None if window is None else _ms(window)
    tried = run.call(
        LIST,
        lambda: run.client.group_instance_list(
            group[0], group[1], query.status, bounds, page, size
        ),
    )
    if tried.value is None:
        error = tried.error
        if error is None:
            raise _Stop("")  # quota or time: go on next tick
        if error.retryable or error.auth:
            raise _Stop(str(error))
        if "pagesize" in f"{error.code} {error.message}".lower() and size > MIN_PAGE:
            # A PageSize refused: halve it (down to ten, the documented default).
            with run.lock:
                run.server = replace(run.server, page_size=max(MIN_PAGE, size // 2))
            return None
        raise _Stop(f"GetJobInstanceList without JobId: {error}", fell_back=True)
    listing: GroupListing = tried.value
    with run.lock:
        run.result.entry_problems.extend(listing.problems)
        for one in listing.jobs.values():
            run.result.entry_problems.extend(one.problems)
    runs = [r for one in listing.jobs.values() for r in one.instances]
    wrong = [r for r in runs if query.status is not None and r.status_code != query.status]
    if wrong:
        raise _Stop(
            f"asked for status {query.status}, the answer lists run {wrong[0].instance_id} "
            f"in status {wrong[0].status_code}: it ignores the filters",
            fell_back=True,
        )
    if window is not None and runs:
        _learn_field(run, window, runs)
    return listing


def _learn_field(run: _Run, window: tuple[float, float], runs: list[JobInstance]) -> None:
    """Drop from the candidates each time field some listed run has outside the window."""
    low, high = math.floor(window[0]) - 1, math.floor(window[1]) + 1
    with run.lock:
        fields = list(run.server.fields)
        for r in runs:
            for name in list(fields):
                moment = _time_of(r, name)
                if moment is None or not low <= moment <= high:
                    fields.remove(name)
        if not fields:
            raise _Stop(
                "the answer lists runs whose schedule, start and end times all lie outside "
                "the window asked for: it ignores the filters",
                fell_back=True,
            )
        if tuple(fields) != run.server.fields:
            log.info("window filters on one of: %s", ", ".join(fields))
            run.server = replace(run.server, fields=tuple(fields))


def _scan(run: _Run, group: GroupKey, group_first: bool) -> set[int]:
    """List the group's running and waiting runs: the earliest is how far windows reach back;
    runs unfinished for longer than the follow limit are kept by id, and polled per job once
    a scan no longer lists them. The rules see them all (stuck runs, a fire's run), and
    they are remembered until a window shows them ended or the next scan."""
    now = run.plan.now
    unfinished: dict[int, JobInstance] = {}

    def keep(_: int, listing: GroupListing) -> None:
        for one in listing.jobs.values():
            for r in one.instances:
                unfinished[r.instance_id] = r

    for status in plan.UNFINISHED:
        _query_pages(run, group, Query(status, windowed=False), None, 1, keep)
    limit = now - plan.FOLLOW_LIMIT
    times = {iid: _started(r) for iid, r in unfinished.items()}
    recent = [t for t in times.values() if t is not None and t >= limit]
    ancient = sorted(
        (r.job.job_id, iid, times[iid] or 0.0)
        for iid, r in unfinished.items()
        if times[iid] is None or (times[iid] or 0.0) < limit
    )[:MAX_ANCIENT]
    before = run.cursor(group).ancient
    gone = [item for item in before if item[1] not in unfinished]
    for job_id, _, _ in gone:
        # It ended since the last scan, hours after it was scheduled: its own listing tells how.
        key = JobKey(group[0], group[1], job_id)
        if key in run.watched and run.follow_up(key):
            _poll(run, JobPoll(key, "unfinished"))
    run.update(
        group,
        floor=min(recent, default=None),
        scanned_at=now,
        ancient=tuple(ancient),
        unfinished=_newest(_unfinished(r) for r in unfinished.values() if _may_watch(run, r.job)),
    )
    for job, runs in _by_job(unfinished.values()).items():
        if job in run.watched:
            run.add(job, runs, complete=False, first=run.is_first(job, group_first))
    return set(unfinished)


def _follow(
    run: _Run,
    group: GroupKey,
    group_first: bool,
    before: tuple[Unfinished, ...],
    scanned: set[int] | None,
) -> None:
    """Keep the group's unfinished runs known between scans: those this tick listed
    unfinished join them, those it listed ended leave them, and the rest are handed to
    the rules as last seen (a run stuck for an hour is seen every tick, not every scan).
    A run a scan no longer lists and no window showed ending (a long run's success, which
    the window in every status does not reach back for) is read in its job's listing."""
    with run.lock:
        listed = {
            r.instance_id: r
            for job, runs in run.result.listings.items()
            if (job.namespace, job.group) == group
            for r in runs.values()
        }
        cursor = run.cursors.get(group) or GroupCursor()
        remembered = {item[1]: item for item in cursor.unfinished}
    for iid, r in listed.items():
        if plan.finished(r.status_code):
            remembered.pop(iid, None)
        else:
            remembered[iid] = _unfinished(r)
    ended = {iid for iid, r in listed.items() if plan.finished(r.status_code)}
    for job_id, iid, *_ in before if scanned is not None else ():
        key = JobKey(group[0], group[1], job_id)
        if iid in (scanned or ()) or iid in ended or key not in run.watched:
            continue
        if run.follow_up(key):
            _poll(run, JobPoll(key, "unfinished"))
    kept = _newest(remembered.values())
    run.update(group, unfinished=kept)
    zone = run.config.zone
    runs = [_instance(group, item, zone) for item in kept if item[1] not in listed]
    for job, theirs in _by_job(runs).items():
        if job in run.watched:
            run.add(job, theirs, complete=False, first=run.is_first(job, group_first))


def _read_to(server: ServerFacts, cursor: GroupCursor, now: float) -> float:
    """Up to when a group read to the end this tick has all its runs known: now where the
    window is known to be on the schedule time; else as of the last scan, for a window on
    the end time lists no run still running, and one on the start time no run waiting (a
    run started, or due, since the scan and not ended shows in none)."""
    if server.fields == ("schedule",):
        return now
    if cursor.scanned_at is None and cursor.since is not None:
        # Not scanned yet (first scans are spread, plan.py `_spread_scans`): the rules look
        # first as of when the group was first read, as if it had been scanned then, and
        # judge the fires since at its first scan.
        return cursor.since
    return cursor.scanned_at if cursor.scanned_at is not None else NOT_READ


def _newest(items: Iterable[Unfinished]) -> tuple[Unfinished, ...]:
    return tuple(sorted(items, key=lambda item: item[1])[-MAX_UNFINISHED:])


def _unfinished(r: JobInstance) -> Unfinished:
    return (r.job.job_id, r.instance_id, r.status_code, _time_of(r, "schedule"),
            _time_of(r, "start"), r.trigger_type)  # fmt: skip


def _instance(group: GroupKey, item: Unfinished, zone: tzinfo) -> JobInstance:
    job_id, iid, status, scheduled, started, trigger = item
    return JobInstance(
        JobKey(group[0], group[1], job_id),
        iid,
        status,
        schedule_time=None if scheduled is None else datetime.fromtimestamp(scheduled, zone),
        start_time=None if started is None else datetime.fromtimestamp(started, zone),
        trigger_type=trigger,
    )


def _by_job(runs: Iterable[JobInstance]) -> dict[JobKey, tuple[JobInstance, ...]]:
    out: dict[JobKey, tuple[JobInstance, ...]] = {}
    for r in runs:
        out[r.job] = (*out.get(r.job, ()), r)
    return out


def _current(run: _Run, group: GroupKey, span: Span) -> Span | None:
    """Where a window of the plan stands now: a read earlier this tick (the catch-up's
    share) may have gone on with it, or read it to the end (None)."""
    with run.lock:
        cursor = run.cursors.get(group) or GroupCursor()
    return next((s for s in cursor.spans if (s.lo, s.hi) == (span.lo, span.hi)), None)


def _claim_share(run: _Run) -> bool:
    """One call of the catch-up's share, if any is left."""
    with run.lock:
        if run.share_left <= 0:
            return False
        run.share_left -= 1
        return True


def _read_span(
    run: _Run, group: GroupKey, span: Span, group_first: bool, share: bool = False
) -> None:
    """Read one window to the end, query by query; keep where it stopped. `share`: its
    calls come out of the catch-up's share, and it stops when that is spent."""
    while span.todo:
        taker = _Taker(run, group, span, group_first)
        query = span.todo[0]
        if _started_is_out(run, query):
            span = span.next_query()
            _keep_span(run, group, span)
            continue
        window = (span.lo, span.hi) if query.windowed else None
        if window is not None and query.status is None and span.recent is not None:
            window = (max(span.lo, span.recent), span.hi)
        try:
            _query_pages(run, group, query, window, span.page, taker.take, share)
        except _Stop:
            if taker.page:
                span = replace(span, page=taker.page + 1, started=True)
            _keep_span(run, group, span)
            raise
        span = span.next_query()
        _keep_span(run, group, span)


def _started_is_out(run: _Run, query: Query) -> bool:
    """A status whose runs may never start, asked without a window because the window
    might be on the start time (`plan.queries`), once this tick's answers showed it is
    not: the window lists those runs too."""
    if query.windowed or query.status not in plan.UNSTARTED:
        return False
    with run.lock:
        return "start" not in run.server.fields


@dataclass
class _Taker:
    """What is done with each page of one window's query."""

    run: _Run
    group: GroupKey
    span: Span
    group_first: bool
    page: int = 0

    def take(self, page: int, listing: GroupListing) -> None:
        self.page = page
        query = self.span.todo[0]
        _take_rows(self.run, self.group, self.span, listing, self.group_first)
        if not query.windowed:
            _probe_start(self.run, self.group, listing)
        else:
            _probe_end(self.run, self.group, listing, query)


def _keep_span(run: _Run, group: GroupKey, span: Span) -> None:
    """Replace the cursor's copy of this window (same bounds) with where it stands now."""
    with run.lock:
        cursor = run.cursors.get(group) or GroupCursor()
        spans = [s for s in cursor.spans if (s.lo, s.hi) != (span.lo, span.hi)]
        if span.todo:
            spans.append(span)
            spans.sort(key=lambda s: s.hi)
        run.cursors[group] = replace(cursor, spans=tuple(spans))


def _take_rows(
    run: _Run, group: GroupKey, span: Span, listing: GroupListing, group_first: bool
) -> None:
    """Runs of watched jobs that ended inside the window go to the diff; runs of jobs the
    group's list does not show yet are looked up first, when one of them is to be
    announced (a query in every status lists every run of a job not listed yet)."""
    alerting = _alerting(run.config, group)
    with run.lock:
        run.group_listed.setdefault(group, set()).update(_ids(listing))
    for job, one in listing.jobs.items():
        runs = tuple(r for r in one.instances if _ended(r) >= span.lo)
        if not runs:
            continue
        if job not in run.watched and not (
            any(r.status_code in alerting for r in runs) and _resolve(run, job)
        ):
            continue
        run.add(job, runs, complete=False, first=run.is_first(job, group_first))


def _alerting(config: Config, group: GroupKey) -> frozenset[int]:
    return frozenset(
        status.value
        for rule in config.watch
        if (rule.namespace, rule.group) == group
        for status in rule.alert_on
    )


def _resolve(run: _Run, job: JobKey) -> bool:
    """Whether a job missing from the watched list is watched after all: one created since
    its group's list was read. Its entry is read (GetJobInfo) when the rules need its name."""
    group = (job.namespace, job.group)
    with run.lock:
        info = run.catalog.get(job)
    if info is not None:
        return any(discovery.matches(rule, info) for rule in run.config.watch)
    if not discovery.discovers(run.config, group):
        return False
    tried = run.call(
        JOB_INFO,
        lambda: run.client.call(
            "GetJobInfo",
            {"Namespace": job.namespace, "GroupId": job.group, "JobId": str(job.job_id)},
        ),
    )
    if tried.value is not None:
        data = tried.value.get("Data")
        config = data.get("JobConfigInfo") if isinstance(data, Mapping) else None
        if isinstance(config, Mapping):
            try:
                info = discovery.parse_job(group, {"JobId": job.job_id, **config}, run.plan.now)
            except ValueError:
                info = None
        if info is not None:
            with run.lock:
                run.catalog[job] = info
            return any(discovery.matches(rule, info) for rule in run.config.watch)
    # Unknown and not looked up: watched if an entry takes it without its name.
    return discovery.rule_for_unlisted(run.config, job) is not None


# -- probes: which time the window filters on -----------------------------------------------


def _probe_end(run: _Run, group: GroupKey, listing: GroupListing, query: Query) -> None:
    """With a window around one run's end only: listed means the window is on the end time."""
    if "end" not in run.server.fields or len(run.server.fields) == 1:
        return
    for r in (r for one in listing.jobs.values() for r in one.instances):
        end, others = _time_of(r, "end"), (_time_of(r, "schedule"), _time_of(r, "start"))
        if end is None or any(t is None or math.floor(t) >= math.floor(end) for t in others):
            continue
        if not _claim_probe(run):
            return
        try:
            second = float(math.floor(end))
            found = _ask(run, group, query, (second, second), 1, _page_size(run))
        except _Stop:
            return
        finally:
            run.probing = False
        if found is None:
            return
        listed = any(
            r.instance_id in {x.instance_id for x in one.instances} for one in found.jobs.values()
        )
        if found.entries < _page_size(run):
            _narrow(run, ("end",) if listed else tuple(f for f in run.server.fields if f != "end"))
        return


def _probe_start(run: _Run, group: GroupKey, listing: GroupListing) -> None:
    """A run that never started, listed without a window: asked for again with a window
    around its schedule and end, it is listed unless the window is on the start time."""
    if "start" not in run.server.fields or len(run.server.fields) == 1:
        return
    for r in (r for one in listing.jobs.values() for r in one.instances):
        if r.start_time is not None or r.schedule_time is None:
            continue
        if not _claim_probe(run):
            return
        times = [t for t in (_time_of(r, "schedule"), _time_of(r, "end")) if t is not None]
        try:
            found = _ask(
                run,
                group,
                Query(r.status_code),
                (math.floor(min(times)) - 1.0, math.floor(max(times)) + 1.0),
                1,
                _page_size(run),
            )
        except _Stop:
            return
        finally:
            run.probing = False
        if found is None:
            return
        listed = any(
            r.instance_id in {x.instance_id for x in one.instances} for one in found.jobs.values()
        )
        if listed:
            _narrow(run, tuple(f for f in run.server.fields if f != "start"))
        elif found.entries < _page_size(run):
            _narrow(run, ("start",))
        return


def _claim_probe(run: _Run) -> bool:
    with run.lock:
        if run.probing:
            return False
        run.probing = True
        return True


def _narrow(run: _Run, fields: tuple[str, ...]) -> None:
    with run.lock:
        kept = tuple(f for f in run.server.fields if f in fields)
        if kept and kept != run.server.fields:
            log.info("window filters on one of: %s", ", ".join(kept))
            run.server = replace(run.server, fields=kept)


def _cross_check(run: _Run, group: GroupKey, listed: tuple[JobInstance, ...]) -> None:
    """Does the group query list a run its job's own listing shows? A server that answers
    group queries with nothing at all looks like a quiet group, answer by answer."""
    now = run.plan.now
    ended = [
        r
        for r in listed
        if r.terminal and all(_time_of(r, f) is not None for f in ("schedule", "start", "end"))
    ]
    if not ended:
        # Nothing to compare with yet: try again after a sweep interval.
        retry_in = run.config.schedulerx.sweep_interval.total_seconds()
        run.update(group, checked_at=now - plan.CHECK_INTERVAL + retry_in)
        return
    sample = max(ended, key=lambda r: (_ended(r), r.instance_id))
    with run.lock:
        listed_here = sample.instance_id in run.group_listed.get(group, ())
    if listed_here:
        # This tick's window of the group listed it (it usually did: the job checked is
        # the one that fired last): that is the answer a query around it would give.
        run.update(group, checked_at=now)
        return
    times = [
        t for t in (_time_of(sample, f) for f in ("schedule", "start", "end")) if t is not None
    ]
    window = (math.floor(min(times)) - 1.0, math.floor(max(times)) + 1.0)
    size = _page_size(run)
    try:
        found = _ask(run, group, Query(sample.status_code), window, 1, size)
    except _Stop as stop:
        if stop.fell_back:
            with run.lock:
                run.cursors[group] = plan.fall_back(run.cursors[group], stop.why, now)
        return
    if found is None:
        return
    if sample.instance_id in _ids(found) or found.entries >= size:
        run.update(group, checked_at=now)
        return
    why = (
        f"a group query for status {sample.status_code} around run {sample.instance_id} of job "
        f"{sample.job.job_id} does not list it, though the job's own listing does"
    )
    with run.lock:
        run.cursors[group] = plan.fall_back(run.cursors[group], why, now)
        run.result.notes.append(
            f"group {group[0]}/{group[1]}: {why}; its jobs are polled one by one, and group "
            "queries tried again in 24 h"
        )


# -- discovery ------------------------------------------------------------------------------


def _discover(run: _Run, task: Discover) -> None:
    group = task.group
    page = task.page
    started_here = page == 1
    while True:
        with run.lock:
            size = run.server.jobs_page_size
        params = discovery.list_jobs_params(group, page, size)
        tried = run.call(LIST_JOBS, partial(run.client.call, LIST_JOBS, params))
        error = tried.error
        refused = error is not None and "pagesize" in f"{error.code} {error.message}".lower()
        if refused and size > MIN_PAGE:
            # A PageSize refused: smaller pages, and the pass from its start.
            with run.lock:
                run.server = replace(run.server, jobs_page_size=max(MIN_PAGE, size // 2))
                run.cursors[group] = replace(
                    run.cursors.get(group) or GroupCursor(), discovery_page=0
                )
            page, started_here = 1, True
            continue
        if tried.value is None:
            if error is not None:
                _discovery_failed(run, group, f"its job list could not be read: {error}")
            return
        try:
            found = discovery.parse_job_page(group, page, tried.value, run.plan.now, size)
        except ValueError as exc:
            _discovery_failed(run, group, f"its job list could not be read: {exc}")
            return
        with run.lock:
            for problem in found.problems:
                run.result.notes.append(problem)
            cursor = run.cursors.get(group) or GroupCursor()
            fault = discovery.paging_fault(run.catalog, cursor, page, found, run.plan.now)
            if fault is not None:
                # The pass ends unfinished (nothing is dropped from the catalog) and starts
                # again next tick: a problem each tick, a few calls each, until it pages.
                run.cursors[group] = replace(cursor, discovery_page=0, discovery_started=None)
        if fault is not None:
            _discovery_failed(run, group, f"its job list could not be read to the end: {fault}")
            return
        with run.lock:
            run.cursors[group] = discovery.after_page(
                run.catalog, cursor, group, page, found, run.plan.now, started_here
            )
        if found.last:
            return
        page += 1


def _discovery_failed(run: _Run, group: GroupKey, why: str) -> None:
    """A problem where the watched jobs depend on the list; else a note (schedules and names
    are only a help for a group of ids)."""
    with run.lock:
        if discovery.discovers(run.config, group):
            # Named by its entries: a misspelt namespace or group fails here.
            why = f"{why} (needed by {discovery.entries_of(run.config, group)})"
            run.result.group_errors.setdefault(group, why)
        else:
            run.result.notes.append(f"group {group[0]}/{group[1]}: {why}")


# -- run times ------------------------------------------------------------------------------


def _ids(listing: GroupListing) -> set[int]:
    return {r.instance_id for one in listing.jobs.values() for r in one.instances}


def _ms(window: tuple[float, float]) -> tuple[int, int]:
    """A window in whole seconds as SchedulerX's strings have them, in inclusive epoch ms."""
    return math.floor(window[0]) * 1000, math.floor(window[1]) * 1000 + 999


def _time_of(run: JobInstance, name: str) -> float | None:
    moment = {"schedule": run.schedule_time, "start": run.start_time, "end": run.end_time}[name]
    return None if moment is None else moment.timestamp()


def _ended(run: JobInstance) -> float:
    moment = run.finished_at
    return moment.timestamp() if moment is not None else math.inf


def _started(run: JobInstance) -> float | None:
    moment = run.schedule_time or run.start_time
    return None if moment is None else moment.timestamp()


def _progress(run: JobInstance) -> tuple[bool, float, bool]:
    ended = run.end_time.timestamp() if run.end_time is not None else 0.0
    return (run.end_time is not None, ended, run.terminal)


__all__ = ["EVERY", "WINDOW_SECONDS", "Budgets", "PollResult", "execute", "merge", "refused_groups"]
