"""Rules that need no new run (stuck, missed, the end of a flapping episode) run every tick
for every watched job, whether or not it has a listing this tick, and never judge a fire
on runs nobody read.

The end-to-end stories read the group by group queries against the loopback SchedulerX,
whichever instance time its window filters on; the pure ones drive the rule engine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from schedulerx_alert.core import polling
from schedulerx_alert.core.findings import MISSED, SETTLED
from schedulerx_alert.core.model import InstanceStatus, JobInstance, JobKey
from schedulerx_alert.core.polling import GroupCursor, Query, SourceState, Span
from schedulerx_alert.core.rules import JobHistory, JobRuleState, JobSchedule, evaluate
from schedulerx_alert.core.rules.history import NOT_READ
from tests.builders import T0
from tests.fakes.schedulerx import WindowField
from tests.rules_driver import MINUTE, Every, at, key, kinds, run, with_settings
from tests.world import GROUP, NS, START, World

SUCCESS, RUNNING = InstanceStatus.SUCCESS.value, InstanceStatus.RUNNING.value
SUBJECT = 92583


def minute(n: float) -> float:
    return START + n * MINUTE


@pytest.fixture
def group(tmp_path: Path) -> Iterator[World]:
    """Job 92583 fires every ten minutes; 92584 to 92586 run only when called. All four
    are watched with `jobs: all`, so the group is read by group queries."""
    with World(tmp_path, jobs=()) as world:
        world.sx.add_job(NS, GROUP, SUBJECT, time_expression="0 */10 * * * ?")
        for job_id in (92584, 92585, 92586):
            world.sx.add_job(NS, GROUP, job_id, time_type=100, time_expression="")
        world.raw["watch"] = [
            {"namespace": NS, "group": GROUP, "jobs": "all", "receivers": ["ops"]}
        ]
        yield world


def story(world: World, until: int, events: dict[int, object]) -> list[tuple[int, str]]:
    heard: list[tuple[int, str]] = []
    for n in range(until + 1):
        world.clock.set(minute(n))
        event = events.get(n)
        if callable(event):
            event()
        summary = world.tick()
        assert summary.status == "ok", (n, summary.problems)
        heard += [(n, t.partition("\n")[0]) for t in world.texts()[len(heard) :]]
    return heard


WINDOW_FIELDS: tuple[WindowField, ...] = ("schedule", "start", "end")


@pytest.mark.parametrize("window_field", WINDOW_FIELDS)
def test_a_run_hung_since_1001_is_stuck_at_1021_between_two_scans(
    group: World, window_field: WindowField
) -> None:
    group.sx.configure(window_field=window_field)
    group.raw["watch"][0]["stuck_after"] = "20m"

    def hang() -> None:
        group.sx.add_instance(92584, status=RUNNING, schedule_time=minute(1))

    heard = story(group, 24, {1: hang})
    assert heard == [(21, "### SchedulerX 任务卡住：job-92584 (92584)")]


@pytest.mark.parametrize("window_field", WINDOW_FIELDS)
def test_a_fire_whose_run_is_still_running_is_not_missed_and_an_empty_fire_is_on_time(
    group: World, window_field: WindowField
) -> None:
    """10:00 runs and succeeds; 10:10 starts and is still running when its grace ends,
    and ends at 10:25; 10:20 has no run at all; 10:30 runs."""
    group.sx.configure(window_field=window_field)
    group.raw["watch"][0]["missed_grace"] = "2m"
    runs: dict[str, int] = {}

    def succeed(at_minute: int) -> None:
        group.sx.add_instance(SUBJECT, status=SUCCESS, schedule_time=minute(at_minute))

    def start_long() -> None:
        runs["long"] = group.sx.add_instance(SUBJECT, status=RUNNING, schedule_time=minute(10))

    def end_long() -> None:
        group.sx.set_status(runs["long"], SUCCESS)

    heard = story(
        group,
        34,
        {0: lambda: succeed(0), 10: start_long, 25: end_long, 30: lambda: succeed(30)},
    )
    assert heard == [(22, "### SchedulerX 任务未按时运行：job-92583 (92583)")]


def test_after_an_outage_fires_are_judged_only_once_the_older_windows_are_read(
    group: World,
) -> None:
    """Two hours without a tick: job 92583 ran at every fire but 11:00, and 92584 every
    minute. The ticks after it catch up window by window (small pages, a small quota);
    until then, the fires in the windows still unread are not judged."""
    group.raw["watch"][0]["missed_grace"] = "2m"
    group.sx.configure(max_page_size=5)
    sx = {"endpoint": group.sx.url, "max_calls_per_minute": 6}
    for n in (-10, 0):
        group.sx.add_instance(SUBJECT, status=SUCCESS, schedule_time=minute(n))
    group.tick(schedulerx=sx)
    for n in range(1, 120):
        group.sx.add_instance(92584, status=SUCCESS, schedule_time=minute(n))
        if n % 10 == 0 and n != 60:
            group.sx.add_instance(SUBJECT, status=SUCCESS, schedule_time=minute(n))
    caught_up = None
    for n in range(120, 150):
        group.clock.set(minute(n))
        if n % 10 == 0:
            group.sx.add_instance(SUBJECT, status=SUCCESS, schedule_time=minute(n))
        if group.tick(schedulerx=sx).status == "ok" and caught_up is None:
            caught_up = n
    assert caught_up is not None and caught_up > 125  # it did take several ticks
    [missed] = [t for t in group.texts() if "未按时运行" in t.partition("\n")[0]]
    assert "- **应运行于**：2026-11-25 11:00（Asia/Shanghai）" in missed
    assert "错过次数" not in missed


@pytest.mark.parametrize("window_field", WINDOW_FIELDS)
def test_a_long_run_s_success_is_a_recovery_though_no_window_in_every_status_reaches_it(
    group: World, window_field: WindowField
) -> None:
    """92584 fails at 10:01; its next run starts at 10:02 and succeeds at 10:50. Only the
    failures are looked for back to the start of a long run; its success is read in the
    job's own listing once a scan no longer lists it running."""
    group.sx.configure(window_field=window_field, max_page_size=10)
    runs: dict[str, int] = {}

    def fail() -> None:
        group.sx.add_instance(92584, status=5, result="boom", schedule_time=minute(1))

    def start() -> None:
        runs["long"] = group.sx.add_instance(92584, status=RUNNING, schedule_time=minute(2))

    def succeed() -> None:
        group.sx.set_status(runs["long"], SUCCESS)

    busy = {n: (lambda n=n: group.sx.add_instance(92585, status=SUCCESS)) for n in range(3, 50)}
    heard = story(group, 55, {**busy, 1: fail, 2: start, 50: succeed})
    assert [(n, h.split("：")[0]) for n, h in heard] == [
        (1, "### SchedulerX 任务失败"),
        (50, "### SchedulerX 任务已恢复"),
    ]


