"""Properties of reading GetJobInstanceList answers: random, truncated, hostile.

Whatever an answer holds, reading it raises nothing but that job's error;
every listed entry is either counted or reported; a run written another
documented way reads the same; and answers fed tick after tick through the
diff announce no run twice and lose no failure.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedulerx_alert.core.diff import DiffSettings, Reading, diff
from schedulerx_alert.core.findings import RECOVERED
from schedulerx_alert.core.model import InstanceStatus, JobKey
from schedulerx_alert.core.state import State, attempt_of, dump_state, load_state
from schedulerx_alert.sources.fetch import CallBudget, RetryPolicy, fetch_all
from schedulerx_alert.sources.listing import (
    DUPLICATE,
    SHOWN,
    SKIPPED,
    AnswerUnreadable,
    Listing,
    parse_listing,
)
from schedulerx_alert.sources.schedulerx import SchedulerXClient, SchedulerXError, decode_answer
from schedulerx_alert.support.credentials import Credentials
from tests.builders import EVERY_FAILURE, GROUP, NS, T0, target
from tests.fakes.base import ManualClock

ZONE = ZoneInfo("Asia/Shanghai")
JOB = JobKey(NS, GROUP, 92583)
FIELDS = (
    "InstanceId",
    "JobId",
    "Status",
    "Result",
    "Progress",
    "ScheduleTime",
    "StartTime",
    "EndTime",
    "DataTime",
    "TimeType",
    "TriggerType",
    "WorkAddr",
    "Executor",
)
TIMES = ("ScheduleTime", "StartTime", "EndTime", "DataTime")
S = InstanceStatus

# -- random bodies --------------------------------------------------------------------------

odd_texts = st.sampled_from(
    [
        "",
        " ",
        "FAILED",
        "failed",
        "partial-failed",
        "5",
        "-1",
        "1e400",
        "NaN",
        "2026-11-25 10:00:00",
        "2026-11-25T02:00:00Z",
        "9999-12-31T23:59:59-23:59",
        "0001-01-01",
        "1795572000000",
        "1795572000",
        "0",
        "9" * 30,
    ]
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**60), max_value=10**60),
    # Built, not listed: hypothesis cannot repr an int of more than 4300 digits.
    st.sampled_from([400, -5000]).map(lambda digits: (-1 if digits < 0 else 1) * 10 ** abs(digits)),
    st.floats(),
    st.text(max_size=20),
    odd_texts,
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)
entries = st.dictionaries(st.sampled_from(FIELDS), values, max_size=len(FIELDS)) | values
entry_lists = st.lists(entries, max_size=8)
bodies = st.fixed_dictionaries(
    {
        "Success": st.just(True),
        "Data": st.one_of(
            values,
            entry_lists,
            st.fixed_dictionaries({"JobInstanceDetails": st.one_of(values, entry_lists, entries)}),
        ),
    }
)


def check(listing: Listing) -> None:
    """Nothing twice, nothing silently dropped, every problem shown short."""
    ids = [inst.instance_id for inst in listing.instances]
    assert len(ids) == len(set(ids))
    skipped = [p for p in listing.problems if p.outcome in (SKIPPED, DUPLICATE)]
    assert len(listing.instances) + len(skipped) == listing.entries
    for problem in listing.problems:
        assert problem.job == JOB
        assert len(problem.value) <= SHOWN and problem.field and problem.reason
        assert problem.field.startswith(("JobInstanceDetails[", "InstanceId"))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(bodies)
def test_any_body_reads_as_runs_and_problems_or_as_one_error(body: dict[str, Any]) -> None:
    try:
        listing = parse_listing(JOB, body, ZONE)
    except AnswerUnreadable as exc:
        message = str(exc)
    else:
        check(listing)
        return
    assert message.startswith("Data")


# -- one run, written the documented ways ---------------------------------------------------


@dataclass(frozen=True)
class Run:
    """The truth about one run at one moment."""

    instance_id: int
    status: InstanceStatus
    scheduled: int  # epoch seconds
    ended: int | None

    def times(self) -> dict[str, int | None]:
        return {
            "ScheduleTime": self.scheduled,
            "StartTime": self.scheduled + 2,
            "EndTime": self.ended,
            "DataTime": self.scheduled,
        }


def time_as(style: str, epoch: int) -> Any:
    local = datetime.fromtimestamp(epoch, ZONE)
    return {
        "format": local.strftime("%Y-%m-%d %H:%M:%S"),
        "iso": local.replace(tzinfo=None).isoformat(),
        "iso+08": local.isoformat(),
        "isoZ": datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "s": epoch,
        "ms": epoch * 1000,
        "s-text": str(epoch),
        "ms-text": str(epoch * 1000),
        "ms-float": epoch * 1000.0,
    }[style]


def status_as(style: str, status: InstanceStatus) -> Any:
    return {
        "int": int(status),
        "text": str(int(status)),
        "NAME": status.name,
        "name": status.name.lower(),
        "float": float(status),
    }[style]


time_styles = st.sampled_from(
    ["format", "iso", "iso+08", "isoZ", "s", "ms", "s-text", "ms-text", "ms-float"]
)
status_styles = st.sampled_from(["int", "text", "NAME", "name", "float"])


@st.composite
def written(draw: st.DrawFn, run: Run) -> dict[str, Any]:
    """One documented way of writing `run` as an entry."""
    entry: dict[str, Any] = {
        "InstanceId": draw(st.sampled_from([run.instance_id, str(run.instance_id)])),
        "JobId": draw(st.sampled_from([JOB.job_id, str(JOB.job_id)])),
        "Status": status_as(draw(status_styles), run.status),
        "Result": f"result of {run.instance_id}",
        "Progress": "",
        "TimeType": draw(st.sampled_from([1, "1"])),
        "TriggerType": draw(st.sampled_from([1, "1"])),
        "WorkAddr": "10.0.0.5:16888",
        "Executor": "",
    }
    for name, epoch in run.times().items():
        if epoch is not None:
            entry[name] = time_as(draw(time_styles), epoch)
    return entry


statuses = st.sampled_from(list(S))
epochs = st.integers(min_value=int(T0) - 86_400 * 400, max_value=int(T0) + 86_400 * 400)


@given(st.data(), st.integers(min_value=1, max_value=2**63 - 1), statuses, epochs)
def test_a_run_reads_the_same_however_it_is_written(
    data: st.DataObject, instance_id: int, status: InstanceStatus, scheduled: int
) -> None:
    run = Run(instance_id, status, scheduled, scheduled + 30)
    body = {"Data": {"JobInstanceDetails": [data.draw(written(run))]}}
    listing = parse_listing(JOB, body, ZONE)
    assert listing.problems == ()
    [inst] = listing.instances
    assert (inst.instance_id, inst.status_code, inst.time_type, inst.trigger_type) == (
        instance_id,
        int(status),
        1,
        1,
    )
    read = {name: getattr(inst, name) for name in ("schedule_time", "start_time", "end_time")}
    assert {name: value.timestamp() if value else None for name, value in read.items()} == {
        "schedule_time": scheduled,
        "start_time": scheduled + 2,
        "end_time": scheduled + 30,
    }
    # One attempt whatever the encoding: the diff knows it by its wall-clock end.
    assert attempt_of(inst) == datetime.fromtimestamp(scheduled + 30, ZONE).strftime(
        "%Y-%m-%d %H:%M:%S"
    )


# -- answers as bytes: truncated, nested, with numbers no encoder writes --------------------


def answer(entries: list[dict[str, Any]]) -> str:
    return json.dumps(
        {"RequestId": "R", "Code": 200, "Success": True, "Data": {"JobInstanceDetails": entries}}
    )


HOSTILE_NUMBERS = ["1e400", "-1e400", "Infinity", "-Infinity", "NaN", "1" * 5000, "-0.0"]


@st.composite
def runs_now(draw: st.DrawFn) -> list[Run]:
    count = draw(st.integers(min_value=0, max_value=6))
    return [
        Run(
            1_700_000_000_001 + i,
            draw(statuses),
            int(T0) - 600 + i,
            int(T0) - 60 + i,
        )
        for i in range(count)
    ]


@st.composite
def raw_answers(draw: st.DrawFn) -> bytes:
    text = answer([draw(written(run)) for run in draw(runs_now())])
    kind = draw(st.sampled_from(["bytes", "cut", "nest", "number", "whole"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "cut":
        return text[: draw(st.integers(min_value=0, max_value=len(text)))].encode()
    if kind == "nest":
        depth = draw(st.integers(min_value=900, max_value=120_000))
        closed = draw(st.booleans())
        inner = "[" * depth + ("]" * depth if closed else "")
        field = draw(st.sampled_from(["Data", "Message", "Code"]))
        return f'{{"Success": true, "{field}": {inner}}}'.encode()
    if kind == "number":
        numbers = _number_spans(text)
        if numbers:
            start, end = draw(st.sampled_from(numbers))
            text = text[:start] + draw(st.sampled_from(HOSTILE_NUMBERS)) + text[end:]
        return text.encode()
    return text.encode(draw(st.sampled_from(["utf-8", "utf-16", "utf-32"])))


def _number_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"(?<=: )-?\d+(?:\.\d+)?", text)]


def read(content: bytes) -> Listing:
    """What the client does with an answer's bytes, without the network."""
    body = decode_answer("GetJobInstanceList", 200, "application/json", content)
    return parse_listing(JOB, body, ZONE)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(raw_answers())
