"""What SchedulerX says about a job itself (ListJobs / GetJobInfo), not about its runs.

Discovery fills it (sources); the rules read it (missed runs need the schedule,
stuck runs the job's own timeout, routing the owners). One record, shared by
both, so that neither keeps a second idea of what a job is.
"""

from __future__ import annotations

from dataclasses import dataclass

from schedulerx_alert.core.model import JobKey


@dataclass(frozen=True)
class Contact:
    """One of the job's alarm contacts (JobMonitorInfo.ContactInfo)."""

    name: str = ""
    phone: str = ""
    user_id: str = ""


@dataclass(frozen=True)
class JobInfo:
    job: JobKey
    name: str
    enabled: bool = True
    # TimeConfig: TimeType (core/schedule.TimeType codes) and TimeExpression as SchedulerX
    # writes them; core/schedule.py turns them into fire times.
    time_type: int | None = None
    time_expression: str = ""
    calendar: str = ""
    # JobMonitorInfo.MonitorConfig: the job's own timeout alarm, in seconds.
    timeout_enabled: bool = False
    timeout_seconds: float | None = None
    contacts: tuple[Contact, ...] = ()
    # When this record was last confirmed by SchedulerX (epoch seconds).
    refreshed_at: float = 0.0
