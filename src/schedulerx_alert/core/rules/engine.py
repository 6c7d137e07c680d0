"""All rules over all polled jobs: job histories + memory in, findings + new memory out.

Per job, each new outcome passes the trigger filter, then flapping (which silences the
per-run rules during an episode), the failure threshold and recovery, in the order the
runs ended; one that ended before the latest outcome taken (`last_outcome_at`) is the
past, and only a failure of it is still announced (recovery.late_failure). Then the
tick-level checks: the end of a flapping episode, stuck runs, missed fires. Last,
failures across jobs that share an error become one finding.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import NamedTuple

from schedulerx_alert.core.findings import Finding
from schedulerx_alert.core.group import DEFAULT_MIN_JOBS, group_shared_causes
from schedulerx_alert.core.model import InstanceStatus, JobInstance, JobKey
from schedulerx_alert.core.rules import failure, flapping, missed, recovery, stuck
from schedulerx_alert.core.rules.history import (
    NOT_READ,
    UNKNOWN_SCHEDULE,
    JobHistory,
    JobSchedule,
    behind,
    ended_at,
)
from schedulerx_alert.core.rules.memory import EMPTY, MAX_STUCK, JobRuleState
from schedulerx_alert.core.rules.settings import RuleSettings

OutcomeRule = Callable[
    [JobInstance, JobHistory, RuleSettings, JobRuleState, float],
    tuple[list[Finding], JobRuleState],
]
TickRule = Callable[
    [JobHistory, RuleSettings, JobSchedule, JobRuleState, float],
    tuple[list[Finding], JobRuleState],
]
_PER_OUTCOME: tuple[OutcomeRule, ...] = (
    flapping.on_outcome,
    failure.on_outcome,
    recovery.on_outcome,
)
_PER_TICK: tuple[TickRule, ...] = (stuck.check, missed.check)


class Evaluation(NamedTuple):
    findings: tuple[Finding, ...]
    # Watched jobs only; a job whose memory is all defaults is left out.
    memory: dict[JobKey, JobRuleState]


def evaluate(
    job_histories: Mapping[JobKey, JobHistory],
    settings_by_job: Mapping[JobKey, RuleSettings],
    schedules: Mapping[JobKey, JobSchedule],
    memory_by_job: Mapping[JobKey, JobRuleState],
    now: float,
    *,
    shared_cause_min_jobs: int | None = DEFAULT_MIN_JOBS,
    covered: Mapping[JobKey, float] | None = None,
) -> Evaluation:
    """Run every rule for the watched jobs (`settings_by_job`); `shared_cause_min_jobs`
    None leaves every failure its own finding.

    A watched job with no history this tick still gets the rules that need no new run
    (the end of a flapping episode, stuck runs the memory knows, missed fires as far as
    its runs are known): its history is empty, read up to `covered` (its group was read
    and listed none of its runs), or not read at all (its listing failed, or it was not
    polled): its runs are not read, so nothing it ran is forgotten or announced twice.
    """
    findings: list[Finding] = []
    memory: dict[JobKey, JobRuleState] = {}
    covered = covered or {}
    for job, settings in sorted(settings_by_job.items()):
        state = memory_by_job.get(job, EMPTY)
        history = job_histories.get(job)
        if history is None:
            # Most jobs of a large estate, most ticks: nothing listed, and, without missed
            # runs, nothing due whatever the history; it is built only when needed.
            idle = settings.missed_grace is None and _at_rest(state)
            if not idle:
                history = JobHistory(job, (), covered=covered.get(job, NOT_READ))
                idle = _idle(history, settings, schedules, state, now)
        else:
            idle = not history.instances and _idle(history, settings, schedules, state, now)
        if idle or history is None:
            # Nothing listed and nothing due: what evaluate_job would return, for less.
            if state is not EMPTY and state != EMPTY:
                memory[job] = state
            continue
        schedule = schedules.get(job, UNKNOWN_SCHEDULE)
        found, state = evaluate_job(history, settings, schedule, state, now)
        findings.extend(found)
        if state != EMPTY:
            memory[job] = state
    if shared_cause_min_jobs is not None:
        findings = group_shared_causes(findings, shared_cause_min_jobs)
    return Evaluation(tuple(findings), memory)


def _idle(
    history: JobHistory,
    settings: RuleSettings,
    schedules: Mapping[JobKey, JobSchedule],
    state: JobRuleState,
    now: float,
) -> bool:
    """Whether the rules that need no new run (`evaluate_job` of a history without runs)
    would find nothing and change nothing: no flapping episode to end, no stuck run to
    forget, no fire to judge. The schedule is looked up only when missed runs are on."""
    if settings.missed_grace is None:
        return _at_rest(state)
    if state.flapping_since is not None or len(state.stuck) > MAX_STUCK:
        return False
    return missed.idle(history, settings, schedules.get(history.job, UNKNOWN_SCHEDULE), state, now)


def _at_rest(state: JobRuleState) -> bool:
    """`_idle` without missed runs, which alone need the history and the schedule."""
    return state.flapping_since is None and len(state.stuck) <= MAX_STUCK and missed.at_rest(state)


def evaluate_job(
    history: JobHistory,
    settings: RuleSettings,
    schedule: JobSchedule,
    state: JobRuleState,
    now: float,
) -> tuple[list[Finding], JobRuleState]:
    """One job's findings, before shared causes are grouped."""
    findings: list[Finding] = []
    for inst in history.outcomes():
        if not failure.admitted(inst, settings):
            continue
        failed = failure.is_failure(inst, settings)
        if behind(inst, state.last_outcome_at, now):
            # The past: a failure is still announced (its record keeps it from coming
            # twice); no outcome of it ends a newer streak or flips the latest one, which a
            # success listed late or listed again would (a false "recovered").
            if failed:
                found, state = recovery.late_failure(inst, history, settings, state, now)
                findings.extend(found)
            continue
        for on_outcome in _PER_OUTCOME:
            found, state = on_outcome(inst, history, settings, state, now)
            findings.extend(found)
        if failed or inst.status is InstanceStatus.SUCCESS:
            state = replace(state, last_outcome_at=ended_at(inst, now))
    found, state = flapping.settle(history, settings, state, now)
    findings.extend(found)
    for check in _PER_TICK:
        found, state = check(history, settings, schedule, state, now)
        findings.extend(found)
    return findings, state
