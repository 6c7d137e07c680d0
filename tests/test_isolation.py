"""One bad answer, or one bad run inside an answer, never stops a tick.

Each story serves one job's GetJobInstanceList answer as a hostile server
might write it (`FakeSchedulerX.rewrite_answers`), while the other job fails
normally: that failure is announced, and what could not be read is reported
with the job, the field and the value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from schedulerx_alert.core.model import JobKey
from schedulerx_alert.sources.fetch import CallBudget, fetch_all
from schedulerx_alert.sources.schedulerx import SchedulerXClient
from tests.world import GROUP, NS, START, World

if TYPE_CHECKING:
    from schedulerx_alert.sources.listing import Listing

Body = dict[str, Any]
SHANGHAI = ZoneInfo("Asia/Shanghai")
# START as the answer's strings show it (Asia/Shanghai).
START_TEXT = "2026-11-25 10:00:00"


def runs(body: Body) -> list[Body]:
    details: list[Body] = body["Data"]["JobInstanceDetails"]
    return details


def replacing(old: str, new: str) -> Callable[[Body], str]:
    """An edit that swaps raw JSON text: for values no encoder writes (1e400, Infinity)."""

    def edit(body: Body) -> str:
        text = json.dumps(body)
        assert old in text
        return text.replace(old, new)

    return edit


def editing(change: Callable[[list[Body]], object]) -> Callable[[Body], str]:
    def edit(body: Body) -> str:
        change(runs(body))
        return json.dumps(body)

    return edit


def job(job_id: int) -> str:
    return f"{NS}/{GROUP}/{job_id}"


# -- item 4: an exception from one answer fails that job only ------------------------------


def test_1e400_in_an_integer_field_fails_that_run_only_and_the_other_job_is_announced(
    world: World,
) -> None:
    world.sx.add_instance(92583, status=5, result="first")
    hidden = world.sx.add_instance(92583, status=5, result="second")
    failing = world.sx.add_instance(92584, status=5, result="disk full")
    world.sx.rewrite_answers(
        92583,
        replacing(
            f'"InstanceId": {hidden}, "JobId": 92583, "Status": 5',
            f'"InstanceId": {hidden}, "JobId": 92583, "Status": 1e400',
        ),
    )
    summary = world.tick()
    assert summary.status == "degraded" and summary.errors == []
    assert summary.alerts_sent == 2
    texts = world.texts()
    assert any(str(failing) in t and "disk full" in t for t in texts)
    assert not any(str(hidden) in t for t in texts)
    [problem] = summary.entry_problems
    assert problem == {
        "job": job(92583),
        "instance": str(hidden),
        "field": "JobInstanceDetails[0].Status",
        "value": "inf",
        "reason": "not a finite number",
        "outcome": "skipped",
    }
    [line] = summary.problems
    assert line == (
        f"1 listed run(s) left out or in an unknown status, e.g. job {job(92583)} run {hidden}: "
        "JobInstanceDetails[0].Status=inf: not a finite number; run left out"
    )
    # Readable again: the run left out is announced now, once.
    world.sx.rewrite_answers(92583, None)
    world.advance(60)
    healed = world.tick()
    assert (healed.status, healed.alerts_sent) == ("ok", 1)
    assert str(hidden) in world.texts()[-1]


def test_an_answer_whose_only_run_is_unreadable_fails_that_job_and_keeps_its_state(
    world: World,
) -> None:
    run = world.sx.add_instance(92583, status=5)
    failing = world.sx.add_instance(92584, status=5)
    world.sx.rewrite_answers(92583, replacing(f'"InstanceId": {run}', '"InstanceId": Infinity'))
    summary = world.tick()
    assert (summary.polled, summary.alerts_sent, summary.status) == (1, 1, "degraded")
    assert str(failing) in world.texts()[0]
    [error] = summary.errors
    assert error["job"] == job(92583)
    assert "none of the 1 run(s) listed could be read" in error["error"]
    assert "InstanceId=inf" in error["error"]
    world.sx.rewrite_answers(92583, None)
    world.advance(60)
    assert world.tick().alerts_sent == 1
    assert str(run) in world.texts()[-1]


def test_infinity_in_a_side_field_costs_that_field_not_the_failure(world: World) -> None:
    run = world.sx.add_instance(92583, status=5, result="exit code 1")
    world.sx.rewrite_answers(92583, replacing('"TriggerType": 1', '"TriggerType": -Infinity'))
    summary = world.tick()
    assert summary.alerts_sent == 1 and str(run) in world.texts()[0]
    [problem] = summary.entry_problems
    assert (problem["field"], problem["instance"], problem["outcome"]) == (
        "JobInstanceDetails[0].TriggerType",
        str(run),
        "kept",
    )
    # Nothing was missed: reported, but the monitor is not deaf.
    assert (summary.status, summary.problems) == ("ok", [])


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param('{"Success": true, "Data": ' + "[" * 100_000, id="unclosed"),
        pytest.param(
            '{"Success": true, "Data": ' + "[" * 100_000 + "]" * 100_000 + "}", id="closed"
        ),
    ],
)
def test_an_answer_nested_100000_deep_fails_that_job_only(world: World, answer: str) -> None:
    world.sx.add_instance(92583, status=5)
    failing = world.sx.add_instance(92584, status=5)
    world.sx.rewrite_answers(92583, lambda body: answer)
    summary = world.tick()
    assert summary.alerts_sent == 1 and str(failing) in world.texts()[0]
    [error] = summary.errors
    assert error["job"] == job(92583) and "nested too deeply" in error["error"]
    # Deterministic garbage is not retried: one call.
    assert summary.api_calls == 2


class ExplodingClient(SchedulerXClient):
    """A client with a defect that shows on one job only."""

    def get_job_instance_list(self, job: JobKey) -> Listing:
        if job.job_id == 92583:
            raise KeyError("JobInstanceDetails")
        return super().get_job_instance_list(job)


def test_any_exception_from_one_jobs_answer_fails_that_job_only(world: World) -> None:
    world.sx.add_instance(92584, status=5)
    client = ExplodingClient(
        world.sx.url, "cn-hangzhou", world.credentials, SHANGHAI, clock=world.clock
    )
    jobs = [JobKey(NS, GROUP, 92583), JobKey(NS, GROUP, 92584)]
    budget = CallBudget(90, (), world.clock)
    result = fetch_all(client, jobs, budget, world.clock() + 60, clock=world.clock)
    assert list(result.polls) == [jobs[1]] and len(result.polls[jobs[1]]) == 1
    assert result.errors == {
        jobs[0]: "GetJobInstanceList: answer could not be read (KeyError: 'JobInstanceDetails')"
    }


# -- item 5: keep every run that can be understood, report the rest ------------------------


def test_a_run_without_instance_id_is_reported_and_the_runs_beside_it_still_alert(
    world: World,
) -> None:
    first = world.sx.add_instance(92583, status=5, result="first", schedule_time=START - 30)
    second = world.sx.add_instance(92583, status=9, result="second", schedule_time=START - 20)
    world.sx.add_instance(92583, status=5, result="anonymous", schedule_time=START - 10)

    def drop_id(details: list[Body]) -> None:
        del next(d for d in details if d["Result"] == "anonymous")["InstanceId"]

    world.sx.rewrite_answers(92583, editing(drop_id))
    summary = world.tick()
    assert (summary.alerts_sent, summary.errors, summary.status) == (2, [], "degraded")
    texts = "\n".join(world.texts())
    assert str(first) in texts and str(second) in texts
    [problem] = summary.entry_problems
    assert problem["field"] == "JobInstanceDetails[0].InstanceId"
    assert (problem["value"], problem["instance"], problem["outcome"]) == (
        "(missing)",
        "",
        "skipped",
    )


def _status_name(details: list[Body]) -> None:
    details[0]["Status"] = "FAILED"


def _status_lower(details: list[Body]) -> None:
    details[0]["Status"] = "failed"


def _epoch_ms(details: list[Body]) -> None:
    for name in ("ScheduleTime", "StartTime", "EndTime", "DataTime"):
        details[0][name] = int(START * 1000)


def _epoch_seconds_text(details: list[Body]) -> None:
    for name in ("ScheduleTime", "StartTime", "EndTime", "DataTime"):
        details[0][name] = str(int(START))


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(editing(_status_name), id="status FAILED"),
        pytest.param(editing(_status_lower), id="status failed"),
        pytest.param(editing(_epoch_ms), id="times in epoch ms"),
        pytest.param(editing(_epoch_seconds_text), id="times as epoch-second strings"),
        pytest.param(
            lambda body: json.dumps({**body, "Data": runs(body)}), id="Data is the list itself"
        ),
    ],
)
def test_a_failure_written_another_way_is_still_announced_with_its_time(
    world: World, edit: Callable[[Body], str]
) -> None:
    run = world.sx.add_instance(92583, status=5, result="boom")
    world.sx.rewrite_answers(92583, edit)
    summary = world.tick()
    [text] = world.texts()
    assert str(run) in text and START_TEXT in text
    assert (summary.alerts_sent, summary.entry_problems, summary.status) == (1, [], "ok")


def test_a_run_without_status_is_reported_and_announced_once_its_status_is_back(
    world: World,
) -> None:
    run = world.sx.add_instance(92583, status=5)
    world.sx.add_instance(92584, status=4)
    world.sx.rewrite_answers(92583, editing(lambda details: details[0].pop("Status")))
    summary = world.tick()
    assert summary.status == "degraded" and summary.alerts_sent == 0
    [problem] = summary.entry_problems
    assert (problem["field"], problem["instance"], problem["value"], problem["reason"]) == (
        "JobInstanceDetails[0].Status",
        str(run),
        "(missing)",
        "missing",
    )
    world.sx.rewrite_answers(92583, None)
    world.advance(60)
    assert world.tick().alerts_sent == 1
    world.advance(60)
    assert world.tick().alerts_sent == 0
    assert len(world.texts()) == 1


def test_an_unknown_status_code_is_kept_and_reported_once(world: World) -> None:
    world.sx.add_instance(92583, status=42)
    world.sx.add_instance(92583, status=42)
    summary = world.tick()
    assert summary.instances == 2 and summary.alerts_sent == 0
    [problem] = summary.entry_problems
    assert (problem["value"], problem["outcome"], problem["reason"]) == (
        "42",
        "unknown",
        "unknown status code",
    )
    # It may be a failure this version cannot recognise: the monitor says so.
    assert summary.status == "degraded"
    [line] = summary.problems
    assert line.startswith("1 listed run(s) left out or in an unknown status, e.g. job ")
    assert line.endswith(
        "JobInstanceDetails[0].Status=42: unknown status code; run kept, never alerted on"
    )


def test_a_listing_that_is_neither_list_nor_object_fails_that_job_with_its_value(
    world: World,
) -> None:
    world.sx.add_instance(92584, status=5)
    world.sx.rewrite_answers(
        92583, lambda body: json.dumps({**body, "Data": {"JobInstanceDetails": "n/a"}})
    )
    summary = world.tick()
    assert summary.alerts_sent == 1
    [error] = summary.errors
    assert error["job"] == job(92583)
    assert error["error"].startswith(
        "GetJobInstanceList: Data.JobInstanceDetails is 'n/a', not a list of runs (RequestId "
    )


# -- item 6: one run listed twice is one run ------------------------------------------------


def test_a_run_listed_twice_in_one_answer_is_announced_once(world: World) -> None:
    run = world.sx.add_instance(92583, status=5, result="disk full")
    world.sx.rewrite_answers(92583, editing(lambda details: details.append(dict(details[0]))))
    summary = world.tick()
    assert (summary.alerts_new, summary.alerts_sent, summary.instances) == (1, 1, 1)
    [text] = world.texts()
    assert str(run) in text
    [problem] = summary.entry_problems
    assert (problem["field"], problem["instance"], problem["outcome"]) == (
        "JobInstanceDetails[1].InstanceId",
        str(run),
        "duplicate",
    )
    assert problem["reason"].startswith("the same run as JobInstanceDetails[0], which counts")
    assert (summary.status, summary.problems) == ("ok", [])


def test_a_failed_run_listed_once_without_its_end_time_is_not_announced_again(
    world: World,
) -> None:
    run = world.sx.add_instance(92583, status=5)
    assert world.tick().alerts_sent == 1
    world.sx.rewrite_answers(92583, editing(lambda details: details[0].pop("EndTime")))
    world.advance(60)
    assert world.tick().alerts_new == 0
    world.sx.rewrite_answers(92583, None)
    world.advance(60)
    assert world.tick().alerts_new == 0
    # A real re-run, ending later, is still a new attempt.
    world.sx.set_status(run, 5, end_time=START + 170)
    world.advance(60)
    assert world.tick().alerts_sent == 1
    assert len(world.texts()) == 2
