"""Reading one GetJobInstanceList answer, run by run.

An answer is data from outside. Every run that can be understood becomes a
`JobInstance`; every one that cannot becomes an `EntryProblem` naming the job,
the field and its value, so one odd run never hides the runs listed beside it.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import functools
import math
import re
import reprlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from schedulerx_alert.core.isotime import parse_iso
from schedulerx_alert.core.model import InstanceStatus, JobInstance, JobKey

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# InstanceId is a Java long, Status a Java int.
_LONG_MAX = 2**63 - 1
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
# A time outside these years is garbage, not a run. Inside them, epoch seconds
# (about 2e9 today) and milliseconds (about 2e12) cannot be confused.
_EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc).timestamp()
_LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc).timestamp()
_INTEGER = re.compile(r"[+-]?\d{1,20}")
_NUMBER = re.compile(r"[+-]?\d{1,20}(?:\.\d{1,9})?")
SHOWN = 80
_MISSING = object()
# The most runs of one job one answer is read into (a job's answer lists 10 by default),
# and the most entries of one group query's answer (a page of at most some hundred runs).
# Every run read is some hundred microseconds of parsing, a record in the state and a run
# the rules walk every tick: one answer of 20,000 runs made a 14 MB state and ticks of 8
# to 23 s. Over them, the runs that ended well go first, oldest first; a failed or
# unfinished run is left out only when more of them than this are listed, and then the
# problem says so (it deafens the tick).
MAX_RUNS_PER_JOB = 200
MAX_ENTRIES_PER_ANSWER = 2000

# A bounded repr: a 10 MB string or a 900-deep list costs nothing to show.
_repr = reprlib.Repr()
_repr.maxstring = SHOWN
_repr.maxother = SHOWN
_repr.maxlong = SHOWN
_repr.maxlevel = 3


def show(value: object) -> str:
    """A value as a problem report shows it: its repr, cut short."""
    if value is _MISSING:
        return "(missing)"
    try:
        text = _repr.repr(value)
    except ValueError:
        # repr() itself refuses ints of more than 4300 digits.
        return f"(a {type(value).__name__} too large to show)"
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


def cut(text: str) -> str:
    """Text as a problem report shows it: one line, cut short."""
    line = " ".join(text.split())
    return line if len(line) <= SHOWN else line[: SHOWN - 3] + "..."


class Unreadable(ValueError):
    """A value this version cannot understand; the message says why."""


class AnswerUnreadable(Exception):
    """The answer as a whole lists no runs that could be looked for."""


# What became of the run an EntryProblem is about.
SKIPPED = "skipped"  # left out: its id, status or end time could not be read
CUT = "cut"  # runs that ended well left out, over a cap (MAX_RUNS_PER_JOB, ...)
KEPT = "kept"  # kept without the value
DUPLICATE = "duplicate"  # a second copy of a run that counts once
UNKNOWN = "unknown"  # kept in a status this version does not know, never alerted on
_OUTCOMES = {
    SKIPPED: "run left out",
    KEPT: "run kept without it",
    DUPLICATE: "copy left out, the run counts once",
    UNKNOWN: "run kept, never alerted on",
    CUT: "runs that ended well left out",
}


@dataclass(frozen=True)
class EntryProblem:
    """One value of one listed run that could not be understood."""

    job: JobKey
    field: str  # a path into the answer: "JobInstanceDetails[2].Status"
    value: str  # cut short by `show`
    reason: str
    instance_id: int | None = None
    outcome: str = SKIPPED

    @property
    def deafens(self) -> bool:
        """Whether the monitor may miss a failure through it (a run left out or not understood)."""
        return self.outcome in (SKIPPED, UNKNOWN)

    def as_dict(self) -> dict[str, str]:
        return {
            "job": str(self.job),
            "instance": "" if self.instance_id is None else str(self.instance_id),
            "field": self.field,
            "value": self.value,
            "reason": self.reason,
            "outcome": self.outcome,
        }

    def __str__(self) -> str:
        run = f" run {self.instance_id}" if self.instance_id is not None else ""
        return (
            f"job {self.job}{run}: {self.field}={self.value}: {self.reason}; "
            f"{_OUTCOMES[self.outcome]}"
        )


@dataclass(frozen=True)
class Listing:
    """What one answer says about a job's runs."""

    instances: tuple[JobInstance, ...]
    problems: tuple[EntryProblem, ...] = ()
    # How many entries the answer listed, readable or not.
    entries: int = 0


