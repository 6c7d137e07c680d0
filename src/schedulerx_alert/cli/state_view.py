"""What `state show` prints: the state as one JSON-able document, and that document as text.

Pure: the caller reads the state (session.StateSession.inspect) and passes the
clock's reading. The text is made from the document, so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from schedulerx_alert.cli.terminal import (
    line as line,  # also what tests and other views import from here
)
from schedulerx_alert.config import Config
from schedulerx_alert.core.silence import Silence
from schedulerx_alert.core.state import STATE_VERSION, Alert, State
from schedulerx_alert.delivery.channels.dingtalk import robot_id
from schedulerx_alert.storage.followups import Owed
from schedulerx_alert.storage.session import Inspection, Lease
from schedulerx_alert.storage.store import StateStore
from schedulerx_alert.tick import targets_of

# A robot's sends are counted over the same window as DingTalk's limit.
WINDOW_SECONDS = 60.0
# Pending alerts listed one by one per receiver in the text; JSON lists them all.
LIST_PER_RECEIVER = 10
# Queued follow-ups read (one GET each, with its record's): as many as a tick reads.
FOLLOW_UPS_READ = 20


def follow_ups(store: StateStore, key: str) -> tuple[list[Owed], list[str]]:
    """The operation follow-ups queued beside the state and not posted yet, and a note
    when the queue cannot be read (storage/followups.py)."""
    from schedulerx_alert.storage.followups import FollowUpQueue
    from schedulerx_alert.storage.store import StoreError

    try:
        return FollowUpQueue(store, key).owed(FOLLOW_UPS_READ), []
    except StoreError as exc:
        return [], [f"operation follow-ups: the queue could not be read: {exc}"]


def silenced_counts(state: State) -> dict[str, int]:
    """Alerts held back by silences and quiet hours, per receiver, not yet digested."""
    from schedulerx_alert.core.silence_hold import counts

    return counts(state.silenced)


def document(
    inspection: Inspection,
    config: Config,
    where: str,
    now: float,
    silences: Sequence[Silence] = (),
    notes: Sequence[str] = (),
    owed: Sequence[Owed] = (),
) -> dict[str, Any]:
    """The state as `state show --json` prints it, with the silences in force
    (the config's and the silence book's) and the operation follow-ups queued
    (`owed`). Times are ISO strings in the config's timezone; ages and delays are
    seconds relative to `now`."""
    zone = config.zone
    state = inspection.state

    def when(t: float | None) -> str | None:
        return None if t is None else _iso(t, zone)

    watched = targets_of(config, state.catalog)
    receivers_of: dict[str, list[str]] = {}
    for name, rc in config.receivers.items():
        receivers_of.setdefault(robot_id(rc.webhook), []).append(name)
        # States from before robots were keyed by robot kept them by receiver name.
        receivers_of.setdefault(name, []).append(name)
    max_age = config.pending_max_age.total_seconds()
    silenced = silenced_counts(state)
    tick = state.last_tick
    return {
        "now": when(now),
        "timezone": config.timezone,
        "state": {
            "where": where,
            "exists": inspection.exists,
            "corrupt": inspection.corrupt,
            "schema": STATE_VERSION,
            "generation": state.lease_generation,
            "updated_at": when(state.updated_at),
            "updated_age_s": _since(state.updated_at, now),
            "checkpoints_applied": inspection.journals,
        },
        "lease": _lease(inspection.leases, now, zone),
        "last_tick": None
        if tick is None
        else {
            "status": tick.status,
            "at": when(tick.at),
            "age_s": _since(tick.at, now),
            "duration_ms": tick.duration_ms,
            "owner": tick.owner,
            "jobs": tick.jobs,
            "polled": tick.polled,
            "alerts_new": tick.alerts_new,
            "alerts_sent": tick.alerts_sent,
            "alerts_pending": tick.alerts_pending,
            "problems": tick.problems,
            "problem": tick.problem,
        },
        "jobs": {
            "watched": len(watched),
            "in_state": len(state.jobs),
            "not_watched": [str(k) for k in sorted(state.jobs) if k not in watched],
        },
        "pending": {
            "count": len(state.outbox),
            "receivers": [
                _pending(name, alerts, now, max_age, zone)
                for name, alerts in sorted(_by_receiver(state.outbox).items())
            ],
        },
        "silenced": {
            "count": sum(silenced.values()),
            "receivers": silenced,
            "in_force": [
                {
                    "id": silence.id,
                    "source": silence.source,
                    "match": silence.matcher.describe(),
                    "until": when(silence.until),
                    "until_in_s": _until(silence.until, now),
                    "comment": silence.comment,
                }
                for silence in sorted(silences, key=lambda x: (x.until, x.id))
                if silence.active(now)
            ],
        },
        "expired": {
            "count": sum(state.expired.values()),
            "receivers": dict(sorted(state.expired.items())),
        },
        "robots": [
            {
                "robot": name,
                "receivers": sorted(set(receivers_of.get(name, []))),
                "muted": record.blocked_until is not None and record.blocked_until > now,
                "muted_until": when(record.blocked_until)
                if record.blocked_until is not None and record.blocked_until > now
                else None,
                "muted_for_s": _until(record.blocked_until, now),
                "sent_last_minute": sum(1 for t in record.sent if now - t < WINDOW_SECONDS),
            }
            for name, record in sorted(state.robots.items())
        ],
        "health": {
            "broken_ticks": state.health.broken_ticks,
            "impaired_announced": state.health.impaired_announced,
            "reason": state.health.reason,
        },
        "notes": [*inspection.notes, *notes],
        # Last: a key added after the others, which keep their order.
        "follow_ups": _follow_ups(config, owed, now, max_age, zone),
    }


def _iso(t: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(t, zone).isoformat(timespec="seconds")


def _since(t: float | None, now: float) -> float | None:
    return None if t is None else round(now - t, 3)


def _until(t: float | None, now: float) -> float | None:
    return None if t is None or t <= now else round(t - now, 3)


def _lease(leases: tuple[Lease, ...], now: float, zone: ZoneInfo) -> dict[str, Any]:
    if not leases:
        return {"status": "free"}
    # The newest lease decides; the ones before it are dead ticks' (expired).
    lease = leases[-1]
    return {
        "status": "held" if lease.expires_at > now else "expired",
        "generation": lease.generation,
        "owner": lease.owner,
        "taken_at": _iso(lease.taken_at, zone) if lease.taken_at else None,
        "taken_age_s": round(now - lease.taken_at, 3) if lease.taken_at else None,
        "expires_at": _iso(lease.expires_at, zone) if lease.expires_at else None,
        "expires_in_s": round(lease.expires_at - now, 3),
        "expired_before": len(leases) - 1,
    }


def _by_receiver(outbox: tuple[Alert, ...]) -> dict[str, list[Alert]]:
    out: dict[str, list[Alert]] = {}
    for alert in outbox:
        out.setdefault(alert.receiver, []).append(alert)
    return out


def _pending(
    name: str, alerts: list[Alert], now: float, max_age: float, zone: ZoneInfo
) -> dict[str, Any]:
    alerts = sorted(alerts, key=lambda a: (a.created_at, a.key))
    return {
        "receiver": name,
        "count": len(alerts),
        "oldest_age_s": round(now - alerts[0].created_at, 3),
        "alerts": [
            {
                "job": str(a.job) if a.job else a.finding.subject,
                "job_name": a.job_name,
                "instance": a.instance.instance_id if a.instance else None,
                "jobs": len(a.jobs),
                "kind": a.kind,
                "created_at": _iso(a.created_at, zone),
                "age_s": round(now - a.created_at, 3),
                # When the next tick past this drops it undelivered (pending_max_age_hours).
                "dropped_in_s": round(a.created_at + max_age - now, 3),
                "attempts": a.attempts,
                "last_error": a.last_error,
            }
            for a in alerts
        ],
    }


def _follow_ups(
    config: Config, owed: Sequence[Owed], now: float, max_age: float, zone: ZoneInfo
) -> dict[str, Any]:
    return {
        "count": len(owed),
        # With `operations` off no tick posts them (delivery/followups.py).
        "posted_by_ticks": config.actions is not None and bool(config.actions.operations),
        "entries": [
            {
                "number": f.number,
                "readable": f.readable,
                "operation": f.operation,
                "instance": f.instance,
                "job": f"{f.namespace}/{f.group}/{f.job_id}" if f.readable else None,
                "job_name": f.job,
                "receiver": f.receiver,
                "queued_at": None if f.queued_at is None else _iso(f.queued_at, zone),
                "queued_age_s": _since(f.queued_at, now),
                "attempts": f.attempts,
                "last_error": f.last_error,
                # When a tick past this gives it up (pending_max_age_hours).
                "dropped_in_s": None
                if f.queued_at is None
                else round(f.queued_at + max_age - now, 3),
            }
            for f in owed
        ],
    }


# -- text -------------------------------------------------------------------------


def age(seconds: float) -> str:
    """A duration as a person reads it: 45s, 3m12s, 2h05m, 1d03h."""
    sign = "-" if seconds < 0 else ""
    s = int(abs(seconds))
    if s < 60:
        text = f"{s}s"
    elif s < 3600:
        text = f"{s // 60}m{s % 60:02d}s"
    elif s < 86400:
        text = f"{s // 3600}h{s % 3600 // 60:02d}m"
    else:
        text = f"{s // 86400}d{s % 86400 // 3600:02d}h"
    return sign + text


def _local(iso: str | None) -> str:
    # "2026-11-25T10:03:00+08:00" -> "2026-11-25 10:03:00"; the zone is in the header.
    return "-" if iso is None else iso[:19].replace("T", " ")


def text(doc: dict[str, Any]) -> str:
    """The document for a person, times in the config's timezone."""
    out: list[str] = []
    st = doc["state"]
    head = f"state      {st['where']}"
    if not st["exists"]:
        out.append(f"{head}: none yet (no tick has committed)")
    else:
        out.append(
            f"{head}, generation {st['generation']}, written {_local(st['updated_at'])}"
            + (f" ({age(st['updated_age_s'])} ago)" if st["updated_age_s"] is not None else "")
        )
    if st["corrupt"]:
        out.append(
            f"           CORRUPT: {line(st['corrupt'])}; the next tick keeps it aside "
            "and starts as on a first run"
        )
    out.append(f"now        {_local(doc['now'])} ({doc['timezone']})")
    out.append(f"lease      {_lease_text(doc['lease'])}")
    out.append(f"last tick  {_tick_text(doc['last_tick'])}")
    jobs = doc["jobs"]
    out.append(f"jobs       {jobs['watched']} watched, {jobs['in_state']} with history")
    if jobs["not_watched"]:
        shown = ", ".join(line(k, 80) for k in jobs["not_watched"][:5])
        more = len(jobs["not_watched"]) - 5
        out.append(
            f"           not watched any more (the next tick drops them): {shown}"
            + (f" and {more} more" if more > 0 else "")
        )
    pending = doc["pending"]
    out.append(f"pending    {pending['count']}")
    for receiver in pending["receivers"]:
        out.append(
            f"  {line(receiver['receiver'], 60)}: {receiver['count']}, "
            f"oldest {age(receiver['oldest_age_s'])}"
        )
        for a in receiver["alerts"][:LIST_PER_RECEIVER]:
            name = f" ({line(a['job_name'], 40)})" if a["job_name"] else ""
            error = f"; last error: {line(a['last_error'], 100)}" if a["last_error"] else ""
            run = f" run {a['instance']}" if a["instance"] is not None else ""
            others = f" and {a['jobs'] - 1} more job(s)" if a["jobs"] > 1 else ""
            out.append(
                f"    {line(a['job'], 100)}{name}{others}{run} {line(a['kind'], 40)}, "
                f"{age(a['age_s'])} old, {a['attempts']} attempt(s), "
                f"dropped in {age(max(a['dropped_in_s'], 0))}{error}"
            )
        more = receiver["count"] - LIST_PER_RECEIVER
        if more > 0:
            out.append(f"    … and {more} more (--json lists them all)")
    silenced = doc["silenced"]
    in_force = silenced["in_force"]
    out.append(
        f"silenced   {silenced['count']} alert(s) held back; {len(in_force)} silence(s) in force"
    )
    for name, n in silenced["receivers"].items():
        out.append(f"  {line(name, 60)}: {n}")
    for silence in in_force:
        comment = f": {line(silence['comment'], 80)}" if silence["comment"] else ""
        out.append(
            f"  {line(silence['id'], 40)} ({silence['source']}) {line(silence['match'], 80)}, "
            f"until {_local(silence['until'])}, in {age(silence['until_in_s'] or 0)}{comment}"
        )
    expired = doc["expired"]
    if expired["count"]:
        counts = ", ".join(f"{line(k, 60)}: {n}" for k, n in expired["receivers"].items())
        out.append(
            f"expired    {expired['count']} dropped undelivered ({counts}); "
            "the next message to each receiver says so"
        )
    robots = doc["robots"]
    muted = [r for r in robots if r["muted"]]
    out.append(f"robots     {len(robots)} recently active, {len(muted)} muted")
    for r in robots:
        who = ", ".join(r["receivers"]) or "no receiver of this config"
        status = (
            f"muted (130101) until {_local(r['muted_until'])}, in {age(r['muted_for_s'])}"
            if r["muted"]
            else "not muted"
        )
        out.append(
            f"  {line(r['robot'], 80)} ({line(who)}): {status}; "
            f"{r['sent_last_minute']} sent last minute"
        )
    out.extend(_follow_ups_text(doc["follow_ups"]))
    health = doc["health"]
    if health["broken_ticks"] or health["impaired_announced"]:
        told = "told" if health["impaired_announced"] else "not told yet"
        reason = f": {line(health['reason'], 120)}" if health["reason"] else ""
        out.append(
            f"health     {health['broken_ticks']} broken tick(s) in a row, group {told}{reason}"
        )
    else:
        out.append("health     ok")
    if st["checkpoints_applied"]:
        out.append(
            f"           {st['checkpoints_applied']} checkpoint(s) of ticks that did not "
            "commit applied, as the next tick will"
        )
    for note in doc["notes"]:
        out.append(f"note       {line(note, 200)}")
    return "\n".join(out) + "\n"


