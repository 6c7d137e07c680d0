"""The function's side of `bench.scale`: ticks on demand, in a process of its own.

Reads one JSON line per tick from stdin (`{"now": epoch seconds}`), runs one tick of the real
product with the clock set there, and answers one JSON line: the tick's summary, its wall and
CPU time, the state's size and this process's peak RSS. Being its own process, its RSS is the
function's, not the loopback servers'.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from tests.fakes.base import ManualClock

from schedulerx_alert.config import parse_config
from schedulerx_alert.handler import build_edges
from schedulerx_alert.support.credentials import Credentials
from schedulerx_alert.tick import run_tick


def _peak_rss_kib() -> float:
    """This process's peak resident set (VmHWM). Not getrusage's ru_maxrss: Linux carries
    that across fork and exec, so a child of a large parent would report the parent's."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def main() -> None:
    setup = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    root = Path(setup["root"])
    config = parse_config(setup["config"], {}, "bench", root)
    credentials = Credentials(*setup["credentials"])
    state = Path(setup["state"])
    clock = ManualClock(setup["start"])
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        clock.set(json.loads(line)["now"])
        edges = build_edges(
            config, credentials, 60.0, "bench", clock, clock.advance, root / "local"
        )
        wall, cpu = time.perf_counter(), time.process_time()
        summary = run_tick(config, edges)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        peak_kib = _peak_rss_kib()
        answer = {
            "status": summary.status,
            "calls": summary.calls,
            "alerts_new": summary.alerts_new,
            "jobs": summary.jobs,
            "polled": summary.polled,
            "problems": summary.problems[:2],
            "wall": wall,
            "cpu": cpu,
            "state_bytes": state.stat().st_size if state.exists() else 0,
            "rss_mib": peak_kib / 1024,
        }
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
