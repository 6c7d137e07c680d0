"""Cold start: what a fresh FC instance pays before and during its first tick.

    python -m bench.coldstart [--runs 15] [--src DIR]
    python -m bench.coldstart --package dist/code [--python python3.10]

Copies DIR (default: src/) to a temporary directory and compiles its bytecode as
`make package` does (FC's /code is read-only, so the package ships .pyc files); or,
with --package, runs a built package as FC does (`python -I -S`, nothing on sys.path
but the package and the standard library) with the runtime's Python. Then it:

* alternates fresh processes that `import index` and that `import requests` (the HTTP
  stack every tick needs: the yardstick), each timed inside the child with
  perf_counter, and prints the medians and their ratio; and, since index.py pauses the
  cyclic collector while it imports, `import requests` with the collector paused too,
  for the ratio like for like;
* runs cold ticks: a fresh process imports index and calls the handler once against
  the loopback fakes (SchedulerX, DingTalk, OSS), with the config as `make package`
  ships it (config.json), for a tick with nothing to send (most ticks), one that sends
  an alert (Jinja2 loads), and one with nothing to send and the state in OSS (our
  OSS client loads; oss2 never does).

An older tree given as --src is measured the same way (it reads the JSON config as
YAML, which JSON is). Prints tables; asserts nothing. `make bench` runs it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.world import AK, SK, STS, World

ROOT = Path(__file__).resolve().parent.parent
WATCHED = ("jinja2", "yaml", "oss2", "croniter")
# requests and what it imports, copied beside a source tree as the package ships them.
HTTP_STACK = ("requests", "urllib3", "idna", "charset_normalizer", "certifi")
IMPORT = """
import json, sys, time
{prelude}
start, cpu = time.perf_counter(), time.process_time()
import {module}
took, cpu = time.perf_counter() - start, time.process_time() - cpu
assert {module}.__file__.startswith({where!r}), {module}.__file__
print(json.dumps({{"ms": took * 1000, "cpu_ms": cpu * 1000,
                  "loaded": [m for m in {watched!r} if m in sys.modules]}}))
"""
TICK = """
import json, sys, time
{prelude}
start = time.perf_counter()
import index
imported = time.perf_counter()
from types import SimpleNamespace as NS
context = NS(
    request_id="bench",
    function=NS(name="schedulerx-alert", timeout=60, memory=128),
    credentials=NS(access_key_id={ak!r}, access_key_secret={sk!r}, security_token={sts!r}),
)
summary = json.loads(index.handler(b"{{}}", context))
done = time.perf_counter()
print(json.dumps({{
    "import_ms": (imported - start) * 1000,
    "tick_ms": (done - imported) * 1000,
    "status": summary["status"],
    "sent": summary["alerts_sent"],
    "loaded": [m for m in {watched!r} if m in sys.modules],
}}))
"""


@dataclass(frozen=True)
class Runtime:
    """How the children run: which Python, with which flags, the code where."""

    python: str
    code: Path
    flags: tuple[str, ...] = ()
    prelude: str = ""

    def run(self, script: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        result = subprocess.run(
            [self.python, *self.flags, "-c", script],
            cwd=self.code,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SystemExit(f"child failed:\n{result.stderr[-2000:]}")
        found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        return found


def from_source(src: Path, into: Path) -> Runtime:
    """The handler and its package as `make package` lays them out, with bytecode.

    The HTTP stack goes beside it, as in the package: both imports then read the same
    kind of bytecode (checked-hash, which reads and hashes each source) from the same
    directory, where the venv's own copy has timestamp bytecode, cheaper to validate."""
    code = into / "code"
    code.mkdir()
    shutil.copy2(src / "index.py", code / "index.py")
    shutil.copytree(
        src / "schedulerx_alert",
        code / "schedulerx_alert",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    for name in HTTP_STACK:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.submodule_search_locations, name
        where = Path(next(iter(spec.submodule_search_locations)))
        shutil.copytree(where, code / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "--invalidation-mode", "checked-hash", code],
        check=True,
    )
    # The working directory comes first on sys.path, before this venv's site-packages.
    return Runtime(sys.executable, code)


