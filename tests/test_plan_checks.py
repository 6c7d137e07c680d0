"""A group's hourly check (one per-job poll that tests the group's answers) is planned after
the group's own reads, and its job chosen only when the quota reaches it: choosing costs a
cron step per schedule, and at 100 groups on a 90-call quota the check is never reached
(every tick chose 100 checks' jobs, 30 % of a 20,000-job tick's CPU, for nothing)."""

from __future__ import annotations

import pytest

from schedulerx_alert.core.polling import GroupCursor, SourceState
from schedulerx_alert.sources import plan as planning
from schedulerx_alert.sources.plan import CATCH_UP, DUE, Budget, GroupRead, JobPoll
from tests.test_plan import CATALOG, GROUP, plan_at
from tests.world import START

# A group read before (its window and scan done), checked more than an hour ago.
CURSOR = GroupCursor(
    covered=START - 60, scanned_at=START - 60, since=START - 7200, checked_at=START - 3700
)
SOURCES = SourceState(groups={GROUP: CURSOR})


def test_the_check_goes_to_the_job_that_fired_last_when_the_quota_reaches_it() -> None:
    plan = plan_at(START + 60, SOURCES, budget=Budget(90, 90))
    assert [type(t) for t in plan.tasks(DUE)] == [GroupRead]
    # Jobs 1 and 2 fire at minutes 5 and 30 of each hour; START is 10:00, so 2 fired last.
    assert plan.tasks(CATCH_UP) == (JobPoll(next(k for k in CATALOG if k.job_id == 2), "check"),)


def test_a_check_the_quota_does_not_reach_is_not_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    chosen: list[object] = []
    real = planning._check_job

    def counted(*args: object, **kwargs: object) -> object:
        chosen.append(args[0])
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(planning, "_check_job", counted)
    plan = plan_at(START + 60, SOURCES, budget=Budget(1, 90))  # the group's read takes it
    assert [type(t) for t in plan.tasks(DUE)] == [GroupRead]
    assert plan.tasks(CATCH_UP) == ()
    assert ("catch_up", 1) in plan.deferred  # counted as left out, as before
    assert chosen == []
    plan_at(START + 60, SOURCES, budget=Budget(90, 90))
    assert chosen == [GROUP]
