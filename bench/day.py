"""The state over a day: how many run records it holds, its size, and what decoding and
encoding it costs a tick, hour by hour. Prints a table; asserts nothing.

    python -m bench.day [--jobs 5000,20000] [--hours 24]

The pure core (`core/diff.py`) is driven with the synthetic estate of bench/estate.py (its
mix and run rates, seed 7, 100 groups' worth of jobs, no server): each step lists every run
that ended since the previous step's windows, as group query windows on the end time
would list them with the 15-minute overlap, and every run still running (every group read
up to now, so a job none of whose runs is listed is known to now too). The clock moves
five minutes a step, and one minute into each printed hour (that tick's diff is timed).
Delivered alerts leave the outbox at once.

Runs against whatever `schedulerx_alert` is importable, so the same script measures an
older version with PYTHONPATH pointing at its src/.
"""

from __future__ import annotations

import argparse
import gc
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from bench.estate import Estate, EstateSpec
from schedulerx_alert.core.diff import DiffSettings, Reading, Target, diff
from schedulerx_alert.core.model import JobInstance, JobKey
from schedulerx_alert.core.state import State, dump_state, load_state

# 2026-11-25 00:00 Asia/Shanghai: the day's daily crons all fire inside the measured day.
START = 1795536000.0
ZONE = ZoneInfo("Asia/Shanghai")
OVERLAP = 15 * 60.0
STEP = 5 * 60.0
TICK = 60.0
HOURS = (0, 1, 3, 6, 12, 24)
FINISHED = frozenset({4, 5, 9})


class Runs:
    """What bench/estate.py writes to a SchedulerX, kept as the windows would list it."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.groups: dict[int, str] = {}
        self.running: dict[int, JobInstance] = {}
        self.ended: list[tuple[float, JobInstance]] = []
        self.next_id = 1_700_000_000_001

    def add_job(self, namespace: str, group: str, job_id: int, *_: object, **__: object) -> None:
        self.groups[job_id] = group

    def add_instance(
        self,
        job_id: int,
        status: int = 3,
        result: str = "",
        schedule_time: float = 0.0,
        start_time: float | None = None,
        end_time: float | None = None,
        trigger_type: int = 1,
        work_addr: str = "",
        started: bool = True,
        **_: object,
    ) -> int:
        instance_id, self.next_id = self.next_id, self.next_id + 1
        started_at = (start_time or schedule_time) if started else None
        run = JobInstance(
            JobKey(self.namespace, self.groups[job_id], job_id),
            instance_id,
            status,
            result,
            schedule_time=_when(schedule_time),
            start_time=_when(started_at),
            end_time=_when(end_time),
            trigger_type=trigger_type,
            work_addr=work_addr,
        )
        if status in FINISHED and end_time is not None:
            self.ended.append((end_time, run))
        else:
            self.running[instance_id] = run
        return instance_id

    def set_status(self, instance_id: int, status: int, result: str, end_time: float) -> None:
        run = self.running.pop(instance_id)
        ended = JobInstance(
            run.job,
            instance_id,
            status,
            result,
            schedule_time=run.schedule_time,
            start_time=run.start_time,
            end_time=_when(end_time),
            trigger_type=run.trigger_type,
            work_addr=run.work_addr,
        )
        self.ended.append((end_time, ended))

    def forget_instances(self, older_than: float, keep_latest: int = 10) -> int:
        return 0

    def listing(self, since: float) -> dict[JobKey, list[JobInstance]]:
        """Runs that ended after `since`, and every run still running, per job."""
        self.ended = [(end, run) for end, run in self.ended if end > since]
        polls: dict[JobKey, list[JobInstance]] = {}
        for _, run in self.ended:
            polls.setdefault(run.job, []).append(run)
        for run in self.running.values():
            polls.setdefault(run.job, []).append(run)
        return polls


def _when(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, ZONE)


def records(state: State) -> int:
    return sum(len(job.instances) for job in state.jobs.values())


class Day:
    """One estate's state, moved step by step."""

    def __init__(self, jobs: int) -> None:
        self.estate = Estate.generate(EstateSpec(jobs=jobs, groups=100, seed=7))
        self.runs = Runs(self.estate.spec.namespace)
        # Duck-typed: the calls the estate makes of a loopback SchedulerX.
        self.estate.attach(self.runs, START)  # type: ignore[arg-type]
        namespace = self.estate.spec.namespace
        self.targets = {
            JobKey(namespace, job.group, job.job_id): Target(job.name, ("ops",))
            for job in self.estate.jobs
        }
        self.settings = DiffSettings(first_run_lookback=3600.0)
        self.state = State()
        self.now = START

    def step(self, seconds: float) -> float:
        """Move the clock; one diff over what the windows list. Its CPU ms."""
        since = self.now - OVERLAP
        self.now += seconds
        self.estate.advance_to(self.now)
        reading = Reading(
            self.runs.listing(since),
            partial=frozenset(self.targets),
            covered=dict.fromkeys(self.targets, self.now),
        )
        started = time.process_time()
        state = diff(self.state, reading, self.targets, self.now, self.settings).state
        cpu = (time.process_time() - started) * 1000
        self.state = state.with_updates(outbox=(), delivered={})
        return cpu


def day(jobs: int, hours: int) -> list[tuple[int, int, float, float, float]]:
    """Rows (hour, records, KiB, decode+encode ms, one tick's diff ms)."""
    sim = Day(jobs)
    rows: list[tuple[int, int, float, float, float]] = []
    for hour in (h for h in HOURS if h <= hours):
        mark = START + max(hour * 3600.0, TICK)  # hour 0: the first tick
        while mark - sim.now > TICK:
            sim.step(min(STEP, mark - sim.now - TICK))
        tick_ms = sim.step(mark - sim.now)
        rows.append((hour, *_measure(sim.state), tick_ms))
        print(_row(jobs, rows[-1]), flush=True)
    return rows


def _measure(state: State) -> tuple[int, float, float]:
    gc.collect()
    started = time.process_time()
    data = dump_state(state)
    load_state(data)
    cpu = (time.process_time() - started) * 1000
    return records(state), len(data) / 1024, cpu


def _row(jobs: int, row: tuple[int, int, float, float, float]) -> str:
    hour, held, kib, cpu, tick = row
    return (
        f"| {jobs:>6,} | {hour:>4} h | {held:>9,} | {kib:>10,.0f} | {cpu:>9,.0f} | {tick:>7,.0f} |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    parser.add_argument("--jobs", default="5000,20000", help="estate sizes, comma-separated")
    parser.add_argument("--hours", type=int, default=24)
    args = parser.parse_args(argv)
    print("|   jobs |   hour |   records |  state KiB |  codec ms | diff ms |")
    print("|-------:|-------:|----------:|-----------:|----------:|--------:|")
    for jobs in (int(n) for n in args.jobs.split(",")):
        day(jobs, args.hours)


if __name__ == "__main__":
    main()
