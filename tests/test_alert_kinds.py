"""Each alert kind as a story over several ticks: SchedulerX, DingTalk and the state on
loopback, the clock moved by hand, the rule options written in the watch entry.

What the group sees is checked in its own words (the default language, zh-CN), one
message per list item.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from schedulerx_alert.core.catalog import JobInfo
from schedulerx_alert.core.model import InstanceStatus, JobKey, TriggerType
from schedulerx_alert.core.rules import JobRuleState
from schedulerx_alert.core.state import STATE_VERSION, dump_state, load_journal, load_state
from tests.builders import SHANGHAI
from tests.fakes.base import ManualClock
from tests.world import GROUP, NS, World

MINUTE = 60.0
FAILED, SUCCESS, RUNNING = InstanceStatus.FAILED, InstanceStatus.SUCCESS, InstanceStatus.RUNNING


def heading(text: str) -> str:
    return text.partition("\n")[0]


def headings(world: World) -> list[str]:
    return [heading(t) for t in world.texts()]


def rules(world: World, **options: object) -> None:
    world.raw["watch"][0].update(options)


def at(hour: int, minute: int, day: int = 26) -> float:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI).timestamp()


# -- recovery ----------------------------------------------------------------------------


def test_job_92583_fails_twice_then_recovers(world: World) -> None:
    world.sx.add_instance(92583, status=FAILED, result="disk full")
    world.tick()
    world.advance(10 * MINUTE)
    world.sx.add_instance(92583, status=FAILED, result="disk full")
    world.tick()
    world.advance(10 * MINUTE)
    world.sx.add_instance(92583, status=SUCCESS)
    world.tick()
    for _ in range(3):
        world.advance(MINUTE)
        assert world.tick().alerts_new == 0

    failed, again, recovered = world.texts()
    assert heading(failed) == heading(again) == "### SchedulerX 任务失败：92583"
    assert "连续失败" not in failed
    assert "- **连续失败**：2 次（自 2026-11-25 10:00:00 起）" in again
    assert heading(recovered) == "### SchedulerX 任务已恢复：92583"
    assert "- **故障持续**：20 分钟（自 2026-11-25 10:00:00 起）" in recovered
    assert "- **失败次数**：2" in recovered


def test_recovery_false_keeps_the_group_to_failures(world: World) -> None:
    rules(world, recovery=False)
    world.sx.add_instance(92583, status=FAILED)
    world.tick()
    world.advance(MINUTE)
    world.sx.add_instance(92583, status=SUCCESS)
    world.tick()
    assert headings(world) == ["### SchedulerX 任务失败：92583"]


# -- consecutive failures ------------------------------------------------------------------


def test_threshold_3_announces_the_third_failure_in_a_row_and_its_recovery(
    world: World,
) -> None:
    rules(world, consecutive_failures=3)
    for status in (FAILED, FAILED, SUCCESS, FAILED, FAILED):
        world.sx.add_instance(92583, status=status)
        world.tick()
        world.advance(5 * MINUTE)
    assert world.texts() == [], "two in a row, a success, two in a row: below the threshold"

    world.sx.add_instance(92583, status=FAILED, result="timeout")
    world.tick()
    world.advance(5 * MINUTE)
    world.sx.add_instance(92583, status=SUCCESS)
    world.tick()

    third, recovered = world.texts()
    assert "- **连续失败**：3 次（自 2026-11-25 10:15:00 起）" in third and "timeout" in third
    assert heading(recovered) == "### SchedulerX 任务已恢复：92583"
    assert "- **失败次数**：3" in recovered and "- **故障持续**：15 分钟" in recovered


# -- stuck runs -----------------------------------------------------------------------------


def test_a_run_stuck_47_minutes_is_announced_once_then_its_failure(world: World) -> None:
    rules(world, stuck_after="30m")
    run = world.sx.add_instance(92583, status=RUNNING)
    for minutes in (0, 29, 2, 1, 10):
        world.advance(minutes * MINUTE)
        world.tick()
    world.advance(5 * MINUTE)
    world.sx.set_status(run, FAILED, result="killed by the OOM killer")
    world.tick()

    stuck, failed = world.texts()
    assert heading(stuck) == "### SchedulerX 任务卡住：92583"
    assert f"- **实例**：{run}（运行中，定时调度）" in stuck
    assert "- **已运行**：31 分钟，超过 30 分钟" in stuck
    assert heading(failed) == "### SchedulerX 任务失败：92583"
    assert "（耗时 47m00s）" in failed and "OOM killer" in failed


def test_without_stuck_after_a_run_is_stuck_after_the_jobs_own_timeout(world: World) -> None:
    """The default of `stuck_after` is the job's Timeout when its TimeoutEnable is on;
    a job the catalog does not know, or whose timeout alarm is off, is never stuck."""
    on = JobKey(NS, GROUP, 92583)
    off = JobKey(NS, GROUP, 92584)
    world.catalog[on] = JobInfo(on, "job-92583", timeout_enabled=True, timeout_seconds=1200)
    world.catalog[off] = JobInfo(off, "job-92584", timeout_enabled=False, timeout_seconds=60)
    stuck = world.sx.add_instance(92583, status=RUNNING)
    world.sx.add_instance(92584, status=RUNNING)
    world.tick()
    world.advance(19 * MINUTE)
    world.tick()
    assert world.texts() == []
    world.advance(2 * MINUTE)
    world.tick()
    [text] = world.texts()
    assert f"- **实例**：{stuck}（运行中" in text and "- **已运行**：21 分钟，超过 20 分钟" in text


# -- missed runs ----------------------------------------------------------------------------


def nightly(world: World, job_id: int = 92584) -> JobKey:
    """Job 92584 runs every night at 02:00, Asia/Shanghai (its TimeConfig)."""
    key = JobKey(NS, GROUP, job_id)
    world.catalog[key] = JobInfo(key, "nightly-etl", time_type=1, time_expression="0 0 2 * * ?")
    world.raw["watch"][0]["jobs"] = [92583, {"id": job_id, "name": "nightly-etl"}]
    return key


def test_the_nightly_02_00_run_that_never_came_is_announced_after_the_grace(
    world: World,
) -> None:
    nightly(world)
    rules(world, missed_grace="10m")
    world.tick()  # 2026-11-25 10:00
    # The night's ticks: the run is due at 02:00 and may come until 02:10.
    for minute in (0, 5, 9):
        world.clock.set(at(2, minute))
        world.tick()
    assert world.texts() == []
    world.clock.set(at(2, 11))
    world.tick()
    world.clock.set(at(2, 12))
    world.tick()

    [missed] = world.texts()
    assert heading(missed) == "### SchedulerX 任务未按时运行：nightly-etl (92584)"
    assert "- **应运行于**：2026-11-26 02:00（Asia/Shanghai），10 分钟内没有运行" in missed

    # The next night it runs, a little late: nothing to say.
    world.clock.set(at(2, 3, day=27))
    world.sx.add_instance(92584, status=SUCCESS, schedule_time=at(2, 0, day=27))
    world.tick()
    world.clock.set(at(2, 30, day=27))
    world.tick()
    assert len(world.texts()) == 1


def test_without_a_catalog_or_missed_grace_nothing_is_called_missed(world: World) -> None:
    world.tick()
    world.clock.set(at(3, 0))
    world.tick()
    nightly(world)  # the schedule is known now, but missed_grace is off by default
    world.clock.set(at(3, 0, day=27))
    world.tick()
    assert world.texts() == []


# -- trigger filter -------------------------------------------------------------------------


def test_a_manual_rerun_that_fails_is_ignored_with_trigger_types(world: World) -> None:
    rules(world, trigger_types=["scheduled", "system_retry"])
    world.sx.add_instance(92583, status=FAILED, trigger_type=TriggerType.MANUAL_RERUN)
    world.tick()
    world.advance(MINUTE)
    world.sx.add_instance(92583, status=FAILED, trigger_type=TriggerType.API)
    world.tick()
    assert world.texts() == []
    world.advance(MINUTE)
    world.sx.add_instance(92583, status=FAILED, trigger_type=TriggerType.SCHEDULED)
    world.tick()
    [text] = world.texts()
    assert "（失败，定时调度）" in text


# -- flapping -------------------------------------------------------------------------------


def test_a_flapping_job_gets_one_message_then_one_when_it_settles(world: World) -> None:
    rules(world, flap_window="1h", flap_changes=4)
    for status in (FAILED, SUCCESS, FAILED, SUCCESS, FAILED, SUCCESS, FAILED):
        world.sx.add_instance(92583, status=status)
        world.tick()
        world.advance(5 * MINUTE)
    for _ in range(12):  # an hour without a change
        world.tick()
        world.advance(5 * MINUTE)
    world.sx.add_instance(92583, status=SUCCESS)
    world.tick()

    assert headings(world) == [
        "### SchedulerX 任务失败：92583",
        "### SchedulerX 任务已恢复：92583",
        "### SchedulerX 任务失败：92583",
        "### SchedulerX 任务已恢复：92583",
        # The fourth change in the hour; the three after it are held back.
        "### SchedulerX 任务状态反复：92583",
        "### SchedulerX 任务已稳定：92583，持续失败",
        # The settled message said it is failing: its success is a recovery.
        "### SchedulerX 任务已恢复：92583",
    ]
    flapping = world.texts()[4]
    assert (
        "- **切换次数**：1 小时内在失败与成功之间切换 4 次（自 2026-11-25 10:05:00 起）" in flapping
    )


# -- one message for a shared cause ----------------------------------------------------------


def test_12_jobs_losing_the_same_database_make_one_message(tmp_path: Path) -> None:
    jobs = tuple(range(92583, 92596))
    with World(tmp_path, jobs=jobs) as world:
        world.raw["watch"][0]["jobs"] = [{"id": 92583, "name": "orders-sync"}, *jobs[1:]]
        runs = [
            world.sx.add_instance(
                job_id,
                status=FAILED,
                result=f"java.sql.SQLException: Connection refused 10.0.0.5:3306 (trace {n}a7f3e)",
            )
            for n, job_id in enumerate(jobs[:12])
        ]
        world.sx.add_instance(jobs[12], status=FAILED, result="NullPointerException")
        summary = world.tick()

        # Thirteen failures, two messages: the shared cause and the one of its own.
        assert (summary.alerts_new, summary.messages) == (2, 2)
        shared, own = world.texts()
        assert heading(shared) == "### SchedulerX：12 个任务因同一错误失败"
        assert "- **实例数**：12" in shared
        for job_id, run in zip(jobs, runs, strict=False):
            # Thirteen ids are read by group; the group's job list names the others.
            label = "orders-sync (92583)" if job_id == 92583 else f"job-{job_id} ({job_id})"
            assert f"- **{label}** 实例 {run} 失败" in shared
        assert "Connection refused 10.0.0.5:3306 (trace 0a7f3e)" in shared
        assert heading(own) == "### SchedulerX 任务失败：job-92595 (92595)"
        assert "NullPointerException" in own


def test_shared_cause_false_sends_each_failure_on_its_own(tmp_path: Path) -> None:
    jobs = (92583, 92584, 92585, 92586)
    with World(tmp_path, jobs=jobs) as world:
        world.raw["shared_cause"] = False
        for job_id in jobs:
            world.sx.add_instance(job_id, status=FAILED, result="Connection refused 10.0.0.5:3306")
        summary = world.tick()
        assert summary.alerts_new == 4
        [text] = world.texts()  # more than summary_threshold (3): one summary of four
        assert heading(text) == "### SchedulerX：4 个任务实例异常"


# -- a deployed version 2 carries on ---------------------------------------------------------

DATA = Path(__file__).parent / "data"


def replay_v2_world(root: Path) -> tuple[World, dict[str, Any]]:
    """What version 2's ticks left (tests/data/make_state_v2.py): the state, the journal
    and lease of a tick that died after "ops" accepted its message, and the world around
    them, with "dba"'s robot working now."""
    story: dict[str, Any] = json.loads((DATA / "world_v2.json").read_text(encoding="utf-8"))
    world = World(root, jobs=tuple(story["jobs"]), clock=ManualClock(story["now"]))
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
    shutil.copytree(DATA / "state_v2", world.state_path.parent)
    return world, story


