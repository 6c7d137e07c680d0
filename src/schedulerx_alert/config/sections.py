"""The config's `silences:`, `routes:` and `receivers[*].quiet_hours`, read into records.

```yaml
silences:                    # times in the config's `timezone`
  - match: {group: etl, job_names: ["nightly-*"], kinds: [failed]}
    start: "2026-11-26 00:00"
    end: "2026-11-26 09:00"
    comment: warehouse migration
routes:                      # after each watch entry's own receivers; first match wins
  - match: {group: etl, kind: failed}
    receivers: [dba]
    continue: true           # ... unless it says to go on
    name: etl-failures       # optional; for quiet hours' except_routes
receivers:
  - name: ops
    quiet_hours:
      timezone: Asia/Shanghai    # default: the config's
      windows:
        - {days: weekdays, time: "00:00-08:00"}
        - {days: [sat, sun], time: "22:00-10:00"}   # crosses midnight
      except_kinds: [missed]     # still page
      except_jobs: [92583, "critical-*"]   # ids or name globs: still page
      except_routes: [etl-failures]        # what these routes send here still pages
```

`parse_sections` reports every problem with its path; config.py calls it while it
reads the rest of the file, so `Config.silences`, `.routes` and `.quiet_hours` hold
the records.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schedulerx_alert.config import Config, load_config
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
    from schedulerx_alert.config.source import ConfigSource  # a command's config read from OSS

DEFAULT_ZONE = "Asia/Shanghai"
MAX_SILENCES = 200
MAX_ROUTES = 200
MAX_WINDOWS = 28
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class Sections:
    silences: tuple[Silence, ...] = ()
    routes: tuple[Route, ...] = ()
    quiet_hours: Mapping[str, QuietHours] = field(default_factory=dict)  # by receiver name


def parse_sections(
    raw: Any, receivers: Collection[str], zone: str = DEFAULT_ZONE
) -> tuple[Sections, list[str]]:
    """The three sections of a raw config mapping, and every problem found in them.

    `receivers` are the names routes may use; `zone` is the config's `timezone`.
    """
    problems: list[str] = []
    top = raw if isinstance(raw, dict) else {}
    sections = Sections(
        silences=_silences(top.get("silences"), zone, problems),
        routes=_routes(top.get("routes"), receivers, problems),
    )
    names = {route.name for route in sections.routes if route.name}
    quiet_hours = _all_quiet_hours(top.get("receivers"), zone, names, problems)
    return replace(sections, quiet_hours=quiet_hours), problems


def load_with_sections(
    path: str | Path | ConfigSource, env: Mapping[str, str] | None = None
) -> tuple[Config, Sections]:
    """A config file, or a config's text read from OSS (config/text.py), with its
    silences, routes and quiet hours; raises ConfigError with every problem. config.py
    reads the sections itself now: kept for callers."""
    if isinstance(path, str | Path):
        config = load_config(path, env)
    else:
        config = path.parse(os.environ if env is None else env)
    return config, sections_of(config)


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
                f"{value[:60]!r} is not a time like '2026-11-26 09:00' (in {zone})"
            ) from None
    else:
        raise ValueError(f"must be a time like '2026-11-26 09:00', not {type(value).__name__}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.timestamp()


# -- silences ------------------------------------------------------------------------------------


def _silences(raw: Any, zone: str, problems: list[str]) -> tuple[Silence, ...]:
    items = _list(raw, "silences", MAX_SILENCES, problems)
    silences: list[Silence] = []
    for index, item in enumerate(items):
        path = f"silences[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{path}: must be a mapping, not {type(item).__name__}")
            continue
        before = len(problems)
        _unknown(item, {"match", "start", "end", "comment", "created_by"}, path, problems)
        matcher = parse_matcher(item.get("match"), f"{path}.match", problems)
        if matcher.is_empty and "match" in item:
            problems.append(f"{path}.match: names nothing; say which jobs or kinds to hold back")
        elif "match" not in item:
            problems.append(f"{path}.match: is required")
        start = _time(item, "start", path, zone, problems)
        end = _time(item, "end", path, zone, problems)
        if start is not None and end is not None and end <= start:
            problems.append(f"{path}.end: must be after start")
        comment = _string(item, "comment", path, MAX_COMMENT, problems)
        created_by = _string(item, "created_by", path, MAX_WHO, problems)
        if len(problems) > before or start is None or end is None:
            continue
        silences.append(
            Silence(
                id=path,
                matcher=matcher,
                start=start,
                end=end,
                comment=comment,
                created_by=created_by,
                source="config",
            )
        )
    return tuple(silences)


def _time(
    item: Mapping[str, Any], key: str, path: str, zone: str, problems: list[str]
) -> float | None:
    if item.get(key) is None:
        problems.append(f"{path}.{key}: is required")
        return None
    try:
        return parse_local_time(item[key], zone)
    except (ValueError, OverflowError) as exc:
        problems.append(f"{path}.{key}: {exc}")
        return None


# -- routes --------------------------------------------------------------------------------------


def _routes(raw: Any, receivers: Collection[str], problems: list[str]) -> tuple[Route, ...]:
    items = _list(raw, "routes", MAX_ROUTES, problems)
    routes: list[Route] = []
    named: dict[str, int] = {}  # route name -> index
    for index, item in enumerate(items):
        path = f"routes[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{path}: must be a mapping, not {type(item).__name__}")
            continue
        _unknown(item, {"match", "receivers", "continue", "name"}, path, problems)
        matcher = parse_matcher(item.get("match"), f"{path}.match", problems)
        names = item.get("receivers")
        if not isinstance(names, list) or not names:
            problems.append(f"{path}.receivers: must name at least one receiver")
            names = []
        chosen: list[str] = []
        for position, name in enumerate(names):
            here = f"{path}.receivers[{position}]"
            if not isinstance(name, str):
                problems.append(f"{here}: receiver names are strings, not {str(name)[:60]!r}")
            elif name not in receivers:
                problems.append(f"{here}: unknown receiver {name[:60]!r}")
            elif name not in chosen:
                chosen.append(name)
        go_on = item.get("continue", False)
        if not isinstance(go_on, bool):
            problems.append(f"{path}.continue: must be true or false")
            go_on = False
        name = _string(item, "name", path, MAX_TEXT, problems) or None
        if name is not None and name in named:
            problems.append(f"{path}.name: {name[:60]!r} already names routes[{named[name]}]")
        elif name is not None:
            named[name] = index
        routes.append(Route(matcher, tuple(chosen), go_on, name))
    return tuple(routes)


# -- quiet hours ---------------------------------------------------------------------------------


def _all_quiet_hours(
    raw: Any, zone: str, routes: Collection[str], problems: list[str]
) -> dict[str, QuietHours]:
    result: dict[str, QuietHours] = {}
    if not isinstance(raw, list):
        return result  # config.py reports a missing or malformed receivers list
    for index, receiver in enumerate(raw):
        if not isinstance(receiver, dict) or receiver.get("quiet_hours") is None:
            continue
        quiet = _quiet_hours(
            receiver["quiet_hours"], f"receivers[{index}].quiet_hours", zone, routes, problems
        )
        name = receiver.get("name")
        if quiet is not None and isinstance(name, str):
            result[name] = quiet
    return result


def _quiet_hours(
    raw: Any, path: str, zone: str, routes: Collection[str], problems: list[str]
) -> QuietHours | None:
    if not isinstance(raw, dict):
        problems.append(f"{path}: must be a mapping, not {type(raw).__name__}")
        return None
    before = len(problems)
    known = {"timezone", "windows", "except_kinds", "except_jobs", "except_routes"}
    _unknown(raw, known, path, problems)
    own_zone = raw.get("timezone", zone)
    if not _valid_zone(own_zone):
        problems.append(f"{path}.timezone: unknown time zone {str(own_zone)[:60]!r}")
    windows: list[QuietWindow] = []
    items = raw.get("windows")
    if not isinstance(items, list) or not items:
        problems.append(f"{path}.windows: must be a non-empty list of {{days, time}}")
        items = []
    elif len(items) > MAX_WINDOWS:
        problems.append(f"{path}.windows: at most {MAX_WINDOWS} windows, not {len(items)}")
        items = []
    for index, item in enumerate(items):
        window = _window(item, f"{path}.windows[{index}]", problems)
        if window is not None:
            windows.append(window)
    except_kinds = raw.get("except_kinds", [])
    kinds = except_kinds if isinstance(except_kinds, list) else [except_kinds]
    for kind in kinds:
        if not isinstance(kind, str) or kind not in KINDS:
            choices = ", ".join(sorted(KINDS))
            problems.append(f"{path}.except_kinds: unknown kind {kind!r} (one of: {choices})")
    except_jobs = _except_jobs(raw.get("except_jobs"), f"{path}.except_jobs", problems)
    except_routes = _except_routes(
        raw.get("except_routes"), f"{path}.except_routes", routes, problems
    )
    if len(problems) > before:
        return None
    return QuietHours(tuple(windows), str(own_zone), frozenset(kinds), except_jobs, except_routes)


def _except_jobs(raw: Any, path: str, problems: list[str]) -> Matcher:
    """Job ids and name globs in one list, read as a matcher's `jobs` and `job_names`."""
    if raw is None:
        return Matcher()
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        problems.append(f"{path}: is empty; leave it out, or list job ids and name globs")
        return Matcher()
    ids = [i for i in items if not isinstance(i, str) or _is_id(i)]
    globs = [i for i in items if isinstance(i, str) and not _is_id(i)]
    found: list[str] = []
    jobs = parse_matcher({"jobs": ids} if ids else {}, path, found)
    names = parse_matcher({"job_names": globs} if globs else {}, path, found)
    # parse_matcher names the key it read; the config has one list.
    for problem in found:
        for key in ("jobs", "job_names"):
            problem = problem.replace(f"{path}.{key}:", f"{path}:")
        problems.append(problem)
    return replace(jobs, job_names=names.job_names)


