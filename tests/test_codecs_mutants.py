"""What the mutation run over core/ (issue 20) found the pure tests did not hold: a
record's every field survives its codec, an old state's pending alert keeps its job's
name through the migrations, and a silence with a malformed id is refused by name.
Each test here failed against one of the surviving mutants (docs/bench.md, "Mutation")."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from schedulerx_alert.core import heartbeat_codec
from schedulerx_alert.core.heartbeat import HeartbeatRecord, Hour
from schedulerx_alert.core.model import JobKey
from schedulerx_alert.core.silence import parse_silence
from schedulerx_alert.core.state import load_state
from tests.test_state import OLD_STATES

counts = st.integers(min_value=0, max_value=10**6)
times = st.floats(min_value=0, max_value=4e9, allow_nan=False)
names = st.text(alphabet="abcdefghij-_.", min_size=1, max_size=12)
job_keys = st.builds(
    lambda ns, group, job: JobKey(ns, group, job).encode(),
    names,
    names,
    st.integers(min_value=1, max_value=2**40),
)


@st.composite
def hours(draw: st.DrawFn) -> Hour:
    # As ticks count them: who held what adds up to at most the hour's held alerts.
    held_by = draw(st.dictionaries(st.sampled_from(["oss:3", "config:1"]), st.integers(1, 10**6)))
    return Hour(
        start=draw(st.integers(min_value=0, max_value=10**6)),
        runs=draw(counts),
        failures=draw(counts),
        recoveries=draw(counts),
        ok=draw(counts),
        degraded=draw(counts),
        failed=draw(counts),
        calls=draw(st.dictionaries(st.sampled_from(["GetJobInstanceList", "ListJobs"]), counts)),
        jobs=draw(st.dictionaries(job_keys, st.integers(min_value=1, max_value=99), max_size=4)),
        unnamed=draw(counts),
        held=sum(held_by.values()) + draw(counts),
        held_by=held_by,
    )


@st.composite
def records(draw: st.DrawFn) -> HeartbeatRecord:
    starts = draw(st.lists(hours(), max_size=4, unique_by=lambda h: h.start))
    problem = draw(st.none() | st.text(max_size=40))
    return HeartbeatRecord(
        hours=tuple(sorted(starts, key=lambda h: h.start)),
        since=draw(st.none() | times),
        sent_for=draw(st.none() | st.dates(min_value=date(2020, 1, 1))),
        sent_at=draw(st.none() | times),
        problem=problem,
        problem_at=None if problem is None else draw(times),
    )


@given(records())
def test_every_field_of_a_heartbeat_record_survives_its_codec(record: HeartbeatRecord) -> None:
    back = heartbeat_codec.decode(json.loads(json.dumps(heartbeat_codec.encode(record))))
    assert back == record


def test_time_zero_is_a_time() -> None:
    assert heartbeat_codec.decode({"hours": [], "since": 0}).since == 0.0


def test_an_old_pending_alert_keeps_its_jobs_name_through_the_migrations() -> None:
    doc: dict[str, Any] = json.loads(OLD_STATES[2].read_bytes())
    assert doc["outbox"], "the version 2 fixture holds a pending alert"
    doc["outbox"][0]["job_name"] = "nightly-etl"
    [first, *_] = load_state(json.dumps(doc).encode()).outbox
    assert first.job_name == "nightly-etl"


def test_a_silence_whose_id_is_not_text_is_refused_by_name() -> None:
    base = {"match": {"jobs": [92583]}, "start": 1_800_000_000, "end": 1_800_003_600}
    for bad in (5, "", None, ["a"]):
        problems: list[str] = []
        assert parse_silence({**base, "id": bad}, "silences[0]", problems) is None
        assert problems == ["silences[0].id: must be a short string"], bad


def test_a_version_1_pending_alert_keeps_its_job_whatever_its_names_hold() -> None:
    # Version 1 wrote keys unencoded and split them at their last two '/'; version 2 encodes
    # each part, so a namespace with a '/' or a '%' comes back as it was written.
    doc: dict[str, Any] = json.loads(OLD_STATES[1].read_bytes())
    doc["outbox"][0]["instance"]["job"] = "team/a%41/etl.defaultGroup/92583"
    [first, *_] = load_state(json.dumps(doc).encode()).outbox
    assert first.job == JobKey("team/a%41", "etl.defaultGroup", 92583)
