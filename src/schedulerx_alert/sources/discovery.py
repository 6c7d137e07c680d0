"""Which jobs a watch entry means, and reading a group's job list (ListJobs) into the catalog.

A watch entry names jobs by id, or says `jobs: all`, or gives name patterns (`job_names`),
less `exclude_jobs`/`exclude_names`. Ids are watched whatever the job list says; the other
forms take the enabled jobs of the group's list. A job that two entries would watch goes to
the entry naming it by id, else to the first entry in the file that matches it.

Pure, except for the answer it is given: the executor (poll.py) makes the calls.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from schedulerx_alert.config import Config, WatchRule
from schedulerx_alert.core.model import JobKey
from schedulerx_alert.core.polling import GroupCursor, GroupKey
from schedulerx_alert.sources.listing import show

if TYPE_CHECKING:
    from schedulerx_alert.core.catalog import Contact, JobInfo

#: Jobs asked for per ListJobs page.
PAGE_SIZE = 100
_MAX_TEXT = 200


@dataclass(frozen=True)
class Watched:
    """A watched job: the entry that watches it, and the name messages show."""

    rule: WatchRule
    name: str | None


def groups_of(config: Config) -> list[GroupKey]:
    """The watched groups, in the order of the config."""
    return list(dict.fromkeys((rule.namespace, rule.group) for rule in config.watch))


def matches(rule: WatchRule, info: JobInfo) -> bool:
    """Whether a discovering entry watches a job of its group's list."""
    if (rule.namespace, rule.group) != (info.job.namespace, info.job.group):
        return False
    if not info.enabled or info.job.job_id in rule.exclude_jobs:
        return False
    if any(fnmatchcase(info.name, pattern) for pattern in rule.exclude_names):
        return False
    return rule.all_jobs or any(fnmatchcase(info.name, pattern) for pattern in rule.job_names)


def watched_jobs(config: Config, catalog: Mapping[JobKey, JobInfo]) -> dict[JobKey, Watched]:
    """Every job the config watches, given what the job lists say."""
    found: dict[JobKey, Watched] = {}
    for rule in config.watch:
        for spec in rule.jobs:
            key = JobKey(rule.namespace, rule.group, spec.job_id)
            info = catalog.get(key)
            found[key] = Watched(rule, spec.name or (info.name if info else None) or None)
    # By group: with hundreds of groups, trying every entry on every job was most of it.
    discovering: dict[GroupKey, list[WatchRule]] = {}
    for rule in config.watch:
        if rule.discovers:
            discovering.setdefault((rule.namespace, rule.group), []).append(rule)
    if not discovering:
        return found
    for key, info in catalog.items():
        if key in found:
            continue
        for rule in discovering.get((key.namespace, key.group), ()):
            if matches(rule, info):
                found[key] = Watched(rule, info.name or None)
                break
    return found


def same_watch(before: Mapping[JobKey, JobInfo], after: Mapping[JobKey, JobInfo]) -> bool:
    """Whether `watched_jobs` gives the same jobs, entries and names for both catalogs: the
    same jobs listed, and each record that changed with the same name and enabled flag (a
    job list read again mostly changes only when each job was confirmed)."""
    if before is after:
        return True
    if len(before) != len(after):
        return False
    for key, info in after.items():
        old = before.get(key)
        if old is info:
            continue
        if old is None or old.name != info.name or old.enabled != info.enabled:
            return False
    return True


def rule_for_unlisted(config: Config, key: JobKey) -> WatchRule | None:
    """The entry that watches a job its group's list does not show yet (created since it
    was read), if that can be told without its name: `jobs: all` can, name patterns cannot."""
    for rule in config.watch:
        if (rule.namespace, rule.group) != (key.namespace, key.group):
            continue
        if key.job_id in {spec.job_id for spec in rule.jobs}:
            return rule
        if rule.discovers and key.job_id in rule.exclude_jobs:
            continue
        if rule.all_jobs and not rule.exclude_names:
            return rule
    return None


def needs_names(config: Config, group: GroupKey) -> bool:
    """Whether which jobs of the group are watched depends on their names."""
    return any(
        (rule.namespace, rule.group) == group and (rule.job_names or rule.exclude_names)
        for rule in config.watch
    )


def discovers(config: Config, group: GroupKey) -> bool:
    return any((rule.namespace, rule.group) == group and rule.discovers for rule in config.watch)


