"""Writes the version-6 state fixture: what a deployed version 6 left behind.

Run it with version 6's code (main at cb37716) on the path, from a checkout of it:

    PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=src:. python /path/to/make_state_v6.py OUT_DIR

Job 92583 (watched by id, Asia/Shanghai) succeeds every minute from 2026-11-25 10:00 to
10:44, a tick a minute: 45 records of successes, none of them announced, and the rules'
memory of version 6 (no `last_outcome_at`).

OUT_DIR/state_v6.json is the state object byte for byte.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.world import World


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp, World(Path(tmp), jobs=(92583,)) as world:
        for _ in range(45):
            now = world.clock()
            world.sx.add_instance(92583, status=4, schedule_time=now - 30, end_time=now - 5)
            assert world.tick().status == "ok"
            world.advance(60)
        assert world.texts() == []
        out.mkdir(parents=True, exist_ok=True)
        (out / "state_v6.json").write_bytes(world.state_path.read_bytes())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
