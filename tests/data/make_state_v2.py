"""Writes the version-2 state fixture: what a deployed version 2 left behind, a dead tick included.

Run it with version 2's code (main at e75b89e) on the path, from a checkout of it:

    PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=src:. python /path/to/make_state_v2.py OUT_DIR

Five ticks against the loopback fakes, SchedulerX and the config in Europe/Berlin (a
migration that assumed Asia/Shanghai would misplace every end time):

1. job 92583 fails ("disk full"); 92584 succeeds; 92585 failed long ago (history);
2. 92583 fails again; 92584 is rejected;
3. 92584 succeeds (version 2 announces no recovery);
4. nothing new;
5. 92585 fails, "ops" accepts the message, and the tick dies before its commit: its
   journal and its lease are left beside the state, as FC's kill leaves them.

Receiver "ops" hears each failure; "dba" refuses (unknown token), so its alerts stay
pending. OUT_DIR/state/ holds the state object and what the dead tick left, byte for
byte; OUT_DIR/world_v2.json what a test needs to replay the world: the clock, the
instances SchedulerX lists, the config's changes and the messages "ops" received.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.world import START, World

from schedulerx_alert.storage.session import StateSession

JOBS = (92583, 92584, 92585)
ZONE = "Europe/Berlin"
DBA_TOKEN = "dba-robot-access-token-0123456789"


class Killed(BaseException):
    """FC's kill, between DingTalk's answer and the state write."""


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp, World(Path(tmp), jobs=JOBS) as world:
        world.sx.tz = ZoneInfo(ZONE)
        raw: dict[str, Any] = world.raw
        raw["receivers"].append({"name": "dba", "webhook": world.dt.webhook(DBA_TOKEN)})
        raw["watch"][0]["receivers"] = ["ops", "dba"]
        raw["timezone"] = ZONE
        sx = world.sx
        sx.add_instance(92583, status=5, result="java.io.IOException: disk full")
        sx.add_instance(92584, status=4)
        sx.add_instance(92585, status=5, end_time=START - 3600, schedule_time=START - 3700)
        world.tick()
        world.advance(60)
        sx.add_instance(92583, status=5, result="java.io.IOException: disk full")
        sx.add_instance(92584, status=9, result="no worker available")
        world.tick()
        world.advance(60)
        sx.add_instance(92584, status=4)
        world.tick()
        world.advance(60)
        world.tick()
        world.advance(60)
        sx.add_instance(92585, status=5, result="exit code 137")

        def die(self: StateSession, *args: Any, **kwargs: Any) -> None:
            raise Killed

        commit, release = StateSession.commit, StateSession.release
        StateSession.commit = die  # type: ignore[method-assign]
        StateSession.release = lambda self: None  # type: ignore[method-assign]
        try:
            world.tick()
        except Killed:
            pass
        finally:
            StateSession.commit, StateSession.release = commit, release  # type: ignore[method-assign]
        out.mkdir(parents=True, exist_ok=True)
        shutil.copytree(world.state_path.parent, out / "state_v2")
        story = {
            "now": world.clock(),
            "zone": ZONE,
            "jobs": list(JOBS),
            "dba_token": DBA_TOKEN,
            "config": {k: raw[k] for k in ("timezone",)},
            "instances": [dataclasses.asdict(sx.instance(i)) for i in sorted(sx._instances)],
            "ops_texts": world.texts(),
        }
        (out / "world_v2.json").write_text(
            json.dumps(story, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
