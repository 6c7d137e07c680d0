"""The state document: what the previous ticks saw, announced and still owe.

It is one JSON object with a schema version. A reader refuses a newer
version (a newer deployment wrote it; overwriting would lose its data),
migrates an older one, and treats anything else it cannot decode, in any
field, as corrupt: decoding is total, so a stored document can stop nothing
but itself. Everything in it is bounded: instances are pruned once
SchedulerX no longer lists them and they are old, send times once they
leave the rate window, pending alerts after a maximum age, error texts to
what a message can show.

Times are epoch seconds (or ISO strings with an offset inside a pending
alert's run), never local times; the one exception is an attempt's identity,
which is SchedulerX's own zone-free EndTime string, so that correcting the
configured `timezone` cannot make a known attempt look new.

Mid-tick checkpoints are `Journal` objects beside the state (see storage/session.py):
small, one per message DingTalk accepted, applied by the next loader.

Optional keys (`last_tick`, a pending alert's `evidence`, `catalog`, `sources`) were
added within a version: a reader that predates one ignores it, as every reader ignores
keys it does not know. A new version is a new migration in core/migrations.py, which
brings every older document up to this one before it is read; this reader knows only
the newest version (5: what the rules remember of fires and what group queries
remember of unfinished runs between scans).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from schedulerx_alert.core import evidence as evidence_codec
from schedulerx_alert.core import polling
from schedulerx_alert.core.evidence import NO_EVIDENCE, Evidence
from schedulerx_alert.core.findings import Fact, Finding, job_fingerprint
from schedulerx_alert.core.heartbeat_record import HeartbeatRecord
from schedulerx_alert.core.model import JobInstance, JobKey
from schedulerx_alert.core.polling import SourceState
from schedulerx_alert.core.rules.memory import EMPTY, JobRuleState, MemoryFormatError
from schedulerx_alert.core.rules.memory import memory_from_json as _memory_from_json
from schedulerx_alert.core.rules.memory import memory_to_json as _memory_to_json

#: The JSON values a rule memory may be shared by (hashable, compared with their type).
_PLAIN = frozenset({str, int, float, bool, type(None)})

if TYPE_CHECKING:
    from schedulerx_alert.core.catalog import JobInfo
    from schedulerx_alert.core.silence_hold import Held

STATE_VERSION = 7
# Characters of a run's error text kept in a pending alert: more than any
# message shows (render's longest excerpt is 1500), so trimming changes no text.
RESULT_KEEP = 2000
# Worker address, executor and progress: a message shows at most 100 characters
# of each, and a 30 KB WorkAddr must not make a 30 KB state.
FIELD_KEEP = 256
ERROR_KEEP = 500
# A finding behind a pending alert, kept within bounds however many jobs share a cause:
# the runs (the first with its whole error text, the others with a line of it), the
# jobs, and each fact's text and list.
MAX_ALERT_INSTANCES = 100
OTHER_RESULT_KEEP = 300
MAX_ALERT_JOBS = 1000
FACT_KEEP = RESULT_KEEP
MAX_FACT_ITEMS = 200
FACT_ITEM_KEEP = 300
TRIMMED = " …"
# Epoch seconds a stored time may take (up to the year 5138).
MAX_TIME = 1e11
# Lease generations stay exact in any JSON reader.
MAX_GENERATION = 2**53


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
    # The attempt the record describes, by its EndTime as SchedulerX wrote it
    # (zone-free, see `attempt_of`): a re-run of the same instance ends at
    # another time and is a new attempt to announce.
    end: str | None = None
    # Schema version 1 knew the attempt only as an epoch computed in the zone
    # configured then; compared as such until the run is listed again.
    end_v1: float | None = None


@dataclass(frozen=True)
class JobRecord:
    instances: dict[int, InstanceRecord] = field(default_factory=dict)
    polled_at: float | None = None
    # What the alert rules remember of the job between ticks (streaks, stuck runs,
    # missed fires checked, flap history); stored only when not all defaults.
    rules: JobRuleState = EMPTY


def attempt_of(inst: JobInstance) -> str | None:
    """An attempt's identity: its end as SchedulerX's wall clock showed it, whatever
    zone the config reads it in."""
    return inst.attempt


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + TRIMMED


@dataclass(frozen=True)
class Alert:
    """One announcement owed to one receiver: a finding routed to it; the unit of
    delivery and dedup. A finding may have no run behind it (a missed fire) or many
    (a shared cause)."""

    receiver: str
    finding: Finding
    created_at: float
    # The configured names of the finding's jobs, in its order ("" for a job without one).
    names: tuple[str, ...] = ()
    attempts: int = 0
    last_error: str | None = None
    # Owners to @-mention and the run's log lines, gathered once (core/evidence.py).
    evidence: Evidence = NO_EVIDENCE
    # Every receiver the finding was routed to when this alert was made: each was owed
    # its own copy, so a pending alert whose receiver goes is never re-routed to them.
    peers: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return self.finding.kind

    @property
    def fingerprint(self) -> str:
        return self.finding.fingerprint

    @property
    def instances(self) -> tuple[JobInstance, ...]:
        return self.finding.instances

    @property
    def jobs(self) -> tuple[JobKey, ...]:
        return self.finding.jobs

    @property
    def facts(self) -> Mapping[str, Fact]:
        return self.finding.facts

    @property
    def instance(self) -> JobInstance | None:
        """The run behind it, or the first of them; None when there is none."""
        return self.finding.instances[0] if self.finding.instances else None

    @property
    def job(self) -> JobKey | None:
        return self.finding.jobs[0] if self.finding.jobs else None

    @property
    def job_name(self) -> str | None:
        return self.name_of(self.job) if self.job is not None else None

    def name_of(self, job: JobKey) -> str | None:
        for known, name in zip(self.finding.jobs, self.names, strict=False):
            if known == job:
                return name or None
        return None

    @property
    def key(self) -> str:
        # Two different alerts never share a key: the receiver part holds no ':', and a
        # fingerprint is unique to its announcement.
        return f"{receiver_key(self.receiver)}:{self.fingerprint}"

    @property
    def keys(self) -> tuple[str, ...]:
        """Its key and, for a shared cause, the keys its member failures have alone: a
        checkpoint names them all, so a takeover that finds one more job failing for the
        same cause announces that one only (diff.route takes delivered failures out
        before it groups)."""
        members = self.facts.get("members")
        if not isinstance(members, tuple):
            return (self.key,)
        receiver = receiver_key(self.receiver)
        return (self.key, *(f"{receiver}:{m}" for m in members if isinstance(m, str)))


def receiver_key(receiver: str) -> str:
    """How an alert key names its receiver: percent-encoded, so it holds no ':'."""
    return quote(receiver, safe="", errors="surrogatepass")


def run_alert(
    kind: str,
    receiver: str,
    instance: JobInstance,
    job_name: str | None,
    created_at: float,
    **facts: Fact,
) -> Alert:
    """An alert for one run that ended in `kind` (a status label), as the failure rule
    finds it: schema version 2's alerts, samples and tests."""
    finding = Finding(
        kind=kind,
        subject=str(instance.job),
        fingerprint=job_fingerprint(
            kind, instance.job, instance.instance_id, instance.attempt or ""
        ),
        at=created_at,
        instances=(instance,),
        jobs=(instance.job,),
        facts=MappingProxyType(dict(facts)),
    )
    return Alert(receiver, trim(finding), created_at, (job_name or "",))