# -- the engine, pure --------------------------------------------------------------------


EVERY_10 = JobSchedule(time_type=1, fires=Every(10 * MINUTE, T0), zone="Asia/Shanghai")


def due_at(instance_id: int, when: float) -> JobInstance:
    inst = run(instance_id, InstanceStatus.SUCCESS, started=when)
    return replace(inst, schedule_time=at(when), start_time=at(when))


def test_a_job_not_read_is_never_called_missed_and_a_run_seen_earlier_answers_its_fire() -> None:
    job = key()
    settings = with_settings(missed_grace=5 * MINUTE)
    schedules = {job: EVERY_10}
    t0 = T0  # a fire
    memory = {job: JobRuleState(missed_checked=t0 - 5 * MINUTE)}

    def tick(now: float, history: JobHistory | None) -> list[str]:
        histories = {job: history} if history is not None else {}
        found, new = evaluate(histories, settings, schedules, memory, now)
        memory.update(new)
        return kinds(list(found))

    # The fire at t0 has its run, listed at once (a group query, read to the end).
    assert tick(t0 + MINUTE, JobHistory(job, (due_at(1, t0),), covered=t0 + MINUTE)) == []
    checked = memory[job].missed_checked
    # Nothing read for ten minutes: no fire is judged, whatever the time.
    for n in range(2, 12):
        assert tick(t0 + n * MINUTE, None) == []
    assert memory[job].missed_checked == checked
    # Read again, with nothing new to list: t0 was answered (remembered), t0 + 10 min was not.
    found = tick(t0 + 16 * MINUTE, JobHistory(job, (), covered=t0 + 16 * MINUTE))
    assert found == [MISSED]
    # Read only up to t0 + 14 (a window not read to the end): no later fire is judged.
    memory[job] = replace(memory[job], missed_checked=t0 + 5 * MINUTE, missed_next=None)
    assert tick(t0 + 30 * MINUTE, JobHistory(job, (), covered=t0 + 14 * MINUTE)) == []
    assert memory[job].missed_checked == t0 + 9 * MINUTE
    assert tick(t0 + 30 * MINUTE, JobHistory(job, (), covered=NOT_READ)) == []


