"""The pure core: what gets announced, once, and what is remembered."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from schedulerx_alert.core.diff import DiffSettings, Reading, diff
from schedulerx_alert.core.model import InstanceStatus, JobInstance, JobKey
from schedulerx_alert.core.rules import RuleSettings
from schedulerx_alert.core.state import InstanceRecord, JobRecord, State, dump_state, load_state
from tests.builders import EVERY_FAILURE, T0, instance, job, target

LOOKBACK = 15 * 60
S = InstanceStatus


def test_first_run_announces_recent_failures_and_records_old_ones_as_history() -> None:
    recent = instance(1, S.FAILED, ended=T0 - 60)
    old = instance(2, S.FAILED, ended=T0 - 3600)
    # Before the recent failure (a success after it would be its recovery).
    ok = instance(3, S.SUCCESS, ended=T0 - 120)
    result = diff(
        State(), Reading({job(): [recent, old, ok]}), {job(): target()}, T0, DiffSettings(LOOKBACK)
    )
    assert [a.instances[0].instance_id for a in result.alerts] == [1]
    assert [i.instance_id for i in result.history] == [2]
    # The old failure is remembered, so a later tick does not announce it either.
    again = diff(
        result.state,
        Reading({job(): [recent, old, ok]}),
        {job(): target()},
        T0 + 60,
        DiffSettings(LOOKBACK),
    )
    assert again.alerts == ()


def test_an_instance_seen_running_alerts_when_it_fails_even_if_long_after() -> None:
    running = instance(7, S.RUNNING, ended=None)
    first = diff(
        State(), Reading({job(): [running]}), {job(): target()}, T0, DiffSettings(LOOKBACK)
    )
    assert first.alerts == ()
    failed = instance(7, S.FAILED, ended=T0 + 7200)
    later = diff(
        first.state,
        Reading({job(): [failed]}),
        {job(): target()},
        T0 + 7200,
        DiffSettings(LOOKBACK),
    )
    assert [(a.instances[0].instance_id, a.kind) for a in later.alerts] == [(7, "failed")]


def test_known_job_announces_a_failure_it_never_saw_running_whatever_its_age() -> None:
    first = diff(State(), Reading({job(): []}), {job(): target()}, T0, DiffSettings(LOOKBACK))
    late = instance(8, S.FAILED, ended=T0 - 86_000)
    result = diff(
        first.state, Reading({job(): [late]}), {job(): target()}, T0 + 60, DiffSettings(LOOKBACK)
    )
    assert len(result.alerts) == 1


def test_one_alert_per_receiver_and_rejected_counts_by_default() -> None:
    rejected = instance(9, S.REJECTED, ended=T0)
    result = diff(
        State(),
        Reading({job(): [rejected]}),
        {job(): target("ops", "dba")},
        T0,
        DiffSettings(LOOKBACK),
    )
    assert sorted(a.receiver for a in result.alerts) == ["dba", "ops"]
    assert {a.kind for a in result.alerts} == {"rejected"}


def test_unknown_status_codes_are_kept_and_never_alert() -> None:
    odd = instance(10, 42, ended=T0)
    result = diff(State(), Reading({job(): [odd]}), {job(): target()}, T0, DiffSettings(LOOKBACK))
    assert result.alerts == ()
    assert result.state.jobs[job()].instances[10].status == 42


def test_a_job_whose_call_failed_keeps_its_records() -> None:
    first = diff(
        State(),
        Reading({job(): [instance(1, S.RUNNING, ended=None)]}),
        {job(): target()},
        T0,
        DiffSettings(900),
    )
    result = diff(first.state, Reading({}), {job(): target()}, T0 + 60, DiffSettings(LOOKBACK))
    assert result.state.jobs[job()] == first.state.jobs[job()]


def test_pending_alerts_for_receivers_no_longer_configured_go_to_the_jobs_receivers() -> None:
    first = diff(
        State(),
        Reading({job(): [instance(1)]}),
        {job(): target("gone")},
        T0,
        DiffSettings(LOOKBACK),
    )
    result = diff(
        first.state, Reading({job(): []}), {job(): target("ops")}, T0 + 60, DiffSettings(LOOKBACK)
    )
    assert result.dropped == ()
    (moved,) = result.state.outbox
    assert (moved.receiver, moved.finding) == ("ops", first.state.outbox[0].finding)


def test_pending_alerts_whose_job_is_no_longer_watched_are_dropped_and_counted() -> None:
    first = diff(
        State(),
        Reading({job(): [instance(1)]}),
        {job(): target("gone")},
        T0,
        DiffSettings(LOOKBACK),
    )
    other = job(92584)
    result = diff(
        first.state, Reading({other: []}), {other: target("ops")}, T0 + 60, DiffSettings(LOOKBACK)
    )
    assert [a.receiver for a in result.dropped] == ["gone"]
    assert (result.state.outbox, result.state.expired) == ((), {"gone": 1})


# -- properties ------------------------------------------------------------------

statuses = st.sampled_from([1, 3, 4, 5, 6, 9, 11, 12, 42])
listing = st.lists(st.tuples(st.integers(1, 12), statuses, st.integers(-7200, 600)), max_size=10)


@settings(deadline=None)
@given(polls=st.lists(st.tuples(st.booleans(), listing), min_size=1, max_size=8))
def test_every_alertable_run_is_announced_once_per_receiver(
    polls: list[tuple[bool, list[tuple[int, int, int]]]],
) -> None:
    """Over any sequence of listings (some calls failing), no attempt is
    announced twice, and every failed/rejected attempt listed after the job's
    first poll, or ended within the lookback at its first poll, is announced.
    An attempt is an instance id with its end time: re-runs end later.
    (Flap detection, which holds back the failures of an alternating job, is off.)"""
    state = State()
    announced: list[tuple[int, str, float, str]] = []
    must: set[tuple[int, str, float]] = set()
    first_poll_done = False
    for tick, (call_ok, items) in enumerate(polls):
        now = T0 + 60 * tick
        # One run per id per listing, as SchedulerX lists them.
        runs = {iid: instance(iid, code, ended=now + age) for iid, code, age in items}
        listing_ = list(runs.values())
        result = diff(
            state,
            Reading({job(): listing_} if call_ok else {}),
            {job(): target("a", "b", rules=EVERY_FAILURE)},
            now,
            DiffSettings(LOOKBACK),
        )
        announced += [
            (inst.instance_id, a.kind, _end(inst), a.receiver)
            for a in result.alerts
            if (inst := a.instance) is not None
        ]
        if call_ok:
            for inst in listing_:
                if inst.status in (S.FAILED, S.REJECTED):
                    recent = inst.finished_at and inst.finished_at.timestamp() >= now - LOOKBACK
                    if first_poll_done or recent:
                        must.add((inst.instance_id, inst.status_label, _end(inst)))
            first_poll_done = True
        # Whatever survives a save and a load behaves the same.
        state = load_state(dump_state(result.state))
    assert len(announced) == len(set(announced))
    for iid, kind, end in must:
        assert (iid, kind, end, "a") in announced
        assert (iid, kind, end, "b") in announced


def _end(inst: JobInstance) -> float:
    return inst.end_time.timestamp() if inst.end_time else 0.0


# A run across ticks: (job 1 or 2, instance id, status before and from `switch` on, end).
# A re-run ends at another time than the attempt before it: SchedulerX's EndTime is the
# only way to tell attempts of one instance apart.
runs_pool = st.lists(
    st.tuples(
        st.integers(1, 2),
        st.integers(1, 6),
        statuses,
        statuses,
        st.integers(0, 8),
        st.integers(-3600, 600),
    ),
    max_size=10,
    unique_by=lambda run: (run[0], run[1]),
)


@settings(deadline=None)
@given(
    pool=runs_pool,
    ticks=st.lists(st.tuples(st.booleans(), st.sets(st.integers(0, 9))), min_size=1, max_size=8),
    min_jobs=st.sampled_from([2, None]),
)
def test_no_alert_of_any_kind_is_owed_twice(
    pool: list[tuple[int, int, int, int, int, int]],
    ticks: list[tuple[bool, set[int]]],
    min_jobs: int | None,
) -> None:
    """With every rule on (recovery, flapping, stuck runs, shared causes across two jobs),
    runs listed again and again, changing status, and the state saved and loaded
    between ticks, no receiver is owed the same alert (receiver and fingerprint) twice,
    and every alert goes to its jobs' receivers."""
    rules = RuleSettings(stuck_after=120.0, flap_window=1800.0, flap_changes=3)
    targets = {job(1): target("a", "b", rules=rules), job(2): target("b", rules=rules)}
    state = State()
    keys: list[str] = []
    for tick, (call_ok, shown) in enumerate(ticks):
        now = T0 + 60 * tick
        listings: dict[JobKey, dict[int, JobInstance]] = {job(1): {}, job(2): {}}
        for index, (n, iid, before, after, switch, age) in enumerate(pool):
            if index in shown:
                code = before if tick < switch else after
                end = T0 + age + (60 * switch if tick >= switch else 0)
                ended = end if code in (4, 5, 6, 9, 11, 12) else None
                listings[job(n)][iid] = instance(iid, code, n, ended=ended, result="boom")
        polls = {key: list(runs.values()) for key, runs in listings.items()} if call_ok else {}
        result = diff(
            state,
            Reading(polls),
            targets,
            now,
            DiffSettings(LOOKBACK, shared_cause_min_jobs=min_jobs),
        )
        for alert in result.alerts:
            assert alert.receiver in {r for j in alert.jobs for r in targets[j].receivers}
        keys += [a.key for a in result.alerts]
        state = load_state(dump_state(result.state))
    assert len(keys) == len(set(keys))


