"""`schedulerx-alert jobs`: which jobs each watch entry watches, and which it does not.

Per watch entry, the jobs it matches (name, id, schedule, and the kinds of alert that apply
to each: a job without a cron schedule is never missed, one without a timeout of its own is
not stuck under `stuck_after: job_timeout`), then the jobs of the watched groups that no entry
watches. From the job lists the state keeps (read-only, as `state show` reads it), or with
`--live` from SchedulerX itself (ListJobs, with credentials from ALIBABA_CLOUD_* variables).
Job names come from SchedulerX: on a terminal they are escaped as `state show` escapes them.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schedulerx_alert.cli.context import Context
    from schedulerx_alert.config import Config, WatchRule
    from schedulerx_alert.core.catalog import JobInfo
    from schedulerx_alert.core.model import JobKey
    from schedulerx_alert.core.polling import GroupKey
    from schedulerx_alert.sources.schedulerx import SchedulerXClient

#: ListJobs pages read per group with --live; a larger group is reported as cut short.
MAX_PAGES = 200
_TIME_TYPES = {-1: "none", 1: "cron", 3: "fixed_rate", 4: "second_delay", 5: "one_time", 100: "api"}


def add_parser(commands: Any) -> None:
    jobs = commands.add_parser(
        "jobs",
        help="list the jobs each watch entry watches, and the jobs no entry watches",
        description=(
            "For each watch entry, the jobs it watches (name, id, schedule and the kinds of "
            "alert that apply), then the jobs of the watched groups that no entry watches. "
            "Reads the job lists the state keeps (the state location of --config, read-only); "
            "--live asks SchedulerX (ListJobs) with credentials from ALIBABA_CLOUD_* variables."
        ),
    )
    from schedulerx_alert.cli import conventions as cli

    cli.add_common(jobs)
    jobs.add_argument("--live", action="store_true", help="read the job lists from SchedulerX now")


@dataclass
class Lists:
    """The job lists the listing is made from, and what could not be read."""

    source: str
    where: str
    catalog: dict[JobKey, JobInfo] = field(default_factory=dict)
    # Groups whose list is known complete (live: read to the end; state: a full pass done).
    complete: set[GroupKey] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def run(args: argparse.Namespace, clock: Callable[[], float] | None = None) -> int:
    from schedulerx_alert.cli.context import Context, can_sign

    ctx = Context.load(args)
    if ctx is None:
        return 2
    config, credentials, redact = ctx.config, ctx.credentials, ctx.redact
    if args.live:
        if not can_sign(credentials, "jobs --live: "):
            return 2
        from schedulerx_alert.sources.schedulerx import SchedulerXClient

        clock = clock or time.time
        client = SchedulerXClient(
            config.schedulerx.endpoint, config.region, credentials, config.zone, clock=clock
        )
        lists = read_live(config, client, clock())
    else:
        found = read_state(ctx)
        if isinstance(found, str):
            print(redact(found), file=sys.stderr)
            return 1
        lists = found
    from schedulerx_alert.cli.terminal import Output

    doc = document(config, lists)
    out = Output(redact, args.json)
    if out.json:
        out.document(doc)
    else:
        out.text(text_of(doc))
    return 1 if doc["problems"] else 0


# -- where the job lists come from -------------------------------------------------------


def read_state(ctx: Context) -> Lists | str:
    from schedulerx_alert.cli.conventions import tried
    from schedulerx_alert.storage.session import StateRefused
    from schedulerx_alert.storage.store import StoreError

    try:
        store, key, inspection = ctx.inspect_state("jobs")
    except (StoreError, StateRefused) as exc:
        return f"jobs: the job lists the state keeps could not be read: {exc}{tried(ctx.config)}"
    where = store.describe(key)
    state = inspection.state
    lists = Lists("state", where, dict(state.catalog))
    for group, cursor in state.sources.groups.items():
        if cursor.discovered_at is not None:
            lists.complete.add(group)
    if not inspection.exists:
        lists.problems.append(f"no state at {where} yet: no tick has read a job list (try --live)")
    return lists


def read_live(config: Config, client: SchedulerXClient, now: float | None = None) -> Lists:
    """Every watched group's job list, page by page, as a tick reads it."""
    from schedulerx_alert.core.polling import GroupCursor
    from schedulerx_alert.sources import discovery
    from schedulerx_alert.sources.schedulerx import SchedulerXError

    now = time.time() if now is None else now
    lists = Lists("live", client.base_url)
    for group in discovery.groups_of(config):
        cursor = GroupCursor()
        page = 1
        while True:
            params = discovery.list_jobs_params(group, page)
            try:
                body = client.call("ListJobs", params)
                found = discovery.parse_job_page(group, page, body, now)
            except (SchedulerXError, ValueError) as exc:
                lists.problems.append(f"{group[0]}/{group[1]}: ListJobs page {page}: {exc}")
                break
            lists.problems.extend(found.problems)
            fault = discovery.paging_fault(lists.catalog, cursor, page, found, now)
            if fault is not None:
                lists.problems.append(f"{group[0]}/{group[1]}: {fault}")
                break
            cursor = discovery.after_page(lists.catalog, cursor, group, page, found, now, True)
            if found.last:
                lists.complete.add(group)
                break
            if page >= MAX_PAGES:
                lists.problems.append(
                    f"{group[0]}/{group[1]}: more than {MAX_PAGES} ListJobs pages; cut short"
                )
                break
            page += 1
    return lists


# -- the listing -------------------------------------------------------------------------


