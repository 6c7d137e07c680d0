"""A run ended in a status the job announces: count it, and announce it from the Nth in a row.

Today's failed/rejected announcement is this rule with `consecutive_failures: 1`. Each
failure of a streak that has reached the threshold is announced (the message says how
many in a row); a success resets the count (recovery.py).
"""

from __future__ import annotations

from dataclasses import replace

from schedulerx_alert.core.findings import Finding, attempt_id, finding
from schedulerx_alert.core.model import JobInstance, TriggerType
from schedulerx_alert.core.rules.history import JobHistory, ended_at
from schedulerx_alert.core.rules.memory import JobRuleState
from schedulerx_alert.core.rules.settings import RuleSettings

_KNOWN_TRIGGERS = frozenset(int(t) for t in TriggerType)


def admitted(inst: JobInstance, settings: RuleSettings) -> bool:
    """The trigger filter: runs of an unwatched trigger type do not exist for the rules.

    A run whose trigger type is missing or unknown is kept: dropping what we cannot
    classify could hide a failure.
    """
    trigger = inst.trigger_type
    if trigger is None or trigger not in _KNOWN_TRIGGERS:
        return True
    return TriggerType(trigger) in settings.trigger_types


def is_failure(inst: JobInstance, settings: RuleSettings) -> bool:
    status = inst.status
    return status is not None and status in settings.alert_on


def on_outcome(
    inst: JobInstance,
    history: JobHistory,
    settings: RuleSettings,
    state: JobRuleState,
    now: float,
) -> tuple[list[Finding], JobRuleState]:
    """Count a failed outcome; announce it if the streak has reached the threshold."""
    if not is_failure(inst, settings):
        return [], state
    at = ended_at(inst, now)
    streak = state.streak + 1
    state = replace(
        state,
        streak=streak,
        streak_since=at if state.streak == 0 or state.streak_since is None else state.streak_since,
    )
    if (
        streak < settings.consecutive_failures
        or state.flapping_since is not None
        or history.quiet(inst)
    ):
        return [], state
    kind = inst.status_label
    fingerprint = f"{kind}:{attempt_id(inst)}"
    found = finding(
        kind, inst.job, fingerprint, now, (inst,), streak=streak, since=state.streak_since
    )
    return [found], replace(state, announced=True, last_failure=fingerprint)