def _follow_ups_text(owed: dict[str, Any]) -> list[str]:
    if not owed["count"]:
        return []
    out = [
        f"follow-ups {owed['count']} queued: operations from the chat whose follow-up "
        "DingTalk refused at the click"
        + ("; the next tick posts them" if owed["posted_by_ticks"] else "")
    ]
    if not owed["posted_by_ticks"]:
        out.append("           `operations` is off in this config: no tick posts them")
    for f in owed["entries"]:
        if not f["readable"]:
            out.append(f"  #{f['number']} unreadable (the next tick passes over it)")
            continue
        # The job as the alert named it: its id alone when it has no name.
        named = f["job_name"] and not f["job"].endswith(f"/{f['job_name']}")
        name = f" ({line(f['job_name'], 40)})" if named else ""
        queued = (
            f"queued {_local(f['queued_at'])} ({age(f['queued_age_s'])} ago)"
            if f["queued_at"]
            else "queued at an unknown time"
        )
        dropped = (
            f", dropped in {age(max(f['dropped_in_s'], 0))}"
            if f["dropped_in_s"] is not None
            else ""
        )
        error = f"; last error: {line(f['last_error'], 100)}" if f["last_error"] else ""
        out.append(
            f"  #{f['number']} {line(f['operation'], 20)} on run {f['instance']}, job "
            f"{line(f['job'], 100)}{name}, for {line(f['receiver'], 60)}, {queued}, "
            f"{f['attempts']} attempt(s){dropped}{error}"
        )
    return out


