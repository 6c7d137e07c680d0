"""`make demo`: a SchedulerX story played offline, and what the DingTalk group sees.

A SchedulerX simulator and a DingTalk-compatible robot run on loopback; the
real function polls, diffs, renders and posts to them, with its state in a
local file. Nothing leaves this machine.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import yaml

from schedulerx_alert.config.actions import DEFAULT_KEY_ENV
from schedulerx_alert.tick import TickSummary
from tests.world import GROUP, NS, ROBOT, World

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


def press(world: World, directory: Path, url: str) -> None:
    """The on-call opens a button's link and confirms the page, each request handed to the
    function's link handler as FC's HTTP trigger would."""
    from schedulerx_alert.links.serve import serve
    from tests.test_actions import context, fc_http_event, form_of

    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(world.raw), encoding="utf-8")
    env = {"SCHEDULERX_ALERT_CONFIG": str(path), **world.env}

    def title(raw: str) -> str:
        found = re.search(r"<h1>(.*?)</h1>", json.loads(raw)["body"])
        return found.group(1) if found else "?"

    opened = serve(fc_http_event(url), context(), directory, time.time, env)
    print(f"    page opened: {title(opened)} (nothing changes yet)")
    fields = form_of(json.loads(opened)["body"]).fields
    posted = serve(fc_http_event(url, "POST", fields), context(), directory, time.time, env)
    print(f"    confirmed: {title(posted)}; SchedulerX took {world.sx.operations[-1][0]}")


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

        # Act from the chat (actions.operations): the alert's buttons retry the run.
        world.env[DEFAULT_KEY_ENV] = "demo-signing-key-" + "k" * 32
        world.raw["actions"] = {
            "enabled": True,
            "base_url": "http://127.0.0.1:9/act",
            "durations": ["1h"],
            "operations": ["retry", "mark_success"],
        }
        again = world.sx.add_instance(92583, status=5, result=TRACE, schedule_time=now - 5)
        summary = world.tick()
        seen = show_tick(6, "nightly-etl fails again; its alert has buttons", summary, seen, world)
        buttons = {
            b["title"]: b["actionURL"] for b in world.dt.messages(ROBOT)[-1]["actionCard"]["btns"]
        }
        print(f"    buttons: {', '.join(buttons)}")
        retry = list(buttons)[1]  # after the silence's one
        print(f"\n=== the on-call presses {retry} (Retry this run)")
        press(world, Path(tmp), buttons[retry])
        for text in world.texts(ROBOT)[seen:]:
            show_message(text)
        seen = len(world.texts(ROBOT))
        world.sx.set_status(again, 4)
        summary = world.tick()
        seen = show_tick(7, "the retried run succeeds: a recovery", summary, seen, world)

        # A workflow of the same jobs: nightly-etl feeds report-export and hourly-sync.
        world.raw["workflows"] = [
            {"namespace": NS, "group": GROUP, "workflows": "all", "receivers": ["ops"]}
        ]
        for job_id, name in JOBS.items():
            world.sx.add_job(NS, GROUP, job_id, name=name)  # as SchedulerX names the nodes
        flows = world.sx.workflows
        flows.add(NS, GROUP, 401, "orders-daily", tuple(JOBS), ((92583, 92584), (92583, 92585)))
        flows.run(401, status=5, nodes={92583: (5, TRACE)})
        summary = world.tick()
        seen = show_tick(
            8, "workflow orders-daily fails at nightly-etl: one message", summary, seen, world
        )
    print("\nDone. Run `make test` for the full suite.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
