"""The silence book beside the state: create-only records on the loopback OSS and on files,
people adding at once, expiry, compaction, and what a bad record does (nothing but a report).
Then the commands on-call types: `silence add|list|expire` and `routes --job`."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from schedulerx_alert.cli.main import main
from schedulerx_alert.core.silence import Matcher, Silence, ended_between
from schedulerx_alert.storage.silence_book import (
    HOLES,
    KEEP_ENDED,
    MAX_OPEN,
    MAX_RECORD_BYTES,
    SilenceBook,
    SilenceBookError,
)
from schedulerx_alert.storage.store import FileStateStore, OssStateStore, StateStore, StoreError
from schedulerx_alert.support.credentials import Credentials
from tests.fakes.oss import FakeOss
from tests.world import AK, GROUP, NS, SECRETS, SK, START, STS, World

KEY = "state.json"
NOW = START
HOUR = 3600.0
ETL = Matcher(group=GROUP, kinds=frozenset({"failed"}))
NIGHTLY = Matcher(job_ids=frozenset({92583}))


@dataclass
class Backend:
    store: StateStore
    oss: FakeOss | None = None

    def book(self, store: StateStore | None = None) -> SilenceBook:
        return SilenceBook(store or self.store, KEY)

    def gets(self) -> int:
        assert self.oss is not None
        return sum(1 for r in self.oss.requests if r.method == "GET")


@pytest.fixture(params=["file", "oss"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "file":
        yield Backend(FileStateStore(tmp_path / "state"))
        return
    with FakeOss(AK, SK, STS, buckets=("alert-bucket",)) as oss:
        store = OssStateStore.connect(
            "alert-bucket", "schedulerx-alert/", oss.url, "cn-hangzhou", Credentials(AK, SK, STS)
        )
        yield Backend(store, oss)


class Hooked(StateStore):
    """A real store with a hook around one writer's creates: how two people's steps
    are interleaved on purpose, the store itself untouched."""

    def __init__(
        self,
        inner: StateStore,
        before_create: Callable[[], object] | None = None,
        after_create: Callable[[], object] | None = None,
    ) -> None:
        self.inner = inner
        self.before_create = before_create
        self.after_create = after_create
        self.creates: list[bool] = []

    def describe(self, key: str) -> str:
        return self.inner.describe(key)

    def read(self, key: str) -> bytes | None:
        return self.inner.read(key)

    def write(self, key: str, data: bytes) -> None:
        self.inner.write(key, data)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def create(self, key: str, data: bytes) -> bool:
        hook, self.before_create = self.before_create, None
        if hook is not None:
            hook()
        created = self.inner.create(key, data)
        self.creates.append(created)
        hook, self.after_create = self.after_create, None
        if hook is not None:
            hook()
        return created


def add(
    book: SilenceBook, matcher: Matcher = NIGHTLY, who: str = "alice", now: float = NOW
) -> Silence:
    return book.add(matcher, now, now + 2 * HOUR, f"{who} deploys a fix", who, now)


# -- adding and reading ----------------------------------------------------------------------


def test_an_added_silence_is_read_back_by_the_next_tick(backend: Backend) -> None:
    added = add(backend.book())
    assert added.id == "1"
    view = backend.book().read()
    assert view.silences == (added,)
    assert view.problems == ()
    assert added.source == "oss"
    assert (added.created_by, added.comment) == ("alice", "alice deploys a fix")


def test_two_people_adding_at_once_both_land(backend: Backend) -> None:
    # Both read the book before either writes, so both go for the same number.
    both_read = threading.Barrier(2, timeout=30)
    stores = [Hooked(backend.store, before_create=both_read.wait) for _ in range(2)]
    added: dict[str, Silence] = {}

    def person(who: str, store: Hooked) -> None:
        added[who] = add(backend.book(store), who=who)

    threads = [
        threading.Thread(target=person, args=(who, store))
        for who, store in zip(("alice", "bob"), stores, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(s.id for s in added.values()) == ["1", "2"]
    # One of them found its number taken, and took the next: nothing was overwritten.
    assert sorted(c for store in stores for c in store.creates) == [False, True, True]
    assert {s.created_by for s in backend.book().read().silences} == {"alice", "bob"}


def test_six_people_adding_at_once_all_land(backend: Backend) -> None:
    start = threading.Barrier(6, timeout=30)
    errors: list[BaseException] = []

    def person(who: str) -> None:
        start.wait()
        try:
            add(backend.book(), who=who)
        except BaseException as exc:  # a lost writer must fail the test, not vanish
            errors.append(exc)

    threads = [threading.Thread(target=person, args=(f"p{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    view = backend.book().read()
    assert sorted(s.created_by for s in view.silences) == [f"p{i}" for i in range(6)]
    assert sorted(int(s.id) for s in view.silences) == [1, 2, 3, 4, 5, 6]


def test_a_create_that_failed_after_landing_is_not_written_twice(backend: Backend) -> None:
    class LandsThenFails(Hooked):
        def create(self, key: str, data: bytes) -> bool:
            self.inner.create(key, data)
            raise StoreError(f"OSS create {key}: HTTP -2 network error or timeout")

    added = add(backend.book(LandsThenFails(backend.store)))
    assert [s.id for s in backend.book().read().silences] == [added.id] == ["1"]


# -- expiring --------------------------------------------------------------------------------


def test_expire_ends_a_silence_now_and_says_who(backend: Backend) -> None:
    book = backend.book()
    added = add(book)
    expired = book.expire(added.id, "bob", NOW + 600)
    assert (expired.until, expired.expired_by) == (NOW + 600, "bob")
    (read,) = book.read().silences
    assert read == expired
    assert not read.active(NOW + 600)
    assert read.active(NOW + 599)
    # It ended: its digest is owed on the next tick.
    assert ended_between([read], NOW + 590, NOW + 650) == (read,)
    with pytest.raises(SilenceBookError, match="silence 1 has already ended"):
        book.expire(added.id, "bob", NOW + 700)
    with pytest.raises(SilenceBookError, match="holds no silence '9'"):
        book.expire("9", "bob", NOW + 700)


def test_what_a_silence_book_refuses_to_store(backend: Backend) -> None:
    book = backend.book()
    with pytest.raises(SilenceBookError, match="must name what it holds back"):
        book.add(Matcher(), NOW, NOW + HOUR, "why", "alice", NOW)
    with pytest.raises(SilenceBookError, match="already be over"):
        book.add(NIGHTLY, NOW - 2 * HOUR, NOW - HOUR, "why", "alice", NOW)
    with pytest.raises(SilenceBookError, match="the reason must not be empty"):
        book.add(NIGHTLY, NOW, NOW + HOUR, "  ", "alice", NOW)
    with pytest.raises(SilenceBookError, match="the reason is 501 characters; at most 500"):
        book.add(NIGHTLY, NOW, NOW + HOUR, "x" * 501, "alice", NOW)
    assert book.read().silences == ()


def test_the_book_holds_a_bounded_number_of_open_silences(backend: Backend) -> None:
    many = [
        Silence(str(n), NIGHTLY, NOW, NOW + HOUR, "why", "alice", NOW, "oss").to_dict()
        for n in range(1, MAX_OPEN + 1)
    ]
    snapshot = {"v": 1, "next": MAX_OPEN + 1, "silences": many}
    backend.store.write(f"{KEY}.silences", json.dumps(snapshot).encode())
    with pytest.raises(SilenceBookError, match=f"holds {MAX_OPEN} silences that have not ended"):
        add(backend.book())
    # Once they end, there is room again.
    assert add(backend.book(), now=NOW + HOUR).id == str(MAX_OPEN + 1)


# -- compaction ------------------------------------------------------------------------------


def test_compaction_keeps_a_read_of_the_book_to_four_objects(backend: Backend) -> None:
    book = backend.book()
    added = [add(book, who=f"p{i}") for i in range(12)]
    book.expire(added[3].id, "bob", NOW + 60)
    before = book.read()
    assert before.reads == 1 + 13 + 1 + HOLES
    result = book.compact(NOW + 120, before)
    assert (result.changed, result.folded, result.kept, result.dropped) == (True, 13, 12, 0)
    after = book.read()
    assert after.silences == before.silences
    assert after.reads == 1 + 1 + HOLES
    if backend.oss is not None:
        backend.oss.clear_requests()
        book.read()
        assert backend.gets() == 1 + 1 + HOLES
    # Nothing new: compaction writes nothing.
    assert book.compact(NOW + 180).changed is False
    # New records go after the folded ones; ids never repeat.
    assert add(book, now=NOW + 200).id == "14"


def test_compaction_lets_go_of_silences_a_week_after_they_ended(backend: Backend) -> None:
    book = backend.book()
    day = 24 * HOUR
    old = add(book)  # ends after two hours
    recent = book.add(NIGHTLY, NOW, NOW + 3 * day, "three days", "alice", NOW)
    running = book.add(NIGHTLY, NOW, NOW + 10 * day, "ten days", "alice", NOW)
    later = old.until + KEEP_ENDED + 60
    result = book.compact(later)
    assert (result.kept, result.dropped) == (2, 1)
    assert [s.id for s in book.read().silences] == [recent.id, running.id]


def test_a_writer_whose_record_a_compaction_passed_by_writes_it_again(backend: Backend) -> None:
    # Alice reads the book; before she writes, Bob adds and the tick folds his record.
    tick = backend.book()

    def bob_then_tick() -> None:
        add(backend.book(), who="bob")
        tick.compact(NOW)

    alice = Hooked(backend.store, before_create=bob_then_tick)
    added = add(backend.book(alice), who="alice")
    # Bob's number was free again when she wrote, but below the snapshot where no
    # one reads: she took it back and wrote above.
    assert alice.creates == [True, True]
    assert added.id == "2"
    view = backend.book().read()
    assert {s.id: s.created_by for s in view.silences} == {"1": "bob", "2": "alice"}
    assert backend.store.read(f"{KEY}.silence.000000000001") is None


def test_a_writer_whose_record_was_folded_at_once_finds_it_in_the_snapshot(
    backend: Backend,
) -> None:
    tick = backend.book()
    alice = Hooked(backend.store, after_create=lambda: tick.compact(NOW))
    added = add(backend.book(alice), who="alice")
    assert added.id == "1"
    view = backend.book().read()
    assert [(s.id, s.created_by) for s in view.silences] == [("1", "alice")]
    assert view.base == 2


# -- what bad objects do ---------------------------------------------------------------------


def test_a_malformed_record_is_reported_and_skipped_and_the_rest_still_apply(
    backend: Backend,
) -> None:
    book = backend.book()
    first = add(book)
    backend.store.write(book.record_key(2), b"{not json")
    backend.store.write(book.record_key(3), json.dumps({"v": 1, "op": "add", "uid": "u"}).encode())
    backend.store.write(book.record_key(4), b"[" * MAX_RECORD_BYTES + b"]")
    backend.store.write(book.record_key(5), b"[" * 5000)  # nested past the parser's depth
    expire_unknown = {"v": 1, "op": "expire", "uid": "u", "target": "77", "by": "x", "at": NOW}
    backend.store.write(book.record_key(6), json.dumps(expire_unknown).encode())
    last = add(book, who="bob")
    view = book.read()
    assert [s.id for s in view.silences] == [first.id, last.id] == ["1", "7"]
    problems = "\n".join(view.problems)
    assert "silence record 2 (" in problems and "not JSON" in problems
    assert "silence record 3 (" in problems and ".match: names nothing" in problems
    assert f"{MAX_RECORD_BYTES + 1} bytes, over the {MAX_RECORD_BYTES}" in problems
    assert "nested too deep" in problems
    assert "silence record 6 expires silence '77', which the book does not hold" in problems
    # The tick folds them away; the good silences stay.
    result = book.compact(NOW)
    assert result.folded == 7
    assert book.read().silences == view.silences
    assert book.read().problems == ()


def test_a_record_deleted_by_hand_hides_nothing_after_it(backend: Backend) -> None:
    book = backend.book()
    for i in range(3):
        add(book, who=f"p{i}")
    backend.store.delete(book.record_key(2))
    view = book.read()
    assert [s.created_by for s in view.silences] == ["p0", "p2"]
    assert len(view.problems) == 1
    assert view.problems[0].startswith("silence record 2 missing (")
    assert add(book).id == "4"


def test_a_gap_longer_than_the_tolerance_ends_the_book(backend: Backend) -> None:
    book = backend.book()
    for i in range(HOLES + 3):
        add(book, who=f"p{i}")
    for number in range(2, HOLES + 3):
        backend.store.delete(book.record_key(number))
    # HOLES + 1 missing in a row is where the book ends: the last one is not read.
    assert [s.created_by for s in book.read().silences] == ["p0"]


def test_an_unreadable_snapshot_is_reported_then_set_aside_by_the_tick(backend: Backend) -> None:
    book = backend.book()
    backend.store.write(book.snapshot_key, b'{"v": \xff}')
    view = book.read()
    assert view.snapshot == "unreadable"
    assert "silence snapshot" in view.problems[0] and "not UTF-8" in view.problems[0]
    added = add(book)
    result = book.compact(NOW)
    assert result.changed
    (note,) = result.notes
    assert note.startswith(f"unreadable silence snapshot kept aside as {KEY}.silences.corrupt-")
    aside = note.rsplit(" ", 1)[1]
    assert backend.store.read(aside) == b'{"v": \xff}'
    assert book.read().silences == (added,)
    assert book.read().problems == ()


def test_what_a_newer_version_wrote_is_neither_applied_nor_folded_away(backend: Backend) -> None:
    book = backend.book()
    added = add(book)
    future = {"v": 3, "op": "mute", "uid": "u"}
    backend.store.write(book.record_key(2), json.dumps(future).encode())
    view = book.read()
    assert view.silences == (added,)
    assert view.newer
    assert "written by a newer version of schedulerx-alert (v=3)" in view.problems[0]
    result = book.compact(NOW)
    assert result.changed is False
    assert result.notes == ("the silence book holds records of a newer version; not compacted",)
    assert backend.store.read(book.record_key(2)) is not None
    # The same for a snapshot a newer version wrote.
    backend.store.write(book.snapshot_key, json.dumps({"v": 3, "next": 9}).encode())
    assert book.read().snapshot == "newer"
    assert book.compact(NOW).changed is False
    assert json.loads(backend.store.read(book.snapshot_key) or b"") == {"v": 3, "next": 9}


# -- the commands ----------------------------------------------------------------------------

ROUTES = [
    {"match": {"job_names": ["billing-*"]}, "receivers": ["finance"]},
    {"match": {"group": GROUP, "kind": "failed"}, "receivers": ["dba"]},
    {"match": {}, "receivers": ["finance"]},
]


def write_config(world: World, path: Path) -> Path:
    raw: dict[str, Any] = json.loads(json.dumps(world.raw))
    receiver = raw["receivers"][0]
    raw["receivers"] += [
        {
            **receiver,
            "name": "dba",
            "quiet_hours": {"windows": [{"days": "daily", "time": "00:00-08:00"}]},
        },
        {**receiver, "name": "finance"},
    ]
    raw["routes"] = ROUTES
    raw["silences"] = [
        {
            "match": {"job": 92584},
            "start": "2026-01-01 00:00",
            "end": "2036-01-01 00:00",
            "comment": "retired",
        }
    ]
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    for secret in SECRETS:
        assert secret not in out + err
    return code, out, err


@pytest.mark.parametrize("state", ["file", "oss"])
def test_on_call_silences_a_job_lists_it_and_ends_it(
    state: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("USER", "alice")
    for name, value in (
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", AK),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SK),
        ("ALIBABA_CLOUD_SECURITY_TOKEN", STS),
    ):
        monkeypatch.setenv(name, value)
    with World(tmp_path, state=state) as world:
        config = str(write_config(world, tmp_path / "config.yaml"))
        code, out, err = run(
            capsys,
            "silence",
            "add",
            "-c",
            config,
            "--job",
            "92583",
            "--kind",
            "failed",
            "--for",
            "2h",
            "--why",
            "deploying the fix",
        )
        assert (code, err) == (0, "")
        assert out.startswith("silence 1 added: job=92583, kind=failed until ")
        assert out.rstrip().endswith("Asia/Shanghai (by alice: deploying the fix)")
        code, out, _ = run(capsys, "silence", "list", "-c", config, "--json")
        listed = {row["id"]: row for row in json.loads(out)}
        assert set(listed) == {"1", "silences[0]"}
        assert listed["1"]["source"] == "oss"
        assert listed["1"]["state"] == "active"
        assert listed["1"]["match"] == {"jobs": [92583], "kinds": ["failed"]}
        assert listed["1"]["created_by"] == "alice"
        assert listed["1"]["end"] - listed["1"]["start"] == 2 * HOUR
        assert listed["silences[0]"]["source"] == "config"
        if world.oss is not None:
            assert "schedulerx-alert/state.json.silence.000000000001" in world.oss.objects
        code, out, _ = run(capsys, "silence", "list", "-c", config)
        assert "deploying the fix" in out and "job=92583, kind=failed" in out
        code, out, _ = run(capsys, "silence", "expire", "-c", config, "1", "--who", "bob")
        assert (code, out) == (0, "silence 1 expired by bob (job=92583, kind=failed)\n")
        code, out, _ = run(capsys, "silence", "list", "-c", config, "--json")
        assert [row["id"] for row in json.loads(out)] == ["silences[0]"]
        code, out, _ = run(capsys, "silence", "list", "-c", config, "--json", "--all")
        states = {row["id"]: (row["state"], row.get("expired_by")) for row in json.loads(out)}
        assert states == {"1": ("expired", "bob"), "silences[0]": ("active", None)}


def test_the_commands_refuse_what_they_cannot_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USER", "alice")
    with World(tmp_path) as world:
        config = str(write_config(world, tmp_path / "config.yaml"))
        cases = [
            (["--kind", "failed", "--for", "1h"], "say what to silence"),
            (["--job", "1", "--for", "40d"], "at most 31 days"),
            (["--job", "1", "--for", "soon"], "--for: 'soon' is not a duration"),
            (["--job", "1", "--until", "2020-01-01 00:00"], "would end before it starts"),
            # A bad value is named by the flag it came in, not by the matcher's key.
            (["--job", "0", "--for", "1h"], "--job: job ids are positive integers"),
            (["--workflow", "-1", "--for", "1h"], "--workflow: workflow ids are positive"),
            (["--name", "n" * 300, "--for", "1h"], "--name: must be 1 to 200 characters"),
            (["--job", "1", "--namespace", "n" * 300, "--for", "1h"], "--namespace: must be"),
        ]
        for extra, message in cases:
            code, _, err = run(capsys, "silence", "add", "-c", config, "--why", "x", *extra)
            assert code == 2 and message in err, (extra, err)
        # Only the kinds an alert can have are offered (argparse's usage error).
        for kind in ("failedd", "running", "waiting"):
            with pytest.raises(SystemExit) as exited:
                main(["silence", "add", "-c", config, "--job", "1", "--for", "1h", "--kind", kind])
            assert exited.value.code == 2
            assert f"--kind: invalid choice: '{kind}'" in capsys.readouterr().err
        code, _, err = run(capsys, "silence", "expire", "-c", config, "silences[0]")
        assert code == 2 and "is in the config file; remove it there" in err
        code, _, err = run(capsys, "silence", "expire", "-c", config, "5")
        assert code == 2 and "holds no silence '5'" in err
        listed = run(capsys, "silence", "list", "-c", config)[1]
        assert listed.count("\n") == 3  # where, header, config
        assert listed.startswith(f"silences from the config ({config}) and the silence book ")
        assert f"beside the state, {world.state_path}.silences\n" in listed


def test_routes_prints_where_a_jobs_alerts_go_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with World(tmp_path) as world:
        config = str(write_config(world, tmp_path / "config.yaml"))
        code, out, _ = run(capsys, "routes", "-c", config, "--job", "92583", "--kind", "failed")
        assert code == 0
        lines = out.splitlines()
        assert lines[0] == f"job 92583 in watch[0]: {NS}/{GROUP}"
        assert lines[2] == "    -> ops  because watch[0]"
        assert lines[3].startswith(f"    -> dba  because routes[1] (group={GROUP}, kind=failed)")
        assert "[quiet hours daily 00:00-08:00 (Asia/Shanghai): " in lines[3]
        assert lines[4] == (
            "       routes[0] (name=billing-*): no match: job 92583 is not name 'billing-*'"
        )
        assert (
            lines[6]
            == "       routes[2] (any): not reached: routes[1] matched and does not continue"
        )

        code, out, _ = run(capsys, "routes", "-c", config, "--job", "92584", "--json")
        (entry,) = json.loads(out)["entries"]
        by_kind = {d["kind"]: d for d in entry["kinds"]}
        assert set(by_kind) == {"failed", "rejected"}  # what the watch entry alerts on
        assert [r["receiver"] for r in by_kind["rejected"]["receivers"]] == ["ops", "finance"]
        assert by_kind["rejected"]["receivers"][1]["reason"] == "routes[2] (any)"
        assert by_kind["failed"]["silenced_by"] == "silences[0]"

        code, _, err = run(capsys, "routes", "-c", config, "--job", "1")
        assert code == 2 and "job 1 is in no watch entry" in err
