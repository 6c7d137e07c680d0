"""A held entry read back from the state is untrusted: its kind is one the code knows.

The digest shows a held entry's kind in words; a kind it does not know was shown as
stored, so a crafted state could put a live link, HTML or @all in the group, and a lone
surrogate there made every tick fail to encode its digest before it could commit.
"""

from __future__ import annotations

import json

import pytest

from schedulerx_alert.cli import samples
from schedulerx_alert.core import silence_hold as held
from schedulerx_alert.core.silence import KINDS
from schedulerx_alert.core.silence_hold import HeldAlert
from schedulerx_alert.core.state import State, StateFormatError, dump_state, load_state
from tests.markup import violations
from tests.world import GROUP, NS, START, World

JOB = f"{NS}/{GROUP}/92583"


def stored_with_kind(kind: object) -> bytes:
    entry = ["quiet", JOB, "nightly", kind, START - 600, START - 300, 2]
    return json.dumps({"version": 4, "silenced": {"ops": [entry]}}).encode()


@pytest.mark.parametrize(
    "kind",
    ["[click](https://evil.example) <b>x</b> @all", "failed\ud800", "FAILED", "", 5, None],
    ids=["markup", "lone surrogate", "upper case", "empty", "a number", "null"],
)
def test_a_crafted_held_kind_is_refused_and_the_tick_goes_on(world: World, kind: object) -> None:
    stored = stored_with_kind(kind)
    world.state_path.parent.mkdir(parents=True)
    world.state_path.write_bytes(stored)
    world.sx.add_instance(92583, status=5, result="disk full")

    summary = world.tick()

    assert (summary.alerts_new, summary.alerts_sent) == (1, 1)
    assert any("corrupt" in note and "kept aside" in note for note in summary.notes)
    [aside] = world.state_path.parent.glob("state.json.corrupt-*")
    assert aside.read_bytes() == stored
    for text in world.texts():
        assert violations(text, forbidden=["evil.example", "@all"]) == []
    world.advance(60)
    assert world.tick().status == "ok"


def test_the_state_loader_accepts_every_known_kind_and_the_folded_entry() -> None:
    for kind in (*sorted(KINDS), "*"):
        book = load_state(stored_with_kind(kind)).silenced
        assert [e.kind for e in book["ops"]] == [kind]
    for kind in ("digest", "failed ", "Failed", "x" * 10):
        with pytest.raises(StateFormatError, match=r"silenced\['ops'\]\[0\]\.kind"):
            load_state(stored_with_kind(kind))


def test_a_held_entry_of_a_known_kind_still_reaches_the_digest(world: World) -> None:
    world.state_path.parent.mkdir(parents=True)
    world.state_path.write_bytes(stored_with_kind("rejected"))
    summary = world.tick()
    assert summary.status == "ok" and summary.messages == 1
    [digest] = world.texts()
    assert "nightly (92583)" in digest and "被拒绝" in digest


def test_every_kind_the_rules_raise_is_held_stored_and_read_back() -> None:
    for sample in samples.every_kind():
        kept = HeldAlert(
            "ops", "quiet", sample.jobs[0] if sample.jobs else None, "", sample.kind, START
        )
        book = held.hold({}, [kept])
        assert load_state(dump_state(State(silenced=book))).silenced == book
        assert load_state(dump_state(State(outbox=(sample,)))).outbox[0].kind == sample.kind
