"""The tick's part in silences: read them, route with them, send the digests they owe.

1. `read_silences`, after the lease is taken: the config's silences and the silence
   book's beside the state (compacted while the lease is held). A book that cannot be
   read drops no alert: its silences are not applied this tick, so what they would hold
   is sent, the tick says so in a problem line, and what they held before waits for the
   book (whether they ended is not known).
2. `SilenceView.policy` is what `diff.route` asks (delivery/silencing.py).
3. `send_digests`, after the alerts: one digest per receiver of what the holders that
   are over held back, as a notice within the robots' budgets. The held entries go only
   when a robot took the digest; a digest not taken is tried again next tick. A digest
   is not checkpointed: a tick that dies between DingTalk's answer and its commit sends
   it once more.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.held import Held, HeldAlert, HeldBook, SilenceReport, due, release, silence_report
from ..core.silence import Silence
from ..store import StateStore, StoreError
from .silencing import Policy

if TYPE_CHECKING:
    from ..actions.links import ActionLinks
    from ..config import Config
    from ..deliver import Delivery

BOOK = "oss"  # the source of the silence book's silences (core.silence.Silence.source)


@dataclass(frozen=True)
class SilenceView:
    """The silences this tick knows: the config's and the book's."""

    silences: tuple[Silence, ...]
    # Sources whose silences could not be read: what they held waits.
    unknown_sources: frozenset[str] = frozenset()
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def policy(self, config: Config) -> Policy:
        return Policy(config.routes, self.silences, config.quiet_hours)

    def report(self, book: HeldBook, now: float) -> SilenceReport:
        """Silences in force and what is held back (for a heartbeat, say)."""
        return silence_report(book, self.silences, now)


def read_silences(
    config: Config, store: StateStore | None, state_key: str, now: float, *, compact: bool
) -> SilenceView:
    """The config's silences and the book's; never raises for the book."""
    if store is None:
        return SilenceView(config.silences)
    from ..storage.silences import SilenceBook

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


def send_digests(
    config: Config, delivery: Delivery, book: HeldBook, view: SilenceView, now: float
) -> Digests:
    """Send what is owed; the book without the entries of digests a robot took."""
    from ..deliver import Notice
    from .digest import digest_message

    ready = due(book, view.silences, config.quiet_hours, now, view.unknown_sources)
    result = Digests(dict(book))
    notes: list[str] = []
    for receiver, entries in sorted(ready.items()):
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
        result.book = release(result.book, receiver, entries)
        result.sent += 1
        notes.append(f"sent {receiver} the digest of {count} held alert(s)")
    result.notes = tuple(notes)
    return result


def action_links(config: Config, clock: Callable[[], float]) -> ActionLinks | None:
    """The buttons' maker for this tick, when `actions:` is enabled (itsdangerous loads
    only then)."""
    settings = config.actions
    if settings is None or not settings.enabled or not settings.keys:
        return None
    if settings.base_url is None:
        return None
    from ..actions.links import ActionLinks

    return ActionLinks(settings, config.templates.language, config.timezone, clock)