def describe(config: Config, rule: WatchRule) -> str:
    """A watch entry as a message names it: its place in the file and what it picks."""
    number = next((i for i, r in enumerate(config.watch, 1) if r is rule), 0)
    if rule.all_jobs:
        picks = "jobs: all"
    elif rule.job_names:
        picks = f"job_names: {', '.join(rule.job_names)}"
    else:
        picks = f"jobs: {', '.join(str(spec.job_id) for spec in rule.jobs)}"
    return f"watch entry {number} ({picks[:200]})"


def entries_of(config: Config, group: GroupKey) -> str:
    """The discovering watch entries of a group, for a message about its job list."""
    return "; ".join(
        describe(config, rule)
        for rule in config.watch
        if (rule.namespace, rule.group) == group and rule.discovers
    )


def unmatched(
    config: Config,
    catalog: Mapping[JobKey, JobInfo],
    groups: Mapping[GroupKey, GroupCursor],
    unread: Collection[GroupKey] = (),
) -> list[str]:
    """A problem for each discovering entry that matches no enabled job of its group's last
    complete list: a pattern in the wrong case, or a group emptied, watches nothing, and
    would otherwise say `ok` for ever. Groups whose list was never read to the end, or
    failed this tick (`unread`, a problem of its own), are not judged."""
    problems = []
    # By group: trying each entry on the whole catalog was 1.3 M matches a tick at 100 groups.
    by_group: dict[GroupKey, list[JobInfo]] = {}
    for info in catalog.values():
        by_group.setdefault((info.job.namespace, info.job.group), []).append(info)
    for rule in config.watch:
        group = (rule.namespace, rule.group)
        cursor = groups.get(group)
        if not rule.discovers or group in unread or cursor is None:
            continue
        if cursor.discovered_at is None:
            continue
        if not any(matches(rule, info) for info in by_group.get(group, ())):
            problems.append(
                f"{describe(config, rule)} in {group[0]}/{group[1]} matches no enabled job"
            )
    return problems


# -- ListJobs -----------------------------------------------------------------------------


def list_jobs_params(group: GroupKey, page: int, size: int = PAGE_SIZE) -> dict[str, str]:
    return {
        "Namespace": group[0],
        "GroupId": group[1],
        "PageNum": str(page),
        "PageSize": str(size),
    }


@dataclass(frozen=True)
class JobPage:
    """One ListJobs answer: the jobs read, what could not be read, and whether it was the
    last page."""

    jobs: tuple[JobInfo, ...]
    problems: tuple[str, ...]
    last: bool
    # What the answer said of the list: entries on the page, the page size, and Total.
    entries: int = 0
    size: int = PAGE_SIZE
    total: int | None = None


def parse_job_page(
    group: GroupKey, page: int, body: Mapping[str, Any], now: float, asked: int = PAGE_SIZE
) -> JobPage:
    """A ListJobs answer; each job entry on its own, so one odd entry costs only itself."""
    data = body.get("Data")
    if not isinstance(data, Mapping):
        raise ValueError(f"ListJobs: Data is {show(data)}, not an object listing jobs")
    entries = data.get("Jobs")
    if entries is None:
        entries = []
    if isinstance(entries, Mapping):  # one job, as XML-converted samples show it
        entries = [entries]
    if not isinstance(entries, list):
        raise ValueError(f"ListJobs: Data.Jobs is {show(entries)}, not a list")
    jobs: list[JobInfo] = []
    problems: list[str] = []
    for index, raw in enumerate(entries):
        try:
            jobs.append(parse_job(group, raw, now))
        except ValueError as exc:
            problems.append(f"ListJobs {group[0]}/{group[1]} page {page} Jobs[{index}]: {exc}")
    size = _whole(data.get("PageSize")) or asked
    total = _whole(data.get("Total"))
    # Total says where the list ends; without it, a short page does.
    last = (page * size >= total or not entries) if total is not None else len(entries) < size
    return JobPage(tuple(jobs), tuple(problems), last, len(entries), size, total)


def paging_fault(
    catalog: Mapping[JobKey, JobInfo], cursor: GroupCursor, page: int, found: JobPage, now: float
) -> str | None:
    """Why a page cannot be the next one of the list, or None. A server that ignores PageNum
    answers the first page again and again: without Total the pass would never end (and
    spend the ListJobs quota every tick), with it the pass would end with only the first
    page's jobs."""
    if page < 2:
        return None
    if found.total is not None and found.entries and (page - 1) * found.size >= found.total:
        return (
            f"ListJobs page {page} lists {found.entries} job(s) past the Total of {found.total} "
            "(the server seems to ignore PageNum)"
        )
    started = cursor.discovery_started if cursor.discovery_page > 0 else now
    if started is None or not found.jobs:
        return None
    # The state keeps times to the second.
    seen = [catalog.get(info.job) for info in found.jobs]
    if all(info is not None and info.refreshed_at >= started - 1 for info in seen):
        return (
            f"ListJobs page {page} lists only jobs an earlier page of this pass listed "
            "(the server seems to ignore PageNum)"
        )
    return None


