"""ISO times read the same on FC's python3.10 as on the newer Python the tests run on.

`parse_iso` rewrites the forms 3.10's `datetime.fromisoformat` refuses (`Z`, `+0800`, a
fraction of other than 3 or 6 digits) into the one it reads; on this Python the reference
is `fromisoformat` itself, which reads them all.
"""

from __future__ import annotations

import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schedulerx_alert.config.sections import parse_local_time
from schedulerx_alert.core import isotime
from schedulerx_alert.core.isotime import _DATE_TIME, parse_iso

# What 3.10's fromisoformat reads: date, separator, HH:MM[:SS[.fff|.ffffff]], +HH:MM.
PY310_FORM = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{3}|\.\d{6})?)?([+-]\d{2}:\d{2})?"
)

moments = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31))
zones = st.sampled_from(["", "Z", "+00:00", "+0800", "+08", "-05:30", "-0530", "+14:00"])
fractions = st.sampled_from(["", ".5", ".12", ".123", ",123", ".1234", ".123456", ".123456789"])


@given(moment=moments, separator=st.sampled_from(["T", " "]), fraction=fractions, zone=zones)
def test_reads_what_python_3_11_reads_and_asks_3_10_only_what_it_reads(
    moment: datetime, separator: str, fraction: str, zone: str
) -> None:
    text = moment.strftime(f"%Y-%m-%d{separator}%H:%M:%S") + fraction + zone
    expected = moment.replace(
        microsecond=int(fraction[1:7].ljust(6, "0")) if fraction else 0, tzinfo=_zone(zone)
    )
    # What FC's python3.10 makes of it: its fromisoformat refuses every other form.
    with mock.patch.object(isotime, "datetime", Python310):
        assert parse_iso(text) == expected
    if sys.version_info >= (3, 11):  # the reference: what 3.11 itself reads
        assert datetime.fromisoformat(text) == expected
    assert re.fullmatch(_DATE_TIME, text) is not None


class Python310(datetime):
    """`datetime` as 3.10 has it, for what `parse_iso` asks: `fromisoformat` reads only
    its own grammar (PY310_FORM), whatever the Python running the tests reads."""

    @classmethod
    def fromisoformat(cls, date_string: str) -> Python310:
        if not PY310_FORM.fullmatch(date_string) and not re.fullmatch(
            r"\d{4}-\d{2}-\d{2}", date_string
        ):
            raise ValueError(f"Invalid isoformat string: {date_string!r}")
        parsed = datetime.fromisoformat(date_string)
        return cls.combine(parsed.date(), parsed.timetz())


def test_the_python_3_10_stand_in_refuses_what_3_10_refuses() -> None:
    for text in ("2026-12-04T21:33:05Z", "2026-12-04 21:33+0800", "2026-12-04T21:33:05.1"):
        with pytest.raises(ValueError, match="Invalid isoformat"):
            Python310.fromisoformat(text)
    assert Python310.fromisoformat("2026-12-04T21:33:05.100+08:00").minute == 33


def _zone(text: str) -> timezone | None:
    if not text:
        return None
    if text == "Z":
        return timezone.utc
    digits = text[1:].replace(":", "").ljust(4, "0")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return timezone(-offset if text[0] == "-" else offset)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-04 21:33+0000", datetime(2026, 12, 4, 21, 33, tzinfo=timezone.utc)),
        ("2026-12-04T21:33:05Z", datetime(2026, 12, 4, 21, 33, 5, tzinfo=timezone.utc)),
        (
            "2026-12-04 09:00+08",
            datetime(2026, 12, 4, 9, 0, tzinfo=timezone(timedelta(hours=8))),
        ),
        ("2026-12-04", datetime(2026, 12, 4)),
        ("2026-12-04 21:33", datetime(2026, 12, 4, 21, 33)),
    ],
)
def test_common_forms(text: str, expected: datetime) -> None:
    with mock.patch.object(isotime, "datetime", Python310):
        assert parse_iso(text) == expected


@pytest.mark.parametrize("text", ["garbage", "2026-12-04 25:00", "2026-12-04 21:33+0800x", ""])
def test_what_is_not_a_time_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_iso(text)


def test_a_silence_written_with_z_or_a_colonless_offset_means_the_same_instant() -> None:
    """The config's silences were read with fromisoformat: on FC's python3.10 a `Z` or
    `+0000` refused the whole config, where the tests' 3.11 read it."""
    utc = parse_local_time("2026-12-04 21:33+00:00", "Asia/Shanghai")
    assert parse_local_time("2026-12-04 21:33+0000", "Asia/Shanghai") == utc
    assert parse_local_time("2026-12-04T21:33Z", "Asia/Shanghai") == utc
    assert parse_local_time("2026-12-05 05:33", "Asia/Shanghai") == utc


def test_text_from_people_and_services_goes_through_parse_iso() -> None:
    """fromisoformat directly only where the text is the state's own isoformat()."""
    src = Path(__file__).resolve().parent.parent / "src" / "schedulerx_alert"
    direct = sorted(
        str(path.relative_to(src))
        for path in src.rglob("*.py")
        if "fromisoformat(" in path.read_text(encoding="utf-8")
    )
    assert direct == ["core/heartbeat_codec.py", "core/isotime.py", "core/state.py"]