def test_a_flapping_episode_settles_in_a_tick_with_no_listing() -> None:
    job = key()
    settings = with_settings(flap_window=10 * MINUTE, flap_changes=4)
    since = 1_795_572_000.0
    memory = {
        job: JobRuleState(
            last_outcome="fail",
            changes=(since, since + 60, since + 120, since + 180),
            flapping_since=since + 180,
        )
    }
    found, new = evaluate({}, settings, {}, memory, since + 180 + 10 * MINUTE)
    assert kinds(list(found)) == [SETTLED] and new[job].flapping_since is None


@dataclass
class Counting:
    """A schedule that counts how often its fire times are computed."""

    fires: Every
    calls: int = 0

    def fires_between(self, after: float, until: float, limit: int) -> list[float]:
        self.calls += 1
        return self.fires.fires_between(after, until, limit)


def test_a_job_with_no_fire_due_costs_no_fire_computation_per_tick() -> None:
    """The rule runs every tick for every watched job: an hourly cron's fire times are
    computed when a fire is to be judged, not in each of the 59 ticks between."""
    job = key()
    hourly = Counting(Every(60 * MINUTE, T0))
    schedules = {job: JobSchedule(time_type=1, fires=hourly, zone="Asia/Shanghai")}
    settings = with_settings(missed_grace=5 * MINUTE)
    memory: dict[JobKey, JobRuleState] = {}
    missed = 0
    for n in range(1, 3 * 60 + 1):
        now = T0 + n * MINUTE
        found, memory = evaluate(
            {job: JobHistory(job, (), covered=now)}, settings, schedules, memory, now
        )
        missed += len(found)
    assert missed == 3  # nothing ran: each hour's fire, once
    # A few per fire judged (its fires, the one after, the next), not one per tick.
    assert hourly.calls <= 3 * 4


def test_a_cursor_with_every_status_queries_and_unfinished_runs_round_trips() -> None:
    cursor = GroupCursor(
        covered=START,
        spans=(Span(START - 900, START, (Query(None), Query(9, windowed=False)), 2, True),),
        unfinished=(
            (92583, 7, RUNNING, START - 60, START - 59, 1),
            (92584, 8, 1, None, None, None),
        ),
    )
    state = SourceState(groups={(NS, GROUP): cursor})
    assert polling.decode(json.loads(json.dumps(polling.encode(state)))) == state
    raw = polling.encode(state)
    raw["groups"][next(iter(raw["groups"]))]["unfinished"] = [[92583, 7, 3, "noon", None, 1]]
    with pytest.raises(ValueError, match="unfinished"):
        polling.decode(raw)
