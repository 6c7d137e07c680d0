"""The quota used in full: a tick gets what the last minute frees while it runs (issue 22).

Ticks start a minute apart, and a tick's calls are spread over its seconds, so when the next
tick starts they are still in the sliding minute. Cutting that tick to what the window has
left when it starts gave alternate ticks 60/30 or 90/0 calls; waiting for the calls to leave
the window gives every tick the quota.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from schedulerx_alert.sources.fetch import CallBudget
from tests.world import World


def test_a_tick_waits_for_the_last_ticks_calls_to_leave_the_minute_and_polls_in_full(
    tmp_path: Path,
) -> None:
    jobs = tuple(range(1000, 1100))
    with World(tmp_path, jobs=jobs) as world:
        world.raw["schedulerx"] = {"endpoint": world.sx.url, "query": "every_job"}
        first = world.tick()
        assert first.polled == 90
        # The next tick starts 50 s later, as one would after a tick whose calls took its
        # first 10 s: the last 90 calls leave the window 10 s into this tick.
        world.advance(50)
        world.sx.add_instance(1099, status=5, result="boom")
        second = world.tick()
        assert second.polled == 90 and second.api_calls == 90
        # Still under the quota, as SchedulerX counts it.
        assert world.sx.max_calls_in_any_minute("GetJobInstanceList") <= 90
        assert any("boom" in text for text in world.texts())


def test_a_budget_waits_only_for_room_that_frees_within_its_pace() -> None:
    now = [1000.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    # Two calls 45 s and 30 s ago: one place frees in 15 s, the other in 30 s.
    budget = CallBudget(2, (955.0, 970.0), lambda: now[0])
    assert budget.free_by(1100.0) == 1  # no later than it will wait (20 s)
    assert budget.acquire(until=2000.0, sleep=sleep)
    assert slept == [15.0]
    # The next place frees 30 s after the budget began: later than it waits.
    assert not budget.acquire(until=2000.0, sleep=sleep)
    assert not budget.acquire(until=now[0], sleep=sleep)


def test_a_raised_quota_can_be_used_and_a_number_beyond_any_quota_is_refused(
    tmp_path: Path,
) -> None:
    from schedulerx_alert.config import ConfigError

    with World(tmp_path, jobs=(92583,)) as world:
        # An account whose quota was raised to 500 a minute gives the function 450 of it.
        raised = {"endpoint": world.sx.url, "max_calls_per_minute": 450}
        assert world.config(schedulerx=raised).schedulerx.max_calls_per_minute == 450
        beyond = {"endpoint": world.sx.url, "max_calls_per_minute": 5000}
        with pytest.raises(ConfigError) as caught:
            world.config(schedulerx=beyond)
        assert any("max_calls_per_minute" in p for p in caught.value.problems)
