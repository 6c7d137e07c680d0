"""A run succeeded: the failure streak ends, and an announced one is reported recovered.

Only a streak that was announced gets a recovery: a job that failed once under
`consecutive_failures: 3` and then succeeded was never reported broken.
"""

from __future__ import annotations

from dataclasses import replace

from schedulerx_alert.core.findings import RECOVERED, Finding, attempt_id, finding
from schedulerx_alert.core.model import InstanceStatus, JobInstance
from schedulerx_alert.core.rules.history import JobHistory, ended_at
from schedulerx_alert.core.rules.memory import JobRuleState
from schedulerx_alert.core.rules.settings import RuleSettings


def on_outcome(
    inst: JobInstance,
    history: JobHistory,
    settings: RuleSettings,
    state: JobRuleState,
    now: float,
) -> tuple[list[Finding], JobRuleState]:
    if inst.status is not InstanceStatus.SUCCESS:
        return [], state
    ended = replace(state, streak=0, streak_since=None, announced=False, last_failure=None)
    if not (
        settings.recovery
        and state.announced
        and state.flapping_since is None
        and not history.quiet(inst)
    ):
        return [], ended
    at = ended_at(inst, now)
    # Unknown for a streak carried over from schema version 2, which kept no start.
    since = state.streak_since
    found = finding(
        RECOVERED,
        inst.job,
        f"{RECOVERED}:{attempt_id(inst)}",
        now,
        (inst,),
        broken_for_seconds=None if since is None else max(0.0, at - since),
        failed_runs=state.streak,
        since=since,
        last_failure=state.last_failure,
    )
    return [found], ended