def test_a_version_2_state_carries_on_mid_story_without_announcing_anything_again(
    tmp_path: Path,
) -> None:
    world, story = replay_v2_world(tmp_path)
    with world:
        assert load_state((DATA / "state_v2" / "state.json").read_bytes()).jobs
        world.advance(120)  # the dead tick's lease has expired
        first = world.tick()

        # "ops" heard every failure under version 2, the dead tick's 92585 included
        # (its journal says so): now only that alerting works again.
        assert "took over from tick tick, whose lease 5 expired" in first.notes
        [notice] = world.texts()
        assert "告警功能已恢复" in notice
        # "dba" gets what version 2 owed it, and the dead tick's failure, once.
        [owed] = world.texts(story["dba_token"])
        assert [int(i) for i in re.findall(r"实例 (\d+)", owed)] == [
            1700000000001,
            1700000000004,
            1700000000005,
            1700000000007,
        ]

        # Job 92583 failed twice under version 2 and was never seen to succeed: its
        # success now is a recovery, announced once, to both receivers.
        world.advance(60)
        world.sx.add_instance(92583, status=SUCCESS)
        world.sx.add_instance(92584, status=SUCCESS)
        world.tick()
        for _ in range(3):
            world.advance(60)
            assert world.tick().alerts_new == 0
        ops = world.texts()[1:]
        dba = world.texts(story["dba_token"])[1:]
        assert [heading(t) for t in ops] == ["### SchedulerX 任务已恢复：92583"]
        assert [heading(t) for t in dba] == ["### SchedulerX 任务已恢复：92583"]
        # Version 2 kept no start for the streak: how many runs, not for how long.
        assert "- **失败次数**：2" in ops[0] and "故障持续" not in ops[0]

        saved = load_state(world.state_path.read_bytes())
        assert saved.outbox == () and saved.delivered == {}
        assert json.loads(world.state_path.read_bytes())["version"] == STATE_VERSION


