"""Writes the version-3 state fixture: what a deployed version 3 left behind.

Run it with version 3's code (main at 0d72d9c) on the path, from a checkout of it:

    PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=src:. python /path/to/make_state_v3.py OUT_DIR

Three ticks against the loopback fakes (Asia/Shanghai, from 2026-11-25 10:00):

1. job 92583 fails ("disk full"); 92584 succeeds;
2. 92583 fails again; "ops" hears both failures;
3. 92583 succeeds: "ops" hears the recovery.

OUT_DIR/state_v3.json is the state object byte for byte.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.world import World


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp, World(Path(tmp)) as world:
        sx = world.sx
        sx.add_instance(92583, status=5, result="java.io.IOException: disk full")
        sx.add_instance(92584, status=4)
        world.tick()
        world.advance(60)
        sx.add_instance(92583, status=5, result="java.io.IOException: disk full")
        world.tick()
        world.advance(60)
        sx.add_instance(92583, status=4)
        world.tick()
        assert len(world.texts()) == 3, world.texts()
        out.mkdir(parents=True, exist_ok=True)
        (out / "state_v3.json").write_bytes(world.state_path.read_bytes())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
