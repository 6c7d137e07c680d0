"""The heartbeat's record in the state, compactly.

``{"since": t, "sent_for": "2026-11-25", "sent_at": t, "problem": "...", "problem_at": t,
"hours": [{"h": 498770, "runs": 3, "fail": 1, "ok": 60, "calls": {"GetJobInstanceList":
120}, "jobs": {"ns/group": {"92583": 1}}}, ...]}``; counts at zero and empty maps are left
out and a failing job's group is written once per hour, so a quiet hour costs about 60
bytes and the whole record under 10 KiB, whatever the number of jobs. `decode` raises
ValueError naming the field.

What silences held back per hour is kept beside the hours, not in them: ``"held": [{"h":
498770, "n": 3, "by": {"oss:3": 3}}, ...]``. It came after version 4 was released, whose
readers refuse an hour with a field they do not know but ignore a key of the record they
do not know: an older reader drops these counts (an absent count is zero) and reads the
rest.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date
from typing import Any

from schedulerx_alert.core.heartbeat import (
    API_KEEP,
    HOLDER_KEEP,
    HOLDERS_PER_HOUR,
    JOBS_PER_HOUR,
    MAX_APIS,
    PROBLEM_KEEP,
    WINDOW_HOURS,
    HeartbeatRecord,
    Hour,
)
from schedulerx_alert.core.model import JobKey

_MAX_COUNT = 10**12
_MAX_TIME = 1e11
_COUNTS = (
    ("runs", "runs"),
    ("fail", "failures"),
    ("rec", "recoveries"),
    ("ok", "ok"),
    ("deg", "degraded"),
    ("bad", "failed"),
    ("unnamed", "unnamed"),
)
_FIELDS = {"h", "calls", "jobs", *(short for short, _ in _COUNTS)}


def encode(record: HeartbeatRecord) -> dict[str, Any]:
    raw: dict[str, Any] = {"hours": [_hour(h) for h in record.hours]}
    held = [_held(h) for h in record.hours if h.held]
    if held:
        raw["held"] = held
    if record.since is not None:
        raw["since"] = record.since
    if record.sent_for is not None:
        raw["sent_for"] = record.sent_for.isoformat()
    if record.sent_at is not None:
        raw["sent_at"] = record.sent_at
    if record.problem is not None:
        raw["problem"] = record.problem[:PROBLEM_KEEP]
        raw["problem_at"] = record.problem_at
    return raw


def _held(hour: Hour) -> dict[str, Any]:
    raw: dict[str, Any] = {"h": hour.start, "n": hour.held}
    if hour.held_by:
        raw["by"] = dict(sorted(hour.held_by.items()))
    return raw


def _hour(hour: Hour) -> dict[str, Any]:
    raw: dict[str, Any] = {"h": hour.start}
    for short, name in _COUNTS:
        if value := getattr(hour, name):
            raw[short] = value
    if hour.calls:
        raw["calls"] = dict(sorted(hour.calls.items()))
    if hour.jobs:
        groups: dict[str, dict[str, int]] = {}
        for key, n in sorted(hour.jobs.items()):
            # JobKey.encode() percent-encodes '/' inside its parts: the last one splits.
            group, _, job = key.rpartition("/")
            groups.setdefault(group, {})[job] = n
        raw["jobs"] = groups
    return raw


def decode(raw: Any) -> HeartbeatRecord:
    where = "heartbeat"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: not an object")
    hours = raw.get("hours", [])
    if not isinstance(hours, list) or len(hours) > 2 * WINDOW_HOURS:
        raise ValueError(f"{where}.hours: not a list of at most {2 * WINDOW_HOURS} hours")
    sent_for = raw.get("sent_for")
    day = None
    if sent_for is not None:
        try:
            day = date.fromisoformat(sent_for) if isinstance(sent_for, str) else None
        except ValueError:
            day = None
        if day is None:
            raise ValueError(f"{where}.sent_for: not a date (YYYY-MM-DD)")
    decoded = tuple(_read_hour(h, f"{where}.hours[{i}]") for i, h in enumerate(hours))
    decoded = _with_held(decoded, raw.get("held"), f"{where}.held")
    problem = raw.get("problem")
    if problem is not None and not isinstance(problem, str):
        raise ValueError(f"{where}.problem: not a string")
    return HeartbeatRecord(
        hours=tuple(sorted({h.start: h for h in decoded}.values(), key=lambda h: h.start)),
        since=_time(raw.get("since"), f"{where}.since"),
        sent_for=day,
        sent_at=_time(raw.get("sent_at"), f"{where}.sent_at"),
        problem=None if problem is None else problem[:PROBLEM_KEEP],
        problem_at=_time(raw.get("problem_at"), f"{where}.problem_at"),
    )


def _with_held(hours: tuple[Hour, ...], raw: Any, where: str) -> tuple[Hour, ...]:
    """The hours with the alerts held in each; an hour only held in is added."""
    if raw is None:
        return hours
    if not isinstance(raw, list) or len(raw) > 2 * WINDOW_HOURS:
        raise ValueError(f"{where}: not a list of at most {2 * WINDOW_HOURS} hours")
    by_start = {h.start: h for h in hours}
    for i, entry in enumerate(raw):
        here = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{here}: not an object")
        unknown = set(entry) - {"h", "n", "by"}
        if unknown:
            raise ValueError(f"{here}: unknown field {sorted(unknown)[0][:40]!r}")
        start = _count(entry.get("h"), f"{here}.h")
        hour = by_start.get(start, Hour(start))
        by_start[start] = replace(
            hour,
            held=_count(entry.get("n", 0), f"{here}.n"),
            held_by=_counts(entry.get("by"), f"{here}.by", HOLDERS_PER_HOUR, HOLDER_KEEP),
        )
    return tuple(by_start.values())


def _read_hour(raw: Any, where: str) -> Hour:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: not an object")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown field {sorted(unknown)[0][:40]!r}")
    counts: dict[str, Any] = {
        name: _count(raw.get(short, 0), f"{where}.{short}") for short, name in _COUNTS
    }
    hour = Hour(
        start=_count(raw.get("h"), f"{where}.h"),
        calls=_counts(raw.get("calls"), f"{where}.calls", MAX_APIS, API_KEEP),
        jobs=_jobs(raw.get("jobs"), f"{where}.jobs"),
    )
    return replace(hour, **counts)


def _jobs(raw: Any, where: str) -> dict[str, int]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or len(raw) > JOBS_PER_HOUR:
        raise ValueError(f"{where}: not an object of at most {JOBS_PER_HOUR} groups")
    out: dict[str, int] = {}
    for group, jobs in raw.items():
        here = f"{where}[{group[:80]!r}]"
        for job, n in _counts(jobs, here, JOBS_PER_HOUR, 20).items():
            key = f"{group}/{job}"
            try:
                JobKey.decode(key)
            except ValueError:
                raise ValueError(f"{here}[{job!r}]: not a job key") from None
            out[key] = n
    if len(out) > JOBS_PER_HOUR:
        raise ValueError(f"{where}: more than {JOBS_PER_HOUR} jobs")
    return out


def _counts(raw: Any, where: str, most: int, key_len: int) -> dict[str, int]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or len(raw) > most:
        raise ValueError(f"{where}: not an object of at most {most} counts")
    out: dict[str, int] = {}
    for key, value in raw.items():
        if len(key) > key_len:
            raise ValueError(f"{where}: a key longer than {key_len} characters")
        out[key] = _count(value, f"{where}[{key[:60]!r}]")
    return out


def _count(value: Any, where: str) -> int:
    if type(value) is not int or not 0 <= value <= _MAX_COUNT:
        raise ValueError(f"{where}: not a count")
    return value


def _time(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if type(value) not in (int, float) or not (math.isfinite(value) and 0 <= value <= _MAX_TIME):
        raise ValueError(f"{where}: not a time in epoch seconds")
    return float(value)
