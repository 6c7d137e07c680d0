"""Trusting the state: stories of hostile stored documents, odd keys, a changed time zone,
a long listing, alerts owed for too long, huge error texts and many pending alerts.

Each story runs the real product against the loopback SchedulerX, DingTalk and OSS."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest

from schedulerx_alert.core.model import JobKey
from schedulerx_alert.core.state import State, dump_state, load_state
from schedulerx_alert.sources.listing import MAX_RUNS_PER_JOB
from schedulerx_alert.storage.session import StateSession
from tests.builders import alert
from tests.fakes.base import ManualClock
from tests.world import GROUP, NS, START, World

DEEP = 100_000


def hostile(doc: str) -> bytes:
    return doc.encode("utf-8")


# A document the previous version could have written, spoilt in one place each.
HOSTILE_STATES = {
    "lease_generation 1e999": hostile('{"version": 1, "lease_generation": 1e999}'),
    "updated_at Infinity": hostile('{"version": 1, "updated_at": Infinity}'),
    "a send time NaN": hostile('{"version": 1, "robots": {"ops": {"sent": [NaN]}}}'),
    "blocked_until soon": hostile(
        '{"version": 1, "robots": {"ops": {"sent": [], "blocked_until": "soon"}}}'
    ),
    "deep nesting": hostile('{"version": 1, "health": ' + "[" * DEEP + "]" * DEEP + "}"),
    "a 5000-digit generation": hostile('{"version": 1, "lease_generation": ' + "9" * 5000 + "}"),
    "version true": hostile('{"version": true}'),
    "records of the wrong shape": hostile(
        '{"version": 1, "jobs": {"' + f"{NS}/{GROUP}" + '/92583": {"instances": [1, 2]}}}'
    ),
    "a pending alert with a naive start time": json.dumps(
        {
            "version": 1,
            "outbox": [
                {
                    "kind": "failed",
                    "receiver": "ops",
                    "instance": {
                        "job": f"{NS}/{GROUP}/92584",
                        "id": 1,
                        "status": 5,
                        "start_time": "2026-11-25T09:59:00",
                        "end_time": "2026-11-25T10:00:00+08:00",
                    },
                    "created_at": START,
                }
            ],
        }
    ).encode(),
}


@pytest.mark.parametrize("stored", HOSTILE_STATES.values(), ids=HOSTILE_STATES.keys())
def test_a_state_that_cannot_be_decoded_is_kept_aside_and_the_tick_goes_on(
    world: World, stored: bytes
) -> None:
    world.state_path.parent.mkdir(parents=True)
    world.state_path.write_bytes(stored)
    world.sx.add_instance(92583, status=5, result="disk full")

    summary = world.tick()

    assert (summary.alerts_new, summary.alerts_sent) == (1, 1)
    assert any("corrupt" in note and "kept aside" in note for note in summary.notes)
    [aside] = world.state_path.parent.glob("state.json.corrupt-*")
    assert aside.read_bytes() == stored
    assert load_state(world.state_path.read_bytes()).outbox == ()
    world.advance(60)
    assert world.tick().alerts_new == 0
    assert len(world.texts()) == 1


def test_text_that_is_not_valid_unicode_survives_a_save_and_a_load(world: World) -> None:
    # JSON can carry a lone surrogate; a state holding one must still be writable.
    stored = {
        "version": 1,
        "robots": {"ops\ud800": {"sent": [START]}},
        "health": {"reason": "\udfff"},
    }
    world.state_path.parent.mkdir(parents=True)
    world.state_path.write_bytes(json.dumps(stored).encode())
    world.sx.add_instance(92583, status=5, result="broken")

    summary = world.tick()

    assert (summary.alerts_sent, summary.problems) == (1, [])
    assert "ops\ud800" in load_state(world.state_path.read_bytes()).robots


@pytest.mark.parametrize(
    "lease",
    [
        b'{"owner": "x", "taken_at": 0, "expires_at": Infinity}',
        b'{"owner": "x", "taken_at": 1e999, "expires_at": 1e999}',
        b'{"owner": "x", "taken_at": 0, "expires_at": 1e15}',
        b'{"owner": ' + b"[" * DEEP + b"]" * DEEP + b"}",
    ],
    ids=["expires Infinity", "1e999", "expires in 30 million years", "deep nesting"],
)
def test_a_lease_that_cannot_be_decoded_does_not_block_alerting(world: World, lease: bytes) -> None:
    world.state_path.parent.mkdir(parents=True)
    (world.state_path.parent / "state.json.lease.000000000001").write_bytes(lease)
    world.sx.add_instance(92583, status=5)

    summary = world.tick()

    assert (summary.status, summary.alerts_sent) == ("ok", 1)
    assert any("took over" in note for note in summary.notes)


# -- keys -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("namespace", "group"),
    [(NS, "team/etl"), ("ns/1", "g/2"), ("ns%2F", "g:1 %/é\n")],
    ids=["group with /", "both with /", "percent, colon, newline"],
)
def test_a_job_whose_names_hold_any_characters_is_polled_as_known_after_its_first_tick(
    world: World, namespace: str, group: str
) -> None:
    world.sx.add_job(namespace, group, 777, name="odd")
    world.raw["watch"].append(
        {"namespace": namespace, "group": group, "jobs": [777], "receivers": ["ops"]}
    )
    world.sx.add_instance(777, status=5, result="first failure")
    assert world.tick().alerts_sent == 1

    # Two minutes later the failure is still inside the first-run lookback: a job
    # polled "for the first time" again would announce it again.
    world.advance(120)
    again = world.tick()

    assert (again.alerts_new, again.history) == (0, 0)
    assert len(world.texts()) == 1
    saved = load_state(world.state_path.read_bytes())
    assert JobKey(namespace, group, 777) in saved.jobs


# -- time zones ---------------------------------------------------------------------------


def test_changing_the_timezone_announces_nothing_again(world: World) -> None:
    world.sx.add_instance(92583, status=5, result="disk full")
    running = world.sx.add_instance(92584, status=3)
    assert world.tick().alerts_sent == 1

    world.advance(60)
    corrected = world.tick(timezone="UTC")
    assert (corrected.alerts_new, corrected.history) == (0, 0)

    # A run seen running before the change still alerts, once, when it fails after it.
    world.sx.set_status(running, 5, result="exit code 137")
    world.advance(60)
    assert world.tick(timezone="UTC").alerts_new == 1
    world.advance(60)
    assert world.tick(timezone="Asia/Tokyo").alerts_new == 0
    assert len(world.texts()) == 2


# -- a long listing ----------------------------------------------------------------------------


def list_everything(world: World) -> None:
    """A SchedulerX whose answer lists every run of a job (paging, as a later version may
    ask for), not only the latest ten."""

    def every_run(params: dict[str, str]) -> dict[str, Any]:
        job = world.sx._resolve_job(params)
        runs = [i for i in world.sx._instances.values() if i.job_id == job.job_id]
        runs.sort(key=lambda i: (i.schedule_time, i.instance_id), reverse=True)
        return {"JobInstanceDetails": [world.sx._detail(i) for i in runs]}

    world.sx._handlers["GetJobInstanceList"] = every_run


def test_a_listing_of_250_runs_keeps_its_failures_and_newest_and_announces_each_once(
    world: World,
) -> None:
    list_everything(world)
    failed = {world.sx.add_instance(92583, status=5, result="boom") for _ in range(5)}
    for _ in range(245):
        world.sx.add_instance(92583, status=4)
    first = world.tick()
    # The five failures, and the recovery the successes after them make; of the 245
    # successes the newest are read up to the per-job cap, and the cut is reported.
    assert (first.instances, first.alerts_sent) == (MAX_RUNS_PER_JOB, 6)
    assert first.status == "ok" and [p["outcome"] for p in first.entry_problems] == ["cut"]

    for _ in range(3):
        world.advance(60)
        assert world.tick().alerts_new == 0
    assert len(world.texts()) == 1
    saved = load_state(world.state_path.read_bytes())
    assert len(saved.jobs[JobKey(NS, GROUP, 92583)].instances) == MAX_RUNS_PER_JOB
    assert failed <= set(saved.jobs[JobKey(NS, GROUP, 92583)].instances)


# -- alerts owed for too long --------------------------------------------------------------------


def test_an_alert_pending_for_a_day_is_dropped_with_one_error_and_counted_in_the_next_summary(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.dt.set_down(True)
    world.sx.add_instance(92583, status=5, result="disk full")
    world.sx.add_instance(92584, status=5, result="disk full too")
    assert world.tick().alerts_pending == 2

    world.advance(24 * 3600 + 60)
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="schedulerx_alert"):
        late = world.tick()
    assert late.alerts_pending == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "2 pending alert" in errors[0] and "24" in errors[0]
    assert load_state(world.state_path.read_bytes()).expired == {"ops": 2}

    world.dt.set_down(False)
    world.advance(60)
    world.sx.add_instance(92583, status=5, result="fresh failure")
    fresh = world.tick()
    assert (fresh.alerts_sent, fresh.alerts_pending) == (1, 0)
    [text] = world.texts()
    assert "fresh failure" in text and "disk full" not in text
    assert "2 条" in text  # the summary counts the two dropped alerts
    assert load_state(world.state_path.read_bytes()).expired == {}
    world.advance(60)
    world.sx.add_instance(92584, status=5, result="another")
    world.tick()
    assert "2 条" not in world.texts()[-1]  # counted once


def test_the_age_limit_of_pending_alerts_is_configurable(world: World) -> None:
    world.dt.set_down(True)
    world.sx.add_instance(92583, status=5)
    world.tick(pending_max_age_hours=2)
    world.advance(3600)
    assert world.tick(pending_max_age_hours=2).alerts_pending == 1
    world.advance(3601)
    late = world.tick(pending_max_age_hours=2)
    assert late.alerts_pending == 0 and late.status == "degraded"
    assert sum("more than 2 h" in p for p in late.problems) == 1


def test_a_five_megabyte_error_text_does_not_make_a_five_megabyte_state(world: World) -> None:
    """Under the answer's 8 MiB cap (over it, the call fails, named: test_answer_caps.py)."""
    world.dt.set_down(True)
    world.sx.add_instance(92583, status=5, result="OutOfMemoryError\n" + "x" * 5_000_000)
    world.tick()
    size = world.state_path.stat().st_size
    assert size < 20_000
    world.dt.set_down(False)
    world.advance(60)
    assert world.tick().alerts_sent == 1
    assert "OutOfMemoryError" in world.texts()[0]


