"""Routing: the watch entry's receivers, then `routes:` in order, each with its reason."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from schedulerx_alert.core.route import Route, resolve, trace
from schedulerx_alert.core.silence import Matcher, Subject

NS = "adcfc35d-e2fe-4fe9-bbaa-20e90ffc1234"


def subject(kind: str = "failed", name: str | None = "nightly-etl", group: str = "etl") -> Subject:
    return Subject(NS, group, 92583, name, kind, "scheduled")


BILLING = Route(Matcher(job_names=("billing-*",)), ("finance",))
ETL_FAILED = Route(Matcher(group="etl", kinds=frozenset({"failed"})), ("dba",))
ETL_FAILED_GO_ON = Route(Matcher(group="etl", kinds=frozenset({"failed"})), ("dba",), True)
CATCH_ALL = Route(Matcher(), ("ops",))


def test_without_routes_alerts_go_where_the_watch_entry_says() -> None:
    assert resolve(subject(), [(0, ["ops", "team"])], []) == [
        ("ops", "watch[0]"),
        ("team", "watch[0]"),
    ]


def test_the_first_matching_route_wins() -> None:
    routes = [BILLING, ETL_FAILED, CATCH_ALL]
    assert resolve(subject(), [(2, ["team"])], routes) == [
        ("team", "watch[2]"),
        ("dba", "routes[1] (group=etl, kind=failed)"),
    ]
    # A rejection is no failure: it falls through to the catch-all.
    assert resolve(subject(kind="rejected"), [(2, ["team"])], routes) == [
        ("team", "watch[2]"),
        ("ops", "routes[2] (any)"),
    ]


def test_a_route_that_continues_lets_the_next_ones_match_too() -> None:
    routes = [BILLING, ETL_FAILED_GO_ON, CATCH_ALL]
    assert resolve(subject(), [], routes) == [
        ("dba", "routes[1] (group=etl, kind=failed)"),
        ("ops", "routes[2] (any)"),
    ]


def test_a_receiver_reached_twice_is_listed_once_with_its_first_reason() -> None:
    routes = [Route(Matcher(group="etl"), ("ops", "dba", "ops"), True), ETL_FAILED]
    assert resolve(subject(), [(0, ["dba"])], routes) == [
        ("dba", "watch[0]"),
        ("ops", "routes[0] (group=etl)"),
    ]


def test_the_trace_says_why_each_route_did_or_did_not_apply() -> None:
    steps = trace(subject(), [BILLING, ETL_FAILED, CATCH_ALL])
    assert [(s.label, s.outcome, s.why) for s in steps] == [
        (
            "routes[0] (name=billing-*)",
            "no match",
            "job 92583 ('nightly-etl') is not name 'billing-*'",
        ),
        ("routes[1] (group=etl, kind=failed)", "matched", ""),
        ("routes[2] (any)", "not reached", "routes[1] matched and does not continue"),
    ]


def test_routes_match_on_trigger_type() -> None:
    reruns = Route(Matcher(trigger_types=frozenset({"manual_rerun"})), ("owner",))
    rerun = Subject(NS, "etl", 92583, None, "failed", "manual_rerun")
    assert resolve(rerun, [], [reruns]) == [("owner", "routes[0] (trigger=manual_rerun)")]
    assert resolve(subject(), [], [reruns]) == []


receivers = st.lists(st.sampled_from(["ops", "dba", "team", "finance"]), min_size=1, max_size=3)
routes = st.lists(
    st.builds(
        Route,
        matcher=st.builds(
            Matcher,
            group=st.sampled_from([None, "etl", "billing"]),
            kinds=st.frozensets(st.sampled_from(["failed", "rejected"]), max_size=1),
        ),
        receivers=receivers.map(tuple),
        continue_=st.booleans(),
    ),
    max_size=5,
)
kinds = st.sampled_from(["failed", "rejected", "missed"])


@given(receivers, routes, kinds)
def test_every_watch_receiver_is_kept_none_twice_and_routes_stop_at_the_first_final_match(
    own: list[str], table: list[Route], kind: str
) -> None:
    about = subject(kind=kind)
    result = resolve(about, [(0, own)], table)
    names = [name for name, _ in result]
    assert len(names) == len(set(names))
    assert set(own) <= set(names)
    matched = [i for i, r in enumerate(table) if r.matcher.matches(about)]
    final = next((i for i in matched if not table[i].continue_), len(table))
    expected = set(own).union(*(table[i].receivers for i in matched if i <= final))
    assert set(names) == expected
