"""The follow-ups owed to a group: operations from the chat whose follow-up DingTalk refused.

An operation link posts its follow-up at the click (links/operate.py). When DingTalk does
not take it (130101, a 5xx, a timeout), the link function cannot wait and try again: it
answers a person. So it queues the operation's nonce here, and the next tick posts the
follow-up through its own delivery (delivery/followups.py), within the robots' budgets,
and marks the operation's record announced once DingTalk took it.

The function's role may not list objects, and OSS has no compare-and-swap, only
create-only writes. So the queue is a numbered run of objects found by name:

- `<state>.followup.<n>`: one entry each, `{"v": 1, "nonce": ...}`, created once with
  `create` by a link function. A writer starts at the head's `next` and takes the first
  number that is free: when another writer got there first, `create` refuses and it takes
  the next one.
- `<state>.followups`: the head, `{"v": 1, "next": N}`: entries below N are dealt with.
  Only the tick writes it, under the state's lease, so there is one reader at a time.

Each refusal of a tick's attempt is counted in the operation's record (`followup_attempts`,
`followup_error`), so `state show` can say how often a follow-up was tried and why it has
not gone (`owed`).

Entries are never deleted, by the tick or the links. That is what keeps a writer that
read the head just before the tick moved it from creating its entry below the new
`next`, where nobody would read it: every number below `next` is taken. An OSS lifecycle
rule on `PREFIX/state.json.followup.` removes old entries (as for the operation records).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from schedulerx_alert.storage.store import StateStore, StoreError

VERSION = 1
FIRST = 1
MAX_ENTRY_BYTES = 1024
MAX_HEAD_BYTES = 1024
# Numbers one writer tries before giving up: entries past `next` are the follow-ups still
# owed and those dealt with after one still owed, a handful.
MAX_RACE = 64
MAX_RECORD_BYTES = 8192


def operation_key(state_key: str, nonce: str) -> str:
    """Where an operation link keeps its record (links/operate.py)."""
    return f"{state_key}.operation.{nonce}"


@dataclass(frozen=True)
class Entry:
    number: int
    nonce: str | None  # None: unreadable (reported, then passed over)


@dataclass(frozen=True)
class Owed:
    """A queued follow-up not posted yet, as `state show` lists it: what its operation's
    record says, never its nonce (the key of its signed link) nor who clicked."""

    number: int
    operation: str
    namespace: str
    group: str
    job_id: int | None
    job: str  # the job's name as the alert showed it
    instance: int | None
    receiver: str
    queued_at: float | None  # the click's time: the link queued it at once
    # The click's own try, then one per tick DingTalk refused.
    attempts: int
    last_error: str
    # False: the entry or its record could not be read, or the record has no answer.
    readable: bool = True


def load_record(data: bytes | None) -> dict[str, Any] | None:
    """An operation's record (links/operate.py), or None when absent or unreadable."""
    if data is None:
        return None
    try:
        record = json.loads(data[:MAX_RECORD_BYTES])
    except (ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


class FollowUpQueue:
    def __init__(self, store: StateStore, state_key: str) -> None:
        self.store = store
        self.state_key = state_key

    @property
    def head_key(self) -> str:
        return f"{self.state_key}.followups"

    def entry_key(self, number: int) -> str:
        return f"{self.state_key}.followup.{number:012d}"

    def head(self) -> int:
        """The first number not dealt with. Raises StoreError."""
        doc = _load(self.store.read(self.head_key), MAX_HEAD_BYTES)
        number = doc.get("next") if doc is not None else None
        if isinstance(number, int) and not isinstance(number, bool) and number >= FIRST:
            return number
        return FIRST

    def enqueue(self, nonce: str) -> int:
        """Queue an operation's follow-up; its number. Raises StoreError."""
        data = _encode({"v": VERSION, "nonce": nonce})
        number = self.head()
        for _ in range(MAX_RACE):
            if self.store.create(self.entry_key(number), data):
                return number
            number += 1
        raise StoreError(f"no free follow-up number from {number - MAX_RACE} to {number - 1}")

    def entries(self, start: int, limit: int) -> list[Entry]:
        """The entries from `start` up to the first free number, at most `limit`."""
        found: list[Entry] = []
        for number in range(start, start + limit):
            raw = self.store.read(self.entry_key(number))
            if raw is None:
                break
            doc = _load(raw, MAX_ENTRY_BYTES)
            nonce = doc.get("nonce") if doc is not None else None
            found.append(Entry(number, nonce if isinstance(nonce, str) and nonce else None))
        return found

    def owed(self, limit: int) -> list[Owed]:
        """The follow-ups from the head on that are not announced yet, at most `limit`
        entries read. Raises StoreError. Reads only: no lease needed."""
        found: list[Owed] = []
        for entry in self.entries(self.head(), limit):
            record = (
                load_record(self.store.read(operation_key(self.state_key, entry.nonce)))
                if entry.nonce is not None
                else None
            )
            # A record without its answer is passed over by the tick, as an unreadable one.
            if record is None or record.get("state") != "answered":
                found.append(Owed(entry.number, "", "", "", None, "", None, "", None, 0, "", False))
            elif record.get("announced") is not True:
                found.append(_owed(entry.number, record))
        return found

    def advance(self, number: int) -> None:
        """Everything below `number` is dealt with. Raises StoreError."""
        self.store.write(self.head_key, _encode({"v": VERSION, "next": number}))


def _owed(number: int, record: Mapping[str, Any]) -> Owed:
    def text(name: str) -> str:
        value = record.get(name)
        return value if isinstance(value, str) else ""

    def whole(name: str) -> int | None:
        value = record.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    at = record.get("at")
    return Owed(
        number=number,
        operation=text("operation"),
        namespace=text("namespace"),
        group=text("group"),
        job_id=whole("job_id"),
        job=text("job"),
        instance=whole("instance"),
        receiver=text("receiver"),
        queued_at=float(at) if isinstance(at, int | float) and not isinstance(at, bool) else None,
        attempts=1 + max(whole("followup_attempts") or 0, 0),
        last_error=text("followup_error"),
    )


def _load(raw: bytes | None, cap: int) -> dict[str, Any] | None:
    if raw is None or len(raw) > cap:
        return None
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def _encode(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