def parse_job(group: GroupKey, raw: Any, now: float) -> JobInfo:
    """One ListJobs (or GetJobInfo) job entry; ValueError names what is wrong."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"not an object but {show(raw)}")
    job_id = _whole(raw.get("JobId"))
    if job_id is None or not 0 < job_id < 2**63:
        raise ValueError(f"JobId={show(raw.get('JobId'))} is not a job id")
    name = raw.get("Name")
    if not isinstance(name, str):
        raise ValueError(f"job {job_id}: Name={show(name)} is not text")
    status = _whole(raw.get("Status"))
    time_config = raw.get("TimeConfig")
    time_config = time_config if isinstance(time_config, Mapping) else {}
    monitor_info = raw.get("JobMonitorInfo")
    monitor_info = monitor_info if isinstance(monitor_info, Mapping) else {}
    monitor = monitor_info.get("MonitorConfig")
    monitor = monitor if isinstance(monitor, Mapping) else {}
    timeout = _number(monitor.get("Timeout"))
    # Loaded with the first job list read: jobs named by id never need the catalog.
    from schedulerx_alert.core.catalog import JobInfo

    return JobInfo(
        job=JobKey(group[0], group[1], job_id),
        name=name[:_MAX_TEXT],
        # Status 1 is enabled; a job whose status cannot be read is watched rather than lost.
        enabled=status != 0,
        time_type=_whole(time_config.get("TimeType")),
        time_expression=_text(time_config.get("TimeExpression")),
        calendar=_text(time_config.get("Calendar")),
        timeout_enabled=monitor.get("TimeoutEnable") is True,
        timeout_seconds=timeout if timeout is not None and timeout >= 0 else None,
        contacts=tuple(_contacts(monitor_info.get("ContactInfo"))),
        refreshed_at=now,
    )


def _contacts(raw: Any) -> Iterable[Contact]:
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, list):
        return
    from schedulerx_alert.core.catalog import Contact

    for item in raw[:20]:
        if isinstance(item, Mapping):
            yield Contact(
                name=_text(item.get("UserName"))[:100],
                phone=_text(item.get("UserPhone"))[:100],
                # Not `Ding`: the SDK documents it as the contact's DingTalk *webhook URL*,
                # whose access_token is a secret that must reach neither the state nor a
                # message. No DingTalk user id of a contact is documented.
                user_id=_user_id(item.get("UserId")),
            )


def _user_id(value: Any) -> str:
    text = _text(value)[:100]
    return text if text.isascii() and text.replace("_", "").replace("-", "").isalnum() else ""


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value[:_MAX_TEXT]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < 2**63 else None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 20:
        return int(value.strip())
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    whole = _whole(value)
    return None if whole is None else float(whole)


# -- a pass over a group's list -----------------------------------------------------------


def due(cursor: GroupCursor, now: float, interval: float) -> bool:
    """Whether the group's job list is to be read (again), or a pass is under way."""
    return (
        cursor.discovery_page > 0
        or cursor.discovered_at is None
        or now - cursor.discovered_at >= interval
    )


def after_page(
    catalog: dict[JobKey, JobInfo],
    cursor: GroupCursor,
    group: GroupKey,
    page: int,
    found: JobPage,
    now: float,
    started_this_tick: bool,
) -> GroupCursor:
    """Fold one page into the catalog (in place) and move the group's pass on.

    Jobs are dropped once a pass ends without them; a pass that took more than one tick
    may have missed a job that moved between pages, so then a job must be missing from
    two passes running.
    """
    started = cursor.discovery_started if cursor.discovery_page > 0 else now
    for info in found.jobs:
        catalog[info.job] = info
    if not found.last:
        return replace(cursor, discovery_page=page + 1, discovery_started=started)
    assert started is not None
    cut = started if started_this_tick else (cursor.discovered_at or 0.0)
    # The time first: this runs over the whole catalog (20,000 jobs) for each group's pass.
    for key in [k for k, v in catalog.items() if v.refreshed_at < cut]:
        if (key.namespace, key.group) == group:
            del catalog[key]
    return replace(cursor, discovered_at=started, discovery_page=0, discovery_started=None)