def _is_id(text: str) -> bool:
    return text.isdigit() and len(text) <= 19


def _except_routes(
    raw: Any, path: str, routes: Collection[str], problems: list[str]
) -> frozenset[str]:
    if raw is None:
        return frozenset()
    items = raw if isinstance(raw, list) else [raw]
    names: set[str] = set()
    for position, name in enumerate(items):
        here = f"{path}[{position}]"
        if not isinstance(name, str):
            problems.append(f"{here}: route names are strings, not {str(name)[:60]!r}")
        elif name not in routes:
            named = ", ".join(sorted(routes)) or "no route has a name"
            problems.append(f"{here}: no route is named {name[:60]!r} ({named})")
        else:
            names.add(name)
    return frozenset(names)


def _window(raw: Any, path: str, problems: list[str]) -> QuietWindow | None:
    if not isinstance(raw, dict):
        problems.append(f"{path}: must be a mapping like {{days: weekdays, time: 00:00-08:00}}")
        return None
    _unknown(raw, {"days", "time"}, path, problems)
    days = _days(raw.get("days"), f"{path}.days", problems)
    span = raw.get("time")
    start = end = None
    if isinstance(span, str) and span.count("-") == 1:
        first, last = span.split("-")
        start, end = _minute(first), _minute(last)
    if start is None or end is None or start == MINUTES_A_DAY:
        problems.append(f"{path}.time: must be HH:MM-HH:MM such as 00:00-08:00, not {span!r}")
        return None
    if start == end:
        problems.append(f"{path}.time: {span} is empty; for a whole day write 00:00-24:00")
        return None
    if days is None:
        return None
    return QuietWindow(days, start, end)


