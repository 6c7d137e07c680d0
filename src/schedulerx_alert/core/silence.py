"""Silences and quiet hours: which alerts are held back, decided without I/O or a clock.

A silence holds back the alerts its matcher selects while `start <= now < until`;
quiet hours hold back a receiver's pages in weekly windows of its local time,
except the kinds, jobs and named routes that must still page. Held-back alerts are
recorded and counted by the caller, never dropped: `ended_between` tells it which
silences ended since the last tick, so it can send one digest of what each held back.

Matching is the same for silences and routes (`delivery/route.py`): every field a
matcher names must match, a field left empty matches anything. `jobs`, `job_names`
and `workflows` all select what an alert is about, so an alert matches when its job's
id is listed, *or* its name fits one of the globs, *or* it is about a listed workflow
(whose key carries the workflow id negated, core/workflows.py: no job id matches it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any
from zoneinfo import ZoneInfo

from schedulerx_alert.core.model import InstanceStatus, TriggerType
from schedulerx_alert.core.shown import show

# Kinds that are a run's own status label (failed, rejected, killed, ...) and the
# kinds the rules raise without a single run behind them (core/rules).
RULE_KINDS = frozenset(
    {"recovered", "stuck", "missed", "flapping", "settled", "shared_cause"}
    | {"workflow_failed", "workflow_recovered"}  # core/rules/workflow_failed.py
)
KINDS = frozenset(status.label for status in InstanceStatus) | RULE_KINDS
TRIGGER_TYPES: Mapping[str, int] = {t.name.lower(): int(t) for t in TriggerType}

# A record read back from OSS is untrusted: every field is bounded.
MAX_JOBS = 100
MAX_GLOBS = 20
MAX_TEXT = 200
MAX_COMMENT = 500
MAX_WHO = 100

MATCH_KEYS = {
    "namespace": "namespace",
    "group": "group",
    "jobs": "jobs",
    "job": "jobs",
    "job_names": "job_names",
    "job_name": "job_names",
    "workflows": "workflows",
    "workflow": "workflows",
    "kinds": "kinds",
    "kind": "kinds",
    "trigger_types": "trigger_types",
    "trigger_type": "trigger_types",
}


@dataclass(frozen=True)
class Subject:
    """What an alert is about, as far as silences and routes care."""

    namespace: str
    group: str
    job_id: int | None
    job_name: str | None
    kind: str
    trigger_type: str | None = None  # a TRIGGER_TYPES name; None when no run is behind it


@dataclass(frozen=True)
class Matcher:
    namespace: str | None = None
    group: str | None = None
    job_ids: frozenset[int] = frozenset()
    job_names: tuple[str, ...] = ()  # fnmatch globs, case-sensitive
    kinds: frozenset[str] = frozenset()
    trigger_types: frozenset[str] = frozenset()
    workflow_ids: frozenset[int] = frozenset()

    @property
    def is_empty(self) -> bool:
        return self == Matcher()

    def mismatch(self, subject: Subject) -> str | None:
        """Why the subject does not match, or None when it does."""
        if self.namespace is not None and subject.namespace != self.namespace:
            return f"namespace {show(subject.namespace)} is not {show(self.namespace)}"
        if self.group is not None and subject.group != self.group:
            return f"group {show(subject.group)} is not {show(self.group)}"
        if (self.job_ids or self.job_names or self.workflow_ids) and not self._selects_job(subject):
            return f"job {_job(subject)} is not {self._jobs_text()}"
        if self.kinds and subject.kind not in self.kinds:
            return f"kind {subject.kind} is not {'|'.join(sorted(self.kinds))}"
        if self.trigger_types and subject.trigger_type not in self.trigger_types:
            trigger = subject.trigger_type or "unknown"
            return f"trigger type {trigger} is not {'|'.join(sorted(self.trigger_types))}"
        return None

    def matches(self, subject: Subject) -> bool:
        return self.mismatch(subject) is None

    def _selects_job(self, subject: Subject) -> bool:
        if subject.job_id is not None and subject.job_id in self.job_ids:
            return True
        if subject.job_id is not None and -subject.job_id in self.workflow_ids:
            return True
        name = subject.job_name
        return name is not None and any(fnmatchcase(name, glob) for glob in self.job_names)

    def _jobs_text(self) -> str:
        parts = [str(job) for job in sorted(self.job_ids)]
        parts += [f"workflow {wf}" for wf in sorted(self.workflow_ids)]
        parts += [f"name {show(glob)}" for glob in self.job_names]
        return " or ".join(parts)

    def describe(self) -> str:
        """The conditions in one line: `group=etl, kind=failed`; `any` when there are none."""
        parts: list[str] = []
        if self.namespace is not None:
            parts.append(f"namespace={self.namespace}")
        if self.group is not None:
            parts.append(f"group={self.group}")
        if self.job_ids:
            parts.append("job=" + "|".join(str(job) for job in sorted(self.job_ids)))
        if self.workflow_ids:
            parts.append("workflow=" + "|".join(str(wf) for wf in sorted(self.workflow_ids)))
        if self.job_names:
            parts.append("name=" + "|".join(self.job_names))
        if self.kinds:
            parts.append("kind=" + "|".join(sorted(self.kinds)))
        if self.trigger_types:
            parts.append("trigger=" + "|".join(sorted(self.trigger_types)))
        return ", ".join(parts) or "any"

    def to_dict(self) -> dict[str, Any]:
        raw: dict[str, Any] = {}
        if self.namespace is not None:
            raw["namespace"] = self.namespace
        if self.group is not None:
            raw["group"] = self.group
        if self.job_ids:
            raw["jobs"] = sorted(self.job_ids)
        if self.workflow_ids:
            # A key of its own: a book written before it reads as it always did.
            raw["workflows"] = sorted(self.workflow_ids)
        if self.job_names:
            raw["job_names"] = list(self.job_names)
        if self.kinds:
            raw["kinds"] = sorted(self.kinds)
        if self.trigger_types:
            raw["trigger_types"] = sorted(self.trigger_types)
        return raw


@dataclass(frozen=True)
class Silence:
    id: str
    matcher: Matcher
    start: float  # epoch seconds
    end: float  # as planned; `until` is when it really stops
    comment: str = ""
    created_by: str = ""
    created_at: float = 0.0
    source: str = "config"  # "config" (the file) or "oss" (the silence book beside the state)
    expired_at: float | None = None  # `silence expire` ended it early
    expired_by: str | None = None

    @property
    def until(self) -> float:
        if self.expired_at is not None and self.expired_at < self.end:
            return self.expired_at
        return self.end

    def active(self, now: float) -> bool:
        return self.start <= now < self.until

    def expire(self, at: float, by: str) -> Silence:
        """Ended early; a second expiry keeps the earlier one."""
        if self.expired_at is not None and self.expired_at <= at:
            return self
        return replace(self, expired_at=at, expired_by=by)

    def to_dict(self) -> dict[str, Any]:
        raw: dict[str, Any] = {
            "id": self.id,
            "match": self.matcher.to_dict(),
            "start": self.start,
            "end": self.end,
            "comment": self.comment,
            "created_by": self.created_by,
            "created_at": self.created_at,
        }
        if self.expired_at is not None:
            raw["expired_at"] = self.expired_at
            raw["expired_by"] = self.expired_by or ""
        return raw


def active_silences(silences: Iterable[Silence], now: float) -> tuple[Silence, ...]:
    return tuple(s for s in silences if s.active(now))


def silenced_by(subject: Subject, silences: Iterable[Silence], now: float) -> Silence | None:
    """The active silence that holds this alert back, or None.

    Of several, the one that lasts longest: the digest that lists the alert then
    comes when the last silence covering it ends, not while another still holds.
    """
    holding = [s for s in silences if s.active(now) and s.matcher.matches(subject)]
    # max() keeps the first of equals: the order given breaks ties.
    return max(holding, key=lambda s: s.until, default=None)


def ended_between(silences: Iterable[Silence], last_tick: float, now: float) -> tuple[Silence, ...]:
    """Silences that stopped in (last_tick, now]: each owes one digest of what it held back.

    One that never started (expired before its start) held nothing back and is left out.
    """
    return tuple(s for s in silences if last_tick < s.until <= now and s.start < s.until)


# -- quiet hours -----------------------------------------------------------------------------

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_SETS: Mapping[str, frozenset[int]] = {
    "weekdays": frozenset(range(5)),
    "weekends": frozenset({5, 6}),
    "daily": frozenset(range(7)),
}
MINUTES_A_DAY = 24 * 60


@dataclass(frozen=True)
class QuietWindow:
    """Weekly quiet time: from `start` to `end` (minutes after local midnight).

    `days` are the days a window *begins* (0 = Monday). A window whose end is not
    after its start crosses midnight: fri 22:00-06:00 runs into Saturday morning.
    """

    days: frozenset[int]
    start: int
    end: int  # 1440 means midnight at the end of the day

    def covers(self, weekday: int, minute: float) -> bool:
        if self.start < self.end:
            return weekday in self.days and self.start <= minute < self.end
        yesterday = (weekday - 1) % 7
        return (weekday in self.days and minute >= self.start) or (
            yesterday in self.days and minute < self.end
        )

    def describe(self) -> str:
        return f"{_days_text(self.days)} {_clock(self.start)}-{_clock(self.end)}"


@dataclass(frozen=True)
class QuietHours:
    """A receiver's quiet windows, and what still pages in them: kinds, jobs (ids or
    name globs, as a matcher's `jobs`/`job_names`) and what named routes send."""

    windows: tuple[QuietWindow, ...]
    zone: str = "Asia/Shanghai"
    except_kinds: frozenset[str] = field(default_factory=frozenset)
    except_jobs: Matcher = field(default_factory=Matcher)  # job_ids and job_names only
    except_routes: frozenset[str] = field(default_factory=frozenset)  # route names

    def exempts(
        self, kind: str, subject: Subject | None = None, routes: Iterable[str] = ()
    ) -> str | None:
        """Why an alert still pages in these quiet hours, or None when it waits.

        `routes` are the names of the routes that sent it to this receiver. A job whose
        name is not known (an id no job list showed yet) pages when names are excepted:
        an exception that cannot be told must not hold back what it was written for.
        """
        if kind in self.except_kinds:
            return f"kind {kind} still pages"
        jobs = self.except_jobs
        if subject is not None and (jobs.job_ids or jobs.job_names):
            if jobs.matches(subject):
                return f"job {_job(subject)} still pages"
            if jobs.job_names and subject.job_name is None:
                return f"job {_job(subject)} has no known name to tell from the excepted names"
        via = sorted(self.except_routes.intersection(routes))
        if via:
            return f"route {show(via[0])} still pages"
        return None

    def describe(self) -> str:
        text = ", ".join(w.describe() for w in self.windows) + f" ({self.zone})"
        still = sorted(self.except_kinds)
        still += [str(job) for job in sorted(self.except_jobs.job_ids)]
        still += list(self.except_jobs.job_names)
        still += [f"route {name}" for name in sorted(self.except_routes)]
        if still:
            text += f"; {', '.join(still)} still page"
        return text


