"""Domain records: what SchedulerX tells us about a job's runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import NamedTuple
from urllib.parse import quote, unquote


class InstanceStatus(IntEnum):
    """com.alibaba.schedulerx.common.domain.InstanceStatus."""

    UNKNOWN = 0
    WAITING = 1
    READY = 2
    RUNNING = 3
    SUCCESS = 4
    FAILED = 5
    KILLED = 6
    PAUSED = 7
    SUBMITTED = 8
    REJECTED = 9
    ACCEPTED = 10
    PARTIAL_FAILED = 11
    SKIPPED = 12
    REMOVED = 99

    @classmethod
    def parse(cls, code: int) -> InstanceStatus | None:
        """The status for a code, or None for a code this version does not know."""
        try:
            return cls(code)
        except ValueError:
            return None

    @property
    def label(self) -> str:
        return self.name.lower()


# Statuses after which an instance does not change by itself; killed and
# rejected are listed because in practice SchedulerX leaves them there.
TERMINAL = frozenset(
    {
        InstanceStatus.SUCCESS,
        InstanceStatus.FAILED,
        InstanceStatus.KILLED,
        InstanceStatus.REJECTED,
        InstanceStatus.PARTIAL_FAILED,
        InstanceStatus.SKIPPED,
        InstanceStatus.REMOVED,
    }
)


class TriggerType(IntEnum):
    SCHEDULED = 1
    DATA_RERUN = 2
    API = 3
    MANUAL_RERUN = 4
    SYSTEM_RETRY = 5


class JobKey(NamedTuple):
    """A job is only unique within its namespace and application group.

    A tuple, so that hashing and comparing it run in C: a 20,000-job tick hashes keys
    about 400,000 times (every dict over the watched jobs). It orders as the dataclass it
    was did (namespace, group, job id); unlike it, it also equals a plain tuple of the
    same fields, which no key is ever compared with.
    """

    namespace: str
    group: str
    job_id: int

    def __str__(self) -> str:
        return f"{self.namespace}/{self.group}/{self.job_id}"

    def encode(self) -> str:
        """The key's form in the state: percent-encoded parts, so that any namespace or
        group (a `/` included) comes back intact; common names read as `__str__`."""
        return "/".join((_quote(self.namespace), _quote(self.group), str(self.job_id)))

    @classmethod
    def decode(cls, text: str) -> JobKey:
        """The inverse of `encode`; ValueError for anything it could not have written."""
        namespace, group, job_id = text.split("/")
        key = cls(_unquote(namespace), _unquote(group), int(job_id))
        if key.encode() != text:
            raise ValueError(f"not a job key: {text!r}")
        return key

    @classmethod
    def parse(cls, text: str) -> JobKey:
        """A key as schema version 1 wrote it (unencoded, split at the last two `/`)."""
        namespace, group, job_id = text.rsplit("/", 2)
        return cls(namespace, group, int(job_id))


def _quote(text: str) -> str:
    # surrogatepass: SchedulerX's JSON may carry lone surrogates, which must round-trip.
    return quote(text, safe="", errors="surrogatepass")


def _unquote(text: str) -> str:
    return unquote(text, errors="surrogatepass")


@dataclass(frozen=True)
class JobInstance:
    """One run of a job, as GetJobInstanceList reports it."""

    job: JobKey
    instance_id: int
    status_code: int
    result: str = ""
    progress: str = ""
    schedule_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    data_time: datetime | None = None
    time_type: int | None = None
    trigger_type: int | None = None
    work_addr: str = ""
    executor: str = ""

    @property
    def status(self) -> InstanceStatus | None:
        return InstanceStatus.parse(self.status_code)

    @property
    def terminal(self) -> bool:
        status = self.status
        return status is not None and status in TERMINAL

    @property
    def status_label(self) -> str:
        status = self.status
        return status.label if status is not None else f"unknown({self.status_code})"

    @property
    def finished_at(self) -> datetime | None:
        """When the run ended, falling back to when it was due."""
        return self.end_time or self.start_time or self.schedule_time

    @property
    def attempt(self) -> str | None:
        """Which attempt of the instance this is: its EndTime as SchedulerX's wall clock
        showed it, whatever zone the config reads it in (a re-run of the same instance
        ends at another time). None while it has not ended."""
        if self.end_time is None:
            return None
        return self.end_time.replace(tzinfo=None).isoformat(sep=" ")
