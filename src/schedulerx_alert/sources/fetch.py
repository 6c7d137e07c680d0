"""Polling every watched job within SchedulerX's quota and the tick's time."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from schedulerx_alert.core.model import JobInstance, JobKey
from schedulerx_alert.sources.listing import EntryProblem, Listing, cut
from schedulerx_alert.sources.schedulerx import SchedulerXClient, SchedulerXError

WINDOW_SECONDS = 60.0
#: How long into its life a budget waits for room in the window. Ticks start a minute
#: apart: the calls the last tick made in its first seconds free up in this tick's first
#: seconds, so waiting that long takes the whole quota in the steady state; a tick started
#: by hand within the minute does not sit out the rest of it.
PACE_SECONDS = 20.0


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
        self.wait_until = now + PACE_SECONDS

    def try_acquire(self) -> bool:
        with self._lock:
            now = self.clock()
            while self._calls and now - self._calls[0] >= WINDOW_SECONDS:
                self._calls.popleft()
            if len(self._calls) >= self.limit:
                return False
            self._calls.append(now)
            return True

    def acquire(self, until: float, sleep: Callable[[float], None]) -> bool:
        """Take a place in the window, waiting for one to free if that happens by `until`.

        Ticks start a minute apart, so the calls the last tick spread over its seconds
        leave the window while this one runs: waiting for them uses the quota in full,
        where refusing at once would leave this tick only what the last one did not use.
        """
        while True:
            with self._lock:
                now = self.clock()
                while self._calls and now - self._calls[0] >= WINDOW_SECONDS:
                    self._calls.popleft()
                if len(self._calls) < self.limit:
                    self._calls.append(now)
                    return True
                frees = self._calls[len(self._calls) - self.limit] + WINDOW_SECONDS
            if frees > min(until, self.wait_until):
                return False
            sleep(max(frees - now, 0.001))

    def free_by(self, moment: float) -> int:
        """Places in the window free at `moment` (no later than the budget waits for),
        counting only the calls made so far."""
        moment = min(moment, self.wait_until)
        with self._lock:
            return max(0, self.limit - sum(moment - t < WINDOW_SECONDS for t in self._calls))

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


DEFAULT_RETRY = RetryPolicy()


def fetch_all(
    client: SchedulerXClient,
    jobs: Sequence[JobKey],
    budget: CallBudget,
    deadline: float,
    concurrency: int = 4,
    retry: RetryPolicy = DEFAULT_RETRY,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> FetchResult:
    """List the instances of each job; per-job failures are collected, not raised."""
    result = FetchResult()
    lock = threading.Lock()

    def poll(job: JobKey) -> None:
        outcome = poll_job(client, job, budget, deadline, retry, clock, sleep)
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
class PollOutcome:
    listing: Listing | None = None
    error: str | None = None
    deferred: bool = False
    calls: int = 0
    auth: int = 0


T = TypeVar("T")


@dataclass
class Attempt(Generic[T]):
    """One call, retried within the tick: its value, or why there is none."""

    value: T | None = None
    error: SchedulerXError | None = None
    # No call was made: the quota or the time ran out first.
    deferred: bool = False
    # Why the call was not made (or not made again).
    stopped: str = ""
    calls: int = 0


def attempt(
    call: Callable[[], T],
    budget: CallBudget,
    deadline: float,
    timeout: float,
    retry: RetryPolicy,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> Attempt[T]:
    """Make `call` within the quota and the deadline, retrying what may pass (throttling,
    5xx, timeouts); SchedulerXError is kept, anything else propagates."""
    outcome: Attempt[T] = Attempt()
    for number in range(retry.attempts):
        if clock() + timeout > deadline:
            outcome.stopped = "no time left in this tick"
            break
        if not budget.acquire(deadline - timeout, sleep):
            outcome.stopped = "API quota for this minute used up"
            break
        outcome.calls += 1
        try:
            outcome.value = call()
            outcome.error = None
            return outcome
        except SchedulerXError as exc:
            outcome.error = exc
            if not exc.retryable or number + 1 == retry.attempts:
                return outcome
            delay = retry.throttled_delay if exc.throttled else retry.base_delay
            delay = delay * (2**number) * random.uniform(0.8, 1.2)
            if clock() + delay + timeout > deadline:
                return outcome
            sleep(delay)
    outcome.deferred = outcome.calls == 0
    return outcome


def poll_job(
    client: SchedulerXClient,
    job: JobKey,
    budget: CallBudget,
    deadline: float,
    retry: RetryPolicy,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> PollOutcome:
    try:
        tried = attempt(
            lambda: client.get_job_instance_list(job),
            budget,
            deadline,
            client.timeout,
            retry,
            clock,
            sleep,
        )
    except Exception as exc:
        # A defect, or an answer no check foresaw: this job fails, the other
        # jobs' alerts still go out.
        return PollOutcome(
            error="GetJobInstanceList: answer could not be read "
            f"({type(exc).__name__}: {cut(str(exc))})",
            calls=1,
        )
    outcome = PollOutcome(listing=tried.value, deferred=tried.deferred, calls=tried.calls)
    if tried.error is not None:
        outcome.error = str(tried.error)
        outcome.auth = int(tried.error.auth)
    elif tried.value is None:
        outcome.error = tried.stopped
    return outcome
