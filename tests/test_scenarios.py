"""Stories of one or more ticks against the loopback SchedulerX, DingTalk and OSS."""

from __future__ import annotations

import json

from schedulerx_alert.core.state import STATE_VERSION, load_state
from tests.world import GROUP, NS, START, World


def test_job_92583_fails_and_the_group_hears_it_once(world: World) -> None:
    world.sx.add_instance(92583, status=5, result="java.lang.IllegalStateException: disk full")
    first = world.tick()
    assert (first.status, first.polled, first.alerts_new, first.alerts_sent) == ("ok", 2, 1, 1)
    [text] = world.texts()
    assert "job-92583" not in text  # the config gave no name: the id stands alone
    assert "92583" in text and "disk full" in text and "失败" in text
    assert GROUP in text and NS in text
    for _ in range(3):
        world.advance(60)
        again = world.tick()
        assert (again.alerts_new, again.alerts_sent, again.alerts_pending) == (0, 0, 0)
    assert len(world.texts()) == 1


def test_first_run_announces_only_recent_failures(world: World) -> None:
    world.sx.add_instance(92583, status=5, end_time=START - 3600, schedule_time=START - 3700)
    world.sx.add_instance(92583, status=5, end_time=START - 120, schedule_time=START - 180)
    summary = world.tick()
    assert (summary.alerts_new, summary.history) == (1, 1)
    assert len(world.texts()) == 1


def test_a_run_seen_running_is_announced_when_it_fails(world: World) -> None:
    run = world.sx.add_instance(92584, status=3)
    assert world.tick().alerts_new == 0
    world.advance(60)
    world.sx.set_status(run, 5, result="exit code 137")
    world.advance(60)
    summary = world.tick()
    assert summary.alerts_sent == 1
    [text] = world.texts()
    assert str(run) in text and "exit code 137" in text and "耗时" in text


def test_rejected_runs_are_announced_and_successes_are_not(world: World) -> None:
    world.sx.add_instance(92583, status=9, result="no worker available")
    world.sx.add_instance(92584, status=4)
    world.tick()
    [text] = world.texts()
    assert "被拒绝" in text and "no worker available" in text


def test_a_job_in_the_wrong_group_is_reported_and_the_healthy_job_still_alerts(
    world: World,
) -> None:
    world.sx.add_job(NS, "otherGroup", 777, name="misplaced")
    world.raw["watch"].append(
        {"namespace": NS, "group": GROUP, "jobs": [777], "receivers": ["ops"]}
    )
    world.sx.add_instance(92583, status=5)
    summary = world.tick()
    assert summary.alerts_sent == 1 and summary.polled == 2
    assert summary.status == "degraded"
    [error] = summary.errors
    assert error["job"] == f"{NS}/{GROUP}/777"
    assert "not match" in error["error"] and "Success=false" in error["error"]


def test_throttling_is_retried_within_the_tick(world: World) -> None:
    world.sx.fail_next("throttle", times=2, action="GetJobInstanceList", job_id=92583)
    world.sx.add_instance(92583, status=5)
    summary = world.tick()
    assert (summary.polled, summary.errors, summary.alerts_sent) == (2, [], 1)
    assert summary.api_calls == 4


def test_dingtalk_down_for_a_tick_delivers_later_exactly_once(world: World) -> None:
    world.sx.add_instance(92583, status=5)
    world.dt.set_down(True)
    down = world.tick()
    assert (down.alerts_new, down.alerts_sent, down.alerts_pending) == (1, 0, 1)
    saved = load_state(world.state_path.read_bytes())
    assert [a.instances[0].job.job_id for a in saved.outbox] == [92583]
    world.dt.set_down(False)
    world.advance(60)
    up = world.tick()
    assert (up.alerts_new, up.alerts_sent, up.alerts_pending) == (0, 1, 0)
    world.advance(60)
    world.tick()
    assert len(world.texts()) == 1


