"""The tick posts the follow-ups of operations that a link function could not post.

A link function posts an operation's follow-up at the click; when DingTalk refused it,
the link queued it (storage/followups.py) and its record says `announced: false`. Each
tick, under the state's lease, reads the queue and posts each follow-up as it posts a
notice: through the tick's delivery, within the robot's 20 a minute, after the alerts.
A follow-up DingTalk took is marked in its record (`announced: true`) at once, before
the next message, so a tick that dies re-posts at most that one, as for alerts. One it
did not take stays queued for the next tick: waiting for the robot's budget is a note,
any other refusal a problem, as for alerts. One whose receiver is gone, or older than
`pending_max_age_hours`, is given up with a problem, as an alert is dropped or expires.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from schedulerx_alert.delivery.operation_links import follow_up
from schedulerx_alert.delivery.outbox import BUDGET_USED, Notice
from schedulerx_alert.storage.followups import Entry, FollowUpQueue, load_record, operation_key
from schedulerx_alert.storage.store import StateStore, StoreError

if TYPE_CHECKING:
    from schedulerx_alert.config import Config
    from schedulerx_alert.delivery.outbox import Delivery

log = logging.getLogger("schedulerx_alert")
# Entries read in one tick: each costs a GET, and a robot takes 20 messages a minute.
LIMIT = 20


@dataclass
class FollowUps:
    posted: int = 0
    messages: int = 0
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def post_follow_ups(
    config: Config, store: StateStore, state_key: str, delivery: Delivery, now: float
) -> FollowUps:
    """Post what the queue holds; the head moves past every entry dealt with in a row."""
    out = FollowUps()
    queue = FollowUpQueue(store, state_key)
    before = delivery.report.messages
    try:
        start = queue.head()
        head, owed = start, False
        for entry in queue.entries(start, LIMIT):
            done = _one(config, store, state_key, delivery, entry, now, out)
            # The head stays before the first one still owed; later ones are read again.
            owed = owed or not done
            if not owed:
                head = entry.number + 1
        if head > start:
            queue.advance(head)
    except StoreError as exc:
        out.problems.append(f"operation follow-ups: the queue could not be read or moved: {exc}")
    out.messages = delivery.report.messages - before
    return out


def _one(
    config: Config,
    store: StateStore,
    state_key: str,
    delivery: Delivery,
    entry: Entry,
    now: float,
    out: FollowUps,
) -> bool:
    """Whether the entry is dealt with (posted, posted before, or given up)."""
    if entry.nonce is None:
        out.problems.append(f"operation follow-up {entry.number} is unreadable; passed over")
        return True
    key = operation_key(state_key, entry.nonce)
    record = load_record(store.read(key))
    if record is None or record.get("state") != "answered":
        out.problems.append(
            f"operation follow-up {entry.number}: its record {store.describe(key)} is "
            "missing or unreadable; passed over"
        )
        return True
    if record.get("announced") is True:
        return True
    what = (
        f"the follow-up of {record.get('operation')} on run {record.get('instance')} "
        f"(job {record.get('job_id')}) for receiver {record.get('receiver')}"
    )
    receiver = str(record.get("receiver", ""))
    if receiver not in delivery.receivers:
        out.problems.append(f"{what} is dropped: the receiver is no longer configured")
        return True
    at = record.get("at")
    max_age = config.pending_max_age.total_seconds()
    if not isinstance(at, int | float) or now - at > max_age:
        out.problems.append(
            f"{what} is dropped: not posted within {max_age / 3600:g} h (pending_max_age_hours)"
        )
        return True
    message = follow_up(record, config.templates.language, config.timezone)
    if delivery.notice(Notice(message, (receiver,))) is None:
        why = delivery.report.unannounced[-1][1]
        if why.endswith(BUDGET_USED):
            out.notes.append(f"{what} waits for the robot's rate budget")
        else:
            out.problems.append(f"{what} was not posted ({why}); a later tick tries again")
            _count_refusal(store, key, record, why, out)
        return False
    out.posted += 1
    record.update(announced=True, announced_at=now, announced_by="tick")
    try:
        store.write(key, json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode())
    except StoreError as exc:
        # The queue moves past it all the same: posting it twice is worse than a record
        # that says it was not.
        out.problems.append(f"{what} was posted, but its record could not say so: {exc}")
    log.info("operation follow-up posted: %s", what)
    return True


def _count_refusal(
    store: StateStore, key: str, record: dict[str, Any], why: str, out: FollowUps
) -> None:
    """The record counts the ticks DingTalk refused and keeps the last reason, for
    `state show`. One PUT per refusal; failing it loses only the count."""
    tried = record.get("followup_attempts")
    count = tried if isinstance(tried, int) and not isinstance(tried, bool) else 0
    record.update(followup_attempts=count + 1, followup_error=why[:300])
    try:
        store.write(key, json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode())
    except StoreError as exc:
        out.notes.append(f"a follow-up's record could not count its attempt: {exc}")
