"""The heartbeat's part of the state, apart from the rest of core/heartbeat.py: every
state carries one (empty without `heartbeat:`), so these two classes load on every cold
start while the counting, the digest and the codec load only where a heartbeat is
configured or the state holds counters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Hour:
    """What the ticks of one clock hour (UTC-aligned, `start` in epoch hours) saw."""

    start: int
    runs: int = 0
    failures: int = 0
    recoveries: int = 0
    ok: int = 0
    degraded: int = 0
    failed: int = 0
    calls: Mapping[str, int] = field(default_factory=dict)
    # Failed runs per job (JobKey.encode()), at most JOBS_PER_HOUR of them.
    jobs: Mapping[str, int] = field(default_factory=dict)
    # Failures of jobs left out of `jobs`.
    unnamed: int = 0
    # Alerts held back by silences or quiet hours (one per receiver owed it), and per
    # holder (core/silence_hold.py's `holder_of`, or "quiet"), at most HOLDERS_PER_HOUR of them.
    held: int = 0
    held_by: Mapping[str, int] = field(default_factory=dict)

    @property
    def ticks(self) -> int:
        return self.ok + self.degraded + self.failed


@dataclass(frozen=True)
class HeartbeatRecord:
    """The heartbeat's part of the state."""

    hours: tuple[Hour, ...] = ()
    # When counting began: the counters cover nothing before it.
    since: float | None = None
    # The local date (in the zone configured then) the last digest was sent for, or the
    # day before the first one is due (see `arm`); None before the first tick counted.
    sent_for: date | None = None
    sent_at: float | None = None
    # The first problem of the last broken tick, and when that tick ran: one line, kept
    # once rather than per hour.
    problem: str | None = None
    problem_at: float | None = None