@settings(deadline=None)
@given(items=listing)
def test_diff_does_not_mutate_its_input(items: list[tuple[int, int, int]]) -> None:
    state = load_state(dump_state(State()))
    runs = {iid: instance(iid, code, ended=T0 + age) for iid, code, age in items}
    before = dump_state(state)
    diff(
        state, Reading({job(): list(runs.values())}), {job(): target()}, T0, DiffSettings(LOOKBACK)
    )
    assert dump_state(state) == before


# -- bounds ----------------------------------------------------------------------------


def test_pending_alerts_older_than_the_maximum_age_are_dropped_and_counted_per_receiver() -> None:
    first = diff(
        State(),
        Reading({job(): [instance(1)]}),
        {job(): target("ops", "dba")},
        T0,
        DiffSettings(LOOKBACK),
    )
    kept = diff(
        first.state,
        Reading({}),
        {job(): target("ops", "dba")},
        T0 + 3600,
        DiffSettings(LOOKBACK, pending_max_age=3600),
    )
    assert (kept.expired, len(kept.state.outbox)) == ((), 2)
    late = diff(
        kept.state,
        Reading({}),
        {job(): target("ops", "dba")},
        T0 + 3601,
        DiffSettings(LOOKBACK, pending_max_age=3600),
    )
    assert sorted(a.receiver for a in late.expired) == ["dba", "ops"]
    assert (late.state.outbox, late.state.expired) == ((), {"dba": 1, "ops": 1})
    assert late.state.mentioned({"ops": 1}).expired == {"dba": 1}


