"""Hypothesis properties of the rule engine over SchedulerX-shaped histories.

Memory is carried from tick to tick through JSON (tests/rules_driver.Monitor), the way
the state will carry it.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from schedulerx_alert.core.findings import (
    FLAPPING,
    RECOVERED,
    SETTLED,
    SHARED_CAUSE,
    STUCK,
    Finding,
    attempt_id,
)
from schedulerx_alert.core.model import InstanceStatus, JobInstance, TriggerType
from schedulerx_alert.core.rules import (
    JobRuleState,
    JobSchedule,
    RuleSettings,
    memory_from_json,
    memory_to_json,
)
from schedulerx_alert.core.rules.memory import MAX_STUCK
from schedulerx_alert.core.rules.settings import MAX_FLAP_CHANGES
from tests.builders import T0
from tests.rules_driver import MINUTE, Every, Monitor, key, run

FAILED = InstanceStatus.FAILED
SUCCESS = InstanceStatus.SUCCESS
ENDINGS = [FAILED, SUCCESS, InstanceStatus.REJECTED, InstanceStatus.KILLED]
TRIGGERS = [*TriggerType, None]

rule_settings = st.builds(
    RuleSettings,
    consecutive_failures=st.integers(1, 3),
    trigger_types=st.just(frozenset(TriggerType))
    | st.sets(st.sampled_from(list(TriggerType)), min_size=1).map(frozenset),
    flap_window=st.integers(20, 90).map(lambda m: m * MINUTE) | st.none(),
    flap_changes=st.integers(2, 6),
)
# One step: after `gap` minutes, maybe a run that ended (status None: no run, time passes).
# Mostly scheduled failures and successes a few minutes apart, so that streaks, recoveries
# and flapping episodes all happen often.
steps = st.lists(
    st.tuples(
        st.sampled_from([FAILED, SUCCESS]) | st.sampled_from([*ENDINGS, None]),
        st.just(TriggerType.SCHEDULED) | st.sampled_from(TRIGGERS),
        st.integers(1, 10) | st.integers(1, 120),
    ),
    min_size=4,
    max_size=40,
)


@settings(deadline=None)
@given(rule_settings, steps)
def test_every_announced_failure_later_followed_by_a_success_gets_exactly_one_recovery(
    chosen: RuleSettings, walk: list[tuple[InstanceStatus | None, TriggerType | None, int]]
) -> None:
    monitor = Monitor(settings={key(): chosen})
    now = T0
    pending = False  # a failure was announced and no recovery has followed yet
    flapping = False
    failures = 0  # failures since the last success, as the job's settings count them
    for n, (status, trigger, gap) in enumerate(walk, start=1):
        now += gap * MINUTE
        runs = [] if status is None else [run(n, status, ended=now - 30, trigger=trigger)]
        found = monitor.tick(now, *runs)
        counts = Counter(f.kind for f in found)
        admitted = status is not None and (trigger is None or trigger in chosen.trigger_types)
        success = admitted and status is SUCCESS
        expected = success and pending and not flapping and not counts[FLAPPING]
        assert counts[RECOVERED] == (1 if expected else 0)
        for f in found:
            if f.kind == RECOVERED:
                assert f.facts["failed_runs"] == failures
        if counts[FLAPPING]:
            flapping, pending = True, False
        if any(f.is_run_failure for f in found):
            assert not flapping
            pending = True
        if success:
            pending, failures = False, 0
        elif admitted and status in chosen.alert_on:
            failures += 1
        for f in found:
            if f.kind == SETTLED:
                flapping, pending = False, f.facts["settled_as"] == "failing"
        if chosen.flap_window is None:
            assert not flapping


# Mostly one cause, so that several jobs often share it in a tick.
ERRORS = ["Connection refused 10.0.0.5:3306 (instance {n})"] * 3 + ["", "disk full at {n}"]


@st.composite
def estates(
    draw: st.DrawFn,
) -> tuple[Monitor, list[tuple[float, list[JobInstance], frozenset[int]]]]:
    """Three jobs whose runs start, end, get re-run and drop out of flaky listings."""
    jobs = [key(92583 + j) for j in range(3)]
    monitor = Monitor(
        settings={
            job: RuleSettings(
                consecutive_failures=draw(st.integers(1, 2)),
                stuck_after=10 * MINUTE,
                missed_grace=3 * MINUTE,
                flap_window=30 * MINUTE,
                flap_changes=draw(st.integers(2, 4)),
            )
            for job in jobs
        },
        schedules={jobs[0]: JobSchedule(time_type=1, fires=Every(5 * MINUTE))},
    )
    runs: dict[int, JobInstance] = {}
    ticks: list[tuple[float, list[JobInstance], frozenset[int]]] = []
    now = T0
    for _ in range(draw(st.integers(1, 30))):
        changed: list[JobInstance] = []
        for _ in range(draw(st.integers(0, 8))):
            now += draw(st.integers(1, 120))
            underway = sorted(i for i, r in runs.items() if not r.terminal)
            ended = sorted(i for i, r in runs.items() if r.terminal)
            action = draw(st.sampled_from(["start", "finish", "finish", "rerun"]))
            if action == "finish" and underway:
                old = runs[draw(st.sampled_from(underway))]
                text = draw(st.sampled_from(ERRORS)).format(n=old.instance_id)
                status = draw(st.sampled_from(ENDINGS))
                new = run(old.instance_id, status, started=now - 1, ended=now, result=text)
                new = replace(new, job=old.job, start_time=old.start_time)
            elif action == "rerun" and ended:
                old = runs[draw(st.sampled_from(ended))]
                new = replace(
                    run(old.instance_id, InstanceStatus.RUNNING, started=now), job=old.job
                )
            else:
                job = draw(st.sampled_from(jobs))
                status = draw(st.sampled_from([InstanceStatus.RUNNING, InstanceStatus.WAITING]))
                new = run(len(runs) + 1, status, started=now, job_id=job.job_id)
            runs[new.instance_id] = new
            changed.append(new)
        now += draw(st.integers(1, 15)) * MINUTE
        hidden = frozenset(draw(st.sets(st.sampled_from(sorted(runs) or [0]), max_size=2)))
        ticks.append((now, changed, hidden))
    return monitor, ticks


@settings(deadline=None)
@given(estates())
def test_no_kind_is_announced_twice_for_one_run_attempt(
    world: tuple[Monitor, list[tuple[float, list[JobInstance], frozenset[int]]]],
) -> None:
    monitor, ticks = world
    everything: list[Finding] = []
    for now, changed, hidden in ticks:
        everything += monitor.tick(now, *changed, hidden=hidden)

    fingerprints = [f.fingerprint for f in everything]
    assert len(fingerprints) == len(set(fingerprints))
    announced: Counter[tuple[str, str]] = Counter()
    for f in everything:
        if f.is_run_failure or f.kind == SHARED_CAUSE:
            announced.update(("failure", attempt_id(i)) for i in f.instances)
        elif f.kind == RECOVERED:
            announced.update((RECOVERED, attempt_id(i)) for i in f.instances)
        elif f.kind == STUCK:
            announced.update(
                (STUCK, f"{i.job}:{i.instance_id}:{i.start_time}") for i in f.instances
            )
    assert all(count == 1 for count in announced.values()), announced.most_common(3)
    assert monitor.largest_memory <= 2048
    for state in monitor.memory.values():
        assert len(state.stuck) <= MAX_STUCK
        assert len(state.changes) <= MAX_FLAP_CHANGES


times = st.floats(0, 4e9, allow_nan=False)
memories = st.builds(
    JobRuleState,
    streak=st.integers(0, 10**9),
    streak_since=st.none() | times,
    announced=st.booleans(),
    last_failure=st.none() | st.text(max_size=80),
    stuck=st.lists(st.integers(0, 2**63), max_size=3 * MAX_STUCK).map(tuple),
    missed_checked=st.none() | times,
    last_outcome=st.sampled_from([None, "ok", "fail"]),
    changes=st.lists(times, max_size=3 * MAX_FLAP_CHANGES).map(tuple),
    flapping_since=st.none() | times,
)


@settings(deadline=None)
@given(memories)
def test_memory_round_trips_through_json_and_stays_bounded(state: JobRuleState) -> None:
    stored = json.dumps(memory_to_json(state))
    loaded = memory_from_json(json.loads(stored))
    assert loaded == replace(
        state, stuck=state.stuck[-MAX_STUCK:], changes=state.changes[-MAX_FLAP_CHANGES:]
    )
    assert len(loaded.stuck) <= MAX_STUCK
    assert len(loaded.changes) <= MAX_FLAP_CHANGES