# -- checkpoints -------------------------------------------------------------------------------


def puts(world: World) -> list[tuple[str, bytes]]:
    """(key, body) of each object the tick wrote, leases aside."""
    assert world.oss is not None
    writes = [
        (unquote(r.path).partition("/alert-bucket/")[2], r.body)
        for r in world.oss.requests
        if r.method == "PUT"
    ]
    return [(key, body) for key, body in writes if ".lease." not in key]


def test_a_checkpoint_costs_the_message_not_the_whole_outbox(oss_world: World) -> None:
    """3000 alerts are owed when the robot comes back: the tick sends up to 20 summaries and
    records each before the next; those records must not each rewrite the state."""
    assert oss_world.oss is not None
    owed = tuple(alert(1_800_000_000_000 + i, result="exit code 137") for i in range(3000))
    stored = dump_state(State(outbox=owed))
    oss_world.oss.put_raw("schedulerx-alert/state.json", stored, bucket="alert-bucket")
    before = len(puts(oss_world))

    summary = oss_world.tick()

    assert summary.messages >= 10 and summary.alerts_sent > 1000
    writes = puts(oss_world)[before:]
    *checkpoints, (key, committed) = writes
    assert key == "schedulerx-alert/state.json" and len(checkpoints) == summary.messages
    # The outbox was 2.7 MB; each checkpoint names the ~200 alerts of one message.
    assert max(len(body) for _, body in checkpoints) < 64_000
    assert sum(len(body) for _, body in checkpoints) < len(stored) / 4
    assert sorted(oss_world.oss.objects_in("alert-bucket")) == ["schedulerx-alert/state.json"]
    assert load_state(committed).lease_generation == 1


