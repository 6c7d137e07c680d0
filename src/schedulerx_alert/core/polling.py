"""What the sources remember between ticks, and its JSON form.

Per group: how it is read (group queries, or per-job polls where its server cannot answer
them, until a daily retry), how far its runs have been read (the spans still to page through,
the time covered), the earliest unfinished run it follows, and its job list's refresh. Per
server (endpoint): what the undocumented parts of GetJobInstanceList turned out to do. Per
API: the calls of the last minute, so that ticks share one quota.

Pure data and a strict codec: `decode` raises ValueError naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from schedulerx_alert.core.model import JobKey

#: The instance times a window (StartTimestamp/EndTimestamp) may filter on.
WINDOW_FIELDS = ("schedule", "start", "end")
#: How a group's runs are read.
GROUP_QUERIES = "group"
PER_JOB = "per_job"
MODES = (GROUP_QUERIES, PER_JOB)
#: The largest page asked for; a server may allow less (found out and remembered).
MAX_PAGE = 100
MIN_PAGE = 10
_MAX_TIME = 1e11
_MAX_KEEP = 10_000

GroupKey = tuple[str, str]  # (namespace, group)
Unfinished = tuple[int, int, int, float | None, float | None, int | None]
#: Unfinished runs remembered per group.
MAX_UNFINISHED = 500


@dataclass(frozen=True, slots=True)
class Query:
    """One kind of group query: the runs in one status (every status: None), within the
    span's window or not."""

    status: int | None
    windowed: bool = True


@dataclass(frozen=True, slots=True)
class Span:
    """A window of a group's runs not yet read to the end: the queries left (the first at
    `page`). `lo`/`hi` bound whichever instance time the server filters on."""

    lo: float
    hi: float
    todo: tuple[Query, ...]
    page: int = 1
    # Whether any of its calls was made; a span never started is widened, not kept beside.
    started: bool = False
    # Where the query in every status starts, when the window reaches further back only
    # for the runs unfinished at the last scan (their failures); None: at `lo`.
    recent: float | None = None

    def advanced(self, pages: int) -> Span:
        return replace(self, page=self.page + pages, started=True)

    def next_query(self) -> Span:
        return replace(self, todo=self.todo[1:], page=1, started=True)


@dataclass(frozen=True, slots=True)
class GroupCursor:
    mode: str = GROUP_QUERIES
    # Why the group is polled per job (the server's answer), and when group queries are
    # tried again.
    reason: str = ""
    retry_at: float | None = None
    # When the current mode began.
    since: float | None = None
    # The end of the newest window created: the next one starts here (less the overlap).
    covered: float | None = None
    # Windows not read to the end yet, oldest first.
    spans: tuple[Span, ...] = ()
    # The earliest schedule time of the runs unfinished at the last complete scan (those
    # younger than the follow limit): windows reach back to it, whatever time they filter on.
    floor: float | None = None
    scanned_at: float | None = None
    # Runs unfinished for longer than the follow limit: (job id, instance id, schedule time);
    # polled per job once a scan no longer lists them.
    ancient: tuple[tuple[int, int, float], ...] = ()
    # Runs last seen unfinished (by a scan or a window) and not seen to end since, so that
    # the rules see them every tick between scans: (job id, instance id, status, schedule
    # time, start time, trigger type).
    unfinished: tuple[Unfinished, ...] = ()
    # The last cross-check of group answers against a per-job poll.
    checked_at: float | None = None
    # The job list: when the last full pass ended, and a pass under way (next page, start).
    discovered_at: float | None = None
    discovery_page: int = 0
    discovery_started: float | None = None


@dataclass(frozen=True, slots=True)
class ServerFacts:
    """What one endpoint's GetJobInstanceList turned out to do."""

    endpoint: str = ""
    # The instance times its window may still filter on (evidence removes the others).
    fields: tuple[str, ...] = WINDOW_FIELDS
    page_size: int = MAX_PAGE
    # The most runs one page has held: the server allows pages at least this large, so a
    # shorter page is the end of a listing; a page as long or longer but short of what was
    # asked may be a smaller largest page, and the next page tells.
    page_seen: int = 0
    # The ListJobs page size that works (its largest is not documented either).
    jobs_page_size: int = MAX_PAGE

    @property
    def field_known(self) -> str | None:
        return self.fields[0] if len(self.fields) == 1 else None


