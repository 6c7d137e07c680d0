"""A job alternating between failure and success gets one message, not one per run.

`flap_changes` changes of outcome within `flap_window` start a flapping episode: one
"flapping" finding, then failure and recovery stay silent (they check `flapping_since`)
until no change has happened for a whole window; then one "settled" finding says whether
the job ended up working or failing. Stuck and missed runs are not alternation and are
still announced during an episode.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from schedulerx_alert.core.findings import FLAPPING, SETTLED, Finding, finding, job_fingerprint
from schedulerx_alert.core.model import InstanceStatus, JobInstance
from schedulerx_alert.core.rules.failure import is_failure
from schedulerx_alert.core.rules.history import JobHistory, ended_at
from schedulerx_alert.core.rules.memory import JobRuleState
from schedulerx_alert.core.rules.settings import MAX_FLAP_CHANGES, RuleSettings


def on_outcome(
    inst: JobInstance,
    history: JobHistory,
    settings: RuleSettings,
    state: JobRuleState,
    now: float,
) -> tuple[list[Finding], JobRuleState]:
    """Record a change of outcome; start an episode when the window holds enough of them."""
    outcome: Literal["ok", "fail"]
    if is_failure(inst, settings):
        outcome = "fail"
    elif inst.status is InstanceStatus.SUCCESS:
        outcome = "ok"
    else:
        return [], state
    changed = state.last_outcome is not None and state.last_outcome != outcome
    state = replace(state, last_outcome=outcome)
    window = settings.flap_window
    # A quiet outcome (before the first poll's lookback) is the past, not alternation now.
    if not changed or window is None or history.quiet(inst):
        return [], state
    at = ended_at(inst, now)
    recent = sorted(t for t in (*state.changes, at) if t > at - window)
    state = replace(state, changes=tuple(recent[-MAX_FLAP_CHANGES:]))
    if state.flapping_since is not None or len(recent) < settings.flap_changes:
        return [], state
    found = finding(
        FLAPPING,
        inst.job,
        job_fingerprint(FLAPPING, inst.job, int(at)),
        now,
        (inst,),
        changes=len(recent),
        window_seconds=window,
        since=recent[0],
    )
    return [found], replace(state, flapping_since=at)


def settle(
    history: JobHistory,
    settings: RuleSettings,
    state: JobRuleState,
    now: float,
) -> tuple[list[Finding], JobRuleState]:
    """End an episode once the outcome has not changed for a whole window."""
    since = state.flapping_since
    if since is None:
        return [], state
    last_change = state.changes[-1] if state.changes else since
    window = settings.flap_window
    if window is not None and now - last_change < window:
        return [], state
    failing = state.last_outcome == "fail"
    fingerprint = job_fingerprint(SETTLED, history.job, int(since))
    found = finding(
        SETTLED,
        history.job,
        fingerprint,
        now,
        settled_as="failing" if failing else "ok",
        flapping_since=since,
        stable_since=last_change,
        streak=state.streak,
    )
    state = replace(state, flapping_since=None, changes=())
    if failing:
        # The settled message told the group the job is failing: its success is a recovery.
        state = replace(state, announced=True, last_failure=fingerprint)
    return [found], state
