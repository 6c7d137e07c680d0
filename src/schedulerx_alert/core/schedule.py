"""When a SchedulerX job fires, from its ``TimeConfig``.

SchedulerX writes crons the Quartz way: a seconds field first, ``?``, ``L``, ``W``, ``#``, an
optional year, and days of the week numbered 1 (SUN) to 7 (SAT). croniter reads the same
shapes but numbers the days of the week 0 (SUN) to 6 (SAT), so Quartz's ``6#3`` (the third
Friday) is the third Saturday to croniter. This adapter checks each field against what Quartz
allows, rewrites the day-of-week numbers (and the few spellings the two read differently), and
leaves every date computation to croniter.

Pure: no I/O and no clock reads. Times are epoch seconds; a cron is read in ``zone``.

Where a zone changes its clocks, croniter counts real time: a cron that names a time skipped
in spring fires once, at the end of the gap, and a time repeated in autumn fires twice.
Quartz works on wall-clock fields through java.util.Calendar and probably differs on both
days (not verified). China has no daylight saving time; elsewhere a planner should not rely
on a fire to the minute on those two days.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from enum import IntEnum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schedulerx_alert.core.isotime import parse_iso

if TYPE_CHECKING:
    from croniter import croniter

#: How many fires :meth:`Schedule.fires_between` returns unless told otherwise.
DEFAULT_LIMIT = 1000
# Quartz's year field spans 1970-2099. croniter gives up after 50 years without a match
# unless told otherwise, which would hide a job that fires once, in 2090.
_MAX_YEARS = 130


class TimeType(IntEnum):
    """``TimeConfig.TimeType`` of a SchedulerX job."""

    NONE = -1
    CRON = 1
    FIXED_RATE = 3
    SECOND_DELAY = 4
    ONE_TIME = 5
    API = 100


class ScheduleError(ValueError):
    """A ``TimeConfig`` that does not describe fire times; the message names the expression."""

    def __init__(self, time_type: int, expression: str, reason: str) -> None:
        try:
            kind = TimeType(time_type).name.lower()
        except ValueError:
            kind = "unknown"
        super().__init__(f"TimeType {time_type} ({kind}) expression {expression!r}: {reason}")
        self.time_type = time_type
        self.expression = expression
        self.reason = reason


class UnsupportedScheduleError(ScheduleError):
    """Valid for SchedulerX but not computable here (Quartz ``LW``, ``L-3``): the caller
    should watch such a job without a schedule rather than guess its fires."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """The fire times of one job.

    ``exact`` is False when the fires here are a guide, not the job's own:
    a fixed rate whose phase is unknown (fires every ``period`` seconds, but not necessarily
    at these instants; :meth:`with_anchor` fixes the phase from one observed fire), a second
    delay (the next run starts ``period`` seconds after the previous one *ends*, so real fires
    are at least ``period`` apart and usually later than these), and a cron restricted by a
    custom ``Calendar`` (these fires are a superset of the job's).
    """

    kind: TimeType
    expression: str
    zone: tzinfo
    exact: bool = True
    #: Seconds between fires of a fixed rate or second delay; None for the other kinds.
    period: float | None = None
    #: One fire of a fixed rate or second delay (their grid's phase).
    anchor: float = 0.0
    #: When a one-time job fires.
    at: float | None = None
    #: The cron as croniter reads it (day-of-week numbers rewritten).
    cron: str = ""

    @classmethod
    def from_time_config(
        cls,
        time_type: int,
        expression: str | None,
        zone: tzinfo | str,
        *,
        calendar: str = "",
        anchor: float | None = None,
    ) -> Schedule:
        """Read a job's ``TimeType`` and ``TimeExpression``; raise :class:`ScheduleError`.

        ``zone`` is the zone crons and one-time dates are read in. ``calendar`` is
        ``TimeConfig.Calendar``: a custom calendar only removes fires, so a cron with one is
        kept, marked inexact. ``anchor`` is one known fire of a fixed rate or second delay.
        """
        text = (expression or "").strip()
        tz = _zone(zone, time_type, text)
        try:
            kind = TimeType(time_type)
        except ValueError:
            raise ScheduleError(
                time_type, text, "unknown TimeType (known: -1, 1, 3, 4, 5, 100)"
            ) from None
        if kind in (TimeType.API, TimeType.NONE):
            return cls(kind, text, tz)
        if kind is TimeType.CRON:
            cron = quartz_to_croniter(text)
            return cls(kind, text, tz, exact=not calendar.strip(), cron=cron)
        if kind is TimeType.ONE_TIME:
            return cls(kind, text, tz, at=_one_time(text, tz))
        period = _seconds(kind, text)
        exact = kind is TimeType.FIXED_RATE and anchor is not None
        return cls(kind, text, tz, exact=exact, period=period, anchor=anchor or 0.0)

    def with_anchor(self, fire: float) -> Schedule:
        """The same fixed rate (or second delay) phased on one fire seen on the server."""
        if self.period is None:
            return self
        return replace(self, anchor=fire, exact=self.kind is TimeType.FIXED_RATE)

    @property
    def fires(self) -> bool:
        """False for jobs that never fire by themselves (API-triggered, no schedule)."""
        return self.kind not in (TimeType.API, TimeType.NONE)

    def next_fire(self, after: float) -> float | None:
        """The first fire strictly after ``after``, or None if there is none."""
        if self.cron:
            return _cron_step(self.cron, self.zone, after, forward=True)
        if self.period is not None:
            return self._grid_after(after)
        if self.at is not None and self.at > after:
            return self.at
        return None

    def prev_fire(self, at_or_before: float) -> float | None:
        """The last fire at or before ``at_or_before``, or None if there is none."""
        if self.cron:
            # croniter steps back strictly; cron fires fall on whole seconds.
            return _cron_step(self.cron, self.zone, math.floor(at_or_before) + 1, forward=False)
        if self.period is not None:
            return self._grid_after(at_or_before) - self.period
        if self.at is not None and self.at <= at_or_before:
            return self.at
        return None

    def fires_between(self, after: float, until: float, limit: int = DEFAULT_LIMIT) -> list[float]:
        """The fires in ``(after, until]``, earliest first, at most ``limit`` of them."""
        fires: list[float] = []
        if until <= after or limit <= 0:
            return fires
        if self.cron:
            from croniter import CroniterBadDateError  # loaded by _parsed

            with _PARSED_LOCK:
                iterator = _parsed(self.cron)
                start: datetime | None = datetime.fromtimestamp(after, self.zone)
                while len(fires) < limit:
                    try:
                        fire = iterator.get_next(float, start)
                    except CroniterBadDateError:
                        break
                    if fire > until:
                        break
                    fires.append(fire)
                    start = None  # go on from this fire
            return fires
        first = self.next_fire(after)
        if first is None or first > until:
            return fires
        if self.period is None:  # one-time
            return [first]
        fire = first
        while fire <= until and len(fires) < limit:
            fires.append(fire)
            fire = first + len(fires) * self.period  # no drift from repeated additions
        return fires

    def _grid_after(self, after: float) -> float:
        assert self.period is not None
        steps = math.floor((after - self.anchor) / self.period) + 1
        fire = self.anchor + steps * self.period
        # Float division can land one step short or long of the true grid point.
        if fire <= after:
            fire += self.period
        elif fire - self.period > after:
            fire -= self.period
        return fire


# -- cron: Quartz -> croniter ----------------------------------------------------------------

_FIELDS = ("second", "minute", "hour", "day-of-month", "month", "day-of-week", "year")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
# What Quartz (and SchedulerX's cron page) allows in each field. Checking it here keeps
# croniter's own extensions (H, R, @daily, 5 fields) out, and lets errors name the field.
_ALLOWED = {
    "second": re.compile(r"[0-9*,/-]+"),
    "minute": re.compile(r"[0-9*,/-]+"),
    "hour": re.compile(r"[0-9*,/-]+"),
    "day-of-month": re.compile(r"\?|[0-9*,/LW-]+"),
    "month": re.compile(r"[0-9A-Z*,/-]+"),
    "day-of-week": re.compile(r"\?|[0-9A-Z*,/#-]+"),
    "year": re.compile(r"[0-9*,/-]+"),
}
_DAY_ITEM = re.compile(
    r"(?P<a>\d+|[A-Z]{3})(?:-(?P<b>\d+|[A-Z]{3}))?(?:(?P<op>[/#])(?P<n>\d+)|(?P<l>L))?"
)
_EQUAL_RANGE = re.compile(r"(\d+)-(\d+)(?:/\d+)?")


def quartz_to_croniter(expression: str) -> str:
    """The croniter spelling of a Quartz cron; :class:`ScheduleError` if it is not one.

    Fields keep their order (croniter reads them with ``second_at_beginning``); only the
    day-of-week numbers move down by one, month names become numbers, and an equal range
    such as ``2-2`` becomes ``2`` (croniter reads ``a-a`` as the whole cycle, Quartz as ``a``).
    """
    fields = expression.upper().split()
    if len(fields) not in (6, 7):
        raise ScheduleError(
            TimeType.CRON,
            expression,
            f"a Quartz cron has 6 or 7 fields (second minute hour day-of-month month "
            f"day-of-week [year]), not {len(fields)}",
        )
    for name, value in zip(_FIELDS, fields, strict=False):  # the year is optional
        if not _ALLOWED[name].fullmatch(value):
            raise ScheduleError(TimeType.CRON, expression, f"{name} field {value!r} is not Quartz")
    dom, dow = fields[3], fields[5]
    if "LW" in dom or "L-" in dom:
        raise UnsupportedScheduleError(
            TimeType.CRON, expression, f"day-of-month {dom!r} (LW, L-n) is not supported"
        )
    if dom not in ("?", "*") and dow not in ("?", "*"):
        raise ScheduleError(
            TimeType.CRON,
            expression,
            "Quartz needs '?' in day-of-month or day-of-week when the other one is set",
        )
    fields[4] = ",".join(_month_item(expression, item) for item in fields[4].split(","))
    fields[5] = ",".join(_day_item(expression, item) for item in dow.split(","))
    fields = [",".join(_no_equal_range(item) for item in f.split(",")) for f in fields]
    translated = " ".join(fields)
    try:
        _parsed(translated)
    except (ValueError, TypeError) as error:  # croniter's errors are ValueErrors
        reason = str(error).replace(f"[{translated.lower()}]", "").replace(translated, "")
        raise ScheduleError(TimeType.CRON, expression, reason.strip(" .") or "invalid") from None
    return translated


def _month_item(expression: str, item: str) -> str:
    def number(match: re.Match[str]) -> str:
        name = match.group(0)
        if name not in _MONTHS:
            raise ScheduleError(TimeType.CRON, expression, f"month {name!r} is not one of JAN-DEC")
        return str(_MONTHS.index(name) + 1)

    return re.sub(r"[A-Z]+", number, item)


def _day_item(expression: str, item: str) -> str:
    """One comma-separated day-of-week item, from Quartz (1=SUN) to croniter (0=SUN)."""
    if item in ("?", "*") or re.fullmatch(r"\*/\d+", item):
        return item
    if item == "L":  # alone, Quartz's L is the last day of the week: Saturday
        return "6"
    match = _DAY_ITEM.fullmatch(item)
    if match is None:
        raise ScheduleError(TimeType.CRON, expression, f"day-of-week item {item!r} is not Quartz")
    first = _day(expression, match["a"])
    last = None if match["b"] is None else _day(expression, match["b"])
    if (match["l"] or match["op"] == "#") and last is not None:
        raise ScheduleError(
            TimeType.CRON, expression, f"day-of-week item {item!r}: L and # take one day"
        )
    if match["l"]:
        return f"L{first}"  # croniter spells "the last Friday" L5, Quartz 6L
    days = str(first) if last is None else f"{first}-{last}"
    return f"{days}{match['op']}{match['n']}" if match["op"] else days


def _day(expression: str, token: str) -> int:
    if token in _DAYS:
        return _DAYS.index(token)
    if token.isdigit() and 1 <= int(token) <= 7:
        return int(token) - 1
    raise ScheduleError(
        TimeType.CRON,
        expression,
        f"day-of-week {token!r} is not 1-7 or SUN-SAT (Quartz counts 1=SUN to 7=SAT)",
    )


def _no_equal_range(item: str) -> str:
    match = _EQUAL_RANGE.fullmatch(item)
    if match and int(match[1]) == int(match[2]):
        return str(int(match[1]))
    return item


# Parsing is most of croniter's cost (about 50 of the 90 us of a first next fire), so each
# distinct cron is parsed once and its iterator reused. An iterator keeps its position between
# calls; every call below restarts it from its own start time (which also sets the zone),
# under one lock, so sharing it across threads is safe.
_PARSED_LOCK = threading.Lock()


@functools.lru_cache(maxsize=4096)
def _parsed(cron: str) -> croniter[float]:
    # croniter (with dateutil) is about a tenth of a cold start's imports: it loads with
    # the first cron read, so a tick whose jobs have no cron schedule never pays for it.
    from croniter import croniter

    return croniter(
        cron, 0.0, ret_type=float, second_at_beginning=True, max_years_between_matches=_MAX_YEARS
    )


def _cron_step(cron: str, zone: tzinfo, start: float, *, forward: bool) -> float | None:
    from croniter import CroniterBadDateError  # loaded by _parsed

    moment = datetime.fromtimestamp(start, zone)
    with _PARSED_LOCK:
        iterator = _parsed(cron)
        try:
            if forward:
                return iterator.get_next(float, moment)
            return iterator.get_prev(float, moment)
        except CroniterBadDateError:
            return None


# -- the other kinds -------------------------------------------------------------------------


def _zone(zone: tzinfo | str, time_type: int, expression: str) -> tzinfo:
    if not isinstance(zone, str):
        return zone
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(time_type, expression, f"unknown time zone {zone!r}") from None


def _seconds(kind: TimeType, text: str) -> float:
    if not text.isdigit() or int(text) == 0:
        raise ScheduleError(kind, text, "expected a whole number of seconds, at least 1")
    return float(int(text))


def _one_time(text: str, zone: tzinfo) -> float:
    """``yyyy-MM-dd HH:mm:ss`` in ``zone`` (or ISO 8601 with an offset), or epoch s/ms."""
    if text.isdigit():
        value = int(text)
        return value / 1000 if value >= 10**11 else float(value)
    try:
        moment = parse_iso(text)
    except ValueError:
        raise ScheduleError(
            TimeType.ONE_TIME,
            text,
            "expected 'yyyy-MM-dd HH:mm:ss' or an epoch timestamp in ms",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()