def _days(raw: Any, path: str, problems: list[str]) -> frozenset[int] | None:
    items = raw if isinstance(raw, list) else [raw]
    days: set[int] = set()
    for item in items:
        name = item.lower() if isinstance(item, str) else ""
        if name in DAY_SETS:
            days |= DAY_SETS[name]
        elif name in DAY_NAMES:
            days.add(DAY_NAMES.index(name))
        elif name in _FULL_DAYS:
            days.add(_FULL_DAYS.index(name))
        else:
            problems.append(
                f"{path}: {item!r} is not a day (mon..sun, weekdays, weekends or daily)"
            )
            return None
    if not days:
        problems.append(f"{path}: is required (mon..sun, weekdays, weekends or daily)")
        return None
    return frozenset(days)


def _minute(text: str) -> int | None:
    hours, _, minutes = text.strip().partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2 and len(hours) <= 2):
        return None
    value = int(hours) * 60 + int(minutes)
    if int(minutes) >= 60 or value > MINUTES_A_DAY:
        return None
    return value


# -- helpers -------------------------------------------------------------------------------------


def _list(raw: Any, path: str, limit: int, problems: list[str]) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(f"{path}: must be a list, not {type(raw).__name__}")
        return []
    if len(raw) > limit:
        problems.append(f"{path}: at most {limit} entries, not {len(raw)}")
        return []
    return raw


def _unknown(item: Mapping[Any, Any], known: set[str], path: str, problems: list[str]) -> None:
    for key in item:
        if key not in known:
            problems.append(f"{path}.{str(key)[:60]}: unknown key")


def _string(item: Mapping[str, Any], key: str, path: str, limit: int, problems: list[str]) -> str:
    value = item.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.append(f"{path}.{key}: must be a string, not {type(value).__name__}")
        return ""
    if len(value) > limit:
        problems.append(f"{path}.{key}: at most {limit} characters, not {len(value)}")
        return ""
    return value


def _valid_zone(zone: Any) -> bool:
    if not isinstance(zone, str) or not zone:
        return False
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