def trim(finding: Finding) -> Finding:
    """The finding within what a pending alert keeps (see MAX_ALERT_INSTANCES)."""
    instances = tuple(
        replace(inst, result=clip(inst.result, RESULT_KEEP if n == 0 else OTHER_RESULT_KEEP))
        for n, inst in enumerate(finding.instances[:MAX_ALERT_INSTANCES])
    )
    facts = MappingProxyType({name: _trim_fact(value) for name, value in finding.facts.items()})
    return replace(finding, instances=instances, jobs=finding.jobs[:MAX_ALERT_JOBS], facts=facts)


def _trim_fact(value: Fact) -> Fact:
    if isinstance(value, str):
        return clip(value, FACT_KEEP)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, tuple):
        items = value[:MAX_FACT_ITEMS]
        if all(isinstance(v, str) for v in items):
            return tuple(clip(str(v), FACT_ITEM_KEEP) for v in items)
        return tuple(float(v) for v in items if isinstance(v, (int, float)) and math.isfinite(v))
    return value


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


# Characters kept of the last tick's first problem: one line of a status page.
PROBLEM_KEEP = 300
STATUS_KEEP = 40
# Receivers an alert remembers as owed the same finding (more are never configured).
MAX_PEERS = 200
OWNER_KEEP = 200


@dataclass(frozen=True)
class TickRecord:
    """A compact summary of the last tick that committed, for `state show`."""

    status: str
    # Epoch seconds when the tick started.
    at: float
    duration_ms: int
    # Who ran it: the FC request id (the lease's owner).
    owner: str
    jobs: int
    polled: int
    alerts_new: int
    alerts_sent: int
    alerts_pending: int
    problems: int
    # The first problem, which is the most fundamental one (see tick.py).
    problem: str | None = None


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
    # Pending alerts dropped for their age, per receiver, until a message to
    # that receiver has said how many.
    expired: dict[str, int] = field(default_factory=dict)
    # Alerts a tick that died had delivered (its journal says so) but whose
    # runs the state does not mark as announced yet: key -> when delivered.
    # The diff raises none of them again.
    delivered: dict[str, float] = field(default_factory=dict)
    # Optional: a reader of the same version that predates it ignores it.
    last_tick: TickRecord | None = None
    # What discovery found out about the watched groups' jobs (ListJobs); optional like
    # last_tick: a reader that predates it drops it, and the next discovery fills it again.
    catalog: dict[JobKey, JobInfo] = field(default_factory=dict)
    # How far each group's runs have been read, and what its server turned out to do.
    sources: SourceState = field(default_factory=SourceState)
    # The heartbeat's counters and last digest; written only when not empty.
    heartbeat: HeartbeatRecord = field(default_factory=HeartbeatRecord)
    # What silences and quiet hours held back, per receiver, until a digest lists it
    # (core/silence_hold.py); optional like `catalog`, see the module's docstring.
    silenced: dict[str, tuple[Held, ...]] = field(default_factory=dict)

    def with_updates(self, **changes: Any) -> State:
        return replace(self, **changes)

    def mentioned(self, counts: Mapping[str, int]) -> State:
        """The state after messages told receivers of `counts` expired alerts."""
        expired = {
            name: left
            for name, count in self.expired.items()
            if (left := count - counts.get(name, 0)) > 0
        }
        return replace(self, expired=expired)


