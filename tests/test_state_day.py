"""The state a tick rewrites does not grow with the day (issue 22).

A job's records of its successes are let go half an hour after SchedulerX last listed
them (its newest ten are kept, what its own listing shows); the rules remember when the
job's latest outcome ended, so a success listed again after its record went, or listed
late, ends no streak and flips no outcome: no false "recovered", no false "flapping".
The stories run the real tick against the loopback SchedulerX and DingTalk, a tick a
minute as FC's timer runs it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pytest

from schedulerx_alert.core.diff import KEPT_NEWEST, SETTLED_SECONDS, Target
from schedulerx_alert.core.model import JobInstance, JobKey
from schedulerx_alert.core.rules import JobRuleState
from schedulerx_alert.core.state import STATE_VERSION, JobRecord, load_state
from schedulerx_alert.delivery.heartbeat import tick_counts
from schedulerx_alert.sources.plan import END_OVERLAP, OVERLAP
from tests.world import GROUP, NS, START, World

JOB = 92583
DATA = Path(__file__).parent / "data"
MINUTE = 60.0
HOUR = 3600.0
SUCCESS, FAILED = 4, 5
Mode = Literal["ids", "group", "per_job"]
MODES: tuple[Mode, ...] = ("ids", "group", "per_job")
# What a job that succeeds every minute keeps: the runs a window lists (or its own
# listing's ten), the ones unlisted for less than SETTLED_SECONDS, and a minute or two of
# slack for the tick a run ends in. Main kept 200 unlisted ones for a day.
BOUND = KEPT_NEWEST + int((SETTLED_SECONDS + OVERLAP) / MINUTE) + 3


@contextmanager
def estate(tmp_path: Path, mode: Mode, **options: Any) -> Iterator[World]:
    """Job 92583 fires every minute. "ids": watched by id, its own listing every tick;
    "group": `jobs: all`, read by group queries; "per_job": `jobs: all` on a server that
    answers no group query, so the group falls back to polls job by job. `options` go
    into the watch entry."""
    with World(tmp_path, jobs=()) as w:
        w.sx.add_job(NS, GROUP, JOB, name="every-minute", time_expression="0 * * * * ?")
        w.raw["watch"][0]["jobs"] = [JOB] if mode == "ids" else "all"
        w.raw["watch"][0].update(options)
        if mode == "per_job":
            w.sx.configure(legacy="missing_param")
        yield w


def run(world: World, status: int = SUCCESS, *, ended_ago: float = 5.0) -> int:
    """A run of the job that fired half a minute ago and ended `ended_ago` seconds ago."""
    now = world.clock()
    return world.sx.add_instance(
        JOB,
        status=status,
        result="java.io.IOException: disk full" if status == FAILED else "",
        schedule_time=now - 30,
        start_time=now - 30,
        end_time=now - ended_ago,
    )


def tick(world: World) -> list[str]:
    """One tick; the first line of each message it sent."""
    before = len(world.texts())
    summary = world.tick()
    assert summary.status == "ok", summary.problems
    return [text.partition("\n")[0] for text in world.texts()[before:]]


def minute(world: World) -> None:
    world.advance(MINUTE)
    # SchedulerX keeps a limited history too; the fake stays small over hours.
    world.sx.forget_instances(world.clock() - HOUR)


def records(world: World) -> dict[int, Any]:
    state = load_state(world.state_path.read_bytes())
    return {
        iid: record
        for key, job in state.jobs.items()
        if key.job_id == JOB
        for iid, record in job.instances.items()
    }


def succeed_for(world: World, hours: float) -> list[int]:
    """A success a minute, a tick a minute; the record count at each hour's end."""
    counts: list[int] = []
    for n in range(int(hours * 60)):
        run(world)
        assert tick(world) == []
        if (n + 1) % 60 == 0:
            counts.append(len(records(world)))
        minute(world)
    return counts


def fail_then_list_the_first_success_again(world: World) -> int:
    """Four hours of a success a minute, then a failure (announced), then a flaky listing
    that shows the job's first success again, its record long let go (main too let it go,
    200 runs later): that tick announces nothing. Returns the success's id; the listing
    stays flaky until `world.sx.rewrite_answers(JOB, None)`."""
    details = capture_details(world)
    succeed_for(world, 4)
    oldest = min(details)
    assert oldest not in records(world)
    run(world, FAILED)
    assert kinds(tick(world)) == ["failed"]
    minute(world)
    world.sx.rewrite_answers(JOB, adding(details[oldest]))
    assert kinds(tick(world)) == []  # main: ["recovered"] where recovery is on
    return oldest


