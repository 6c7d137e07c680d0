"""Silences and quiet hours, decided by pure functions: matching, windows, digests."""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from schedulerx_alert.core.silence import (
    KINDS,
    TRIGGER_TYPES,
    Matcher,
    QuietHours,
    QuietWindow,
    Silence,
    Subject,
    active_silences,
    ended_between,
    in_quiet_hours,
    parse_matcher,
    parse_silence,
    silenced_by,
)

NS = "adcfc35d-e2fe-4fe9-bbaa-20e90ffc1234"
SHANGHAI = ZoneInfo("Asia/Shanghai")
# 2026-11-25 10:00 Asia/Shanghai, a Wednesday
NOON_ISH = datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI).timestamp()


def subject(
    job_id: int | None = 92583,
    name: str | None = "nightly-etl",
    kind: str = "failed",
    group: str = "etl",
    trigger: str | None = "scheduled",
) -> Subject:
    return Subject(NS, group, job_id, name, kind, trigger)


def silence(matcher: Matcher, start: float = 0.0, end: float = 100.0, sid: str = "1") -> Silence:
    return Silence(sid, matcher, start, end, comment="why", created_by="alice")


def at(year: int, month: int, day: int, hour: int, minute: int = 0, zone: str = "") -> float:
    return datetime(
        year, month, day, hour, minute, tzinfo=ZoneInfo(zone or "Asia/Shanghai")
    ).timestamp()


# -- matching --------------------------------------------------------------------------------


def test_an_empty_field_matches_anything_and_every_named_field_must_match() -> None:
    assert Matcher().matches(subject())
    assert Matcher(group="etl", kinds=frozenset({"failed"})).matches(subject())
    assert not Matcher(group="etl", kinds=frozenset({"rejected"})).matches(subject())
    assert not Matcher(namespace="other", group="etl").matches(subject())


def test_job_ids_and_name_globs_both_select_jobs() -> None:
    by_either = Matcher(job_ids=frozenset({1}), job_names=("nightly-*",))
    assert by_either.matches(subject(job_id=1, name="daily"))
    assert by_either.matches(subject(job_id=2, name="nightly-etl"))
    assert not by_either.matches(subject(job_id=2, name="daily"))
    # A job SchedulerX gave no name is selected by id only.
    assert not Matcher(job_names=("*",)).matches(subject(name=None))
    # Globs are case-sensitive, as job names are.
    assert not Matcher(job_names=("Nightly-*",)).matches(subject())


def test_a_trigger_condition_never_matches_an_alert_without_a_run() -> None:
    manual = Matcher(trigger_types=frozenset({"manual_rerun"}))
    assert manual.matches(subject(trigger="manual_rerun"))
    assert not manual.matches(subject(trigger="scheduled"))
    assert manual.mismatch(subject(kind="missed", trigger=None)) == (
        "trigger type unknown is not manual_rerun"
    )


def test_a_mismatch_says_which_condition_failed() -> None:
    assert Matcher(group="billing").mismatch(subject()) == "group 'etl' is not 'billing'"
    assert Matcher(job_names=("billing-*",)).mismatch(subject()) == (
        "job 92583 ('nightly-etl') is not name 'billing-*'"
    )
    assert Matcher(kinds=frozenset({"stuck", "missed"})).mismatch(subject()) == (
        "kind failed is not missed|stuck"
    )
    assert Matcher(group="etl", kinds=frozenset({"failed"})).describe() == "group=etl, kind=failed"
    assert Matcher().describe() == "any"


# -- silences in time ------------------------------------------------------------------------


def test_a_silence_holds_from_its_start_up_to_but_not_at_its_end() -> None:
    one = silence(Matcher(job_ids=frozenset({92583})), start=10.0, end=20.0)
    assert silenced_by(subject(), [one], 9.999) is None
    assert silenced_by(subject(), [one], 10.0) is one
    assert silenced_by(subject(), [one], 19.999) is one
    assert silenced_by(subject(), [one], 20.0) is None
    assert silenced_by(subject(job_id=7, name="x"), [one], 15.0) is None


def test_expiring_ends_a_silence_early_and_a_second_expiry_keeps_the_first() -> None:
    one = silence(Matcher(group="etl"), start=0.0, end=100.0)
    expired = one.expire(40.0, "bob")
    assert expired.until == 40.0
    assert expired.end == 100.0  # what was planned stays on record
    assert expired.expire(60.0, "carol") == expired
    assert expired.expire(30.0, "carol").until == 30.0
    assert active_silences([expired], 39.0) == (expired,)
    assert active_silences([expired], 40.0) == ()


def test_of_several_silences_the_longest_lasting_holds_the_alert() -> None:
    short = silence(Matcher(group="etl"), end=50.0, sid="short")
    long = silence(Matcher(job_ids=frozenset({92583})), end=90.0, sid="long")
    other = silence(Matcher(group="billing"), end=500.0, sid="other")
    assert silenced_by(subject(), [short, long, other], 10.0) is long
    assert silenced_by(subject(), [short, long, other], 60.0) is long
    assert silenced_by(subject(), [short, other], 60.0) is None