def from_package(package: Path, python: str) -> Runtime:
    """A built package, run as FC runs it: its directory and the standard library only."""
    prelude = f"sys.path.insert(0, {str(package.resolve())!r})"
    return Runtime(python, package.resolve(), ("-I", "-S"), prelude)


# index.py pauses the cyclic collector while it imports; the yardstick measured the same
# way shows how much of the difference is that pause rather than less to load.
PAUSED = "requests, collector paused"
PAUSE = "import gc; gc.disable()"
# What each sample imports, after what.
IMPORTS = {"index": ("index", ""), "requests": ("requests", ""), PAUSED: ("requests", PAUSE)}


def imports(runtime: Runtime, runs: int) -> dict[str, list[dict[str, Any]]]:
    samples: dict[str, list[dict[str, Any]]] = {key: [] for key in IMPORTS}
    scripts = {
        key: IMPORT.format(
            module=module,
            where=str(runtime.code),
            watched=WATCHED,
            prelude=f"{runtime.prelude}\n{before}",
        )
        for key, (module, before) in IMPORTS.items()
    }
    for script in scripts.values():
        runtime.run(script)  # untimed: both then read from a warm file cache
    for _ in range(runs):
        # Alternating spreads the machine's noise over both alike.
        for module, script in scripts.items():
            samples[module].append(runtime.run(script))
    return samples


def cold_ticks(
    runtime: Runtime,
    tmp: Path,
    runs: int,
    state: str,
    before: Callable[[World], None] | None = None,
) -> list[dict[str, Any]]:
    out = []
    with World(tmp / f"world-{state}-{before is not None}", state=state, real_time=True) as world:
        world.sx.rate_limit = 10_000  # measure our side, not the quota
        config = world.root / "config.json"
        world.root.mkdir(parents=True, exist_ok=True)
        config.write_text(json.dumps(world.raw), encoding="utf-8")
        local = world.root / "tmp"
        local.mkdir(exist_ok=True)
        env = {
            **os.environ,
            "SCHEDULERX_ALERT_CONFIG": str(config),
            # The instance's /tmp (health file): this world's, not the machine's.
            "TMPDIR": str(local),
        }
        script = TICK.format(ak=AK, sk=SK, sts=STS, watched=WATCHED, prelude=runtime.prelude)
        runtime.run(script, env)  # the first tick records the jobs' history
        for _ in range(runs):
            if before is not None:
                before(world)
            out.append(runtime.run(script, env))
    return out


def a_failure(world: World) -> None:
    world.sx.add_instance(92583, status=5, result="java.lang.NullPointerException")


