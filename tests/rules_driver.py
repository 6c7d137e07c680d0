"""A small SchedulerX-shaped world for the rule engine's stories and properties.

`Monitor` keeps what the real tick keeps between ticks (the rules' memory, round-tripped
through JSON as the state codec will, and the instances it has seen), and lists each job
the way GetJobInstanceList does: its last 10 runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from schedulerx_alert.core.findings import Finding
from schedulerx_alert.core.model import InstanceStatus, JobInstance, JobKey, TriggerType
from schedulerx_alert.core.rules import (
    JobHistory,
    JobRuleState,
    JobSchedule,
    RuleSettings,
    Seen,
    evaluate,
    memory_from_json,
    memory_to_json,
)
from tests.builders import GROUP, NS, SHANGHAI, T0

MINUTE = 60.0
HOUR = 3600.0
LISTED = 10


def key(job_id: int = 92583) -> JobKey:
    return JobKey(NS, GROUP, job_id)


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, SHANGHAI)


def run(
    instance_id: int,
    status: InstanceStatus = InstanceStatus.FAILED,
    *,
    ended: float | None = None,
    started: float | None = None,
    job_id: int = 92583,
    trigger: TriggerType | int | None = TriggerType.SCHEDULED,
    result: str = "",
) -> JobInstance:
    """A run; a finished one defaults to starting 20 s before it ended, due 10 s before that."""
    if started is None:
        started = (ended - 20) if ended is not None else T0
    return JobInstance(
        job=key(job_id),
        instance_id=instance_id,
        status_code=int(status),
        result=result,
        schedule_time=at(started - 10),
        start_time=at(started),
        end_time=at(ended) if ended is not None else None,
        trigger_type=None if trigger is None else int(trigger),
        time_type=1,
        work_addr="10.0.0.5:16888",
    )


@dataclass
class Monitor:
    settings: Mapping[JobKey, RuleSettings] = field(default_factory=lambda: {key(): RuleSettings()})
    schedules: Mapping[JobKey, JobSchedule] = field(default_factory=dict)
    shared_cause_min_jobs: int = 2
    memory: dict[JobKey, JobRuleState] = field(default_factory=dict)
    seen: dict[JobKey, dict[int, Seen]] = field(default_factory=dict)
    server: dict[JobKey, dict[int, JobInstance]] = field(default_factory=dict)
    largest_memory: int = 0

    def report(self, *runs: JobInstance) -> None:
        """SchedulerX records these runs (a run with a known id is updated)."""
        for inst in runs:
            self.server.setdefault(inst.job, {})[inst.instance_id] = inst

    def listing(self, job: JobKey) -> tuple[JobInstance, ...]:
        runs = self.server.get(job, {})
        return tuple(runs[i] for i in sorted(runs)[-LISTED:])

    def tick(
        self, now: float, *runs: JobInstance, hidden: frozenset[int] = frozenset()
    ) -> list[Finding]:
        """One tick at `now` after SchedulerX recorded `runs`; `hidden` runs drop out of
        this tick's listing (a flaky answer)."""
        self.report(*runs)
        histories = {
            job: JobHistory(
                job,
                tuple(i for i in self.listing(job) if i.instance_id not in hidden),
                dict(self.seen.get(job, {})),
            )
            for job in self.settings
        }
        findings, memory = evaluate(
            histories,
            self.settings,
            self.schedules,
            self.memory,
            now,
            shared_cause_min_jobs=self.shared_cause_min_jobs,
        )
        stored = json.dumps({str(job): memory_to_json(state) for job, state in memory.items()})
        self.largest_memory = max(
            self.largest_memory, *(len(json.dumps(memory_to_json(s))) for s in memory.values()), 0
        )
        self.memory = {
            JobKey.parse(job): memory_from_json(raw) for job, raw in json.loads(stored).items()
        }
        for job, history in histories.items():
            self.seen[job] = history.remembered()
        return list(findings)


def kinds(findings: list[Finding]) -> list[str]:
    return [f.kind for f in findings]


@dataclass(frozen=True)
class Daily:
    """A stub of core/schedule.Schedule: fires every day at hour:minute in `zone`."""

    hour: int
    minute: int = 0
    zone: ZoneInfo = SHANGHAI

    def fires_between(self, after: float, until: float, limit: int) -> list[float]:
        fires: list[float] = []
        day = datetime.fromtimestamp(after, self.zone).date()
        while len(fires) < limit:
            fire = datetime.combine(day, time(self.hour, self.minute), self.zone).timestamp()
            if fire > until:
                break
            if fire > after:
                fires.append(fire)
            day += timedelta(days=1)
        return fires


@dataclass(frozen=True)
class Every:
    """A stub schedule firing every `period` seconds from `anchor`."""

    period: float
    anchor: float = T0

    def fires_between(self, after: float, until: float, limit: int) -> list[float]:
        steps = max(0, int((after - self.anchor) // self.period) + 1)
        fires: list[float] = []
        fire = self.anchor + steps * self.period
        while fire <= until and len(fires) < limit:
            if fire > after:
                fires.append(fire)
            fire += self.period
        return fires


def with_settings(**changes: object) -> dict[JobKey, RuleSettings]:
    return {key(): replace(RuleSettings(), **changes)}  # type: ignore[arg-type]