def test_any_answer_text_reads_or_fails_as_that_jobs_error(content: bytes) -> None:
    try:
        listing = read(content)
    except (SchedulerXError, AnswerUnreadable):
        return
    check(listing)


# -- through the diff, tick after tick ------------------------------------------------------

TICKS = 6
FINALS = [S.SUCCESS, S.FAILED, S.REJECTED, S.KILLED, S.PARTIAL_FAILED]
ALERT_ON = {S.FAILED, S.REJECTED}
UNREADABLE = ["1e400", "Infinity", "NaN", '"n/a"', "[]", "{}", "true", '"9999-99-99"']
# Any string is a valid Result; these are not text at all.
TEXT_FIELDS = ("Result", "Progress", "WorkAddr", "Executor")
UNREADABLE_TEXT = ["1e400", "-Infinity", "NaN", "[]", '{"a": 1}']


@dataclass(frozen=True)
class Life:
    """A run's whole life: listed from tick `appears`, finished from tick `finishes`."""

    instance_id: int
    final: InstanceStatus
    appears: int
    finishes: int

    def at(self, tick: int) -> Run:
        scheduled = int(T0) + 60 * self.appears - 40
        if tick < self.finishes:
            return Run(self.instance_id, S.RUNNING, scheduled, None)
        return Run(self.instance_id, self.final, scheduled, int(T0) + 60 * self.finishes - 10)


