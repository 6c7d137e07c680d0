"""What the rules need to know of jobs named by id: their schedule and their own timeout.

`missed_grace` needs a job's fire times (TimeConfig) and `stuck_after: job_timeout` (the
default) its timeout alarm (JobMonitorInfo). A group's job list (ListJobs) carries both, but
a small group of ids is never listed (plan.small_group), nor is any group under
`query: every_job`, and a list may fail or leave a job out. Without an entry in the catalog
such a job would never be called missed, nor stuck after its own timeout, and nobody would
know. So each job named by id whose entry asks for one of these, and that the catalog does
not know, is read with GetJobInfo. Where the group's list is not read, the catalog keeps
only what the entry's rules use, and reads it again after `discovery_interval`.

The calls go through GetJobInfo's one-minute budget (poll.Budgets, kept in the state),
leaving some for the owners of new alerts (evidence.py). A job that cannot be read is a
problem of the tick while the catalog has nothing for it, a note after that (the entry it
has still serves).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from schedulerx_alert.config import Config, WatchRule
from schedulerx_alert.core.model import JobKey
from schedulerx_alert.sources import discovery, plan
from schedulerx_alert.sources.fetch import RetryPolicy, attempt
from schedulerx_alert.sources.poll import JOB_INFO, Budgets
from schedulerx_alert.sources.schedulerx import SchedulerXClient

if TYPE_CHECKING:
    from schedulerx_alert.core.catalog import JobInfo

#: GetJobInfo calls left in the minute for the owners of this tick's new alerts.
RESERVE = 10


def needs_info(rule: WatchRule) -> bool:
    """Whether the entry's rules read what SchedulerX says of the job itself."""
    return rule.rules.missed_grace is not None or rule.rules.stuck_after == "job_timeout"


def named_by_id(config: Config, job: JobKey) -> WatchRule | None:
    """The entry that names the job by id and needs its entry in the catalog, if any."""
    for rule in config.watch:
        if (rule.namespace, rule.group) != (job.namespace, job.group) or not needs_info(rule):
            continue
        if any(spec.job_id == job.job_id for spec in rule.jobs):
            return rule
    return None


def for_rules(config: Config, info: JobInfo) -> JobInfo:
    """What the catalog keeps of a job named by id in a group whose list is not read: what
    its entry's rules use. A cron schedule kept for nothing would load the cron parser every
    tick (the rules compute fire times for every job the catalog gives one)."""
    job = info.job
    rule = next(
        (
            r
            for r in config.watch
            if (r.namespace, r.group) == (job.namespace, job.group)
            and any(spec.job_id == job.job_id for spec in r.jobs)
        ),
        None,
    )
    schedule = rule is not None and rule.rules.missed_grace is not None
    timeout = rule is not None and rule.rules.stuck_after == "job_timeout"
    # Messages name such a job by its id, as they always have, unless its owners are
    # mentioned (evidence.py reads the job for them, and has always kept its name).
    named = rule is not None and rule.mention_owners
    return replace(
        info,
        name=info.name if named else "",
        time_type=info.time_type if schedule else None,
        time_expression=info.time_expression if schedule else "",
        calendar=info.calendar if schedule else "",
        timeout_enabled=info.timeout_enabled and timeout,
        timeout_seconds=info.timeout_seconds if timeout else None,
    )


def list_read(config: Config, group: tuple[str, str]) -> bool:
    """Whether the planner reads the group's job list (plan._discovered_here), which then
    keeps the catalog's entries of the group fresh."""
    if discovery.discovers(config, group):
        return True
    return config.schedulerx.query != "every_job" and not plan.small_group(config, group)


def due(config: Config, catalog: Mapping[JobKey, JobInfo], now: float) -> list[JobKey]:
    """The jobs named by id to read with GetJobInfo this tick, those the catalog lacks first."""
    stale = config.schedulerx.discovery_interval.total_seconds()
    missing: list[JobKey] = []
    old: list[tuple[float, JobKey]] = []
    for rule in config.watch:
        if not needs_info(rule):
            continue
        for spec in rule.jobs:
            key = JobKey(rule.namespace, rule.group, spec.job_id)
            info = catalog.get(key)
            listed = list_read(config, (key.namespace, key.group))
            if info is None or (
                # Kept without its schedule while the entry had no missed_grace.
                not listed and rule.rules.missed_grace is not None and info.time_type is None
            ):
                missing.append(key)
            elif not listed and now - info.refreshed_at >= stale:
                old.append((info.refreshed_at, key))
    return [*dict.fromkeys(missing), *(key for _, key in sorted(old))]


@dataclass
class Refreshed:
    calls: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def refresh(
    config: Config,
    client: SchedulerXClient,
    catalog: dict[JobKey, JobInfo],
    budgets: Budgets,
    deadline: float,
    now: float,
    retry: RetryPolicy | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Refreshed:
    """Read the due jobs into `catalog` (in place); what could not be read, said."""
    jobs = due(config, catalog, now)
    done = Refreshed()
    if not jobs:
        return done
    lock = threading.Lock()
    failed: dict[JobKey, str] = {}
    left = max(0, budgets.left(JOB_INFO) - RESERVE)
    asked, later = jobs[:left], jobs[left:]
    policy = retry or RetryPolicy()

    def read(job: JobKey) -> None:
        tried = attempt(
            lambda: client.call(
                JOB_INFO,
                {"Namespace": job.namespace, "GroupId": job.group, "JobId": str(job.job_id)},
            ),
            budgets[JOB_INFO],
            deadline,
            client.timeout,
            policy,
            clock,
            sleep,
        )
        info = parse_answer(job, tried.value, now) if tried.value is not None else None
        with lock:
            done.calls += tried.calls
            if info is not None:
                listed = list_read(config, (job.namespace, job.group))
                catalog[job] = info if listed else for_rules(config, info)
            elif tried.error is not None:
                failed[job] = str(tried.error)
            elif tried.value is not None:
                failed[job] = "GetJobInfo's answer has no readable Data.JobConfigInfo"
            else:
                failed[job] = tried.stopped or "not asked"

    with ThreadPoolExecutor(max_workers=max(1, config.schedulerx.concurrency)) as pool:
        list(pool.map(read, asked))
    for job in later:
        failed[job] = "the GetJobInfo quota for this minute is used up"
    unknown = {job: why for job, why in failed.items() if job not in catalog}
    if unknown:
        job, why = sorted(unknown.items())[0]
        done.problems.append(
            f"{len(unknown)} job(s) named by id have no schedule or timeout to go by, so "
            f"missed_grace and stuck_after: job_timeout do not work for them yet, "
            f"e.g. job {job}: {why}"
        )
    for job, why in sorted(failed.items()):
        if job not in unknown:
            done.notes.append(f"job {job}: schedule and timeout not refreshed ({why})")
    return done


def parse_answer(job: JobKey, body: Any, now: float) -> JobInfo | None:
    """A GetJobInfo answer's job record; None when it holds none (evidence.py reads it too)."""
    data = body.get("Data") if isinstance(body, Mapping) else None
    config = data.get("JobConfigInfo") if isinstance(data, Mapping) else None
    if not isinstance(config, Mapping):
        return None
    try:
        return discovery.parse_job((job.namespace, job.group), {**config, "JobId": job.job_id}, now)
    except ValueError:
        return None
