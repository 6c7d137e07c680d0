"""Properties of the state: random and hostile stored documents, and the diff over
long listings, pruning and time zone changes."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedulerx_alert.core.diff import DiffSettings, Reading, diff
from schedulerx_alert.core.model import InstanceStatus, JobInstance, JobKey
from schedulerx_alert.core.state import (
    JobRecord,
    State,
    StateFormatError,
    StateVersionError,
    attempt_of,
    dump_state,
    load_state,
)
from tests.builders import EVERY_FAILURE, T0, instance, job, target
from tests.world import START, World

DATA = Path(__file__).parent / "data"
S = InstanceStatus
LOOKBACK = 15 * 60


def valid_v2() -> bytes:
    """A current document with something in every part."""
    listing = {job(): [instance(1, result="boom"), instance(2, S.RUNNING, ended=None)]}
    result = diff(
        State(), Reading(listing), {job(): target("ops", "dba")}, T0, DiffSettings(LOOKBACK)
    )
    return dump_state(result.state)


BASES = {"v1": (DATA / "state_v1.json").read_bytes(), "v2": valid_v2()}

# JSON text no encoder writes but a file can hold.
RAW_HOSTILE = [
    "1e999",
    "-1e999",
    "Infinity",
    "-Infinity",
    "NaN",
    "9" * 5000,
    "-" + "9" * 30,
    "[" * 50_000 + "]" * 50_000,
    '{"a":' * 50_000 + "1" + "}" * 50_000,
    '"\\ud800"',
    '"soon"',
    '"2026-11-25T10:00:00"',
    '"2026-11-25T10:00:00+08:00"',
    '"%zz/x/1"',
    "true",
    "null",
    "{}",
    "[]",
    "-1",
    "0",
    "1.5",
    "1e308",
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
hostile_text = st.sampled_from(RAW_HOSTILE) | json_values.map(json.dumps)
PLACEHOLDER = "@@hostile@@"


def nodes(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from nodes(value, (*path, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from nodes(value, (*path, i))


def spoil(data: bytes, draw: Any) -> bytes:
    """The document with one value, or one object key, replaced by hostile JSON."""
    doc = json.loads(data)
    path = draw(st.sampled_from(list(nodes(doc))[1:]))
    parent = copy.deepcopy(doc)
    holder = parent
    for step in path[:-1]:
        holder = holder[step]
    last = path[-1]
    if isinstance(holder, dict) and draw(st.booleans()):
        holder[draw(st.text(max_size=12)) + PLACEHOLDER] = holder.pop(last)
        text = json.dumps(parent, ensure_ascii=False)
        key = draw(st.sampled_from(["", "x", "%zz/a/1", "a/b", "-1", "01", "\\ud800", "1" * 30]))
        return text.replace(PLACEHOLDER, key).encode("utf-8", "surrogatepass")
    holder[last] = PLACEHOLDER
    text = json.dumps(parent, ensure_ascii=False)
    return text.replace(json.dumps(PLACEHOLDER), draw(hostile_text)).encode("utf-8")


def load_or_refuse(data: bytes) -> State | None:
    """Only StateFormatError (StateVersionError included) may escape the loader; what
    it accepts can be saved and reads back the same."""
    try:
        state = load_state(data)
    except (StateFormatError, StateVersionError):
        return None
    assert load_state(dump_state(state)) == state
    return state


@settings(deadline=None)
@given(data=st.binary(max_size=200) | hostile_text.map(str.encode))
def test_any_bytes_load_or_fail_with_a_state_error(data: bytes) -> None:
    load_or_refuse(data)


@settings(deadline=None)
@given(base=st.sampled_from(sorted(BASES)), data=st.data())
def test_a_document_spoilt_anywhere_loads_or_fails_with_a_state_error(
    base: str, data: st.DataObject
) -> None:
    load_or_refuse(spoil(BASES[base], data.draw))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with World(tmp_path_factory.mktemp("props")) as w:
        w.raw["receivers"].append({"name": "dba", "webhook": w.dt.webhook("ROBOT-dba")})
        w.dt.add_robot("ROBOT-dba")
        w.raw["watch"][0]["receivers"] = ["ops", "dba"]
        yield w


@settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(base=st.sampled_from(sorted(BASES)), data=st.data())
def test_a_tick_goes_on_whatever_state_it_finds(
    world: World, base: str, data: st.DataObject
) -> None:
    stored = spoil(BASES[base], data.draw)
    for leftover in world.state_path.parent.glob("state.json*"):
        leftover.unlink()
    world.state_path.parent.mkdir(parents=True, exist_ok=True)
    world.state_path.write_bytes(stored)
    world.advance(3600)
    fresh = world.sx.add_instance(92583, status=5, result="fresh")

    summary = world.tick()

    assert summary.status in ("ok", "degraded"), summary
    assert summary.alerts_new >= 2  # the fresh failure, to both receivers, at least
    saved = load_state(world.state_path.read_bytes())
    assert "failed" in saved.jobs[job()].instances[fresh].alerted


# -- the diff ---------------------------------------------------------------------------------

ZONES = ["Asia/Shanghai", "UTC", "America/New_York", "Asia/Kolkata"]
WALL0 = datetime(2026, 11, 25, 10, 0, 0)


@st.composite
def histories(draw: Any) -> list[dict[str, Any]]:
    """Ticks of a job's life: runs start, fail, are re-run (ending later); each tick
    SchedulerX lists its latest k runs (or the call fails), in some configured zone."""
    ticks = []
    runs: dict[int, tuple[int, int | None]] = {}  # id -> (status, end offset in seconds)
    next_id = 1
    for tick in range(draw(st.integers(1, 8))):
        for _ in range(draw(st.integers(0, 5))):
            status = draw(st.sampled_from([1, 3, 4, 5, 6, 9, 11, 42]))
            finished = status not in (1, 3)
            runs[next_id] = (status, 60 * tick - draw(st.integers(0, 7200)) if finished else None)
            next_id += 1
        for iid in draw(st.lists(st.sampled_from(sorted(runs)), max_size=3)) if runs else []:
            status, end = runs[iid]
            new_status = draw(st.sampled_from([3, 4, 5, 9]))
            # A run moves on or is re-run: its end never goes back.
            later = max(end or 0, 60 * tick) + draw(st.integers(1, 600))
            runs[iid] = (new_status, None if new_status == 3 else later)
        ticks.append(
            {
                "ok": draw(st.integers(0, 4)) > 0,
                "zone": draw(st.sampled_from(ZONES)),
                "latest": draw(st.integers(0, 12)),
                "runs": dict(runs),
            }
        )
    return ticks


def listing(runs: dict[int, tuple[int, int | None]], latest: int, zone: str) -> list[JobInstance]:
    tz = ZoneInfo(zone)
    listed = []
    for iid in sorted(runs, reverse=True)[:latest]:
        status, end = runs[iid]
        wall = WALL0 + timedelta(seconds=end) if end is not None else None
        listed.append(
            JobInstance(
                job=job(),
                instance_id=iid,
                status_code=status,
                start_time=wall.replace(tzinfo=tz) if wall else None,
                end_time=wall.replace(tzinfo=tz) if wall else None,
            )
        )
    return listed


@settings(deadline=None)
@given(ticks=histories(), cap=st.integers(12, 20))
def test_nothing_is_announced_twice_or_lost_across_prunes_and_time_zone_changes(
    ticks: list[dict[str, Any]], cap: int
) -> None:
    """Whatever the listings, the pruning of unlisted records (down to a small cap) and
    the configured zone of each tick: each failed/rejected attempt (an instance id with
    its wall-clock end) is announced once per receiver, and every one listed after the
    job's first poll, or ended within the lookback at its first poll, is announced
    (flap detection, which holds back the failures of an alternating job, is off)."""
    state = State()
    announced: list[tuple[int, str, str | None, str]] = []
    must: set[tuple[int, str, str | None]] = set()
    # Failures that had ended before the first-run lookback at the job's first poll.
    history: set[tuple[int, str, str | None]] = set()
    first_poll_done = False
    for n, tick in enumerate(ticks):
        now = T0 + 60 * n
        listed = listing(tick["runs"], tick["latest"], tick["zone"])
        polls = {job(): listed} if tick["ok"] else {}
        targets = {job(): target("a", "b", rules=EVERY_FAILURE)}
        result = diff(state, Reading(polls), targets, now, DiffSettings(LOOKBACK, max_unlisted=cap))
        announced += [
            (a.instances[0].instance_id, a.kind, attempt_of(a.instances[0]), a.receiver)
            for a in result.alerts
        ]
        if tick["ok"]:
            records = result.state.jobs[job()].instances
            assert {i.instance_id for i in listed} <= set(records), "a listed run was pruned"
            for inst in listed:
                if inst.status in (S.FAILED, S.REJECTED):
                    attempt = (inst.instance_id, inst.status_label, attempt_of(inst))
                    ended = inst.finished_at
                    recent = ended is not None and ended.timestamp() >= now - LOOKBACK
                    if not first_poll_done and not recent:
                        history.add(attempt)
                    elif attempt not in history:
                        must.add(attempt)
            first_poll_done = True
        state = load_state(dump_state(result.state))
    assert len(announced) == len(set(announced)), "announced twice"
    for iid, kind, end in must:
        assert (iid, kind, end, "a") in announced and (iid, kind, end, "b") in announced


@settings(deadline=None)
@given(zones=st.lists(st.sampled_from(ZONES), min_size=2, max_size=5))
def test_a_known_failure_is_never_announced_again_when_the_zone_changes(
    zones: list[str],
) -> None:
    runs = {1: (5, 0), 2: (9, -30), 3: (3, None)}
    state = State()
    announced = []
    for n, zone in enumerate(zones):
        result = diff(
            state,
            Reading({job(): listing(runs, 10, zone)}),
            {job(): target()},
            START + n,
            DiffSettings(900),
        )
        announced += [(a.instances[0].instance_id, a.kind) for a in result.alerts]
        state = load_state(dump_state(result.state))
    assert len(announced) == len(set(announced))


@settings(deadline=None)
@given(namespace=st.text(), group=st.text(), job_id=st.integers(-(2**63), 2**63 - 1))
def test_a_job_key_of_any_names_survives_the_state(namespace: str, group: str, job_id: int) -> None:
    key = JobKey(namespace, group, job_id)
    assert JobKey.decode(key.encode()) == key
    state = State(jobs={key: JobRecord(polled_at=T0)})
    assert load_state(dump_state(state)).jobs == state.jobs


@pytest.mark.parametrize("spoilt", [{}, [], {"a": 1}])
def test_a_rule_memory_holding_an_object_is_refused_not_a_crash(spoilt: Any) -> None:
    """Found by the property above: memories of plain values are shared while reading,
    and one holding an object must not reach that cache (unhashable, a TypeError)."""
    doc = json.loads(BASES["v2"])
    [job] = [j for j in doc["jobs"].values() if "rules" in j] or list(doc["jobs"].values())[:1]
    job["rules"] = {**job.get("rules", {}), "streak": spoilt}
    load_or_refuse(json.dumps(doc).encode())