lives = st.lists(
    st.tuples(
        st.sampled_from(FINALS),
        st.integers(min_value=0, max_value=TICKS - 1),
        st.integers(min_value=0, max_value=3),
    ),
    max_size=6,
).map(
    lambda drawn: [
        Life(1_700_000_000_001 + i, final, appears, appears + delay)
        for i, (final, appears, delay) in enumerate(drawn)
    ]
)


@st.composite
def hostile(draw: st.DrawFn, runs: list[Run]) -> tuple[str, bool]:
    """Runs as a hostile answer might list them, and whether that must be reported.

    The truth is never changed, only hidden: a run left out, listed twice (once
    as a stale running copy), one of its values unreadable or missing, a run of
    another job or junk beside it, the whole answer cut short or nested too deep.
    """
    out: list[str] = []
    reportable = False
    for run in runs:
        entry = draw(written(run))
        mutation = draw(
            st.sampled_from(
                ["clean", "drop", "twice", "stale copy", "key", "side", "missing", "junk"]
            )
        )
        reportable |= mutation in ("twice", "stale copy", "key", "side", "junk")
        raw = None
        if mutation == "drop":
            continue
        if mutation == "twice":
            out.append(json.dumps(entry))
        if mutation == "stale copy":
            stale = {k: v for k, v in entry.items() if k != "EndTime"}
            stale["Status"] = int(S.RUNNING)
            out.append(json.dumps(stale))
        if mutation == "junk":
            foreign = {**entry, "JobId": 1, "InstanceId": 1}
            out.append(draw(st.sampled_from(["null", '"x"', "[1]", "1e400", json.dumps(foreign)])))
        if mutation == "key":
            raw = draw(st.sampled_from(["InstanceId", "Status", "EndTime"]))
            if raw == "EndTime" and run.ended is None:
                raw = "Status"
        if mutation == "side":
            raw = draw(
                st.sampled_from([f for f in FIELDS if f not in ("InstanceId", "Status", "EndTime")])
            )
        if mutation == "missing":
            gone = draw(st.sampled_from(FIELDS))
            entry.pop(gone, None)
            # Other fields may be absent in a valid answer (EndTime while running).
            reportable |= gone in ("InstanceId", "Status")
        if raw is not None:
            entry[raw] = "@@"
            bad = UNREADABLE_TEXT if raw in TEXT_FIELDS else UNREADABLE
            out.append(json.dumps(entry).replace('"@@"', draw(st.sampled_from(bad))))
        else:
            out.append(json.dumps(entry))
    listed = ", ".join(out)
    text = f'{{"RequestId": "R", "Success": true, "Data": {{"JobInstanceDetails": [{listed}]}}}}'
    whole = draw(st.sampled_from(["as is"] * 6 + ["cut", "nest"]))
    if whole == "cut":
        return text[: draw(st.integers(min_value=0, max_value=len(text) - 1))], True
    if whole == "nest":
        return '{"Success": true, "Data": ' + "[" * 50_000, True
    return text, reportable