def test_corrupt_state_is_kept_aside_and_alerting_goes_on(world: World) -> None:
    world.state_path.parent.mkdir(parents=True)
    world.state_path.write_bytes(b'{"version": 1, "jobs": ')
    world.sx.add_instance(92583, status=5)
    summary = world.tick()
    assert summary.alerts_sent == 1
    assert any("corrupt" in note for note in summary.notes)
    kept = list(world.state_path.parent.glob("state.json.corrupt-*"))
    assert [p.read_bytes() for p in kept] == [b'{"version": 1, "jobs": ']
    assert load_state(world.state_path.read_bytes()).jobs


def test_state_in_oss_survives_ticks_and_leaves_no_lease_behind(oss_world: World) -> None:
    assert oss_world.oss is not None
    oss_world.sx.add_instance(92583, status=5)
    assert oss_world.tick().alerts_sent == 1
    oss_world.advance(60)
    assert oss_world.tick().alerts_sent == 0
    keys = sorted(oss_world.oss.objects_in("alert-bucket"))
    assert keys == ["schedulerx-alert/state.json"]
    doc = json.loads(oss_world.oss.objects_in("alert-bucket")[keys[0]])
    assert doc["version"] == STATE_VERSION and doc["lease_generation"] == 2
    assert len(oss_world.texts()) == 1


def test_dry_run_previews_and_changes_nothing(world: World) -> None:
    world.sx.add_instance(92583, status=5, result="boom")
    summary = world.tick(dry_run=True)
    assert [p["receiver"] for p in summary.preview] == ["ops"]
    assert "boom" in summary.preview[0]["text"]
    assert world.texts() == [] and not world.state_path.exists()


def test_a_hundred_jobs_polled_one_by_one_stay_under_the_quota_and_none_is_starved(
    tmp_path: object,
) -> None:
    from pathlib import Path

    jobs = tuple(range(1000, 1100))
    with World(Path(str(tmp_path)), jobs=jobs) as world:
        # The loop of old: every job its own call, every tick.
        world.raw["schedulerx"] = {"endpoint": world.sx.url, "query": "every_job"}
        world.sx.add_instance(1099, status=5)
        first = world.tick()
        # 90 calls a minute by default leaves room for people using the console.
        assert (first.polled, first.deferred) == (90, 10)
        world.advance(30)
        second = world.tick()
        # Half a minute later the window is still full: nothing more is called.
        assert second.api_calls == 0 and second.deferred == 100
        world.advance(31)
        third = world.tick()
        assert third.polled == 90
        assert world.sx.max_calls_in_any_minute("GetJobInstanceList") <= 90
        # The ten deferred jobs went first in the third tick: all 100 were polled.
        state = load_state(world.state_path.read_bytes())
        assert all(record.polled_at for record in state.jobs.values())
        assert len(state.jobs) == 100
        # One alert; and, every tick having left jobs unpolled, the group is told.
        alert, impaired = world.texts()
        assert "1099" in alert and "max_calls_per_minute" in impaired


def test_a_hundred_listed_jobs_are_read_by_group_and_the_last_one_alerts_in_the_first_tick(
    tmp_path: object,
) -> None:
    from pathlib import Path

    jobs = tuple(range(1000, 1100))
    with World(Path(str(tmp_path)), jobs=jobs) as world:
        world.sx.add_instance(1099, status=5, result="disk full")
        first = world.tick()
        assert (first.status, first.polled, first.deferred, first.alerts_sent) == (
            "ok",
            100,
            0,
            1,
        )
        # A handful of calls for the whole group, not one per job.
        assert first.api_calls <= 8
        [alert] = world.texts()
        assert "1099" in alert and "disk full" in alert
        for _ in range(5):
            world.advance(60)
            again = world.tick()
            assert (again.status, again.alerts_new) == ("ok", 0)
        assert world.sx.max_calls_in_any_minute("GetJobInstanceList") <= 8
