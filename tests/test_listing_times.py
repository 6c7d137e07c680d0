"""A run's times in SchedulerX's own form (`yyyy-MM-dd HH:mm:ss`) are read without strptime
(most of an answer's CPU: 48 pages a tick at 5,000 jobs, four times a run) and each text
once: read exactly as strptime read them, and what strptime refused refused alike."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedulerx_alert.core.isotime import parse_iso
from schedulerx_alert.sources import listing
from schedulerx_alert.sources.listing import TIME_FORMAT, Unreadable

ZONES = [ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York"), ZoneInfo("UTC")]


def as_strptime_read_it(text: str, zone: ZoneInfo) -> Any:
    """The reading before the quick path: strptime, then ISO 8601, then the range."""
    text = text.strip()
    try:
        parsed = datetime.strptime(text, TIME_FORMAT).replace(tzinfo=zone)
    except ValueError:
        try:
            parsed = parse_iso(text)
        except ValueError:
            return "refused"
        parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)
    try:
        stamp = parsed.timestamp()
    except (OverflowError, ValueError):
        stamp = math.nan
    if not 946684800 <= stamp < 4102444800:  # 2000..2100, as the reader bounds them
        return "refused"
    return parsed.astimezone(zone)


def read(text: str, zone: ZoneInfo) -> Any:
    try:
        return listing._time(text, zone)
    except Unreadable:
        return "refused"


digit = st.sampled_from("0123456789")
odd = st.sampled_from(["+", "_", " ", "٢", "a", "-", "0", "9", "6", "2", "1"])
part = st.text(digit | odd, min_size=1, max_size=4)


@settings(deadline=None, max_examples=1500)
@given(
    st.tuples(
        st.sampled_from(["2026", "2000", "2099", "1999", "2100"]) | part,
        st.sampled_from(["01", "09", "10", "12", "13", "00", "2", "+1", "_1", "٢1"]) | part,
        st.sampled_from(["01", "28", "29", "30", "31", "32", "00"]) | part,
        st.sampled_from(["00", "09", "23", "24", " 1"]) | part,
        st.sampled_from(["00", "59", "60"]) | part,
        st.sampled_from(["00", "59", "60", "61", "1_"]) | part,
    ),
    st.sampled_from(ZONES),
)
def test_a_time_reads_as_strptime_read_it(parts: tuple[str, ...], zone: ZoneInfo) -> None:
    year, month, day, hour, minute, second = parts
    text = f"{year}-{month}-{day} {hour}:{minute}:{second}"
    assert read(text, zone) == as_strptime_read_it(text, zone)
    # And once more, from what was read the first time.
    assert read(text, zone) == as_strptime_read_it(text, zone)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-25 10:00:59",
        "2026-02-29 10:00:00",  # no such day
        "2028-02-29 10:00:00",
        "2026-11-25 24:00:00",
        "2026-11-25 10:00:60",
        "+026-11-25 10:00:00",
        "2026-1_-25 10:00:00",
        "2026-+1-25 10:00:00",
        "2026-11-25 +1:00:00",
        "2026-11-25T10:00:00",
        " 2026-11-25 10:00:59 ",
        "2026-03-08 02:30:00",  # New York's clocks skip this hour
        "2026-11-01 01:30:00",  # and pass this one twice
    ],
)
def test_times_at_the_edges(text: str) -> None:
    for zone in ZONES:
        got, expected = read(text, zone), as_strptime_read_it(text, zone)
        assert got == expected
        if isinstance(expected, datetime):
            assert (got.tzinfo, got.fold, got.utcoffset()) == (
                expected.tzinfo,
                expected.fold,
                expected.utcoffset(),
            )
