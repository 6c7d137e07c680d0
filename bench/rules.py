"""Benchmark: the rule engine over many jobs, and the size of the memory it keeps.

Prints a table; asserts nothing. `.venv/bin/python -m bench.rules`.
"""

from __future__ import annotations

import json
import statistics
import time

from tests.builders import T0
from tests.rules_driver import MINUTE, Every, key, run

from schedulerx_alert.core.model import InstanceStatus, JobInstance, JobKey
from schedulerx_alert.core.rules import (
    JobHistory,
    JobRuleState,
    JobSchedule,
    RuleSettings,
    Seen,
    evaluate,
    memory_to_json,
)

SETTINGS = RuleSettings(stuck_after=30 * MINUTE, missed_grace=5 * MINUTE)


def listing(job: JobKey, j: int, minute: int) -> tuple[JobInstance, ...]:
    """A job's last 10 runs, one a minute; every third job failing with one shared error."""
    status = InstanceStatus.FAILED if j % 3 == 0 else InstanceStatus.SUCCESS
    return tuple(
        run(
            m,
            status,
            started=T0 + m * MINUTE,
            ended=T0 + m * MINUTE + 20,
            job_id=job.job_id,
            result=f"Connection refused 10.0.0.5:3306 (instance {m})",
        )
        for m in range(max(1, minute - 9), minute + 1)
    )


def measure(jobs: int, ticks: int = 5) -> dict[str, float]:
    """Ticks a minute apart, each job's history and memory carried as the tick will."""
    keys = [key(10_000 + j) for j in range(jobs)]
    settings = dict.fromkeys(keys, SETTINGS)
    schedules = {job: JobSchedule(time_type=1, fires=Every(MINUTE)) for job in keys}
    memory: dict[JobKey, JobRuleState] = {}
    seen: dict[JobKey, dict[int, Seen]] = {}
    durations, found = [], 0
    for minute in range(1, ticks + 1):
        histories = {
            job: JobHistory(job, listing(job, j, minute), seen.get(job, {}))
            for j, job in enumerate(keys)
        }
        now = T0 + minute * MINUTE + 30
        started = time.perf_counter()
        findings, memory = evaluate(histories, settings, schedules, memory, now)
        durations.append((time.perf_counter() - started) * 1000)
        seen = {job: history.remembered() for job, history in histories.items()}
        found = len(findings)
    stored = json.dumps({str(job): memory_to_json(state) for job, state in memory.items()})
    return {
        "ms": statistics.median(durations[1:]),
        "findings": found,
        "memory_bytes": len(stored),
    }


def main() -> None:
    print("| jobs | evaluate, median ms | findings in the last tick | rule memory as JSON, bytes |")
    print("|---|---|---|---|")
    for jobs in (10, 100, 1000, 5000):
        row = measure(jobs)
        print(f"| {jobs} | {row['ms']:.1f} | {row['findings']:.0f} | {row['memory_bytes']:.0f} |")


if __name__ == "__main__":
    main()
