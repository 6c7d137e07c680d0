"""Polled job by job, a sweep the quota cannot pay is said in every tick that leaves a job
unpolled for longer than sweep_interval, with what it costs: how far behind, and which
quota went where (issue 22, the older server's row: 2,000 jobs at 90 calls a minute never
get their sweep; before, a tick said so only of jobs unpolled for two intervals)."""

from __future__ import annotations

from pathlib import Path

from schedulerx_alert.tick import TickSummary
from tests.world import GROUP, NS, World

JOBS = tuple(range(700, 740))  # hourly at 10:45: only the sweep polls them in the story
QUOTA = 2


def sweep_lines(tmp_path: Path, query: str | None) -> list[TickSummary]:
    """Eighteen ticks, a minute apart from 10:00, of forty jobs polled one by one."""
    with World(tmp_path, jobs=()) as world:
        if query is None:
            world.sx.configure(legacy="missing_param")  # no group queries: job by job
        for job_id in JOBS:
            world.sx.add_job(NS, GROUP, job_id, name=f"j-{job_id}", time_expression="0 45 * * * ?")
        world.raw["schedulerx"] = {"endpoint": world.sx.url, "max_calls_per_minute": QUOTA}
        if query is not None:
            world.raw["schedulerx"]["query"] = query
        world.raw["watch"] = [
            {"namespace": NS, "group": GROUP, "jobs": "all", "receivers": ["ops"]}
        ]
        summaries = []
        for _ in range(18):
            summaries.append(world.tick())
            world.advance(60)
        return summaries


def test_a_sweep_left_behind_says_how_far_and_which_quota_paid_what(tmp_path: Path) -> None:
    summaries = sweep_lines(tmp_path, None)
    # 10:00 finds group queries refused and sweeps one job with its other call; from
    # 10:01 the sweep lists two jobs a minute, never polled first, where forty every 15
    # minutes want three: a first sweep spread over its interval is no problem, but at
    # 10:16 eight jobs have waited longer (seven never polled, one polled at 10:00).
    lines = [[p for p in s.problems if p.startswith("the sweep is behind")] for s in summaries]
    assert [len(found) for found in lines] == [0] * 16 + [1, 1]
    assert {s.status for s in summaries[1:16]} == {"ok"}
    assert lines[16][0] == (
        f"the sweep is behind: 8 of {len(JOBS)} job(s) polled one by one were not polled "
        "for over 15 min (sweep_interval), nor this tick (7 never yet; the longest unpolled "
        "for 16 min, since per-job polls began), so runs started by hand or by API are "
        "seen only when the sweep reaches them; GetJobInstanceList's quota "
        "(schedulerx.max_calls_per_minute: 2) went to due polls (fires, graces, unfinished "
        "runs) first and left 2 of this tick's 2 call(s) to the sweep, which needs up to 3 "
        "a minute: raise max_calls_per_minute by about 1 (with the account's quota), or set "
        "sweep_interval to about 20 min"
    )
    assert summaries[16].status == "degraded"
    # 10:17: the last five never polled, and the three polled at 10:00 and 10:01.
    assert lines[17][0].startswith(
        "the sweep is behind: 8 of 40 job(s) polled one by one were not polled for over "
        "15 min (sweep_interval), nor this tick (5 never yet; the longest unpolled for "
        "17 min, since per-job polls began)"
    )


def test_per_job_polls_by_configuration_count_a_job_never_polled_from_their_first_tick(
    tmp_path: Path,
) -> None:
    """`query: per_job`: the sweep begins at 10:00, two jobs a minute; at 10:16 the six
    jobs it has not reached have waited sixteen minutes (before: never counted at all),
    as have the two polled at 10:00."""
    summaries = sweep_lines(tmp_path, "per_job")
    lines = [[p for p in s.problems if p.startswith("the sweep is behind")] for s in summaries]
    assert [len(found) for found in lines] == [0] * 16 + [1, 1]
    assert lines[16][0].startswith(
        "the sweep is behind: 8 of 40 job(s) polled one by one were not polled for over "
        "15 min (sweep_interval), nor this tick (6 never yet; the longest unpolled for "
        "16 min, since per-job polls began)"
    )
