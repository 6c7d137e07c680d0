"""The planner without a server: which calls a tick makes, in what order, within the quota."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from schedulerx_alert.config import Config, parse_config
from schedulerx_alert.core.catalog import JobInfo
from schedulerx_alert.core.model import JobKey
from schedulerx_alert.core.polling import (
    GROUP_QUERIES,
    PER_JOB,
    GroupCursor,
    Query,
    ServerFacts,
    SourceState,
    Span,
)
from schedulerx_alert.core.state import InstanceRecord, JobRecord
from schedulerx_alert.sources import plan
from schedulerx_alert.sources.plan import (
    CATCH_UP,
    DUE,
    END_OVERLAP,
    EVERY,
    FOLLOW_LIMIT,
    OVERLAP,
    SWEEP,
    Budget,
    GroupRead,
    JobPoll,
    Plan,
    make_plan,
)
from tests.world import START

NS, G = "ns", "g"
GROUP = (NS, G)
PLENTY = Budget(90, 90)


def config(**schedulerx: Any) -> Config:
    return parse_config(
        {
            "region": "cn-hangzhou",
            "state": {"url": "file:///tmp/state.json"},
            "receivers": [
                {"name": "ops", "webhook": "https://oapi.dingtalk.com/robot/send?access_token=t"}
            ],
            "schedulerx": schedulerx,
            "watch": [{"namespace": NS, "group": G, "jobs": "all", "receivers": ["ops"]}],
        },
        {},
    )


def hourly(job_id: int, minute: int, time_type: int = 1) -> JobInfo:
    expression = f"0 {minute} * * * ?" if time_type == 1 else ""
    return JobInfo(JobKey(NS, G, job_id), f"job-{job_id}", True, time_type, expression)


# Job 1 has a timeout of its own: stuck under the default `stuck_after: job_timeout`, so the
# group's rules read its runs not ended yet (only scans list them on the end time).
TIMED = replace(hourly(1, 5), timeout_enabled=True, timeout_seconds=300.0)
CATALOG = {info.job: info for info in (TIMED, hourly(2, 30), hourly(3, 0, time_type=100))}


def plan_at(
    now: float,
    sources: SourceState | None = None,
    records: dict[JobKey, JobRecord] | None = None,
    budget: Budget = PLENTY,
    **schedulerx: Any,
) -> Plan:
    return make_plan(
        config(**schedulerx), sources or SourceState(), CATALOG, records or {}, CATALOG, now, budget
    )


def reads(plan: Plan, phase: str) -> list[GroupRead]:
    return [t for t in plan.tasks(phase) if isinstance(t, GroupRead)]


def polls(plan: Plan, phase: str) -> list[tuple[int, str]]:
    return [(t.job.job_id, t.why) for t in plan.tasks(phase) if isinstance(t, JobPoll)]


def test_a_new_group_reads_the_lookback_scans_and_asks_every_status_in_one_query() -> None:
    plan = plan_at(START)
    [read] = reads(plan, DUE)
    assert read.first and read.scan
    [span] = read.spans
    assert (span.lo, span.hi) == (START - OVERLAP, START)
    # Every status in the window (successes answer fires and end streaks); rejected runs
    # never start: while the window may be on the start time, they are asked without one.
    assert span.todo == (Query(None), Query(9, windowed=False))
    assert plan.cursors[GROUP].covered == START


def test_the_next_window_starts_where_the_last_one_ended_and_reaches_back_to_the_floor() -> None:
    cursor = GroupCursor(covered=START, scanned_at=START, floor=START - 3 * 3600, since=START)
    plan = plan_at(START + 60, SourceState(groups={GROUP: cursor}))
    [read] = reads(plan, DUE)
    assert not read.scan and not read.first
    assert (read.spans[0].lo, read.spans[0].hi) == (START - 3 * 3600, START + 60)
    # A run unfinished for longer than the follow limit is not followed by the window.
    old = GroupCursor(covered=START, scanned_at=START, floor=START - 2 * FOLLOW_LIMIT)
    [read] = reads(plan_at(START + 60, SourceState(groups={GROUP: old})), DUE)
    assert read.spans[0].lo == START + 60 - FOLLOW_LIMIT


def test_when_the_window_is_known_to_be_on_the_end_time_it_follows_no_run_but_scans_go_on() -> None:
    server = ServerFacts(fields=("end",))
    cursor = GroupCursor(covered=START, floor=START - 3600, scanned_at=START - 60, since=START)
    sources = SourceState(server=server, groups={GROUP: cursor})
    [read] = reads(plan_at(START + 60, sources), DUE)
    # The window lists no run still running: the rules (stuck runs, a fire's run) need
    # the scans still, every SCAN_INTERVAL.
    assert not read.scan
    # A run is in the window that covers its end: the overlap is for clock skew and ends
    # written late only, not 15 minutes.
    assert read.spans[0].lo == START - END_OVERLAP < START - 60
    assert read.spans[0].todo == (Query(None),)
    [read] = reads(plan_at(START + 540, sources), DUE)
    assert read.scan
    # While the window may still be on the schedule or start time, the whole overlap.
    for fields in (("start", "end"), ("schedule", "end"), ("schedule",), ("start",)):
        unfloored = replace(cursor, floor=None)
        maybe = SourceState(server=ServerFacts(fields=fields), groups={GROUP: unfloored})
        [read] = reads(plan_at(START + 60, maybe), DUE)
        assert read.spans[0].lo == START - OVERLAP, fields


def test_after_an_outage_the_older_window_has_its_share_then_the_newest_then_the_rest() -> None:
    cursor = GroupCursor(covered=START, scanned_at=START, since=START)
    now = START + 3 * 3600
    plan = plan_at(now, SourceState(groups={GROUP: cursor}), budget=Budget(20, 90))
    shared, live = reads(plan, DUE)
    [backlog] = reads(plan, CATCH_UP)
    assert live.spans[0].hi == now and live.spans[0].lo >= now - 2 * OVERLAP
    assert backlog.spans[0].lo == START - OVERLAP and backlog.spans[0].hi > live.spans[0].lo
    # Its share of the calls comes first, the newest window takes the rest, and the older
    # one goes on after it with what is left.
    assert shared.share and shared.spans == backlog.spans and not (live.share or backlog.share)
    # 40 % of 20 calls, but no more than its queries may want (two pages each).
    assert plan.catch_up_share == min(8, 2 * shared.cost) == 4
    # Without an older window nothing is set aside.
    caught_up = GroupCursor(covered=now - 60, scanned_at=now - 60, since=START)
    assert plan_at(now, SourceState(groups={GROUP: caught_up})).catch_up_share == 0
    # A window that never began (no quota) is taken into the next one, not kept beside it.
    unstarted = Span(START - 1200, START, (Query(5),))
    cursor = GroupCursor(covered=START, scanned_at=START, since=START, spans=(unstarted,))
    [read] = reads(plan_at(START + 60, SourceState(groups={GROUP: cursor})), DUE)
    assert read.spans[0].lo == START - 1200
    assert not reads(plan_at(START + 60, SourceState(groups={GROUP: cursor})), CATCH_UP)


def fallen_back(since: float) -> SourceState:
    return SourceState(
        groups={
            GROUP: GroupCursor(mode=PER_JOB, reason="refused", retry_at=since + 86400, since=since)
        }
    )


def test_per_job_polls_come_after_fires_while_unfinished_and_in_the_sweep() -> None:
    polled = {key: JobRecord(polled_at=START) for key in CATALOG}
    # 10:06: job 1 (fires at :05) fired since its last poll; job 2 (at :30) did not.
    plan = plan_at(START + 6 * 60, fallen_back(START), polled)
    assert polls(plan, DUE) == [(1, "fire")]
    assert polls(plan, SWEEP) == []
    # A run still unfinished: polled every tick until it ends.
    running = dict(polled)
    running[JobKey(NS, G, 2)] = JobRecord({7: InstanceRecord(3, START)}, polled_at=START + 360)
    plan = plan_at(START + 7 * 60, fallen_back(START), running)
    assert (2, "unfinished") in polls(plan, DUE)
    # Sixteen minutes on, every job not polled since is swept, the API job among them.
    plan = plan_at(START + 16 * 60, fallen_back(START), polled)
    assert {job for job, _ in polls(plan, SWEEP)} == {2, 3}


def test_a_fire_in_the_tick_a_fallback_began_is_polled_as_due() -> None:
    """10:05: job 1 fires and the group's queries are refused, so that tick read none of
    it; at 10:06 its fire is due, not left to the sweep (which a short quota starves)."""
    plan = plan_at(START + 6 * 60, fallen_back(START + 5 * 60), {}, budget=Budget(1, 90))
    assert polls(plan, DUE) == [(1, "fire")]


def test_a_fixed_rate_is_polled_every_tick_till_a_listing_shows_its_phase() -> None:
    """Every 30 minutes, from a moment no listing has shown yet: the grid's guess (on the
    half hours) could be 29 minutes off, so the job is polled every tick; once a run of
    it is seen (at 10:07), only after its fires."""
    rate = JobInfo(JobKey(NS, G, 4), "job-4", True, 3, "1800")
    catalog = {rate.job: rate}
    polled = {rate.job: JobRecord(polled_at=START + 7 * 60)}

    def plan(sources: SourceState) -> Plan:
        return make_plan(config(), sources, catalog, polled, catalog, START + 8 * 60, PLENTY)

    assert polls(plan(fallen_back(START)), DUE) == [(4, "every")]
    phased = replace(fallen_back(START), anchors={rate.job: START + 7 * 60})
    assert polls(plan(phased), DUE) == []


def test_a_job_never_polled_is_due_since_per_job_polls_began() -> None:
    """A quota of one call at 10:08: the fixed rate never polled (its phase unknown) has
    been due since 10:00, and goes before job 1's fire of 10:08; were it due "now" every
    tick, a quota always short would never reach it."""
    rate = JobInfo(JobKey(NS, G, 4), "job-4", True, 3, "1800")
    catalog = {rate.job: rate, JobKey(NS, G, 1): hourly(1, 8)}
    polled = {JobKey(NS, G, 1): JobRecord(polled_at=START + 7 * 60)}
    plan = make_plan(
        config(), fallen_back(START), catalog, polled, catalog, START + 8 * 60, Budget(1, 90)
    )
    assert polls(plan, DUE) == [(4, "every")]


def test_due_polls_go_before_the_sweep_and_what_the_quota_leaves_out_is_counted() -> None:
    plan = plan_at(START + 6 * 60, fallen_back(START), {}, budget=Budget(1, 90))
    assert polls(plan, DUE) == [(1, "fire")]
    assert polls(plan, SWEEP) == []
    assert dict(plan.deferred) == {SWEEP: 2}


@pytest.mark.parametrize(("query", "mode"), [("per_job", PER_JOB), ("every_job", EVERY)])
def test_the_configured_mode_is_the_mode(query: str, mode: str) -> None:
    plan = plan_at(START, query=query)
    assert plan.modes[GROUP] == mode
    if mode == EVERY:
        assert sorted(polls(plan, DUE)) == [(1, "every"), (2, "every"), (3, "every")]


def test_group_queries_are_tried_again_a_day_after_a_server_refused_them() -> None:
    assert plan_at(START + 3600, fallen_back(START)).modes[GROUP] == PER_JOB
    plan = plan_at(START + 86400, fallen_back(START))
    assert plan.modes[GROUP] == GROUP_QUERIES
    assert reads(plan, DUE)[0].first


def test_scans_due_at_once_are_spread_longest_unscanned_first() -> None:
    groups = [f"g{n:02d}" for n in range(20)]
    many = parse_config(
        {
            "region": "cn-hangzhou",
            "state": {"url": "file:///tmp/state.json"},
            "receivers": [
                {"name": "ops", "webhook": "https://oapi.dingtalk.com/robot/send?access_token=t"}
            ],
            "watch": [
                {"namespace": NS, "group": g, "jobs": "all", "receivers": ["ops"]} for g in groups
            ],
        },
        {},
    )
    now = START + 3600
    # After an outage every group's scan is due; one group was never scanned.
    cursors = {
        (NS, g): GroupCursor(covered=now - 60, scanned_at=START + n, since=START)
        for n, g in enumerate(groups[:-1])
    }
    cursors[(NS, groups[-1])] = GroupCursor(covered=now - 60, since=START)
    plan = make_plan(many, SourceState(groups=cursors), {}, {}, (), now, PLENTY)
    scanning = sorted(t.group[1] for t in reads(plan, DUE) if t.scan)
    # 1.5 times the steady rate (20 groups, one scan each per ten minutes): 3, the longest
    # unscanned first, and the never scanned besides.
    assert scanning == ["g00", "g01", "g02", "g19"]


def test_catching_up_a_group_scans_later_where_the_window_is_on_the_end_time() -> None:
    now = START + 3 * 3600
    cursor = GroupCursor(covered=START, scanned_at=START, since=START)
    for fields, scans in ((("end",), False), (("schedule", "start", "end"), True)):
        sources = SourceState(server=ServerFacts(fields=fields), groups={GROUP: cursor})
        [live] = [t for t in reads(plan_at(now, sources), DUE) if not t.share]
        # On the end time its calls go to the windows; otherwise the scan's floor is
        # what the window reaches back to, and it is made.
        assert live.scan is scans


def test_a_job_never_polled_is_due_from_the_tick_before_per_job_polls_began() -> None:
    """The group's queries were refused at 10:05, a tick that read nothing, nor did the
    one before it. At 10:06, with one call: the fixed rate never polled (its phase
    unknown, so polled every tick) may have run since 10:04, and goes before job 1's
    fire of 10:05, as fires of jobs never polled are counted from 10:04 too."""
    rate = JobInfo(JobKey(NS, G, 4), "job-4", True, 3, "1800")
    catalog = {rate.job: rate, JobKey(NS, G, 1): hourly(1, 5)}
    plan = make_plan(
        config(), fallen_back(START + 5 * 60), catalog, {}, catalog, START + 6 * 60, Budget(1, 90)
    )
    assert polls(plan, DUE) == [(4, "every")]


def test_a_run_alone_unfinished_is_read_by_id_unless_more_is_due_or_the_quota_is_spent() -> None:
    """Job 1 (hourly at :05) was listed at 10:05 with run 7 running. At 10:08 that run is
    all that is due: it is read by id (GetJobInstance). It is listed instead where its
    fire of 11:05 has passed, where GetJobInstance's quota is spent, and a sweep interval
    (15 min) after its last listing (a run of hours: runs by hand, the heartbeat)."""
    running = {JobKey(NS, G, 1): JobRecord({7: InstanceRecord(3, START + 300)}, START + 300)}
    sources = fallen_back(START)

    def due(now: float, by_id: int = 90) -> list[tuple[int, str, int | None]]:
        plan = plan_at(now, sources, running, budget=Budget(90, 90, by_id))
        tasks = [t for t in plan.tasks(DUE) if isinstance(t, JobPoll) and t.job.job_id == 1]
        return [(t.job.job_id, t.why, t.by_id) for t in tasks]

    assert due(START + 8 * 60) == [(1, "unfinished", 7)]
    assert due(START + 8 * 60, by_id=0) == [(1, "unfinished", None)]
    assert due(START + 19 * 60) == [(1, "unfinished", 7)]
    assert due(START + 20 * 60) == [(1, "unfinished", None)]
    assert due(START + 65 * 60) == [(1, "unfinished", None)]
    # The budget of one tick is a call per run read: the rest are listed.
    two = {**running, JobKey(NS, G, 2): JobRecord({8: InstanceRecord(3, START)}, START + 300)}
    plan = plan_at(START + 8 * 60, sources, two, budget=Budget(90, 90, 1))
    assert [(t.job.job_id, t.by_id) for t in plan.tasks(DUE) if isinstance(t, JobPoll)] == [
        (1, 7),
        (2, None),
    ]


def test_a_sweep_behind_says_what_would_pay_for_it() -> None:
    """With calls left to the sweep, the quota it lacks or the interval they keep; with none
    left, only the quota (an interval the sweep never reaches would mean nothing)."""
    behind = [(0.0, JobPoll(JobKey(NS, G, n), "sweep")) for n in range(30)]
    some = plan._behind(config(), behind, 10, 300, START, 90, START + 1200)
    assert some.endswith(
        "which needs up to 20 a minute: raise max_calls_per_minute by about 10 (with the "
        "account's quota), or set sweep_interval to about 30 min"
    ), some
    none = plan._behind(config(), behind, 0, 300, START, 90, START + 1200)
    assert none.endswith("raise max_calls_per_minute by about 20 (with the account's quota)")
