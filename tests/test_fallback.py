"""The per-instance health record (fallback.py): what it keeps survives a round trip; a
record that is not exactly what `save` writes counts nothing, rather than being coerced."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from schedulerx_alert.core.state import HealthRecord, RobotRecord, State
from schedulerx_alert.storage.fallback import LocalHealth, LocalHealthFile, fold

GOOD: dict[str, Any] = {
    "health": {"broken_ticks": 3, "impaired_announced": True, "reason": "OSS refuses"},
    "since": 1_795_572_000.0,
    "last": 1_795_572_120.0,
    "robots": {"robot-abc": {"sent": [1_795_572_100.0], "blocked_until": None}},
}


def test_a_record_survives_its_round_trip(tmp_path: Path) -> None:
    record = LocalHealth(
        HealthRecord(2, True, "state unusable: OSS read failed"),
        since=100.0,
        last=160.0,
        robots={"robot-abc": RobotRecord((150.0, 155.5), blocked_until=900.0)},
    )
    file = LocalHealthFile(tmp_path, "oss://bucket/state.json")
    file.save(record)
    assert file.load() == record
    file.clear()
    assert file.load() is None


def test_the_written_form_is_read(tmp_path: Path) -> None:
    file = LocalHealthFile(tmp_path, "x")
    file.path.write_text(json.dumps(GOOD), encoding="utf-8")
    loaded = file.load()
    assert loaded is not None and loaded.health.broken_ticks == 3


def _with(path: str, value: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(GOOD))
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[key]
    node[last] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("health.impaired_announced", "no"),  # bool("no") would be True
        ("health.broken_ticks", "3"),
        ("health.broken_ticks", -1),
        ("health.broken_ticks", 2.5),
        ("health.reason", {"a": 1}),
        ("since", "yesterday"),
        ("last", True),
        ("robots.robot-abc.blocked_until", "later"),
        ("robots.robot-abc.sent", "1795572100"),
        ("robots.robot-abc.sent", [1.0] * 65),
        ("robots.robot-abc", [1, 2]),
        ("robots", []),
        ("health", None),
    ],
)
def test_a_record_that_is_not_what_save_writes_counts_nothing(
    tmp_path: Path, path: str, value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    file = LocalHealthFile(tmp_path, "x")
    file.path.write_text(json.dumps(_with(path, value)), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="schedulerx_alert"):
        assert file.load() is None
    assert "ignoring unreadable local health record" in caplog.text


@pytest.mark.parametrize("text", ["NaN", '{"since": Infinity}', "[]", "{", '"x"'])
def test_json_that_is_no_record_counts_nothing(tmp_path: Path, text: str) -> None:
    file = LocalHealthFile(tmp_path, "x")
    doc = json.dumps(GOOD).replace("1795572000.0", "NaN") if text == "NaN" else text
    file.path.write_text(doc, encoding="utf-8")
    assert file.load() is None


def test_fold_adds_the_broken_ticks_counted_here_since_the_state_was_written() -> None:
    """Three ticks on this instance could not read a state that already counted two: the
    next tick that reads it counts five in a row, and keeps the notice this instance sent."""
    state = State(health=HealthRecord(broken_ticks=2, reason="quota"), updated_at=100.0)
    local = LocalHealth(HealthRecord(3, True, "OSS refuses"), since=160.0, last=280.0)
    folded = fold(state, local).health
    assert folded == HealthRecord(broken_ticks=5, impaired_announced=True, reason="quota")


def test_fold_ignores_broken_ticks_older_than_the_state() -> None:
    """Ticks elsewhere read and wrote the state after these were counted: they are over."""
    state = State(health=HealthRecord(broken_ticks=0), updated_at=500.0)
    local = LocalHealth(HealthRecord(3, False, "OSS refuses"), since=160.0, last=280.0)
    assert fold(state, local).health.broken_ticks == 0


def test_fold_merges_the_sends_made_while_the_state_was_unreadable() -> None:
    state = State(robots={"ops": RobotRecord(sent=(10.0,))}, updated_at=100.0)
    local = LocalHealth(
        HealthRecord(1), since=160.0, last=160.0, robots={"ops": RobotRecord((170.0,), 900.0)}
    )
    assert fold(state, local).robots == {"ops": RobotRecord((10.0, 170.0), 900.0)}
