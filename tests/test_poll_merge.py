"""Two executions of one tick make one reading (sources/poll.py `merge`): the second, made
for the groups whose queries the first found refused, adds to the first and takes nothing
from it; `refused_groups` names those groups."""

from __future__ import annotations

from collections import Counter
from dataclasses import fields
from datetime import datetime, timedelta, timezone

from schedulerx_alert.core.catalog import JobInfo
from schedulerx_alert.core.model import JobInstance, JobKey
from schedulerx_alert.core.polling import GROUP_QUERIES, PER_JOB, GroupCursor, ServerFacts
from schedulerx_alert.core.polling import SourceState as Sources
from schedulerx_alert.sources.listing import EntryProblem
from schedulerx_alert.sources.plan import Plan
from schedulerx_alert.sources.poll import PollResult, merge, refused_groups

NEW, OLD = ("ns", "new"), ("ns", "old")
READ = JobKey("ns", "new", 1)  # of the group read by group queries in the first execution
POLLED = JobKey("ns", "old", 2)  # of the group polled one by one in the second
OTHER = JobKey("ns", "old", 3)
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=timezone(timedelta(hours=8)))
INFO = JobInfo(READ, "job-1", enabled=True)


def run(job: JobKey, iid: int, status: int, ended: int | None = None) -> JobInstance:
    end = None if ended is None else T0 + timedelta(seconds=ended)
    return JobInstance(job, iid, status, schedule_time=T0, end_time=end)


def first() -> PollResult:
    return PollResult(
        listings={READ: {11: run(READ, 11, 5, 30)}, POLLED: {21: run(POLLED, 21, 3)}},
        first={READ},
        errors={POLLED: "could not be polled (timeout)", OTHER: "HTTP 500"},
        group_errors={NEW: "page 2 refused"},
        entry_problems=[EntryProblem(READ, "JobInstanceDetails[0].Status", "x", "unknown")],
        deferred=[POLLED, OTHER],
        swept_left=2,
        behind={NEW: 100.0},
        catching_up={NEW: 50.0},
        groups_read={NEW},
        read_to={NEW: 900.0},
        calls=Counter({"GetJobInstanceList": 5, "GetJobInstance": 1}),
        auth_errors=1,
        notes=["group ns/old: the server cannot answer group queries"],
        problems=["first problem"],
        sources=Sources(
            server=ServerFacts(endpoint="e", fields=("schedule", "start", "end")),
            groups={
                NEW: GroupCursor(covered=900.0, scanned_at=880.0),
                OLD: GroupCursor(mode=PER_JOB, reason="refused", since=900.0),
            },
            calls={"GetJobInstance": (890.0,)},
            anchors={READ: 30.0},
        ),
        catalog={READ: INFO},
        stopped="",
        scans_cut=[NEW],
    )


def then() -> PollResult:
    return PollResult(
        # 21 went on from running to failed; 22 is new.
        listings={POLLED: {21: run(POLLED, 21, 5, 40), 22: run(POLLED, 22, 4, 45)}},
        complete={POLLED},
        first={POLLED},
        errors={OTHER: "HTTP 503"},
        deferred=[OTHER],
        swept_left=3,
        polled={POLLED},
        calls=Counter({"GetJobInstanceList": 2}),
        auth_errors=0,
        notes=["then note"],
        problems=["then problem"],
        sources=Sources(
            server=ServerFacts(endpoint="e", fields=("schedule",)),
            groups={OLD: GroupCursor(mode=PER_JOB, reason="refused", since=900.0)},
            calls={"GetJobInstance": (890.0, 905.0)},
            anchors={POLLED: 45.0},
        ),
        stopped="API quota for this minute used up",
    )


def test_the_second_execution_adds_to_the_first_and_takes_nothing_from_it() -> None:
    a, b = first(), then()
    merged = merge(a, b)
    assert merged.listings == {
        READ: {11: run(READ, 11, 5, 30)},
        POLLED: {21: run(POLLED, 21, 5, 40), 22: run(POLLED, 22, 4, 45)},
    }
    assert merged.complete == {POLLED} and merged.first == {READ, POLLED}
    # A job the second execution polled is no longer in error or left for the next tick.
    assert merged.errors == {OTHER: "HTTP 503"}
    assert merged.deferred == [OTHER]
    assert merged.group_errors == {NEW: "page 2 refused"}
    assert merged.entry_problems == a.entry_problems
    assert merged.swept_left == 5
    assert (merged.behind, merged.catching_up) == ({NEW: 100.0}, {NEW: 50.0})
    assert merged.polled == {POLLED} and merged.groups_read == {NEW}
    assert merged.read_to == {NEW: 900.0}
    assert merged.calls == Counter({"GetJobInstanceList": 7, "GetJobInstance": 1})
    assert merged.auth_errors == 1
    assert merged.notes == [*a.notes, *b.notes] and merged.problems == [*a.problems, *b.problems]
    # The group read first keeps the cursor its read left; the other is as polled last.
    assert merged.sources.groups == {NEW: a.sources.groups[NEW], OLD: b.sources.groups[OLD]}
    assert merged.sources.server == b.sources.server
    assert merged.sources.calls == {"GetJobInstance": (890.0, 905.0)}
    assert merged.sources.anchors == {READ: 30.0, POLLED: 45.0}
    assert merged.stopped == "API quota for this minute used up"
    assert merged.catalog == {READ: INFO} and merged.scans_cut == [NEW]
    # Neither input is changed.
    assert (a, b) == (first(), then())


def test_every_field_is_merged() -> None:
    """A field PollResult gains is set here, so that `merge` is made to keep it too."""
    merged, empty = merge(first(), then()), PollResult()
    for f in fields(PollResult):
        assert getattr(first(), f.name) != getattr(empty, f.name) or getattr(
            then(), f.name
        ) != getattr(empty, f.name), f"set {f.name} in first() or then()"
        assert getattr(merged, f.name) != getattr(empty, f.name), f"merge drops {f.name}"


def test_a_later_answer_never_undoes_an_earlier_ones_progress() -> None:
    a = PollResult(listings={POLLED: {21: run(POLLED, 21, 5, 40)}})
    b = PollResult(listings={POLLED: {21: run(POLLED, 21, 3)}})
    assert merge(a, b).listings[POLLED][21] == run(POLLED, 21, 5, 40)
    # The earliest time wins where both say how far a group was read or is behind.
    c = PollResult(read_to={NEW: 900.0}, behind={NEW: 700.0})
    d = PollResult(read_to={NEW: 800.0, OLD: 850.0}, behind={NEW: 750.0})
    assert merge(c, d).read_to == {NEW: 800.0, OLD: 850.0}
    assert merge(c, d).behind == {NEW: 700.0}


def test_the_groups_refused_are_those_read_by_group_queries_and_polled_one_by_one_now() -> None:
    third = ("ns", "third")
    the_plan = Plan(
        now=900.0,
        phases=(),
        cursors={},
        modes={NEW: GROUP_QUERIES, OLD: GROUP_QUERIES, third: PER_JOB},
        news_since={},
    )
    result = PollResult(
        sources=Sources(
            groups={
                NEW: GroupCursor(),
                OLD: GroupCursor(mode=PER_JOB, reason="refused"),
                third: GroupCursor(mode=PER_JOB),
            }
        )
    )
    assert refused_groups(the_plan, result) == {OLD}
