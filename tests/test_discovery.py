"""Watch entries that name groups and patterns, ListJobs answers read job by job, and the
catalog and the sources' memory in the state."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest

from schedulerx_alert.config import ConfigError, parse_config
from schedulerx_alert.core.catalog import Contact, JobInfo
from schedulerx_alert.core.model import JobKey
from schedulerx_alert.core.polling import (
    PER_JOB,
    GroupCursor,
    Query,
    ServerFacts,
    SourceState,
    Span,
)
from schedulerx_alert.core.state import State, StateFormatError, dump_state, load_state
from schedulerx_alert.sources.discovery import (
    parse_job_page,
    rule_for_unlisted,
    watched_jobs,
)

NS, G = "ns/with slash", "g"
HOOK = "https://oapi.dingtalk.com/robot/send?access_token=t"


def raw(*watch: dict[str, Any], **schedulerx: Any) -> dict[str, Any]:
    return {
        "region": "cn-hangzhou",
        "state": {"url": "file:///tmp/state.json"},
        "receivers": [{"name": "ops", "webhook": HOOK}, {"name": "dba", "webhook": HOOK + "2"}],
        "schedulerx": schedulerx,
        "watch": [{"namespace": NS, "group": G, "receivers": ["ops"], **w} for w in watch],
    }


def problems(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(document, {})
    return caught.value.problems


def test_watch_entries_by_group_by_pattern_and_by_id() -> None:
    config = parse_config(
        raw(
            {"jobs": [7]},
            {"job_names": ["etl-*"], "exclude_names": ["etl-test*"], "receivers": ["dba"]},
            {"jobs": "all", "exclude_jobs": [9]},
        ),
        {},
    )
    ids, names, everything = config.watch
    assert not ids.discovers and names.discovers and everything.all_jobs
    assert names.job_names == ("etl-*",) and everything.exclude_jobs == frozenset({9})
    catalog = {
        info.job: info
        for info in (
            JobInfo(JobKey(NS, G, 7), "etl-named-by-id"),
            JobInfo(JobKey(NS, G, 8), "etl-daily"),
            JobInfo(JobKey(NS, G, 9), "excluded"),
            JobInfo(JobKey(NS, G, 10), "etl-test-1"),
            JobInfo(JobKey(NS, G, 11), "report", enabled=False),
            JobInfo(JobKey(NS, G, 12), "report"),
        )
    }
    watched = watched_jobs(config, catalog)
    # An id is its entry's; then the first entry that matches; disabled jobs are left out.
    assert {k.job_id: w.rule.receivers for k, w in watched.items()} == {
        7: ("ops",),
        8: ("dba",),
        10: ("ops",),
        12: ("ops",),
    }
    assert watched[JobKey(NS, G, 7)].name == "etl-named-by-id"
    # A job the list does not show yet: `jobs: all` takes it without its name.
    assert rule_for_unlisted(config, JobKey(NS, G, 99)) is everything
    assert rule_for_unlisted(config, JobKey(NS, G, 9)) is None


def test_the_sections_new_keys_and_their_defaults() -> None:
    config = parse_config(
        raw({"jobs": "all"}, query="per_job", discovery_interval="5m", sweep_interval=600), {}
    )
    sx = config.schedulerx
    assert (sx.query, sx.discovery_interval, sx.sweep_interval) == (
        "per_job",
        timedelta(minutes=5),
        timedelta(minutes=10),
    )
    default = parse_config(raw({"jobs": [1]}), {}).schedulerx
    assert (default.query, default.discovery_interval, default.sweep_interval) == (
        "auto",
        timedelta(minutes=10),
        timedelta(minutes=15),
    )


@pytest.mark.parametrize(
    ("entry", "schedulerx", "expected"),
    [
        ({"jobs": "everything"}, {}, "watch[0].jobs: must be a list of job ids or all"),
        ({"jobs": "all", "job_names": ["a*"]}, {}, "watch[0].job_names: jobs: all already"),
        ({"receivers": ["ops"]}, {}, "watch[0]: needs jobs"),
        ({"jobs": [1], "exclude_jobs": [2]}, {}, "watch[0].exclude_jobs: excludes apply"),
        ({"jobs": "all", "exclude_jobs": ["x"]}, {}, "watch[0].exclude_jobs[0]: job id must be"),
        ({"job_names": ["ok", 3, ""]}, {}, "watch[0].job_names[1]: must be a name pattern"),
        ({"job_names": []}, {}, "watch[0].job_names: must be a non-empty list"),
        ({"jobs": "all"}, {"query": "fast"}, "schedulerx.query: must be one of auto, per_job"),
        ({"jobs": "all"}, {"sweep_interval": "10 min"}, "schedulerx.sweep_interval: must be a"),
        ({"jobs": "all"}, {"discovery_interval": "2d"}, "schedulerx.discovery_interval: must"),
        ({"jobs": "all"}, {"discovery_interval": "25h"}, "must be between 1m and 24h"),
    ],
)
def test_bad_watch_entries_and_settings_are_named(
    entry: dict[str, Any], schedulerx: dict[str, Any], expected: str
) -> None:
    found = problems(raw(entry, **schedulerx))
    assert any(p.startswith(expected) or expected in p for p in found), found


DING = "https://oapi.dingtalk.com/robot/send?access_token=contact-robot-token"
PAGE = {
    "Data": {
        "Total": 3,
        "PageNumber": 1,
        "PageSize": 100,
        "Jobs": [
            {
                "JobId": 11,
                "Name": "etl-daily",
                "Status": 1,
                "TimeConfig": {"TimeType": 1, "TimeExpression": "0 0 2 * * ?", "Calendar": ""},
                "JobMonitorInfo": {
                    "MonitorConfig": {"TimeoutEnable": True, "Timeout": 1800},
                    "ContactInfo": [{"UserName": "Li Lei", "UserPhone": "138", "Ding": DING}],
                },
            },
            {"JobId": "not a number", "Name": "broken"},
            {"JobId": 13, "Name": "off", "Status": 0, "TimeConfig": {"TimeType": 100}},
        ],
    }
}


def test_a_job_list_page_is_read_job_by_job() -> None:
    page = parse_job_page((NS, G), 1, PAGE, now=1000.0)
    daily, off = page.jobs
    assert (daily.name, daily.time_type, daily.time_expression) == ("etl-daily", 1, "0 0 2 * * ?")
    assert (daily.timeout_enabled, daily.timeout_seconds) == (True, 1800.0)
    # `Ding` is the contact's robot webhook (a secret), never taken for a user id.
    assert daily.contacts == (Contact("Li Lei", "138", ""),)
    assert "contact-robot-token" not in repr(page)
    assert not off.enabled and off.time_type == 100
    [problem] = page.problems
    assert "Jobs[1]" in problem and "JobId" in problem
    assert page.last  # three of three listed
    with pytest.raises(ValueError, match="Data"):
        parse_job_page((NS, G), 1, {"Data": "nope"}, now=0.0)


def test_catalog_and_sources_round_trip_through_the_state() -> None:
    key = JobKey(NS, G, 11)
    catalog = {
        key: JobInfo(key, "etl-daily", True, 1, "0 0 2 * * ?", "", True, 1800.0,
                     (Contact("Li Lei", "138", "u1"),), 1000.0),
        JobKey(NS, G, 12): JobInfo(JobKey(NS, G, 12), "plain", refreshed_at=1000.0),
    }  # fmt: skip
    sources = SourceState(
        server=ServerFacts("https://schedulerx.aliyuncs.com/", ("schedule", "end"), 20, 20),
        groups={
            (NS, G): GroupCursor(
                covered=2000.0,
                spans=(Span(1000.0, 2000.0, (Query(5), Query(9, False)), 3, True),),
                floor=900.0,
                scanned_at=1900.0,
                ancient=((11, 1700000000001, 100.0),),
                discovered_at=1500.0,
            ),
            ("other", "group"): GroupCursor(mode=PER_JOB, reason="refused", retry_at=9e4),
        },
        calls={"ListJobs": (1990.0, 1995.0)},
        anchors={JobKey(NS, G, 12): 1234.0},
    )
    state = State(catalog=catalog, sources=sources)
    data = dump_state(state)
    again = load_state(data)
    assert again.catalog == catalog and again.sources == sources
    # A plain job costs a short list, not an object of named fields.
    assert b'[12,"plain",1,null,"",1000]' in data


@pytest.mark.parametrize(
    ("section", "value", "where"),
    [
        ("sources", {"groups": {"ns/g": {"mode": "sometimes"}}}, "sources.groups['ns/g'].mode"),
        ("sources", {"server": {"fields": ["sideways"]}}, "sources.server.fields"),
        ("sources", {"groups": {"ns/g": {"spans": [[1, 2]]}}}, "spans"),
        ("catalog", {"ns/g": [[1, "x"]]}, "catalog['ns/g'][0]"),
        ("catalog", {"ns/g/x": []}, "namespace/group"),
    ],
)
def test_a_damaged_catalog_or_sources_section_names_where(
    section: str, value: Any, where: str
) -> None:
    document = json.dumps({"version": 2, section: value})
    with pytest.raises(StateFormatError, match=re.escape(where)):
        load_state(document.encode())