@dataclass(frozen=True)
class Journal:
    """A checkpoint: what one tick recorded after a message DingTalk accepted."""

    at: float
    delivered: tuple[str, ...]
    robots: dict[str, RobotRecord] = field(default_factory=dict)
    # The tick's recent SchedulerX calls, in the first journal of a tick only.
    api_calls: tuple[float, ...] | None = None


def apply_journals(state: State, journals: Iterable[Journal]) -> State:
    """The state as the ticks that wrote `journals` (oldest first) left it."""
    outbox = list(state.outbox)
    delivered = dict(state.delivered)
    robots = dict(state.robots)
    api_calls = state.api_calls
    for journal in journals:
        keys = set(journal.delivered)
        remaining = [a for a in outbox if a.key not in keys]
        found = {a.key for a in outbox} - {a.key for a in remaining}
        outbox = remaining
        delivered.update((k, journal.at) for k in journal.delivered if k not in found)
        # A journal's robot records and call times grew from the state it
        # was loaded with, so they replace what the state holds.
        robots.update(journal.robots)
        if journal.api_calls is not None:
            api_calls = journal.api_calls
    return replace(
        state, outbox=tuple(outbox), delivered=delivered, robots=robots, api_calls=api_calls
    )


# -- JSON codec ---------------------------------------------------------------------
#
# Writing: surrogates that JSON let into a string (SchedulerX's answers, an
# old state) are written as JSON escapes, which read back as the same text.
# Reading: every field is checked for its type and range, and the first
# mismatch is a StateFormatError naming where it is.


def _to_bytes(doc: Any) -> bytes:
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8", "backslashreplace")


def _from_bytes(data: bytes) -> Any:
    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not a number JSON allows")

    try:
        return json.loads(data.decode("utf-8"), parse_constant=no_constants)
    except UnicodeDecodeError as exc:
        raise StateFormatError(f"not UTF-8: {exc}") from None
    except RecursionError:
        raise StateFormatError("nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, ints of 4300+ digits
        raise StateFormatError(f"not JSON: {exc}") from None


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def instance_to_dict(inst: JobInstance) -> dict[str, Any]:
    return {
        "job": inst.job.encode(),
        "id": inst.instance_id,
        "status": inst.status_code,
        "result": clip(inst.result, RESULT_KEEP),
        "progress": clip(inst.progress, FIELD_KEEP),
        "schedule_time": _dt(inst.schedule_time),
        "start_time": _dt(inst.start_time),
        "end_time": _dt(inst.end_time),
        "data_time": _dt(inst.data_time),
        "time_type": inst.time_type,
        "trigger_type": inst.trigger_type,
        "work_addr": clip(inst.work_addr, FIELD_KEEP),
        "executor": clip(inst.executor, FIELD_KEEP),
    }


def alert_to_dict(alert: Alert) -> dict[str, Any]:
    found = trim(alert.finding)
    raw: dict[str, Any] = {
        "kind": found.kind,
        "receiver": alert.receiver,
        "fingerprint": found.fingerprint,
        "subject": found.subject,
        "instances": [instance_to_dict(inst) for inst in found.instances],
        "jobs": [job.encode() for job in found.jobs],
        "names": list(alert.names[: len(found.jobs)]),
        "facts": {name: _fact_to_json(value) for name, value in sorted(found.facts.items())},
        "created_at": alert.created_at,
        "attempts": alert.attempts,
        "last_error": None if alert.last_error is None else clip(alert.last_error, ERROR_KEEP),
    }
    # Optional within version 3, like last_tick: a reader that predates it drops it, and
    # the alert then goes without its log and owners, never without its finding.
    if alert.evidence != NO_EVIDENCE:
        raw["evidence"] = evidence_codec.to_json(alert.evidence)
    if alert.peers:  # optional like evidence: a reader that predates it re-routes to all
        raw["peers"] = list(alert.peers)
    return raw


def _fact_to_json(value: Fact) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _robot_to_dict(record: RobotRecord) -> dict[str, Any]:
    return {"sent": list(record.sent), "blocked_until": record.blocked_until}


def _record_to_dict(record: InstanceRecord) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "status": record.status,
        "seen": record.seen,
        "alerted": list(record.alerted),
        "end": record.end,
    }
    if record.end_v1 is not None:
        raw["end_v1"] = record.end_v1
    return raw


