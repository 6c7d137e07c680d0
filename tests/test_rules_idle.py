"""The engine skips a job with no run listed and nothing due (rules/engine.py `_idle`): a
property that the skip changes nothing, against every rule run on the job as before.

A large estate has most of its jobs in that case most ticks; the skip is what keeps a
20,000-job tick's rules cheap, and it must never swallow a finding or a memory change
(a flapping episode's end, a stuck run forgotten, a fire judged, a schedule turned off).
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from schedulerx_alert.core.rules import (
    EMPTY,
    JobHistory,
    JobRuleState,
    JobSchedule,
    RuleSettings,
    evaluate,
    evaluate_job,
)
from schedulerx_alert.core.rules.history import NOT_READ
from schedulerx_alert.core.rules.memory import MAX_RUN_TIMES, MAX_STUCK
from tests.builders import T0
from tests.rules_driver import HOUR, MINUTE, Daily, Every, key

near = st.floats(T0 - 2 * HOUR, T0 + 2 * HOUR, allow_nan=False)
memories = st.builds(
    JobRuleState,
    stuck=st.lists(st.integers(0, 99), max_size=MAX_STUCK + 2).map(tuple),
    missed_checked=st.none() | near,
    missed_runs=st.lists(near, max_size=4).map(tuple)
    | st.lists(near, min_size=MAX_RUN_TIMES, max_size=MAX_RUN_TIMES + 1).map(
        lambda runs: tuple(sorted(runs))
    ),
    missed_next=st.none() | near,
    last_outcome=st.sampled_from([None, "ok", "fail"]),
    changes=st.lists(near, max_size=3).map(lambda times: tuple(sorted(times))),
    flapping_since=st.none() | near,
) | st.just(EMPTY)
rule_settings = st.builds(
    RuleSettings,
    missed_grace=st.none() | st.sampled_from([5 * MINUTE, 30 * MINUTE]),
    flap_window=st.none() | st.just(HOUR),
    stuck_after=st.sampled_from(["off", "job_timeout", 600.0]),
)
schedules = st.sampled_from(
    [
        None,  # the catalog does not know the job
        JobSchedule(),
        JobSchedule(time_type=1, fires=Every(7 * MINUTE)),
        JobSchedule(time_type=1, fires=Daily(2)),
        JobSchedule(time_type=1, fires=Every(7 * MINUTE), enabled=False),
        JobSchedule(time_type=3, fires=Every(7 * MINUTE), timeout=300.0),
    ]
)
# Not read this tick, read up to now, or read up to some moment (a group query's windows).
covers = st.sampled_from([NOT_READ, math.inf]) | near


@settings(deadline=None, max_examples=400)
@given(memories, rule_settings, schedules, covers, near)
def test_a_job_with_nothing_listed_is_evaluated_as_every_rule_would(
    memory: JobRuleState,
    rules: RuleSettings,
    schedule: JobSchedule | None,
    covered: float,
    now: float,
) -> None:
    job = key()
    history = JobHistory(job, (), covered=covered)
    known = {} if schedule is None else {job: schedule}
    found, remembered = evaluate(
        {job: history}, {job: rules}, known, {job: memory}, now, shared_cause_min_jobs=None
    )
    expected, after = evaluate_job(history, rules, schedule or JobSchedule(), memory, now)
    assert list(found) == expected
    assert remembered.get(job, EMPTY) == after
    # Without a history, read as far as `covered` says (a group that listed none of its
    # runs), or not read at all: the history is built only when a rule may be due.
    alone = {job: rules}, known, {job: memory}, now
    for without in (
        evaluate({}, *alone, shared_cause_min_jobs=None, covered={job: covered}),
        *([evaluate({}, *alone, shared_cause_min_jobs=None)] if covered == NOT_READ else []),
    ):
        assert list(without.findings) == expected
        assert without.memory.get(job, EMPTY) == after
