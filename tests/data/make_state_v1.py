"""Writes the version-1 state fixture: what a deployed version 1 left in its state.

Run it with version 1's code (main at 5aaeb54) on the path, from a checkout of it:

    PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=src:. python /path/to/make_state_v1.py OUT_DIR

It plays four ticks against the loopback fakes: an old failure (history), a run seen
running that fails, a rejection, a failure that is re-run and fails again, a success;
receiver "ops" hears each, receiver "dba" refuses (unknown token), so its alerts stay
pending. SchedulerX and the config use Europe/Berlin, not the default zone, so a
migration that assumed Asia/Shanghai would misplace every end time.

OUT_DIR/state_v1.json is the state object's bytes exactly as stored; OUT_DIR/world_v1.json
holds what a test needs to replay the world: the clock, the instances SchedulerX lists,
the config's changes and the messages "ops" received.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.world import START, World

JOBS = (92583, 92584, 92585)
ZONE = "Europe/Berlin"
DBA_TOKEN = "dba-robot-access-token-0123456789"


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp, World(Path(tmp), jobs=JOBS) as world:
        world.sx.tz = ZoneInfo(ZONE)
        raw: dict[str, Any] = world.raw
        raw["receivers"].append({"name": "dba", "webhook": world.dt.webhook(DBA_TOKEN)})
        raw["watch"][0]["receivers"] = ["ops", "dba"]
        raw["timezone"] = ZONE
        sx = world.sx
        sx.add_instance(92585, status=5, end_time=START - 3600, schedule_time=START - 3700)
        running = sx.add_instance(92583, status=3)
        sx.add_instance(92584, status=4)
        world.tick()
        world.advance(60)
        sx.set_status(running, 5, result="java.lang.IllegalStateException: disk full")
        sx.add_instance(92584, status=9, result="no worker available")
        rerun = sx.add_instance(92585, status=5, result="exit code 137\n" + "at x.y.Z\n" * 50)
        world.tick()
        world.advance(60)
        sx.set_status(rerun, 5, result="exit code 1")
        world.tick()
        world.advance(60)
        world.tick()
        world.advance(60)
        out.mkdir(parents=True, exist_ok=True)
        (out / "state_v1.json").write_bytes(world.state_path.read_bytes())
        story = {
            "now": world.clock(),
            "zone": ZONE,
            "jobs": list(JOBS),
            "dba_token": DBA_TOKEN,
            "config": {k: raw[k] for k in ("timezone",)},
            "instances": [dataclasses.asdict(sx.instance(i)) for i in sorted(sx._instances)],
            "ops_texts": world.texts(),
        }
        (out / "world_v1.json").write_text(
            json.dumps(story, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