def dump_state(state: State, catalog_object: str = "") -> bytes:
    """The state document; with `catalog_object`, the catalog is not in it but in that
    object (written by the storage only when the catalog changes, `dump_catalog`)."""
    doc: dict[str, Any] = {
        "version": STATE_VERSION,
        "updated_at": state.updated_at,
        "lease_generation": state.lease_generation,
        "jobs": _jobs_to_dict(state.jobs),
        "outbox": [alert_to_dict(a) for a in state.outbox],
        "robots": {name: _robot_to_dict(r) for name, r in sorted(state.robots.items())},
        "api_calls": list(state.api_calls),
        "health": {
            "broken_ticks": state.health.broken_ticks,
            "impaired_announced": state.health.impaired_announced,
            "reason": state.health.reason,
        },
        "expired": dict(sorted(state.expired.items())),
        "delivered": dict(sorted(state.delivered.items())),
    }
    if state.last_tick is not None:
        doc["last_tick"] = _tick_to_dict(state.last_tick)
    if state.catalog and catalog_object:
        doc["catalog_object"] = catalog_object
    elif state.catalog:
        from schedulerx_alert.core import (
            catalog_codec,  # only a state that knows jobs from their lists
        )

        doc["catalog"] = catalog_codec.encode(state.catalog)
    if state.sources != SourceState():
        doc["sources"] = polling.encode(state.sources)
    if state.heartbeat != HeartbeatRecord():
        from schedulerx_alert.core import (
            heartbeat_codec,  # a deployment without `heartbeat:` never needs it
        )

        doc["heartbeat"] = heartbeat_codec.encode(state.heartbeat)
    if state.silenced:
        from schedulerx_alert.core import (
            silence_hold as held,  # only silences and quiet hours hold anything back
        )

        doc["silenced"] = held.encode(state.silenced)
    return _to_bytes(doc)


def _jobs_to_dict(jobs: Mapping[JobKey, JobRecord]) -> dict[str, Any]:
    # Most jobs remember the same few values: each distinct memory is written out once.
    memories: dict[JobRuleState, dict[str, Any]] = {}
    # Thousands of keys share a few groups: a group's encoded part is made once (`encode`
    # percent-encodes it), and the keys are sorted as JobKey orders them, by their fields.
    groups: dict[tuple[str, str], str] = {}
    out: dict[str, Any] = {}
    for key, record in sorted(jobs.items(), key=_job_order):
        prefix = groups.get((key.namespace, key.group))
        if prefix is None:
            prefix = groups[key.namespace, key.group] = key.encode().rpartition("/")[0]
        out[f"{prefix}/{key.job_id}"] = _job_to_dict(record, memories)
    return out


def _job_order(item: tuple[JobKey, JobRecord]) -> tuple[str, str, int]:
    key = item[0]
    return key.namespace, key.group, key.job_id


def _job_to_dict(record: JobRecord, memories: dict[JobRuleState, dict[str, Any]]) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "polled_at": record.polled_at,
        "instances": {str(iid): _record_to_dict(r) for iid, r in sorted(record.instances.items())},
    }
    # A job the rules have nothing to remember of costs nothing.
    memory = memories.get(record.rules)
    if memory is None:
        memory = memories[record.rules] = _memory_to_json(record.rules)
    if memory:
        raw["rules"] = memory
    return raw


def _tick_to_dict(record: TickRecord) -> dict[str, Any]:
    return {
        "status": clip(record.status, STATUS_KEEP),
        "at": record.at,
        "duration_ms": record.duration_ms,
        "owner": clip(record.owner, OWNER_KEEP),
        "jobs": record.jobs,
        "polled": record.polled,
        "alerts_new": record.alerts_new,
        "alerts_sent": record.alerts_sent,
        "alerts_pending": record.alerts_pending,
        "problems": record.problems,
        "problem": None if record.problem is None else clip(record.problem, PROBLEM_KEEP),
    }


def dump_journal(journal: Journal) -> bytes:
    doc: dict[str, Any] = {
        "version": STATE_VERSION,
        "at": journal.at,
        "delivered": list(journal.delivered),
        "robots": {name: _robot_to_dict(r) for name, r in sorted(journal.robots.items())},
    }
    if journal.api_calls is not None:
        doc["api_calls"] = list(journal.api_calls)
    return _to_bytes(doc)


def load_state(data: bytes) -> State:
    """Parse a stored document; StateVersionError / StateFormatError when unusable."""
    return load_state_parts(data)[0]


