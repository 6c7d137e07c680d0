"""What a rule found: the unit routing and templates work on, not a run.

A failure has one run behind it, but a missed fire, a flapping job or a shared
cause across twelve jobs has none or many. A finding names its subject, the
runs behind it (possibly none), the facts a template needs, and a fingerprint:
two findings with the same fingerprint are the same announcement.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from schedulerx_alert.core.model import JobInstance, JobKey

# Kinds that are not a run's own status label (failed, rejected, killed, ...).
RECOVERED = "recovered"
STUCK = "stuck"
MISSED = "missed"
FLAPPING = "flapping"
SETTLED = "settled"
SHARED_CAUSE = "shared_cause"
# A workflow instance (core/workflows.py) that failed, and the next one that succeeded.
WORKFLOW_FAILED = "workflow_failed"
WORKFLOW_RECOVERED = "workflow_recovered"
NOT_A_RUN_STATUS = frozenset(
    {RECOVERED, STUCK, MISSED, FLAPPING, SETTLED, SHARED_CAUSE, WORKFLOW_FAILED, WORKFLOW_RECOVERED}
)

# Template inputs stay plain values so a finding can be stored and rendered as is.
Fact = str | int | float | bool | None | tuple[str, ...] | tuple[float, ...]
Facts = Mapping[str, Fact]
_NO_FACTS: Facts = MappingProxyType({})


@dataclass(frozen=True)
class Finding:
    kind: str
    # A job key ("ns/group/id"), an application group, or "monitor".
    subject: str
    fingerprint: str
    at: float
    instances: tuple[JobInstance, ...] = ()
    # The jobs a receiver is chosen by; more than one only for a shared cause.
    jobs: tuple[JobKey, ...] = ()
    facts: Facts = field(default_factory=lambda: _NO_FACTS, hash=False)

    @property
    def is_run_failure(self) -> bool:
        """A single run ended in a status the job's settings announce."""
        return self.kind not in NOT_A_RUN_STATUS


def finding(
    kind: str,
    job: JobKey,
    fingerprint: str,
    at: float,
    instances: tuple[JobInstance, ...] = (),
    **facts: Fact,
) -> Finding:
    """A finding about one job, with read-only facts."""
    return Finding(
        kind=kind,
        subject=str(job),
        fingerprint=fingerprint,
        at=at,
        instances=instances,
        jobs=(job,),
        facts=MappingProxyType(dict(facts)),
    )


def job_fingerprint(kind: str, job: JobKey, *detail: object) -> str:
    """`kind:job:detail...`, the one shape of a finding's fingerprint about one job.

    The job is written percent-encoded (`JobKey.encode`), so it holds no `:` and two
    jobs never share a fingerprint; `job_of_fingerprint` reads it back.
    """
    return ":".join((kind, job.encode(), *(str(part) for part in detail)))


def job_of_fingerprint(fingerprint: str) -> JobKey | None:
    """The job a fingerprint made by `job_fingerprint` names; None for any other."""
    parts = fingerprint.split(":", 2)
    if len(parts) < 2:
        return None
    try:
        return JobKey.decode(parts[1])
    except ValueError:
        return None


def attempt_id(inst: JobInstance) -> str:
    """One attempt of a run: a re-run keeps the instance id but ends at another time.

    The end is SchedulerX's own zone-free EndTime (`JobInstance.attempt`), as the state
    has always keyed attempts, so correcting the configured `timezone` makes no known
    attempt look new, and an alert key of schema version 2 maps onto this one.
    """
    return f"{inst.job.encode()}:{inst.instance_id}:{inst.attempt or ''}"
