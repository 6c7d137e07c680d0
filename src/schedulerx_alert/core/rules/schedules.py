"""What the rules read about a job's own configuration, from the catalog's `JobInfo`.

Missed runs need the fire times (`TimeConfig`, read by core/schedule.py in the zone the
config names) and stuck runs the job's own timeout alarm (`JobMonitorInfo`). A job the
catalog does not know, or whose schedule cannot be computed, gets what is known: no
fire times (it is never called missed), and its timeout if it has one.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from schedulerx_alert.core.model import JobKey
from schedulerx_alert.core.rules.history import CRON, JobSchedule

if TYPE_CHECKING:
    from schedulerx_alert.core.catalog import JobInfo
    from schedulerx_alert.core.schedule import Schedule


def schedule_of(info: JobInfo, zone: str) -> JobSchedule:
    timeout = info.timeout_seconds if info.timeout_enabled and info.timeout_seconds else None
    fires = None
    if info.time_type == CRON:
        fires = _cron_fires(info.time_type, info.time_expression, zone, info.calendar)
    return JobSchedule(
        time_type=info.time_type,
        fires=fires,
        enabled=info.enabled,
        timeout=timeout,
        zone=zone,
    )


def schedules_of(
    catalog: Mapping[JobKey, JobInfo], jobs: Mapping[JobKey, object], zone: str
) -> Mapping[JobKey, JobSchedule]:
    """The schedules of the watched `jobs` the catalog knows, each read when first asked
    for: the rules skip most jobs of a large estate most ticks (rules/engine.py `_idle`)."""
    return _Schedules(catalog, jobs, zone)


class _Schedules(Mapping[JobKey, JobSchedule]):
    def __init__(
        self, catalog: Mapping[JobKey, JobInfo], jobs: Mapping[JobKey, object], zone: str
    ) -> None:
        self._catalog = catalog
        self._jobs = jobs
        self._zone = zone
        self._read: dict[JobKey, JobSchedule] = {}

    def __getitem__(self, job: JobKey) -> JobSchedule:
        found = self._read.get(job)
        if found is None:
            if job not in self._jobs or job not in self._catalog:
                raise KeyError(job)
            found = self._read[job] = schedule_of(self._catalog[job], self._zone)
        return found

    def __contains__(self, job: object) -> bool:
        return job in self._jobs and job in self._catalog

    def __iter__(self) -> Iterator[JobKey]:
        return (job for job in self._jobs if job in self._catalog)

    def __len__(self) -> int:
        return sum(1 for _ in self)


# Every tick reads every watched job's schedule: thousands of jobs share far fewer crons
# (an estate of 5,000 has about 1,400), and a Schedule is immutable.
@functools.lru_cache(maxsize=8192)
def _cron_fires(time_type: int, expression: str, zone: str, calendar: str) -> Schedule | None:
    # Only cron jobs have fire times to compute: the rest never load the parser.
    from schedulerx_alert.core.schedule import Schedule, ScheduleError

    try:
        schedule = Schedule.from_time_config(time_type, expression, zone, calendar=calendar)
    except ScheduleError:
        return None
    # A custom calendar only removes fires: calling its other fires missed would be wrong.
    return schedule if schedule.exact else None
