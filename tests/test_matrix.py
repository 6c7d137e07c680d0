"""Every alert kind in every source mode, as end-to-end stories on the loopback servers.

Source modes: group queries (`jobs: all`), per-job polls by schedule (`query: per_job`),
and a small list of ids (polled one by one, no job list). The clock moves as FC's timer
moves it: one tick a minute. Each story asserts what the group receives, once, and for
the rules that need no new run (stuck, missed, the end of a flapping episode) in which
tick it arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from schedulerx_alert.core.model import InstanceStatus
from tests.world import GROUP, NS, START, World

MINUTE = 60.0
FAILED, SUCCESS = InstanceStatus.FAILED.value, InstanceStatus.SUCCESS.value
RUNNING, REJECTED = InstanceStatus.RUNNING.value, InstanceStatus.REJECTED.value
SUBJECT, OTHERS = 92583, (92584, 92585)
EVERY_MINUTE, EVERY_5 = "0 * * * * ?", "0 */5 * * * ?"
API = 100
MODES = ("group", "per_job", "ids")

#: What each message is, by its heading (zh-CN, the default language).
KINDS = (
    ("因同一错误失败", "shared"),
    ("任务已恢复", "recovered"),
    ("任务卡住", "stuck"),
    ("未按时运行", "missed"),
    ("状态反复", "flapping"),
    ("任务已稳定", "settled"),
    ("任务失败", "failed"),
    ("任务被拒绝", "rejected"),
)


def kind_of(text: str) -> str:
    heading = text.partition("\n")[0]
    return next((kind for words, kind in KINDS if words in heading), heading)


@dataclass
class Story:
    """Runs added at given minutes, rule options, and what the group hears in which tick."""

    options: dict[str, object]
    events: dict[int, Callable[[World], None]]
    until: int
    # (minute of the tick, kind), in order.
    expected: list[tuple[int, str]]
    subject_cron: str = EVERY_MINUTE
    others_cron: str | None = EVERY_MINUTE
    # Words each message must carry, by its position.
    words: dict[int, str] = field(default_factory=dict)


def run(
    job_id: int, status: int, result: str = "", schedule_time: float | None = None
) -> Callable[[World], None]:
    def add(world: World) -> None:
        started = status != REJECTED
        world.sx.add_instance(
            job_id, status=status, result=result, started=started, schedule_time=schedule_time
        )

    return add


def both(*steps: Callable[[World], None]) -> Callable[[World], None]:
    def add(world: World) -> None:
        for step in steps:
            step(world)

    return add


def at(minute: float) -> float:
    return START + minute * MINUTE


STORIES: dict[str, Story] = {
    "failed": Story({}, {5: run(SUBJECT, FAILED, "disk full")}, 7, [(5, "failed")]),
    "rejected": Story({}, {5: run(SUBJECT, REJECTED, "no worker available")}, 7, [(5, "rejected")]),
    "recovered": Story(
        {},
        {5: run(SUBJECT, FAILED, "disk full"), 8: run(SUBJECT, SUCCESS)},
        10,
        [(5, "failed"), (8, "recovered")],
    ),
    "threshold": Story(
        {"consecutive_failures": 2},
        {
            3: run(SUBJECT, FAILED, "timeout"),
            5: run(SUBJECT, SUCCESS),
            7: run(SUBJECT, FAILED, "timeout"),
            9: run(SUBJECT, FAILED, "timeout"),
            11: run(SUBJECT, SUCCESS),
        },
        13,
        [(9, "failed"), (11, "recovered")],
        words={0: "- **连续失败**：2 次"},
    ),
    # Started at 10:01 and never ends: stuck from 10:21, between two scans of the group
    # (10:20, 10:30) and long after any window of group queries reaches back to it.
    "stuck": Story(
        {"stuck_after": "20m"},
        {1: run(SUBJECT, RUNNING, schedule_time=at(1))},
        24,
        [(21, "stuck")],
    ),
    # Fires every five minutes: 10:00 and 10:05 run, 10:10 has nothing, 10:15 runs a
    # minute late, 10:20 has nothing. Job 92584 runs only when called (API).
    "missed": Story(
        {"missed_grace": "2m"},
        {
            0: run(SUBJECT, SUCCESS, schedule_time=at(0)),
            5: run(SUBJECT, SUCCESS, schedule_time=at(5)),
            16: run(SUBJECT, SUCCESS, schedule_time=at(16)),
        },
        26,
        [(12, "missed"), (22, "missed")],
        subject_cron=EVERY_5,
        others_cron=None,
    ),
    # Four changes in ten minutes; ten minutes without one settle the episode, with no
    # new run to show it.
    "flapping": Story(
        {"flap_window": "10m", "flap_changes": 4},
        {m: run(SUBJECT, FAILED if m % 2 else SUCCESS, "flaky") for m in (1, 2, 3, 4, 5)},
        17,
        [
            (1, "failed"),
            (2, "recovered"),
            (3, "failed"),
            (4, "recovered"),
            (5, "flapping"),
            (15, "settled"),
        ],
    ),
    "shared": Story(
        {},
        {
            5: both(
                *(
                    run(job, FAILED, "Connection refused 10.0.0.5:3306")
                    for job in (SUBJECT, *OTHERS)
                )
            )
        },
        7,
        [(5, "shared")],
        words={0: "3 个任务因同一错误失败"},
    ),
}


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def estate(root: Path, mode: str, story: Story) -> World:
    world = World(root, jobs=())
    crons = {SUBJECT: story.subject_cron, **dict.fromkeys(OTHERS, story.others_cron)}
    for job_id, cron in crons.items():
        time_type = 1 if cron else API
        world.sx.add_job(
            NS, GROUP, job_id, name=f"job-{job_id}", time_type=time_type,
            time_expression=cron or "",
        )  # fmt: skip
    jobs: object = list(crons) if mode == "ids" else "all"
    world.raw["watch"] = [
        {"namespace": NS, "group": GROUP, "jobs": jobs, "receivers": ["ops"], **story.options}
    ]
    if mode == "per_job":
        world.raw["schedulerx"]["query"] = "per_job"
    return world


@pytest.mark.parametrize("kind", list(STORIES))
def test_each_kind_reaches_the_group_once_in_each_mode(
    tmp_path: Path, mode: str, kind: str
) -> None:
    story = STORIES[kind]
    expected = story.expected
    with estate(tmp_path, mode, story) as world:
        heard: list[tuple[int, str]] = []
        for minute in range(story.until + 1):
            world.clock.set(at(minute))
            event = story.events.get(minute)
            if event is not None:
                event(world)
            summary = world.tick()
            assert summary.status == "ok", (minute, summary.problems)
            heard += [(minute, kind_of(t)) for t in world.texts()[len(heard) :]]
        assert heard == expected
        for index, words in story.words.items():
            assert words in world.texts()[index]