def in_quiet_hours(
    quiet: QuietHours | None,
    now: float,
    kind: str,
    subject: Subject | None = None,
    routes: Iterable[str] = (),
) -> bool:
    """Whether an alert waits for the receiver's quiet hours to end: it is inside a
    window and nothing excepts it (its kind, its job, a route that sent it here)."""
    if quiet is None or quiet.exempts(kind, subject, routes) is not None:
        return False
    return quiet_now(quiet, now)


def quiet_now(quiet: QuietHours, now: float) -> bool:
    """Whether `now` is inside one of the windows."""
    local = datetime.fromtimestamp(now, ZoneInfo(quiet.zone))
    minute = local.hour * 60 + local.minute + local.second / 60
    return any(w.covers(local.weekday(), minute) for w in quiet.windows)


def _days_text(days: frozenset[int]) -> str:
    for name, members in DAY_SETS.items():
        if days == members:
            return name
    return ",".join(DAY_NAMES[d] for d in sorted(days))


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# -- reading matchers and silences from plain values (config file, OSS records) ----------------


def parse_matcher(raw: Any, path: str, problems: list[str]) -> Matcher:
    """A matcher from a mapping; each problem is appended as `path.key: message`."""
    if raw is None:
        return Matcher()
    if not isinstance(raw, dict):
        problems.append(f"{path}: must be a mapping, not {_type(raw)}")
        return Matcher()
    texts: dict[str, str | None] = {}
    job_ids: list[int] = []
    workflow_ids: list[int] = []
    globs: list[str] = []
    kinds: list[str] = []
    triggers: list[str] = []
    seen: dict[str, str] = {}
    for key, value in raw.items():
        here = f"{path}.{key}"
        name = MATCH_KEYS.get(key) if isinstance(key, str) else None
        if name is None:
            problems.append(f"{here}: unknown key (one of: {', '.join(sorted(MATCH_KEYS))})")
            continue
        if name in seen:
            problems.append(f"{here}: {seen[name]} already says which {name}")
            continue
        seen[name] = str(key)
        if isinstance(value, list) and not value:
            problems.append(f"{here}: is empty; leave it out to match any {name.rstrip('s')}")
            continue
        if name in ("namespace", "group"):
            texts[name] = _text(value, here, problems)
        elif name == "jobs":
            job_ids = _job_ids(value, here, problems)
        elif name == "workflows":
            workflow_ids = _job_ids(value, here, problems, "workflow")
        elif name == "job_names":
            globs = [g for g in (_text(v, here, problems) for v in _items(value)) if g]
            if len(globs) > MAX_GLOBS:
                problems.append(f"{here}: at most {MAX_GLOBS} globs, not {len(globs)}")
                globs = []
        elif name == "kinds":
            kinds = _names(value, here, problems, KINDS, "kind")
        else:
            triggers = _triggers(value, here, problems)
    return Matcher(
        namespace=texts.get("namespace"),
        group=texts.get("group"),
        job_ids=frozenset(job_ids),
        job_names=tuple(dict.fromkeys(globs)),
        kinds=frozenset(kinds),
        trigger_types=frozenset(triggers),
        workflow_ids=frozenset(workflow_ids),
    )


