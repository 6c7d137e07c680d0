"""Fire times of SchedulerX jobs, read from TimeConfig the way SchedulerX writes it.

Crons are Quartz: seconds first, ``?``, ``L``, ``W``, ``#``, an optional year, days of the
week 1 (SUN) to 7 (SAT). Expected dates were read off a calendar, not computed.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedulerx_alert.core.schedule import (
    Schedule,
    ScheduleError,
    TimeType,
    UnsupportedScheduleError,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
# Wednesday 2026-11-25 10:00 in Shanghai.
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI).timestamp()
DAY = 86400.0


def cron(expression: str, zone: ZoneInfo = SHANGHAI) -> Schedule:
    return Schedule.from_time_config(TimeType.CRON, expression, zone)


def local(schedule: Schedule, after: float = NOW, days: float = 400, limit: int = 6) -> list[str]:
    fires = schedule.fires_between(after, after + days * DAY, limit)
    return [
        datetime.fromtimestamp(f, schedule.zone).strftime("%a %Y-%m-%d %H:%M:%S") for f in fires
    ]


# -- SchedulerX-style crons ------------------------------------------------------------------


def test_every_five_minutes() -> None:
    assert local(cron("0 0/5 * * * ?"), limit=3) == [
        "Wed 2026-11-25 10:05:00",
        "Wed 2026-11-25 10:10:00",
        "Wed 2026-11-25 10:15:00",
    ]


def test_daily_at_two_is_read_in_the_zone_given() -> None:
    fires = cron("0 0 2 * * ?").fires_between(NOW, NOW + 2 * DAY)
    assert [datetime.fromtimestamp(f, ZoneInfo("UTC")).isoformat() for f in fires] == [
        "2026-11-25T18:00:00+00:00",
        "2026-11-26T18:00:00+00:00",
    ]


def test_quartz_six_hash_three_is_the_third_friday() -> None:
    # croniter alone would read 6#3 as the third Saturday.
    assert local(cron("0 15 10 ? * 6#3"), limit=3) == [
        "Fri 2026-12-18 10:15:00",
        "Fri 2027-01-15 10:15:00",
        "Fri 2027-02-19 10:15:00",
    ]
    assert local(cron("0 15 10 ? * FRI#3"), limit=3) == local(cron("0 15 10 ? * 6#3"), limit=3)


def test_last_day_of_the_month_including_february_of_a_leap_year() -> None:
    fires = local(cron("0 0 12 L * ?"), days=900, limit=40)
    assert fires[:4] == [
        "Mon 2026-11-30 12:00:00",
        "Thu 2026-12-31 12:00:00",
        "Sun 2027-01-31 12:00:00",
        "Sun 2027-02-28 12:00:00",
    ]
    assert "Tue 2028-02-29 12:00:00" in fires


@pytest.mark.parametrize("days", ["MON-FRI", "2-6", "2,3,4,5,6", "mon-fri"])
def test_weekdays_by_name_or_by_quartz_number(days: str) -> None:
    assert local(cron(f"0 0 9 ? * {days}"), limit=5) == [
        "Thu 2026-11-26 09:00:00",
        "Fri 2026-11-27 09:00:00",
        "Mon 2026-11-30 09:00:00",
        "Tue 2026-12-01 09:00:00",
        "Wed 2026-12-02 09:00:00",
    ]


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ("1,7", ["Sat 2026-11-28", "Sun 2026-11-29", "Sat 2026-12-05"]),
        ("SUN,SAT", ["Sat 2026-11-28", "Sun 2026-11-29", "Sat 2026-12-05"]),
        ("7", ["Sat 2026-11-28", "Sat 2026-12-05", "Sat 2026-12-12"]),
        ("L", ["Sat 2026-11-28", "Sat 2026-12-05", "Sat 2026-12-12"]),  # L alone: SAT
        ("6L", ["Fri 2026-11-27", "Fri 2026-12-25", "Fri 2027-01-29"]),  # last Friday
        ("1#1", ["Sun 2026-12-06", "Sun 2027-01-03", "Sun 2027-02-07"]),
        ("2-2", ["Mon 2026-11-30", "Mon 2026-12-07", "Mon 2026-12-14"]),  # not "every day"
        ("2/2", ["Wed 2026-11-25", "Fri 2026-11-27", "Mon 2026-11-30"]),  # MON, WED, FRI
        ("6-2", ["Fri 2026-11-27", "Sat 2026-11-28", "Sun 2026-11-29", "Mon 2026-11-30"]),
    ],
)
def test_day_of_week_forms(days: str, expected: list[str]) -> None:
    fires = local(cron(f"0 0 12 ? * {days}"), limit=len(expected))
    assert [f[:14] for f in fires] == expected


def test_nearest_weekday_stays_in_its_month() -> None:
    # 2026-11-15 is a Sunday: Monday the 16th. 2026-08-15 is a Saturday: Friday the 14th.
    fires = local(cron("0 30 1 15W * ?"), after=datetime(2026, 7, 1).timestamp(), limit=5)
    assert fires == [
        "Wed 2026-07-15 01:30:00",
        "Fri 2026-08-14 01:30:00",
        "Tue 2026-09-15 01:30:00",
        "Thu 2026-10-15 01:30:00",
        "Mon 2026-11-16 01:30:00",
    ]
    # 2026-08-01 is a Saturday: Quartz moves to Monday the 3rd, not back into July.
    first = local(cron("0 30 1 1W * ?"), after=datetime(2026, 7, 15).timestamp(), limit=1)
    assert first == ["Mon 2026-08-03 01:30:00"]


def test_year_field_and_a_schedule_that_has_ended() -> None:
    once = cron("0 0 12 1 1 ? 2030")
    assert local(once, days=3650, limit=3) == ["Tue 2030-01-01 12:00:00"]
    assert once.next_fire(datetime(2030, 1, 2, tzinfo=SHANGHAI).timestamp()) is None
    assert local(cron("0 0 12 1 JAN ? 2030-2031"), days=3650) == [
        "Tue 2030-01-01 12:00:00",
        "Wed 2031-01-01 12:00:00",
    ]
    ended = cron("0 0 12 * * ? 2020")
    assert ended.next_fire(NOW) is None
    assert ended.fires_between(NOW, NOW + 365 * DAY) == []
    assert ended.prev_fire(NOW) == datetime(2020, 12, 31, 12, tzinfo=SHANGHAI).timestamp()


def test_seconds_and_month_names() -> None:
    assert local(cron("*/20 * * * * ?"), limit=3) == [
        "Wed 2026-11-25 10:00:20",
        "Wed 2026-11-25 10:00:40",
        "Wed 2026-11-25 10:01:00",
    ]
    assert local(cron("0 0 0 1 JAN-MAR/2 ?"), limit=2) == [
        "Fri 2027-01-01 00:00:00",
        "Mon 2027-03-01 00:00:00",
    ]


# -- a zone with daylight saving time --------------------------------------------------------


def test_dst_spring_forward_still_fires_once_that_day() -> None:
    # Berlin skips 02:00-03:00 on 2026-03-29. croniter fires at the end of the gap; Quartz
    # may pick another time in or after it (not verified). Either way: once, that day.
    after = datetime(2026, 3, 27, 12, tzinfo=BERLIN).timestamp()
    fires = local(cron("0 30 2 * * ?", BERLIN), after=after, days=4)
    assert [f[:14] for f in fires] == [
        "Sat 2026-03-28",
        "Sun 2026-03-29",
        "Mon 2026-03-30",
        "Tue 2026-03-31",
    ]
    assert "03:00:00" <= fires[1][-8:] <= "03:30:00"


def test_dst_fall_back_counts_real_time() -> None:
    # 2026-10-25 02:00-03:00 happens twice in Berlin. An every-30-minutes job fires on real
    # time, so the repeated hour has its fires too: four between 02:00 and 03:00 local.
    after = datetime(2026, 10, 25, 1, 50, tzinfo=BERLIN).timestamp()
    fires = cron("0 0/30 * * * ?", BERLIN).fires_between(after, after + 3 * 3600)
    assert [b - a for a, b in itertools.pairwise(fires)] == [1800.0] * (len(fires) - 1)
    assert len(fires) == 6


def test_shanghai_has_no_dst_every_day_is_24_hours() -> None:
    fires = cron("0 0 2 * * ?").fires_between(NOW, NOW + 365 * DAY, limit=400)
    assert len(fires) == 365
    assert {b - a for a, b in itertools.pairwise(fires)} == {DAY}


# -- next, previous, windows -----------------------------------------------------------------


def test_next_is_strictly_after_and_previous_is_at_or_before() -> None:
    every5 = cron("0 0/5 * * * ?")
    on_fire = NOW + 300
    assert every5.next_fire(on_fire) == on_fire + 300
    assert every5.next_fire(on_fire - 0.5) == on_fire
    assert every5.prev_fire(on_fire) == on_fire
    assert every5.prev_fire(on_fire + 299.9) == on_fire
    assert every5.prev_fire(on_fire - 0.1) == NOW
    # (after, until]: the left end is out, the right end is in.
    assert every5.fires_between(NOW, NOW + 600) == [NOW + 300, NOW + 600]
    assert every5.fires_between(NOW, NOW + 3600, limit=2) == [NOW + 300, NOW + 600]
    assert every5.fires_between(NOW, NOW) == []


# -- the other time types --------------------------------------------------------------------


def test_fixed_rate_is_a_grid_exact_only_once_anchored() -> None:
    rate = Schedule.from_time_config(TimeType.FIXED_RATE, "600", SHANGHAI)
    assert (rate.period, rate.exact) == (600.0, False)
    anchored = rate.with_anchor(NOW + 7)
    assert anchored.exact
    assert anchored.fires_between(NOW, NOW + 1800) == [NOW + 7, NOW + 607, NOW + 1207]
    assert anchored.prev_fire(NOW + 606.9) == NOW + 7
    assert anchored.prev_fire(NOW + 607) == NOW + 607
    assert anchored.next_fire(NOW + 607) == NOW + 1207


def test_second_delay_is_never_exact() -> None:
    delay = Schedule.from_time_config(TimeType.SECOND_DELAY, " 30 ", SHANGHAI, anchor=NOW)
    assert not delay.exact
    assert not delay.with_anchor(NOW).exact
    assert delay.fires_between(NOW, NOW + 90) == [NOW + 30, NOW + 60, NOW + 90]


@pytest.mark.parametrize(
    "text", ["2026-11-25 10:00:00", "2026-11-25T10:00:00", "1795572000000", "1795572000"]
)
def test_one_time(text: str) -> None:
    once = Schedule.from_time_config(TimeType.ONE_TIME, text, "Asia/Shanghai")
    assert once.at == NOW
    assert once.fires_between(NOW - 1, NOW + DAY) == [NOW]
    assert once.next_fire(NOW) is None
    assert once.prev_fire(NOW) == NOW
    assert once.prev_fire(NOW - 1) is None


@pytest.mark.parametrize(
    ("time_type", "expression"), [(TimeType.API, ""), (TimeType.NONE, None), (100, "api")]
)
def test_api_and_none_never_fire(time_type: int, expression: str | None) -> None:
    schedule = Schedule.from_time_config(time_type, expression, SHANGHAI)
    assert not schedule.fires
    assert schedule.fires_between(NOW, NOW + 365 * DAY) == []
    assert (schedule.next_fire(NOW), schedule.prev_fire(NOW)) == (None, None)


def test_a_custom_calendar_makes_a_cron_a_superset() -> None:
    workdays = Schedule.from_time_config(1, "0 0 2 * * ?", SHANGHAI, calendar="cn_workday")
    assert not workdays.exact
    assert workdays.fires_between(NOW, NOW + DAY) == cron("0 0 2 * * ?").fires_between(
        NOW, NOW + DAY
    )


# -- errors name the expression --------------------------------------------------------------


@pytest.mark.parametrize(
    ("time_type", "expression", "reason"),
    [
        (1, "0 */5 * * *", "6 or 7 fields"),
        (1, "0 0 0 1 1 ? 2030 x", "6 or 7 fields"),
        (1, "", "6 or 7 fields"),
        (1, "0 0 12 ? * 8", "day-of-week '8' is not 1-7"),
        (1, "0 0 12 ? * 0", "day-of-week '0' is not 1-7"),
        (1, "0 0 12 ? * FRIDAY", "is not Quartz"),
        (1, "0 0 12 ? * 2-6#2", "L and # take one day"),
        (1, "0 0 12 1 FOO ?", "month 'FOO'"),
        (1, "H 0 12 * * ?", "second field 'H'"),
        (1, "0 0 12 1 * MON", "'?' in day-of-month or day-of-week"),
        (1, "0 0 25 * * ?", "out of range"),
        (1, "0 0 12 ? * 2#6", "day_of_week"),
        (3, "abc", "whole number of seconds"),
        (3, "0", "whole number of seconds"),
        (4, "-5", "whole number of seconds"),
        (5, "tomorrow", "yyyy-MM-dd HH:mm:ss"),
        (2, "0 0 2 * * ?", "unknown TimeType"),
    ],
)
def test_invalid_time_configs_are_named(time_type: int, expression: str, reason: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        Schedule.from_time_config(time_type, expression, SHANGHAI)
    assert reason in str(caught.value)
    assert repr(expression.strip()) in str(caught.value)
    assert caught.value.expression == expression.strip()


@pytest.mark.parametrize("expression", ["0 0 12 LW * ?", "0 0 12 L-3 * ?"])
def test_valid_quartz_that_croniter_cannot_compute_is_unsupported(expression: str) -> None:
    with pytest.raises(UnsupportedScheduleError, match="not supported"):
        cron(expression)


def test_unknown_zone() -> None:
    with pytest.raises(ScheduleError, match="unknown time zone 'Mars/Olympus'"):
        Schedule.from_time_config(1, "0 0 2 * * ?", "Mars/Olympus")


# -- properties ------------------------------------------------------------------------------

EXPRESSIONS = [
    "0 0/5 * * * ?",
    "0 0 2 * * ?",
    "0 15 10 ? * 6#3",
    "0 0 12 L * ?",
    "0 0 9 ? * MON-FRI",
    "0 30 1 15W * ?",
    "0 30 2 * * ?",
    "30 0/7 8-20 ? * 2-6",
    "0 0 0 1 1 ? 2027-2029",
    "0 10,40 * ? * 6L",
]
ZONES = [SHANGHAI, BERLIN, ZoneInfo("America/New_York")]
TIMES = st.floats(min_value=1.6e9, max_value=2.0e9, allow_nan=False)
# Around the 2026 clock changes in Berlin and New York, where fires are easiest to get wrong.
DST_CHANGES = [
    datetime(2026, 3, 29, 1, tzinfo=ZoneInfo("UTC")).timestamp(),
    datetime(2026, 10, 25, 1, tzinfo=ZoneInfo("UTC")).timestamp(),
    datetime(2026, 3, 8, 7, tzinfo=ZoneInfo("UTC")).timestamp(),
    datetime(2026, 11, 1, 6, tzinfo=ZoneInfo("UTC")).timestamp(),
]
NEAR_DST = st.builds(
    lambda change, offset: change + offset,
    st.sampled_from(DST_CHANGES),
    st.floats(min_value=-2 * DAY, max_value=DAY),
)


@settings(deadline=None)
@given(
    expression=st.sampled_from(EXPRESSIONS),
    zone=st.sampled_from(ZONES),
    after=st.one_of(TIMES, NEAR_DST),
    span=st.floats(min_value=0, max_value=4 * DAY),
    cut=st.floats(min_value=0, max_value=1),
)
def test_fires_increase_strictly_and_lie_in_the_window(
    expression: str, zone: ZoneInfo, after: float, span: float, cut: float
) -> None:
    schedule = cron(expression, zone)
    until = after + span
    fires = schedule.fires_between(after, until, limit=100_000)
    assert all(after < f <= until for f in fires)
    assert all(a < b for a, b in itertools.pairwise(fires))
    if fires:
        assert schedule.next_fire(after) == fires[0]
        assert schedule.prev_fire(fires[-1]) == fires[-1]
    # The last fire at or before `after` is followed by the first one after it.
    previous = schedule.prev_fire(after)
    if previous is not None:
        assert previous <= after
        assert schedule.next_fire(previous) == schedule.next_fire(after)
    # Splitting a window never loses or repeats a fire.
    middle = after + cut * span
    halves = schedule.fires_between(after, middle, 100_000) + schedule.fires_between(
        middle, until, 100_000
    )
    assert halves == fires


@settings(deadline=None)
@given(day=st.integers(min_value=1, max_value=7), after=TIMES)
def test_quartz_day_numbers_count_from_sunday_as_one(day: int, after: float) -> None:
    by_number = cron(f"0 0 12 ? * {day}")
    by_name = cron(f"0 0 12 ? * {('SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT')[day - 1]}")
    fires = by_number.fires_between(after, after + 21 * DAY)
    assert fires == by_name.fires_between(after, after + 21 * DAY)
    assert len(fires) == 3
    for fire in fires:
        assert datetime.fromtimestamp(fire, SHANGHAI).isoweekday() % 7 + 1 == day


@settings(deadline=None)
@given(
    period=st.integers(min_value=1, max_value=7200),
    anchor=TIMES,
    after=TIMES,
    span=st.floats(min_value=0, max_value=DAY),
)
def test_fixed_rate_fires_are_on_the_grid(
    period: int, anchor: float, after: float, span: float
) -> None:
    rate = Schedule.from_time_config(TimeType.FIXED_RATE, str(period), SHANGHAI, anchor=anchor)
    fires = rate.fires_between(after, after + span, limit=100_000)
    assert all(after < f <= after + span for f in fires)
    assert all(a < b for a, b in itertools.pairwise(fires))
    first = rate.next_fire(after)
    assert first is not None and after < first <= after + period
    previous = rate.prev_fire(after)
    assert previous is not None and after - period < previous <= after
