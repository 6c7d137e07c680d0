"""A tick runs without the cyclic garbage collector (its passes over the state's objects
were a tenth of a large tick's CPU) and gives it back when it ends, however it ends."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from schedulerx_alert.handler import build_edges
from schedulerx_alert.tick import run_tick
from tests.fakes.base import ManualClock
from tests.world import START, World


class WatchingClock(ManualClock):
    """The fakes' clock, noting whether the collector was on at each reading."""

    def __init__(self, start: float) -> None:
        super().__init__(start)
        self.collecting: list[bool] = []
        self.broken = False

    def __call__(self) -> float:
        if self.broken:
            raise RuntimeError("the clock stopped")
        self.collecting.append(gc.isenabled())
        return super().__call__()


def test_a_tick_runs_without_the_collector_and_turns_it_back_on(tmp_path: Path) -> None:
    clock = WatchingClock(START)
    with World(tmp_path, clock=clock) as world:
        world.sx.add_instance(92583, status=5, result="java.lang.IllegalStateException: disk")
        for _ in range(2):
            clock.collecting.clear()
            summary = world.tick()
            assert summary.status == "ok"
            assert clock.collecting and not any(clock.collecting)
            assert gc.isenabled()
            world.advance(60)
        assert len(world.texts()) == 1


def test_a_tick_that_fails_turns_the_collector_back_on(tmp_path: Path) -> None:
    clock = WatchingClock(START)
    with World(tmp_path, clock=clock) as world:
        config = world.config()
        edges = build_edges(
            config, world.credentials, 60.0, "tick", clock, clock.advance, tmp_path / "local"
        )
        clock.broken = True
        with pytest.raises(RuntimeError, match="the clock stopped"):
            run_tick(config, edges)
        clock.broken = False
    assert gc.isenabled()
