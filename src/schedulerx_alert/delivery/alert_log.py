"""One log record per alert outcome, so SLS answers "did job 92583's failure reach the
data team's group, and if not, why?" without reading the state.

Every tick that delivers logs, for each alert it dealt with, one line `event: alert`
with its `outcome`:

* `sent`: a robot took the message carrying it;
* `held`: a silence or the receiver's quiet hours kept it back (`holder` says which);
  the digest lists it later;
* `pending`: owed and not sent this tick (the robot's rate budget, an outage, the
  tick's time); `attempts` and `error` say how far it got. Logged every tick it waits;
* `dropped`: pending, but its receiver or job is no longer configured;
* `expired`: pending for longer than `pending_max_age_hours`, given up.

Each carries the job (`job_id`, `job_name`, `namespace`, `group`), the run
(`instance_id`, none for a missed fire), `kind`, `receiver`, `robot` (the robot's
id in the state, a hash that never holds its token: Receiver.robot) and
`fingerprint`. The SLS index the deploy files create names exactly `INDEX_KEYS`.
A dry run sends nothing and logs no outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from schedulerx_alert.support import process_log as logs

if TYPE_CHECKING:
    from schedulerx_alert.core.silence_hold import HeldAlert
    from schedulerx_alert.core.state import Alert
    from schedulerx_alert.delivery.channels.dingtalk import Receiver

log = logging.getLogger("schedulerx_alert")

EVENT = "alert"
SENT, HELD, PENDING, DROPPED, EXPIRED = "sent", "held", "pending", "dropped", "expired"
OUTCOMES = (SENT, HELD, PENDING, DROPPED, EXPIRED)
# Keys of an alert record and their type in the SLS index (text or long). A key is
# present only when it has a value: a held alert has no run, a sent one no error.
INDEX_KEYS: dict[str, str] = {
    "event": "text",
    "outcome": "text",
    "job_id": "long",
    "job_name": "text",
    "namespace": "text",
    "group": "text",
    "instance_id": "long",
    "kind": "text",
    "receiver": "text",
    "robot": "text",
    "fingerprint": "text",
    "holder": "text",
    "jobs": "long",
    "attempts": "long",
    "error": "text",
}
# Outcomes a reader of the logs should look at.
_WARN = frozenset({DROPPED, EXPIRED})


def alert_record(outcome: str, alert: Alert, robot: str | None) -> dict[str, Any]:
    """The record of one alert's outcome (an Alert of the state)."""
    jobs = alert.jobs
    first = jobs[0] if jobs else None
    instance = alert.instance
    record: dict[str, Any] = {
        "event": EVENT,
        "outcome": outcome,
        "job_id": first.job_id if first else None,
        "job_name": (alert.names[0] if alert.names else "") or None,
        "namespace": first.namespace if first else None,
        "group": first.group if first else None,
        "instance_id": instance.instance_id if instance else None,
        "kind": alert.kind,
        "receiver": alert.receiver,
        "robot": robot,
        "fingerprint": alert.fingerprint,
        # A shared cause: one alert about several jobs, the first named above.
        "jobs": len(jobs) if len(jobs) > 1 else None,
    }
    if outcome != SENT:
        record["attempts"] = alert.attempts or None
        record["error"] = alert.last_error
    return {k: v for k, v in record.items() if v is not None}


def held_record(held: HeldAlert, robot: str | None) -> dict[str, Any]:
    """The record of an alert a silence or quiet hours kept back."""
    job = held.job
    record: dict[str, Any] = {
        "event": EVENT,
        "outcome": HELD,
        "job_id": job.job_id if job else None,
        "job_name": held.name or None,
        "namespace": job.namespace if job else None,
        "group": job.group if job else None,
        "instance_id": held.instance_id,
        "kind": held.kind,
        "receiver": held.receiver,
        "robot": robot,
        "fingerprint": held.fingerprint or None,
        "holder": held.holder,
    }
    return {k: v for k, v in record.items() if v is not None}


def log_outcomes(
    receivers: Mapping[str, Receiver],
    *,
    sent: Iterable[Alert] = (),
    held: Iterable[HeldAlert] = (),
    pending: Iterable[Alert] = (),
    dropped: Iterable[Alert] = (),
    expired: Iterable[Alert] = (),
) -> None:
    """One line per alert and outcome (see the module's docstring)."""

    def robot(name: str) -> str | None:
        receiver = receivers.get(name)
        return receiver.robot if receiver is not None else None

    records = [
        *(alert_record(SENT, a, robot(a.receiver)) for a in sent),
        *(held_record(h, robot(h.receiver)) for h in held),
        *(alert_record(PENDING, a, robot(a.receiver)) for a in pending),
        *(alert_record(DROPPED, a, robot(a.receiver)) for a in dropped),
        *(alert_record(EXPIRED, a, robot(a.receiver)) for a in expired),
    ]
    for record in records:
        outcome = record["outcome"]
        level = logging.WARNING if outcome in _WARN else logging.INFO
        # The message names no job text: names come from jobs, and a terminal shows
        # the message as it is (the JSON line escapes the fields).
        log.log(level, "alert %s: %s", outcome, record["kind"], extra=logs.fields(record))
