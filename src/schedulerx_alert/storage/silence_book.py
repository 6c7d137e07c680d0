"""The silence book: silences added by on-call, kept beside the state in the same store.

The function's RAM policy allows Get, Put and Delete on its prefix, never List, and
OSS offers no compare-and-swap, only create-only writes. So the book is a set of
objects found by name:

- `<state>.silence.<n>`: numbered records, each written once with `create`. A record
  adds a silence (its id is its number) or expires one. A writer takes the number
  after the last one it read; when someone else got there first, `create` refuses
  and it takes the next. Two people adding at once both land; nothing is overwritten.
- `<state>.silences`: the snapshot, `{"next": N, "silences": [...]}`, which folds the
  records below N. Only compaction writes it, and compaction runs in the tick, under
  the state's lease, so there is one compactor at a time.

A reader reads the snapshot, then records from `next` upward. Numbers are taken in
order and never skipped, so the end of the book is the first free number; but a
record may be deleted by hand (or by a lifecycle rule on the prefix), and everything
after that hole would vanish with it. The reader therefore reads on across up to
`HOLES` missing numbers in a row and reports any hole it crosses. That costs `HOLES`
extra reads of absent objects per read of the book: 1 + records + 1 + HOLES reads in
all, 4 right after a compaction.

A writer may read the snapshot just before a compaction deletes the records it folded,
and then create its record below the new `next`, where nobody reads. So after each
create the writer reads the snapshot again and, when its record fell below `next`
without being folded, deletes it and writes it again above.

Everything read is bounded (record and snapshot size, records read, silences kept);
a malformed record or snapshot is reported and skipped, never fatal.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from schedulerx_alert.storage.store import StateStore, StoreError

if TYPE_CHECKING:
    from schedulerx_alert.core.silence import Matcher, Silence

# core/silence.py loads with the first silence read or written: every tick reads the
# book, and most books are empty or absent.

# The newest version this code reads and writes. What names a workflow (`match.workflows`)
# is written as version 2, everything else as 1: a version that knows no workflows reads
# a book without them as it always did, and leaves one with them alone (newer than it)
# rather than skip the workflow's silence and fold it away.
VERSION = 2
PLAIN = 1
MAX_RECORD_BYTES = 8 * 1024
# Compaction keeps the snapshot under the first; a reader refuses one over the second.
SNAPSHOT_TARGET_BYTES = 1024 * 1024
MAX_SNAPSHOT_BYTES = 4 * 1024 * 1024
MAX_OPEN = 100  # silences not yet ended; `add` refuses more
MAX_SCAN = 256  # records read past the snapshot; a tick compacts long before
HOLES = 2
MAX_RACE = 32  # numbers one writer tries before giving up
KEEP_ENDED = 7 * 24 * 3600  # ended silences stay listable (`silence list --all`) this long
MAX_KEPT_ENDED = 200
FIRST = 1  # the first record number: silence ids start at 1, as people count

# "newer": written by a later version of this code, which this one must not overwrite.
SnapshotStatus = Literal["absent", "ok", "unreadable", "newer"]


class SilenceBookError(Exception):
    """A change to the book that cannot be made; the message says why."""


@dataclass(frozen=True)
class BookView:
    """The book as one read found it."""

    silences: tuple[Silence, ...]
    base: int  # the snapshot's `next`: records below it are folded into the snapshot
    numbers: tuple[int, ...]  # records found at or above `base`, readable or not
    next_free: int  # where the next record goes
    problems: tuple[str, ...]
    reads: int  # objects read, absent ones included
    snapshot: SnapshotStatus = "absent"
    truncated: bool = False  # stopped at MAX_SCAN records
    newer: bool = False  # something in it was written by a later version
    # The random uid of each silence's add record: how a writer whose record a
    # compaction folded finds it in the snapshot.
    uids: Mapping[str, str] = field(default_factory=dict)

    def get(self, silence_id: str) -> Silence | None:
        return next((s for s in self.silences if s.id == silence_id), None)


@dataclass(frozen=True)
class Compaction:
    changed: bool
    folded: int = 0  # records folded into the snapshot and deleted
    kept: int = 0  # silences in the snapshot
    dropped: int = 0  # ended silences let go
    notes: tuple[str, ...] = ()


@dataclass
class _Snapshot:
    next: int = FIRST
    silences: list[Silence] = field(default_factory=list)
    uids: dict[str, str] = field(default_factory=dict)  # silence id -> uid of its record


class SilenceBook:
    def __init__(self, store: StateStore, state_key: str) -> None:
        self.store = store
        self.state_key = state_key

    @property
    def snapshot_key(self) -> str:
        return f"{self.state_key}.silences"

    def record_key(self, number: int) -> str:
        return f"{self.state_key}.silence.{number:012d}"

    # -- reading -------------------------------------------------------------------------------

    def read(self) -> BookView:
        """The book's silences, expiries applied. Raises StoreError when the store fails."""
        problems: list[str] = []
        raw = self.store.read(self.snapshot_key)
        status, snapshot = self._parse_snapshot(raw, problems)
        reads = 1
        silences: dict[str, Silence] = {s.id: s for s in snapshot.silences}
        uids = dict(snapshot.uids)
        expiries: list[tuple[int, dict[str, Any]]] = []
        numbers: list[int] = []
        newer = [status == "newer"]
        number, missing = snapshot.next, 0
        while missing <= HOLES and len(numbers) < MAX_SCAN:
            data = self.store.read(self.record_key(number))
            reads += 1
            if data is None:
                missing += 1
            else:
                if missing:
                    gap = f"{number - missing}" + (f"-{number - 1}" if missing > 1 else "")
                    problems.append(
                        f"silence record {gap} missing ({self._where(number - missing)}); "
                        "read on past it"
                    )
                missing = 0
                numbers.append(number)
                newer.append(self._take(number, data, silences, uids, expiries, problems))
            number += 1
        truncated = len(numbers) >= MAX_SCAN
        if truncated:
            problems.append(
                f"more than {MAX_SCAN} silence records since the last compaction; "
                f"read the first {MAX_SCAN} (a tick compacts the book)"
            )
        for record_number, record in expiries:
            target = record["target"]
            if target not in silences:
                problems.append(
                    f"silence record {record_number} expires silence {target!r}, "
                    "which the book does not hold; ignored"
                )
                continue
            silences[target] = silences[target].expire(record["at"], record["by"])
        return BookView(
            silences=tuple(silences.values()),
            base=snapshot.next,
            numbers=tuple(numbers),
            next_free=numbers[-1] + 1 if numbers else snapshot.next,
            problems=tuple(problems),
            reads=reads,
            snapshot=status,
            truncated=truncated,
            newer=any(newer),
            uids={sid: uid for sid, uid in uids.items() if sid in silences},
        )

    def _where(self, number: int) -> str:
        return self.store.describe(self.record_key(number))

    def _parse_snapshot(
        self, raw: bytes | None, problems: list[str]
    ) -> tuple[SnapshotStatus, _Snapshot]:
        if raw is None:
            return "absent", _Snapshot()
        where = f"silence snapshot {self.store.describe(self.snapshot_key)}"
        if len(raw) > MAX_SNAPSHOT_BYTES:
            problems.append(
                f"{where}: {len(raw)} bytes, over the {MAX_SNAPSHOT_BYTES} it may have; "
                "its silences are not applied"
            )
            return "unreadable", _Snapshot()
        doc, problem = _load_json(raw)
        if problem:
            problems.append(f"{where}: {problem}; its silences are not applied")
            return "unreadable", _Snapshot()
        version = doc.get("v") if isinstance(doc, dict) else None
        if _is_newer(version):
            problems.append(
                f"{where}: written by a newer version of schedulerx-alert (v={version}); "
                "its silences are not applied"
            )
            return "newer", _Snapshot()
        if not isinstance(doc, dict) or version not in (PLAIN, VERSION):
            problems.append(
                f"{where}: not a version {PLAIN} or {VERSION} snapshot (v={version!r}); "
                "its silences are not applied"
            )
            return "unreadable", _Snapshot()
        next_number = doc.get("next")
        entries = doc.get("silences")
        if (
            isinstance(next_number, bool)
            or not isinstance(next_number, int)
            or not FIRST <= next_number < 2**53
            or not isinstance(entries, list)
        ):
            problems.append(f"{where}: no valid `next` or `silences`; its silences are not applied")
            return "unreadable", _Snapshot()
        snapshot = _Snapshot(next=next_number)
        if entries:
            from schedulerx_alert.core.silence import parse_silence
        for index, entry in enumerate(entries):
            silence = parse_silence(entry, f"{where}: silences[{index}]", problems)
            if silence is None:
                continue
            snapshot.silences.append(silence)
            uid = entry.get("uid") if isinstance(entry, dict) else None
            if isinstance(uid, str):
                snapshot.uids[silence.id] = uid
        return "ok", snapshot

    def _take(
        self,
        number: int,
        data: bytes,
        silences: dict[str, Silence],
        uids: dict[str, str],
        expiries: list[tuple[int, dict[str, Any]]],
        problems: list[str],
    ) -> bool:
        """Apply one record; True when a later version wrote it."""
        where = f"silence record {number} ({self._where(number)})"
        record, problem = _decode_record(data)
        if record is None:
            problems.append(f"{where}: {problem}; skipped")
            return problem.startswith(_NEWER)
        if record["op"] == "expire":
            expiries.append((number, record))
            return False
        from schedulerx_alert.core.silence import parse_silence

        silence_id = str(number)
        found: list[str] = []
        silence = parse_silence({**record, "id": silence_id}, where, found)
        if silence is None:
            problems += [f"{line}; skipped" for line in found]
        elif silence_id in silences:
            problems.append(f"{where}: the snapshot already holds silence {silence_id}; skipped")
        else:
            silences[silence_id] = silence
            uids[silence_id] = record["uid"]
        return False

    # -- writing -------------------------------------------------------------------------------

    def add(
        self,
        matcher: Matcher,
        start: float,
        end: float,
        comment: str,
        created_by: str,
        now: float,
        uid: str | None = None,
    ) -> Silence:
        """Store a new silence and return it with its id. Raises SilenceBookError, StoreError.

        `uid` names the record (default: random); a caller that must add a silence
        once, whoever retries, passes its own and finds it again in `BookView.uids`.
        """
        if matcher.is_empty:
            raise SilenceBookError("a silence must name what it holds back (job, group, name, ...)")
        if end <= start:
            raise SilenceBookError("a silence must end after it starts")
        if end <= now:
            raise SilenceBookError("that silence would already be over")
        from schedulerx_alert.core.silence import MAX_COMMENT, MAX_WHO, Silence

        _check_text("the reason", comment, MAX_COMMENT)
        _check_text("who", created_by, MAX_WHO)
        view = self.read()
        if view.truncated:
            raise SilenceBookError(
                f"the book holds {MAX_SCAN} records not yet compacted; "
                "let a tick run (it compacts the book) and try again"
            )
        open_now = sum(1 for s in view.silences if s.until > now)
        if open_now >= MAX_OPEN:
            raise SilenceBookError(
                f"the book holds {open_now} silences that have not ended (at most {MAX_OPEN}); "
                "expire some first"
            )
        if uid is None:
            uid = secrets.token_hex(8)
        elif not _UID.fullmatch(uid):
            raise SilenceBookError("a record's uid is 8 to 64 letters, digits, '-' or '_'")
        record = {
            "v": VERSION if matcher.workflow_ids else PLAIN,
            "op": "add",
            "uid": uid,
            "match": matcher.to_dict(),
            "start": start,
            "end": end,
            "comment": comment,
            "created_by": created_by,
            "created_at": now,
        }
        data = _encode(record)

        def folded(snapshot: _Snapshot) -> str | None:
            return next((sid for sid, u in snapshot.uids.items() if u == uid), None)

        number = self._append(view, data, folded)
        return Silence(
            id=number,
            matcher=matcher,
            start=start,
            end=end,
            comment=comment,
            created_by=created_by,
            created_at=now,
            source="oss",
        )

    def expire(self, silence_id: str, by: str, now: float) -> Silence:
        """End a silence now. Raises SilenceBookError (unknown or ended), StoreError."""
        from schedulerx_alert.core.silence import MAX_WHO

        _check_text("who", by, MAX_WHO)
        view = self.read()
        silence = view.get(silence_id)
        if silence is None:
            raise SilenceBookError(f"the silence book holds no silence {silence_id!r}")
        if silence.until <= now:
            raise SilenceBookError(f"silence {silence_id} has already ended")
        record = {
            "v": PLAIN,
            "op": "expire",
            "uid": secrets.token_hex(8),
            "target": silence_id,
            "by": by,
            "at": now,
        }

        def folded(snapshot: _Snapshot) -> str | None:
            # The aim is that it ends by `now`: done if the snapshot says so, or let it go.
            held = next((s for s in snapshot.silences if s.id == silence_id), None)
            return silence_id if held is None or held.until <= now else None

        self._append(view, _encode(record), folded)
        return silence.expire(now, by)

    def _append(
        self, view: BookView, data: bytes, folded: Callable[[_Snapshot], str | None]
    ) -> str:
        """Create the record at the first free number; returns the number it holds."""
        number = view.next_free
        for _ in range(MAX_RACE):
            if not self._create(number, data):
                number += 1  # someone else took it
                continue
            snapshot = self._snapshot_now()
            if snapshot.next <= number:
                return str(number)
            # A compaction moved `next` past our record while we wrote it.
            done = folded(snapshot)
            if done is not None:
                return done
            self.store.delete(self.record_key(number))
            number = max(number + 1, self.read().next_free)
        raise SilenceBookError(
            f"{MAX_RACE} record numbers in a row were taken by others; try again"
        )

    def _create(self, number: int, data: bytes) -> bool:
        key = self.record_key(number)
        try:
            if self.store.create(key, data):
                return True
        except StoreError:
            # A create that timed out may still have landed: if it did, it is ours.
            if self.store.read(key) == data:
                return True
            raise
        # Equal bytes carry our random uid: an earlier attempt of ours that landed.
        return self.store.read(key) == data

    def _snapshot_now(self) -> _Snapshot:
        return self._parse_snapshot(self.store.read(self.snapshot_key), [])[1]

    # -- compaction (the tick, under the state's lease) ----------------------------------------

    def compact(
        self,
        now: float,
        view: BookView | None = None,
        keep_ended: float = KEEP_ENDED,
    ) -> Compaction:
        """Fold the records into the snapshot and let go of long-ended silences.

        Only the holder of the state's lease may call this: two compactors at once
        could each delete records the other's snapshot does not hold. `view` is a read
        made under the same lease (saves reading the book twice). Raises StoreError
        only when the book cannot be read; a failed write leaves the records in place.
        """
        if view is None:
            view = self.read()
        if view.newer:
            # Its records and snapshot would be folded away unread: leave the book to it.
            return Compaction(
                changed=False,
                notes=("the silence book holds records of a newer version; not compacted",),
            )
        keep = [s for s in view.silences if s.until > now - keep_ended]
        ended = sorted((s for s in keep if s.until <= now), key=lambda s: s.until, reverse=True)
        let_go = {s.id for s in ended[MAX_KEPT_ENDED:]}
        kept = [s for s in keep if s.id not in let_go]
        dropped = len(view.silences) - len(kept)
        if not view.numbers and not dropped and view.snapshot != "unreadable":
            return Compaction(changed=False, kept=len(kept))
        notes: list[str] = []
        current = self.store.read(self.snapshot_key)
        if self._parse_snapshot(current, [])[1].next != view.base:
            return Compaction(
                changed=False,
                notes=("the silence snapshot changed since it was read; compacting next tick",),
            )
        uids = dict(view.uids)
        body = _snapshot_bytes(max(view.next_free, view.base), kept, uids)
        while len(body) > SNAPSHOT_TARGET_BYTES and ended:
            # Oldest ended first: what is still open is never let go.
            gone = ended.pop()
            kept = [s for s in kept if s.id != gone.id]
            dropped += 1
            body = _snapshot_bytes(max(view.next_free, view.base), kept, uids)
        try:
            if view.snapshot == "unreadable" and current is not None:
                stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
                aside = f"{self.snapshot_key}.corrupt-{stamp}"
                self.store.write(aside, current)
                notes.append(f"unreadable silence snapshot kept aside as {aside}")
            self.store.write(self.snapshot_key, body)
        except StoreError as exc:
            return Compaction(changed=False, notes=(f"silence book not compacted: {exc}",))
        folded = 0
        for number in view.numbers:
            try:
                self.store.delete(self.record_key(number))
                folded += 1
            except StoreError as exc:
                # Below the new `next`, a leftover record is never read again.
                notes.append(f"folded silence record {number} not deleted: {exc}")
        return Compaction(
            changed=True, folded=folded, kept=len(kept), dropped=dropped, notes=tuple(notes)
        )


