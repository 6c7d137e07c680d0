"""One tick of `bench.moving`, in a fresh process, on a clock that moves as FC's would.

``python -m bench.moving_child SETUP NOW``: runs one tick of the real product starting at
``NOW`` and prints one JSON line (the summary, CPU and wall, bytes written, peak RSS).

The clock starts at ``NOW`` and moves with the tick: ``NOW + waits + cpu / vcpu``, where
``cpu`` is this process's CPU time (user + sys) since the tick began and ``waits`` the rest
of the real time that passed (the server's latency, which it sleeps, and sleeps of the
function's own). So a tick that costs 1 s of CPU at 0.1 vCPU ends 10 s after it began, as on
FC. Each reading is written to a shared file the loopback servers read their clock from,
so the quota's sliding minute and the runs' times agree with the function's.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import sys
import threading
import time
from pathlib import Path

from schedulerx_alert.config import parse_config
from schedulerx_alert.handler import build_edges
from schedulerx_alert.support.credentials import Credentials
from schedulerx_alert.tick import run_tick

CLOCK = struct.Struct("<d")


class SharedClock:
    """A clock held in an 8-byte file: the bench writes it between ticks, the tick's process
    moves it while it runs, the loopback servers (another process) only read it."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("r+b")
        self._map = mmap.mmap(self._file.fileno(), CLOCK.size)

    @staticmethod
    def create(path: Path, now: float) -> SharedClock:
        path.write_bytes(CLOCK.pack(now))
        return SharedClock(path)

    def __call__(self) -> float:
        return float(CLOCK.unpack_from(self._map, 0)[0])

    def set(self, now: float) -> None:
        CLOCK.pack_into(self._map, 0, now)


class MovingClock:
    """``start + waits + cpu / vcpu`` (see the module's docstring), published on each read."""

    def __init__(self, shared: SharedClock, start: float, vcpu: float) -> None:
        self.shared = shared
        self.start = start
        self.vcpu = vcpu
        self._lock = threading.Lock()
        self._wall0 = time.perf_counter()
        self._cpu0 = time.process_time()
        self._queued0 = _queued()
        self._queued = self._queued_at = 0.0
        self._last = start

    def elapsed(self) -> tuple[float, float]:
        """(CPU seconds, seconds on the clock) since the tick began.

        The waits are the real time that was neither this process's CPU nor its main
        thread's wait for a core (a shared machine's load is not the function's)."""
        wall = time.perf_counter() - self._wall0
        cpu = time.process_time() - self._cpu0
        if wall - self._queued_at >= 0.005:  # a /proc read costs CPU: at most every 5 ms
            self._queued, self._queued_at = _queued() - self._queued0, wall
        queued = self._queued
        return cpu, max(0.0, wall - cpu - queued) + cpu / self.vcpu

    def __call__(self) -> float:
        with self._lock:
            # Never backwards: thread CPU is sampled coarsely.
            self._last = max(self._last, self.start + self.elapsed()[1])
            self.shared.set(self._last)
            return self._last


def _queued() -> float:
    """Seconds the main thread has waited on a run queue (Linux schedstat)."""
    try:
        return int(Path("/proc/self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _peak_rss_kib() -> float:
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1])
    return 0.0


def _files(root: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            stat = (Path(folder) / name).stat()
            found[str(Path(folder) / name)] = (stat.st_mtime_ns, stat.st_size)
    return found


def main() -> None:
    setup = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    now = float(sys.argv[2])
    root = Path(setup["root"])
    state_dir = Path(setup["state_dir"])
    config = parse_config(setup["config"], {}, "bench", root)
    credentials = Credentials(*setup["credentials"])
    shared = SharedClock(Path(setup["clock"]))
    before = _files(state_dir)
    clock = MovingClock(shared, now, float(setup["vcpu"]))
    slept = [0.0]

    def sleep(seconds: float) -> None:
        slept[0] += seconds
        time.sleep(seconds)

    edges = build_edges(config, credentials, 60.0, "bench", clock, sleep, root / "local")
    profile_to = os.environ.get("BENCH_PROFILE")  # a file to write the tick's cProfile to
    if profile_to:
        import cProfile

        with cProfile.Profile() as profile:
            summary = run_tick(config, edges)
        profile.dump_stats(profile_to)
    else:
        summary = run_tick(config, edges)
    cpu, wall = clock.elapsed()
    after = _files(state_dir)
    written = sum(
        size for path, (mtime, size) in after.items() if before.get(path) != (mtime, size)
    )
    answer = {
        "status": summary.status,
        "calls": summary.calls,
        "problems": summary.problems[:3],
        "cpu": cpu,
        "wall": wall,
        "slept": slept[0],
        "written": written,
        "state_bytes": sum(size for _, size in after.values()),
        "rss_mib": _peak_rss_kib() / 1024,
    }
    print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
