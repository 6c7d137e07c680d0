"""Benchmarks: ticks over many jobs (the cold start is bench/coldstart.py's).

Prints tables; asserts nothing. `make bench`.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from tests.world import World


def tick_time(jobs: int, failing: int, concurrency: int, runs: int = 3) -> dict[str, float]:
    durations, first = [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        ids = tuple(range(10_000, 10_000 + jobs))
        with World(Path(tmp), jobs=ids, real_time=True) as world:
            for job_id in ids:
                for n in range(5):
                    world.sx.add_instance(job_id, status=4, schedule_time=time.time() - 60 * n)
            for job_id in ids[:failing]:
                world.sx.add_instance(job_id, status=5, result="boom")
            world.sx.rate_limit = 10_000  # measure our side, not the quota
            limits = {"max_calls_per_minute": 100, "concurrency": concurrency}
            for i in range(runs):
                # A fresh minute for the quota each time: reset the shared call log.
                summary = world.tick(schedulerx={"endpoint": world.sx.url, **limits})
                if i == 0:
                    first = summary.duration_ms
                else:
                    durations.append(summary.duration_ms)
                state = world.state_path.read_bytes()
                world.state_path.write_bytes(
                    state.replace(b'"api_calls":[', b'"api_calls_old":[', 1)
                )
                assert summary.polled == jobs, summary
    return {
        "first": first,
        "steady": statistics.median(durations),
        "state_kb": len(state) / 1024,
    }


def main() -> None:
    print("\n| jobs | failing | concurrency | first tick ms | steady tick ms | state KiB |")
    print("|---|---|---|---|---|---|")
    for jobs, failing, concurrency in ((10, 1, 4), (100, 3, 4), (100, 3, 8), (100, 40, 4)):
        r = tick_time(jobs, failing, concurrency)
        print(
            f"| {jobs} | {failing} | {concurrency} | {r['first']:.0f} | {r['steady']:.0f} "
            f"| {r['state_kb']:.1f} |"
        )


if __name__ == "__main__":
    main()
