"""Older state documents brought up to the newest schema, one version at a time.

Each migration takes a parsed document of version N and returns one of version N+1, dict
to dict; `upgrade` applies them in order, and the reader (core/state.py) reads only the
newest version. A part that is not of the shape its version wrote is left as it is, for
the reader to refuse naming the field.

- 1 -> 2: job keys are percent-encoded (`JobKey.encode`), not joined with `/`; a run's
  end is kept as the zone-free text SchedulerX sends, so a version 1 record keeps its
  epoch (`ended`) as `end_v1` until the job's listing shows the run again.
- 2 -> 3: alerts carry their finding (subject, fingerprint, runs, jobs, facts) instead of
  one run; alert keys are `receiver:fingerprint`; each job gets the rules' memory its run
  records imply, so a success after an announced failure is announced, once.
- 3 -> 4: the heartbeat's counters and what silences hold back; absent means empty.
- 4 -> 5: the missed-run rule's memory of recent runs and its next fire, and a group's
  unfinished runs between scans; absent means none. Nothing to rewrite: the version
  changes so that a version 4 deployment refuses the document by its version (a clear
  StateVersionError) instead of as corrupt, which would announce again.
- 5 -> 6: the job catalog may be kept in an object of its own (`catalog_object`, written
  only when the catalog changes); a document that holds it inline is read as before.
  The version changes so that a version 5 deployment refuses such a document by its
  version rather than reading it without its catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from schedulerx_alert.core.findings import job_fingerprint
from schedulerx_alert.core.model import TERMINAL, InstanceStatus, JobKey
from schedulerx_alert.core.rules.memory import JobRuleState, memory_to_json

Doc = dict[str, Any]


def upgrade(doc: Doc, newest: int) -> Doc:
    """`doc` (a state of any version up to `newest`) as version `newest` writes it."""
    version = doc["version"]
    while version < newest:
        doc = {**MIGRATIONS[version](doc), "version": version + 1}
        version += 1
    return doc


def upgrade_journal(doc: Doc) -> Doc:
    """A checkpoint of a tick of an older version: only its keys changed (2 -> 3)."""
    if doc.get("version") == 2 and isinstance(doc.get("delivered"), list):
        doc = {**doc, "delivered": [_key(k) for k in doc["delivered"]]}
    return doc


def v1_to_v2(doc: Doc) -> Doc:
    out = dict(doc)
    jobs = doc.get("jobs")
    if isinstance(jobs, dict):
        out["jobs"] = {_job_key(name): _job_v2(job) for name, job in jobs.items()}
    outbox = doc.get("outbox")
    if isinstance(outbox, list):
        out["outbox"] = [_alert_v2(alert) for alert in outbox]
    return out


def _job_key(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return JobKey.parse(text).encode()
    except ValueError:
        return text


def _job_v2(job: Any) -> Any:
    if not isinstance(job, dict) or not isinstance(job.get("instances"), dict):
        return job
    records = {}
    for iid, record in job["instances"].items():
        if isinstance(record, dict):
            record = {k: v for k, v in record.items() if k not in ("ended", "end", "end_v1")}
            if job["instances"][iid].get("ended") is not None:
                record["end_v1"] = job["instances"][iid]["ended"]
        records[iid] = record
    return {**job, "instances": records}


def _alert_v2(alert: Any) -> Any:
    if not isinstance(alert, dict) or not isinstance(alert.get("instance"), dict):
        return alert
    return {
        **alert,
        "instance": {**alert["instance"], "job": _job_key(alert["instance"].get("job"))},
    }


def v2_to_v3(doc: Doc) -> Doc:
    # The typed readers and writers of the newest version build the findings, so a
    # migrated alert is exactly what version 3 would have written for the same run.
    from schedulerx_alert.core.state import (
        alert_to_dict,
        read_instance,
        read_record,
        reader,
        run_alert,
    )

    out = dict(doc)
    delivered = doc.get("delivered")
    if isinstance(delivered, dict):
        out["delivered"] = {_key(key): at for key, at in delivered.items()}
    outbox = doc.get("outbox")
    if isinstance(outbox, list):
        migrated = []
        for i, alert in enumerate(outbox):
            if not isinstance(alert, dict):
                migrated.append(alert)
                continue
            where = f"outbox[{i}]"
            r = reader()
            found = run_alert(
                r.str_(alert.get("kind"), f"{where}.kind"),
                r.str_(alert.get("receiver"), f"{where}.receiver"),
                read_instance(alert.get("instance"), f"{where}.instance"),
                r.opt_str(alert.get("job_name"), f"{where}.job_name"),
                r.time(alert.get("created_at"), f"{where}.created_at"),
            )
            new = alert_to_dict(found)
            for kept in ("kind", "receiver", "created_at", "attempts", "last_error", "evidence"):
                if kept in alert:
                    new[kept] = alert[kept]
            migrated.append(new)
        out["outbox"] = migrated
    jobs = doc.get("jobs")
    if isinstance(jobs, dict):
        out["jobs"] = {name: _job_v3(name, job, read_record) for name, job in jobs.items()}
    return out


def _job_v3(name: str, job: Any, read_record: Callable[[str, Any, str], Any]) -> Any:
    if not isinstance(job, dict) or not isinstance(job.get("instances"), dict):
        return job
    try:
        key = JobKey.decode(name)
    except ValueError:
        return job
    where = f"jobs.{name}"
    records = dict(
        read_record(iid, record, f"{where}.instances.{iid}")
        for iid, record in job["instances"].items()
    )
    memory = memory_to_json(legacy_memory(key, records))
    return {**job, "rules": memory} if memory else job


def v3_to_v4(doc: Doc) -> Doc:
    return dict(doc)


def v4_to_v5(doc: Doc) -> Doc:
    return dict(doc)


def v5_to_v6(doc: Doc) -> Doc:
    return dict(doc)


def v6_to_v7(doc: Doc) -> Doc:
    return dict(doc)


MIGRATIONS: dict[int, Callable[[Doc], Doc]] = {
    1: v1_to_v2,
    2: v2_to_v3,
    3: v3_to_v4,
    4: v4_to_v5,
    5: v5_to_v6,
    6: v6_to_v7,
}


def _key(key: Any) -> Any:
    return legacy_key(key) if isinstance(key, str) else key


def legacy_key(key: str) -> str:
    """An alert key of schema version 2 (`receiver:job:instance:kind:attempt`) as version 3
    writes it (`receiver:` and the failure's fingerprint `kind:job:instance:attempt`).

    Every part before the attempt is free of ':' (percent-encoded or a status label), so
    the split is exact; a key of any other shape is kept as it is (it then only expires).
    """
    parts = key.split(":", 4)
    if len(parts) != 5:
        return key
    receiver, job, instance, kind, attempt = parts
    return f"{receiver}:{kind}:{job}:{instance}:{attempt}"


def legacy_memory(job: JobKey, records: Mapping[int, Any]) -> JobRuleState:
    """The rules' memory of a job polled before the rules existed (versions 1 and 2),
    from its run records (core/state.InstanceRecord): the failures announced since its
    last success are its announced streak, so the next success is announced as a
    recovery, once.

    Version 2 kept no time for a streak's start; the recovery then says how many runs
    failed, not for how long. A failure recorded as history on the job's first poll
    cannot be told from an announced one and counts as announced.
    """
    finished = sorted(
        (
            (record.end_v1 or 0.0, record.end or "", iid, record)
            for iid, record in records.items()
            if (status := InstanceStatus.parse(record.status)) is not None and status in TERMINAL
        ),
        key=lambda item: item[:3],
    )
    streak = 0
    last_failure: str | None = None
    last_outcome: Literal["ok", "fail"] | None = None
    for _, _, iid, record in reversed(finished):
        status = InstanceStatus.parse(record.status)
        if status is InstanceStatus.SUCCESS:
            last_outcome = last_outcome or "ok"
            break
        if status is not None and status.label in record.alerted:
            streak += 1
            last_outcome = last_outcome or "fail"
            if last_failure is None:
                last_failure = job_fingerprint(status.label, job, iid, record.end or "")
    return JobRuleState(
        streak=streak,
        announced=streak > 0,
        last_failure=last_failure,
        last_outcome=last_outcome,
    )
