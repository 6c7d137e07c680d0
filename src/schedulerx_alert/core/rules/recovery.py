"""A run succeeded: the failure streak ends, and an announced one is reported recovered.

Only a streak that was announced gets a recovery: a job that failed once under
`consecutive_failures: 3` and then succeeded was never reported broken.
"""

from __future__ import annotations

from dataclasses import replace

from schedulerx_alert.core.findings import RECOVERED, Finding, attempt_id, finding
from schedulerx_alert.core.model import InstanceStatus, JobInstance
from schedulerx_alert.core.rules import failure
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


def late_failure(
    inst: JobInstance,
    history: JobHistory,
    settings: RuleSettings,
    state: JobRuleState,
    now: float,
) -> tuple[list[Finding], JobRuleState]:
    """A failure that ended before the latest outcome taken, listed only now.

    While the job's streak is open (its latest outcome is a failure), the late one belongs
    to it and counts. Once a later success has closed it (`streak` 0), the failure is
    announced on its own, as a streak of one, and the memory stays as the success left
    it: the job has worked since, so its next success is no "recovered" again, and the
    flap rule never sees it (it changed nothing the job does now).
    """
    if state.streak > 0:
        return failure.on_outcome(inst, history, settings, state, now)
    found, _ = failure.on_outcome(inst, history, settings, state, now)
    return found, state
