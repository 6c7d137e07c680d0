"""What the state costs: its size, and the bytes one tick writes to its store, with many
alerts pending and with one huge error text. Prints a table; asserts nothing.

    python -m bench.state_size [PENDING]

Runs against whatever `schedulerx_alert` is importable, so the same script
measures an older version with PYTHONPATH pointing at its src/.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.builders import alert
from tests.world import World

from schedulerx_alert.core.state import STATE_VERSION, State, dump_state
from schedulerx_alert.handler import build_edges
from schedulerx_alert.storage.store import StateStore
from schedulerx_alert.tick import run_tick


class CountingStore(StateStore):
    """The tick's own store, with every write it makes recorded."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner
        self.writes: list[tuple[str, int]] = []

    def describe(self, key: str) -> str:
        return self.inner.describe(key)

    def read(self, key: str) -> bytes | None:
        return self.inner.read(key)

    def write(self, key: str, data: bytes) -> None:
        self.writes.append((key, len(data)))
        self.inner.write(key, data)

    def create(self, key: str, data: bytes) -> bool:
        return self.inner.create(key, data)

    def delete(self, key: str) -> None:
        self.inner.delete(key)


def pending_tick(pending: int) -> dict[str, float]:
    """A robot comes back with `pending` alerts owed: what one tick writes."""
    with tempfile.TemporaryDirectory() as tmp, World(Path(tmp)) as world:
        owed = tuple(alert(1_800_000_000_000 + i, result="exit code 137") for i in range(pending))
        stored = dump_state(State(outbox=owed))
        world.state_path.parent.mkdir(parents=True)
        world.state_path.write_bytes(stored)
        config = world.config()
        edges = build_edges(config, world.credentials, 60.0, "bench", world.clock, world.advance)
        assert edges.store is not None, edges.store_problem
        store = CountingStore(edges.store)
        edges.store = store
        summary = run_tick(config, edges)
        *checkpoints, (_, commit) = store.writes
        sizes = [size for _, size in checkpoints]
        return {
            "state before": len(stored),
            "messages": summary.messages,
            "alerts sent": summary.alerts_sent,
            "checkpoint writes": len(sizes),
            "largest checkpoint": max(sizes, default=0),
            "checkpoint bytes": sum(sizes),
            "commit bytes": commit,
            "bytes written": sum(sizes) + commit,
        }


def huge_result(size: int) -> int:
    """The state's size after a failure with a `size`-character error text stays pending."""
    with tempfile.TemporaryDirectory() as tmp, World(Path(tmp)) as world:
        world.dt.set_down(True)
        world.sx.add_instance(92583, status=5, result="OutOfMemoryError\n" + "x" * size)
        world.tick()
        return world.state_path.stat().st_size


def main() -> None:
    pending = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    print(f"state schema version {STATE_VERSION}")
    print(f"\n| {pending} alerts pending, robot back | bytes / count |\n|---|---|")
    for name, value in pending_tick(pending).items():
        print(f"| {name} | {value:,.0f} |")
    print("\n| one pending alert whose error text is 10 MB | bytes |\n|---|---|")
    print(f"| state object | {huge_result(10_000_000):,} |")


if __name__ == "__main__":
    main()
