"""What one answer of 20,000 runs of a job costs: the state's size and the ticks' wall
time, three ticks a minute apart, against the loopback SchedulerX (the real tick, a file
state; the answer written by `rewrite_answers`: one failed run among 20,000 that ended
well, every entry a copy of the fake's own).

Each version runs in a process of its own; `--src DIR` runs another tree's `src` (say,
an export of the commit before the caps). Prints a table; asserts nothing.

    python -m bench.entry_caps [--src /tmp/base/src] [--runs 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
JOB = 92583
FIRST = 5_000_000


def child(runs: int) -> None:
    from tests.world import World

    written: list[str] = []

    def edit(body: dict[str, Any]) -> str:
        # Written once: the fake shares the tick's process, and its time is not the tick's.
        if not written:
            [template] = body["Data"]["JobInstanceDetails"]
            body["Data"]["JobInstanceDetails"] = [
                {**template, "InstanceId": FIRST + n, "Status": 5 if n == runs // 2 else 4}
                for n in range(runs)
            ]
            written.append(json.dumps(body))
        return written[0]

    rows = []
    with tempfile.TemporaryDirectory() as root, World(Path(root)) as world:
        world.sx.add_instance(JOB, status=4)
        world.sx.rewrite_answers(JOB, edit)
        for _ in range(3):
            started = time.perf_counter()
            summary = world.tick()
            took = time.perf_counter() - started
            size = world.state_path.stat().st_size
            rows.append({"seconds": took, "bytes": size, "status": summary.status})
            world.advance(60)
    print(json.dumps(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.runs)
        return
    env = {**os.environ, "PYTHONPATH": f"{args.src}{os.pathsep}{ROOT}"}
    command = [sys.executable, "-m", "bench.entry_caps", "--child", "--runs", str(args.runs)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"src: {args.src}; one answer of {args.runs} runs of job {JOB}")
    print(f"{'tick':>4} {'wall time':>10} {'state size':>11}  status")
    for number, row in enumerate(rows, 1):
        print(
            f"{number:>4} {row['seconds']:>8.2f} s {row['bytes'] / 1e6:>8.2f} MB  {row['status']}"
        )


if __name__ == "__main__":
    main()