def decode_int(text: str) -> int | float:
    """`json.loads`' parse_int: a number too long for `int()` is a bad value, not a crash.

    Python refuses to convert more than 4300 digits (ValueError), which would make
    a whole answer unreadable for one field; as infinity it is one field's problem.
    """
    return int(text) if len(text) <= 40 else float(text)


def parse_listing(job: JobKey, body: Mapping[str, Any], zone: ZoneInfo) -> Listing:
    """The runs of one answer; raises `AnswerUnreadable` only when no list of runs is found."""
    entries = _entries(body.get("Data"))
    problems: list[EntryProblem] = []
    indices: Sequence[int] = range(len(entries))
    if len(entries) > MAX_RUNS_PER_JOB:
        indices, cut_problem = _select(job, entries, MAX_RUNS_PER_JOB, "per job and answer")
        problems.append(cut_problem)
    unknown_codes: set[int] = set()
    # Each run once, as the copy that got furthest, with the index it came from.
    chosen: dict[int, tuple[JobInstance, int]] = {}
    for index in indices:
        raw = entries[index]
        where = f"JobInstanceDetails[{index}]"
        try:
            inst = _read_entry(job, where, raw, zone, problems)
        except Exception as exc:
            # An entry no check foresaw: that run is skipped, the others still count.
            reason = f"could not be read ({type(exc).__name__}: {cut(str(exc))})"
            problems.append(EntryProblem(job, where, show(raw), reason))
            continue
        if inst is None:
            continue
        if inst.status is None and inst.status_code not in unknown_codes:
            # Reported once per code and answer: ten runs in a new status are one finding.
            unknown_codes.add(inst.status_code)
            problems.append(
                EntryProblem(
                    job,
                    f"{where}.Status",
                    show(inst.status_code),
                    "unknown status code",
                    inst.instance_id,
                    UNKNOWN,
                )
            )
        previous = chosen.get(inst.instance_id)
        if previous is None:
            chosen[inst.instance_id] = (inst, index)
            continue
        if _progress(inst) > _progress(previous[0]):
            chosen[inst.instance_id] = (inst, index)
            counted, left_out = index, previous[1]
        else:
            counted, left_out = previous[1], index
        problems.append(
            EntryProblem(
                job,
                f"JobInstanceDetails[{left_out}].InstanceId",
                show(inst.instance_id),
                f"the same run as JobInstanceDetails[{counted}], which counts "
                "(of two copies, the one that ended later, or else the finished one)",
                inst.instance_id,
                DUPLICATE,
            )
        )
    return Listing(tuple(inst for inst, _ in chosen.values()), tuple(problems), len(entries))


def _select(
    job: JobKey, entries: list[Any], limit: int, per: str
) -> tuple[list[int], EntryProblem]:
    """The indices of the `limit` entries to read, in answer order, and the problem
    naming what is left out. Chosen before any is read, for reading them is the cost:
    failed, unfinished and unreadable runs first, then the newest (SchedulerX numbers
    its runs in increasing order; their times would have to be parsed)."""
    ranked = sorted(range(len(entries)), key=lambda index: _rank(entries[index], index))
    kept = sorted(ranked[:limit])
    left = ranked[limit:]
    loud = sum(1 for index in left if not _rank(entries[index], index)[0])
    reason = (
        f"{len(left)} of {len(entries)} runs left out, over the {limit} read {per} "
        "(failed and unfinished runs first, then the newest)"
    )
    if loud:
        reason += f"; {loud} of them failed or unfinished, and are not looked at"
    outcome = SKIPPED if loud else CUT
    return kept, EntryProblem(
        job, "JobInstanceDetails", f"{len(entries)} runs", reason, None, outcome
    )


def _rank(raw: Any, index: int) -> tuple[bool, int, int]:
    """Sorts entries by what to read first: (ended well, newest first, answer order)."""
    if not isinstance(raw, Mapping):
        return (False, 0, index)
    try:
        well = _status(raw.get("Status")) == InstanceStatus.SUCCESS
    except Unreadable:
        well = False
    try:
        instance_id = _integer(raw.get("InstanceId"), 1, _LONG_MAX)
    except Unreadable:
        instance_id = 0
    return (well, -instance_id, index)


@dataclass(frozen=True)
class GroupListing:
    """What one answer to a group query (no JobId) says, job by job."""

    jobs: dict[JobKey, Listing]
    # Entries whose job could not be told (no readable JobId), under job id 0.
    problems: tuple[EntryProblem, ...] = ()
    entries: int = 0


