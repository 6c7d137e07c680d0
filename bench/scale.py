"""How the ways of finding runs scale: group queries, per-job polls by schedule, every job
every tick; on the same synthetic estate, against the loopback SchedulerX.

For each estate (1,000, 5,000 and 20,000 jobs over 20 groups, and 20,000 over 100) and each
mode (`schedulerx.query`: auto, per_job, every_job), the real product runs one tick a minute
for `--hours` of simulated time, in a process of its own (its peak RSS is the function's).
The estate (bench/estate.py) fires its jobs on schedule, fails some runs at random fire times
and lets a few run for hours; the clock is injected, nothing sleeps. The server's 50 ms
latency is accounted, not slept: a tick's wall time is its measured time plus the makespan of
its calls' latencies on `concurrency` connections (a lower bound: pages of one query wait for
each other).

Columns: calls per tick per API (mean/max); the most calls in any 60 s (GetJobInstanceList,
as the server counted them); failure-to-alert latency in ticks (1 = announced by the first
tick after the run ended) at p50/p99/max, over every failure that ended at least five ticks
before the end, and p99 over scheduled runs only; failures never announced; tick wall time
(p50/max); the tick process's peak RSS; the state's size (largest).

Prints tables; asserts nothing. `make bench` (or `python -m bench.scale --hours 1`).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.fakes.base import ManualClock
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.schedulerx import FakeSchedulerX, makespan

from bench.estate import Estate, EstateSpec, failures_config, scored
from schedulerx_alert.support.process_log import progress_reporter

ROOT = Path(__file__).resolve().parent.parent
AK, SK, STS = "LTAI5tBenchKeyId", "bench-secret-0123456789", "CAIS-bench-token"
ROBOT, ROBOT_SECRET = "bench-robot-token-0123456789", "SECbench0123456789abcdef0123456789ab"
START = 1_795_572_000.0  # 2026-11-25 10:00 Asia/Shanghai
TICK = 60.0
LATENCY = 0.05
CONCURRENCY = 4
MODES = {"auto": "group queries", "per_job": "per-job, by schedule", "every_job": "every job"}
INSTANCE_ID = re.compile(r"\b1[0-9]{12}\b")


@dataclass
class Outcome:
    jobs: int
    groups: int
    mode: str
    ticks: int = 0
    calls: dict[str, list[int]] = field(default_factory=dict)
    busiest_minute: int = 0
    latencies: list[float] = field(default_factory=list)  # ticks; inf = never announced
    scheduled: list[float] = field(default_factory=list)
    never: int = 0
    counted: int = 0
    walls: list[float] = field(default_factory=list)
    rss_mib: float = 0.0
    state_bytes: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    problem: str = ""
    seconds: float = 0.0


def run(jobs: int, groups: int, mode: str, hours: float, seed: int) -> Outcome:
    outcome = Outcome(jobs, groups, mode)
    began = time.perf_counter()
    clock = ManualClock(START)
    ticks = round(hours * 3600 / TICK)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sx = FakeSchedulerX(
            AK,
            SK,
            STS,
            clock=clock,
            max_skew=None,
            latency=LATENCY,
            latency_mode="account",
        ).start()
        dt = FakeDingTalk(clock=clock).start()
        try:
            dt.add_robot(ROBOT, secret=ROBOT_SECRET)
            estate = Estate.generate(EstateSpec(jobs=jobs, groups=groups, seed=seed))
            estate.attach(sx, START)
            child = _start_child(root, sx, dt, estate, mode)
            announced: dict[int, int] = {}
            seen_texts = 0
            # A status line on a terminal (the runs take minutes); nothing into a pipe.
            progress = progress_reporter()
            for k in range(1, ticks + 1):
                progress(f"{jobs:,} / {groups} {mode}: simulated ticks", k - 1, ticks)
                now = START + k * TICK
                clock.set(now)
                estate.advance_to(now)
                since = now - 0.5
                assert child.stdin is not None and child.stdout is not None
                child.stdin.write(json.dumps({"now": now}) + "\n")
                child.stdin.flush()
                answer = json.loads(child.stdout.readline())
                texts = dt.texts(ROBOT)
                for text in texts[seen_texts:]:
                    for found in INSTANCE_ID.findall(text):
                        announced.setdefault(int(found), k)
                seen_texts = len(texts)
                ledger = [e.seconds for e in sx.latency_ledger(since)]
                outcome.walls.append(answer["wall"] + makespan(ledger, CONCURRENCY))
                for action in ("GetJobInstanceList", "ListJobs", "GetJobInfo"):
                    outcome.calls.setdefault(action, []).append(answer["calls"].get(action, 0))
                outcome.rss_mib = max(outcome.rss_mib, answer["rss_mib"])
                outcome.state_bytes = max(outcome.state_bytes, answer["state_bytes"])
                outcome.statuses[answer["status"]] += 1
                if answer["problems"] and not outcome.problem:
                    outcome.problem = f"tick {k}: {answer['problems'][0]}"
            progress(f"{jobs:,} / {groups} {mode}: simulated ticks", ticks, ticks)
            assert child.stdin is not None
            child.stdin.close()
            child.wait(timeout=60)
            outcome.ticks = ticks
            outcome.busiest_minute = sx.max_calls_in_any_minute("GetJobInstanceList")
            for one in scored(estate, announced, ticks, START, TICK):
                outcome.counted += 1
                outcome.never += one.at is None
                outcome.latencies.append(one.latency)
                if one.scheduled:
                    outcome.scheduled.append(one.latency)
        finally:
            sx.stop()
            dt.stop()
    outcome.seconds = time.perf_counter() - began
    return outcome


def _start_child(
    root: Path, sx: FakeSchedulerX, dt: FakeDingTalk, estate: Estate, mode: str
) -> subprocess.Popen[str]:
    state = root / "state" / "state.json"
    config = failures_config(
        estate,
        {
            "endpoint": sx.url,
            "query": mode,
            "concurrency": CONCURRENCY,
        },
        f"file://{state}",
        dt.webhook(ROBOT),
        ROBOT_SECRET,
    )
    setup = root / "setup.json"
    setup.write_text(
        json.dumps(
            {
                "root": str(root),
                "config": config,
                "credentials": [AK, SK, STS],
                "state": str(state),
                "start": START,
            }
        ),
        encoding="utf-8",
    )
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.scale_child", str(setup)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=open(root / "child.log", "w"),  # noqa: SIM115 - its log lines
        text=True,
    )
    assert child.stdout is not None
    json.loads(child.stdout.readline())  # ready
    return child


def _pct(values: list[float], q: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    value = ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]
    return "never" if math.isinf(value) else f"{value:g}"


def _mean_max(values: list[int]) -> str:
    return f"{statistics.fmean(values):.1f} / {max(values)}" if values else "-"


def print_table(outcomes: list[Outcome]) -> None:
    print(
        "\n| jobs / groups | mode | GetJobInstanceList per tick (mean / max) "
        "| ListJobs per tick | GetJobInfo per tick | most in any minute "
        "| latency ticks p50 / p99 / max | p99 scheduled runs | never announced "
        "| tick wall s p50 / max | peak RSS MiB | state KiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for o in outcomes:
        walls = sorted(o.walls)
        print(
            f"| {o.jobs:,} / {o.groups} | {MODES[o.mode]} "
            f"| {_mean_max(o.calls['GetJobInstanceList'])} | {_mean_max(o.calls['ListJobs'])} "
            f"| {_mean_max(o.calls['GetJobInfo'])} | {o.busiest_minute} "
            f"| {_pct(o.latencies, 0.5)} / {_pct(o.latencies, 0.99)} / {_pct(o.latencies, 1.0)} "
            f"| {_pct(o.scheduled, 0.99)} | {o.never} of {o.counted} "
            f"| {statistics.median(walls):.2f} / {walls[-1]:.2f} | {o.rss_mib:.0f} "
            f"| {o.state_bytes / 1024:.0f} |"
        )
    print()
    for o in outcomes:
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(o.statuses.items()))
        print(
            f"- {o.jobs:,} / {o.groups}, {MODES[o.mode]}: {o.ticks} ticks ({statuses}); "
            f"ran {o.seconds:.0f} s" + (f"; first problem: {o.problem[:160]}" if o.problem else "")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--hours", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--estates", default="1000/20,5000/20,20000/20,20000/100", help="jobs/groups,..."
    )
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    outcomes = []
    for estate in args.estates.split(","):
        jobs, groups = (int(n) for n in estate.split("/"))
        for mode in args.modes.split(","):
            outcome = run(jobs, groups, mode, args.hours, args.seed)
            print(
                f"{jobs}/{groups} {mode}: {outcome.never} of {outcome.counted} never announced, "
                f"p99 {_pct(outcome.latencies, 0.99)}, {outcome.seconds:.0f} s",
                file=sys.stderr,
                flush=True,
            )
            outcomes.append(outcome)
    print(f"\nSimulated {args.hours:g} h per run, one tick a minute, seed {args.seed}.")
    print_table(outcomes)


if __name__ == "__main__":
    main()
