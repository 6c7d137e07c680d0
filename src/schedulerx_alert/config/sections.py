"""The config's `silences:`, `routes:` and `receivers[*].quiet_hours`: described records
(config/schema.py; docs/config-reference.md) read into core's Silence, Route and
QuietHours.

config/__init__.py calls `read_sections` while it reads the rest of the file (after the
receivers, whose names routes use), so every problem comes with the others, each with
its path, and `Config.silences`, `.routes` and `.quiet_hours` hold the records. A silence
or quiet hours with any problem is left out; the config is refused anyway.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from schedulerx_alert.config.records import timezone
from schedulerx_alert.config.schema import (
    Invalid,
    Missing,
    Reader,
    Walker,
    boolean,
    option,
    show,
)
from schedulerx_alert.core.isotime import parse_iso
from schedulerx_alert.core.route import Route
from schedulerx_alert.core.silence import (
    DAY_NAMES,
    DAY_SETS,
    KINDS,
    MAX_COMMENT,
    MAX_TEXT,
    MAX_WHO,
    MINUTES_A_DAY,
    Matcher,
    QuietHours,
    QuietWindow,
    Silence,
    parse_matcher,
)

if TYPE_CHECKING:
    from schedulerx_alert.config import Config

MAX_SILENCES = 200
MAX_ROUTES = 200
MAX_WINDOWS = 28
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAYS_HINT = "mon..sun, weekdays, weekends or daily"
_MATCH_DOC = "namespace, group, jobs, job_names, kinds, trigger_types: each one named must match"


@dataclass(frozen=True)
class Sections:
    silences: tuple[Silence, ...] = ()
    routes: tuple[Route, ...] = ()
    quiet_hours: Mapping[str, QuietHours] = field(default_factory=dict)  # by receiver name


def sections_of(config: Config) -> Sections:
    return Sections(config.silences, config.routes, config.quiet_hours)


def parse_local_time(value: Any, zone: str) -> float:
    """Epoch seconds for `2026-11-26 09:00` (in `zone`), an ISO time with an offset,
    or a date or datetime YAML made; ValueError says what is wrong."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time(0))
    elif isinstance(value, str):
        try:
            moment = parse_iso(value.strip())
        except ValueError:
            raise ValueError(
                f"{show(value)} is not a time like '2026-11-26 09:00' (in {zone})"
            ) from None
    else:
        raise ValueError(f"must be a time like '2026-11-26 09:00', not {show(value)}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.timestamp()


# -- readers -------------------------------------------------------------------


def matcher(walker: Walker, value: Any, path: str) -> Matcher:
    """A matcher (core/silence.py reads it, each problem with its path)."""
    return parse_matcher(value, path, walker.problems)


def silence_match(walker: Walker, value: Any, path: str) -> Matcher:
    if value is None:
        raise Missing
    before = len(walker.problems)
    found = matcher(walker, value, path)
    if found.is_empty and len(walker.problems) == before:
        raise Invalid("names nothing; say which jobs or kinds to hold back")
    return found


def local_time(walker: Walker, value: Any, path: str) -> float:
    if value is None:
        raise Missing
    try:
        return parse_local_time(value, walker.timezone)
    except (ValueError, OverflowError) as exc:
        raise Invalid(str(exc)) from None


def note(limit: int) -> Reader:
    """A line of text of at most `limit` characters; null counts as absent."""

    def read(walker: Walker, value: Any, path: str) -> str:
        if value is None:
            raise Missing
        if not isinstance(value, str):
            raise Invalid(f"must be a string, not {show(value)}")
        if len(value) > limit:
            raise Invalid(f"at most {limit} characters, not {len(value)}")
        return value

    return read


def route_receivers(walker: Walker, value: Any, path: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise Invalid("must name at least one receiver")
    chosen: list[str] = []
    for index, name in enumerate(value):
        here = f"{path}[{index}]"
        if not isinstance(name, str):
            walker.fail(here, f"receiver names are strings, not {show(name)}")
        elif name not in walker.declared:
            walker.fail(here, f"unknown receiver {show(name)}")
        elif name not in chosen:
            chosen.append(name)
    return tuple(chosen)


def route_name(walker: Walker, value: Any, path: str) -> str:
    name: str = note(MAX_TEXT)(walker, value, path)
    if not name:
        raise Missing
    return name


def days(walker: Walker, value: Any, path: str) -> frozenset[int]:
    if value is None:
        raise Invalid(f"is required ({_DAYS_HINT})")
    found: set[int] = set()
    for item in value if isinstance(value, list) else [value]:
        name = item.lower() if isinstance(item, str) else ""
        if name in DAY_SETS:
            found |= DAY_SETS[name]
        elif name in DAY_NAMES:
            found.add(DAY_NAMES.index(name))
        elif name in _FULL_DAYS:
            found.add(_FULL_DAYS.index(name))
        else:
            raise Invalid(f"{show(item)} is not a day ({_DAYS_HINT})")
    if not found:
        raise Invalid(f"is required ({_DAYS_HINT})")
    return frozenset(found)


def clock_span(walker: Walker, value: Any, path: str) -> tuple[int, int]:
    """`HH:MM-HH:MM` -> minutes after midnight, from and to (24:00 ends a day)."""
    start = end = None
    if isinstance(value, str) and value.count("-") == 1:
        first, last = value.split("-")
        start, end = _minute(first), _minute(last)
    if start is None or end is None or start == MINUTES_A_DAY:
        raise Invalid(f"must be HH:MM-HH:MM such as 00:00-08:00, not {show(value)}")
    if start == end:
        raise Invalid(f"{value} is empty; for a whole day write 00:00-24:00")
    return start, end


def _minute(text: str) -> int | None:
    hours, _, minutes = text.strip().partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2 and len(hours) <= 2):
        return None
    value = int(hours) * 60 + int(minutes)
    if int(minutes) >= 60 or value > MINUTES_A_DAY:
        return None
    return value


@dataclass(frozen=True)
class WindowEntry:
    """One of a receiver's weekly quiet windows."""

    days: frozenset[int] = option(
        read=days,
        doc="the days it begins: mon..sun, weekdays, weekends, daily, or a list",
        example="[sat, sun]",
    )
    time: tuple[int, int] = option(
        read=clock_span,
        doc="HH:MM-HH:MM; may cross midnight; 00:00-24:00: the whole day",
        example='"22:00-10:00"',
    )


def windows(walker: Walker, value: Any, path: str) -> tuple[QuietWindow, ...]:
    if not isinstance(value, list) or not value:
        raise Invalid("must be a non-empty list of {days, time}")
    if len(value) > MAX_WINDOWS:
        raise Invalid(f"at most {MAX_WINDOWS} windows, not {len(value)}")
    found: list[QuietWindow] = []
    for index, item in enumerate(value):
        here = f"{path}[{index}]"
        if not isinstance(item, dict):
            walker.fail(here, "must be a mapping like {days: weekdays, time: 00:00-08:00}")
            continue
        window = walker.record(WindowEntry, item, here)
        if window is not None:
            found.append(QuietWindow(window.days, *window.time))
    return tuple(found)


def except_kinds(walker: Walker, value: Any, path: str) -> frozenset[str]:
    if value is None:
        raise Missing
    found: set[str] = set()
    for kind in value if isinstance(value, list) else [value]:
        if isinstance(kind, str) and kind in KINDS:
            found.add(kind)
        else:
            walker.fail(path, f"unknown kind {show(kind)} (one of: {', '.join(sorted(KINDS))})")
    return frozenset(found)


def except_jobs(walker: Walker, value: Any, path: str) -> Matcher:
    """Job ids and name globs in one list, read as a matcher's `jobs` and `job_names`."""
    if value is None:
        raise Missing
    items = value if isinstance(value, list) else [value]
    if not items:
        raise Invalid("is empty; leave it out, or list job ids and name globs")
    ids = [i for i in items if not isinstance(i, str) or _is_id(i)]
    globs = [i for i in items if isinstance(i, str) and not _is_id(i)]
    found: list[str] = []
    jobs = parse_matcher({"jobs": ids} if ids else {}, path, found)
    names = parse_matcher({"job_names": globs} if globs else {}, path, found)
    # parse_matcher names the key it read; the config has one list.
    for problem in found:
        for key in ("jobs", "job_names"):
            problem = problem.replace(f"{path}.{key}:", f"{path}:")
        walker.problems.append(problem)
    return replace(jobs, job_names=names.job_names)


def _is_id(text: str) -> bool:
    return text.isdigit() and len(text) <= 19


def except_routes(walker: Walker, value: Any, path: str) -> frozenset[str]:
    if value is None:
        raise Missing
    names: set[str] = set()
    for index, name in enumerate(value if isinstance(value, list) else [value]):
        here = f"{path}[{index}]"
        if not isinstance(name, str):
            walker.fail(here, f"route names are strings, not {show(name)}")
        elif name not in walker.route_names:
            named = ", ".join(sorted(walker.route_names)) or "no route has a name"
            walker.fail(here, f"no route is named {show(name)} ({named})")
        else:
            names.add(name)
    return frozenset(names)


# -- records -------------------------------------------------------------------


@dataclass(frozen=True)
class SilenceEntry:
    """One `silences:` entry; it becomes a Silence whose id is its path."""

    match: Matcher = option(  # noqa: RUF009 (a field, as field() is)
        read=silence_match,
        doc=f"what it holds back: {_MATCH_DOC}",
        example='{group: etl, job_names: ["nightly-*"], kinds: [failed]}',
    )
    start: float = option(
        read=local_time,
        doc="in the config's `timezone`, or ISO 8601 with Z or an offset",
        example='"2026-11-26 00:00"',
    )
    end: float = option(read=local_time, doc="after start; likewise", example='"2026-11-26 09:00"')
    comment: str = option(
        "",
        read=note(MAX_COMMENT),
        doc="why: shown with what it holds back",
        example="warehouse migration",
    )
    created_by: str = option("", read=note(MAX_WHO), doc="who asked for it", example="alice")


@dataclass(frozen=True, kw_only=True)
class RouteEntry:
    """One `routes:` entry (core's Route)."""

    match: Matcher = option(  # noqa: RUF009
        Matcher(),
        read=matcher,
        doc=f"which findings it takes (default: every one); {_MATCH_DOC}",
        example="{group: etl, kind: failed}",
    )
    receivers: tuple[str, ...] = option(
        read=route_receivers, doc="receiver names from `receivers`", example="[dba]"
    )
    go_on: bool = option(
        False,
        read=boolean,
        key="continue",
        doc="on to the next routes after a match (false: first match wins)",
    )
    name: str | None = option(
        None, read=route_name, doc="for quiet hours' except_routes", example="etl-failures"
    )


@dataclass(frozen=True, kw_only=True)
class QuietHoursEntry:
    """A receiver's `quiet_hours` (core's QuietHours)."""

    timezone: str | None = option(
        None, read=timezone, doc="default: the config's `timezone`", example="Asia/Shanghai"
    )
    windows: tuple[QuietWindow, ...] = option(
        read=windows,
        doc=f"weekly windows of {{days, time}} (below), at most {MAX_WINDOWS}",
        example='[{days: weekdays, time: "00:00-08:00"}]',
    )
    except_kinds: frozenset[str] = option(
        frozenset(), read=except_kinds, doc="alert kinds that still page", example="[missed]"
    )
    except_jobs: Matcher = option(  # noqa: RUF009
        Matcher(),
        read=except_jobs,
        doc="jobs that still page: ids, or globs over the job's name (default: none)",
        example='[92583, "critical-*"]',
    )
    except_routes: frozenset[str] = option(
        frozenset(),
        read=except_routes,
        doc="what these named routes send here still pages",
        example="[etl-failures]",
    )


# -- the sections ----------------------------------------------------------------


def read_sections(walker: Walker, top: Mapping[str, Any]) -> Sections:
    """The three sections of a config's top level; every problem told to `walker`, whose
    `timezone` and `declared` receivers are the config's."""
    silences = read_silences(walker, top.get("silences"))
    routes = read_routes(walker, top.get("routes"))
    walker.route_names = {route.name for route in routes if route.name}
    return Sections(silences, routes, read_quiet_hours(walker, top.get("receivers")))


def read_silences(walker: Walker, raw: Any) -> tuple[Silence, ...]:
    silences: list[Silence] = []
    for path, item in _entries(walker, raw, "silences", MAX_SILENCES):
        before = len(walker.problems)
        values, complete = walker.values(SilenceEntry, item, path)
        start, end = values.get("start"), values.get("end")
        if start is not None and end is not None and end <= start:
            walker.fail(f"{path}.end", "must be after start")
        if not complete or len(walker.problems) > before:
            continue
        entry = SilenceEntry(**values)
        silences.append(
            Silence(
                id=path,
                matcher=entry.match,
                start=entry.start,
                end=entry.end,
                comment=entry.comment,
                created_by=entry.created_by,
                source="config",
            )
        )
    return tuple(silences)


def read_routes(walker: Walker, raw: Any) -> tuple[Route, ...]:
    """Every route, a bad one too: its name still counts for except_routes."""
    routes: list[Route] = []
    named: dict[str, str] = {}  # route name -> the path of the route it names
    for path, item in _entries(walker, raw, "routes", MAX_ROUTES):
        values, _ = walker.values(RouteEntry, item, path)
        name = values.get("name")
        if name in named:
            walker.fail(f"{path}.name", f"{show(name)} already names {named[name]}")
        elif name is not None:
            named[name] = path
        routes.append(
            Route(
                values.get("match", Matcher()),
                values.get("receivers", ()),
                values.get("go_on", False),
                name,
            )
        )
    return tuple(routes)


def read_quiet_hours(walker: Walker, receivers: Any) -> dict[str, QuietHours]:
    """Each receiver's quiet hours, by its name; config/__init__.py reads the rest of a
    receiver, and reports a missing or malformed list."""
    result: dict[str, QuietHours] = {}
    for index, receiver in enumerate(receivers if isinstance(receivers, list) else []):
        if not isinstance(receiver, dict) or receiver.get("quiet_hours") is None:
            continue
        raw, path = receiver["quiet_hours"], f"receivers[{index}].quiet_hours"
        if not isinstance(raw, dict):
            walker.fail(path, f"must be a mapping, not {show(raw)}")
            continue
        before = len(walker.problems)
        quiet = walker.record(QuietHoursEntry, raw, path)
        name = receiver.get("name")
        if quiet is None or len(walker.problems) > before or not isinstance(name, str):
            continue
        result[name] = QuietHours(
            quiet.windows,
            quiet.timezone or walker.timezone,
            quiet.except_kinds,
            quiet.except_jobs,
            quiet.except_routes,
        )
    return result


def _entries(
    walker: Walker, raw: Any, path: str, limit: int
) -> Iterator[tuple[str, dict[Any, Any]]]:
    """A list section's mappings, each with its path, in order; an entry that is none is
    refused where it stands."""
    if raw is None:
        return
    if not isinstance(raw, list):
        walker.fail(path, f"must be a list, not {show(raw)}")
        return
    if len(raw) > limit:
        walker.fail(path, f"at most {limit} entries, not {len(raw)}")
        return
    for index, item in enumerate(raw):
        here = f"{path}[{index}]"
        if isinstance(item, dict):
            yield here, item
        else:
            walker.fail(here, f"must be a mapping, not {show(item)}")
