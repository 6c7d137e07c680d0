"""One tick's exclusive hold on the state: a lease built on create-only writes.

OSS has no compare-and-swap, but it refuses to create an object that exists.
Leases are numbered: the state records the generation of the last tick that
committed, and a tick takes generation N+1 by creating `<state>.lease.<N+1>`.
Only one creator wins a number. A lease expires when the function's timeout
has passed since it was taken (FC has killed its holder by then), and the next
tick takes the next number. After winning, the tick reads the state again,
so what it works on is never older than its lease.

Progress inside a tick is checkpointed without rewriting the state: after each
message DingTalk accepts, the lease holder writes a small journal object
`<state>.sent.<generation>.<n>` naming the alerts it delivered. A tick that
takes over after a crash applies the journals of the generations between the
last commit and its own, and its commit removes them. A checkpoint costs the
size of the message it records, not of the state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from schedulerx_alert.core.state import (
    Alert,
    Journal,
    RobotRecord,
    State,
    StateFormatError,
    StateVersionError,
    apply_journals,
    dump_catalog,
    dump_journal,
    dump_state,
    load_catalog,
    load_journal,
    load_state_parts,
)
from schedulerx_alert.storage.store import StateStore, StoreError

if TYPE_CHECKING:
    from schedulerx_alert.core.catalog import JobInfo
    from schedulerx_alert.core.model import JobKey

log = logging.getLogger("schedulerx_alert")
MAX_TAKEOVERS = 8
#: A job catalog this large is kept in an object of its own (about 200 jobs).
SEPARATE_CATALOG_BYTES = 16 * 1024
# No FC function runs longer than a day: a lease claiming more is not one.
MAX_LEASE_SECONDS = 24 * 3600
# Generations before ours whose journals a tick applies; more dead ticks in a
# row than this cannot happen without MAX_TAKEOVERS being exceeded many times.
MAX_JOURNAL_GENERATIONS = 16
MAX_JOURNALS = 100_000


class LeaseHeld(Exception):
    """Another tick holds the state; this one must not announce anything."""


class LeaseLost(Exception):
    """Our lease expired before the commit; another tick may own the state now."""


class StateRefused(Exception):
    """The stored state cannot be used or replaced (e.g. a newer schema)."""


@dataclass(frozen=True)
class Lease:
    generation: int
    owner: str
    taken_at: float
    expires_at: float

    def to_json(self) -> bytes:
        return json.dumps(
            {"owner": self.owner, "taken_at": self.taken_at, "expires_at": self.expires_at}
        ).encode()


@dataclass(frozen=True)
class Inspection:
    state: State
    exists: bool
    # Why the stored state is unusable; the next tick keeps it aside and starts afresh.
    corrupt: str | None
    # Leases from the last committed generation on: a running tick's, or dead ones'.
    leases: tuple[Lease, ...]
    # Checkpoint objects applied.
    journals: int
    notes: tuple[str, ...]


class StateSession:
    def __init__(
        self,
        store: StateStore,
        key: str,
        owner: str,
        ttl: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.key = key
        self.owner = owner
        self.ttl = ttl
        self.clock = clock
        self.lease: Lease | None = None
        self.notes: list[str] = []
        self.first_generation = 1
        self.base_generation = 0
        self.taken_at = 0.0
        # Journal objects to remove once the commit has made them redundant.
        self.journals: list[str] = []
        self._unjournaled: list[Alert] = []
        self._journaled = 0
        self._written = 0
        self._calls_journaled = False
        self._peeked: tuple[bytes, State] | None = None
        # The catalog object the state read refers to, and what it holds.
        self._catalog: tuple[str, dict[JobKey, JobInfo]] | None = None

    def lease_key(self, generation: int) -> str:
        return f"{self.key}.lease.{generation:012d}"

    def journal_key(self, generation: int, number: int) -> str:
        return f"{self.key}.sent.{generation:012d}.{number:06d}"

    # -- reading -------------------------------------------------------------

    def peek(self) -> State:
        """The state without taking the lease (dry runs)."""
        return self._peek()[1]

    def _peek(self) -> tuple[bool, State, str | None]:
        """Whether the state exists, the state, and why it is unusable when it is
        corrupt (a tick would then start afresh, as from the empty state returned)."""
        data = self.store.read(self.key)
        if data is None:
            return False, State(), None
        try:
            state = self._decode(data)
            self._peeked = (data, state)
            return True, state, None
        except StateVersionError as exc:
            raise self._refuse(exc) from None
        except StateFormatError as exc:
            return True, State(), str(exc)

    def inspect(self) -> Inspection:
        """The state as the next tick will see it, checkpoints of ticks that have
        not committed applied, without taking the lease; and the leases held or
        left behind since the last commit."""
        exists, state, corrupt = self._peek()
        leases: list[Lease] = []
        generation = state.lease_generation + 1
        while len(leases) < MAX_JOURNAL_GENERATIONS:
            lease = self._read_lease(generation)
            if lease is None:
                break
            leases.append(lease)
            generation += 1
        # The next tick takes the first free generation and applies what came before it.
        state = self._replay(state, generation)
        return Inspection(
            state=state,
            exists=exists,
            corrupt=corrupt,
            leases=tuple(leases),
            journals=len(self.journals),
            notes=tuple(self.notes),
        )

    def catalog_key(self, name: str) -> str:
        return f"{self.key}.catalog.{name}"

    def _decode(self, data: bytes) -> State:
        """The stored state, its catalog read from its own object when it is kept there
        (StateVersionError / StateFormatError as load_state)."""
        state, elsewhere = load_state_parts(data)
        if not elsewhere:
            self._catalog = None
            return state
        if self._catalog is not None and self._catalog[0] == elsewhere:
            catalog = self._catalog[1]
        else:
            key = self.catalog_key(elsewhere)
            raw = self.store.read(key)
            if raw is None:
                raise StateFormatError(f"its job catalog {self.store.describe(key)} is missing")
            if _name(raw) != elsewhere:
                raise StateFormatError(f"its job catalog {self.store.describe(key)} was altered")
            catalog = load_catalog(raw)
        self._catalog = (elsewhere, catalog)
        # A copy: the tick may change its catalog, and the commit compares the two.
        return state.with_updates(catalog=dict(catalog))

    def _refuse(self, exc: StateVersionError) -> StateRefused:
        return StateRefused(
            f"{self.where}: {exc}; refusing to overwrite it "
            "(deploy the newer version, or move the object away to start afresh)"
        )

    @property
    def where(self) -> str:
        return self.store.describe(self.key)

    def _load(self) -> State:
        data = self.store.read(self.key)
        if data is None:
            self.notes.append("no state yet: first run")
            return State()
        peeked, self._peeked = self._peeked, None
        if peeked is not None and peeked[0] == data:
            # begin() peeked at these very bytes for the generation: decoding a large
            # state is a good part of a tick's CPU, so it is done once.
            return peeked[1]
        try:
            return self._decode(data)
        except StateVersionError as exc:
            raise self._refuse(exc) from None
        except StateFormatError as exc:
            aside = (
                f"{self.key}.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(self.clock()))}"
            )
            self.store.write(aside, data)
            message = (
                f"state {self.where} is corrupt ({exc}); "
                f"kept aside as {aside}, starting as on a first run"
            )
            log.error(message)
            self.notes.append(message)
            return State()

    # -- the lease -----------------------------------------------------------

    def begin(self) -> State:
        """Take the lease and return the state as of that moment."""
        hint = self.peek_generation()
        self.first_generation = generation = hint + 1
        for _ in range(MAX_TAKEOVERS):
            generation = self._acquire(generation)
            state = self._load()
            self.base_generation = state.lease_generation
            if state.lease_generation < generation:
                self.lease = Lease(generation, self.owner, self.taken_at, self.taken_at + self.ttl)
                return self._replay(state, generation)
            # Someone committed a later generation since our first read:
            # our number is spent, try the next one.
            self.store.delete(self.lease_key(generation))
            generation = state.lease_generation + 1
        raise LeaseHeld("state keeps changing under us; giving this tick up")

    def peek_generation(self) -> int:
        return self.peek().lease_generation

    def _acquire(self, generation: int) -> int:
        for _ in range(MAX_TAKEOVERS):
            self.taken_at = self.clock()
            lease = Lease(generation, self.owner, self.taken_at, self.taken_at + self.ttl)
            if self.store.create(self.lease_key(generation), lease.to_json()):
                return generation
            holder = self._read_lease(generation)
            if holder is None:
                continue  # released between our create and read: try it again
            if holder.expires_at > self.clock():
                remaining = holder.expires_at - self.clock()
                raise LeaseHeld(
                    f"tick {holder.owner} holds the state (lease {generation}, "
                    f"{remaining:.0f}s left)"
                )
            self.notes.append(
                f"took over from tick {holder.owner}, whose lease {generation} expired"
            )
            generation += 1
        raise LeaseHeld("too many expired leases in a row")

    def _read_lease(self, generation: int) -> Lease | None:
        data = self.store.read(self.lease_key(generation))
        if data is None:
            return None
        # An unreadable lease protects nothing; treat it as long expired.
        unreadable = Lease(generation, "unknown", 0.0, 0.0)
        try:
            raw = json.loads(data)
        except (ValueError, RecursionError):
            return unreadable
        if not isinstance(raw, dict):
            return unreadable
        owner, taken, expires = (
            raw.get("owner"),
            _finite(raw.get("taken_at")),
            _finite(raw.get("expires_at")),
        )
        if not isinstance(owner, str) or taken is None or expires is None:
            return unreadable
        if not 0 <= expires - taken <= MAX_LEASE_SECONDS:
            return unreadable
        if expires > self.clock() + MAX_LEASE_SECONDS:
            return unreadable
        return Lease(generation, owner[:200], taken, expires)

    # -- journals --------------------------------------------------------------

    def _replay(self, state: State, generation: int) -> State:
        """The state with the journals of ticks that died since its commit applied."""
        journals: list[Journal] = []
        first = max(state.lease_generation + 1, generation - MAX_JOURNAL_GENERATIONS)
        # Our own number too: a tick whose commit failed gave its lease back,
        # so we may hold the number it held, and its journals are under it.
        for dead in range(first, generation + 1):
            for number in range(1, MAX_JOURNALS):
                key = self.journal_key(dead, number)
                data = self.store.read(key)
                if data is None:
                    break
                self.journals.append(key)
                if dead == generation:
                    # Ours continue after them: overwriting one would lose it
                    # should we die before the commit too.
                    self._written = number
                try:
                    journals.append(load_journal(data))
                except StateFormatError as exc:
                    message = f"journal {self.store.describe(key)} ignored: {exc}"
                    log.warning(message)
                    self.notes.append(message)
        if journals:
            self.notes.append(
                f"applied {len(journals)} checkpoint(s) of tick(s) that did not commit"
            )
        return apply_journals(state, journals)

    # -- committing ----------------------------------------------------------

    def checkpoint(
        self,
        delivered: Sequence[Alert],
        robots: Mapping[str, RobotRecord],
        api_calls: tuple[float, ...] | None = None,
        margin: float = 1.0,
    ) -> bool:
        """Record mid-tick the alerts delivered so far (`delivered` grows), with
        the robots' recent send times, keeping the lease: one journal object
        for what is new since the last one, so a crash re-announces at most the
        message DingTalk had just accepted."""
        self._unjournaled.extend(delivered[self._journaled :])
        self._journaled = len(delivered)
        lease = self.lease
        if lease is None or self.clock() > lease.expires_at - margin:
            return False
        journal = Journal(
            at=self.clock(),
            delivered=tuple(key for a in self._unjournaled for key in a.keys),
            # Only robots active in the last minute: at most 20 send times each.
            robots=dict(robots),
            api_calls=None if self._calls_journaled else api_calls,
        )
        # Numbered without gaps: a reader stops at the first missing number.
        key = self.journal_key(lease.generation, self._written + 1)
        try:
            self.store.write(key, dump_journal(journal))
        except StoreError as exc:
            # The next checkpoint carries these alerts too; the commit records all.
            log.warning("checkpoint not saved: %s", exc)
            return False
        self.journals.append(key)
        self._written += 1
        self._unjournaled.clear()
        self._calls_journaled = self._calls_journaled or api_calls is not None
        return True

    def commit(
        self,
        state: State,
        margin: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Write the state while the lease holds, retrying: alerts were sent on
        the strength of this write, and losing it would send them again."""
        lease = self.lease
        if lease is None:
            raise LeaseLost("commit without a lease")
        state = state.with_updates(lease_generation=lease.generation, updated_at=self.clock())
        # The job catalog changes when jobs do, not every tick: it is kept in an object of
        # its own, named by its content, and written only when it changed.
        # A small one stays in the state: a second object would cost more than it saves.
        catalog: tuple[str, bytes] | None = None
        stored = self._catalog
        name = stored[0] if stored is not None and state.catalog else ""
        if state.catalog and (stored is None or stored[1] != state.catalog):
            raw = dump_catalog(state.catalog)
            catalog = (_name(raw), raw) if len(raw) >= SEPARATE_CATALOG_BYTES else None
            name = catalog[0] if catalog else ""
        data = dump_state(state, name)
        delay = 0.5
        while True:
            if self.clock() > lease.expires_at - margin:
                raise LeaseLost(
                    f"lease {lease.generation} expired before the commit; "
                    "leaving the state to the tick that took over"
                )
            try:
                if catalog is not None:
                    self.store.write(self.catalog_key(catalog[0]), catalog[1])
                    written, catalog = catalog, None
                    self._catalog = (written[0], dict(state.catalog))
                self.store.write(self.key, data)
                break
            except StoreError as exc:
                if self.clock() + delay > lease.expires_at - margin:
                    raise
                log.warning("state write failed, retrying in %.1fs: %s", delay, exc)
                sleep(delay)
                delay *= 2
        self.release()
        if stored is not None and stored[0] != name:
            # The catalog the last state named, now replaced (or no longer kept apart).
            self._quietly_remove(self.catalog_key(stored[0]))
        if not name:
            self._catalog = None
        for stale in range(self.first_generation, lease.generation):
            # Expired leases we stepped over; their holders are gone.
            self._quietly_delete(stale)
        # The state now holds what the journals said; unremoved ones are never
        # read again (they belong to generations up to the committed one).
        for key in self.journals:
            self._quietly_remove(key)
        self.journals.clear()

    def release(self) -> None:
        """Give the lease back early so the next tick need not wait for expiry."""
        lease, self.lease = self.lease, None
        if lease is not None:
            self._quietly_delete(lease.generation)

    def _quietly_delete(self, generation: int) -> None:
        try:
            self.store.delete(self.lease_key(generation))
        except StoreError as exc:
            # An unreleased lease only delays the next tick until it expires.
            log.warning("could not release lease %s: %s", generation, exc)

    def _quietly_remove(self, key: str) -> None:
        try:
            self.store.delete(key)
        except StoreError as exc:
            log.warning("could not remove journal %s: %s", key, exc)


def _name(catalog: bytes) -> str:
    return hashlib.sha256(catalog).hexdigest()[:24]


def _finite(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None