def test_a_listed_run_is_never_pruned_however_many_are_listed() -> None:
    many = [instance(i, S.SUCCESS) for i in range(1, 251)]
    first = diff(State(), Reading({job(): many}), {job(): target()}, T0, DiffSettings(LOOKBACK))
    assert len(first.state.jobs[job()].instances) == 250
    # Listed again next to a new failure: the 250 stay, the unlisted are capped.
    later = [instance(i, S.SUCCESS) for i in range(300, 310)]
    again = diff(
        first.state,
        Reading({job(): later}),
        {job(): target()},
        T0 + 60,
        DiffSettings(LOOKBACK, max_unlisted=5),
    )
    assert sorted(again.state.jobs[job()].instances) == [246, 247, 248, 249, 250, *range(300, 310)]


def test_an_alert_keeps_what_a_message_can_show_of_a_huge_error_text() -> None:
    huge = instance(1, result="OutOfMemoryError " + "x" * 5_000_000)
    [alert] = diff(
        State(), Reading({job(): [huge]}), {job(): target()}, T0, DiffSettings(LOOKBACK)
    ).alerts
    assert alert.instance is not None
    assert alert.instance.result.startswith("OutOfMemoryError ")
    assert len(alert.instance.result) < 2100


def test_a_version_1_record_knows_its_attempt_by_epoch_until_listed_again() -> None:
    """Version 1 stored an attempt's end as an epoch, in the zone configured then."""
    failed = instance(1, ended=T0)
    v1 = State(jobs={job(): JobRecord({1: InstanceRecord(5, T0, ("failed",), end_v1=T0)})})
    same = diff(v1, Reading({job(): [failed]}), {job(): target()}, T0 + 60, DiffSettings(LOOKBACK))
    assert same.alerts == ()
    assert same.state.jobs[job()].instances[1].end == "2026-11-25 10:00:00"
    rerun = diff(
        v1,
        Reading({job(): [instance(1, ended=T0 + 30)]}),
        {job(): target()},
        T0 + 60,
        DiffSettings(LOOKBACK),
    )
    assert len(rerun.alerts) == 1
