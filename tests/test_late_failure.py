"""A failure listed late, after a newer success closed its streak (core/rules/recovery.py).

The job failed at 10:01 (announced) and recovered at 10:02; a run that failed just
before that success is first listed at 10:03. It was never announced, so it is, once;
but the job has worked since 10:02, so its next success is no second "recovered", and the
flap rule does not count it as two more changes. Stories on the loopback SchedulerX and
DingTalk, a tick a minute, with the job read by id, by group queries and job by job.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from schedulerx_alert.core.findings import Finding
from schedulerx_alert.core.model import InstanceStatus, JobInstance
from schedulerx_alert.core.rules import (
    EMPTY,
    UNKNOWN_SCHEDULE,
    JobHistory,
    JobRuleState,
    RuleSettings,
    Seen,
    evaluate_job,
)
from schedulerx_alert.core.state import load_state
from tests.builders import T0
from tests.rules_driver import key
from tests.rules_driver import run as listed_run
from tests.test_state_day import (
    FAILED,
    JOB,
    MINUTE,
    MODES,
    SUCCESS,
    Mode,
    estate,
    kinds,
    minute,
    run,
    tick,
)
from tests.world import World


def fail_recover_then_list_a_failure_late(world: World) -> None:
    """Failure (announced), success (recovered), then a failure that ended ten seconds
    before that success, first listed a minute later: announced once, on its own. (The
    first tick finds the job, and lists nothing yet.)"""
    assert kinds(tick(world)) == []
    minute(world)
    run(world, FAILED)
    assert kinds(tick(world)) == ["failed"]
    minute(world)
    run(world)  # ended 5 s ago
    assert kinds(tick(world)) == ["recovered"]
    minute(world)
    now = world.clock()
    world.sx.add_instance(
        JOB,
        status=FAILED,
        result="java.io.IOException: disk full",
        schedule_time=now - MINUTE - 40,
        start_time=now - MINUTE - 40,
        end_time=now - MINUTE - 15,
    )
    assert kinds(tick(world)) == ["failed"]


@pytest.mark.parametrize("mode", MODES)
def test_a_failure_listed_after_a_newer_success_is_announced_once_and_reopens_no_streak(
    tmp_path: Path, mode: Mode
) -> None:
    with estate(tmp_path, mode) as world:
        fail_recover_then_list_a_failure_late(world)
        for _ in range(3):
            minute(world)
            run(world)
            assert kinds(tick(world)) == []  # main: ["recovered"], then []
        # The job fails again for real: that is a new streak, announced and recovered.
        minute(world)
        run(world, FAILED)
        assert kinds(tick(world)) == ["failed"]
        minute(world)
        run(world)
        assert kinds(tick(world)) == ["recovered"]


@pytest.mark.parametrize("mode", ["group", "per_job"])
def test_a_failure_listed_late_counts_no_flapping(tmp_path: Path, mode: Mode) -> None:
    """Three changes in six hours are flapping. Failure, success (one change), the late
    failure, success, failure (two): no flapping yet, and the memory says two changes."""
    options = {"flap_window": "6h", "flap_changes": 3}
    with estate(tmp_path, mode, **options) as world:
        fail_recover_then_list_a_failure_late(world)
        minute(world)
        run(world)
        assert kinds(tick(world)) == []  # main: ["recovered"]
        minute(world)
        run(world, FAILED)
        assert kinds(tick(world)) == ["failed"]
        memory = load_state(world.state_path.read_bytes()).jobs
        [rules] = [job.rules for key, job in memory.items() if key.job_id == JOB]
        assert rules.flapping_since is None and len(rules.changes) == 2
        assert rules.streak == 1 and rules.last_outcome == "fail"
        # The third real change is the flapping it should be.
        minute(world)
        run(world, SUCCESS)
        assert kinds(tick(world)) == ["flapping"]


class Rules:
    """The engine alone, one listing at a time, remembering what the tick remembers."""

    def __init__(self, settings: RuleSettings) -> None:
        self.settings = settings
        self.state: JobRuleState = EMPTY
        self.seen: dict[int, Seen] = {}

    def listed(self, inst: JobInstance, now: float) -> list[Finding]:
        history = JobHistory(key(), (inst,), dict(self.seen))
        found, self.state = evaluate_job(history, self.settings, UNKNOWN_SCHEDULE, self.state, now)
        self.seen = history.remembered()
        return found


def test_a_late_failure_while_the_streak_is_open_still_counts_in_it() -> None:
    """Failed at 10:05 (announced), the one of 10:04 listed after it: two in a row, and
    the success that follows recovers both."""
    rules = Rules(RuleSettings())
    assert [f.kind for f in rules.listed(listed_run(1, ended=T0 + 300), T0 + 310)] == ["failed"]
    late = rules.listed(listed_run(2, ended=T0 + 240), T0 + 370)
    assert [(f.kind, f.facts["streak"]) for f in late] == [("failed", 2)]
    (recovered,) = rules.listed(listed_run(3, InstanceStatus.SUCCESS, ended=T0 + 420), T0 + 430)
    assert recovered.kind == "recovered" and recovered.facts["failed_runs"] == 2


def test_a_late_failure_after_the_streak_closed_is_a_streak_of_one() -> None:
    """With `consecutive_failures: 2`: two failures (announced), a success (recovered),
    then a failure listed late, before that success: one failure, below the threshold,
    and the memory is the success's."""
    rules = Rules(RuleSettings(consecutive_failures=2))
    rules.listed(listed_run(1, ended=T0 + 60), T0 + 70)
    assert [f.kind for f in rules.listed(listed_run(2, ended=T0 + 120), T0 + 130)] == ["failed"]
    assert [
        f.kind
        for f in rules.listed(listed_run(3, InstanceStatus.SUCCESS, ended=T0 + 180), T0 + 190)
    ] == ["recovered"]
    closed = rules.state
    assert rules.listed(listed_run(4, ended=T0 + 170), T0 + 250) == []  # main: streak 1
    assert rules.state == closed
    assert rules.listed(listed_run(5, ended=T0 + 300), T0 + 310) == []
    assert [f.kind for f in rules.listed(listed_run(6, ended=T0 + 360), T0 + 370)] == ["failed"]
