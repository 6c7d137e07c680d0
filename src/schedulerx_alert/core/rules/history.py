"""What the rules read about one job: this tick's listing, what earlier ticks saw, its schedule."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from schedulerx_alert.core.model import JobInstance, JobKey

# TimeConfig.TimeType of a cron job (core/schedule.py's TimeType.CRON): the only
# kind with fire times a run can miss. Fixed rate, second delay and API are never missed.
CRON = 1


@dataclass(frozen=True)
class Seen:
    """What an earlier tick saw of one instance: enough to tell a new outcome from an old one."""

    status: int
    # The attempt (`JobInstance.attempt`: SchedulerX's zone-free EndTime), so that the
    # state's own record of an instance (status, end) says the same thing.
    attempt: str | None

    @classmethod
    def of(cls, inst: JobInstance) -> Seen:
        return cls(inst.status_code, inst.attempt)


@dataclass(frozen=True)
class JobHistory:
    """One watched job this tick: its listing(s) and what the state remembers of its instances.

    A job that was not read this tick (its listing failed, or it was not due) has an empty
    history read up to nowhere (`NOT_READ`): the rules that need no new run still run.
    """

    job: JobKey
    instances: tuple[JobInstance, ...]
    seen: Mapping[int, Seen] = field(default_factory=dict)
    # Outcomes that ended before this count towards streaks but are not announced (the
    # first poll of a job whose past nobody watched).
    quiet_before: float | None = None
    # Every run of the job up to this time is known (listed this tick or remembered by the
    # rules): fires whose run would come later are not judged yet. A complete listing is
    # read up to now; a group query up to where its windows and scans reach.
    covered: float = math.inf

    def outcomes(self) -> list[JobInstance]:
        """Attempts that ended since an earlier tick saw them, oldest first."""
        # Two listings (a group query and a job's own) may both carry an instance.
        latest = {inst.instance_id: inst for inst in self.instances}
        new = [
            inst
            for iid, inst in latest.items()
            if inst.terminal and self.seen.get(iid) != Seen.of(inst)
        ]
        return sorted(new, key=_order)

    def remembered(self) -> dict[int, Seen]:
        """`seen` for the next tick; the caller prunes it as it prunes its instance records."""
        return {**self.seen, **{inst.instance_id: Seen.of(inst) for inst in self.instances}}

    def quiet(self, inst: JobInstance) -> bool:
        finished = inst.finished_at
        if self.quiet_before is None:
            return False
        return finished is None or finished.timestamp() < self.quiet_before


#: `JobHistory.covered` of a job not read this tick.
NOT_READ = -math.inf


def not_read(job: JobKey) -> JobHistory:
    """The history of a watched job nothing was read of this tick."""
    return JobHistory(job, (), covered=NOT_READ)


def ended_at(inst: JobInstance, now: float) -> float:
    """When a run ended, for streaks and flap history; `now` when SchedulerX gave no time."""
    finished = inst.finished_at
    return finished.timestamp() if finished else now


def behind(inst: JobInstance, latest: float | None, now: float) -> bool:
    """Whether an outcome ended before the latest one the rules took
    (`JobRuleState.last_outcome_at`): the past, listed late or listed again after its
    record was let go, not what the job does now."""
    return latest is not None and ended_at(inst, now) < latest


def _order(inst: JobInstance) -> tuple[float, int]:
    finished = inst.finished_at
    return (finished.timestamp() if finished else 0.0, inst.instance_id)


class FireTimes(Protocol):
    """When a job is due; core/schedule.Schedule is the real one."""

    def fires_between(self, after: float, until: float, limit: int) -> list[float]:
        """Fire times in (after, until], earliest first, at most `limit` of them."""
        ...


@dataclass(frozen=True)
class JobSchedule:
    """What the job's own configuration (GetJobInfo / ListJobs) says; all optional."""

    # TimeConfig.TimeType; None when unknown.
    time_type: int | None = None
    fires: FireTimes | None = None
    enabled: bool = True
    # JobMonitorInfo.MonitorConfig.Timeout in seconds, only when TimeoutEnable is on.
    timeout: float | None = None
    # The zone the cron is read in, for "expected at 02:00" in the job's own time.
    zone: str = ""

    @property
    def can_miss(self) -> bool:
        return self.enabled and self.time_type == CRON and self.fires is not None


UNKNOWN_SCHEDULE = JobSchedule()