def document(config: Config, lists: Lists) -> dict[str, Any]:
    """The listing as `jobs --json` prints it."""
    from schedulerx_alert.core.model import JobKey
    from schedulerx_alert.sources import discovery

    catalog = lists.catalog
    watched = discovery.watched_jobs(config, catalog)
    entries = []
    for number, rule in enumerate(config.watch, 1):
        group = (rule.namespace, rule.group)
        mine = sorted(key for key, w in watched.items() if w.rule is rule)
        by_id = {JobKey(rule.namespace, rule.group, spec.job_id) for spec in rule.jobs}
        entry: dict[str, Any] = {
            "watch": number,
            "namespace": rule.namespace,
            "group": rule.group,
            "picks": discovery.describe(config, rule).partition(" (")[2][:-1],
            "receivers": list(rule.receivers),
            "jobs": [
                _job(config, rule, key, catalog.get(key), watched[key].name, key in by_id)
                for key in mine
            ],
        }
        if (
            rule.discovers
            and group in lists.complete
            and not any(discovery.matches(rule, info) for info in catalog.values())
        ):
            entry["problem"] = "matches no enabled job"
        entries.append(entry)
    groups = set(discovery.groups_of(config))
    unwatched = [
        _job(config, None, key, info, info.name, False)
        for key, info in sorted(catalog.items())
        if key not in watched and (key.namespace, key.group) in groups
    ]
    problems = list(lists.problems)
    problems += [
        f"watch entry {e['watch']} ({e['picks']}) in {e['namespace']}/{e['group']} {e['problem']}"
        for e in entries
        if "problem" in e
    ]
    return {
        "source": lists.source,
        "where": lists.where,
        "timezone": config.timezone,
        "entries": entries,
        "unwatched": unwatched,
        "problems": problems,
    }


def _job(
    config: Config,
    rule: WatchRule | None,
    key: JobKey,
    info: JobInfo | None,
    name: str | None,
    by_id: bool,
) -> dict[str, Any]:
    job: dict[str, Any] = {
        "id": key.job_id,
        "name": name,
        "by_id": by_id,
        "listed": info is not None,
        "enabled": None if info is None else info.enabled,
        "schedule": None if info is None else _schedule(info),
    }
    if rule is None:
        job["namespace"], job["group"] = key.namespace, key.group
    if rule is not None:
        job["kinds"] = _kinds(config, rule, info)
    return job


def _schedule(info: JobInfo) -> dict[str, Any]:
    kind = None if info.time_type is None else _TIME_TYPES.get(info.time_type, str(info.time_type))
    return {
        "type": kind,
        "expression": info.time_expression,
        "calendar": info.calendar,
        "timeout_s": info.timeout_seconds if info.timeout_enabled else None,
    }


def _kinds(config: Config, rule: WatchRule, info: JobInfo | None) -> list[str]:
    """The kinds of alert the entry's rules can raise for this job, as the rules decide."""
    from schedulerx_alert.core.rules.history import UNKNOWN_SCHEDULE
    from schedulerx_alert.core.rules.schedules import schedule_of

    settings = rule.rules
    schedule = UNKNOWN_SCHEDULE if info is None else schedule_of(info, config.timezone)
    kinds = [status.label for status in sorted(rule.alert_on, key=lambda s: s.value)]
    if settings.recovery:
        kinds.append("recovered")
    if settings.stuck_threshold(schedule.timeout) is not None:
        kinds.append("stuck")
    if settings.missed_grace is not None and schedule.can_miss:
        kinds.append("missed")
    if settings.flap_window is not None:
        kinds.append("flapping")
    return kinds


def text_of(doc: Mapping[str, Any]) -> str:
    """The listing for a person: job text escaped, one line per job."""
    from schedulerx_alert.cli.state_view import line

    source = "SchedulerX now" if doc["source"] == "live" else "the state"
    out = [f"job lists from {source} ({line(doc['where'], 200)})"]
    for entry in doc["entries"]:
        out.append("")
        out.append(
            f"watch entry {entry['watch']}: {line(entry['namespace'], 100)}/"
            f"{line(entry['group'], 100)} ({line(entry['picks'], 200)}) -> "
            f"{', '.join(entry['receivers'])}"
        )
        if "problem" in entry:
            out.append(f"  ! {entry['problem']}")
        if not entry["jobs"]:
            out.append("  (no job)")
        for job in entry["jobs"]:
            out.append(f"  {_job_line(job)}  [{', '.join(job['kinds'])}]")
    out.append("")
    unwatched = doc["unwatched"]
    out.append(f"not watched: {len(unwatched)} job(s) of the watched groups")
    for job in unwatched:
        where = f"{line(job['namespace'], 100)}/{line(job['group'], 100)}"
        out.append(f"  {_job_line(job)}  in {where}")
    if doc["problems"]:
        out.append("")
        out.append("problems:")
        out.extend(f"  {line(problem, 400)}" for problem in doc["problems"])
    return "\n".join(out) + "\n"


def _job_line(job: Mapping[str, Any]) -> str:
    from schedulerx_alert.cli.state_view import line

    name = line(job["name"], 120) if job["name"] else "(name unknown)"
    text = f"{job['id']} {name}"
    schedule = job["schedule"]
    if schedule is None:
        return f"{text}  not in its group's job list"
    if schedule["type"]:
        expression = f" {line(schedule['expression'], 100)}" if schedule["expression"] else ""
        text += f"  {schedule['type']}{expression}"
        if schedule["calendar"]:
            text += f" (calendar {line(schedule['calendar'], 60)})"
    if schedule["timeout_s"]:
        text += f"  timeout {schedule['timeout_s']:g}s"
    if job["enabled"] is False:
        text += "  disabled"
    return text
