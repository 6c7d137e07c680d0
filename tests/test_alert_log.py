"""One JSON log record per alert outcome (issue 18 item 15): stories over ticks against the
loopback SchedulerX and DingTalk robots, read as SLS would read the lines.

A tick that only logged counts could not say whether job 92583's failure reached the
data team's group. Each record names the job, the run, the kind, the receiver and the
robot (its id in the state, never its token), and what became of the alert.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from schedulerx_alert.core.silence_hold import QUIET
from schedulerx_alert.delivery.alert_log import INDEX_KEYS, OUTCOMES
from schedulerx_alert.delivery.channels.dingtalk import robot_id
from schedulerx_alert.support.process_log import FIELDS, JsonFormatter
from schedulerx_alert.support.redact import Redactor
from tests.world import GROUP, NS, ROBOT, SECRETS, World

DATA_ROBOT = "data-team-robot-token-0123456789"
DATA_SECRET = "SECdata0123456789abcdef"
HOUR = 3600.0


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """Two groups hear of job 92583 ("etl-nightly"): ops and the data team."""
    with World(tmp_path) as world:
        world.dt.add_robot(DATA_ROBOT, secret=DATA_SECRET)
        world.raw["receivers"].append(
            {"name": "data", "webhook": world.dt.webhook(DATA_ROBOT), "secret": DATA_SECRET}
        )
        world.raw["watch"][0]["jobs"] = [{"id": 92583, "name": "etl-nightly"}, 92584]
        world.raw["watch"][0]["receivers"] = ["ops", "data"]
        yield world


def fail(world: World, job_id: int = 92583) -> int:
    run: int = world.sx.add_instance(
        job_id, status=5, end_time=world.clock() - 5, result="NullPointerException"
    )
    return run


def lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The alert records of the ticks so far, as the JSON lines FC writes; then forgotten."""
    formatter = JsonFormatter(Redactor([*SECRETS, DATA_ROBOT, DATA_SECRET]))
    found = []
    for record in caplog.records:
        fields = getattr(record, FIELDS, {})
        if fields.get("event") == "alert":
            line = formatter.format(record)
            assert "\n" not in line
            found.append(json.loads(line))
    caplog.clear()
    return found