@dataclass(frozen=True)
class SourceState:
    server: ServerFacts = ServerFacts()
    groups: dict[GroupKey, GroupCursor] = field(default_factory=dict)
    # Recent calls per API other than GetJobInstanceList (State.api_calls has those).
    calls: dict[str, tuple[float, ...]] = field(default_factory=dict)
    # Jobs on a fixed rate or second delay polled one by one: one fire (or end) seen, which
    # phases their grid of fires (their TimeConfig says only how far apart they are).
    anchors: dict[JobKey, float] = field(default_factory=dict)

    def group(self, key: GroupKey) -> GroupCursor:
        return self.groups.get(key) or GroupCursor()


# -- JSON -------------------------------------------------------------------------------------


def group_key_text(key: GroupKey) -> str:
    """`namespace/group`, each part percent-encoded as in a job key."""
    return JobKey(key[0], key[1], 0).encode().rsplit("/", 1)[0]


def group_key_of(text: str) -> GroupKey:
    try:
        job = JobKey.decode(f"{text}/0")
    except ValueError:
        raise ValueError(f"{text[:80]!r} is not namespace/group") from None
    return (job.namespace, job.group)


def encode(state: SourceState) -> dict[str, Any]:
    server = state.server
    return {
        "server": {
            "endpoint": server.endpoint,
            "fields": list(server.fields),
            "page": server.page_size,
            "seen": server.page_seen,
            "jobs_page": server.jobs_page_size,
        },
        "groups": {
            group_key_text(key): _cursor_to_json(cursor)
            for key, cursor in sorted(state.groups.items())
        },
        "calls": {name: list(times) for name, times in sorted(state.calls.items())},
        "anchors": {key.encode(): at for key, at in sorted(state.anchors.items())},
    }


def _cursor_to_json(c: GroupCursor) -> dict[str, Any]:
    raw: dict[str, Any] = {"mode": c.mode}
    optional = {
        "reason": c.reason or None,
        "retry_at": c.retry_at,
        "since": c.since,
        "covered": c.covered,
        "floor": c.floor,
        "scanned_at": c.scanned_at,
        "checked_at": c.checked_at,
        "discovered_at": c.discovered_at,
        "discovery_page": c.discovery_page or None,
        "discovery_started": c.discovery_started,
    }
    raw.update({k: v for k, v in optional.items() if v is not None})
    if c.ancient:
        raw["ancient"] = [list(item) for item in c.ancient]
    if c.unfinished:
        raw["unfinished"] = [list(item) for item in c.unfinished]
    if c.spans:
        raw["spans"] = [
            [s.lo, s.hi, [[q.status, int(q.windowed)] for q in s.todo], s.page, int(s.started)]
            + ([] if s.recent is None else [s.recent])
            for s in c.spans
        ]
    return raw


def decode(raw: Any) -> SourceState:
    doc = _obj(raw, "sources")
    server_raw = _obj(doc.get("server", {}), "sources.server")
    fields = tuple(
        _str(f, "sources.server.fields[]")
        for f in _list(server_raw.get("fields", list(WINDOW_FIELDS)), "fields")
    )
    if not fields or any(f not in WINDOW_FIELDS for f in fields) or len(set(fields)) != len(fields):
        raise ValueError(f"sources.server.fields: {fields!r} are not window fields")
    server = ServerFacts(
        endpoint=_str(server_raw.get("endpoint", ""), "sources.server.endpoint"),
        fields=tuple(f for f in WINDOW_FIELDS if f in fields),
        page_size=_int(server_raw.get("page", MAX_PAGE), "sources.server.page", 1, MAX_PAGE),
        page_seen=_int(server_raw.get("seen", 0), "sources.server.seen", 0, MAX_PAGE),
        jobs_page_size=_int(
            server_raw.get("jobs_page", MAX_PAGE), "sources.server.jobs_page", 1, MAX_PAGE
        ),
    )
    groups = {}
    for text, value in _obj(doc.get("groups", {}), "sources.groups").items():
        where = f"sources.groups[{text[:80]!r}]"
        try:
            key = group_key_of(text)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        groups[key] = _cursor(value, where)
    calls = {
        _str(name, "sources.calls"): _times(times, f"sources.calls[{name[:40]!r}]")
        for name, times in _obj(doc.get("calls", {}), "sources.calls").items()
    }
    anchors: dict[JobKey, float] = {}
    for text, at in _obj(doc.get("anchors", {}), "sources.anchors").items():
        where = f"sources.anchors[{text[:80]!r}]"
        try:
            job = JobKey.decode(text)
        except ValueError:
            raise ValueError(f"{where}: not a job key") from None
        anchors[job] = _time(at, where)
    return SourceState(server, groups, calls, anchors)


