"""What silences and quiet hours held back, per receiver, until a digest says so.

A held alert is not sent, and not forgotten: it is counted here, in the state, under
the receiver it was owed to and the holder that held it (a silence, or the receiver's
quiet hours), one entry per job and kind with how many and when. When the holder is
over, one digest per receiver lists its entries; the entries go only once a robot took
that digest. Pure: no I/O, no clock.

Bounded: at most `MAX_ENTRIES` entries per receiver; past that, a holder's further
jobs are folded into one entry without a job (`job is None`), still counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from schedulerx_alert.core.model import JobKey
from schedulerx_alert.core.silence import KINDS, QuietHours, Silence, in_quiet_hours

MAX_ENTRIES = 200
MAX_ROWS = 4 * MAX_ENTRIES
MAX_RECEIVERS = 1000
MAX_TEXT = 200
MAX_COUNT = 10**9
QUIET = "quiet"  # the holder of what a receiver's quiet hours held
ANY = "*"  # the kind of an entry that folds a holder's further jobs together
# A kind no quiet hours except: asks whether the receiver is quiet at all.
_ANY_KIND = "digest"


def holder_of(silence: Silence) -> str:
    """A silence as a holder: its source and id (`config:silences[0]`, `oss:3`)."""
    return f"{silence.source}:{silence.id}"


@dataclass(frozen=True)
class Held:
    holder: str  # holder_of(silence), or QUIET
    job: JobKey | None  # None: the holder's jobs past MAX_ENTRIES, folded together
    name: str  # the job's configured name, "" without one
    kind: str
    first: float
    last: float
    count: int = 1

    @property
    def key(self) -> tuple[str, JobKey | None, str]:
        return (self.holder, self.job, self.kind)


@dataclass(frozen=True)
class HeldAlert:
    """One alert a holder kept from one receiver this tick."""

    receiver: str
    holder: str
    job: JobKey | None
    name: str
    kind: str
    at: float
    # For its log line (alert_log.py): the run behind it, if any, and the finding's id.
    instance_id: int | None = None
    fingerprint: str = ""


HeldBook = Mapping[str, tuple[Held, ...]]  # receiver -> entries


def hold(book: HeldBook, alerts: Iterable[HeldAlert]) -> dict[str, tuple[Held, ...]]:
    """The book with this tick's held alerts counted in."""
    out: dict[str, dict[tuple[str, JobKey | None, str], Held]] = {
        receiver: {entry.key: entry for entry in entries} for receiver, entries in book.items()
    }
    for alert in alerts:
        entries = out.setdefault(alert.receiver, {})
        key = (alert.holder, alert.job, alert.kind)
        if key not in entries and len(entries) >= MAX_ENTRIES:
            key = (alert.holder, None, ANY)
            if key not in entries and len(entries) >= MAX_ROWS - 1:
                key = ("*", None, ANY)  # no holder's: listed by the next digest
        before = entries.get(key)
        if before is None:
            job = key[1]
            name = alert.name[:MAX_TEXT] if job else ""
            entries[key] = Held(key[0][:MAX_TEXT], job, name, key[2], alert.at, alert.at)
        else:
            entries[key] = replace(
                before, last=max(before.last, alert.at), count=min(before.count + 1, MAX_COUNT)
            )
    return {receiver: tuple(entries.values()) for receiver, entries in out.items() if entries}


def due(
    book: HeldBook,
    silences: Sequence[Silence],
    quiet_hours: Mapping[str, QuietHours],
    now: float,
    unknown_sources: frozenset[str] = frozenset(),
) -> dict[str, tuple[Held, ...]]:
    """Per receiver, the entries whose holder is over: the silence ended (or is gone),
    the quiet hours are over. A receiver still in its quiet hours waits for its digest.

    `unknown_sources` are sources whose silences could not be read this tick (`oss`
    when the silence book is unreadable): what they held waits, since whether they
    ended is not known.
    """
    active = {holder_of(s) for s in silences if s.active(now)}
    result: dict[str, tuple[Held, ...]] = {}
    for receiver, entries in book.items():
        quiet = in_quiet_hours(quiet_hours.get(receiver), now, _ANY_KIND)
        if quiet:
            continue
        over = tuple(
            entry
            for entry in entries
            if entry.holder not in active and entry.holder.partition(":")[0] not in unknown_sources
        )
        if over:
            result[receiver] = over
    return result


