"""Polling every watched job within SchedulerX's quota and the tick's time."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..listing import EntryProblem, Listing, cut
from ..model import JobInstance, JobKey
from .schedulerx import SchedulerXClient, SchedulerXError

WINDOW_SECONDS = 60.0


class CallBudget:
    """A sliding one-minute window of API calls, shared by threads and ticks.

    Seeded with the calls earlier ticks made (kept in the state), so two ticks
    inside one minute together stay under the quota.
    """

    def __init__(self, limit: int, history: Iterable[float], clock: Callable[[], float]) -> None:
        self.limit = limit
        self.clock = clock
        self._lock = threading.Lock()
        now = clock()
        self._calls = deque(sorted(t for t in history if now - t < WINDOW_SECONDS))

    def try_acquire(self) -> bool:
        with self._lock:
            now = self.clock()
            while self._calls and now - self._calls[0] >= WINDOW_SECONDS:
                self._calls.popleft()
            if len(self._calls) >= self.limit:
                return False
            self._calls.append(now)
            return True

    def recent(self) -> tuple[float, ...]:
        with self._lock:
            now = self.clock()
            return tuple(t for t in self._calls if now - t < WINDOW_SECONDS)


@dataclass
class FetchResult:
    polls: dict[JobKey, list[JobInstance]] = field(default_factory=dict)
    errors: dict[JobKey, str] = field(default_factory=dict)
    # Listed runs that could not be read, in poll order; the runs beside them still count.
    problems: list[EntryProblem] = field(default_factory=list)
    # Jobs not polled because the quota or the time ran out; first in line next tick.
    deferred: list[JobKey] = field(default_factory=list)
    calls: int = 0
    auth_errors: int = 0


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    base_delay: float = 0.5
    throttled_delay: float = 2.0


def fetch_all(
    client: SchedulerXClient,
    jobs: Sequence[JobKey],
    budget: CallBudget,
    deadline: float,
    concurrency: int = 4,
    retry: RetryPolicy = RetryPolicy(),
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> FetchResult:
    """List the instances of each job; per-job failures are collected, not raised."""
    result = FetchResult()
    lock = threading.Lock()

    def poll(job: JobKey) -> None:
        outcome = _poll_one(client, job, budget, deadline, retry, clock, sleep)
        with lock:
            result.calls += outcome.calls
            listing = outcome.listing
            if listing is not None:
                result.problems.extend(listing.problems)
            if listing is not None and listing.entries and not listing.instances:
                # Runs were listed and none could be read: an answer, not an empty job.
                result.errors[job] = (
                    f"GetJobInstanceList: none of the {listing.entries} run(s) listed "
                    f"could be read, e.g. {listing.problems[0]}"
                )
            elif listing is not None:
                result.polls[job] = list(listing.instances)
            elif outcome.deferred:
                result.deferred.append(job)
            else:
                result.errors[job] = outcome.error or "unknown error"
                result.auth_errors += outcome.auth

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        list(pool.map(poll, jobs))
    position = {job: index for index, job in enumerate(jobs)}
    result.deferred.sort(key=position.__getitem__)
    result.problems.sort(key=lambda problem: position[problem.job])
    return result


@dataclass
class _Outcome:
    listing: Listing | None = None
    error: str | None = None
    deferred: bool = False
    calls: int = 0
    auth: int = 0


def _poll_one(
    client: SchedulerXClient,
    job: JobKey,
    budget: CallBudget,
    deadline: float,
    retry: RetryPolicy,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> _Outcome:
    outcome = _Outcome()
    for attempt in range(retry.attempts):
        if clock() + client.timeout > deadline:
            outcome.deferred = outcome.calls == 0
            outcome.error = outcome.error or "no time left in this tick"
            return outcome
        if not budget.try_acquire():
            outcome.deferred = outcome.calls == 0
            outcome.error = outcome.error or "API quota for this minute used up"
            return outcome
        outcome.calls += 1
        try:
            outcome.listing = client.get_job_instance_list(job)
            return outcome
        except SchedulerXError as exc:
            outcome.error = str(exc)
            outcome.auth = int(exc.auth)
            if not exc.retryable or attempt + 1 == retry.attempts:
                return outcome
            delay = retry.throttled_delay if exc.throttled else retry.base_delay
            delay = delay * (2**attempt) * random.uniform(0.8, 1.2)
            if clock() + delay + client.timeout > deadline:
                return outcome
            sleep(delay)
        except Exception as exc:
            # A defect, or an answer no check foresaw: this job fails, the other
            # jobs' alerts still go out.
            outcome.error = (
                "GetJobInstanceList: answer could not be read "
                f"({type(exc).__name__}: {cut(str(exc))})"
            )
            return outcome
    return outcome
