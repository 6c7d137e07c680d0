"""The tick's part in silences: read them, route with them, send the digests they owe.

1. `read_silences`, after the lease is taken: the config's silences and the silence
   book's beside the state (compacted while the lease is held). A book that cannot be
   read drops no alert: its silences are not applied this tick, so what they would hold
   is sent, the tick says so in a problem line, and what they held before waits for the
   book (whether they ended is not known).
2. `SilenceView.policy` is what `diff.route` asks (core/routing.py's `Policy`).
3. `send_digests`, after the alerts: one digest per receiver of what the holders that
   are over held back, as a notice within the robots' budgets. The held entries go only
   when a robot took the digest; a digest not taken is tried again next tick. A digest
   a robot took is checkpointed at once, like an alert: the journal names each entry it
   listed (`entry_key`), so a tick that takes over from one that died before its commit
   lets those entries go without sending the digest again.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from schedulerx_alert.storage.store import StateStore, StoreError

if TYPE_CHECKING:
    # core/silence_hold.py, core/silence.py and the routing load only when something uses them:
    # a silence (config or book), a route, quiet hours, or alerts held back.
    from schedulerx_alert.config import Config
    from schedulerx_alert.core.routing import Policy
    from schedulerx_alert.core.silence import Silence
    from schedulerx_alert.core.silence_hold import Held, HeldAlert, HeldBook, SilenceReport
    from schedulerx_alert.core.state import Alert
    from schedulerx_alert.delivery.links import ActionLinks
    from schedulerx_alert.delivery.outbox import Delivery

BOOK = "oss"  # the source of the silence book's silences (core.silence.Silence.source)
DIGEST = "silence-digest"


@dataclass(frozen=True)
class SilenceView:
    """The silences this tick knows: the config's and the book's."""

    silences: tuple[Silence, ...]
    # Sources whose silences could not be read: what they held waits.
    unknown_sources: frozenset[str] = frozenset()
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def policy(self, config: Config) -> Policy | None:
        """How `diff.route` routes and holds; None when there is nothing to route or
        hold by, which routes as an empty policy would (the watch entries' receivers)."""
        if not (config.routes or self.silences or config.quiet_hours):
            return None
        from schedulerx_alert.core.routing import Policy

        return Policy(config.routes, self.silences, config.quiet_hours)

    def report(self, book: HeldBook, now: float) -> SilenceReport:
        """Silences in force and what is held back (for a heartbeat, say)."""
        from schedulerx_alert.core.silence_hold import silence_report

        return silence_report(book, self.silences, now)


def read_silences(
    config: Config, store: StateStore | None, state_key: str, now: float, *, compact: bool
) -> SilenceView:
    """The config's silences and the book's; never raises for the book."""
    if store is None:
        return SilenceView(config.silences)
    from schedulerx_alert.storage.silence_book import SilenceBook

    book = SilenceBook(store, state_key)
    try:
        view = book.read()
    except StoreError as exc:
        return SilenceView(
            config.silences,
            frozenset({BOOK}),
            (
                f"silence book unreadable: {exc}; its silences are not applied this tick "
                "(what they would hold back is sent) and the digest of what they held waits",
            ),
        )
    notes = [f"silence book: {problem}" for problem in view.problems]
    unknown = frozenset({BOOK}) if view.snapshot in ("unreadable", "newer") else frozenset()
    if compact:
        try:
            notes += book.compact(now, view).notes
        except StoreError as exc:
            notes.append(f"silence book not compacted: {exc}")
    return SilenceView((*config.silences, *view.silences), unknown, (), tuple(notes))


def held_note(held: Sequence[HeldAlert]) -> str | None:
    """The summary's line on what was held back this tick: never silent."""
    if not held:
        return None
    by_receiver = Counter(h.receiver for h in held)
    who = ", ".join(f"{name}: {n}" for name, n in sorted(by_receiver.items()))
    return (
        f"held back {len(held)} alert(s) ({who}) by silences or quiet hours; "
        "a digest lists them when those end"
    )


@dataclass
class Digests:
    book: dict[str, tuple[Held, ...]]
    sent: int = 0  # digests a robot took
    messages: int = 0  # messages tried
    notes: tuple[str, ...] = ()
    # Checkpoint keys of entries a dead tick's digest listed, used up here.
    consumed: frozenset[str] = field(default_factory=frozenset)


def entry_key(receiver: str, entry: Held) -> str:
    """How a checkpoint names one held entry a digest listed (an alert key: receiver,
    fingerprint); `first` tells it from a later entry of the same holder, job and kind."""
    from schedulerx_alert.core.state import receiver_key

    job = entry.job.encode() if entry.job is not None else ""
    raw = "\x1f".join((entry.holder, job, entry.kind, repr(entry.first)))
    digest = hashlib.sha256(raw.encode("utf-8", "backslashreplace")).hexdigest()[:24]
    return f"{receiver_key(receiver)}:held:{digest}"


def _marker(receiver: str, entries: Sequence[Held], now: float) -> Alert:
    """A digest a robot took, as the checkpoint records it: one key per entry."""
    from schedulerx_alert.core.findings import Finding
    from schedulerx_alert.core.state import Alert

    members = tuple(entry_key(receiver, e).partition(":")[2] for e in entries)
    found = Finding(
        kind=DIGEST,
        subject="monitor",
        # Its own key is its first entry's: every key it leaves is one an entry uses up.
        fingerprint=members[0] if members else f"{DIGEST}:{now}",
        at=now,
        facts={"members": members},
    )
    return Alert(receiver, found, now)


def send_digests(
    config: Config,
    delivery: Delivery,
    book: HeldBook,
    view: SilenceView,
    now: float,
    delivered: Mapping[str, float] | None = None,
    journal: Callable[[Alert], None] | None = None,
) -> Digests:
    """Send what is owed; the book without the entries of digests a robot took, or
    that a tick which died before its commit had sent (its checkpoint is in
    `delivered`). `journal` checkpoints each digest a robot took."""
    if not book:
        return Digests({})  # nothing held, nothing owed: the digest's modules need not load
    from schedulerx_alert.core.silence_hold import due, release
    from schedulerx_alert.delivery.digest import digest_message
    from schedulerx_alert.delivery.outbox import Notice

    ready = due(book, view.silences, config.quiet_hours, now, view.unknown_sources)
    result = Digests(dict(book))
    notes: list[str] = []
    consumed: set[str] = set()
    for receiver, entries in sorted(ready.items()):
        sent = [e for e in entries if entry_key(receiver, e) in (delivered or {})]
        if sent:
            consumed.update(entry_key(receiver, e) for e in sent)
            result.book = release(result.book, receiver, sent)
            notes.append(
                f"digest of {sum(e.count for e in sent)} held alert(s) for {receiver} "
                "was sent by a tick that did not commit"
            )
            entries = tuple(e for e in entries if e not in sent)
            if not entries:
                continue
        count = sum(e.count for e in entries)
        if receiver not in config.receivers:
            result.book = release(result.book, receiver, entries)
            notes.append(
                f"{count} held alert(s) of receiver {receiver!r}, which is no longer "
                "configured, are not digested"
            )
            continue
        message = digest_message(entries, view.silences, config.templates.language, config.timezone)
        before = delivery.report.messages
        taken = delivery.notice(Notice(message, (receiver,)))
        result.messages += delivery.report.messages - before
        if taken is None:
            why = delivery.report.unannounced[-1][1]
            notes.append(f"digest of {count} held alert(s) for {receiver} waits ({why})")
            continue
        if journal is not None:
            journal(_marker(receiver, entries, now))
        result.book = release(result.book, receiver, entries)
        result.sent += 1
        notes.append(f"sent {receiver} the digest of {count} held alert(s)")
    result.notes = tuple(notes)
    result.consumed = frozenset(consumed)
    return result


def action_links(config: Config, clock: Callable[[], float]) -> ActionLinks | None:
    """The buttons' maker for this tick, when `actions:` is enabled (itsdangerous loads
    only then)."""
    settings = config.actions
    if settings is None or not settings.usable:
        return None
    from schedulerx_alert.delivery.links import ActionLinks

    return ActionLinks(settings, config.templates.language, config.timezone, clock)


def action_problems(config: Config) -> list[str]:
    """The tick's lines on a broken `actions:` section: its alerts go without buttons."""
    settings = config.actions
    if settings is None or not settings.problems:
        return []
    return [f"{p}; alerts are sent without silence buttons" for p in settings.problems]
