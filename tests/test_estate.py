"""The synthetic estate the benchmark watches: reproducible, the issue's mix, runs at fire times.

The estate drives a FakeSchedulerX that is never started: its scripting API is all it needs.
"""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from bench.estate import MIX, Estate, EstateJob, EstateSpec

from schedulerx_alert.core.schedule import Schedule
from tests.fakes.schedulerx import FakeSchedulerX, JobInstance

START = 1_795_572_000.0  # 2026-11-25 10:00 Asia/Shanghai
HOUR = 3600.0


def run(
    spec: EstateSpec, hours: float, step: float = 60.0
) -> tuple[Estate, FakeSchedulerX, list[JobInstance]]:
    fake = FakeSchedulerX(clock=lambda: START)
    estate = Estate.generate(spec)
    estate.attach(fake, START)
    moment = START
    while moment < START + hours * HOUR:
        moment = min(moment + step, START + hours * HOUR)
        estate.advance_to(moment)
    return estate, fake, fake.instances()


def snapshot(instances: list[JobInstance]) -> list[tuple[object, ...]]:
    return [
        (i.instance_id, i.job_id, i.status, i.result, i.schedule_time, i.start_time, i.end_time)
        for i in instances
    ]


def schedule_of(job: EstateJob, spec: EstateSpec) -> Schedule:
    return Schedule.from_time_config(job.time_type, job.expression, spec.zone)


# -- reproducible ----------------------------------------------------------------------------


def test_same_seed_same_estate_and_same_runs() -> None:
    spec = EstateSpec(jobs=300, seed=11, failure_rate=0.05)
    first, _, runs_1 = run(spec, hours=2)
    again, _, runs_2 = run(spec, hours=2)
    assert first.jobs == again.jobs
    assert snapshot(runs_1) == snapshot(runs_2)
    assert first.failures == again.failures
    other = Estate.generate(EstateSpec(jobs=300, seed=12))
    assert [j.expression for j in other.jobs] != [j.expression for j in first.jobs]


def test_runs_do_not_depend_on_the_steps_the_clock_takes() -> None:
    spec = EstateSpec(jobs=300, seed=5, failure_rate=0.05, long_run_rate=0.5)
    _, _, by_minute = run(spec, hours=3, step=60)
    _, _, by_17_minutes = run(spec, hours=3, step=17 * 60)
    _, _, at_once = run(spec, hours=3, step=3 * HOUR)
    assert snapshot(by_minute) == snapshot(by_17_minutes) == snapshot(at_once)


# -- the mix ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("jobs", "groups"), [(1000, 20), (5000, 20), (20_000, 100)])
def test_mix_and_groups(jobs: int, groups: int) -> None:
    estate = Estate.generate(EstateSpec(jobs=jobs, groups=groups, seed=3))
    assert len(estate.jobs) == jobs
    mix = estate.mix()
    for kind, share in MIX.items():
        assert mix[kind] / jobs == pytest.approx(share, abs=0.005), kind
    assert len(estate.groups()) == groups
    sizes = Counter(job.group for job in estate.jobs)
    assert max(sizes.values()) > 2 * min(sizes.values())  # uneven, like real estates
    assert len({job.job_id for job in estate.jobs}) == jobs
    disabled = sum(not job.enabled for job in estate.jobs) / jobs
    assert disabled == pytest.approx(0.02, abs=0.01)


def test_every_time_config_is_valid_schedulerx() -> None:
    spec = EstateSpec(jobs=2000, seed=9)
    for job in Estate.generate(spec).jobs:
        schedule_of(job, spec)  # raises ScheduleError if not


def test_jobs_are_listed_on_the_fake_with_their_time_config() -> None:
    spec = EstateSpec(jobs=200, groups=5, seed=2)
    estate = Estate.generate(spec)
    fake = FakeSchedulerX(clock=lambda: START)
    estate.attach(fake, START)
    listed = [j for g in estate.groups() for j in fake.jobs(spec.namespace, g)]
    assert sorted(j.job_id for j in listed) == sorted(j.job_id for j in estate.jobs)
    by_id = {j.job_id: j for j in estate.jobs}
    for job in listed:
        mine = by_id[job.job_id]
        assert (job.time_type, job.time_expression, job.group) == (
            mine.time_type,
            mine.expression,
            mine.group,
        )
        assert job.status == (1 if mine.enabled else 0)


# -- runs at fire times ----------------------------------------------------------------------


