"""Scale, measured as the function will run on FC: a clock that moves, a process per tick.

Each row is one seeded estate (bench/estate.py) against the loopback SchedulerX, run one
tick a minute for ``--hours`` of simulated time. Unlike a frozen clock, time passes inside a
tick: every call takes its 50 ms (the server sleeps them; the function runs 4 calls at once)
and the tick's own CPU counts at the configured vCPU (``--vcpu``), so a tick that costs 1 s of
CPU at 0.1 vCPU makes its last call about 10 s after it began (bench/moving_child.py). Ticks
start a minute apart, each in a fresh process (the state is read from storage each time);
the server's quota and runs share that clock, so calls a tick spreads over its seconds are
still in the sliding minute when the next tick starts.

Rows: 5,000 / 20, 20,000 / 100 and 30,000 / 300 groups; runs failing 0.5-10 h after they were
scheduled (under each window semantics: schedule, start, end time); a 30-minute SchedulerX
outage at 20,000 / 100; a bad deploy (3,000 failures in one group); an older server that
refuses group queries (2,000 jobs, read per job, 5 % of fires failing; at 90, 180 and 270
calls a minute); page-size and order variants.

Columns: GetJobInstanceList calls per tick (mean / min / max) and the most in any minute (as
the server counted them); latency in ticks from a failed run's end to its alert (1 = the
first tick after it ended; p50 / p99 / max) over failures that ended at least five ticks
before the end, p99 over scheduled runs (and below the table, by cron, fixed rate and
second delay); failures never announced; failures announced more
than once; ticks not ok; CPU seconds per tick (user + sys, p50 / max); the tick's wall time
at the vCPU (how far its clock moved: CPU / vCPU + waits, p50 / max); the tick process's
peak RSS; bytes written to
the state per tick (mean / max) and the state's size.

Prints tables; asserts nothing. ``python -m bench.moving`` (all rows, about an hour),
``--rows 5000/20`` to pick, ``--quick`` for a smoke run on a tiny estate.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.schedulerx import FakeSchedulerX, makespan

from bench.estate import Estate, EstateSpec, failures_config, scored
from bench.moving_child import SharedClock

ROOT = Path(__file__).resolve().parent.parent
AK, SK, STS = "LTAI5tBenchKeyId", "bench-secret-0123456789", "CAIS-bench-token"
ROBOT, ROBOT_SECRET = "bench-robot-token-0123456789", "SECbench0123456789abcdef0123456789ab"
START = 1_795_572_000.0  # 2026-11-25 10:00 Asia/Shanghai
TICK = 60.0
LATENCY = 0.05
CONCURRENCY = 4
INSTANCE_ID = re.compile(r"\b1[0-9]{12}\b")
#: The estate's kinds of job as the latency by kind names them.
KINDS = {
    "daily": "cron",
    "hourly": "cron",
    "minutes": "cron",
    "fixed_rate": "fixed rate",
    "second_delay": "second delay",
}


@dataclass(frozen=True)
class Case:
    """One row: an estate and what happens to it."""

    name: str
    jobs: int
    groups: int
    window: str = "end"  # which run time the server's window filters on
    order: str = "schedule_desc"
    page: int = 100
    legacy: str | None = None  # an older server: how it answers a query without JobId
    long_runs: int = 0  # runs failing 0.5-10 h after they were scheduled
    outage: tuple[float, float] | None = None  # SchedulerX down from, to (minutes)
    bad_deploy: int = 0  # failures in one group at minute 5
    quota: int = 90
    # Share of fires that fail, where the estate's own (0.2 %) would give too few failures
    # in half an hour to read a p99 from.
    failure_rate: float | None = None


# 5 % of fires fail: about 110 failures counted in half an hour, half of them second delays.
OLDER = Case("older server 2000", 2000, 20, legacy="missing_param", failure_rate=0.05)
CASES = {
    c.name: c
    for c in (
        Case("5000/20", 5000, 20),
        Case("20000/100", 20000, 100),
        Case("30000/300", 30000, 300),
        Case("long/schedule", 5000, 20, window="schedule", long_runs=40),
        Case("long/start", 5000, 20, window="start", long_runs=40),
        Case("long/end", 5000, 20, window="end", long_runs=40),
        Case("outage 20000/100", 20000, 100, outage=(10.0, 40.0)),
        Case("bad deploy 5000/20", 5000, 20, bad_deploy=3000),
        OLDER,
        replace(OLDER, name="older server 2000 quota 180", quota=180),
        replace(OLDER, name="older server 2000 quota 270", quota=270),
        Case("page 50 id asc", 5000, 20, order="id_asc", page=50),
        Case("page 20 start desc", 5000, 20, order="start_desc", page=20),
        Case("5000/20 quota 100", 5000, 20, quota=100),
        Case("20000/100 quota 180", 20000, 100, quota=180),
        Case("30000/300 quota 450", 30000, 300, quota=450),
    )
}
QUICK = Case("quick 200/4", 200, 4, long_runs=2, bad_deploy=30)


@dataclass
class Outcome:
    case: Case
    vcpu: float
    ticks: int = 0
    calls: list[int] = field(default_factory=list)
    by_id: list[int] = field(default_factory=list)  # GetJobInstance: long runs read by id
    busiest_minute: int = 0
    latencies: list[float] = field(default_factory=list)  # ticks; inf = never announced
    scheduled: list[float] = field(default_factory=list)
    # Scheduled runs' latencies by how the job is scheduled: cron, fixed rate, second delay.
    by_kind: dict[str, list[float]] = field(default_factory=dict)
    never: int = 0
    counted: int = 0
    duplicated: int = 0
    cpu: list[float] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)
    written: list[int] = field(default_factory=list)
    rss_mib: float = 0.0
    state_bytes: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    problem: str = ""
    after_resume: float = 0.0  # outage rows: worst latency counted from the resume
    seconds: float = 0.0


def run(case: Case, hours: float, vcpu: float, seed: int) -> Outcome:
    outcome = Outcome(case, vcpu)
    began = time.perf_counter()
    ticks = max(3, round(hours * 3600 / TICK))
    if case.outage:  # the resume and the ten ticks the target gives it, and five more
        ticks = max(ticks, round(case.outage[1]) + 15)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clock = SharedClock.create(root / "clock", START)
        # An account whose quota was raised: the function is given 90 % of it.
        limit = max(100, round(case.quota / 0.9))
        sx = FakeSchedulerX(AK, SK, STS, clock=clock, max_skew=None, rate_limit=limit).start()
        sx.configure(
            legacy=case.legacy,  # type: ignore[arg-type]
            window_field=case.window,  # type: ignore[arg-type]
            order=case.order,
            max_page_size=case.page,
            latency=LATENCY,
            latency_mode="sleep",
        )
        dt = FakeDingTalk(clock=clock).start()
        try:
            dt.add_robot(ROBOT, secret=ROBOT_SECRET)
            spec = EstateSpec(jobs=case.jobs, groups=case.groups, seed=seed)
            if case.failure_rate is not None:
                spec = replace(spec, failure_rate=case.failure_rate)
            estate = Estate.generate(spec)
            kinds = {j.job_id: KINDS.get(j.kind, j.kind) for j in estate.jobs}
            estate.attach(sx, START)
            if case.long_runs:
                estate.add_long_runs(case.long_runs, (0.5, 10.0), (ticks - 8) * TICK)
            setup = _setup(root, sx, dt, estate, case, vcpu)
            mentions: Counter[int] = Counter()
            announced: dict[int, int] = {}
            seen_texts = 0
            for k in range(1, ticks + 1):
                now = START + k * TICK
                clock.set(now)
                estate.advance_to(now)
                if case.bad_deploy and k == min(5, ticks // 3):
                    estate.bad_deploy(estate.groups()[0], case.bad_deploy)
                if case.outage and k == case.outage[0]:
                    sx.fail_next("5xx", 10**9)
                if case.outage and k == case.outage[1]:
                    sx.faults.clear()
                answer = _tick(root, setup, now)
                # The tick's wall time at the vCPU: how far its clock moved (CPU / vCPU, and
                # the real time it waited, leaving out its waits for a core).
                wall = answer["wall"]
                ledger = [e.seconds for e in sx.latency_ledger(now)]
                sx.clear_latency_ledger()
                calls_alone = makespan(ledger, CONCURRENCY)
                for text in dt.texts(ROBOT)[seen_texts:]:
                    for found in set(INSTANCE_ID.findall(text)):
                        mentions[int(found)] += 1
                        announced.setdefault(int(found), k)
                seen_texts = len(dt.texts(ROBOT))
                outcome.calls.append(answer["calls"].get("GetJobInstanceList", 0))
                outcome.by_id.append(answer["calls"].get("GetJobInstance", 0))
                outcome.cpu.append(answer["cpu"])
                outcome.walls.append(wall)
                outcome.written.append(answer["written"])
                outcome.rss_mib = max(outcome.rss_mib, answer["rss_mib"])
                outcome.state_bytes = max(outcome.state_bytes, answer["state_bytes"])
                outcome.statuses[answer["status"]] += 1
                if answer["problems"] and not outcome.problem:
                    outcome.problem = f"tick {k}: {answer['problems'][0]}"
                print(
                    f"  {case.name} tick {k}/{ticks}: {answer['status']}, "
                    f"{outcome.calls[-1]} calls, cpu {answer['cpu']:.2f} s, "
                    f"wall {wall:.1f} s (calls alone {calls_alone:.1f} s, "
                    f"slept {answer['slept']:.1f} s over its threads)",
                    file=sys.stderr,
                    flush=True,
                )
                if os.environ.get("BENCH_PROBLEMS"):
                    for problem in answer["problems"]:
                        print(f"    problem: {problem[:400]}", file=sys.stderr, flush=True)
            outcome.ticks = ticks
            outcome.busiest_minute = sx.max_calls_in_any_minute("GetJobInstanceList")
            for one in scored(estate, announced, ticks, START, TICK):
                failure, first, at, latency = one.failure, one.first, one.at, one.latency
                outcome.counted += 1
                outcome.never += at is None
                outcome.duplicated += mentions[failure.instance_id] > 1
                outcome.latencies.append(latency)
                if one.scheduled:
                    outcome.scheduled.append(latency)
                    kind = kinds[failure.job_id]
                    outcome.by_kind.setdefault(kind, []).append(latency)
                if case.outage and at is not None and first <= case.outage[1]:
                    outcome.after_resume = max(outcome.after_resume, at - case.outage[1] + 1)
                elif case.outage and at is None and first <= case.outage[1]:
                    outcome.after_resume = math.inf
            keep = os.environ.get("BENCH_KEEP")  # a folder to copy the last state into
            if keep:
                shutil.copytree(root / "state", keep, dirs_exist_ok=True)
        finally:
            sx.stop()
            dt.stop()
    outcome.seconds = time.perf_counter() - began
    return outcome


def _setup(
    root: Path, sx: FakeSchedulerX, dt: FakeDingTalk, estate: Estate, case: Case, vcpu: float
) -> Path:
    state_dir = root / "state"
    state_dir.mkdir()
    config = failures_config(
        estate,
        {
            "endpoint": sx.url,
            "concurrency": CONCURRENCY,
            "max_calls_per_minute": case.quota,
        },
        f"file://{state_dir / 'state.json'}",
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
                "state_dir": str(state_dir),
                "clock": str(root / "clock"),
                "vcpu": vcpu,
            }
        ),
        encoding="utf-8",
    )
    return setup


def _tick(root: Path, setup: Path, now: float) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    with (root / "child.log").open("a") as log:
        done = subprocess.run(
            [sys.executable, "-m", "bench.moving_child", str(setup), repr(now)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            check=False,
        )
    if done.returncode != 0 or not done.stdout.strip():
        tail = (root / "child.log").read_text(encoding="utf-8")[-2000:]
        raise RuntimeError(f"the tick's process failed ({done.returncode}):\n{tail}")
    answer: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return answer


def _pct(values: list[float], q: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    value = ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]
    return "never" if math.isinf(value) else f"{value:g}"


def print_table(outcomes: list[Outcome], file: TextIO | None = None) -> None:
    file = file or sys.stdout
    print(
        "\n| row | GetJobInstanceList per tick mean / min / max | most in any minute "
        "| latency ticks p50 / p99 / max | p99 scheduled | never announced | duplicated "
        "| ticks not ok | CPU s/tick p50 / max | wall s at vCPU p50 / max | RSS MiB "
        "| written KiB/tick mean / max | state KiB |",
        file=file,
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|", file=file)
    for o in outcomes:
        c = o.case
        extra = f"; worst {o.after_resume:g} ticks after the resume" if c.outage else ""
        print(
            f"| {c.name} ({c.jobs:,} jobs / {c.groups}, window {c.window}{extra}) "
            f"| {statistics.fmean(o.calls):.1f} / {min(o.calls)} / {max(o.calls)} "
            f"| {o.busiest_minute} "
            f"| {_pct(o.latencies, 0.5)} / {_pct(o.latencies, 0.99)} / {_pct(o.latencies, 1.0)} "
            f"| {_pct(o.scheduled, 0.99)} | {o.never} of {o.counted} | {o.duplicated} "
            f"| {o.ticks - o.statuses['ok']} "
            f"| {statistics.median(o.cpu):.2f} / {max(o.cpu):.2f} "
            f"| {statistics.median(o.walls):.1f} / {max(o.walls):.1f} | {o.rss_mib:.0f} "
            f"| {statistics.fmean(o.written) / 1024:.0f} / {max(o.written) / 1024:.0f} "
            f"| {o.state_bytes / 1024:.0f} |",
            file=file,
        )
    print(file=file)
    for o in outcomes:
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(o.statuses.items()))
        by_id = (
            f"; GetJobInstance per tick mean / max {statistics.fmean(o.by_id):.1f} / {max(o.by_id)}"
            if any(o.by_id)
            else ""
        )
        kinds = "".join(
            f"; {kind} p50 / p99 / max {_pct(values, 0.5)} / {_pct(values, 0.99)} / "
            f"{_pct(values, 1.0)} of {len(values)}"
            for kind, values in sorted(o.by_kind.items())
        )
        print(
            f"- {o.case.name}: {o.ticks} ticks ({statuses}){by_id}{kinds}; ran {o.seconds:.0f} s"
            + (f"; first problem: {o.problem[:200]}" if o.problem else ""),
            file=file,
        )


def main(argv: list[str] | None = None) -> list[Outcome]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--hours", type=float, default=0.5)
    parser.add_argument("--vcpu", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rows", default=",".join(CASES), help=f"of: {', '.join(CASES)}")
    parser.add_argument("--quick", action="store_true", help="a tiny estate, a few ticks")
    args = parser.parse_args(argv)
    if args.quick:
        cases, hours = [QUICK], 0.2
    else:
        cases, hours = [CASES[name] for name in args.rows.split(",")], args.hours
    outcomes = []
    for case in cases:
        outcomes.append(run(case, hours, args.vcpu, args.seed))
        # Each row as it is done: a long run interrupted keeps the rows it finished.
        print_table(outcomes[-1:], file=sys.stderr)
    load = os.getloadavg()[0]
    print(
        f"\nSimulated {hours:g} h per row, one tick a minute, each in a fresh process, "
        f"{args.vcpu:g} vCPU, quota 90/min unless named, seed {args.seed}; "
        f"load average {load:.1f} at the end (CPU seconds run high on a loaded machine)."
    )
    print_table(outcomes)
    return outcomes


if __name__ == "__main__":
    main()
