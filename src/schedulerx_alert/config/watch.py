"""The config's `watch:` entries: each a described record (config/schema.py) read into a
WatchRule, its alert rule options into core's RuleSettings, whose defaults they take."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Literal

from schedulerx_alert.config.schema import (
    Invalid,
    Missing,
    Walker,
    boolean,
    count,
    join,
    listed,
    option,
    show,
    small,
    span,
    text,
)
from schedulerx_alert.core.model import TERMINAL, InstanceStatus
from schedulerx_alert.core.rules.settings import (
    DEFAULT_SETTINGS,
    MAX_FLAP_CHANGES,
    RuleSettings,
    SettingError,
    parse_duration,
    parse_trigger_types,
)

DEFAULT_ALERT_ON = frozenset({InstanceStatus.FAILED, InstanceStatus.REJECTED})
# Job ids written as strings: a pattern for re's own cache, compiled on first use.
_JOB_ID = r"[0-9]{1,19}"
# A job name glob: SchedulerX job names are short; a pattern is a line, not a document.
MAX_GLOB = 200
MAX_JOB_ID = 2**63 - 1
MAX_CONSECUTIVE_FAILURES = 100
# stuck_after, flap_window, missed_grace: a year and a day is longer than any of them
# can mean; a longer one (or 1e400s, read as infinity) is a mistake, refused as such.
MAX_RULE_DAYS = 366
_OFF = "off"
ALL = "all"


@dataclass(frozen=True)
class JobSpec:
    job_id: int
    name: str | None = None


@dataclass(frozen=True)
class WatchRule:
    namespace: str
    group: str
    # Jobs named by id; with `all_jobs` or `job_names` the group's job list (ListJobs) adds
    # the others, less `exclude_jobs` and `exclude_names`.
    jobs: tuple[JobSpec, ...]
    receivers: tuple[str, ...]
    alert_on: frozenset[InstanceStatus] = DEFAULT_ALERT_ON
    # The entry's alert rule options (recovery, consecutive_failures, stuck_after,
    # missed_grace, trigger_types, flap_window, flap_changes), alert_on included.
    rules: RuleSettings = DEFAULT_SETTINGS
    all_jobs: bool = False
    job_names: tuple[str, ...] = ()  # shell-style globs: * ? [abc]
    exclude_jobs: frozenset[int] = frozenset()
    exclude_names: tuple[str, ...] = ()
    # @-mention the job's SchedulerX contacts; add the failed run's last log lines (GetLog).
    mention_owners: bool = False
    include_log: bool = False

    @property
    def discovers(self) -> bool:
        """Whether the jobs watched come from the group's job list, not only from ids."""
        return self.all_jobs or bool(self.job_names)


# -- readers -------------------------------------------------------------------


def ids(walker: Walker, raw: Any, path: str, named: bool = False) -> tuple[JobSpec, ...]:
    """Job ids (as numbers or digits); `named`: also `{id, name}`."""
    raw = listed(raw, "must be a non-empty list of job ids")
    jobs: list[JobSpec] = []
    for index, item in enumerate(raw):
        here = f"{path}[{index}]"
        if isinstance(item, dict) and named:
            for key in item:
                if key not in ("id", "name"):
                    walker.fail(join(here, key), "unknown key")
            job_id, name = item.get("id"), item.get("name")
            if name is not None and not isinstance(name, str):
                walker.fail(f"{here}.name", f"must be a string, not {show(name)}")
                name = None
        else:
            job_id, name = item, None
        number = job_id
        if isinstance(number, str) and re.fullmatch(_JOB_ID, number):
            number = int(number)
        if isinstance(number, bool) or not isinstance(number, int) or not 0 < number <= MAX_JOB_ID:
            walker.fail(here, f"job id must be a positive integer, not {show(job_id)}")
            continue
        jobs.append(JobSpec(number, name))
    return tuple(jobs)


def jobs(walker: Walker, raw: Any, path: str) -> tuple[JobSpec, ...] | str:
    if raw is None:
        raise Missing
    if raw == ALL:
        return ALL
    if isinstance(raw, str):
        raise Invalid(f"must be a list of job ids or all, not {show(raw)}")
    return ids(walker, raw, path, named=True)


def exclude_jobs(walker: Walker, raw: Any, path: str) -> frozenset[int]:
    return frozenset(job.job_id for job in ids(walker, raw, path))


def globs(walker: Walker, raw: Any, path: str) -> tuple[str, ...]:
    """Job name patterns (`etl-*`, `report-?`), matched against the whole name."""
    raw = listed(raw, 'must be a non-empty list of name patterns such as ["etl-*"]')
    found: list[str] = []
    for index, item in enumerate(raw):
        here = f"{path}[{index}]"
        if not isinstance(item, str) or not item.strip():
            walker.fail(here, f"must be a name pattern, not {show(item)}")
        elif len(item) > MAX_GLOB or not item.isprintable():
            walker.fail(here, f"must be one printable line of at most {MAX_GLOB} characters")
        else:
            found.append(item)
    return tuple(found)