def test_a_daily_job_runs_once_at_its_fire_time_and_not_before() -> None:
    spec = EstateSpec(jobs=400, seed=4)
    estate = Estate.generate(spec)
    fake = FakeSchedulerX(clock=lambda: START)
    estate.attach(fake, START)
    # The daily job that fires first, so that the story is short.
    fires = {
        job: schedule_of(job, spec).next_fire(START)
        for job in estate.jobs
        if job.kind == "daily" and job.enabled
    }
    daily = min(fires, key=lambda job: fires[job] or float("inf"))
    fire = fires[daily]
    assert fire is not None
    estate.advance_to(fire - 1)
    assert fake.instances(daily.job_id) == []
    estate.advance_to(fire)
    (instance,) = fake.instances(daily.job_id)
    assert (instance.schedule_time, instance.trigger_type) == (fire, 1)


def test_every_run_lies_on_its_schedule_and_nothing_runs_ahead_of_the_clock() -> None:
    spec = EstateSpec(jobs=400, seed=8, failure_rate=0.05)
    estate, _, runs = run(spec, hours=2, step=300)
    now = START + 2 * HOUR
    by_id = {j.job_id: j for j in estate.jobs}
    per_job: dict[int, list[JobInstance]] = {}
    for instance in runs:
        per_job.setdefault(instance.job_id, []).append(instance)
        assert START < instance.schedule_time <= now
        if instance.end_time is None:
            assert instance.status == 3
        else:
            assert instance.end_time <= now
    for job_id, instances in per_job.items():
        job = by_id[job_id]
        assert job.enabled
        times = [i.schedule_time for i in instances]
        if job.kind in ("daily", "hourly", "minutes"):
            schedule = schedule_of(job, spec)
            assert times == schedule.fires_between(START, now)
        elif job.kind == "fixed_rate":
            gaps = {b - a for a, b in itertools.pairwise(times)}
            assert gaps <= {float(job.expression)}
        elif job.kind == "second_delay":
            # The next run starts the delay after the previous one ended.
            for before, after in itertools.pairwise(instances):
                assert before.end_time is not None
                assert after.schedule_time == before.end_time + float(job.expression)
        else:
            assert {i.trigger_type for i in instances} == {3}
    kinds_that_ran = Counter(by_id[j].kind for j in per_job)
    assert set(kinds_that_ran) >= {"hourly", "minutes", "fixed_rate", "second_delay"}


def test_injected_failures_are_recorded_and_found_on_the_server() -> None:
    spec = EstateSpec(jobs=300, seed=6, failure_rate=0.05, rejected_share=0.3)
    estate, _, runs = run(spec, hours=2)
    now = START + 2 * HOUR
    failed_on_server = {i.instance_id for i in runs if i.status in (5, 9)}
    recorded = {f.instance_id for f in estate.failures_ended_by(now)}
    assert recorded == failed_on_server
    assert len(recorded) > 20
    statuses = Counter(f.status for f in estate.failures)
    assert statuses[5] > 0 and statuses[9] > 0
    by_instance = {i.instance_id: i for i in runs}
    for failure in estate.failures_ended_by(now):
        instance = by_instance[failure.instance_id]
        assert instance.result
        assert (instance.job_id, instance.schedule_time) == (failure.job_id, failure.schedule_time)
        if failure.status == 9:
            assert instance.start_time is None


def test_a_few_runs_last_hours_and_fail_only_when_they_end() -> None:
    spec = EstateSpec(jobs=800, seed=10, failure_rate=0.5, rejected_share=0.0, long_run_rate=0.5)
    estate, fake, _ = run(spec, hours=1)
    long_failures = [f for f in estate.failures if f.end_time - f.schedule_time >= HOUR]
    assert long_failures
    now = START + HOUR
    for failure in long_failures:
        if failure.end_time > now:
            assert fake.instance(failure.instance_id).status == 3
            assert failure not in estate.failures_ended_by(now)
    later = max(f.end_time for f in long_failures)
    estate.advance_to(later)
    for failure in long_failures:
        assert fake.instance(failure.instance_id).status == 5
        assert fake.instance(failure.instance_id).end_time == failure.end_time


def test_disabled_jobs_never_run_and_old_runs_are_dropped() -> None:
    spec = EstateSpec(jobs=300, seed=13, retention=HOUR)
    estate, fake, runs = run(spec, hours=4, step=600)
    disabled = {j.job_id for j in estate.jobs if not j.enabled}
    assert disabled
    assert not disabled & {i.job_id for i in runs}
    assert fake.instance_count() < estate.created
    newest: dict[int, list[JobInstance]] = {}
    for instance in sorted(runs, key=lambda i: -i.schedule_time):
        newest.setdefault(instance.job_id, []).append(instance)
    now = START + 4 * HOUR
    for instance in runs:
        # An old finished run survives only as one of its job's ten newest.
        if instance.schedule_time < now - HOUR - 600 and instance.end_time is not None:
            assert instance in newest[instance.job_id][:10]