def _lease_text(lease: dict[str, Any]) -> str:
    if lease["status"] == "free":
        return "free"
    owner = line(lease["owner"], 80)
    taken = (
        f"taken {_local(lease['taken_at'])} ({age(lease['taken_age_s'])} ago)"
        if lease["taken_at"]
        else "unreadable"
    )
    dead = (
        f"; {lease['expired_before']} expired lease(s) before it" if lease["expired_before"] else ""
    )
    if lease["status"] == "held":
        return (
            f"held by {owner} (generation {lease['generation']}), {taken}, "
            f"expires in {age(lease['expires_in_s'])}{dead}"
        )
    return (
        f"expired: {owner} (generation {lease['generation']}), {taken}, died or is dying; "
        f"the next tick takes over{dead}"
    )


def _tick_text(tick: dict[str, Any] | None) -> str:
    if tick is None:
        return "none recorded (no tick of this version has committed)"
    problems = ""
    if tick["problems"]:
        first = f": {line(tick['problem'])}" if tick["problem"] else ""
        problems = f"; {tick['problems']} problem(s){first}"
    return (
        f"{line(tick['status'], 20)} at {_local(tick['at'])} ({age(tick['age_s'])} ago) "
        f"by {line(tick['owner'], 80)}, {tick['duration_ms'] / 1000:.1f}s; "
        f"{tick['jobs']} jobs, {tick['polled']} polled; alerts {tick['alerts_new']} new, "
        f"{tick['alerts_sent']} sent, {tick['alerts_pending']} pending{problems}"
    )
