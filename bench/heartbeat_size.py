"""What the heartbeat adds to the state: its record at its largest (25 hours in which all
of 5,000 jobs failed, every API counted, a long problem line), beside a state of 5,000 jobs
with ten run records each. Prints the sizes; asserts nothing.

    python -m bench.heartbeat_size [JOBS]
"""

from __future__ import annotations

import sys
from datetime import datetime
from zoneinfo import ZoneInfo

from schedulerx_alert.core.heartbeat import HeartbeatRecord, TickCounts, observe, record_tick
from schedulerx_alert.core.model import JobKey
from schedulerx_alert.core.state import InstanceRecord, JobRecord, State, dump_state

NAMESPACE = "adcfc35d-e2fe-4fe9-bbaa-20e90ffc1234"
START = datetime(2026, 11, 25, 0, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()


def worst_record(jobs: list[JobKey]) -> HeartbeatRecord:
    record = HeartbeatRecord()
    every = dict.fromkeys(jobs, 1)
    calls = {"GetJobInstanceList": 45, "ListJobs": 2, "GetJobInfo": 1}
    for minute in range(26 * 60):
        now = START + minute * 60
        failures = every if minute % 60 == 0 else {}
        record = observe(record, TickCounts(90, failures, 1, calls), now)
        record = record_tick(record, "degraded", "x" * 1000, now)
    return record


def main(count: int) -> None:
    jobs = [JobKey(NAMESPACE, f"etl.prod-{n % 20:02d}", 100000 + n) for n in range(count)]
    records = {
        job: JobRecord(
            {
                1700000000000 + n: InstanceRecord(4, START, (), "2026-11-25 09:59:00")
                for n in range(10)
            },
            polled_at=START,
        )
        for job in jobs
    }
    without = State(jobs=records)
    record = worst_record(jobs)
    with_heartbeat = State(jobs=records, heartbeat=record)
    base, full = len(dump_state(without)), len(dump_state(with_heartbeat))
    print(f"jobs: {count}")
    print(f"state without heartbeat: {base} bytes")
    print(f"state with the largest heartbeat record: {full} bytes (+{full - base} bytes)")
    print(f"hours kept: {len(record.hours)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
