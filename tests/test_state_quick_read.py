"""The state reader's quick paths (a tick reads tens of thousands of run records, job keys
and rule memories every tick) read exactly what the full checks read, and refuse nothing
the full checks accept: properties over JSON values shaped like the records, and odd ones."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedulerx_alert.core.model import JobKey
from schedulerx_alert.core.rules import MemoryFormatError
from schedulerx_alert.core.state import (
    JobRecord,
    StateFormatError,
    _jobs_to_dict,
    _plain_record,
    reader,
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0.0, 1.7e9, 1.7e9 + 0.5, 1e11, 1e11 + 1, -1.0])
    | st.text(max_size=6)
)
values: st.SearchStrategy[Any] = scalars | st.lists(st.text(max_size=6), max_size=2) | st.just([])
record_keys = st.sampled_from(["status", "seen", "alerted", "end", "end_v1", "other"])
records = st.dictionaries(record_keys, values, max_size=5) | st.fixed_dictionaries(
    {
        "status": st.integers(-(2**32), 2**32) | st.booleans(),
        "seen": st.floats(-1, 2e11) | st.integers(0, 10) | st.just(float("inf")),
        "alerted": st.just([]) | st.lists(st.text(max_size=3), max_size=1) | scalars,
        "end": st.none() | st.text(max_size=20) | scalars,
    }
)
names = st.sampled_from(["0", "00", "007", "1", str(2**63 - 1), str(2**63), "-1", "+1", "١"]) | (
    st.integers(0, 2**64).map(str)
)


# Records as ticks write them, each field now and then out of shape.
written = st.fixed_dictionaries(
    {
        "status": st.integers(0, 12) | st.integers(-(2**32), 2**32) | st.booleans(),
        "seen": st.floats(1.7e9, 1.8e9) | st.sampled_from([0.0, 1e11, 1e11 + 1, -1.0, 7]),
        "alerted": st.just([]) | st.just(["failed"]) | st.none(),
        "end": st.none() | st.just("2026-11-25 10:00:59") | st.just(5),
    }
)


def full(name: str, value: Any) -> Any:
    try:
        return reader().record_in_full(name, value, "w")
    except StateFormatError:
        return "refused"


@settings(deadline=None, max_examples=600)
@given(names, records | written)
def test_a_run_record_read_quickly_reads_as_the_full_checks_read_it(
    name: str, value: dict[str, Any]
) -> None:
    value = json.loads(json.dumps(value, allow_nan=True))  # as a stored document gives it
    quick = _plain_record(name, value)
    if quick is not None:
        assert quick == full(name, value)


def test_the_record_every_tick_writes_is_read_quickly() -> None:
    value = {"status": 4, "seen": 1795572060.5, "alerted": [], "end": "2026-11-25 10:00:59"}
    assert _plain_record("1795572000123", value) == full("1795572000123", value)
    assert _plain_record("1795572000123", value) is not None
    for odd in ("00", "007", str(2**63), "-1", "+1", "١", "1 "):
        assert full(odd, value) == "refused"
        assert _plain_record(odd, value) is None, odd


keys = st.sampled_from(
    ["ns/g/1", "ns/g/01", "ns/g/+1", "ns/g/-1", "ns/g/ 1", "ns/g/1_0", f"ns/g/{2**63}", "ns/g/"]
) | st.builds(
    lambda ns, group, job: f"{ns}/{group}/{job}",
    st.sampled_from(["ns", "n%2Fs", "n%2fs", "a b", "%E4%B8%AD"]),
    st.sampled_from(["g", "grp%2Fx", "g/h"]),
    st.sampled_from(["5", "05", "-5", str(2**63 - 1), str(2**63), "x"]),
)


@settings(deadline=None, max_examples=300)
@given(st.lists(keys, min_size=1, max_size=6))
def test_job_keys_read_with_their_group_known_read_as_in_full(texts: list[str]) -> None:
    shared = reader()  # remembers each group read in full
    for text in texts:
        try:
            expected: Any = reader().job_key(text, "w")
        except StateFormatError:
            expected = "refused"
        try:
            got: Any = shared.job_key(text, "w")
        except StateFormatError:
            got = "refused"
        assert got == expected, text


def test_a_group_read_once_serves_its_other_jobs() -> None:
    shared = reader()
    assert shared.job_key("n%2Fs/g/1", "w") == JobKey("n/s", "g", 1)
    assert shared.job_key("n%2Fs/g/2", "w") == JobKey("n/s", "g", 2)
    with pytest.raises(StateFormatError):
        shared.job_key("n%2Fs/g/02", "w")


def test_a_memory_of_true_or_1_0_is_not_read_as_one_of_1() -> None:
    shared = reader()
    assert shared.memory({"streak": 1}, "w").streak == 1
    for odd in ({"streak": True}, {"streak": 1.0}):
        with pytest.raises(MemoryFormatError, match="streak"):
            shared.memory(odd, "w")


memories = st.dictionaries(
    st.sampled_from(["last_outcome", "streak", "announced", "missed_checked", "stuck", "x"]),
    scalars | st.sampled_from(["ok", "fail"]) | st.lists(st.integers(0, 5), max_size=2),
    max_size=3,
)


@settings(deadline=None, max_examples=300)
@given(st.lists(memories, min_size=1, max_size=4))
def test_a_rule_memory_read_again_is_the_one_read_first(raws: list[dict[str, Any]]) -> None:
    shared = reader()
    for raw in [*raws, *raws]:
        try:
            expected: Any = reader().memory(dict(raw), "w")
        except ValueError:
            expected = "refused"
        try:
            got: Any = shared.memory(raw, "w")
        except ValueError:
            got = "refused"
        assert got == expected


@settings(deadline=None, max_examples=300)
@given(st.dictionaries(names, written | records, max_size=4))
def test_a_jobs_records_read_together_read_as_each_read_in_full(
    instances: dict[str, Any],
) -> None:
    """A job whose records are all in the written shape is read without naming each place;
    one record out of shape sends the whole job through the full checks, same answer."""
    raw = json.loads(json.dumps({"instances": instances}, allow_nan=True))
    try:
        expected: Any = reader().mapping(raw["instances"], "w.instances", reader().record)
    except StateFormatError as exc:
        expected = str(exc)
    try:
        got: Any = reader().job("ns/g/1", raw, "w")[1].instances
    except StateFormatError as exc:
        got = str(exc)
    assert got == expected


group_parts = st.sampled_from(["ns", "n/s", "n%2Fs", "a b", "中", "", "g.h", "\udc80"])
job_keys = st.builds(JobKey, group_parts, group_parts, st.integers(-5, 2**63 - 1))


@settings(deadline=None, max_examples=300)
@given(st.lists(job_keys, max_size=8))
def test_job_keys_are_written_as_encode_writes_them_in_their_order(keys: list[JobKey]) -> None:
    jobs = {key: JobRecord() for key in keys}
    assert list(_jobs_to_dict(jobs)) == [key.encode() for key in sorted(jobs)]
