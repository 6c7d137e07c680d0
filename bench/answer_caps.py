"""What one large answer costs the function in memory: peak RSS of a process that makes
one call, against the loopback servers (each in this, another, process).

Scenarios: a 50 MB GetLog answer (50 lines of 1 MB), a GetJobInstanceList answer of 10
runs with 3 MB Results each, one of 2 runs with 3 MB each (under its cap), and a 50 MB
OSS object read as the state. The calling process starts, imports the client, records
its peak RSS so far, makes the call and records its peak RSS (VmHWM); the table shows both
and what the call came to.

`--src DIR` runs the calls with another tree's `src` (say, an export of the commit
before the caps) to compare. Prints a table; asserts nothing.

    python -m bench.answer_caps [--src /tmp/base/src]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AK, SK, STS = "LTAI5tBenchKeyId", "bench-secret-0123456789", "CAIS-bench-token"
NS, GROUP = "bench-namespace", "bench.group"
BUCKET = "bench-bucket"
MB = 1_000_000


def child(scenario: str, url: str, job_id: int, run: str) -> None:
    """One call, in a process of its own; prints its RSS before and at its peak."""
    from zoneinfo import ZoneInfo

    from schedulerx_alert.core.model import JobKey
    from schedulerx_alert.sources.schedulerx import SchedulerXClient, SchedulerXError
    from schedulerx_alert.storage.oss_client import OssBucket, OssError
    from schedulerx_alert.support.credentials import Credentials

    zone = ZoneInfo("Asia/Shanghai")
    client = SchedulerXClient(url, "cn-hangzhou", Credentials(AK, SK, STS), zone, 30)
    bucket = OssBucket(BUCKET, url, "cn-hangzhou", AK, SK, STS, timeout=30)
    before = _peak_rss()
    try:
        if scenario == "getlog":
            ask = {"JobInstanceId": run, "Line": "50", "Reverse": "true"}
            body = client.call(
                "GetLog", {"Namespace": NS, "GroupId": GROUP, "JobId": str(job_id), **ask}
            )
            outcome = f"read, {len(body['Data']['Logs'])} lines"
        elif scenario == "runs":
            listing = client.get_job_instance_list(JobKey(NS, GROUP, job_id))
            outcome = f"read, {len(listing.instances)} runs"
        else:
            got = bucket.get("state.json")
            assert got is not None
            outcome = f"read, {len(got.data) // MB} MB"
    except (SchedulerXError, OssError) as exc:
        outcome = "failed: " + str(exc)[:70]
    print(json.dumps({"before": before, "peak": _peak_rss(), "outcome": outcome}))


def _peak_rss() -> float:
    """VmHWM in MB; not ru_maxrss, which starts a child at its parent's peak."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def measure(src: Path, scenario: str, url: str, job_id: int, run: int) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{ROOT}"}
    args = [sys.executable, "-m", "bench.answer_caps", "--child", scenario, url]
    args += [str(job_id), str(run)]
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        scenario, url, job_id, run = args.child
        child(scenario, url, int(job_id), run)
        return
    from tests.fakes.oss import FakeOss
    from tests.fakes.schedulerx import FakeSchedulerX

    sx = FakeSchedulerX(access_key_id=AK, access_key_secret=SK, security_token=STS).start()
    oss = FakeOss(AK, SK, STS, buckets=(BUCKET,)).start()
    try:
        sx.add_job(NS, GROUP, 1, name="loud-log")
        sx.add_job(NS, GROUP, 2, name="ten-big-results")
        sx.add_job(NS, GROUP, 3, name="two-big-results")
        log_run = sx.add_instance(1, status=5, result="boom")
        sx.add_log(log_run, *[f"{n:04d} " + "z" * (MB - 5) for n in range(50)])
        for _ in range(10):
            sx.add_instance(2, status=5, result="r" * (3 * MB))
        for _ in range(2):
            sx.add_instance(3, status=5, result="r" * (3 * MB))
        oss.put_raw("state.json", json.dumps({"v": "s" * (50 * MB)}).encode(), bucket=BUCKET)
        rows = [
            ("GetLog, 50 lines of 1 MB", measure(args.src, "getlog", sx.url, 1, log_run)),
            ("GetJobInstanceList, 10 x 3 MB", measure(args.src, "runs", sx.url, 2, 0)),
            ("GetJobInstanceList, 2 x 3 MB", measure(args.src, "runs", sx.url, 3, 0)),
            ("OSS object, 50 MB", measure(args.src, "oss", oss.url, 0, 0)),
        ]
    finally:
        sx.stop()
        oss.stop()
    print(f"src: {args.src}")
    print(f"{'answer':32} {'RSS before':>11} {'peak RSS':>9}  outcome")
    for name, row in rows:
        before, peak = row["before"], row["peak"]
        assert isinstance(before, float) and isinstance(peak, float)
        print(f"{name:32} {before:8.0f} MB {peak:6.0f} MB  {row['outcome']}")


if __name__ == "__main__":
    main()