# -- the previous schema -------------------------------------------------------------------------

DATA = Path(__file__).parent / "data"


def replay_v1_world(world: World, story: dict[str, Any]) -> None:
    """The SchedulerX, robots and config that version 1's ticks left behind
    (tests/data/make_state_v1.py wrote the story and the state)."""
    world.sx.tz = ZoneInfo(story["zone"])
    for run in story["instances"]:
        world.sx.add_instance(
            run["job_id"],
            instance_id=run["instance_id"],
            status=run["status"],
            result=run["result"],
            schedule_time=run["schedule_time"],
            start_time=run["start_time"],
            end_time=run["end_time"],
            trigger_type=run["trigger_type"],
            time_type=run["time_type"],
            work_addr=run["work_addr"],
            executor=run["executor"],
            data_time=run["data_time"],
            progress=run["progress"],
        )
    world.dt.add_robot(story["dba_token"])
    world.raw["receivers"].append({"name": "dba", "webhook": world.dt.webhook(story["dba_token"])})
    world.raw["watch"][0]["receivers"] = ["ops", "dba"]
    world.raw.update(story["config"])
    world.state_path.parent.mkdir(parents=True)
    world.state_path.write_bytes((DATA / "state_v1.json").read_bytes())


def test_a_state_written_by_version_1_carries_on_without_announcing_anything_again(
    tmp_path: Path,
) -> None:
    story = json.loads((DATA / "world_v1.json").read_text(encoding="utf-8"))
    clock = ManualClock(story["now"])
    with World(tmp_path, jobs=tuple(story["jobs"]), clock=clock) as world:
        replay_v1_world(world, story)
        owed = load_state((DATA / "state_v1.json").read_bytes()).outbox

        first = world.tick()

        assert (first.alerts_new, first.history, first.alerts_sent) == (0, 0, len(owed))
        # "dba" finally gets what version 1 owed it, in one summary; "ops" hears
        # only that alerting works again.
        [summary] = world.texts(story["dba_token"])
        assert {str(a.instances[0].instance_id) for a in owed} <= set(
            re.findall(r"\d{13}", summary)
        )
        assert "exit code 1" in summary
        [recovered] = world.texts()
        assert not re.findall(r"\d{13}", recovered)
        for _ in range(3):
            world.advance(60)
            assert world.tick().alerts_new == 0
        assert len(world.texts(story["dba_token"])) == 1 and len(world.texts()) == 1
        saved = load_state(world.state_path.read_bytes())
        records = [r for job in saved.jobs.values() for r in job.instances.values()]
        assert all(r.end_v1 is None and r.end for r in records)


