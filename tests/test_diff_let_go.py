"""What a tick lets go of for a job of a group it read that listed none of the job's runs
(core/diff.py `_unlisted_only`): what a listing of its group would, no more."""

from __future__ import annotations

import pytest

from schedulerx_alert.core.diff import KEPT_NEWEST, DiffSettings, Reading, Target, diff
from schedulerx_alert.core.model import JobKey
from schedulerx_alert.core.rules import JobRuleState
from schedulerx_alert.core.rules.history import NOT_READ
from schedulerx_alert.core.state import InstanceRecord, JobRecord, State

T0 = 1_795_572_000.0
JOB = JobKey("ns", "g", 7)
HOUR = 3600.0
SUCCESS, FAILED = 4, 5


def kept(record: JobRecord, covered: float) -> list[int]:
    reading = Reading({}, covered={JOB: covered})
    after = diff(
        State(jobs={JOB: record}), reading, {JOB: Target(None, ("ops",))}, T0, DiffSettings(HOUR)
    )
    return sorted(after.state.jobs[JOB].instances)


def successes(polled_at: float | None, remembered: bool = True) -> JobRecord:
    """Fifteen successes last listed an hour ago, and a failure announced then."""
    runs = {iid: InstanceRecord(SUCCESS, T0 - HOUR) for iid in range(1, 16)}
    runs[16] = InstanceRecord(FAILED, T0 - HOUR, ("failed",))
    memory = (
        JobRuleState(last_outcome="ok", last_outcome_at=T0 - HOUR) if remembered else JobRuleState()
    )
    return JobRecord(runs, polled_at, memory)


def test_a_group_query_job_lets_its_settled_successes_go() -> None:
    assert kept(successes(None), covered=T0) == [16]  # main: all 16


def test_a_job_its_own_listing_read_keeps_that_listings_newest() -> None:
    newest = list(range(16 - KEPT_NEWEST + 1, 17))
    assert kept(successes(T0 - HOUR), covered=T0) == newest  # main: all 16


@pytest.mark.parametrize(
    ("record", "covered"),
    [(successes(None), NOT_READ), (successes(None, remembered=False), T0)],
    ids=["group not read", "no memory of the latest outcome"],
)
def test_nothing_goes_where_nothing_was_read_or_nothing_tells_a_success_listed_again(
    record: JobRecord, covered: float
) -> None:
    assert kept(record, covered) == list(range(1, 17))