class AnswerClient(SchedulerXClient):
    """The real client minus the network: `answer` is what SchedulerX said."""

    answer = ""

    def call(self, action: str, params: Mapping[str, str]) -> dict[str, Any]:
        return decode_answer(action, 200, "application/json", self.answer.encode())


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lives, st.data())
def test_hostile_answers_tick_after_tick_announce_each_failure_once(
    runs: list[Life], data: st.DataObject
) -> None:
    client = AnswerClient("http://127.0.0.1:9", "cn-hangzhou", Credentials("a", "b", None), ZONE)
    # Flap detection off: it would hold back the failures of an alternating job.
    targets = {JOB: target(rules=EVERY_FAILURE)}
    state = State()
    announced: Counter[int] = Counter()
    recovered: Counter[int] = Counter()
    for tick in range(TICKS + 1):
        now = T0 + 60 * tick
        clock = ManualClock(now)
        listed = [life.at(tick) for life in runs if life.appears <= tick]
        if tick == TICKS:
            client.answer, reportable = answer([data.draw(written(r)) for r in listed]), False
        else:
            client.answer, reportable = data.draw(hostile(listed))
        fetched = fetch_all(
            client,
            [JOB],
            CallBudget(1000, (), clock),
            now + 60,
            retry=RetryPolicy(attempts=1),
            clock=clock,
            sleep=lambda _: None,
        )
        assert set(fetched.polls) | set(fetched.errors) == {JOB}
        assert bool(fetched.problems or fetched.errors) == reportable
        result = diff(
            state, Reading(fetched.polls), targets, now, DiffSettings(first_run_lookback=10**9)
        )
        for alert in result.alerts:
            life = next(life for life in runs if life.instance_id == alert.instances[0].instance_id)
            if alert.kind == RECOVERED:
                assert life.final is InstanceStatus.SUCCESS
                recovered[life.instance_id] += 1
                continue
            assert life.final in ALERT_ON and alert.kind == life.final.label
            announced[life.instance_id] += 1
        # As a tick leaves it: saved, loaded, the outbox delivered.
        state = load_state(dump_state(result.state.with_updates(outbox=())))
    assert all(count == 1 for count in announced.values()), announced
    assert all(count == 1 for count in recovered.values()), recovered
    failed = {
        life.instance_id for life in runs if life.final in ALERT_ON and life.finishes <= TICKS
    }
    assert set(announced) == failed