def receiver_names(walker: Walker, raw: Any, path: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise Invalid("must name at least one receiver")
    names: list[str] = []
    robots: dict[tuple[str, str, str], str] = {}
    receivers = walker.usable_receivers
    for index, item in enumerate(raw):
        here = f"{path}[{index}]"
        if not isinstance(item, str):
            walker.fail(here, f"receiver names are strings, not {show(item)}")
        elif item in names:
            # diff.py owes one alert per listed receiver: a repeat sends everything twice.
            walker.fail(here, f"duplicate receiver {show(item)}")
        elif item not in walker.declared:
            walker.fail(here, f"unknown receiver {show(item)}")
        elif item in receivers:
            url = receivers[item].url
            robot = (url.origin, url.path, receivers[item].access_token)
            if robot in robots:
                walker.fail(
                    here,
                    f"{show(item)} posts to the same robot as {show(robots[robot])}: "
                    "that group would get every alert twice",
                )
                continue
            robots[robot] = item
            names.append(item)
    return tuple(names)


def alert_on(walker: Walker, raw: Any, path: str) -> frozenset[InstanceStatus]:
    raw = listed(raw, "must be a non-empty list of statuses such as [failed, rejected]")
    statuses: set[InstanceStatus] = set()
    known = {s.label: s for s in InstanceStatus}
    final = ", ".join(sorted(s.label for s in TERMINAL))
    for index, item in enumerate(raw):
        here = f"{path}[{index}]"
        status: InstanceStatus | None = None
        if isinstance(item, int) and not isinstance(item, bool):
            status = InstanceStatus.parse(item) if small(item) else None
        elif isinstance(item, str):
            status = known.get(item.lower())
        if status is None:
            walker.fail(here, f"unknown status {show(item)} (one of: {final})")
        elif status not in TERMINAL:
            # The diff alerts on a run once it has finished; a run is never
            # finished in this status, so the rule could never fire.
            walker.fail(
                here,
                f"{status.label!r} is not a final status, so it can never fire (one of: {final})",
            )
        else:
            statuses.add(status)
    if not statuses:
        raise Missing
    return frozenset(statuses)


def duration(*words: str) -> Any:
    """`30s`, `10m`, `2h` (or one of `words`; `false` for off) -> seconds or the word."""

    def read(walker: Walker, raw: Any, path: str) -> float | str:
        if raw is None:
            raise Missing
        if raw is False and _OFF in words:
            return _OFF
        if not isinstance(raw, str):
            also = f" (or {', '.join(words)})"
            raise Invalid(f"must be a duration such as 30s, 10m or 2h{also}, not {show(raw)}")
        given = walker.substituted(raw)
        if given.strip().lower() in words:
            return given.strip().lower()
        try:
            seconds = parse_duration(given)
        except SettingError:
            # Said in our words: parse_duration's would repeat a value from the environment.
            raise Invalid(
                f"{show(raw)} is not a duration; write a number with a unit (d, h, m, s), "
                f"largest first, e.g. 30s, 10m, 2h or 1h30m{''.join(f', or {w}' for w in words)}"
            ) from None
        if not seconds > 0:
            raise Invalid(f"must be longer than 0s, not {show(raw)}")
        if seconds > MAX_RULE_DAYS * 86400:
            raise Invalid(f"must be at most {MAX_RULE_DAYS}d, not {show(raw)}")
        return seconds

    return read


def trigger_types(walker: Walker, raw: Any, path: str) -> Any:
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        raise Invalid(f"must be a list of trigger type names, not {show(raw)}")
    try:
        return parse_trigger_types(raw)
    except SettingError as exc:
        raise Invalid(str(exc)[:200]) from None


def _off_or(value: float | str | None) -> float | None:
    return None if value == _OFF else value  # type: ignore[return-value]


_D = DEFAULT_SETTINGS


def _seconds(value: float | None) -> str:
    return _OFF if value is None else span(value)


@dataclass(frozen=True, kw_only=True)
class WatchEntry:
    """One `watch:` entry as the file writes it; `rule()` makes its WatchRule."""

    namespace: str = option(read=text, doc="the SchedulerX namespace id", example="adcfc35d-e2fe")
    group: str = option(read=text, doc="the app group", example="testSchedulerx.defaultGroup")
    jobs: tuple[JobSpec, ...] | str | None = option(
        None,
        read=jobs,
        doc="job ids, or {id, name} (a name makes messages readable), or all: every enabled "
        "job of the group (ListJobs); this or job_names is required",
        example="[92583, {id: 92584, name: nightly-etl}]",
    )
    job_names: tuple[str, ...] = option(
        (),
        read=globs,
        doc="the enabled jobs whose whole name matches one (shell-style: * ? [abc])",
        example='["report-*", "daily-?"]',
    )
    exclude_jobs: frozenset[int] = option(
        frozenset(), read=exclude_jobs, doc="with jobs: all or job_names", example="[10234]"
    )
    exclude_names: tuple[str, ...] = option(
        (), read=globs, doc="with jobs: all or job_names; patterns", example='["*-test"]'
    )
    receivers: tuple[str, ...] = option(
        read=receiver_names, doc="receiver names from `receivers`", example="[ops]"
    )
    alert_on: frozenset[InstanceStatus] = option(
        DEFAULT_ALERT_ON,
        read=alert_on,
        doc="final statuses that alert: also killed, partial_failed, success, ...",
    )
    stuck_after: float | str = option(
        _D.stuck_after,
        read=duration("job_timeout", _OFF),
        doc="a duration (30m), job_timeout or off",
    )
    flap_window: float | str | None = option(
        _D.flap_window, read=duration(_OFF), shown=_seconds, doc="a duration, or off"
    )
    missed_grace: float | str | None = option(
        _D.missed_grace,
        read=duration(_OFF),
        shown=_seconds,
        doc="a duration (10m): a cron fire with no run by then is missed",
    )
    trigger_types: frozenset[Any] = option(
        _D.trigger_types, read=trigger_types, doc="how a run was started, for it to count"
    )
    recovery: bool = option(
        _D.recovery, read=boolean, doc="a success after an announced failure says so"
    )
    consecutive_failures: int = option(
        _D.consecutive_failures,
        read=count(1, MAX_CONSECUTIVE_FAILURES),
        doc="announce from the Nth failure in a row",
    )
    flap_changes: int = option(
        _D.flap_changes,
        read=count(2, MAX_FLAP_CHANGES),
        doc="changes within flap_window that make a job flapping",
    )
    # Absent: the config's top-level option of the same name.
    mention_owners: bool | None = option(
        None, read=boolean, doc="@-mention the job's SchedulerX alarm contacts", example="false"
    )
    include_log: bool | None = option(
        None, read=boolean, doc="add the failed run's last log lines (GetLog)", example="false"
    )


def read_watch(walker: Walker, raw: Any, evidence: dict[str, bool]) -> tuple[WatchRule, ...]:
    """Every entry's rule; `evidence`: the defaults of mention_owners and include_log."""
    if not isinstance(raw, list) or not raw:
        walker.fail("watch", "must be a non-empty list")
        return ()
    rules: list[WatchRule] = []
    seen: dict[tuple[str, str, int], str] = {}
    for index, item in enumerate(raw):
        path = f"watch[{index}]"
        values, _ = walker.values(WatchEntry, item, path)
        given = item if isinstance(item, dict) else {}
        listed = values.get("jobs")
        all_jobs = listed == ALL
        names: tuple[str, ...] = values.get("job_names", ())
        job_list: tuple[JobSpec, ...] = listed if isinstance(listed, tuple) else ()
        if all_jobs and names:
            walker.fail(
                f"{path}.job_names",
                "jobs: all already watches every job of the group; drop one of the two",
            )
        elif given.get("jobs") is None and not names and "job_names" not in given:
            walker.fail(path, "needs jobs (a list of job ids, or all) or job_names (name patterns)")
        excluded: frozenset[int] = values.get("exclude_jobs", frozenset())
        excluded_names: tuple[str, ...] = values.get("exclude_names", ())
        if (excluded or excluded_names) and not (all_jobs or names):
            which = "exclude_jobs" if excluded else "exclude_names"
            walker.fail(f"{path}.{which}", "excludes apply to jobs: all or job_names only")
        for job in job_list:
            if job.job_id in excluded:
                walker.fail(f"{path}.exclude_jobs", f"job {job.job_id} is also listed in jobs")
        statuses = values.get("alert_on", DEFAULT_ALERT_ON)
        settings = _settings(walker, values, statuses, path)
        namespace, group = values.get("namespace"), values.get("group")
        if namespace is None or group is None:
            continue
        for job in job_list:
            key = (namespace, group, job.job_id)
            if key in seen:
                walker.fail(f"{path}.jobs", f"job {job.job_id} is already watched by {seen[key]}")
            seen[key] = path
        rules.append(
            WatchRule(
                namespace,
                group,
                job_list,
                values.get("receivers", ()),
                statuses,
                settings,
                all_jobs=all_jobs,
                job_names=names,
                exclude_jobs=excluded,
                exclude_names=excluded_names,
                mention_owners=values.get("mention_owners", evidence["mention_owners"]),
                include_log=values.get("include_log", evidence["include_log"]),
            )
        )
    return tuple(rules)


def _settings(
    walker: Walker, values: dict[str, Any], statuses: frozenset[InstanceStatus], path: str
) -> RuleSettings:
    stuck = values.get("stuck_after")
    stuck_after: float | Literal["job_timeout", "off"] = _D.stuck_after if stuck is None else stuck
    window = values.get("flap_window")
    given = {
        name: values[name]
        for name in ("recovery", "consecutive_failures", "trigger_types", "flap_changes")
        if name in values
    }
    try:
        return dataclasses.replace(
            _D,
            alert_on=statuses,
            stuck_after=stuck_after,
            missed_grace=_off_or(values.get("missed_grace")),
            flap_window=_D.flap_window if window is None else _off_or(window),
            **given,
        )
    except SettingError as exc:  # every value was checked above; kept as a net
        walker.fail(path, str(exc)[:200])
        return _D