def test_each_ended_silence_owes_exactly_one_digest_across_ticks() -> None:
    silences = [
        silence(Matcher(group="etl"), start=0.0, end=125.0, sid="a"),
        silence(Matcher(group="etl"), start=0.0, end=180.0, sid="b"),  # ends on a tick
        silence(Matcher(group="etl"), start=0.0, end=1000.0, sid="c").expire(200.0, "bob"),
        # Expired before it began: it held nothing back and owes nothing.
        silence(Matcher(group="etl"), start=500.0, end=900.0, sid="d").expire(300.0, "bob"),
        silence(Matcher(group="etl"), start=0.0, end=10_000.0, sid="e"),  # still running
    ]
    ticks = [0.0, 60.0, 120.0, 180.0, 240.0, 300.0, 360.0]
    owed = [s.id for last, now in pairwise(ticks) for s in ended_between(silences, last, now)]
    assert owed == ["a", "b", "c"]


# -- quiet hours -----------------------------------------------------------------------------

WEEKDAY_NIGHTS = QuietHours(
    windows=(QuietWindow(frozenset(range(5)), 0, 8 * 60),),
    zone="Asia/Shanghai",
    except_kinds=frozenset({"missed"}),
)


def test_weekday_quiet_hours_in_shanghai_time() -> None:
    # Monday 2026-11-23
    assert in_quiet_hours(WEEKDAY_NIGHTS, at(2026, 11, 23, 0, 0), "failed")
    assert in_quiet_hours(WEEKDAY_NIGHTS, at(2026, 11, 23, 7, 59), "failed")
    assert not in_quiet_hours(WEEKDAY_NIGHTS, at(2026, 11, 23, 8, 0), "failed")
    # Saturday night is not a weekday night.
    assert not in_quiet_hours(WEEKDAY_NIGHTS, at(2026, 11, 28, 3, 0), "failed")
    # The kinds that still page, page.
    assert not in_quiet_hours(WEEKDAY_NIGHTS, at(2026, 11, 23, 3, 0), "missed")
    assert not in_quiet_hours(None, at(2026, 11, 23, 3, 0), "failed")


def test_quiet_hours_follow_the_receivers_zone_not_utc() -> None:
    # Monday 01:00 in Shanghai is Sunday 17:00 UTC.
    instant = at(2026, 11, 23, 1, 0)
    assert in_quiet_hours(WEEKDAY_NIGHTS, instant, "failed")
    in_utc = QuietHours(WEEKDAY_NIGHTS.windows, "UTC")
    assert not in_quiet_hours(in_utc, instant, "failed")
    assert in_quiet_hours(in_utc, at(2026, 11, 23, 1, 0, "UTC"), "failed")


def test_a_window_across_midnight_belongs_to_the_day_it_begins() -> None:
    friday_night = QuietHours((QuietWindow(frozenset({4}), 22 * 60, 6 * 60),), "Asia/Shanghai")
    assert in_quiet_hours(friday_night, at(2026, 11, 27, 22, 0), "failed")  # Friday
    assert in_quiet_hours(friday_night, at(2026, 11, 28, 5, 59), "failed")  # Saturday
    assert not in_quiet_hours(friday_night, at(2026, 11, 28, 6, 0), "failed")
    assert not in_quiet_hours(friday_night, at(2026, 11, 27, 5, 0), "failed")  # Friday morning
    assert not in_quiet_hours(friday_night, at(2026, 11, 28, 23, 0), "failed")  # Saturday night
    # Sunday night runs into Monday morning: the week wraps.
    sunday_night = QuietHours((QuietWindow(frozenset({6}), 23 * 60, 2 * 60),), "Asia/Shanghai")
    assert in_quiet_hours(sunday_night, at(2026, 11, 30, 1, 0), "failed")  # Monday


def test_a_whole_day_ends_at_24_00() -> None:
    sundays = QuietHours((QuietWindow(frozenset({6}), 0, 24 * 60),), "Asia/Shanghai")
    assert in_quiet_hours(sundays, at(2026, 11, 29, 0, 0), "failed")
    assert in_quiet_hours(sundays, at(2026, 11, 29, 23, 59), "failed")
    assert not in_quiet_hours(sundays, at(2026, 11, 30, 0, 0), "failed")
    assert sundays.describe() == "sun 00:00-24:00 (Asia/Shanghai)"


# -- properties ------------------------------------------------------------------------------

