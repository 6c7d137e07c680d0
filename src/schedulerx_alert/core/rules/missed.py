"""A cron fire with no run within `missed_grace` is announced: "expected at 02:00, nothing ran".

Only enabled cron jobs can miss a fire; fixed-rate, second-delay, one-time and API jobs
never do. Each fire is looked at once: `missed_checked` remembers how far the rule has
got, so a fire is never announced twice. Fires missed in the same tick (the monitor was
off, or a frequent cron stopped) make one finding, not one message per minute.
"""

from __future__ import annotations

from dataclasses import replace

from ..findings import MISSED, Finding, finding, job_fingerprint
from ..model import JobInstance
from .history import JobHistory, JobSchedule
from .memory import JobRuleState
from .settings import RuleSettings

# A run SchedulerX dates a moment before its fire (clock skew, rounding) still counts.
EARLY_SECONDS = 5.0
# SchedulerX lists a job's last 10 runs: with a full listing, a fire older than its
# oldest run may have had a run that no longer shows, so it is not called missed.
LISTING_DEPTH = 10
# Fires looked at per tick; a longer backlog is worked through over the next ticks.
MAX_FIRES_PER_TICK = 500
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
        return [], state if state.missed_checked is None else replace(state, missed_checked=None)
    horizon = now - grace
    if state.missed_checked is None:
        # Fires before the first look belong to a past nobody watched.
        return [], replace(state, missed_checked=horizon)
    fires = schedule.fires.fires_between(state.missed_checked, horizon, MAX_FIRES_PER_TICK)
    checked = fires[-1] if len(fires) >= MAX_FIRES_PER_TICK else horizon
    state = replace(state, missed_checked=max(checked, state.missed_checked))
    following = None
    if fires:
        after_last = schedule.fires.fires_between(fires[-1], fires[-1] + grace, 1)
        following = after_last[0] if after_last else None
    missed = _unmatched(fires, following, _run_times(history.instances), grace)
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


def _run_times(instances: tuple[JobInstance, ...]) -> list[float]:
    # By instance id: two listings may carry the same run.
    times = {
        inst.instance_id: when.timestamp()
        for inst in instances
        if (when := inst.schedule_time or inst.start_time) is not None
    }
    return sorted(times.values())


def _unmatched(
    fires: list[float], following: float | None, runs: list[float], grace: float
) -> list[float]:
    """Fires no run answers. A fire's run is due from just before it until the grace ends
    or the next fire comes, whichever is first; each run answers one fire."""
    floor = runs[0] if len(runs) >= LISTING_DEPTH else None
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
