"""Why groups were left unread, as the tick says it: the quota, the time, or the plan's fit
to what the sliding minute still held when the tick began. A tick that stopped for none
of the first two must not say it ran out of time (it had 50 s left)."""

from __future__ import annotations

from schedulerx_alert.config.timing import Timing
from schedulerx_alert.sources.fetch import CallBudget
from schedulerx_alert.sources.poll import PollResult
from schedulerx_alert.tick import TickSummary, _read_problems

NOW = 1_700_000_000.0
GROUP = ("ns", "g")


def said(stopped: str, calls: int) -> str:
    result = PollResult()
    result.behind = {GROUP: NOW - 240}
    result.stopped = stopped
    budget = CallBudget(90, [NOW - 30] * calls, lambda: NOW)
    [line] = _read_problems(
        Timing(60.0, 10.0, 10.0, 10.0, 1.0, 9.0, 15.0), TickSummary(), result, budget, 0, NOW
    )
    return line


def test_groups_left_by_the_plan_are_not_said_to_have_run_out_of_time() -> None:
    line = said("", 60)
    assert "no time left" not in line and "sliding minute" in line, line


def test_the_quota_and_the_time_are_said_as_they_ran_out() -> None:
    assert "quota used up" in said("", 90)
    assert "quota used up" in said("API quota for this minute used up", 60)
    assert "no time left" in said("no time left in this tick", 60)
