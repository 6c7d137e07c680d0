"""What the rules remember of one job between ticks: small, bounded, plain JSON."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Literal

from schedulerx_alert.core.rules.settings import MAX_FLAP_CHANGES

# Runs announced as stuck that have not been seen to end; more than a listing holds.
MAX_STUCK = 32
# Run times the missed-run rule keeps for fires not judged yet (a group query may list a
# fire's run ticks before its grace ends); the oldest go first, and what they might
# have answered is then not called missed.
MAX_RUN_TIMES = 64
_OUTCOMES = ("ok", "fail")


class MemoryFormatError(ValueError):
    """A stored rule memory that is not one; the message names the field."""


@dataclass(frozen=True)
class JobRuleState:
    # Failures in a row (of the statuses the job announces) since the last success.
    streak: int = 0
    # When the first failure of the streak ended.
    streak_since: float | None = None
    # Whether a failure of the current streak was announced: only then is a success a recovery.
    announced: bool = False
    last_failure: str | None = None
    # Instance ids announced as stuck that have not been seen to end.
    stuck: tuple[int, ...] = ()
    # The last fire time the missed-run rule has looked at.
    missed_checked: float | None = None
    # When the runs seen since then were due (schedule or start time), oldest first: the
    # answers to fires still inside their grace.
    missed_runs: tuple[float, ...] = ()
    # The first fire after `missed_checked`, as the schedule said: until the horizon
    # reaches it there is nothing to judge, and no fire time to compute (the rule runs
    # for every watched job every tick, and a cron step costs about a millisecond).
    missed_next: float | None = None
    last_outcome: Literal["ok", "fail"] | None = None
    # When the outcome changed between failure and success, oldest first.
    changes: tuple[float, ...] = ()
    flapping_since: float | None = None
    # When the latest failure or success the rules took ended. One that ended before it
    # is the past: listed late, or listed again after its record was let go (core/diff.py
    # `_record`); it cannot end a newer streak or flip the latest outcome.
    last_outcome_at: float | None = None


EMPTY = JobRuleState()


def memory_to_json(state: JobRuleState) -> dict[str, Any]:
    """Only what differs from the defaults, so a quiet job costs `{}`."""
    raw: dict[str, Any] = {}
    for name, default in _DEFAULTS:
        value = getattr(state, name)
        if value != default:
            raw[name] = list(value) if isinstance(value, tuple) else value
    if "stuck" in raw:
        raw["stuck"] = raw["stuck"][-MAX_STUCK:]
    if "changes" in raw:
        raw["changes"] = raw["changes"][-MAX_FLAP_CHANGES:]
    if "missed_runs" in raw:
        raw["missed_runs"] = raw["missed_runs"][-MAX_RUN_TIMES:]
    return raw


def memory_from_json(raw: Any, where: str = "rules") -> JobRuleState:
    """The inverse of memory_to_json; MemoryFormatError names the bad field."""
    if not isinstance(raw, dict):
        raise MemoryFormatError(f"{where}: expected an object, got {type(raw).__name__}")
    if not raw.keys() <= _READERS.keys():
        unknown = sorted(set(raw) - _READERS.keys())
        raise MemoryFormatError(f"{where}: unknown field(s) {', '.join(unknown)}")
    # Only the fields present are read (a job's memory mostly holds two of twelve), in
    # this order, so that of two bad fields the same one is named.
    values = {
        name: read(raw[name], f"{where}.{name}") for name, read in _READERS.items() if name in raw
    }
    return JobRuleState(**values)


def _outcome(value: Any, where: str) -> Literal["ok", "fail"] | None:
    if value not in (None, *_OUTCOMES):
        raise MemoryFormatError(f"{where}: {value!r} is not ok or fail")
    return value  # type: ignore[no-any-return]


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MemoryFormatError(f"{where}: {value!r} is not a count")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise MemoryFormatError(f"{where}: {value!r} is not true or false")
    return value


def _text(value: Any, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise MemoryFormatError(f"{where}: {value!r} is not text")
    return value


def _time(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if not _is_time(value):
        raise MemoryFormatError(f"{where}: {value!r} is not an epoch time")
    return float(value)


def _ints(limit: int) -> Callable[[Any, str], tuple[int, ...]]:
    def read(values: Any, where: str) -> tuple[int, ...]:
        if not isinstance(values, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in values
        ):
            raise MemoryFormatError(f"{where}: {values!r} is not a list of instance ids")
        return tuple(values[-limit:])

    return read


def _times(limit: int) -> Callable[[Any, str], tuple[float, ...]]:
    def read(values: Any, where: str) -> tuple[float, ...]:
        if not isinstance(values, list) or not all(_is_time(v) for v in values):
            raise MemoryFormatError(f"{where}: {values!r} is not a list of epoch times")
        return tuple(float(v) for v in values[-limit:])

    return read


# Each field's reader, `last_outcome` first (it was checked first).
_READERS: dict[str, Callable[[Any, str], Any]] = {
    "last_outcome": _outcome,
    "streak": _int,
    "streak_since": _time,
    "announced": _bool,
    "last_failure": _text,
    "stuck": _ints(MAX_STUCK),
    "missed_checked": _time,
    "missed_runs": _times(MAX_RUN_TIMES),
    "missed_next": _time,
    "changes": _times(MAX_FLAP_CHANGES),
    "flapping_since": _time,
    "last_outcome_at": _time,
}
assert set(_READERS) == {f.name for f in fields(JobRuleState)}
_DEFAULTS = tuple((f.name, f.default) for f in fields(JobRuleState))


# As the state's own times (core/state.py MAX_TIME): a later epoch second than this, or one
# before 1970, is no time a tick wrote, and cannot be rendered as a date.
MAX_TIME = 1e11


def _is_time(value: Any) -> bool:
    # JSON reads 1e999 as infinity, which no later write could store.
    return type(value) in (int, float) and math.isfinite(value) and 0 <= value <= MAX_TIME
