"""The state document: what the previous ticks saw, announced and still owe.

It is one JSON object with a schema version. A reader refuses a newer
version (a newer deployment wrote it; overwriting would lose its data) and
treats an unparsable one as corrupt. Everything in it is bounded: instances
are pruned once SchedulerX no longer lists them and they are old, send
times once they leave the rate window.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from .model import JobInstance, JobKey

STATE_VERSION = 1


class StateFormatError(Exception):
    """The stored state is not a state document this version can read."""


class StateVersionError(StateFormatError):
    """The stored state was written by a newer schema version."""


@dataclass(frozen=True)
class InstanceRecord:
    status: int
    # Epoch seconds when this instance was last listed by SchedulerX.
    seen: float
    # Alert kinds (status labels) already raised for this attempt.
    alerted: tuple[str, ...] = ()
    # End time (epoch) of the attempt the record describes: a re-run of the
    # same instance ends at another time and is a new attempt to announce.
    ended: float | None = None


@dataclass(frozen=True)
class JobRecord:
    instances: dict[int, InstanceRecord] = field(default_factory=dict)
    polled_at: float | None = None


@dataclass(frozen=True)
class Alert:
    """One announcement owed to one receiver; the unit of delivery and dedup."""

    kind: str
    receiver: str
    instance: JobInstance
    job_name: str | None
    created_at: float
    attempts: int = 0
    last_error: str | None = None

    @property
    def key(self) -> str:
        inst = self.instance
        ended = int(inst.end_time.timestamp()) if inst.end_time else 0
        return f"{self.receiver}:{inst.job}:{inst.instance_id}:{self.kind}:{ended}"


@dataclass(frozen=True)
class RobotRecord:
    """Send history of one DingTalk robot, shared by every tick."""

    sent: tuple[float, ...] = ()
    blocked_until: float | None = None


@dataclass(frozen=True)
class HealthRecord:
    broken_ticks: int = 0
    impaired_announced: bool = False
    reason: str | None = None


@dataclass(frozen=True)
class State:
    jobs: dict[JobKey, JobRecord] = field(default_factory=dict)
    outbox: tuple[Alert, ...] = ()
    robots: dict[str, RobotRecord] = field(default_factory=dict)
    # Epoch seconds of recent SchedulerX calls, so ticks share one quota.
    api_calls: tuple[float, ...] = ()
    health: HealthRecord = HealthRecord()
    # Generation of the lease held by the tick that wrote this state.
    lease_generation: int = 0
    updated_at: float | None = None

    def with_updates(self, **changes: Any) -> State:
        return replace(self, **changes)


# -- JSON codec ---------------------------------------------------------------


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse_dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def instance_to_dict(inst: JobInstance) -> dict[str, Any]:
    return {
        "job": str(inst.job),
        "id": inst.instance_id,
        "status": inst.status_code,
        "result": inst.result,
        "progress": inst.progress,
        "schedule_time": _dt(inst.schedule_time),
        "start_time": _dt(inst.start_time),
        "end_time": _dt(inst.end_time),
        "data_time": _dt(inst.data_time),
        "time_type": inst.time_type,
        "trigger_type": inst.trigger_type,
        "work_addr": inst.work_addr,
        "executor": inst.executor,
    }


def instance_from_dict(raw: dict[str, Any]) -> JobInstance:
    return JobInstance(
        job=JobKey.parse(raw["job"]),
        instance_id=int(raw["id"]),
        status_code=int(raw["status"]),
        result=str(raw.get("result") or ""),
        progress=str(raw.get("progress") or ""),
        schedule_time=_parse_dt(raw.get("schedule_time")),
        start_time=_parse_dt(raw.get("start_time")),
        end_time=_parse_dt(raw.get("end_time")),
        data_time=_parse_dt(raw.get("data_time")),
        time_type=raw.get("time_type"),
        trigger_type=raw.get("trigger_type"),
        work_addr=str(raw.get("work_addr") or ""),
        executor=str(raw.get("executor") or ""),
    )


def alert_to_dict(alert: Alert) -> dict[str, Any]:
    return {
        "kind": alert.kind,
        "receiver": alert.receiver,
        "instance": instance_to_dict(alert.instance),
        "job_name": alert.job_name,
        "created_at": alert.created_at,
        "attempts": alert.attempts,
        "last_error": alert.last_error,
    }


def alert_from_dict(raw: dict[str, Any]) -> Alert:
    return Alert(
        kind=str(raw["kind"]),
        receiver=str(raw["receiver"]),
        instance=instance_from_dict(raw["instance"]),
        job_name=raw.get("job_name"),
        created_at=float(raw["created_at"]),
        attempts=int(raw.get("attempts", 0)),
        last_error=raw.get("last_error"),
    )


def dump_state(state: State) -> bytes:
    doc = {
        "version": STATE_VERSION,
        "updated_at": state.updated_at,
        "lease_generation": state.lease_generation,
        "jobs": {
            str(key): {
                "polled_at": record.polled_at,
                "instances": {
                    str(iid): {
                        "status": r.status,
                        "seen": r.seen,
                        "alerted": list(r.alerted),
                        "ended": r.ended,
                    }
                    for iid, r in sorted(record.instances.items())
                },
            }
            for key, record in sorted(state.jobs.items())
        },
        "outbox": [alert_to_dict(a) for a in state.outbox],
        "robots": {
            name: {"sent": list(r.sent), "blocked_until": r.blocked_until}
            for name, r in sorted(state.robots.items())
        },
        "api_calls": list(state.api_calls),
        "health": {
            "broken_ticks": state.health.broken_ticks,
            "impaired_announced": state.health.impaired_announced,
            "reason": state.health.reason,
        },
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def load_state(data: bytes) -> State:
    """Parse a stored document; StateVersionError / StateFormatError when unusable."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateFormatError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise StateFormatError("not a JSON object")
    version = doc.get("version")
    if not isinstance(version, int):
        raise StateFormatError("no schema version")
    if version > STATE_VERSION:
        raise StateVersionError(
            f"written by schema version {version}; this deployment reads up to {STATE_VERSION}"
        )
    try:
        return _from_doc(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StateFormatError(f"malformed document: {type(exc).__name__}: {exc}") from None


def _from_doc(doc: dict[str, Any]) -> State:
    jobs = {
        JobKey.parse(key): JobRecord(
            instances={
                int(iid): InstanceRecord(
                    status=int(r["status"]),
                    seen=float(r["seen"]),
                    alerted=tuple(str(k) for k in r.get("alerted", ())),
                    ended=r.get("ended"),
                )
                for iid, r in raw["instances"].items()
            },
            polled_at=raw.get("polled_at"),
        )
        for key, raw in doc.get("jobs", {}).items()
    }
    robots = {
        str(name): RobotRecord(
            sent=tuple(float(t) for t in raw.get("sent", ())),
            blocked_until=raw.get("blocked_until"),
        )
        for name, raw in doc.get("robots", {}).items()
    }
    health_raw = doc.get("health") or {}
    return State(
        jobs=jobs,
        outbox=tuple(alert_from_dict(a) for a in doc.get("outbox", ())),
        robots=robots,
        api_calls=tuple(float(t) for t in doc.get("api_calls", ())),
        health=HealthRecord(
            broken_ticks=int(health_raw.get("broken_ticks", 0)),
            impaired_announced=bool(health_raw.get("impaired_announced", False)),
            reason=health_raw.get("reason"),
        ),
        lease_generation=int(doc.get("lease_generation", 0)),
        updated_at=doc.get("updated_at"),
    )
