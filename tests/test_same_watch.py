"""A job list read again mostly confirms what the catalog held: the tick then keeps the
watched jobs it computed (`discovery.same_watch`) instead of going through the whole
catalog once more. Whenever it says so, the general path agrees."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from schedulerx_alert.config import parse_config
from schedulerx_alert.core.catalog import JobInfo
from schedulerx_alert.core.model import JobKey
from schedulerx_alert.sources.discovery import same_watch, watched_jobs
from schedulerx_alert.tick import targets_of

NS = "ns"
HOOK = "https://oapi.dingtalk.com/robot/send?access_token=t"
CONFIG = parse_config(
    {
        "region": "cn-hangzhou",
        "state": {"url": "file:///tmp/state.json"},
        "receivers": [{"name": "ops", "webhook": HOOK}, {"name": "dba", "webhook": HOOK + "2"}],
        "watch": [
            {"namespace": NS, "group": "a", "receivers": ["ops"], "jobs": [1, 2]},
            {
                "namespace": NS,
                "group": "a",
                "receivers": ["dba"],
                "job_names": ["etl-*"],
                "exclude_names": ["etl-test*"],
            },
            {"namespace": NS, "group": "b", "receivers": ["ops"], "jobs": "all"},
        ],
    },
    {},
)
NAMES = ["etl-daily", "etl-test-1", "report", ""]

_infos = st.builds(
    JobInfo,
    job=st.builds(JobKey, st.just(NS), st.sampled_from(["a", "b"]), st.integers(1, 6)),
    name=st.sampled_from(NAMES),
    enabled=st.booleans(),
    time_expression=st.sampled_from(["", "0 * * * * ?"]),
    refreshed_at=st.sampled_from([0.0, 60.0]),
)
_catalogs = st.lists(_infos, max_size=12).map(lambda infos: {i.job: i for i in infos})
# How a second read changes a record: confirmed (a new record), renamed, switched, or kept.
_edits = st.sampled_from(["same", "confirmed", "renamed", "switched", "rescheduled"])


def _edit(info: JobInfo, how: str) -> JobInfo:
    if how == "confirmed":
        return replace(info, refreshed_at=info.refreshed_at + 60)
    if how == "renamed":
        return replace(info, name=NAMES[(NAMES.index(info.name) + 1) % len(NAMES)])
    if how == "switched":
        return replace(info, enabled=not info.enabled)
    if how == "rescheduled":
        return replace(info, time_expression="0 0 * * * ?")
    return info


@given(_catalogs, st.lists(_edits, min_size=12, max_size=12), _catalogs, st.booleans())
def test_same_watch_means_the_same_watched_jobs(
    before: dict[JobKey, JobInfo], edits: list[str], added: dict[JobKey, JobInfo], grow: bool
) -> None:
    used = edits[: len(before)]
    after = {key: _edit(info, how) for (key, info), how in zip(before.items(), used, strict=True)}
    if grow:
        after = {**added, **after}
    if same_watch(before, after):
        assert watched_jobs(CONFIG, before) == watched_jobs(CONFIG, after)
        assert targets_of(CONFIG, before) == targets_of(CONFIG, after)
    if all(how in ("same", "confirmed", "rescheduled") for how in used) and not grow:
        assert same_watch(before, after)


def test_a_job_renamed_or_switched_off_is_told() -> None:
    daily = JobInfo(JobKey(NS, "a", 3), "etl-daily")
    before = {daily.job: daily}
    assert same_watch(before, {daily.job: replace(daily, refreshed_at=60.0)})
    assert not same_watch(before, {daily.job: replace(daily, name="etl-test-1")})
    assert not same_watch(before, {daily.job: replace(daily, enabled=False)})
    other = JobInfo(JobKey(NS, "b", 3), "etl-daily")
    assert not same_watch(before, {other.job: other})
    assert not same_watch(before, {})
