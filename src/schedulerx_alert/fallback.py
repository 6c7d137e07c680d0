"""A per-instance health record for ticks that cannot read the state.

Broken ticks are counted in the state. When the state itself cannot be read
(OSS down or refusing, no credentials for it, a newer schema) there is nowhere
to count them, and a monitor that cannot read its state would never say so.
FC keeps an instance's /tmp across warm invocations, so a small file there
counts them for as long as the instance lives; the first tick that reads the
state again folds it in (and so announces the recovery) and removes it.

It is a best effort, and only that: another instance, or this one after FC
recycled it, starts counting from zero.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .state import HealthRecord, RobotRecord, State

log = logging.getLogger("schedulerx_alert")


@dataclass(frozen=True)
class LocalHealth:
    health: HealthRecord
    # The first and the latest broken tick of this spell on this instance.
    since: float
    last: float
    # Sends made while the state was unreadable (the health notice), by robot.
    robots: dict[str, RobotRecord] = field(default_factory=dict)


class LocalHealthFile:
    """One small JSON file per state object, under a local directory."""

    def __init__(self, directory: Path, state_identity: str) -> None:
        digest = hashlib.sha256(state_identity.encode("utf-8")).hexdigest()[:16]
        self.path = directory / f"schedulerx-alert-health-{digest}.json"

    def load(self) -> LocalHealth | None:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            health = raw["health"]
            return LocalHealth(
                HealthRecord(
                    int(health["broken_ticks"]),
                    bool(health["impaired_announced"]),
                    health.get("reason"),
                ),
                float(raw["since"]),
                float(raw["last"]),
                {
                    str(key): RobotRecord(
                        tuple(float(t) for t in robot.get("sent", ())), robot.get("blocked_until")
                    )
                    for key, robot in raw.get("robots", {}).items()
                },
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # A record we cannot read counts nothing; it is rewritten or removed.
            log.warning("ignoring unreadable local health record %s: %s", self.path, exc)
            return None

    def save(self, record: LocalHealth) -> None:
        doc = {
            "health": {
                "broken_ticks": record.health.broken_ticks,
                "impaired_announced": record.health.impaired_announced,
                "reason": record.health.reason,
            },
            "since": record.since,
            "last": record.last,
            "robots": {
                key: {"sent": list(r.sent), "blocked_until": r.blocked_until}
                for key, r in record.robots.items()
            },
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".schedulerx-alert-")
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(doc, file, ensure_ascii=False)
            os.replace(temp, self.path)
        except OSError as exc:
            log.warning("could not keep the local health record %s: %s", self.path, exc)

    def clear(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not remove the local health record %s: %s", self.path, exc)


def fold(state: State, local: LocalHealth) -> State:
    """The state with what this instance saw while it could not read it."""
    health = state.health
    # Broken ticks counted here after the state was last written add to its count;
    # older ones were followed by ticks elsewhere that read the state.
    later = local.last > (state.updated_at or 0.0)
    folded = HealthRecord(
        broken_ticks=health.broken_ticks + (local.health.broken_ticks if later else 0),
        # The group was told it is impaired: it must hear of the recovery.
        impaired_announced=health.impaired_announced or local.health.impaired_announced,
        reason=health.reason or local.health.reason,
    )
    return state.with_updates(health=folded, robots=merge_robots(state.robots, local.robots))


def merge_robots(
    a: Mapping[str, RobotRecord], b: Mapping[str, RobotRecord]
) -> dict[str, RobotRecord]:
    merged = dict(a)
    for key, record in b.items():
        mine = merged.get(key)
        if mine is None:
            merged[key] = record
            continue
        blocked = [t for t in (mine.blocked_until, record.blocked_until) if t is not None]
        merged[key] = RobotRecord(
            tuple(sorted({*mine.sent, *record.sent})), max(blocked) if blocked else None
        )
    return merged
