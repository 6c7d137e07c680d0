"""Polled job by job, a sweep the quota cannot pay is said in every tick it leaves jobs
out, with what it costs: how far behind, and which quota went where (issue 22, the older
server's row: 2,000 jobs at 90 calls a minute never get their sweep)."""

from __future__ import annotations

from pathlib import Path

from tests.world import GROUP, NS, World

JOBS = tuple(range(700, 712))  # hourly at 10:45, not firing in the story
QUOTA = 4


def test_a_sweep_left_behind_says_how_far_and_which_quota_paid_what(tmp_path: Path) -> None:
    with World(tmp_path, jobs=()) as world:
        world.sx.configure(legacy="missing_param")  # no group queries: job by job
        for job_id in JOBS:
            world.sx.add_job(NS, GROUP, job_id, name=f"j-{job_id}", time_expression="0 45 * * * ?")
        world.raw["schedulerx"] = {"endpoint": world.sx.url, "max_calls_per_minute": QUOTA}
        world.raw["watch"] = [
            {"namespace": NS, "group": GROUP, "jobs": "all", "receivers": ["ops"]}
        ]
        summaries = []
        for _ in range(5):
            summaries.append(world.tick())
            world.advance(60)
    # 10:00 finds group queries refused; from 10:01 the sweep lists four jobs a minute,
    # never polled first: it is behind until 10:03 has polled the twelfth.
    lines = [[p for p in s.problems if p.startswith("the sweep is behind")] for s in summaries]
    assert [len(found) for found in lines] == [0, 1, 1, 0, 0]
    assert [s.status for s in summaries[1:]] == ["degraded", "degraded", "ok", "ok"]
    assert lines[1][0] == (
        f"the sweep is behind: 8 of {len(JOBS)} job(s) polled one by one are past their "
        "15 min sweep and were not polled this tick (8 never yet; the longest unpolled for "
        "1 min, since per-job polls began), so runs started by hand or by API are seen only "
        "when it reaches them; GetJobInstanceList's quota (schedulerx.max_calls_per_minute: "
        "4) went to due polls (fires, graces, unfinished runs) first and left 4 of this "
        "tick's 4 call(s) to the sweep, which needs up to 1 a minute"
    )
    assert lines[2][0].startswith("the sweep is behind: 4 of 12 job(s)")