def instructions(runtime: Runtime, statement: str) -> int | None:
    """CPU instructions of one fresh process running `statement` (valgrind's cachegrind),
    or None without valgrind. Unlike a time, the count hardly moves with the machine."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    script = f"import sys\n{runtime.prelude}\n{statement}"
    result = subprocess.run(
        [
            valgrind,
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            runtime.python,
            *runtime.flags,
            "-c",
            script,
        ],
        cwd=runtime.code,
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", result.stderr)
    if result.returncode != 0 or found is None:
        raise SystemExit(f"valgrind failed:\n{result.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def median(samples: list[dict[str, Any]], key: str) -> float:
    return statistics.median(s[key] for s in samples)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    parser.add_argument("--package", type=Path, help="a built package (make package)")
    parser.add_argument("--python", default="python3.10", help="with --package: its Python")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.package:
            runtime = from_package(args.package, args.python)
            what = args.package
        else:
            runtime = from_source(args.src, tmp)
            what = args.src
        py = runtime.run(
            "import json, platform; print(json.dumps({'v': platform.python_version()}))"
        )["v"]
        samples = imports(runtime, args.runs)
        index_ms = median(samples["index"], "ms")
        requests_ms = median(samples["requests"], "ms")
        loaded = ", ".join(samples["index"][0]["loaded"]) or "none"
        print(f"\n{what}, python {py}, median of {args.runs} fresh processes each")
        print("\n| cold import | median ms | min ms | also loads |")
        print("|---|---|---|---|")
        print(
            f"| `import index` | {index_ms:.0f} | "
            f"{min(s['ms'] for s in samples['index']):.0f} | {loaded} |"
        )
        print(
            f"| `import requests` | {requests_ms:.0f} | "
            f"{min(s['ms'] for s in samples['requests']):.0f} | |"
        )
        print(
            f"| `import requests`, collector paused as index.py pauses it | "
            f"{median(samples[PAUSED], 'ms'):.0f} | "
            f"{min(s['ms'] for s in samples[PAUSED]):.0f} | |"
        )
        # Each index run is paired with the requests run right after it: the median of
        # those ratios cancels most of what a busy machine does to both.
        paired = statistics.median(
            i["ms"] / r["ms"] for i, r in zip(samples["index"], samples["requests"], strict=True)
        )
        low = min(s["ms"] for s in samples["index"]) / min(s["ms"] for s in samples["requests"])
        print(f"| ratio | {index_ms / requests_ms:.2f}× (paired: {paired:.2f}×) | {low:.2f}× | |")
        # CPU time leaves out the waits a loaded machine adds to wall time (FC bills wall).
        cpu = statistics.median(
            i["cpu_ms"] / r["cpu_ms"]
            for i, r in zip(samples["index"], samples["requests"], strict=True)
        )
        print(f"| ratio of CPU time, paired | {cpu:.2f}× | | |")
        alike = statistics.median(
            i["cpu_ms"] / r["cpu_ms"]
            for i, r in zip(samples["index"], samples[PAUSED], strict=True)
        )
        print(f"| ratio of CPU time, paired, to requests paused | {alike:.2f}× | | |")
        # The same imports counted in instructions, the interpreter's own start taken off
        # both: what the machine's noise cannot blur.
        empty = instructions(runtime, "pass")
        if empty is not None:
            counted = {
                key: instructions(runtime, f"{before}\nimport {module}")
                for key, (module, before) in IMPORTS.items()
            }
            for yardstick, label in (("requests", ""), (PAUSED, ", to requests paused")):
                ours = (counted["index"] or 0) - empty
                theirs = (counted[yardstick] or 0) - empty
                print(
                    f"| ratio of instructions (valgrind){label} | {ours / theirs:.2f}× "
                    f"({ours / 1e6:,.0f} M ÷ {theirs / 1e6:,.0f} M) | | |"
                )

        # DingTalk's budget is 20 messages a minute per robot: keep the alert story under it.
        stories = [
            ("nothing to send, state in a file", "file", None, args.runs),
            ("one alert sent, state in a file", "file", a_failure, min(args.runs, 15)),
            ("nothing to send, state in OSS", "oss", None, args.runs),
        ]
        print("\n| cold tick | import ms | tick ms | total ms | status | loads |")
        print("|---|---|---|---|---|---|")
        for name, state, before, runs in stories:
            ticks = cold_ticks(runtime, tmp, runs, state, before)
            imp, tick = median(ticks, "import_ms"), median(ticks, "tick_ms")
            total = statistics.median(t["import_ms"] + t["tick_ms"] for t in ticks)
            statuses = sorted({f"{t['status']}/{t['sent']} sent" for t in ticks})
            loads = ", ".join(sorted({m for t in ticks for m in t["loaded"]})) or "none"
            print(
                f"| {name} | {imp:.0f} | {tick:.0f} | {total:.0f} | {', '.join(statuses)} "
                f"| {loads} |"
            )


if __name__ == "__main__":
    main()