def test_a_version_2_document_reads_as_version_3_would_have_written_it() -> None:
    state = load_state((DATA / "state_v2" / "state.json").read_bytes())
    disk, rejected, history = (JobKey(NS, GROUP, job_id) for job_id in (92583, 92584, 92585))
    # Two announced failures and no success since: an announced streak of two.
    assert state.jobs[disk].rules == JobRuleState(
        streak=2,
        announced=True,
        last_failure=f"failed:{disk.encode()}:1700000000004:2026-11-25 03:01:00",
        last_outcome="fail",
    )
    # Rejected, then a success: nothing open.
    assert state.jobs[rejected].rules == JobRuleState(last_outcome="ok")
    # A failure recorded as history cannot be told from an announced one.
    assert state.jobs[history].rules.announced
    # The alerts version 2 owed "dba" keep their runs and get the failure rule's fingerprints.
    assert [(a.receiver, a.kind, a.fingerprint) for a in state.outbox] == [
        ("dba", "failed", f"failed:{disk.encode()}:1700000000001:2026-11-25 03:00:00"),
        ("dba", "failed", f"failed:{disk.encode()}:1700000000004:2026-11-25 03:01:00"),
        ("dba", "rejected", f"rejected:{rejected.encode()}:1700000000005:2026-11-25 03:01:00"),
    ]
    assert [(a.attempts, bool(a.last_error)) for a in state.outbox] == [
        (4, True),
        (0, False),
        (0, False),
    ]
    # The dead tick's journal names its delivery as version 3 keys it.
    [journal] = (DATA / "state_v2").glob("state.json.sent.*")
    assert load_journal(journal.read_bytes()).delivered == (
        f"ops:failed:{history.encode()}:1700000000007:2026-11-25 03:04:00",
    )
    assert load_state(dump_state(state)) == state