def recovers_once(world: World) -> None:
    """The next real success is the recovery, and the one after it is nothing."""
    minute(world)
    run(world)
    assert kinds(tick(world)) == ["recovered"]
    minute(world)
    run(world)
    assert kinds(tick(world)) == []


@pytest.mark.parametrize("mode", MODES)
def test_a_job_that_succeeds_every_minute_keeps_a_bounded_number_of_records(
    tmp_path: Path, mode: Mode
) -> None:
    with estate(tmp_path, mode) as world:
        counts = succeed_for(world, 3)
    # Main: 61, 121, 181 (200 unlisted for a day, and the listed ones).
    assert max(counts) <= BOUND, counts
    assert counts[1:] == [counts[1]] * 2, f"still growing after the first hour: {counts}"


@pytest.mark.parametrize("mode", ["ids", "per_job"])
def test_a_success_listed_again_after_its_record_went_is_no_recovery(
    tmp_path: Path, mode: Mode
) -> None:
    """The failure is announced; a flaky listing then shows the job's first success again
    (four hours old, its record let go: main too let it go, 200 runs later); only the
    next real success is a recovery."""
    with estate(tmp_path, mode) as world:
        fail_then_list_the_first_success_again(world)
        world.sx.rewrite_answers(JOB, None)
        recovers_once(world)


@pytest.mark.parametrize("mode", MODES)
def test_a_success_listed_late_after_a_newer_failure_is_no_recovery(
    tmp_path: Path, mode: Mode
) -> None:
    """A run that ended at 10:02:45 is first listed at 10:03, after the failure that ended
    at 10:02:55 was announced: the job's latest outcome is still the failure."""
    with estate(tmp_path, mode) as world:
        for _ in range(2):
            run(world)
            assert kinds(tick(world)) == []
            minute(world)
        run(world, FAILED)
        assert kinds(tick(world)) == ["failed"]
        minute(world)
        now = world.clock()
        world.sx.add_instance(
            JOB,
            status=SUCCESS,
            schedule_time=now - MINUTE - 40,
            start_time=now - MINUTE - 40,
            end_time=now - MINUTE - 15,
        )
        assert kinds(tick(world)) == []  # main: ["recovered"]
        recovers_once(world)


def test_a_success_listed_again_starts_no_flapping(tmp_path: Path) -> None:
    """Three changes of outcome in six hours are flapping (recoveries off, so that only
    the flap rule speaks). Failure, the four-hour-old first success listed again,
    failure: one change, not three."""
    options = {"flap_window": "6h", "flap_changes": 3, "recovery": False}
    with estate(tmp_path, "ids", **options) as world:
        fail_then_list_the_first_success_again(world)
        minute(world)
        run(world, FAILED)
        assert kinds(tick(world)) == ["failed"]  # main: ["flapping"]
        world.sx.rewrite_answers(JOB, None)
        for _ in range(3):
            minute(world)
            run(world)
            assert kinds(tick(world)) == []
        memory = load_state(world.state_path.read_bytes()).jobs
        [rules] = [job.rules for key, job in memory.items() if key.job_id == JOB]
        assert rules.flapping_since is None and len(rules.changes) == 2


def test_a_version_6_state_keeps_its_successes_until_the_jobs_next_outcome(
    tmp_path: Path,
) -> None:
    """tests/data/make_state_v6.py: 45 successes, 10:00 to 10:44, without the memory of
    when the latest ended. Until the job's next outcome sets it, a success let go could
    not be told from a new one: nothing is let go."""
    with World(tmp_path, jobs=(JOB,)) as world:
        world.state_path.parent.mkdir(parents=True)
        shutil.copy(DATA / "state_v6.json", world.state_path)
        world.clock.set(START + 90 * MINUTE)  # every record unlisted for over half an hour
        assert tick(world) == []
        assert json.loads(world.state_path.read_bytes())["version"] == STATE_VERSION == 7
        kept = records(world)
        assert len(kept) == 45
        # The fresh loopback SchedulerX would number its runs as the fixture's again.
        now = world.clock()
        new = world.sx.add_instance(JOB, max(kept) + 1, SUCCESS, end_time=now - 5)
        assert tick(world) == []
        assert sorted(records(world)) == [*sorted(kept)[-KEPT_NEWEST + 1 :], new]


