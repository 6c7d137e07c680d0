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
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from schedulerx_alert.core.state import HealthRecord, RobotRecord, State

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
            return _decode(raw)
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


# More sends than one robot's minute allows are never recorded; bounds a tampered file.
_MAX_SENT = 64


def _decode(raw: object) -> LocalHealth:
    """The record, strictly: a value of the wrong type is refused, not coerced (`bool("no")`
    is True, and a robot blocked "until" a string would break the next tick)."""
    doc = _object(raw, "record")
    health = _object(doc["health"], "health")
    broken = health["broken_ticks"]
    if type(broken) is not int or broken < 0:
        raise ValueError(f"health.broken_ticks: not a count: {broken!r:.40}")
    announced = health["impaired_announced"]
    if not isinstance(announced, bool):
        raise ValueError(f"health.impaired_announced: not true/false: {announced!r:.40}")
    reason = health.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise ValueError("health.reason: not text")
    robots: dict[str, RobotRecord] = {}
    for key, robot in _object(doc.get("robots", {}), "robots").items():
        entry = _object(robot, f"robots.{key}")
        sent = entry.get("sent", [])
        if not isinstance(sent, list) or len(sent) > _MAX_SENT:
            raise ValueError(f"robots.{key}.sent: not a list of at most {_MAX_SENT} times")
        blocked = entry.get("blocked_until")
        robots[key] = RobotRecord(
            tuple(_time(t, f"robots.{key}.sent") for t in sent),
            None if blocked is None else _time(blocked, f"robots.{key}.blocked_until"),
        )
    return LocalHealth(
        HealthRecord(broken, announced, reason),
        _time(doc["since"], "since"),
        _time(doc["last"], "last"),
        robots,
    )


def _object(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: not an object")
    return value


def _time(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: not a time: {value!r:.40}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{where}: not a time: {value!r:.40}")
    return float(value)


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