def test_a_version_1_document_loads_field_for_field() -> None:
    data = (DATA / "state_v1.json").read_bytes()
    raw = json.loads(data)
    state = load_state(data)
    assert (state.lease_generation, state.updated_at) == (
        raw["lease_generation"],
        raw["updated_at"],
    )
    assert state.api_calls == tuple(raw["api_calls"])
    assert state.health.impaired_announced and state.health.reason == raw["health"]["reason"]
    assert {str(k) for k in state.jobs} == set(raw["jobs"])
    for key, record in state.jobs.items():
        stored = raw["jobs"][str(key)]["instances"]
        assert {str(i) for i in record.instances} == set(stored)
        for iid, r in record.instances.items():
            old = stored[str(iid)]
            assert (r.status, r.seen, list(r.alerted), r.end_v1, r.end) == (
                old["status"],
                old["seen"],
                old["alerted"],
                old["ended"],
                None,
            )
    assert [a.receiver for a in state.outbox] == [a["receiver"] for a in raw["outbox"]]
    assert [a.instances[0].result for a in state.outbox] == [
        a["instance"]["result"] for a in raw["outbox"]
    ]
    assert load_state(dump_state(state)) == state


def test_a_dry_run_previews_what_the_next_tick_owes_not_what_a_dead_tick_delivered(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Job 92583 fails while the robot is down; the robot is back and a tick announces the
    failure, then dies before its commit. The dry run must see the dead tick's record of the
    delivery, as the next real tick does, and preview nothing."""
    world.dt.set_down(True)
    world.sx.add_instance(92583, status=5, result="java.lang.NullPointerException")
    assert world.tick().alerts_pending == 1
    world.dt.set_down(False)
    world.advance(60)

    def killed(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed before the commit")

    with monkeypatch.context() as patch:
        patch.setattr(StateSession, "commit", killed)
        with pytest.raises(RuntimeError, match="killed"):
            world.tick()
    assert len(world.texts()) == 1
    world.advance(60)

    preview = world.tick(dry_run=True)
    assert (preview.alerts_pending, preview.preview) == (0, [])
    assert world.tick().alerts_sent == 0 and len(world.texts()) == 1
