"""A synthetic SchedulerX estate for the loopback server: seeded, reproducible, lean.

``Estate.generate(EstateSpec(jobs=20_000, groups=20, seed=7))`` draws the jobs (about 60 %
daily crons, 25 % hourly, 10 % every 5-15 minutes, 4 % fixed rate or second delay, 1 %
API-triggered, a few disabled). ``attach(fake, start)`` adds them to a
:class:`~tests.fakes.schedulerx.FakeSchedulerX`; each ``advance_to(now)`` then creates the
runs whose fire times have passed (from ``core/schedule.py``) and finishes those whose end has
come. Nothing is created ahead of the clock, so several hours of 20,000 jobs stay small, and
finished runs older than ``retention`` are dropped from the fake (its newest 10 per job stay).

A run's fate (failed, rejected, hours long, how long, which worker) is drawn from a hash of
(seed, job, fire time), not from a shared stream: the same seed gives the same runs whatever
steps the clock takes. Every failure is written to :attr:`Estate.failures`, so a benchmark can
check that each one was announced.

``python -m bench.estate`` measures what simulating an hour of a large estate costs.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.fakes.schedulerx import FakeSchedulerX

from schedulerx_alert.core.schedule import Schedule, TimeType

Kind = Literal["daily", "hourly", "minutes", "fixed_rate", "second_delay", "api"]
#: The mix of the issue; fixed rate and second delay share their 4 %.
MIX: dict[Kind, float] = {
    "daily": 0.60,
    "hourly": 0.25,
    "minutes": 0.10,
    "fixed_rate": 0.02,
    "second_delay": 0.02,
    "api": 0.01,
}
NAMESPACE = "estate-0000-4fe9-bbaa-20e90ffc0000"
MINUTE_STEPS = (5, 6, 10, 12, 15)  # divisors of 60: Quartz's 0/7 restarts every hour
FIXED_RATES = (60, 120, 300, 600, 900, 1800)
SECOND_DELAYS = (20, 30, 45, 60)
ERRORS = (
    "java.lang.NullPointerException: null\n\tat com.example.{name}.process(Job.java:88)",
    "java.sql.SQLTimeoutException: Statement cancelled due to timeout",
    "RPC timeout after 30000ms calling settlement-service",
    "processor exit code 137 (killed: out of memory)",
    "KeyError: '**total**' in [report](http://example.invalid) <b>#1</b>",  # text, not markup
)


@dataclass(frozen=True)
class EstateSpec:
    jobs: int = 1000
    groups: int = 20
    seed: int = 1
    namespace: str = NAMESPACE
    zone: str = "Asia/Shanghai"
    #: Share of fires that fail; of those, ``rejected_share`` are rejected instead (status 9,
    #: never started) and the rest fail (status 5) at the end of their run.
    failure_rate: float = 0.002
    rejected_share: float = 0.1
    #: Share of daily fires that run for 1-4 hours (daily jobs never overlap themselves).
    long_run_rate: float = 0.002
    disabled_share: float = 0.02
    api_triggers_per_hour: float = 1.0
    #: Finished runs scheduled longer ago than this are dropped from the fake.
    retention: float = 3 * 3600.0


@dataclass(frozen=True, slots=True)
class EstateJob:
    index: int
    job_id: int
    group: str
    name: str
    kind: Kind
    time_type: int
    expression: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class InjectedFailure:
    """A run the estate made fail: what "every failure announced" is checked against."""

    namespace: str
    group: str
    job_id: int
    instance_id: int
    status: int  # 5 failed, 9 rejected
    schedule_time: float
    end_time: float


@dataclass
class AdvanceStats:
    fires: int = 0
    finished: int = 0
    dropped: int = 0


@dataclass(slots=True)
class _Running:
    job: EstateJob
    instance_id: int
    status: int
    result: str
    end: float


@dataclass
class Estate:
    spec: EstateSpec
    jobs: list[EstateJob]
    failures: list[InjectedFailure] = field(default_factory=list)
    created: int = 0
    long_runs: int = 0

    def __post_init__(self) -> None:
        self._fake: FakeSchedulerX | None = None
        self._now = 0.0
        self._fires: list[tuple[float, int]] = []  # (fire time, job index)
        self._ends: list[tuple[float, int, _Running]] = []  # (end time, instance id, run)
        self._schedules: dict[tuple[int, str], Schedule] = {}
        self._anchors: dict[int, float] = {}
        self._last_prune = 0.0

    # -- the jobs --------------------------------------------------------------------------

    @classmethod
    def generate(cls, spec: EstateSpec) -> Estate:
        rng = random.Random(spec.seed)
        kinds = _quota(spec.jobs, MIX)
        rng.shuffle(kinds)
        # Real estates have a few big groups and many small ones.
        weights = [1 / math.sqrt(g + 1) for g in range(spec.groups)]
        groups = [f"estate.group{g:03d}" for g in range(spec.groups)]
        assigned = rng.choices(groups, weights, k=spec.jobs)
        for g, group in enumerate(groups[: spec.jobs]):  # no group left empty
            assigned[g] = group
        jobs = []
        for index, kind in enumerate(kinds):
            time_type, expression = _time_config(kind, rng)
            jobs.append(
                EstateJob(
                    index=index,
                    job_id=10_000_000 + index,
                    group=assigned[index],
                    name=f"{kind}-{index:05d}",
                    kind=kind,
                    time_type=time_type,
                    expression=expression,
                    enabled=rng.random() >= spec.disabled_share,
                )
            )
        return cls(spec, jobs)

    def mix(self) -> Counter[str]:
        return Counter(job.kind for job in self.jobs)

    def groups(self) -> list[str]:
        return sorted({job.group for job in self.jobs})

    # -- driving the fake ------------------------------------------------------------------

    def attach(self, fake: FakeSchedulerX, start: float) -> None:
        """Add every job to ``fake``; runs are created from ``start`` on."""
        self._fake = fake
        self._now = self._last_prune = start
        for job in self.jobs:
            fake.add_job(
                self.spec.namespace,
                job.group,
                job.job_id,
                job.name,
                status=1 if job.enabled else 0,
                time_type=job.time_type,
                time_expression=job.expression,
                monitor={"TimeoutEnable": True, "Timeout": 3600} if job.index % 10 == 0 else {},
                contacts=[{"UserName": f"owner-{job.index % 37}"}] if job.index % 5 == 0 else [],
            )
            if job.enabled:
                self._schedule_next(job, start)

    def advance_to(self, now: float) -> AdvanceStats:
        """Create the runs fired in ``(last, now]`` and finish those that ended by ``now``."""
        fake = self._require_fake()
        stats = AdvanceStats()
        # One timeline of fires and ends, so that a second delay's next fire (due when its
        # run ends) comes in order, and the runs do not depend on the steps taken.
        while True:
            next_fire = self._fires[0][0] if self._fires else math.inf
            next_end = self._ends[0][0] if self._ends else math.inf
            if min(next_fire, next_end) > now:
                break
            if next_end <= next_fire:
                _, _, run = heapq.heappop(self._ends)
                fake.set_status(run.instance_id, run.status, run.result, end_time=run.end)
                stats.finished += 1
                if run.job.kind == "second_delay":
                    self._push(run.end + float(run.job.expression), run.job)
            else:
                fire, index = heapq.heappop(self._fires)
                self._fire(fake, self.jobs[index], fire, now)
                stats.fires += 1
        self._now = now
        # Pruned on whole 10-minute marks, so any steps leave the same runs behind.
        mark = math.floor(now / 600) * 600
        if mark > self._last_prune:
            stats.dropped = fake.forget_instances(mark - self.spec.retention)
            self._last_prune = mark
        return stats

    def add_long_runs(self, count: int, hours: tuple[float, float], within: float) -> int:
        """Start ``count`` runs of enabled daily jobs scheduled ``hours`` (a range) before now,
        still running, each failing at a moment in the next ``within`` seconds: the runs a
        window on the schedule or start time would have to reach back hours for."""
        fake = self._require_fake()
        daily = [j for j in self.jobs if j.kind == "daily" and j.enabled]
        rng = random.Random(self.spec.seed * 7919 + count)
        made = 0
        for job in rng.sample(daily, min(count, len(daily))):
            scheduled = self._now - 3600 * rng.uniform(*hours)
            end = self._now + rng.uniform(60.0, max(60.0, within))
            result = ERRORS[made % len(ERRORS)].format(name=job.name)
            instance_id = fake.add_instance(
                job.job_id, status=3, schedule_time=scheduled, start_time=scheduled,
                work_addr=f"10.9.{made % 250}.1:16888",
            )  # fmt: skip
            heapq.heappush(
                self._ends, (end, instance_id, _Running(job, instance_id, 5, result, end))
            )
            self.failures.append(
                InjectedFailure(
                    self.spec.namespace, job.group, job.job_id, instance_id, 5, scheduled, end
                )
            )
            self.long_runs += 1
            made += 1
        return made

    def bad_deploy(self, group: str, count: int, spread: float = 120.0) -> int:
        """``count`` failed runs in ``group`` within ``spread`` seconds from now (a deploy
        that breaks every job of a group at once), round-robin over its jobs."""
        fake = self._require_fake()
        jobs = [j for j in self.jobs if j.group == group and j.enabled]
        for k in range(count):
            job = jobs[k % len(jobs)]
            fire = self._now + spread * k / count
            instance_id = fake.add_instance(
                job.job_id, status=5, result=ERRORS[k % len(ERRORS)].format(name=job.name),
                schedule_time=fire, start_time=fire, end_time=fire + 1,
            )  # fmt: skip
            self.failures.append(
                InjectedFailure(
                    self.spec.namespace, group, job.job_id, instance_id, 5, fire, fire + 1
                )
            )
        self.created += count
        return count

    def failures_ended_by(self, moment: float) -> list[InjectedFailure]:
        """The failures visible on the server at ``moment`` (their run has ended)."""
        return [f for f in self.failures if f.end_time <= moment]

    # -- internals -------------------------------------------------------------------------

    def _fire(self, fake: FakeSchedulerX, job: EstateJob, fire: float, now: float) -> None:
        u = _uniforms(self.spec.seed, job.job_id, fire)
        spec = self.spec
        failed = u[0] < spec.failure_rate
        rejected = failed and u[1] < spec.rejected_share
        long_run = job.kind == "daily" and u[2] < spec.long_run_rate
        if rejected:
            duration = 0.0
        elif long_run:
            duration = 3600 * (1 + 3 * u[3])
            self.long_runs += 1
        else:
            # Mostly seconds, sometimes minutes; shorter than the job's own period.
            duration = min(1 + 600 * u[3] ** 4, self._period(job) / 2)
        end = fire + duration
        status = (9 if rejected else 5) if failed else 4
        result = ERRORS[int(u[4] * len(ERRORS))].format(name=job.name) if failed else ""
        trigger = 3 if job.kind == "api" else 1
        worker = f"10.{job.index % 200}.{int(u[5] * 250)}.{1 + job.index % 250}:16888"
        if rejected:
            instance_id = fake.add_instance(
                job.job_id, status=9, result=result, schedule_time=fire, end_time=fire,
                trigger_type=trigger, work_addr="", started=False,
            )  # fmt: skip
        elif end <= now:
            instance_id = fake.add_instance(
                job.job_id, status=status, result=result, schedule_time=fire, end_time=end,
                trigger_type=trigger, work_addr=worker,
            )  # fmt: skip
        else:
            instance_id = fake.add_instance(
                job.job_id, status=3, schedule_time=fire, trigger_type=trigger,
                work_addr=worker,
            )  # fmt: skip
            run = _Running(job, instance_id, status, result, end)
            heapq.heappush(self._ends, (end, instance_id, run))
        self.created += 1
        if failed:
            self.failures.append(
                InjectedFailure(
                    spec.namespace, job.group, job.job_id, instance_id, status, fire, end
                )
            )
        if job.kind == "second_delay":
            if end <= now:  # otherwise the next fire is pushed when the run ends
                self._push(end + float(job.expression), job)
        elif job.kind == "api":
            hours = -math.log(1 - u[6]) / spec.api_triggers_per_hour
            self._push(fire + max(1.0, round(hours * 3600)), job)
        else:
            self._schedule_next(job, fire)

    def _schedule_next(self, job: EstateJob, after: float) -> None:
        if job.kind == "api":
            u = _uniforms(self.spec.seed, job.job_id, after)
            hours = -math.log(1 - u[6]) / self.spec.api_triggers_per_hour
            self._push(after + max(1.0, round(hours * 3600)), job)
            return
        if job.kind == "second_delay":  # only at attach: spread the first runs out
            u = _uniforms(self.spec.seed, job.job_id, after)
            self._push(after + 1 + round(u[7] * float(job.expression)), job)
            return
        fire = self._schedule(job).next_fire(after)
        if fire is not None:
            self._push(fire, job)

    def _schedule(self, job: EstateJob) -> Schedule:
        key = (job.time_type, job.expression)
        schedule = self._schedules.get(key)
        if schedule is None:
            schedule = Schedule.from_time_config(job.time_type, job.expression, self.spec.zone)
            self._schedules[key] = schedule
        if job.kind == "fixed_rate":
            # Each fixed-rate job has its own phase, as if enabled at a random moment.
            anchor = self._anchors.get(job.job_id)
            if anchor is None:
                anchor = self._anchors[job.job_id] = _uniforms(self.spec.seed, job.job_id, 0)[
                    7
                ] * float(job.expression)
            return schedule.with_anchor(anchor)
        return schedule

    def _period(self, job: EstateJob) -> float:
        if job.kind == "daily":
            return 86400.0
        if job.kind == "hourly":
            return 3600.0
        if job.kind == "minutes":
            return 60.0 * int(job.expression.split()[1].split("/")[1])
        if job.kind in ("fixed_rate", "second_delay"):
            return float(job.expression)
        return 3600.0

    def _push(self, fire: float, job: EstateJob) -> None:
        heapq.heappush(self._fires, (fire, job.index))

    def _require_fake(self) -> FakeSchedulerX:
        if self._fake is None:
            raise RuntimeError("attach(fake, start) first")
        return self._fake


def _quota(total: int, shares: dict[Kind, float]) -> list[Kind]:
    """Exactly ``round(share * total)`` of each kind (largest remainders fill the gap)."""
    exact = {kind: share * total for kind, share in shares.items()}
    counts = {kind: int(value) for kind, value in exact.items()}
    by_remainder = sorted(exact, key=lambda k: exact[k] - counts[k], reverse=True)
    for kind in by_remainder[: total - sum(counts.values())]:
        counts[kind] += 1
    return [kind for kind, count in counts.items() for _ in range(count)]


def _time_config(kind: Kind, rng: random.Random) -> tuple[int, str]:
    if kind == "daily":
        return TimeType.CRON, f"0 {rng.randrange(60)} {rng.randrange(24)} * * ?"
    if kind == "hourly":
        return TimeType.CRON, f"0 {rng.randrange(60)} * * * ?"
    if kind == "minutes":
        step = rng.choice(MINUTE_STEPS)
        return TimeType.CRON, f"0 {rng.randrange(step)}/{step} * * * ?"
    if kind == "fixed_rate":
        return TimeType.FIXED_RATE, str(rng.choice(FIXED_RATES))
    if kind == "second_delay":
        return TimeType.SECOND_DELAY, str(rng.choice(SECOND_DELAYS))
    return TimeType.API, ""


_MASK = (1 << 64) - 1


def _uniforms(seed: int, job_id: int, fire: float) -> tuple[float, ...]:
    """Eight uniforms in [0, 1) that depend only on (seed, job, fire), by splitmix64."""
    state = (seed * 0x9E3779B97F4A7C15 ^ job_id * 0xBF58476D1CE4E5B9 ^ round(fire * 1000)) & _MASK
    values = []
    for _ in range(8):
        state = (state + 0x9E3779B97F4A7C15) & _MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        z ^= z >> 31
        values.append((z >> 11) / float(1 << 53))
    return tuple(values)


# -- cost of the simulation itself -----------------------------------------------------------


def simulate(spec: EstateSpec, hours: float, step: float = 60.0) -> dict[str, float]:
    """Advance a detached fake (no HTTP) through ``hours`` in ``step``-second ticks."""
    fake = FakeSchedulerX(clock=lambda: 0.0)
    start = 1_795_572_000.0  # 2026-11-25 10:00 Asia/Shanghai
    began, cpu = time.perf_counter(), time.process_time()
    estate = Estate.generate(spec)
    estate.attach(fake, start)
    setup, setup_cpu = time.perf_counter() - began, time.process_time() - cpu
    began, cpu = time.perf_counter(), time.process_time()
    moment = start
    while moment < start + hours * 3600:
        moment += step
        estate.advance_to(moment)
    return {
        "setup_s": setup,
        "setup_cpu_s": setup_cpu,
        "advance_s": time.perf_counter() - began,
        "advance_cpu_s": time.process_time() - cpu,
        "runs": estate.created,
        "failures": len(estate.failures),
        "long_runs": estate.long_runs,
        "kept": fake.instance_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, nargs="*", default=[1000, 5000, 20_000])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    # CPU seconds beside wall seconds: on a shared machine the wall clock measures the others.
    print("\n| jobs | groups | simulated h | setup s (cpu) | advance s (cpu) | runs | failures "
          "| long runs | runs kept | peak MiB (tracemalloc) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for jobs in args.jobs:
        spec = EstateSpec(jobs=jobs, groups=20, seed=args.seed)
        timed = simulate(spec, args.hours)
        tracemalloc.start()
        simulate(spec, args.hours)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(
            f"| {jobs} | 20 | {args.hours:g} | {timed['setup_s']:.2f} ({timed['setup_cpu_s']:.2f}) "
            f"| {timed['advance_s']:.2f} ({timed['advance_cpu_s']:.2f}) "
            f"| {timed['runs']:.0f} | {timed['failures']:.0f} | {timed['long_runs']:.0f} "
            f"| {timed['kept']:.0f} | {peak:.1f} |"
        )


if __name__ == "__main__":
    main()


def failures_config(
    estate: Estate, schedulerx: dict[str, Any], state_url: str, webhook: str, secret: str
) -> dict[str, Any]:
    """The function's config for a bench estate: every group by `jobs: all`, failures
    only (each failed run one alert, found by its instance id), one signed robot."""
    return {
        "region": "cn-hangzhou",
        "allow_loopback_http": True,
        "schedulerx": schedulerx,
        "state": {"url": state_url},
        "dingtalk": {"allowed_hosts": ["127.0.0.1"]},
        "receivers": [{"name": "ops", "webhook": webhook, "secret": secret}],
        "watch": [
            {
                "namespace": estate.spec.namespace,
                "group": g,
                "jobs": "all",
                "receivers": ["ops"],
                "recovery": False,
                "stuck_after": "off",
                "flap_window": "off",
            }
            for g in estate.groups()
        ],
        "shared_cause": False,
    }


@dataclass(frozen=True)
class Scored:
    """One failure of the estate as the group heard of it: `first`, the tick it was
    first listable in; `at`, the tick it was announced in (None: never); `latency`, in
    ticks (inf: never); `scheduled`, whether a schedule (not an API call) ran it."""

    failure: Any
    first: int
    at: int | None
    latency: float
    scheduled: bool


def scored(
    estate: Estate, announced: Mapping[int, int], ticks: int, start: float, tick: float
) -> Iterator[Scored]:
    """The estate's failures that ended early enough to be judged (five ticks before
    the run's end), with when each was announced."""
    api_jobs = {j.job_id for j in estate.jobs if j.kind == "api"}
    for failure in estate.failures:
        first = math.ceil((failure.end_time - start) / tick)
        if first > ticks - 5:
            continue
        at = announced.get(failure.instance_id)
        latency = math.inf if at is None else at - max(first, 1) + 1
        yield Scored(failure, first, at, latency, failure.job_id not in api_jobs)