def load_state_parts(data: bytes) -> tuple[State, str]:
    """The state, and the object its catalog is kept in ("" when the document holds it or
    there is none): its catalog is empty until the storage reads that (`load_catalog`)."""
    doc = _from_bytes(data)
    if not isinstance(doc, dict):
        raise StateFormatError("not a JSON object")
    version = doc.get("version")
    if type(version) is not int or version < 1:
        raise StateFormatError("no schema version")
    if version > STATE_VERSION:
        raise StateVersionError(
            f"written by schema version {version}; this deployment reads up to {STATE_VERSION}"
        )
    if version < STATE_VERSION:
        from schedulerx_alert.core import (
            migrations,  # only an older deployment's document needs them
        )

        doc = migrations.upgrade(doc, STATE_VERSION)
    elsewhere = doc.get("catalog_object", "")
    if not isinstance(elsewhere, str):
        raise StateFormatError("catalog_object: not a string")
    return _Reader().state(doc), elsewhere


def dump_catalog(catalog: Mapping[JobKey, JobInfo]) -> bytes:
    """The job catalog as an object of its own: it changes when jobs do, not every tick."""
    from schedulerx_alert.core import catalog_codec

    return _to_bytes({"version": STATE_VERSION, "catalog": catalog_codec.encode(dict(catalog))})


def load_catalog(data: bytes) -> dict[JobKey, JobInfo]:
    """Read `dump_catalog`'s object; StateFormatError when unusable."""
    doc = _from_bytes(data)
    if not isinstance(doc, dict) or not isinstance(doc.get("catalog"), (dict, list)):
        raise StateFormatError("catalog object: no catalog")
    return _Reader().decoded(doc["catalog"], _decode_catalog, {})


def reader() -> _Reader:
    """Typed reads of the newest version's fields, for core/migrations.py."""
    return _Reader()


def read_instance(value: Any, where: str) -> JobInstance:
    """One run as the newest version stores it (core/migrations.py builds alerts with it)."""
    return _Reader().instance(value, where)


def read_record(name: str, value: Any, where: str) -> tuple[int, InstanceRecord]:
    return _Reader().record(name, value, where)


def load_journal(data: bytes) -> Journal:
    doc = _from_bytes(data)
    r = _Reader()
    raw = r.obj(doc, "journal")
    version = raw.get("version")
    # A tick of an older version may have died after a message: its journal still counts.
    if type(version) is not int or not 2 <= version <= STATE_VERSION:
        raise StateFormatError("journal of another schema version")
    if version < STATE_VERSION:
        from schedulerx_alert.core import migrations

        raw = migrations.upgrade_journal(raw)
    calls = raw.get("api_calls")
    keys = (r.str_(k, "delivered[]") for k in r.list_(raw.get("delivered"), "delivered"))
    return Journal(
        at=r.time(raw.get("at"), "at"),
        delivered=tuple(keys),
        robots=r.robots(raw.get("robots"), "robots"),
        api_calls=None if calls is None else r.times(calls, "api_calls"),
    )


T = TypeVar("T")


def _heartbeat(value: Any) -> HeartbeatRecord:
    # Decoded only when the state has the section: its codec loads with the first one.
    from schedulerx_alert.core import heartbeat_codec

    return heartbeat_codec.decode(value)


def _held(value: Any) -> dict[str, tuple[Held, ...]]:
    # Decoded only when something was held back (silences, quiet hours).
    from schedulerx_alert.core import silence_hold as held

    return held.decode(value)


