"""A cron fire with no run within `missed_grace` is announced: "expected at 02:00, nothing ran".

Only enabled cron jobs can miss a fire; fixed-rate, second-delay, one-time and API jobs
never do. Each fire is looked at once: `missed_checked` remembers how far the rule has
got, so a fire is never announced twice, and `missed_runs` the runs seen that may still
answer a fire inside its grace (a group query lists a run in the tick it is seen, not in
the tick its fire is judged). A fire is judged only once the job's runs are known past its
grace (`JobHistory.covered`): a job not read this tick, or read in part, waits. Fires
missed in the same tick (the monitor was off, or a frequent cron stopped) make one
finding, not one message per minute.
"""

from __future__ import annotations

import math
from dataclasses import replace

from schedulerx_alert.core.findings import MISSED, Finding, finding, job_fingerprint
from schedulerx_alert.core.model import JobInstance
from schedulerx_alert.core.rules.history import JobHistory, JobSchedule
from schedulerx_alert.core.rules.memory import MAX_RUN_TIMES, JobRuleState
from schedulerx_alert.core.rules.settings import RuleSettings

# A run SchedulerX dates a moment before its fire (clock skew, rounding) still counts.
EARLY_SECONDS = 5.0
# SchedulerX lists a job's last 10 runs: with a full listing, a fire older than its
# oldest run may have had a run that no longer shows, so it is not called missed.
LISTING_DEPTH = 10
# Fires looked at per tick; a longer backlog is worked through over the next ticks.
MAX_FIRES_PER_TICK = 500
# How far ahead the next fire is looked for; a cron with none that soon (a yearly one, a
# date far off) is looked at every tick.
NEXT_WITHIN = 40 * 24 * 3600.0
# Fire times a finding carries for its template.
MAX_LISTED_FIRES = 10


def check(
    history: JobHistory,
    settings: RuleSettings,
    schedule: JobSchedule,
    state: JobRuleState,
    now: float,
) -> tuple[list[Finding], JobRuleState]:
    grace = settings.missed_grace
    if grace is None or not schedule.can_miss or schedule.fires is None:
        # Starting afresh when this changes keeps a disabled spell from counting as missed.
        if state == replace(state, missed_checked=None, missed_runs=(), missed_next=None):
            return [], state
        return [], replace(state, missed_checked=None, missed_runs=(), missed_next=None)
    # A fire is judged once every run that could answer it is known: never because
    # nothing was read (a job not read this tick, a window not read to the end).
    horizon = min(now, history.covered) - grace
    if state.missed_checked is None:
        if not math.isfinite(horizon):
            return [], state
        # Fires before the first look belong to a past nobody watched.
        return [], replace(state, missed_checked=horizon, missed_runs=(), missed_next=None)
    runs, floor = _runs(state.missed_runs, history.instances)
    upcoming = state.missed_next
    if horizon <= state.missed_checked or (upcoming is not None and horizon < upcoming):
        # `missed_checked` stays: a schedule changed meanwhile is read from there.
        return [], _keep(state, state.missed_checked, runs)
    fires = schedule.fires.fires_between(state.missed_checked, horizon, MAX_FIRES_PER_TICK)
    checked = fires[-1] if len(fires) >= MAX_FIRES_PER_TICK else horizon
    checked = max(checked, state.missed_checked)
    following = None
    if fires:
        after_last = schedule.fires.fires_between(fires[-1], fires[-1] + grace, 1)
        following = after_last[0] if after_last else None
    missed = _unmatched(fires, following, runs, grace, floor)
    after = schedule.fires.fires_between(checked, checked + NEXT_WITHIN, 1)
    state = replace(_keep(state, checked, runs), missed_next=after[0] if after else None)
    if not missed:
        return [], state
    first = missed[0]
    return [
        finding(
            MISSED,
            history.job,
            job_fingerprint(MISSED, history.job, int(first)),
            now,
            expected_at=first,
            last_expected_at=missed[-1],
            missed_count=len(missed),
            missed_fires=tuple(missed[:MAX_LISTED_FIRES]),
            grace_seconds=grace,
            zone=schedule.zone,
        )
    ], state


def at_rest(state: JobRuleState) -> bool:
    """Whether `check` leaves `state` as it is where no fire can be judged (missed runs
    off, or no schedule to miss): it remembers nothing of fires."""
    return state.missed_checked is None and not state.missed_runs and state.missed_next is None


def idle(
    history: JobHistory,
    settings: RuleSettings,
    schedule: JobSchedule,
    state: JobRuleState,
    now: float,
) -> bool:
    """Whether `check` would find nothing and leave `state` as it is, for a job with no run
    listed this tick: `check`'s early returns, without its fire times. Most jobs of a large
    estate are in this case most ticks; the engine then skips them."""
    grace = settings.missed_grace
    if grace is None or not schedule.can_miss or schedule.fires is None:
        return at_rest(state)
    horizon = min(now, history.covered) - grace
    if state.missed_checked is None:
        return not math.isfinite(horizon)
    upcoming = state.missed_next
    if horizon <= state.missed_checked or (upcoming is not None and horizon < upcoming):
        runs, _ = _runs(state.missed_runs, history.instances)
        return _keep(state, state.missed_checked, runs) is state
    return False


def _runs(
    remembered: tuple[float, ...], instances: tuple[JobInstance, ...]
) -> tuple[list[float], float | None]:
    """The run times that may answer a fire, and the floor below which a fire is not
    called missed: a full listing's oldest run (older ones may no longer show), or the
    oldest remembered run once the memory was full (older ones were let go)."""
    listed = _run_times(instances)
    floor = listed[0] if len(listed) >= LISTING_DEPTH else None
    if len(remembered) >= MAX_RUN_TIMES:
        floor = max(floor or remembered[0], remembered[0])
    return sorted({*remembered, *listed}), floor


def _keep(state: JobRuleState, checked: float, runs: list[float]) -> JobRuleState:
    """The runs that may still answer a fire after `checked`, the newest few."""
    kept = tuple(t for t in runs if t >= checked - EARLY_SECONDS)[-MAX_RUN_TIMES:]
    if (checked, kept) == (state.missed_checked, state.missed_runs):
        return state
    return replace(state, missed_checked=checked, missed_runs=kept)


def _run_times(instances: tuple[JobInstance, ...]) -> list[float]:
    # By instance id: two listings may carry the same run.
    times = {
        inst.instance_id: when.timestamp()
        for inst in instances
        if (when := inst.schedule_time or inst.start_time) is not None
    }
    return sorted(times.values())


def _unmatched(
    fires: list[float],
    following: float | None,
    runs: list[float],
    grace: float,
    floor: float | None,
) -> list[float]:
    """Fires no run answers. A fire's run is due from just before it until the grace ends
    or the next fire comes, whichever is first; each run answers one fire."""
    missed: list[float] = []
    used = 0
    for index, fire in enumerate(fires):
        upcoming = fires[index + 1] if index + 1 < len(fires) else following
        until = fire + grace if upcoming is None else min(fire + grace, upcoming - EARLY_SECONDS)
        while used < len(runs) and runs[used] < fire - EARLY_SECONDS:
            used += 1
        if used < len(runs) and runs[used] <= max(until, fire):
            used += 1
        elif floor is None or fire + grace >= floor:
            missed.append(fire)
    return missed