def _cursor(value: Any, where: str) -> GroupCursor:
    raw = _obj(value, where)
    mode = _str(raw.get("mode", GROUP_QUERIES), f"{where}.mode")
    if mode not in MODES:
        raise ValueError(f"{where}.mode: {mode[:40]!r} is not one of {', '.join(MODES)}")

    def time(name: str) -> float | None:
        return _opt_time(raw.get(name), f"{where}.{name}")

    ancient = tuple(
        _ancient(item, f"{where}.ancient[]") for item in _list(raw.get("ancient", []), where)
    )
    spans = tuple(_span(item, f"{where}.spans[]") for item in _list(raw.get("spans", []), where))
    unfinished = tuple(
        _unfinished(item, f"{where}.unfinished[]")
        for item in _list(raw.get("unfinished", []), where)
    )
    if len(ancient) > _MAX_KEEP or len(spans) > _MAX_KEEP or len(unfinished) > _MAX_KEEP:
        raise ValueError(f"{where}: too many entries")
    return GroupCursor(
        mode=mode,
        reason=_str(raw.get("reason", ""), f"{where}.reason")[:300],
        retry_at=time("retry_at"),
        since=time("since"),
        covered=time("covered"),
        spans=spans,
        floor=time("floor"),
        scanned_at=time("scanned_at"),
        ancient=ancient,
        unfinished=unfinished[:MAX_UNFINISHED],
        checked_at=time("checked_at"),
        discovered_at=time("discovered_at"),
        discovery_page=_int(raw.get("discovery_page", 0), f"{where}.discovery_page", 0, 10**6),
        discovery_started=time("discovery_started"),
    )


def _ancient(value: Any, where: str) -> tuple[int, int, float]:
    item = _row(value, where, "job id, instance id, schedule time")
    return _id(item[0], where), _id(item[1], where), _time(item[2], where)


def _unfinished(value: Any, where: str) -> Unfinished:
    item = _row(value, where, "job id, instance id, status, schedule, start, trigger")
    return (
        _id(item[0], where),
        _id(item[1], where),
        _code(item[2], where),
        _opt_time(item[3], where),
        _opt_time(item[4], where),
        None if item[5] is None else _code(item[5], where),
    )


def _span(value: Any, where: str) -> Span:
    item = _list(value, where)
    if len(item) not in (5, 6):
        raise ValueError(f"{where}: not [lo, hi, queries, page, started, (recent)]")
    todo = []
    for query in _list(item[2], f"{where}.queries"):
        pair = _row(query, f"{where}.queries[]", "status, windowed")
        status = None if pair[0] is None else _code(pair[0], where)
        todo.append(Query(status, bool(_int(pair[1], where, 0, 1))))
    return Span(
        lo=_time(item[0], where),
        hi=_time(item[1], where),
        todo=tuple(todo),
        page=_int(item[3], f"{where}.page", 1, 10**6),
        started=bool(_int(item[4], f"{where}.started", 0, 1)),
        recent=_time(item[5], f"{where}.recent") if len(item) == 6 else None,
    )


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: not an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{where}: not a list")
    return value


def _row(value: Any, where: str, fields: str) -> list[Any]:
    item = _list(value, where)
    if len(item) != fields.count(",") + 1:
        raise ValueError(f"{where}: not [{fields}]")
    return item


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where}: not a string")
    return value


def _int(value: Any, where: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"{where}: not a whole number in [{low}, {high}]")
    return value


def _id(value: Any, where: str) -> int:
    """A job's or a run's id (SchedulerX's are Java longs)."""
    return _int(value, where, 0, 2**63 - 1)


def _code(value: Any, where: str) -> int:
    """A status or trigger type (Java ints)."""
    return _int(value, where, -(2**31), 2**31 - 1)


def _time(value: Any, where: str) -> float:
    if type(value) not in (int, float) or not (math.isfinite(value) and 0 <= value <= _MAX_TIME):
        raise ValueError(f"{where}: not a time in epoch seconds")
    return float(value)


def _opt_time(value: Any, where: str) -> float | None:
    return None if value is None else _time(value, where)


def _times(value: Any, where: str) -> tuple[float, ...]:
    return tuple(_time(t, f"{where}[]") for t in _list(value, where))