def parse_group_listing(
    namespace: str, group: str, body: Mapping[str, Any], zone: ZoneInfo
) -> GroupListing:
    """A group's runs, each read by `parse_listing` as its job's; raises `AnswerUnreadable`
    only when no list of runs is found."""
    entries = _entries(body.get("Data"))
    by_job: dict[int, list[Any]] = {}
    problems: list[EntryProblem] = []
    nobody = JobKey(namespace, group, 0)
    indices: Sequence[int] = range(len(entries))
    if len(entries) > MAX_ENTRIES_PER_ANSWER:
        indices, cut_problem = _select(nobody, entries, MAX_ENTRIES_PER_ANSWER, "per answer")
        problems.append(cut_problem)
    for index in indices:
        raw = entries[index]
        owner = raw.get("JobId") if isinstance(raw, Mapping) else None
        try:
            job_id = _integer(owner, 1, _LONG_MAX) if owner is not None else None
        except Unreadable:
            job_id = None
        if job_id is None:
            where = f"JobInstanceDetails[{index}].JobId"
            problems.append(
                EntryProblem(nobody, where, show(owner), "a group's run without its job")
            )
            continue
        by_job.setdefault(job_id, []).append(raw)
    jobs = {}
    for job_id, raws in by_job.items():
        key = JobKey(namespace, group, job_id)
        jobs[key] = parse_listing(key, {"Data": {"JobInstanceDetails": raws}}, zone)
    return GroupListing(jobs, tuple(problems), len(entries))


def _entries(data: Any) -> list[Any]:
    if data is None:
        return []
    if isinstance(data, list):
        # Some gateways unwrap the one-key object and put the list straight in Data.
        return data
    if not isinstance(data, Mapping):
        raise AnswerUnreadable(f"Data is {show(data)}, not an object listing runs")
    details = data.get("JobInstanceDetails")
    if details is None:
        return []
    if isinstance(details, list):
        return details
    if isinstance(details, Mapping):
        # The docs' sample, converted from XML, shows one object where answers carry a list.
        return [details]
    raise AnswerUnreadable(f"Data.JobInstanceDetails is {show(details)}, not a list of runs")


def _progress(inst: JobInstance) -> tuple[bool, float, bool]:
    """Orders copies of one run: any end time beats none, later beats earlier, then finished."""
    ended = inst.end_time.timestamp() if inst.end_time is not None else 0.0
    return (inst.end_time is not None, ended, inst.terminal)


_T = TypeVar("_T")


def _read_entry(
    job: JobKey, where: str, raw: Any, zone: ZoneInfo, problems: list[EntryProblem]
) -> JobInstance | None:
    if not isinstance(raw, Mapping):
        problems.append(EntryProblem(job, where, show(raw), "not an object"))
        return None

    def skip(name: str, reason: str, instance_id: int | None = None) -> None:
        value = raw.get(name, _MISSING)
        problems.append(EntryProblem(job, f"{where}.{name}", show(value), reason, instance_id))

    try:
        instance_id = _required(raw, "InstanceId", lambda v: _integer(v, 1, _LONG_MAX))
    except Unreadable as exc:
        skip("InstanceId", f"{exc}; a run without its id cannot be tracked")
        return None

    def optional(name: str, read: Callable[[Any], _T], default: _T) -> _T:
        value = raw.get(name)
        if value is None:
            return default
        try:
            return read(value)
        except Unreadable as exc:
            problems.append(
                EntryProblem(job, f"{where}.{name}", show(value), str(exc), instance_id, KEPT)
            )
            return default

    owner = optional("JobId", lambda v: _integer(v, 0, _LONG_MAX), None)
    if owner is not None and owner != job.job_id:
        skip("JobId", f"a run of job {owner} in the answer for job {job.job_id}", instance_id)
        return None
    try:
        status = _required(raw, "Status", _status)
    except Unreadable as exc:
        # Without a status a run says nothing to act on, and recording it would
        # overwrite what the state knows (its status, whether it was announced).
        # Left out, the state's record of it stands until an answer says more.
        skip("Status", str(exc), instance_id)
        return None
    try:
        end_time = _time(raw.get("EndTime"), zone)
    except Unreadable as exc:
        # EndTime tells a run's attempts apart, and an unreadable one is not an
        # absent one: guessed absent, a known failure could look like a new
        # attempt. Left out, the state's record of the run stands.
        skip("EndTime", str(exc), instance_id)
        return None

    def time(name: str) -> datetime | None:
        return optional(name, lambda v: _time(v, zone), None)

    def whole(name: str) -> int | None:
        return optional(name, lambda v: _integer(v, _INT_MIN, _INT_MAX), None)

    def text(name: str) -> str:
        return optional(name, _text, "")

    return JobInstance(
        job=job,
        instance_id=instance_id,
        status_code=status,
        result=text("Result"),
        progress=text("Progress"),
        schedule_time=time("ScheduleTime"),
        start_time=time("StartTime"),
        end_time=end_time,
        data_time=time("DataTime"),
        time_type=whole("TimeType"),
        trigger_type=whole("TriggerType"),
        work_addr=text("WorkAddr"),
        executor=text("Executor"),
    )


