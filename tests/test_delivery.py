"""DingTalk's limits and errcodes, as stories against the loopback robot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from schedulerx_alert.core.state import load_state
from tests.world import ROBOT, World


def failing_jobs(world: World, count: int, first: int = 5000, runs: int = 1) -> set[int]:
    """Watch `count` more jobs, each with `runs` failed runs; their instance ids.

    Their errors differ only in the job id, which makes them a shared cause: these
    stories are about the robot's budget, so each failure is its own alert here.
    """
    world.raw["shared_cause"] = False
    rule = world.raw["watch"][0]
    ids = list(range(first, first + count))
    rule["jobs"] = rule["jobs"] + ids
    instances = set()
    for job_id in ids:
        world.sx.add_job(rule["namespace"], rule["group"], job_id)
        result = f"job {job_id} broke: " + "x" * 300
        for _ in range(runs):
            instances.add(world.sx.add_instance(job_id, status=5, result=result))
    return instances


def listed_instances(texts: list[str]) -> set[int]:
    return {int(m) for t in texts for m in re.findall(r"(?:实例|instance) (\d+)", t)}


def test_a_burst_of_60_failures_arrives_as_a_few_summaries_listing_every_one(world: World) -> None:
    instances = failing_jobs(world, 60)
    summary = world.tick()
    assert summary.alerts_sent == 60 and summary.alerts_pending == 0
    texts = world.texts()
    assert 1 <= len(texts) <= 4
    assert listed_instances(texts) == instances
    assert all(len(r.body) < 20000 and r.ok for r in world.dt.requests)
    assert world.dt.muted_until(ROBOT) == 0


def test_a_burst_too_big_for_one_minute_says_how_many_follow_and_sends_them_later(
    tmp_path: Path,
) -> None:
    with World(tmp_path) as world:
        # One message a minute for this robot; ~130 runs fit in one message,
        # and each tick polls 100 jobs (the quota) with 3 failed runs each.
        instances = failing_jobs(world, 200, runs=3)
        world.raw["dingtalk"] = {"allowed_hosts": ["127.0.0.1"], "max_per_minute": 1}
        world.raw["schedulerx"] = {"endpoint": world.sx.url, "max_calls_per_minute": 100}
        sent = 0
        for _ in range(12):
            summary = world.tick()
            sent += summary.alerts_sent
            if summary.alerts_pending == 0 and summary.deferred == 0:
                break
            world.advance(60)
        texts = world.texts()
        assert sent == 600
        assert listed_instances(texts) == instances
        more = [t for t in texts if "稍后发送" in t]
        assert more and all(int(re.search(r"另有 (\d+) 个", t).group(1)) > 0 for t in more)  # type: ignore[union-attr]
        assert all(len(r.body) < 20000 for r in world.dt.requests)
        assert world.dt.muted_until(ROBOT) == 0


def test_two_ticks_inside_one_minute_share_the_robot_budget(world: World) -> None:
    failing_jobs(world, 3, first=6000)
    world.raw["dingtalk"] = {"allowed_hosts": ["127.0.0.1"], "summary_threshold": 20}
    world.tick()
    world.advance(20)
    failing_jobs(world, 20, first=7000)
    second = world.tick()
    # 18 a minute in all: 3 went in the first tick, 15 fit in the second.
    assert second.messages == 15 and second.alerts_pending == 5
    world.advance(41)
    # The second tick's 15 sends are still inside the minute: 3 more fit.
    assert world.tick().alerts_sent == 3
    world.advance(20)
    assert world.tick().alerts_sent == 2
    assert world.dt.muted_until(ROBOT) == 0


def test_system_busy_is_retried_later(world: World) -> None:
    world.sx.add_instance(92583, status=5)
    world.dt.fail_next(-1, times=2)
    busy = world.tick()
    assert busy.alerts_pending == 1
    world.advance(60)
    assert world.tick().alerts_sent == 1
    assert len(world.texts()) == 1


def test_sent_too_fast_pauses_the_robot_for_ten_minutes_and_keeps_alerts(world: World) -> None:
    world.sx.add_instance(92583, status=5)
    world.dt.fail_next(130101)
    world.tick()
    attempts = len(world.dt.requests)
    for _ in range(9):
        world.advance(60)
        assert world.tick().alerts_pending == 1
    assert len(world.dt.requests) == attempts, "sent to a robot DingTalk had blocked"
    world.advance(61)
    assert world.tick().alerts_sent == 1


@pytest.mark.parametrize(
    ("errcode", "errmsg"), [(310000, "sign not match"), (300001, "token is not exist")]
)
def test_robot_misconfiguration_is_reported_loudly_once_per_tick_and_alerts_wait(
    world: World, errcode: int, errmsg: str
) -> None:
    world.sx.add_instance(92583, status=5)
    world.sx.add_instance(92584, status=5)
    world.dt.fail_next(errcode, times=3, errmsg=errmsg)
    for _ in range(3):
        summary = world.tick()
        assert summary.alerts_pending == 2
        [problem] = [p for p in summary.problems if p.startswith("receiver ops")]
        assert str(errcode) in problem and errmsg in problem and "access_token=***" in problem
        world.advance(60)
    # One request per tick: a misconfigured robot is not hammered.
    assert len(world.dt.requests) == 3
    assert world.tick().alerts_sent == 2


def test_too_large_is_split_and_still_delivered(world: World) -> None:
    instances = failing_jobs(world, 8, first=8000)
    world.dt.fail_next(460101)
    summary = world.tick()
    assert summary.alerts_sent == 8 and summary.alerts_pending == 0
    assert listed_instances(world.texts()) == instances


def test_an_overlapping_tick_announces_nothing(world: World) -> None:
    """A tick that starts while another holds the lease (FC's async retry, a
    laptop `check`) stops before polling."""
    from schedulerx_alert.storage.session import StateSession
    from schedulerx_alert.storage.store import FileStateStore

    world.sx.add_instance(92583, status=5)
    holder = StateSession(
        FileStateStore(world.state_path.parent), "state.json", "slow-tick", 60, world.clock
    )
    holder.begin()
    overlapping = world.tick(owner="async-retry")
    assert overlapping.status == "skipped" and "slow-tick holds the state" in overlapping.notes[0]
    assert world.texts() == [] and world.sx.calls("GetJobInstanceList") == 0
    world.advance(61)  # the holder died: its lease expires with the function timeout
    assert world.tick().alerts_sent == 1
    saved = load_state(world.state_path.read_bytes())
    assert saved.lease_generation == 2


def test_a_message_refused_as_malformed_is_reshaped_and_delivered(world: World) -> None:
    world.sx.add_instance(92583, status=5, result="stack trace DingTalk dislikes")
    world.dt.fail_next(43004, errmsg="invalid markdown")
    summary = world.tick()
    assert (summary.alerts_sent, summary.alerts_pending) == (1, 0)
    [text] = world.texts()
    # Re-rendered with a shorter excerpt, then accepted.
    assert "92583" in text