def parse_silence(raw: Any, where: str, problems: list[str], source: str = "oss") -> Silence | None:
    """A silence as `Silence.to_dict` wrote it; None (with problems) when unusable."""
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping, not {_type(raw)}")
        return None
    before = len(problems)
    silence_id = raw.get("id")
    if not isinstance(silence_id, str) or not silence_id or len(silence_id) > MAX_TEXT:
        problems.append(f"{where}.id: must be a short string")
    matcher = parse_matcher(raw.get("match"), f"{where}.match", problems)
    if matcher.is_empty:
        problems.append(f"{where}.match: names nothing; a silence must say what it holds back")
    start = _epoch(raw.get("start"), f"{where}.start", problems)
    end = _epoch(raw.get("end"), f"{where}.end", problems)
    if start is not None and end is not None and end <= start:
        problems.append(f"{where}.end: must be after start")
    created_at = _epoch(raw.get("created_at", 0.0), f"{where}.created_at", problems)
    expired_at = raw.get("expired_at")
    if expired_at is not None:
        expired_at = _epoch(expired_at, f"{where}.expired_at", problems)
    comment = _bounded(raw.get("comment", ""), f"{where}.comment", MAX_COMMENT, problems)
    created_by = _bounded(raw.get("created_by", ""), f"{where}.created_by", MAX_WHO, problems)
    expired_by = _bounded(raw.get("expired_by", ""), f"{where}.expired_by", MAX_WHO, problems)
    if len(problems) > before:
        return None
    assert isinstance(silence_id, str) and start is not None and end is not None
    return Silence(
        id=silence_id,
        matcher=matcher,
        start=start,
        end=end,
        comment=comment,
        created_by=created_by,
        created_at=created_at or 0.0,
        source=source,
        expired_at=expired_at,
        expired_by=expired_by if expired_at is not None else None,
    )


