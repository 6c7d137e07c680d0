"""The daily heartbeat, as stories against the loopback servers: once a day at its time in
the configured zone, late but once when the function was down or the robot busy, and never
"all quiet" when the monitor itself was deaf."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from schedulerx_alert.core.heartbeat import HeartbeatRecord
from schedulerx_alert.core.state import STATE_VERSION, load_state
from schedulerx_alert.storage.session import StateSession
from tests.fakes.base import ManualClock
from tests.world import ROBOT, World

SHANGHAI = ZoneInfo("Asia/Shanghai")
DATA = Path(__file__).parent / "data"
HEARTBEAT = {"receiver": "ops", "at": "09:00"}


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> float:
    """A moment of November 2026 in Asia/Shanghai."""
    return datetime(2026, 11, day, hour, minute, second, tzinfo=SHANGHAI).timestamp()


def make_world(tmp_path: Path, start: float, jobs: tuple[int, ...] = (92583, 92584)) -> World:
    world = World(tmp_path, jobs=jobs, clock=ManualClock(start))
    world.raw["heartbeat"] = dict(HEARTBEAT)
    return world


@pytest.fixture
def morning(tmp_path: Path) -> Iterator[World]:
    """Deployed the evening before: the first heartbeat is due at 09:00 on the 26th."""
    with make_world(tmp_path, at(25, 20, 0)) as world:
        world.tick()
        yield world


def heartbeats(world: World, token: str = ROBOT) -> list[str]:
    return [t for t in world.texts(token) if "每日心跳" in t or "daily heartbeat" in t]


def tick_at(world: World, when: float, **changes: Any) -> Any:
    world.clock.set(when)
    return world.tick(**changes)


def ticks_every(world: World, start: float, end: float, step: float) -> None:
    """One tick every `step` seconds from `start`, up to but not including `end`."""
    when = start
    while when < end:
        tick_at(world, when)
        when += step


def test_a_heartbeat_at_nine_in_the_configured_zone_and_only_once_a_day(morning: World) -> None:
    world = morning
    ticks_every(world, at(26, 8, 0), at(26, 9, 0), 20 * 60)
    assert heartbeats(world) == [], "not before 09:00 Asia/Shanghai"
    first = tick_at(world, at(26, 9, 0, 5))
    [text] = heartbeats(world)
    assert text.startswith("### SchedulerX 每日心跳 2026-11-26")
    assert "heartbeat for 2026-11-26 sent to ops" in first.notes
    # A second tick inside the same minute, then the rest of the day: nothing more.
    second = tick_at(world, at(26, 9, 0, 40))
    assert second.status == "ok" and len(heartbeats(world)) == 1
    ticks_every(world, at(26, 9, 30), at(27, 9, 0), 3 * 3600)
    assert len(heartbeats(world)) == 1
    tick_at(world, at(27, 9, 0, 1))
    tick_at(world, at(27, 9, 0, 59))
    days = [t.partition("\n")[0] for t in heartbeats(world)]
    # Both days say the monitor was not listening all along: the first covers only the
    # hours since it was deployed, the second saw a tick only every three hours.
    assert days == [f"### SchedulerX 每日心跳 2026-11-{d}：监控本身有异常" for d in (26, 27)]


def test_the_time_of_day_is_read_in_the_configured_zone(tmp_path: Path) -> None:
    # 09:00 in Europe/Berlin is 16:00 in Asia/Shanghai.
    with make_world(tmp_path, at(26, 0, 0)) as world:
        world.raw["timezone"] = "Europe/Berlin"
        ticks_every(world, at(26, 0, 0), at(26, 16, 0), 3600)
        assert heartbeats(world) == []
        tick_at(world, at(26, 16, 0, 30))
        [text] = heartbeats(world)
        assert "2026-11-26" in text.partition("\n")[0] and "09:00（Europe/Berlin）" in text


def test_a_function_down_at_nine_sends_it_at_its_next_tick_and_says_it_was_down(
    tmp_path: Path,
) -> None:
    with make_world(tmp_path, at(25, 9, 30)) as world:
        # A whole day of ticks every half hour, then nothing from 08:30 to 11:17.
        ticks_every(world, at(25, 9, 30), at(26, 8, 31), 1800)
        assert heartbeats(world) == []
        late = tick_at(world, at(26, 11, 17))
        [text] = heartbeats(world)
        assert "heartbeat for 2026-11-26 sent to ops" in late.notes
        # Silence is not health: the hours without a tick are the first thing it says.
        assert text.startswith("### SchedulerX 每日心跳 2026-11-26：监控本身有异常")
        assert "**2 个小时**没有任何一次检查完成" in text
        assert "统计区间**：2026-11-25 11:00 至 2026-11-26 11:17" in text
        tick_at(world, at(26, 11, 18))
        tick_at(world, at(26, 23, 59))
        assert len(heartbeats(world)) == 1


def test_a_day_with_failures_lists_the_top_failing_jobs_and_recoveries(tmp_path: Path) -> None:
    jobs = (92583, 92584, 92585, 92586)
    with make_world(tmp_path, at(25, 8, 30), jobs) as world:
        world.raw["heartbeat"]["top_jobs"] = 2
        names = {92583: "orders-sync", 92584: "nightly [etl](https://evil.example) @13800000000"}
        world.raw["watch"][0]["jobs"] = [
            {"id": j, "name": names[j]} if j in names else j for j in jobs
        ]
        sx = world.sx
        tick_at(world, at(25, 8, 30))
        tick_at(world, at(25, 9, 0))  # the first heartbeat: half an hour counted
        runs = [
            (92583, 5),
            (92584, 5),
            (92585, 4),
            (92583, 5),
            (92584, 4),  # nightly recovers
            (92583, 5),
            (92586, 9),
            (92585, 4),
        ]
        when = at(25, 10, 0)
        for job, status in runs:
            world.clock.set(when)
            sx.add_instance(job, status=status, result="java.io.IOException: disk full")
            world.tick()
            tick_at(world, when + 3600)
            when += 2 * 3600
        ticks_every(world, when, at(26, 9, 0), 3600)
        tick_at(world, at(26, 9, 0, 10))
        text = heartbeats(world)[-1]
        assert "2026-11-26：监控运行正常" in text.partition("\n")[0]
        assert "**完成的运行**：8 次，其中失败 5 次，恢复 1 次" in text
        assert "1. **orders-sync (92583)**：失败 3 次" in text
        assert "另有 1 个任务" in text  # top_jobs: 2 of three failing jobs
        # The job's name is data: no link, no @-mention reaches the group.
        assert "2. **nightly ［etl］(hxxps://evil［.］example) ＠13800000000 (92584)**" in text
        assert "](https://" not in text and "@138" not in text
        assert "GetJobInstanceList" in text and "**检查次数**" in text


def test_a_degraded_day_says_so_where_a_healthy_day_says_all_is_well(tmp_path: Path) -> None:
    with make_world(tmp_path, at(25, 8, 0)) as world:
        ticks_every(world, at(25, 8, 0), at(26, 9, 0), 3600)
        tick_at(world, at(26, 9, 0, 5))
        healthy = heartbeats(world)[-1]
        assert "2026-11-26：监控运行正常" in healthy and "异常" not in healthy
        assert "正常 24，降级 0，失败 0" in healthy
        # The next day one job cannot be listed for three ticks: nothing failed that the
        # group heard of, but the heartbeat does not call the day quiet.
        world.sx.fail_next("5xx", times=100, job_id=92584)
        statuses = [tick_at(world, at(26, hour)).status for hour in (10, 11, 12)]
        assert statuses == ["degraded"] * 3
        world.sx.faults.clear()
        ticks_every(world, at(26, 13, 0), at(27, 9, 0), 3600)
        tick_at(world, at(27, 9, 0, 5))
        degraded = heartbeats(world)[-1]
        assert degraded.startswith("### SchedulerX 每日心跳 2026-11-27：监控本身有异常")
        assert "**过去 24 小时的安静不代表任务正常**" in degraded
        assert "**3 次检查降级**" in degraded
        assert "1 of 2 job(s) could not be listed" in degraded  # the last problem, quoted
        assert "**完成的运行**：0 次，其中失败 0 次" in degraded


def test_a_robot_at_its_rate_budget_at_nine_sends_it_next_tick_once(morning: World) -> None:
    world = morning
    world.raw["dingtalk"]["max_per_minute"] = 1
    tick_at(world, at(26, 8, 59))
    world.sx.add_instance(92583, status=5, result="boom")
    busy = tick_at(world, at(26, 9, 0, 1))
    assert busy.alerts_sent == 1 and heartbeats(world) == []
    assert any("heartbeat for 2026-11-26 not sent" in n for n in busy.notes)
    assert busy.status == "ok", "a digest a minute late is a note, not a problem"
    tick_at(world, at(26, 9, 1, 1))
    tick_at(world, at(26, 9, 2, 1))
    assert len(heartbeats(world)) == 1


def test_a_muted_robot_at_nine_gets_the_heartbeat_once_the_mute_is_over(morning: World) -> None:
    world = morning
    world.dt.fail_next(130101, token=ROBOT)
    muted = tick_at(world, at(26, 9, 0, 1))
    assert heartbeats(world) == [] and any("130101" in n for n in muted.notes)
    for minute in range(1, 10):
        tick_at(world, at(26, 9, minute, 1))
    assert heartbeats(world) == []
    tick_at(world, at(26, 9, 10, 2))
    tick_at(world, at(26, 9, 11, 2))
    assert len(heartbeats(world)) == 1


def test_a_heartbeat_owed_for_more_than_an_hour_is_a_problem(morning: World) -> None:
    world = morning
    world.dt.set_down()
    tick_at(world, at(26, 9, 0, 1))
    late = tick_at(world, at(26, 10, 0, 2))
    assert any("heartbeat for 2026-11-26 not sent" in p for p in late.problems)
    assert late.status == "degraded"


class Killed(BaseException):
    """FC's kill, between DingTalk's answer and the state write."""


def test_a_tick_that_dies_after_sending_it_does_not_make_the_next_send_it_again(
    morning: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = morning

    def die(self: StateSession, *args: Any, **kwargs: Any) -> None:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(StateSession, "commit", die)
        patch.setattr(StateSession, "release", lambda self: None)
        world.clock.set(at(26, 9, 0, 1))
        with pytest.raises(Killed):
            world.tick()
    assert len(heartbeats(world)) == 1
    # The dead tick's lease runs out; the next tick takes over and applies its journal.
    takeover = tick_at(world, at(26, 9, 2, 0))
    assert "heartbeat for 2026-11-26 was sent by a tick that did not commit" in takeover.notes
    tick_at(world, at(26, 9, 3, 0))
    assert len(heartbeats(world)) == 1


def test_a_version_3_state_carries_on_and_arms_the_heartbeat(tmp_path: Path) -> None:
    # tests/data/make_state_v3.py: three ticks from 10:00 on the 25th, a recovery last.
    with make_world(tmp_path, at(25, 10, 3)) as world:
        world.state_path.parent.mkdir(parents=True)
        shutil.copy(DATA / "state_v3.json", world.state_path)
        assert load_state(world.state_path.read_bytes()).heartbeat == HeartbeatRecord()
        first = world.tick()
        assert first.status == "ok" and first.alerts_new == 0 and world.texts() == []
        doc = json.loads(world.state_path.read_bytes())
        assert doc["version"] == STATE_VERSION == 7
        assert doc["heartbeat"]["sent_for"] == "2026-11-25"  # armed: next at 09:00 tomorrow
        tick_at(world, at(26, 9, 0, 3))
        [text] = heartbeats(world)
        assert "2026-11-26" in text.partition("\n")[0]


def test_a_bad_heartbeat_section_is_named_by_its_path(world: World) -> None:
    from schedulerx_alert.config import ConfigError

    world.raw["heartbeat"] = {"receiver": "nobody", "at": 1110, "top_jobs": 0, "lang": "en"}
    with pytest.raises(ConfigError) as caught:
        world.config()
    problems = caught.value.problems
    assert "heartbeat.receiver: unknown receiver 'nobody'" in problems
    assert any(p.startswith("heartbeat.at:") and "quote it" in p for p in problems)
    assert any(p.startswith("heartbeat.top_jobs:") for p in problems)
    assert "heartbeat.lang: unknown key" in problems
    world.raw["heartbeat"] = {"receiver": "ops", "at": "24:00"}
    with pytest.raises(ConfigError, match=r"heartbeat\.at"):
        world.config()
    world.raw["heartbeat"] = {"receiver": "ops", "at": "7:30"}
    settings = world.config().heartbeat
    assert settings is not None and settings.at == 7 * 60 + 30 and settings.top_jobs == 5


def test_the_next_mornings_heartbeat_lists_the_silences_and_what_they_held(
    tmp_path: Path,
) -> None:
    from schedulerx_alert.core.silence import Matcher
    from schedulerx_alert.storage.silence_book import SilenceBook
    from schedulerx_alert.storage.store import open_store

    def local(epoch: float) -> str:
        return datetime.fromtimestamp(epoch, SHANGHAI).strftime("%Y-%m-%d %H:%M")

    with make_world(tmp_path, at(25, 8, 0)) as world:
        ticks_every(world, at(25, 8, 0), at(26, 9, 0), 3600)
        tick_at(world, at(26, 9, 0, 5))
        quiet_day = heartbeats(world)[-1]
        # A day without silences says nothing of them.
        assert "静默" not in quiet_day and "**检查次数**" in quiet_day

        # The config's silence ends at noon, its digest goes out and empties the held
        # book; on-call's silence in the book beside the state lasts into tomorrow.
        world.raw["silences"] = [
            {
                "match": {"jobs": [92584]},
                "start": local(at(26, 10)),
                "end": local(at(26, 12)),
                "comment": "disk swap",
            }
        ]
        state = world.config().state
        book = SilenceBook(*open_store(state.url, state.endpoint, "cn-hangzhou", None))
        world.clock.set(at(26, 9, 30))
        why = "warehouse [migration](https://x.example)"
        book.add(
            Matcher(job_ids=frozenset({92583})), at(26, 10), at(27, 18), why, "alice", at(26, 9)
        )
        for hour in (10, 11, 14):
            world.clock.set(at(26, hour, 5))
            world.sx.add_instance(92583, status=5, end_time=world.clock() - 5, result="boom")
            if hour == 11:
                world.sx.add_instance(92584, status=5, end_time=world.clock() - 5, result="x")
            assert world.tick().alerts_silenced == (2 if hour == 11 else 1)
        ticks_every(world, at(26, 15, 0), at(27, 9, 0), 3600)
        digests = [t for t in world.texts() if "静默期间暂缓" in t]
        assert len(digests) == 1 and "92584" in digests[0], "the noon silence was digested"
        assert load_state(world.state_path.read_bytes()).silenced["ops"][0].count == 3

        tick_at(world, at(27, 9, 0, 5))
        day = heartbeats(world)[-1]
        assert "- **静默**：1 条生效中，24 小时内拦截告警 4 条" in day
        assert "**生效中的静默**" in day
        [listed] = [line for line in day.splitlines() if line.startswith("- job=92583")]
        assert "至 2026-11-27 18:00，24 小时内拦截 3 条，alice 设置" in listed
        # A comment is data: no link reaches the group.
        assert "](https://" not in listed and "migration" in listed

        # In English the same: the silence still in force, and nothing about silences
        # once a day has passed without any.
        world.raw["templates"] = {"language": "en"}
        ticks_every(world, at(27, 10, 0), at(28, 9, 0), 3600)
        tick_at(world, at(28, 9, 0, 5))
        english = heartbeats(world)[-1]
        assert "- **Silences**: 0 active; 0 alert(s)" not in english
        assert "Silences" not in english and "held back" not in english


def test_held_counts_sit_beside_the_hours_so_a_released_version_4_reader_still_reads_them() -> None:
    from schedulerx_alert.core import heartbeat_codec
    from schedulerx_alert.core.heartbeat import HOLDERS_PER_HOUR, TickCounts, observe

    now = at(26, 10, 5)
    holders = {f"oss:{i}": i + 1 for i in range(HOLDERS_PER_HOUR + 2)}
    record = observe(HeartbeatRecord(), TickCounts(runs=1, held=holders), now)
    raw = heartbeat_codec.encode(record)
    # Version 4 as released refuses an hour with a field it does not know.
    known = {"h", "runs", "fail", "rec", "ok", "deg", "bad", "unnamed", "calls", "jobs"}
    assert all(set(hour) <= known for hour in raw["hours"])
    [held] = raw["held"]
    assert held["n"] == sum(holders.values()) and len(held["by"]) == HOLDERS_PER_HOUR
    assert "oss:0" not in held["by"], "the least holding are counted, not named"
    assert heartbeat_codec.decode(json.loads(json.dumps(raw))) == record
    del raw["held"]
    assert heartbeat_codec.decode(raw).hours[0].held == 0, "an absent count is zero"