class _Reader:
    """Typed reads from a parsed document of the newest schema version."""

    def __init__(self) -> None:
        # A job key's text before its job id -> (namespace, group), once one key with it
        # was read in full.
        self._groups: dict[str, tuple[str, str]] = {}
        self._memories: dict[tuple[tuple[str, type, Any], ...], JobRuleState] = {}

    @staticmethod
    def fail(where: str, what: str) -> StateFormatError:
        return StateFormatError(f"{where}: {what}")

    def obj(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"not an object but {_kind(value)}")
        return value

    def list_(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(where, f"not a list but {_kind(value)}")
        return value

    def int_(self, value: Any, where: str, low: int, high: int) -> int:
        if type(value) is not int:
            raise self.fail(where, f"not an integer but {_kind(value)}")
        if not low <= value <= high:
            raise self.fail(where, f"{value} is out of range [{low}, {high}]")
        return value

    def opt_int(self, value: Any, where: str) -> int | None:
        return None if value is None else self.int_(value, where, -(2**31), 2**31 - 1)

    def time(self, value: Any, where: str) -> float:
        if type(value) not in (int, float):
            raise self.fail(where, f"not a number but {_kind(value)}")
        if not (math.isfinite(value) and 0 <= value <= MAX_TIME):
            raise self.fail(where, f"{value!r} is not a time in epoch seconds")
        return float(value)

    def opt_time(self, value: Any, where: str) -> float | None:
        return None if value is None else self.time(value, where)

    def times(self, value: Any, where: str) -> tuple[float, ...]:
        return tuple(self.time(t, f"{where}[]") for t in self.list_(value, where))

    def str_(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise self.fail(where, f"not a string but {_kind(value)}")
        return value

    def opt_str(self, value: Any, where: str) -> str | None:
        return None if value is None else self.str_(value, where)

    def bool_(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"not true or false but {_kind(value)}")
        return value

    def when(self, value: Any, where: str) -> datetime | None:
        """A run's time: an ISO string with an offset (naive ones cannot be compared)."""
        if value is None or value == "":
            return None
        text = self.str_(value, where)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise self.fail(where, f"{text[:40]!r} is not an ISO time") from None
        if parsed.utcoffset() is None:
            raise self.fail(where, f"{text[:40]!r} has no UTC offset")
        self.time(parsed.timestamp(), where)
        return parsed

    def mapping(
        self, value: Any, where: str, read: Callable[[str, Any, str], tuple[Any, T]]
    ) -> dict[Any, T]:
        raw = {} if value is None else self.obj(value, where)
        out: dict[Any, T] = {}
        for name, item in raw.items():
            here = f"{where}[{name[:80]!r}]"
            key, decoded = read(name, item, here)
            out[key] = decoded
        return out

    def job_key(self, text: Any, where: str) -> JobKey:
        if type(text) is str:
            # Thousands of keys share a few groups: a group's part is decoded once.
            prefix, _, number = text.rpartition("/")
            known = self._groups.get(prefix)
            if known is not None and number.isascii() and number.isdigit():
                job_id = int(number)
                if str(job_id) == number and job_id <= 2**63 - 1:
                    return JobKey(known[0], known[1], job_id)
        text = self.str_(text, where)
        try:
            key = JobKey.decode(text)
        except ValueError:
            raise self.fail(where, "not a job key (namespace/group/job id)") from None
        self.int_(key.job_id, where, -(2**63), 2**63 - 1)
        self._groups[text.rpartition("/")[0]] = (key.namespace, key.group)
        return key

    # -- records ------------------------------------------------------------------

    def state(self, doc: dict[str, Any]) -> State:
        health_raw = doc.get("health")
        health = {} if health_raw is None else self.obj(health_raw, "health")
        return State(
            jobs=self.mapping(doc.get("jobs"), "jobs", self.job),
            outbox=tuple(
                self.alert(a, f"outbox[{i}]")
                for i, a in enumerate(self.list_(doc.get("outbox", []), "outbox"))
            ),
            robots=self.robots(doc.get("robots"), "robots"),
            api_calls=self.times(doc.get("api_calls", []), "api_calls"),
            health=HealthRecord(
                broken_ticks=self.int_(
                    health.get("broken_ticks", 0), "health.broken_ticks", 0, 10**9
                ),
                impaired_announced=self.bool_(
                    health.get("impaired_announced", False), "health.impaired_announced"
                ),
                reason=self.opt_str(health.get("reason"), "health.reason"),
            ),
            lease_generation=self.int_(
                doc.get("lease_generation", 0), "lease_generation", 0, MAX_GENERATION
            ),
            updated_at=self.opt_time(doc.get("updated_at"), "updated_at"),
            expired={
                name: n
                for name, n in self.mapping(
                    doc.get("expired"),
                    "expired",
                    lambda name, n, where: (name, self.int_(n, where, 0, 10**9)),
                ).items()
                if n
            },
            delivered=self.mapping(
                doc.get("delivered"),
                "delivered",
                lambda key, t, where: (key, self.time(t, where)),
            ),
            last_tick=None if doc.get("last_tick") is None else self.tick(doc["last_tick"]),
            catalog=self.decoded(doc.get("catalog"), _decode_catalog, {}),
            sources=self.decoded(doc.get("sources"), polling.decode, SourceState()),
            heartbeat=self.decoded(doc.get("heartbeat"), _heartbeat, HeartbeatRecord()),
            silenced=self.decoded(doc.get("silenced"), _held, {}),
        )

    def decoded(self, value: Any, decode: Callable[[Any], T], default: T) -> T:
        """A section with its own codec (core/), whose ValueErrors name the field."""
        if value is None:
            return default
        try:
            return decode(value)
        except (ValueError, TypeError) as exc:
            raise StateFormatError(str(exc)) from None

    def tick(self, value: Any) -> TickRecord:
        raw = self.obj(value, "last_tick")

        def count(name: str) -> int:
            return self.int_(raw.get(name, 0), f"last_tick.{name}", 0, 10**9)

        problem = self.opt_str(raw.get("problem"), "last_tick.problem")
        return TickRecord(
            status=clip(self.str_(raw.get("status"), "last_tick.status"), STATUS_KEEP),
            at=self.time(raw.get("at"), "last_tick.at"),
            duration_ms=count("duration_ms"),
            owner=clip(self.str_(raw.get("owner", ""), "last_tick.owner"), OWNER_KEEP),
            jobs=count("jobs"),
            polled=count("polled"),
            alerts_new=count("alerts_new"),
            alerts_sent=count("alerts_sent"),
            alerts_pending=count("alerts_pending"),
            problems=count("problems"),
            problem=None if problem is None else clip(problem, PROBLEM_KEEP),
        )

    def job(self, name: str, value: Any, where: str) -> tuple[JobKey, JobRecord]:
        raw = self.obj(value, where)
        key = self.job_key(name, where)
        instances = _plain_records(raw.get("instances"))
        if instances is None:
            instances = self.mapping(raw.get("instances"), f"{where}.instances", self.record)
        try:
            # Most jobs have nothing for the rules to remember: one shared record for them.
            rules = EMPTY if "rules" not in raw else self.memory(raw["rules"], f"{where}.rules")
        except MemoryFormatError as exc:
            raise StateFormatError(str(exc)) from None
        return key, JobRecord(
            instances=instances,
            polled_at=self.opt_time(raw.get("polled_at"), f"{where}.polled_at"),
            rules=rules,
        )

    def memory(self, raw: Any, where: str) -> JobRuleState:
        """A job's rule memory; most jobs remember the same few values (`last_outcome: ok`),
        each such memory is read once."""
        # Only memories of plain values are shared; anything else (a list, a nested object
        # a spoilt document may hold) is read, and refused, on its own.
        if type(raw) is not dict or any(type(v) not in _PLAIN for v in raw.values()):
            return _memory_from_json(raw, where)
        # With each value's type: True == 1 == 1.0, but only one of them is a count.
        shape = tuple((name, type(value), value) for name, value in raw.items())
        known = self._memories.get(shape)
        if known is None:
            known = self._memories[shape] = _memory_from_json(raw, where)
        return known

    def instance_id(self, text: str, where: str) -> int:
        if not (text.isascii() and text.isdigit()) or str(int(text)) != text:
            raise self.fail(where, "not an instance id")
        return self.int_(int(text), where, 0, 2**63 - 1)

    def record(self, name: str, value: Any, where: str) -> tuple[int, InstanceRecord]:
        quick = _plain_record(name, value)
        return quick if quick is not None else self.record_in_full(name, value, where)

    def record_in_full(self, name: str, value: Any, where: str) -> tuple[int, InstanceRecord]:
        raw = self.obj(value, where)
        alerted = tuple(
            self.str_(k, f"{where}.alerted[]")
            for k in self.list_(raw.get("alerted", []), f"{where}.alerted")
        )
        end = self.opt_str(raw.get("end"), f"{where}.end")
        end_v1 = self.opt_time(raw.get("end_v1"), f"{where}.end_v1")
        return self.instance_id(name, where), InstanceRecord(
            status=self.int_(raw.get("status"), f"{where}.status", -(2**31), 2**31 - 1),
            seen=self.time(raw.get("seen"), f"{where}.seen"),
            alerted=alerted,
            end=end,
            end_v1=end_v1,
        )

    def robots(self, value: Any, where: str) -> dict[str, RobotRecord]:
        def robot(name: str, item: Any, here: str) -> tuple[str, RobotRecord]:
            raw = self.obj(item, here)
            return name, RobotRecord(
                sent=self.times(raw.get("sent", []), f"{here}.sent"),
                blocked_until=self.opt_time(raw.get("blocked_until"), f"{here}.blocked_until"),
            )

        return self.mapping(value, where, robot)

    def alert(self, value: Any, where: str) -> Alert:
        raw = self.obj(value, where)
        last_error = self.opt_str(raw.get("last_error"), f"{where}.last_error")
        kind = self.str_(raw.get("kind"), f"{where}.kind")
        receiver = self.str_(raw.get("receiver"), f"{where}.receiver")
        created_at = self.time(raw.get("created_at"), f"{where}.created_at")
        alert = Alert(receiver, self.finding(raw, kind, created_at, where), created_at)
        alert = replace(alert, names=self.names(raw.get("names"), alert.jobs, where))
        return replace(
            alert,
            peers=tuple(
                self.str_(r, f"{where}.peers[]")
                for r in self.list_(raw.get("peers", []), f"{where}.peers")[:MAX_PEERS]
            ),
            attempts=self.int_(raw.get("attempts", 0), f"{where}.attempts", 0, 10**9),
            last_error=None if last_error is None else clip(last_error, ERROR_KEEP),
            evidence=NO_EVIDENCE
            if raw.get("evidence") is None
            else self.decoded(
                raw["evidence"],
                lambda value: evidence_codec.from_json(value, f"{where}.evidence"),
                NO_EVIDENCE,
            ),
        )

    def finding(self, raw: dict[str, Any], kind: str, at: float, where: str) -> Finding:
        instances = self.list_(raw.get("instances", []), f"{where}.instances")
        jobs = self.list_(raw.get("jobs", []), f"{where}.jobs")
        facts = raw.get("facts")
        return trim(
            Finding(
                kind=kind,
                subject=self.str_(raw.get("subject", ""), f"{where}.subject"),
                fingerprint=self.str_(raw.get("fingerprint"), f"{where}.fingerprint"),
                at=at,
                instances=tuple(
                    self.instance(inst, f"{where}.instances[{i}]")
                    for i, inst in enumerate(instances[:MAX_ALERT_INSTANCES])
                ),
                jobs=tuple(
                    self.job_key(job, f"{where}.jobs[{i}]")
                    for i, job in enumerate(jobs[:MAX_ALERT_JOBS])
                ),
                facts=MappingProxyType(
                    self.mapping(
                        facts,
                        f"{where}.facts",
                        lambda name, value, here: (name, self.fact(value, here)),
                    )
                ),
            )
        )

    def fact(self, value: Any, where: str) -> Fact:
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, float)):
            return value if type(value) is int else self.number(value, where)
        items = self.list_(value, where)
        if all(isinstance(v, str) for v in items):
            return tuple(items)
        if all(type(v) in (int, float) for v in items):
            return tuple(self.number(v, f"{where}[]") for v in items)
        raise self.fail(where, "not a list of texts or of numbers")

    def number(self, value: Any, where: str) -> float:
        if not math.isfinite(value):
            raise self.fail(where, f"{value!r} is not a finite number")
        return float(value)

    def names(self, value: Any, jobs: tuple[JobKey, ...], where: str) -> tuple[str, ...]:
        names = tuple(
            self.str_(n, f"{where}.names[]")
            for n in self.list_([] if value is None else value, f"{where}.names")
        )
        return names[: len(jobs)]

    def instance(self, value: Any, where: str) -> JobInstance:
        raw = self.obj(value, where)

        def text(name: str) -> str:
            return self.opt_str(raw.get(name), f"{where}.{name}") or ""

        return JobInstance(
            job=self.job_key(raw.get("job"), f"{where}.job"),
            instance_id=self.int_(raw.get("id"), f"{where}.id", 0, 2**63 - 1),
            status_code=self.int_(raw.get("status"), f"{where}.status", -(2**31), 2**31 - 1),
            result=clip(text("result"), RESULT_KEEP),
            progress=clip(text("progress"), FIELD_KEEP),
            schedule_time=self.when(raw.get("schedule_time"), f"{where}.schedule_time"),
            start_time=self.when(raw.get("start_time"), f"{where}.start_time"),
            end_time=self.when(raw.get("end_time"), f"{where}.end_time"),
            data_time=self.when(raw.get("data_time"), f"{where}.data_time"),
            time_type=self.opt_int(raw.get("time_type"), f"{where}.time_type"),
            trigger_type=self.opt_int(raw.get("trigger_type"), f"{where}.trigger_type"),
            work_addr=clip(text("work_addr"), FIELD_KEEP),
            executor=clip(text("executor"), FIELD_KEEP),
        )