names = st.sampled_from(["nightly-etl", "billing-sync", "daily", None])
subjects = st.builds(
    Subject,
    namespace=st.sampled_from([NS, "other"]),
    group=st.sampled_from(["etl", "billing"]),
    job_id=st.sampled_from([1, 2, 92583, None]),
    job_name=names,
    kind=st.sampled_from(sorted(KINDS)),
    trigger_type=st.sampled_from([*TRIGGER_TYPES, None]),
)
matchers = st.builds(
    Matcher,
    namespace=st.sampled_from([None, NS]),
    group=st.sampled_from([None, "etl", "billing"]),
    job_ids=st.frozensets(st.sampled_from([1, 2, 92583]), max_size=2),
    job_names=st.lists(
        st.sampled_from(["nightly-*", "*-sync", "daily"]), max_size=2, unique=True
    ).map(tuple),
    kinds=st.frozensets(st.sampled_from(["failed", "rejected", "missed"]), max_size=2),
    trigger_types=st.frozensets(st.sampled_from(sorted(TRIGGER_TYPES)), max_size=2),
)
times = st.floats(min_value=0, max_value=10_000, allow_nan=False)


@st.composite
def silences(draw: st.DrawFn) -> Silence:
    start = draw(times)
    one = Silence(
        id=str(draw(st.integers(1, 10**6))),
        matcher=draw(matchers.filter(lambda m: not m.is_empty)),
        start=start,
        end=start + draw(st.floats(min_value=0.001, max_value=5_000)),
        comment=draw(st.text("ab 中文\n<*>", max_size=20)),
        created_by=draw(st.text("xyz", max_size=10)),
        created_at=draw(times),
        source="oss",
    )
    if draw(st.booleans()):
        one = one.expire(draw(times), "bob")
    return one


@given(st.lists(silences(), max_size=6), subjects, times)
def test_a_silence_never_holds_an_alert_outside_its_time_or_its_match(
    book: list[Silence], about: Subject, now: float
) -> None:
    holder = silenced_by(about, book, now)
    if holder is None:
        assert not any(s.start <= now < s.until and s.matcher.matches(about) for s in book)
    else:
        assert holder.start <= now < holder.until
        assert holder.matcher.matches(about)


@given(silences())
def test_a_silence_reads_back_as_written(one: Silence) -> None:
    problems: list[str] = []
    assert parse_silence(one.to_dict(), "record", problems) == one
    assert problems == []


@given(
    st.frozensets(st.integers(0, 6), min_size=1),
    st.integers(0, 24 * 60 - 1),
    st.integers(1, 24 * 60),
)
def test_a_weekly_window_covers_its_length_on_each_of_its_days(
    days: frozenset[int], start: int, end: int
) -> None:
    window = QuietWindow(days, start, end)
    covered = sum(window.covers(day, minute) for day in range(7) for minute in range(24 * 60))
    length = end - start if start < end else 24 * 60 - start + end
    assert covered == len(days) * length


# -- reading matchers from plain values ------------------------------------------------------


def test_matcher_problems_name_their_path_and_what_is_wrong() -> None:
    problems: list[str] = []
    matcher = parse_matcher(
        {"group": "etl", "kind": "failedd", "jobs": [92583, -1], "job_names": [], "color": "red"},
        "routes[1].match",
        problems,
    )
    assert matcher == Matcher(group="etl", job_ids=frozenset({92583}))
    assert any(
        p.startswith("routes[1].match.kind: unknown kind 'failedd' (one of: ") for p in problems
    )
    assert "routes[1].match.jobs: job ids are positive integers, not -1" in problems
    assert "routes[1].match.job_names: is empty; leave it out to match any job_name" in problems
    assert any(p.startswith("routes[1].match.color: unknown key") for p in problems)


def test_singular_and_plural_keys_say_the_same_and_not_twice() -> None:
    problems: list[str] = []
    one = parse_matcher({"kind": "failed", "job": 7, "trigger_type": 4}, "m", problems)
    assert one == Matcher(
        job_ids=frozenset({7}),
        kinds=frozenset({"failed"}),
        trigger_types=frozenset({"manual_rerun"}),
    )
    assert problems == []
    parse_matcher({"kind": "failed", "kinds": ["missed"]}, "m", problems)
    assert problems == ["m.kinds: kind already says which kinds"]


def test_an_oversized_value_read_back_is_refused_and_shown_short() -> None:
    problems: list[str] = []
    parse_matcher({"group": "g" * 5000, "jobs": list(range(1, 500))}, "record", problems)
    assert problems == [
        "record.group: must be 1 to 200 characters, not 5000",
        "record.jobs: at most 100 job ids, not 499",
    ]


def test_a_silence_quotes_a_bad_value_as_the_config_does() -> None:
    # One show() for both (core/shown.py): short, and never a value's whole size.
    for bad, shown in [([1, 2], "a list of 2 item(s)"), (2**70, "a very large integer")]:
        problems: list[str] = []
        parse_matcher({"jobs": [bad]}, "silences[0]", problems)
        assert problems == [f"silences[0].jobs: job ids are positive integers, not {shown}"]
    problems = []
    parse_matcher({"kinds": [{"a": 1}]}, "", problems)
    assert problems[0].startswith(".kinds: unknown kind a mapping of 1 key(s) (one of: ")