def test_the_heartbeat_counts_a_success_listed_again_once(tmp_path: Path) -> None:
    """Four hours of a success a minute, a failure, the first success listed again: the
    next morning's heartbeat counts 241 finished runs, one failed (recoveries off, so that
    only the count speaks)."""
    with estate(tmp_path, "ids", recovery=False) as world:
        world.raw["heartbeat"] = {"receiver": "ops", "at": "09:00"}
        fail_then_list_the_first_success_again(world)
        world.sx.rewrite_answers(JOB, None)
        world.clock.set(START + 23 * HOUR + 10)  # 09:00:10 the next morning
        [heartbeat] = tick(world)
        text = world.texts()[-1]
        assert "心跳" in heartbeat
        assert "**完成的运行**：241 次，其中失败 1 次" in text, text  # main: 242


def test_the_heartbeat_does_not_count_again_the_latest_success_listed_again() -> None:
    """A group query's job: its success at 10:00 (the latest outcome) was let go at 10:31;
    a window read again at 11:00 lists it: not a run finished this tick."""
    job = JobKey(NS, GROUP, JOB)
    ended = datetime.fromtimestamp(START, ZoneInfo("Asia/Shanghai"))
    success = JobInstance(job, 1_700_000_000_001, SUCCESS, schedule_time=ended, end_time=ended)
    remembered = JobRecord(rules=JobRuleState(last_outcome="ok", last_outcome_at=START))
    newer = replace(success, instance_id=1_700_000_000_002, end_time=ended + timedelta(1))
    counts = tick_counts(
        {job: remembered}, {job: [success, newer]}, {job: Target(None, ("ops",))}, (), {},
        START + HOUR, HOUR,
    )  # fmt: skip
    assert counts.runs == 1


TITLES = {"任务失败": "failed", "任务已恢复": "recovered", "任务状态反复": "flapping"}


def kinds(titles: list[str]) -> list[str]:
    return [next((k for t, k in TITLES.items() if t in title), title) for title in titles]


def capture_details(world: World) -> dict[int, dict[str, Any]]:
    """The job's runs as its listings showed them, by instance id, as they come."""
    seen: dict[int, dict[str, Any]] = {}

    def keep(body: dict[str, Any]) -> str:
        for detail in body["Data"]["JobInstanceDetails"]:
            seen.setdefault(int(detail["InstanceId"]), dict(detail))
        return json.dumps(body)

    world.sx.rewrite_answers(JOB, keep)
    return seen


def adding(detail: dict[str, Any]) -> Callable[[dict[str, Any]], str]:
    def edit(body: dict[str, Any]) -> str:
        body["Data"]["JobInstanceDetails"].append(detail)
        return json.dumps(body)

    return edit


def test_a_job_no_window_lists_lets_its_successes_go(tmp_path: Path) -> None:
    """A group query's job that runs now and then (a daily job, say): its group is read
    every tick, no window lists its runs any more, and half an hour on its successes'
    records are gone, as they would be from a listing (main kept them until the job's
    next run, a day for a daily job: a record for nearly every job of an estate, decoded
    and written every tick). The announced failure is kept; what follows is told once."""
    with estate(tmp_path, "group") as world:
        first = run(world)
        assert tick(world) == []
        minute(world)
        failed = run(world, FAILED)
        assert kinds(tick(world)) == ["failed"]
        minute(world)
        recovered = run(world)
        assert kinds(tick(world)) == ["recovered"]
        assert {first, failed, recovered} <= set(records(world))
        for _ in range(int((SETTLED_SECONDS + OVERLAP) / MINUTE) + 2):
            minute(world)
            assert tick(world) == []
        assert list(records(world)) == [failed]  # main: all three
        minute(world)
        run(world)
        assert tick(world) == []
        minute(world)
        run(world, FAILED)
        assert kinds(tick(world)) == ["failed"]


def test_where_the_window_is_on_the_end_time_a_success_goes_minutes_after_it_was_listed(
    tmp_path: Path,
) -> None:
    """A group query's window on the end time reads again only END_OVERLAP (3 minutes),
    not the 15 minutes a schedule or start time needs: a success no window would list
    again goes twice that after it was last listed. Main kept it half an hour, so a job
    that runs every minute carried about 35 records, decoded and written every tick."""
    with estate(tmp_path, "group") as world:
        world.sx.configure(window_field="end")
        counts = succeed_for(world, 1)
        server = load_state(world.state_path.read_bytes()).sources.server
    assert server.field_known == "end"
    # The runs the last window listed, those unlisted for less than 2 * END_OVERLAP, and a
    # minute or two for the tick a run ends in.
    assert counts[-1] <= int(3 * END_OVERLAP / MINUTE) + 3, counts  # main: 34
