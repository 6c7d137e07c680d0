"""Ticks that overlap (a timer tick and FC's async retry, a laptop `check`)."""

from __future__ import annotations

import threading
from pathlib import Path

from schedulerx_alert.tick import TickSummary
from tests.world import World


def test_ticks_started_together_announce_each_failure_once(tmp_path: Path) -> None:
    with World(tmp_path, state="oss") as world:
        for round_ in range(5):
            world.sx.add_instance(92583, status=5, result=f"round {round_}")
            barrier = threading.Barrier(3)
            results: list[TickSummary] = []

            def run(name: str, barrier: threading.Barrier, results: list[TickSummary]) -> None:
                barrier.wait()
                results.append(world.tick(owner=name))

            threads = [
                threading.Thread(target=run, args=(f"t{i}", barrier, results)) for i in range(3)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            world.advance(60)
            assert sum(r.alerts_sent for r in results) == 1, results
            assert len(world.texts()) == round_ + 1
        # Whoever lost the race either skipped or found nothing new to say.
        assert all(r.status in ("ok", "skipped") for r in results)
