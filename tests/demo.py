"""`make demo`: a SchedulerX story played offline, and what the DingTalk group sees.

A SchedulerX simulator and a DingTalk-compatible robot run on loopback; the
real function polls, diffs, renders and posts to them, with its state in a
local file. Nothing leaves this machine.
"""

from __future__ import annotations

import sys
import tempfile
import textwrap
import time
from pathlib import Path

from schedulerx_alert.tick import TickSummary
from tests.world import ROBOT, World

JOBS = {92583: "nightly-etl", 92584: "report-export", 92585: "hourly-sync"}
TRACE = """java.lang.IllegalStateException: upstream table ods.orders not ready
\tat com.example.etl.NightlyJob.process(NightlyJob.java:88)
\tat com.alibaba.schedulerx.worker.processor.JavaProcessor.process(JavaProcessor.java:41)"""


def show_message(text: str, group: str = "DingTalk group") -> None:
    """One message as the group sees it, boxed; also how `make sandbox` prints them."""
    head = f"┌─ {group} receives "
    print("\n    " + head + "─" * max(3, 56 - len(head)))
    for line in text.splitlines():
        print("    │ " + line)
    print("    └" + "─" * 56)


def show_tick(number: int, story: str, summary: TickSummary, seen: int, world: World) -> int:
    print(f"\n=== tick {number}: {story}")
    print(
        f"    polled {summary.polled}/{summary.jobs} jobs, {summary.api_calls} API calls, "
        f"{summary.instances} runs seen, {summary.alerts_new} new alert(s), "
        f"{summary.alerts_sent} delivered, {summary.alerts_pending} pending"
    )
    texts = world.texts(ROBOT)
    for text in texts[seen:]:
        show_message(text)
    if len(texts) == seen:
        print("    (the group receives nothing)")
    return len(texts)


def main() -> int:
    with (
        tempfile.TemporaryDirectory(prefix="schedulerx-alert-demo-") as tmp,
        World(Path(tmp), jobs=tuple(JOBS), real_time=True) as world,
    ):
        world.raw["watch"][0]["jobs"] = [{"id": i, "name": n} for i, n in JOBS.items()]
        print(
            textwrap.dedent(
                f"""\
                schedulerx-alert demo: SchedulerX simulator at {world.sx.url},
                DingTalk robot at {world.dt.url} (signed, 20 messages/minute),
                state in {world.state_path}. Watching {", ".join(JOBS.values())}."""
            )
        )
        seen = 0
        now = time.time()
        etl = world.sx.add_instance(92583, status=3, schedule_time=now - 95, start_time=now - 94)
        world.sx.add_instance(92585, status=4, schedule_time=now - 40, start_time=now - 39)
        summary = world.tick()
        seen = show_tick(1, "nightly-etl is running, hourly-sync succeeded", summary, seen, world)

        world.sx.set_status(etl, 5, result=TRACE)
        world.sx.add_instance(
            92584, status=9, result="no available worker in group", schedule_time=now - 2
        )
        summary = world.tick()
        seen = show_tick(2, "nightly-etl fails, report-export is rejected", summary, seen, world)

        summary = world.tick()
        seen = show_tick(3, "nothing new: nothing is announced twice", summary, seen, world)

        world.dt.set_down(True)
        world.sx.add_instance(
            92585,
            status=5,
            result="HTTP 502 from payments API",
            schedule_time=now - 12,
            start_time=now - 11,
        )
        summary = world.tick()
        seen = show_tick(4, "hourly-sync fails while DingTalk is down", summary, seen, world)
        world.dt.set_down(False)
        summary = world.tick()
        seen = show_tick(5, "DingTalk is back: the pending alert goes out", summary, seen, world)
    print("\nDone. Run `make test` for the full suite.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