def _items(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list) else [value]


def _text(value: Any, path: str, problems: list[str]) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        problems.append(f"{path}: must be a string, not {_type(value)}")
        return None
    text = str(value)
    if not text or len(text) > MAX_TEXT:
        problems.append(f"{path}: must be 1 to {MAX_TEXT} characters, not {len(text)}")
        return None
    return text


def _bounded(value: Any, path: str, limit: int, problems: list[str]) -> str:
    if not isinstance(value, str):
        problems.append(f"{path}: must be a string, not {_type(value)}")
        return ""
    if len(value) > limit:
        problems.append(f"{path}: at most {limit} characters, not {len(value)}")
        return ""
    return value


def _job_ids(value: Any, path: str, problems: list[str], what: str = "job") -> list[int]:
    ids: list[int] = []
    items = _items(value)
    if len(items) > MAX_JOBS:
        problems.append(f"{path}: at most {MAX_JOBS} {what} ids, not {len(items)}")
        return ids
    for item in items:
        if isinstance(item, str) and item.isdigit() and len(item) <= 19:
            item = int(item)
        if isinstance(item, bool) or not isinstance(item, int) or not 0 < item < 2**63:
            problems.append(f"{path}: {what} ids are positive integers, not {show(item)}")
            continue
        ids.append(item)
    return ids


def _names(
    value: Any, path: str, problems: list[str], known: Iterable[str], what: str
) -> list[str]:
    choices = sorted(known)
    names: list[str] = []
    for item in _items(value):
        name = item.lower() if isinstance(item, str) else None
        if name not in choices:
            problems.append(f"{path}: unknown {what} {show(item)} (one of: {', '.join(choices)})")
            continue
        names.append(name)
    return names


def _triggers(value: Any, path: str, problems: list[str]) -> list[str]:
    by_code = {code: name for name, code in TRIGGER_TYPES.items()}
    names: list[str] = []
    for item in _items(value):
        if isinstance(item, int) and not isinstance(item, bool) and item in by_code:
            names.append(by_code[item])
        else:
            names += _names(item, path, problems, TRIGGER_TYPES, "trigger type")
    return names


def _epoch(value: Any, path: str, problems: list[str]) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(f"{path}: must be a time in epoch seconds, not {_type(value)}")
        return None
    if not 0 <= value < 2**33:
        problems.append(f"{path}: {value!r} is not a plausible time")
        return None
    return float(value)


def _type(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _job(subject: Subject) -> str:
    if subject.job_id is None:
        return "(none)"
    if subject.job_id < 0:
        return (
            f"{show(subject.job_name)} (workflow {-subject.job_id})"
            if subject.job_name
            else f"workflow {-subject.job_id}"
        )
    if subject.job_name:
        return f"{subject.job_id} ({show(subject.job_name)})"
    return str(subject.job_id)