def by(records: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    (found,) = [r for r in records if all(r.get(k) == v for k, v in match.items())]
    return found


@pytest.fixture
def caplog(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="schedulerx_alert")
    return caplog


def test_a_failure_sent_to_one_group_and_held_by_the_others_quiet_hours(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # The world starts on Wednesday 2026-11-25 10:00 in Shanghai.
    world.raw["receivers"][1]["quiet_hours"] = {
        "windows": [{"days": "weekdays", "time": "09:30-11:00"}]
    }
    run = fail(world)
    summary = world.tick()
    assert (summary.alerts_sent, summary.alerts_silenced) == (1, 1)
    records = lines(caplog)
    assert len(records) == 2
    sent = by(records, outcome="sent")
    line: dict[str, Any] = {k: sent[k] for k in ("time", "level", "message")}
    assert sent == {
        **line,
        "event": "alert",
        "outcome": "sent",
        "job_id": 92583,
        "job_name": "etl-nightly",
        "namespace": NS,
        "group": GROUP,
        "instance_id": run,
        "kind": "failed",
        "receiver": "ops",
        "robot": robot_id(world.raw["receivers"][0]["webhook"]),
        "fingerprint": sent["fingerprint"],
    }
    assert sent["fingerprint"] and sent["level"] == "INFO"
    held = by(records, outcome="held")
    assert {k: held.get(k) for k in ("job_id", "job_name", "instance_id", "kind")} == {
        "job_id": 92583,
        "job_name": "etl-nightly",
        "instance_id": run,
        "kind": "failed",
    }
    assert (held["receiver"], held["holder"]) == ("data", QUIET)
    assert held["robot"] == robot_id(world.raw["receivers"][1]["webhook"])
    assert held["fingerprint"] == sent["fingerprint"]
    # Nothing happened to no alert: a quiet tick logs no alert record.
    world.advance(60)
    world.tick()
    assert lines(caplog) == []


def test_pending_while_the_robot_is_muted_then_rerouted_when_its_receiver_goes(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.dt.mute(DATA_ROBOT, 5 * 60)
    run = fail(world)
    world.tick()
    records = lines(caplog)
    assert sorted((r["outcome"], r["receiver"]) for r in records) == [
        ("pending", "data"),
        ("sent", "ops"),
    ]
    # Each tick it waits says so again, with how far it got.
    world.advance(60)
    world.tick()
    (pending,) = lines(caplog)
    assert (pending["outcome"], pending["instance_id"], pending["kind"]) == (
        "pending",
        run,
        "failed",
    )
    assert pending["robot"] == robot_id(world.raw["receivers"][1]["webhook"])
    # The data team's receiver is renamed: what it was owed follows the new name.
    world.raw["receivers"][1]["name"] = "data-team"
    world.raw["watch"][0]["receivers"] = ["ops", "data-team"]
    world.advance(11 * 60)  # DingTalk's 10 minutes in the penalty box are over
    world.tick()
    (rerouted,) = lines(caplog)
    assert (rerouted["outcome"], rerouted["receiver"], rerouted["instance_id"]) == (
        "sent",
        "data-team",
        run,
    )
    world.advance(60)
    world.tick()
    assert lines(caplog) == []


def test_an_owed_alert_of_a_job_no_longer_watched_is_logged_dropped(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.dt.mute(DATA_ROBOT, 3 * HOUR)
    run = fail(world)
    world.tick()
    lines(caplog)
    world.raw["watch"][0]["jobs"] = [92584]
    world.advance(60)
    world.tick()
    (dropped,) = lines(caplog)
    assert dropped["outcome"] == "dropped" and dropped["level"] == "WARNING"
    assert (dropped["job_id"], dropped["receiver"], dropped["instance_id"]) == (92583, "data", run)
    world.advance(60)
    world.tick()
    assert lines(caplog) == []


def test_an_alert_owed_too_long_is_logged_expired(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.raw["pending_max_age_hours"] = 1
    world.dt.mute(DATA_ROBOT, 3 * HOUR)
    fail(world)
    world.tick()
    lines(caplog)
    world.advance(HOUR + 60)
    world.tick()
    (expired,) = lines(caplog)
    assert (expired["outcome"], expired["receiver"], expired["level"]) == (
        "expired",
        "data",
        "WARNING",
    )
    assert expired["job_id"] == 92583 and expired["attempts"] >= 1


def test_no_record_carries_a_token_and_every_key_is_one_the_index_knows(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.dt.mute(DATA_ROBOT, 3 * HOUR)
    fail(world)
    fail(world, 92584)
    world.tick()
    records = lines(caplog)
    assert {r["outcome"] for r in records} == {"sent", "pending"}
    assert {r["outcome"] for r in records} <= set(OUTCOMES)
    common = {"time", "level", "request_id", "message"}
    for record in records:
        assert set(record) - common <= set(INDEX_KEYS), record
        text = json.dumps(record)
        assert not [s for s in (*SECRETS, ROBOT, DATA_ROBOT, DATA_SECRET) if s in text]
        for key, kind in INDEX_KEYS.items():
            if key in record:
                assert isinstance(record[key], int if kind == "long" else str), key


def test_a_dry_run_logs_no_outcome(world: World, caplog: pytest.LogCaptureFixture) -> None:
    fail(world)
    summary = world.tick(dry_run=True)
    assert summary.preview and world.texts() == []
    assert lines(caplog) == []


def test_a_receiver_that_had_its_copy_is_not_sent_it_again_when_another_goes(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """ops and data were both told of the run; data's copy waits, then data leaves the
    config. ops, the job's one receiver now, had its own copy: it hears nothing more."""
    world.dt.mute(DATA_ROBOT, 3 * HOUR)
    fail(world)
    world.tick()
    lines(caplog)
    assert len(world.texts()) == 1
    world.raw["receivers"].pop()
    world.raw["watch"][0]["receivers"] = ["ops"]
    for _ in range(2):
        world.advance(60)
        world.tick()
    assert len(world.texts()) == 1
    assert [r for r in lines(caplog) if r["outcome"] == "sent"] == []