_INSTANCE_ID_DIGITS = len(str(2**63 - 1))


def _plain_record(name: str, value: Any) -> tuple[int, InstanceRecord] | None:
    """A run record in the shape ticks write for nearly every run (nothing announced, no
    version-1 end), read without `_Reader.record`'s general checks: a state holds tens of
    thousands and is read every tick. None for anything else, which the general reader
    reads (or refuses, naming where): this accepts only what it accepts too."""
    if type(value) is not dict or len(value) != 4:
        return None
    status, seen, alerted, end = (
        value.get("status"),
        value.get("seen"),
        value.get("alerted"),
        value.get("end", 0),
    )
    if type(status) is not int or not -(2**31) <= status <= 2**31 - 1:
        return None
    if type(seen) is not float or not 0 <= seen <= MAX_TIME:  # a NaN fails, inf exceeds
        return None
    if alerted != [] or type(alerted) is not list or not (end is None or type(end) is str):
        return None
    if not (name.isascii() and name.isdigit()) or len(name) > _INSTANCE_ID_DIGITS:
        return None
    if name[0] == "0" and name != "0":
        return None
    iid = int(name)
    if iid > 2**63 - 1:
        return None
    return iid, InstanceRecord(status=status, seen=seen, end=end)


def _plain_records(value: Any) -> dict[int, InstanceRecord] | None:
    """A job's run records when every one is in `_plain_record`'s shape (most jobs): read
    without naming each one's place, which only an error needs. None for anything else,
    which `_Reader.mapping` reads record by record (or refuses, naming where)."""
    if type(value) is not dict:
        return None
    records: dict[int, InstanceRecord] = {}
    for name, item in value.items():
        quick = _plain_record(name, item)
        if quick is None:
            return None
        records[quick[0]] = quick[1]
    return records


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _decode_catalog(raw: Any) -> dict[JobKey, JobInfo]:
    # Loaded with the first state that holds a catalog (discovery, GetJobInfo): a
    # deployment that names its jobs by id never loads the catalog's records.
    from schedulerx_alert.core import catalog_codec

    return catalog_codec.decode(raw)
