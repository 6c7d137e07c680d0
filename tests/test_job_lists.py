"""Job lists that cannot be trusted and watch entries that watch nothing: each says so, on
every tick until it is fixed, rather than leaving the monitor quietly partial."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from schedulerx_alert.core.polling import GroupCursor
from schedulerx_alert.core.state import load_state
from schedulerx_alert.sources.discovery import paging_fault, parse_job_page
from tests.fakes.schedulerx import JobsPaging
from tests.world import GROUP, NS, World

JOBS = tuple(range(1000, 1150))  # 150 jobs: two ListJobs pages of 100


@pytest.fixture
def estate(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path, jobs=()) as world:
        for job_id in JOBS:
            world.sx.add_job(NS, GROUP, job_id, name=f"etl-{job_id}")
        world.raw["watch"] = [
            {"namespace": NS, "group": GROUP, "jobs": "all", "receivers": ["ops"]}
        ]
        yield world


def test_a_job_list_read_page_by_page_finds_every_job(estate: World) -> None:
    summary = estate.tick()
    assert summary.status == "ok", summary.problems
    assert summary.jobs == 150 and summary.calls["ListJobs"] == 2


@pytest.mark.parametrize("paging", ["ignore", "ignore_no_total"])
def test_a_server_that_ignores_pagenum_is_a_problem_each_tick_not_a_partial_list(
    estate: World, paging: JobsPaging
) -> None:
    estate.sx.configure(jobs_paging=paging)
    # Job 1120 is on the second page, which this server never answers.
    estate.sx.add_instance(1120, status=5, result="disk full")
    for minute in range(4):
        before = estate.sx.calls("ListJobs")
        summary = estate.tick()
        assert summary.status == "degraded", (minute, summary.problems)
        assert any("ignore PageNum" in p and f"{NS}/{GROUP}" in p for p in summary.problems), (
            summary.problems
        )
        # A few calls a tick, not the whole ListJobs quota.
        assert estate.sx.calls("ListJobs") - before <= 4
        estate.advance(60)
    # Nothing was dropped for it: the first page's jobs stay watched, and a run of a job
    # the list left out is looked up when its group's runs show it.
    catalog = load_state(estate.state_path.read_bytes()).catalog
    assert {k.job_id for k in catalog} == {*JOBS[:100], 1120}
    failure, impaired = estate.texts()
    assert "etl-1120" in failure and "disk full" in failure
    # Three broken ticks in a row: the on-call hears that the monitor is impaired, and why.
    assert "PageNum" in impaired
    estate.sx.configure(jobs_paging="ok")
    summary = estate.tick()
    assert summary.status == "ok", summary.problems
    assert summary.jobs == 150


def test_a_name_pattern_that_matches_no_job_is_a_problem_until_it_is_fixed(
    estate: World,
) -> None:
    estate.raw["watch"] = [
        {"namespace": NS, "group": GROUP, "job_names": ["etl-10*"], "receivers": ["ops"]},
        # The jobs are etl-*: this entry watches nothing, whatever fails.
        {"namespace": NS, "group": GROUP, "job_names": ["ETL_*"], "receivers": ["ops"]},
    ]
    for _ in range(3):
        summary = estate.tick()
        assert summary.status == "degraded"
        assert summary.problems == [
            f"watch entry 2 (job_names: ETL_*) in {NS}/{GROUP} matches no enabled job"
        ]
        estate.advance(60)
    # It counts toward the impaired notice like any tick that cannot do its work.
    [impaired] = estate.texts()
    assert "watch entry 2" in impaired and "matches no enabled job" in impaired
    estate.raw["watch"][1]["job_names"] = ["etl-11*"]
    assert estate.tick().status == "ok"


def test_an_entry_whose_jobs_are_all_disabled_watches_nothing(estate: World) -> None:
    estate.sx.add_job(NS, GROUP, 2000, name="report-daily", status=0)
    estate.raw["watch"].append(
        {"namespace": NS, "group": GROUP, "job_names": ["report-*"], "receivers": ["ops"]}
    )
    summary = estate.tick()
    assert summary.problems == [
        f"watch entry 2 (job_names: report-*) in {NS}/{GROUP} matches no enabled job"
    ]


def test_a_misspelt_group_is_a_problem_naming_the_entry(estate: World) -> None:
    estate.raw["watch"].append(
        {
            "namespace": NS,
            "group": "testSchedulerx.defaultGroupp",
            "jobs": "all",
            "receivers": ["ops"],
        }
    )
    for _ in range(2):
        summary = estate.tick()
        assert summary.status == "degraded"
        [problem] = summary.problems
        assert "testSchedulerx.defaultGroupp" in problem and "is not existed" in problem
        assert "watch entry 2 (jobs: all)" in problem
        estate.advance(60)


def test_a_page_past_the_total_that_still_lists_jobs_ends_the_pass() -> None:
    group = (NS, GROUP)
    answer = {"Data": {"Total": 150, "PageSize": 100, "Jobs": [{"JobId": 7, "Name": "x"}]}}
    # Page 3 of 150 jobs in pages of 100 cannot list anything (a pass resumed next tick).
    page = parse_job_page(group, 3, answer, now=1000.0)
    fault = paging_fault({}, GroupCursor(discovery_page=3, discovery_started=900.0), 3, page, 1000)
    assert fault is not None and "past the Total of 150" in fault
    # The same page as page 2 is an ordinary last page.
    page = parse_job_page(group, 2, answer, now=1000.0)
    assert page.last
    resumed = GroupCursor(discovery_page=2, discovery_started=900.0)
    assert paging_fault({}, resumed, 2, page, 1000) is None
