"""Properties of the heartbeat's pure core: at most one digest per local day, one on every
day a tick comes after its time, counters that add up and stay small."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from schedulerx_alert.core import heartbeat_codec
from schedulerx_alert.core.heartbeat import (
    HOUR,
    JOBS_PER_HOUR,
    WINDOW_HOURS,
    HeartbeatRecord,
    Reading,
    TickCounts,
    arm,
    digest,
    due,
    local_day,
    mark_sent,
    observe,
    record_tick,
)
from schedulerx_alert.core.model import JobKey

# Zones without daylight saving time (the product's users are in these, or in UTC).
ZONES = ("Asia/Shanghai", "Asia/Tokyo", "Asia/Kolkata", "UTC", "Etc/GMT+5", "Pacific/Kiritimati")
START = datetime(2026, 11, 25, 0, 0).timestamp()

gaps = st.lists(
    st.one_of(
        st.floats(0.0, 59.0),  # ticks inside one minute
        st.floats(60.0, 3600.0),
        st.floats(3600.0, 3 * 86400.0),  # a function down for hours or days
    ),
    min_size=1,
    max_size=120,
)


def run(times: list[float], zones: list[str], at: int) -> list[tuple[float, str, date]]:
    """The ticks' decisions: (when, zone, date) for each digest sent."""
    record = HeartbeatRecord()
    sent = []
    for now, zone_name in zip(times, zones, strict=True):
        zone = ZoneInfo(zone_name)
        record = arm(record, now, zone, at)
        day = due(record, now, zone, at)
        if day is not None:
            record = mark_sent(record, day, now)
            sent.append((now, zone_name, day))
    return sent


def moments(offsets: list[float]) -> list[float]:
    times, now = [], START
    for gap in offsets:
        now += gap
        times.append(now)
    return times


@settings(deadline=None)
@given(gaps, st.sampled_from(ZONES), st.integers(0, 24 * 60 - 1))
def test_at_most_one_digest_per_local_day_and_never_before_its_time(
    offsets: list[float], zone_name: str, at: int
) -> None:
    times = moments(offsets)
    sent = run(times, [zone_name] * len(times), at)
    zone = ZoneInfo(zone_name)
    days = [local_day(now, zone)[0] for now, _, _ in sent]
    assert len(days) == len(set(days))
    for now, _, day in sent:
        local, minute = local_day(now, zone)
        assert day == local and minute >= at


@settings(deadline=None)
@given(gaps, st.sampled_from(ZONES), st.integers(0, 24 * 60 - 1))
def test_the_first_tick_at_or_after_its_time_on_each_day_sends_it(
    offsets: list[float], zone_name: str, at: int
) -> None:
    """A day on which some tick came at or after `at` gets its digest, from the first
    such tick (the day the record was armed excepted)."""
    times = moments(offsets)
    sent = {day: now for now, _, day in run(times, [zone_name] * len(times), at)}
    zone = ZoneInfo(zone_name)
    armed = local_day(times[0], zone)[0]
    first_after: dict[date, float] = {}
    for now in times:
        day, minute = local_day(now, zone)
        if minute >= at and day not in first_after:
            first_after[day] = now
    if local_day(times[0], zone)[1] >= at:
        first_after.pop(armed, None)
    assert sent == first_after


@settings(deadline=None)
@given(gaps, st.lists(st.sampled_from(ZONES), min_size=1), st.integers(0, 24 * 60 - 1))
def test_a_change_of_zone_never_sends_a_date_twice(
    offsets: list[float], zone_names: list[str], at: int
) -> None:
    times = moments(offsets)
    zones = [zone_names[i * len(zone_names) // len(times)] for i in range(len(times))]
    sent = run(times, zones, at)
    days = [day for _, _, day in sent]
    assert days == sorted(set(days)), "dates only move forward"


jobs = st.builds(
    lambda n: JobKey("adcfc35d-e2fe-4fe9-bbaa-20e90ffc1234", "etl.prod", n),
    st.integers(1, 5000),
)
tick = st.tuples(
    st.floats(0.0, 7200.0),
    st.integers(0, 50),
    st.dictionaries(jobs, st.integers(0, 5), max_size=30),
    st.integers(0, 3),
    st.sampled_from(("ok", "degraded", "failed", "skipped")),
)


@settings(deadline=None)
@given(st.lists(tick, min_size=1, max_size=80))
def test_the_digest_adds_up_what_the_window_saw_and_the_record_stays_bounded(
    ticks: list[tuple[float, int, dict[JobKey, int], int, str]],
) -> None:
    record = HeartbeatRecord()
    now = START
    seen: list[tuple[float, int, int, int, str]] = []
    for gap, runs, failures, recoveries, status in ticks:
        now += gap
        record = observe(
            record, TickCounts(runs, failures, recoveries, {"GetJobInstanceList": 2}), now
        )
        record = record_tick(record, status, "a problem" if status != "ok" else None, now)
        seen.append((now, runs, sum(failures.values()), recoveries, status))
    assert len(record.hours) <= WINDOW_HOURS + 1
    assert all(len(h.jobs) <= JOBS_PER_HOUR for h in record.hours)
    found = digest(record, date(2026, 11, 25), now, Reading(), top_jobs=5)
    start = (int(now // HOUR) - WINDOW_HOURS) * HOUR
    window = [s for s in seen if s[0] >= start]
    assert found.runs == sum(s[1] for s in window)
    assert found.failures == sum(s[2] for s in window)
    assert found.recoveries == sum(s[3] for s in window)
    assert found.ticks_degraded == sum(1 for s in window if s[4] == "degraded")
    assert found.ticks_ok + found.ticks_degraded + found.ticks_failed == sum(
        1 for s in window if s[4] != "skipped"
    )
    named = sum(j.failures for j in found.failing_jobs)
    assert named <= found.failures
    assert list(found.failing_jobs) == sorted(
        found.failing_jobs, key=lambda j: (-j.failures, j.job.encode())
    )
    assert ("ticks_failed" in found.impaired) == (found.ticks_failed > 0)
    assert heartbeat_codec.decode(json.loads(json.dumps(heartbeat_codec.encode(record)))) == record


def test_the_record_stays_small_with_five_thousand_jobs_failing_every_hour() -> None:
    """The heartbeat's share of the state is bounded by the hour, not by the jobs."""
    record = HeartbeatRecord()
    now = START
    every = {JobKey("adcfc35d-e2fe-4fe9-bbaa-20e90ffc1234", "etl.prod", n): 1 for n in range(5000)}
    for minute in range(26 * 60):
        now = START + minute * 60
        failures = every if minute % 60 == 0 else {}
        calls = {"GetJobInstanceList": 45, "ListJobs": 2, "GetJobInfo": 1}
        record = observe(record, TickCounts(90, failures, 1, calls), now)
        record = record_tick(record, "degraded", "x" * 1000, now)
    size = len(json.dumps(heartbeat_codec.encode(record), separators=(",", ":")))
    assert size < 10 * 1024, size
    found = digest(record, date(2026, 11, 26), now, Reading(watched=5000), top_jobs=5)
    assert found.failures == 25 * 5000 and found.unnamed_failures > 0
    assert found.more_failing_jobs >= 5
    assert (now - found.since) == timedelta(hours=24, minutes=59).total_seconds()