def _snapshot_bytes(next_number: int, silences: list[Silence], uids: Mapping[str, str]) -> bytes:
    entries = []
    for silence in silences:
        entry = silence.to_dict()
        if silence.id in uids:
            entry["uid"] = uids[silence.id]
        entries.append(entry)
    version = VERSION if any(s.matcher.workflow_ids for s in silences) else PLAIN
    return _encode({"v": version, "next": next_number, "silences": entries})


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def _decode_record(data: bytes) -> tuple[dict[str, Any] | None, str]:
    """A record's fields, or None and what is wrong with it."""
    if len(data) > MAX_RECORD_BYTES:
        return None, f"{len(data)} bytes, over the {MAX_RECORD_BYTES} a record may have"
    record, problem = _load_json(data)
    if problem:
        return None, problem
    if not isinstance(record, dict):
        return None, "not a JSON object"
    if _is_newer(record.get("v")):
        return None, f"{_NEWER} (v={record['v']})"
    if record.get("v") not in (PLAIN, VERSION):
        return None, f"not a version {PLAIN} or {VERSION} record (v={record.get('v')!r})"
    if not isinstance(record.get("uid"), str):
        return None, "no uid"
    op = record.get("op")
    if op == "add":
        return record, ""
    if op == "expire":
        from schedulerx_alert.core.silence import MAX_WHO

        target, by, at = record.get("target"), record.get("by"), record.get("at")
        if not isinstance(target, str) or not isinstance(by, str) or len(by) > MAX_WHO:
            return None, "an expire record needs `target` and `by` strings"
        if isinstance(at, bool) or not isinstance(at, int | float) or not 0 <= at < 2**33:
            return None, "an expire record needs `at` in epoch seconds"
        return {**record, "at": float(at)}, ""
    return None, f"unknown op {str(op)[:40]!r}"


_NEWER = "written by a newer version of schedulerx-alert"
_UID = re.compile(r"[A-Za-z0-9_-]{8,64}")


def _is_newer(version: Any) -> bool:
    return isinstance(version, int) and not isinstance(version, bool) and version > VERSION


def _load_json(data: bytes) -> tuple[Any, str]:
    try:
        return json.loads(data), ""
    except json.JSONDecodeError as exc:
        return None, f"not JSON ({exc.msg} at character {exc.pos})"
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except RecursionError:
        return None, "nested too deep"


def _check_text(what: str, text: str, limit: int) -> None:
    if not text.strip():
        raise SilenceBookError(f"{what} must not be empty")
    if len(text) > limit:
        raise SilenceBookError(f"{what} is {len(text)} characters; at most {limit}")