def release(book: HeldBook, receiver: str, entries: Iterable[Held]) -> dict[str, tuple[Held, ...]]:
    """The book without entries a digest to `receiver` has listed."""
    gone = {entry.key for entry in entries}
    out = {name: held for name, held in book.items() if name != receiver}
    left = tuple(entry for entry in book.get(receiver, ()) if entry.key not in gone)
    if left:
        out[receiver] = left
    return out


def counts(book: HeldBook) -> dict[str, int]:
    """Alerts held, per receiver."""
    return {r: sum(e.count for e in entries) for r, entries in sorted(book.items()) if entries}


@dataclass(frozen=True)
class SilenceReport:
    """Silences in force and what is held back now: for a heartbeat or a status page."""

    active: tuple[Silence, ...]
    held: Mapping[str, tuple[Held, ...]]

    @property
    def counts(self) -> dict[str, int]:
        return counts(self.held)


def silence_report(book: HeldBook, silences: Iterable[Silence], now: float) -> SilenceReport:
    active = tuple(sorted((s for s in silences if s.active(now)), key=lambda s: (s.until, s.id)))
    return SilenceReport(active, dict(book))


# -- JSON ---------------------------------------------------------------------------------
#
# {"ops": [[holder, job | null, name, kind, first, last, count], ...]}


def encode(book: HeldBook) -> dict[str, list[list[Any]]]:
    return {
        receiver: [
            [
                e.holder,
                e.job.encode() if e.job else None,
                e.name,
                e.kind,
                e.first,
                e.last,
                e.count,
            ]
            for e in entries
        ]
        for receiver, entries in sorted(book.items())
        if entries
    }


def decode(raw: Any) -> dict[str, tuple[Held, ...]]:
    """Raises ValueError naming the field."""
    if not isinstance(raw, dict) or len(raw) > MAX_RECEIVERS:
        raise ValueError(f"silenced: not an object of at most {MAX_RECEIVERS} receivers")
    book: dict[str, tuple[Held, ...]] = {}
    for receiver, rows in raw.items():
        where = f"silenced[{receiver[:80]!r}]"
        # The entries, and one folded entry per holder past them.
        if not isinstance(rows, list) or len(rows) > MAX_ROWS:
            raise ValueError(f"{where}: not a list of at most {MAX_ROWS} entries")
        book[receiver] = tuple(_entry(row, f"{where}[{i}]") for i, row in enumerate(rows))
    return book


def _entry(row: Any, where: str) -> Held:
    if not isinstance(row, list) or len(row) != 7:
        raise ValueError(f"{where}: not a list of 7 values")
    holder, job, name, kind, first, last, count = row
    for field_name, text in (("holder", holder), ("name", name), ("kind", kind)):
        if not isinstance(text, str) or len(text) > MAX_TEXT:
            raise ValueError(f"{where}.{field_name}: not a string of at most {MAX_TEXT}")
    # The digest shows a kind in words, and one it has no words for as stored: only the
    # kinds this code raises, and the folded entries' "*", are read back.
    if kind not in KINDS and kind != ANY:
        raise ValueError(f"{where}.kind: not a known kind")
    key: JobKey | None = None
    if job is not None:
        if not isinstance(job, str):
            raise ValueError(f"{where}.job: not a job key")
        try:
            key = JobKey.decode(job)
        except ValueError:
            raise ValueError(f"{where}.job: not a job key") from None
    for field_name, value in (("first", first), ("last", last)):
        if type(value) not in (int, float) or not 0 <= value <= 1e11:
            raise ValueError(f"{where}.{field_name}: not a time in epoch seconds")
    if type(count) is not int or not 1 <= count <= MAX_COUNT:
        raise ValueError(f"{where}.count: not a count")
    return Held(holder, key, name, kind, float(first), float(last), count)
