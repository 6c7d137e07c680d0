"""`schedulerx-alert state show | forget`, after real ticks against the loopback world.

`show` must tell what the next tick will start from and change nothing; `forget`
must take the lease like a tick, refuse what would lose an owed alert or pick the
wrong job, and leave a job whose next poll is a first poll.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from schedulerx_alert.cli.main import main
from schedulerx_alert.cli.state_cmd import forget_job
from schedulerx_alert.cli.state_view import age, line
from schedulerx_alert.core.model import JobKey
from schedulerx_alert.core.silence import Matcher
from schedulerx_alert.core.state import (
    State,
    TickRecord,
    dump_state,
    load_state,
    run_alert,
)
from schedulerx_alert.delivery.channels.dingtalk import robot_id
from schedulerx_alert.storage.session import StateSession
from schedulerx_alert.storage.silence_book import SilenceBook
from schedulerx_alert.storage.store import FileStateStore, StateStore
from tests.builders import T0, alert, instance, job
from tests.world import AK, GROUP, NS, ROBOT, SECRETS, SK, START, STS, World

JOB = JobKey(NS, GROUP, 92583)
REQUEST_ID = "1-6566a3c2-5b5f4d7e8f9a0b1c2d3e4f50"


def config_file(world: World, **sections: Any) -> Path:
    path = world.root / "config.yaml"
    raw = {**world.raw, **sections}
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def state_cmd(
    world: World, capsys: pytest.CaptureFixture[str], *args: str, **sections: Any
) -> tuple[int, str, str]:
    capsys.readouterr()  # what the ticks logged before
    config = config_file(world, **sections)
    code = main(["state", *args, "--config", str(config)], clock=world.clock)
    out, err = capsys.readouterr()
    for secret in SECRETS:
        assert secret not in out and secret not in err
    return code, out, err


def show(world: World, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, _ = state_cmd(world, capsys, "show", "--json")
    assert code == 0
    doc: dict[str, Any] = json.loads(out)
    return doc


def file_store(world: World) -> StateStore:
    return FileStateStore(world.state_path.parent)


def running_tick(world: World, store: StateStore | None = None) -> StateSession:
    """A tick that has taken the lease and is still working (as FC names it)."""
    session = StateSession(store or file_store(world), "state.json", REQUEST_ID, 60, world.clock)
    session.begin()
    return session


def objects(world: World) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(world.state_path.parent.iterdir())}


def owed_and_muted(world: World) -> None:
    """Job 92583 fails while DingTalk is down; a minute later the robot is muted."""
    world.sx.add_instance(92583, status=5, result="java.lang.IllegalStateException: disk full")
    world.dt.set_down(True)
    assert world.tick().alerts_pending == 1
    world.dt.set_down(False)
    world.dt.mute(ROBOT)  # DingTalk: sent too fast, 130101 for ten minutes
    world.advance(60)
    summary = world.tick(owner="1-tick-two")
    assert (summary.status, summary.alerts_pending) == ("degraded", 1)


# -- show -------------------------------------------------------------------------


def test_show_tells_pending_muted_lease_and_last_tick_and_changes_nothing(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    owed_and_muted(world)
    saved = load_state(world.state_path.read_bytes())
    [owed] = saved.outbox
    muted_until = saved.robots[robot_id(world.raw["receivers"][0]["webhook"])].blocked_until
    assert muted_until is not None
    world.advance(START + 120 - world.clock())  # 10:02:00
    running_tick(world)
    world.advance(12)
    now = world.clock()
    before = objects(world)

    doc = show(world, capsys)
    assert doc["now"] == "2026-11-25T10:02:12+08:00" and doc["timezone"] == "Asia/Shanghai"
    assert doc["state"]["generation"] == 2 and doc["state"]["corrupt"] is None
    assert doc["lease"] == {
        "status": "held",
        "generation": 3,
        "owner": REQUEST_ID,
        "taken_at": "2026-11-25T10:02:00+08:00",
        "taken_age_s": 12.0,
        "expires_at": "2026-11-25T10:03:00+08:00",
        "expires_in_s": 48.0,
        "expired_before": 0,
    }
    [ops] = doc["pending"]["receivers"]
    assert (doc["pending"]["count"], ops["receiver"], ops["count"]) == (1, "ops", 1)
    [alert] = ops["alerts"]
    assert alert["job"] == str(JOB) and alert["kind"] == "failed"
    assert (alert["age_s"], alert["attempts"]) == (now - owed.created_at, 2)
    assert "130101" in alert["last_error"]
    [robot] = doc["robots"]
    assert robot["receivers"] == ["ops"] and robot["muted"] is True
    assert robot["muted_until"] == local(muted_until).isoformat()
    assert robot["muted_for_s"] == muted_until - now
    tick = doc["last_tick"]
    assert tick["status"] == "degraded" and tick["owner"] == "1-tick-two"
    assert (tick["jobs"], tick["polled"], tick["alerts_sent"], tick["alerts_pending"]) == (
        2,
        2,
        0,
        1,
    )
    assert tick["problems"] == 1 and "130101" in tick["problem"]
    assert doc["jobs"] == {"watched": 2, "in_state": 2, "not_watched": []}
    assert doc["silenced"] == {"count": 0, "receivers": {}, "in_force": []}
    assert doc["health"]["broken_ticks"] == 2

    code, text, _ = state_cmd(world, capsys, "show")
    assert code == 0
    assert f"held by {REQUEST_ID} (generation 3)" in text and "expires in 48s" in text
    assert f"ops: 1, oldest {age(now - owed.created_at)}" in text
    assert f"run {owed.instances[0].instance_id} failed, " in text and "2 attempt(s)" in text
    until = local(muted_until).strftime("%Y-%m-%d %H:%M:%S")
    assert f"muted (130101) until {until}, in {age(muted_until - now)}" in text
    assert "last tick  degraded at 2026-11-25 10:01:0" in text and "by 1-tick-two" in text
    assert "2 jobs, 2 polled; alerts 0 new, 0 sent, 1 pending; 1 problem(s)" in text
    assert "jobs       2 watched, 2 with history" in text
    assert "silenced   0 alert(s) held back; 0 silence(s) in force" in text
    # Read, not taken: the running tick's lease and the state are as they were.
    assert objects(world) == before


def local(t: float) -> datetime:
    return datetime.fromtimestamp(t, ZoneInfo("Asia/Shanghai"))


def test_show_json_is_a_stable_document(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.sx.add_instance(92584, status=9, result="no worker available")
    world.tick()
    doc = show(world, capsys)
    assert list(doc) == [
        "now",
        "timezone",
        "state",
        "lease",
        "last_tick",
        "jobs",
        "pending",
        "silenced",
        "expired",
        "robots",
        "health",
        "notes",
        "follow_ups",
    ]
    assert doc["lease"] == {"status": "free"}
    assert doc["pending"] == {"count": 0, "receivers": []}
    assert doc["last_tick"]["status"] == "ok" and doc["last_tick"]["alerts_sent"] == 1
    # The robot sent a moment ago and is not muted.
    [robot] = doc["robots"]
    assert (robot["muted"], robot["muted_until"], robot["sent_last_minute"]) == (False, None, 1)


def test_show_applies_a_dead_ticks_checkpoints_as_the_next_tick_will(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.sx.add_instance(92583, status=5)
    world.sx.add_instance(92584, status=5)
    world.dt.set_down(True)
    world.tick()
    world.dt.set_down(False)
    store = file_store(world)
    # A tick delivers the alert of 92583, checkpoints it, and dies before its commit.
    dead = running_tick(world, store)
    committed = load_state(world.state_path.read_bytes())
    delivered = [a for a in committed.outbox if a.instances[0].job == JOB]
    assert dead.checkpoint(delivered, {}) is True
    world.advance(61)

    doc = show(world, capsys)
    assert doc["state"]["checkpoints_applied"] == 1
    assert doc["lease"]["status"] == "expired" and doc["lease"]["owner"] == REQUEST_ID
    [ops] = doc["pending"]["receivers"]
    assert [a["job"] for a in ops["alerts"]] == [str(JobKey(NS, GROUP, 92584))]
    _, text, _ = state_cmd(world, capsys, "show")
    assert f"expired: {REQUEST_ID} (generation 2)" in text and "the next tick takes over" in text
    assert "1 checkpoint(s) of ticks that did not commit applied" in text

    # What it showed is what the next tick works from: one alert sent, none again.
    summary = world.tick()
    assert (summary.alerts_sent, summary.alerts_pending) == (1, 0)
    assert len(world.texts()) == 1 and "92584" in world.texts()[0]


def test_show_lists_the_silences_in_force_from_the_config_and_the_book(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.tick()
    SilenceBook(file_store(world), "state.json").add(
        Matcher(job_ids=frozenset({92583})),
        world.clock(),
        world.clock() + 3600,
        "disk replaced tonight",
        "alice",
        world.clock(),
    )
    silences = [
        {
            "match": {"group": GROUP, "kind": ["rejected"]},
            "start": "2026-11-25 09:00",
            "end": "2026-11-25 12:00",
            "comment": "worker pool resized",
        },
        {"match": {"jobs": [92584]}, "start": "2026-11-24 09:00", "end": "2026-11-24 12:00"},
    ]
    code, out, _ = state_cmd(world, capsys, "show", "--json", silences=silences)
    assert code == 0
    in_force = json.loads(out)["silenced"]["in_force"]
    assert [(s["source"], s["until"], s["comment"]) for s in in_force] == [
        ("oss", "2026-11-25T11:00:00+08:00", "disk replaced tonight"),
        ("config", "2026-11-25T12:00:00+08:00", "worker pool resized"),
    ]
    assert "job=92583" in in_force[0]["match"] and "kind=rejected" in in_force[1]["match"]
    _, text, _ = state_cmd(world, capsys, "show", silences=silences)
    assert "2 silence(s) in force" in text
    assert "until 2026-11-25 11:00:00, in 1h00m: disk replaced tonight" in text


def test_show_without_a_state_and_with_a_corrupt_one(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text, _ = state_cmd(world, capsys, "show")
    assert code == 0
    assert "none yet (no tick has committed)" in text and "lease      free" in text
    assert not world.state_path.exists()

    world.state_path.parent.mkdir(parents=True)
    world.state_path.write_bytes(b'{"version": 2, "jobs": ')
    code, text, _ = state_cmd(world, capsys, "show")
    assert code == 1
    assert "CORRUPT: not JSON" in text and "starts as on a first run" in text
    # Shown, not acted on: no copy kept aside, the object untouched.
    assert [p.name for p in world.state_path.parent.iterdir()] == ["state.json"]

    world.state_path.write_bytes(b'{"version": 99}')
    code, text, err = state_cmd(world, capsys, "show")
    assert (code, text) == (2, "")
    assert "written by schema version 99" in err


def test_show_prints_no_control_character_and_no_secret_of_an_error_text(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.dt.fail_next(
        310000, errmsg=f"sign not match\x1b[2J\u202e for access_token={ROBOT}\nretry"
    )
    world.sx.add_instance(92583, status=5)
    world.tick()
    code, text, _ = state_cmd(world, capsys, "show")  # checks that no secret is printed
    assert code == 0 and "310000" in text
    assert "\x1b" not in text and "\u202e" not in text


def test_someone_elses_text_is_one_safe_line() -> None:
    assert line("disk\nfull\x1b[2J\u202eevil") == "disk full\\u001b[2J\\u202eevil"
    assert line("x" * 500, 10) == "xxxxxxxxxx …"
    assert [age(s) for s in (0, 45, 192, 7500, 97200, -5)] == [
        "0s",
        "45s",
        "3m12s",
        "2h05m",
        "1d03h",
        "-5s",
    ]


def test_show_reads_state_in_oss(
    oss_world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", AK)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SK)
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", STS)
    oss_world.sx.add_instance(92583, status=5)
    oss_world.dt.set_down(True)
    oss_world.tick()
    doc = show(oss_world, capsys)
    assert doc["state"]["where"] == "oss://alert-bucket/schedulerx-alert/state.json"
    assert doc["pending"]["count"] == 1 and doc["last_tick"]["status"] == "degraded"


# -- forget -----------------------------------------------------------------------


def test_a_forgotten_jobs_next_poll_is_a_first_poll(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    early = world.sx.add_instance(92583, status=5, result="disk full")
    world.tick()
    assert len(world.texts()) == 1
    world.advance(60)

    code, out, _ = state_cmd(world, capsys, "forget", "--job", "92583")
    assert code == 0
    assert f"forgot {JOB}: 1 run record(s)" in out
    assert "first poll" in out and "15 min" in out
    state = load_state(world.state_path.read_bytes())
    assert JOB not in state.jobs and JobKey(NS, GROUP, 92584) in state.jobs
    assert state.lease_generation == 2  # committed under its own lease, like a tick
    assert sorted(objects(world)) == ["state.json"]  # and released it

    # The failure ended a minute ago, inside first_run_lookback: announced again.
    world.tick()
    assert len(world.texts()) == 2 and str(early) in world.texts()[1]

    # Half an hour on, forgotten again: the old failure is history, a new one is news.
    world.advance(29 * 60)
    late = world.sx.add_instance(92583, status=5, result="out of memory")
    world.advance(60)
    assert state_cmd(world, capsys, "forget", "--job", "92583")[0] == 0
    summary = world.tick()
    assert (summary.alerts_sent, summary.history) == (1, 1)
    assert str(late) in world.texts()[2] and len(world.texts()) == 3


def test_forget_refuses_to_drop_owed_alerts_unless_told(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.sx.add_instance(92583, status=5, end_time=START - 3600, schedule_time=START - 3700)
    world.sx.add_instance(92583, status=5)
    world.dt.set_down(True)
    world.tick()
    before = world.state_path.read_bytes()

    code, _, err = state_cmd(world, capsys, "forget", "--job", "92583")
    assert code == 1
    assert "1 alert(s) not delivered yet (ops: 1)" in err and "--drop-pending" in err
    assert world.state_path.read_bytes() == before and sorted(objects(world)) == ["state.json"]

    code, out, _ = state_cmd(world, capsys, "forget", "--job", "92583", "--drop-pending", "--json")
    assert code == 0
    assert json.loads(out) == {
        "forgotten": str(JOB),
        "records": 2,
        "pending_dropped": 1,
        "pending_dropped_by_receiver": {"ops": 1},
        "watched": True,
        "first_run_lookback_minutes": 15.0,
    }
    assert load_state(world.state_path.read_bytes()).outbox == ()
    # The dropped alert's run ended inside the lookback: the first poll owes it again,
    # while the hour-old failure stays history.
    world.dt.set_down(False)
    summary = world.tick()
    assert (summary.alerts_new, summary.alerts_sent, summary.history) == (1, 1, 1)


def test_forget_is_refused_while_a_tick_holds_the_lease(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.sx.add_instance(92583, status=5)
    world.tick()
    running_tick(world)
    before = objects(world)
    code, _, err = state_cmd(world, capsys, "forget", "--job", "92583")
    assert code == 1
    assert f"tick {REQUEST_ID} holds the state (lease 2, 60s left)" in err
    assert "nothing changed" in err
    assert objects(world) == before

    code, out, _ = state_cmd(world, capsys, "forget", "--job", "92583", "--json")
    assert code == 1
    refused = json.loads(out)
    assert refused["forgotten"] is None and REQUEST_ID in refused["refused"]


def test_forget_refuses_an_ambiguous_or_unknown_id(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.sx.add_instance(92583, status=5)
    world.tick()
    # The same id in another group (SchedulerX ids are unique per group, not overall).
    other = JobKey(NS, "otherGroup", 92583)
    session = StateSession(file_store(world), "state.json", "setup", 60, world.clock)
    state = session.begin()
    session.commit(state.with_updates(jobs={**state.jobs, other: state.jobs[JOB]}))
    before = world.state_path.read_bytes()

    code, _, err = state_cmd(world, capsys, "forget", "--job", "92583")
    assert code == 1
    assert f"job id 92583 is in 2 namespace/group pairs: {other}, {JOB}" in err
    code, out, _ = state_cmd(world, capsys, "forget", "--job", "92583", "--json")
    assert json.loads(out)["candidates"] == [str(other), str(JOB)]
    code, _, err = state_cmd(world, capsys, "forget", "--job", "777")
    assert code == 1 and "no history of job 777" in err
    assert world.state_path.read_bytes() == before

    code, out, _ = state_cmd(world, capsys, "forget", "--job", "92583", "--group", "otherGroup")
    assert code == 0 and f"forgot {other}" in out and "does not watch it" in out
    assert set(load_state(world.state_path.read_bytes()).jobs) == {
        JOB,
        JobKey(NS, GROUP, 92584),
    }


# -- the last tick's record ---------------------------------------------------------


def test_the_last_tick_record_round_trips_bounded() -> None:
    record = TickRecord(
        status="failed",
        at=START,
        duration_ms=1234,
        owner="r" * 500,
        jobs=3,
        polled=0,
        alerts_new=0,
        alerts_sent=0,
        alerts_pending=2,
        problems=4,
        problem="x" * 5000,
    )
    loaded = load_state(dump_state(State(last_tick=record))).last_tick
    assert loaded is not None
    assert (loaded.status, loaded.at, loaded.alerts_pending, loaded.problems) == (
        "failed",
        START,
        2,
        4,
    )
    assert loaded.problem is not None and len(loaded.problem) < 400
    assert len(loaded.owner) < 300
    # A state without the record (every state before it) loads as before.
    assert load_state(dump_state(State())).last_tick is None
    assert b"last_tick" not in dump_state(State())


def test_forget_drops_the_jobs_delivered_marks_and_no_other_jobs() -> None:
    """A dead tick's checkpoint marked runs of two jobs as sent before the state knew
    them; forgetting one job drops its marks (its first poll decides afresh) only."""
    odd = JobKey("ns:with/odd", "group:x", 92583)
    mine = run_alert("failed", "ops:night", instance(1), None, T0)
    theirs = run_alert("failed", "ops:night", replace(instance(2), job=odd), None, T0)
    other_job = alert(3, job_id=92584)
    state = State(delivered={mine.key: T0, theirs.key: T0, other_job.key: T0})
    new_state, forgotten = forget_job(state, 92583, NS, GROUP, False, {job()})
    assert set(new_state.delivered) == {theirs.key, other_job.key}
    assert (forgotten.job, forgotten.records, forgotten.watched) == (str(job()), 0, True)