def _required(raw: Mapping[str, Any], name: str, read: Callable[[Any], _T]) -> _T:
    value = raw.get(name)
    if value is None or value == "":
        raise Unreadable("missing")
    return read(value)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", bool: "a boolean", str: "text"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _integer(value: Any, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise Unreadable("a boolean, not a whole number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if math.isnan(value):
            raise Unreadable("not a number (NaN)")
        if math.isinf(value):
            raise Unreadable("not a finite number")
        if not value.is_integer():
            raise Unreadable("not a whole number")
        number = int(value)
    elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise Unreadable(f"{_kind(value)}, not a whole number")
    if not low <= number <= high:
        raise Unreadable(f"out of range ({low}..{high})")
    return number


def _status(value: Any) -> int:
    """A status code, from a number, a numeric string or a name ("FAILED", "failed")."""
    if isinstance(value, str) and not _INTEGER.fullmatch(value.strip()):
        name = value.strip().upper().replace("-", "_").replace(" ", "_")
        if name in InstanceStatus.__members__:
            return InstanceStatus[name].value
        raise Unreadable("not a status code or name")
    return _integer(value, _INT_MIN, _INT_MAX)


def _time(value: Any, zone: ZoneInfo) -> datetime | None:
    """`yyyy-MM-dd HH:mm:ss` in the region's zone, ISO 8601, or epoch seconds or milliseconds."""
    if value is None:
        return None
    if isinstance(value, str):
        return _time_of_text(value, zone)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _epoch(value, zone)
    raise Unreadable(f"{_kind(value)}, not a time")


# A tick reads each run of a window's 16 minutes again every tick, four times on the
# clock each, and runs share their seconds (schedule times on the minute): each text is
# read once. What cannot be read is not kept (it raises), nor is it common.
@functools.lru_cache(maxsize=16384)
def _time_of_text(value: str, zone: ZoneInfo) -> datetime | None:
    text = value.strip()
    if not text:
        return None
    if _NUMBER.fullmatch(text):
        return _epoch(float(text) if "." in text else int(text), zone)
    return _checked(_time_text(text, zone), zone)


def _time_text(text: str, zone: ZoneInfo) -> datetime:
    if (
        len(text) == 19
        and text[4] == text[7] == "-"
        and text[10] == " "
        and text[13] == text[16] == ":"
        and text.isascii()
        and (text[:4] + text[5:7] + text[8:10] + text[11:13] + text[14:16] + text[17:]).isdigit()
    ):
        # SchedulerX's own form, read as strptime reads it (strptime is most of an
        # answer's CPU); anything this does not take goes the long way below.
        try:
            return datetime(
                int(text[0:4]),
                int(text[5:7]),
                int(text[8:10]),
                int(text[11:13]),
                int(text[14:16]),
                int(text[17:19]),
                tzinfo=zone,
            )
        except ValueError:
            pass
    try:
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=zone)
    except ValueError:
        pass
    try:
        parsed = parse_iso(text)
    except ValueError:
        raise Unreadable("not a time (yyyy-MM-dd HH:mm:ss, ISO 8601 or epoch)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def _epoch(number: float, zone: ZoneInfo) -> datetime:
    if isinstance(number, float) and not math.isfinite(number):
        raise Unreadable("not a finite number")
    # Compared before dividing: a 400-digit int cannot become a float.
    if _EARLIEST * 1000 <= number < _LATEST * 1000:
        seconds = number / 1000
    elif _EARLIEST <= number < _LATEST:
        seconds = float(number)
    else:
        raise Unreadable("epoch out of range (2000..2100, in seconds or milliseconds)")
    return datetime.fromtimestamp(seconds, zone)


def _checked(parsed: datetime, zone: ZoneInfo) -> datetime:
    try:
        stamp = parsed.timestamp()
    except (OverflowError, ValueError):
        stamp = math.nan
    if not _EARLIEST <= stamp < _LATEST:
        raise Unreadable("out of range (2000..2100)")
    # In the region's zone whatever offset it was written with: an attempt is
    # known by its wall-clock EndTime (`state.attempt_of`), and "02:00Z" and
    # "10:00" in Shanghai are one attempt.
    return parsed.astimezone(zone)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and abs(value) < 10**40:
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    raise Unreadable(f"{_kind(value)}, not text")
