"""The state document and the lease that guards it."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path

import pytest

from schedulerx_alert.core import migrations
from schedulerx_alert.core.catalog import JobInfo
from schedulerx_alert.core.diff import DiffSettings, Reading, diff
from schedulerx_alert.core.heartbeat import HeartbeatRecord, Hour
from schedulerx_alert.core.polling import GroupCursor, ServerFacts, SourceState
from schedulerx_alert.core.silence_hold import Held
from schedulerx_alert.core.state import (
    STATE_VERSION,
    HealthRecord,
    RobotRecord,
    State,
    StateFormatError,
    StateVersionError,
    TickRecord,
    dump_state,
    load_journal,
    load_state,
)
from schedulerx_alert.storage.session import LeaseHeld, LeaseLost, StateRefused, StateSession
from schedulerx_alert.storage.store import FileStateStore
from tests.builders import T0, alert, instance, job, target

DATA = Path(__file__).parent / "data"


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def full_state() -> State:
    """A state in which every field differs from its default."""
    result = diff(
        State(),
        Reading({job(): [instance(1, result="boom")]}),
        {job(): target()},
        T0,
        DiffSettings(900),
    )
    group = (job().namespace, job().group)
    return result.state.with_updates(
        robots={"ops": RobotRecord(sent=(T0 - 5, T0), blocked_until=T0 + 600)},
        api_calls=(T0 - 1, T0),
        health=HealthRecord(broken_ticks=2, impaired_announced=True, reason="quota"),
        lease_generation=7,
        updated_at=T0,
        expired={"ops": 3},
        delivered={"ops:failed:abc": T0},
        last_tick=TickRecord("degraded", T0, 1200, "req-1", 2, 1, 1, 0, 1, 1, "quota"),
        catalog={job(): JobInfo(job(), "nightly", time_type=1, time_expression="0 0 2 * * ?")},
        sources=SourceState(
            server=ServerFacts(endpoint="https://sx.example", page_seen=12),
            groups={group: GroupCursor(since=T0, covered=T0, floor=T0 - 60)},
            calls={"ListJobs": (T0,)},
            anchors={job(): T0 - 30},
        ),
        heartbeat=HeartbeatRecord((Hour(498770, runs=3, failures=1, ok=60),), since=T0),
        silenced={"ops": (Held("silence:1", job(), "nightly", "failed", T0, T0 + 60, 2),)},
    )


def test_round_trip_keeps_everything() -> None:
    state = full_state()
    # Every field is set, so a field the codec forgets fails the round trip below.
    unset = [
        f.name
        for f in dataclasses.fields(State)
        if getattr(state, f.name) == getattr(State(), f.name)
    ]
    assert unset == []
    assert state.outbox and state.jobs
    assert load_state(dump_state(state)) == state


def test_newer_versions_and_garbage_are_refused() -> None:
    with pytest.raises(StateVersionError):
        load_state(b'{"version": %d}' % (STATE_VERSION + 1))
    for garbage in (b"{", b"[]", b'{"jobs": {}}', b'{"version": 1, "jobs": {"x": 1}}', b"\xff"):
        with pytest.raises(StateFormatError):
            load_state(garbage)


def test_a_version_3_document_loads_with_an_empty_heartbeat_and_is_written_as_version_4() -> None:
    # tests/data/make_state_v3.py wrote it with version 3's code.
    data = (Path(__file__).parent / "data" / "state_v3.json").read_bytes()
    assert json.loads(data)["version"] == 3 and "heartbeat" not in json.loads(data)
    state = load_state(data)
    assert state.heartbeat == HeartbeatRecord()
    assert state.jobs and state.last_tick is not None and state.outbox == ()
    written = dump_state(state)
    assert json.loads(written)["version"] == STATE_VERSION == 7
    assert "heartbeat" not in json.loads(written), "an empty record costs nothing"
    assert load_state(written) == state
    # A version 3 tick's journal still counts after the upgrade.
    journal = load_journal(b'{"version": 3, "at": 1.0, "delivered": ["ops:failed:x"]}')
    assert journal.delivered == ("ops:failed:x",)


def test_a_heartbeat_record_round_trips_and_a_bad_one_is_named() -> None:
    hours = (Hour(498770, runs=3, failures=1, ok=60, jobs={job().encode(): 1}, calls={"A": 2}),)
    record = HeartbeatRecord(
        hours, since=T0, sent_for=date(2026, 11, 25), problem="p", problem_at=T0
    )
    state = State(heartbeat=record)
    assert load_state(dump_state(state)) == state
    doc = json.loads(dump_state(state))
    doc["heartbeat"]["hours"][0]["fail"] = -1
    with pytest.raises(StateFormatError, match=r"heartbeat\.hours\[0\]\.fail"):
        load_state(json.dumps(doc).encode())
    doc["heartbeat"]["hours"][0]["fail"] = 1
    doc["heartbeat"]["sent_for"] = "yesterday"
    with pytest.raises(StateFormatError, match=r"heartbeat\.sent_for"):
        load_state(json.dumps(doc).encode())


def test_create_only_writes_on_files(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    assert store.create("a", b"1") is True
    assert store.create("a", b"2") is False
    assert store.read("a") == b"1"
    store.delete("a")
    store.delete("a")
    assert store.read("a") is None


def test_a_second_tick_is_turned_away_while_the_first_holds_the_lease(tmp_path: Path) -> None:
    clock = Clock()
    store = FileStateStore(tmp_path)
    first = StateSession(store, "state.json", "tick-1", ttl=60, clock=clock)
    second = StateSession(store, "state.json", "tick-2", ttl=60, clock=clock)
    first.begin()
    with pytest.raises(LeaseHeld, match="tick-1 holds the state"):
        second.begin()
    first.commit(State())
    # Released at commit: the next tick does not wait for expiry.
    second.begin()
    assert second.lease is not None and second.lease.generation == 2


def test_a_dead_ticks_lease_is_taken_over_after_the_timeout(tmp_path: Path) -> None:
    clock = Clock()
    store = FileStateStore(tmp_path)
    StateSession(store, "state.json", "dead", ttl=60, clock=clock).begin()
    clock.now += 61
    survivor = StateSession(store, "state.json", "next", ttl=60, clock=clock)
    survivor.begin()
    assert any("took over from tick dead" in n for n in survivor.notes)
    survivor.commit(State())
    assert load_state(store.read("state.json") or b"").lease_generation == 2
    # The dead tick's lease object is cleaned up once a later one committed.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_tick_whose_lease_expired_does_not_overwrite_the_state(tmp_path: Path) -> None:
    clock = Clock()
    store = FileStateStore(tmp_path)
    slow = StateSession(store, "state.json", "slow", ttl=60, clock=clock)
    slow.begin()
    clock.now += 61
    with pytest.raises(LeaseLost):
        slow.commit(State())
    assert store.read("state.json") is None


def test_a_stale_read_cannot_reuse_a_spent_generation(tmp_path: Path) -> None:
    """A tick that read generation g before another committed g+1 must not
    work on the old state after winning the (deleted) lease g+1."""
    clock = Clock()
    store = FileStateStore(tmp_path)
    fast = StateSession(store, "state.json", "fast", ttl=60, clock=clock)
    fast.begin()
    fast.commit(State(api_calls=(T0,)))
    late = StateSession(store, "state.json", "late", ttl=60, clock=clock)
    late.peek_generation = lambda: 0  # type: ignore[method-assign]  # as if read before
    state = late.begin()
    assert state.api_calls == (T0,)
    assert late.lease is not None and late.lease.generation == 2


def test_corrupt_state_is_kept_aside_and_treated_as_a_first_run(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    store.write("state.json", b"{not json")
    session = StateSession(store, "state.json", "t", ttl=60, clock=Clock())
    assert session.begin() == State()
    aside = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes() == b"{not json"
    assert any("corrupt" in n for n in session.notes)


def test_state_from_a_newer_version_is_refused_not_overwritten(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    newer = b'{"version": %d, "jobs": {}}' % (STATE_VERSION + 1)
    store.write("state.json", newer)
    with pytest.raises(StateRefused, match="refusing to overwrite"):
        StateSession(store, "state.json", "t", ttl=60, clock=Clock()).begin()
    assert store.read("state.json") == newer


def test_a_checkpoint_is_a_journal_beside_the_state_and_keeps_the_lease(tmp_path: Path) -> None:
    clock = Clock()
    store = FileStateStore(tmp_path)
    owed = (alert(1), alert(2), alert(3))
    store.write("state.json", dump_state(State(outbox=owed)))
    first = StateSession(store, "state.json", "tick-1", ttl=60, clock=clock)
    first.begin()
    robots = {"ops": RobotRecord(sent=(T0,))}
    assert first.checkpoint(owed[:1], robots, api_calls=(T0,))
    assert first.checkpoint(owed[:2], robots, api_calls=(T0,))
    # The state object is untouched; each journal names only what is new.
    assert load_state(store.read("state.json") or b"").outbox == owed
    journals = sorted(p.name for p in tmp_path.iterdir() if ".sent." in p.name)
    assert journals == [
        "state.json.sent.000000000001.000001",
        "state.json.sent.000000000001.000002",
    ]
    assert load_journal(store.read(journals[1]) or b"").delivered == (owed[1].key,)
    with pytest.raises(LeaseHeld):
        StateSession(store, "state.json", "tick-2", ttl=60, clock=clock).begin()
    clock.now += 61
    # Past the lease, no more checkpoints: the state may belong to someone else.
    assert not first.checkpoint(owed, robots)

    # The next tick takes over and starts from what the dead one delivered.
    survivor = StateSession(store, "state.json", "tick-2", ttl=60, clock=clock)
    state = survivor.begin()
    assert state.outbox == owed[2:]
    assert (state.robots, state.api_calls) == (robots, (T0,))
    survivor.commit(state)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_journal_names_alerts_the_state_never_held_so_the_diff_skips_them(
    tmp_path: Path,
) -> None:
    """A tick that diffed a new failure, told one of two receivers and died: the
    next tick owes it to the other receiver only."""
    clock = Clock()
    store = FileStateStore(tmp_path)
    dying = StateSession(store, "state.json", "dying", ttl=60, clock=clock)
    stored = dying.begin()
    targets = {job(): target("ops", "dba")}
    listing = {job(): [instance(1)]}
    result = diff(stored, Reading(listing), targets, T0, DiffSettings(900))
    told_ops = [a for a in result.alerts if a.receiver == "ops"]
    assert dying.checkpoint(told_ops, {})
    clock.now += 61

    state = StateSession(store, "state.json", "next", ttl=60, clock=clock).begin()
    again = diff(state, Reading(listing), targets, clock.now, DiffSettings(900))
    assert [a.receiver for a in again.alerts] == ["dba"]
    assert again.state.delivered == {}


def test_a_failed_checkpoint_is_carried_by_the_next_one(tmp_path: Path) -> None:
    clock = Clock()
    store = FileStateStore(tmp_path)
    session = StateSession(store, "state.json", "t", ttl=60, clock=clock)
    session.begin()
    (tmp_path / "state.json.sent.000000000001.000001").mkdir()  # the write fails
    assert not session.checkpoint([alert(1)], {})
    (tmp_path / "state.json.sent.000000000001.000001").rmdir()
    assert session.checkpoint([alert(1), alert(2)], {})
    data = store.read("state.json.sent.000000000001.000001") or b""
    assert load_journal(data).delivered == (alert(1).key, alert(2).key)


def test_an_unreadable_journal_is_reported_and_the_others_still_apply(tmp_path: Path) -> None:
    clock = Clock()
    store = FileStateStore(tmp_path)
    store.write("state.json", dump_state(State(outbox=(alert(1), alert(2)))))
    dying = StateSession(store, "state.json", "dying", ttl=60, clock=clock)
    dying.begin()
    dying.checkpoint([alert(1)], {})
    dying.checkpoint([alert(1), alert(2)], {})
    store.write("state.json.sent.000000000001.000001", b'{"version": 2, "at": NaN}')
    clock.now += 61
    survivor = StateSession(store, "state.json", "next", ttl=60, clock=clock)
    assert survivor.begin().outbox == (alert(1),)
    assert any("journal" in n and "ignored" in n for n in survivor.notes)


OLD_STATES = {
    1: DATA / "state_v1.json",
    2: DATA / "state_v2" / "state.json",
    3: DATA / "state_v3.json",
    6: DATA / "state_v6.json",
}


@pytest.mark.parametrize("version", sorted(OLD_STATES))
def test_every_old_document_loads_through_its_migrations_and_is_written_as_the_newest(
    version: int,
) -> None:
    """Each fixture was written by that version's own code (tests/data/make_state_v*.py)."""
    data = OLD_STATES[version].read_bytes()
    assert json.loads(data)["version"] == version
    upgraded = migrations.upgrade(json.loads(data), STATE_VERSION)
    assert upgraded["version"] == STATE_VERSION
    state = load_state(data)
    assert state.jobs
    assert load_state(dump_state(state)) == state
    assert json.loads(dump_state(state))["version"] == STATE_VERSION


def test_there_is_one_migration_per_older_version() -> None:
    assert sorted(migrations.MIGRATIONS) == list(range(1, STATE_VERSION))
