"""The loopback SchedulerX server answers estate-wide questions the way the real one may.

Group queries (GetJobInstanceList without JobId), ListJobs with TimeConfig, and the switches
for what the documentation leaves open: which time the window filters on, the order, the
largest page, an older server, latency. The happy paths go through the official SDK, so its
request models are what the fake is shown to accept, signatures included.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alibabacloud_schedulerx220190430 import models as sx_models
from alibabacloud_schedulerx220190430.client import Client as SchedulerXClient
from alibabacloud_tea_openapi import exceptions as tea_exceptions
from alibabacloud_tea_openapi.models import Config
from aliyunsdkcore.auth.credentials import StsTokenCredential  # type: ignore[import-untyped]
from aliyunsdkcore.client import AcsClient  # type: ignore[import-untyped]
from aliyunsdkcore.request import CommonRequest  # type: ignore[import-untyped]

from tests.fakes import FakeSchedulerX, ManualClock
from tests.fakes.schedulerx import LatencyEntry, makespan

AK = "LTAI5tEstateKeyId"
SK = "estate-secret-Value+/="
TOKEN = "CAIS+estate/sts=="
NS = "adcfc35d-e2fe-4fe9-bbaa-20e90ffc0000"
GROUP = "estate.billing"
OTHER = "estate.search"
SHANGHAI = ZoneInfo("Asia/Shanghai")
# 2026-11-25 10:00:00 in Shanghai; times below are minutes after it.
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI).timestamp()


def at(minutes: float) -> float:
    return T0 + 60 * minutes


def ms(minutes: float) -> int:
    return int(at(minutes) * 1000)


def client(sx: FakeSchedulerX) -> SchedulerXClient:
    return SchedulerXClient(
        Config(
            access_key_id=AK,
            access_key_secret=SK,
            security_token=TOKEN,
            region_id="cn-hangzhou",
            endpoint=sx.endpoint,
            protocol="http",
        )
    )


def group_query(group: str = GROUP, **filters: Any) -> Any:
    """GetJobInstanceList for a whole group: the SDK model with job_id left out."""
    return sx_models.GetJobInstanceListRequest(
        region_id="cn-hangzhou", namespace=NS, group_id=group, **filters
    )


def ids(body: Any) -> list[int]:
    return [d.instance_id for d in body.data.job_instance_details]


@pytest.fixture
def sx() -> Iterator[FakeSchedulerX]:
    with FakeSchedulerX(AK, SK, security_token=TOKEN) as fake:
        yield fake


def estate(sx: FakeSchedulerX) -> dict[str, int]:
    """Two jobs in GROUP, one in OTHER; runs with distinct schedule, start and end times
    (a rejected run never starts)."""
    sx.add_job(NS, GROUP, 1, "settle")
    sx.add_job(NS, GROUP, 2, "invoice")
    sx.add_job(NS, OTHER, 3, "reindex")
    return {
        # scheduled 0, started 1, ended 30 (a long failure)
        "long_failure": sx.add_instance(
            1, status=5, schedule_time=at(0), start_time=at(1), end_time=at(30)
        ),
        "quick_failure": sx.add_instance(
            2, status=5, schedule_time=at(10), start_time=at(10), end_time=at(11)
        ),
        "success": sx.add_instance(
            1, status=4, schedule_time=at(20), start_time=at(20), end_time=at(21)
        ),
        "running": sx.add_instance(2, status=3, schedule_time=at(25), start_time=at(25)),
        "rejected": sx.add_instance(
            2, status=9, schedule_time=at(26), started=False, end_time=at(26)
        ),
        "other_group_failure": sx.add_instance(
            3, status=5, schedule_time=at(12), start_time=at(12), end_time=at(13)
        ),
    }


# -- the official SDK's request models -------------------------------------------------------


def test_sdk_group_query_without_job_id_is_signed_and_filtered(sx: FakeSchedulerX) -> None:
    runs = estate(sx)
    body = (
        client(sx)
        .get_job_instance_list(
            group_query(status=5, start_timestamp=ms(-5), end_timestamp=ms(60), page_size=50)
        )
        .body
    )
    assert body.success is True
    assert ids(body) == [runs["quick_failure"], runs["long_failure"]]  # newest first
    sent = sx.requests[-1]
    assert sent.verdict == "ok"
    assert sent.headers["authorization"].startswith("ACS3-HMAC-SHA256 ")
    assert "JobId" not in sent.query
    assert (sent.query["Status"], sent.query["PageSize"]) == ("5", "50")
    assert sent.query["StartTimestamp"] == str(ms(-5))


def test_v1_core_sdk_group_query(sx: FakeSchedulerX) -> None:
    runs = estate(sx)
    request = CommonRequest(
        domain=sx.endpoint, version="2019-04-30", action_name="GetJobInstanceList"
    )
    request.set_protocol_type("http")
    request.set_method("GET")
    for name, value in (
        ("RegionId", "cn-hangzhou"),
        ("Namespace", NS),
        ("GroupId", GROUP),
        ("Status", "9"),
    ):
        request.add_query_param(name, value)
    acs = AcsClient(
        region_id="cn-hangzhou", credential=StsTokenCredential(AK, SK, TOKEN), auto_retry=False
    )
    body = json.loads(acs.do_action_with_exception(request))
    assert [d["InstanceId"] for d in body["Data"]["JobInstanceDetails"]] == [runs["rejected"]]
    assert sx.requests[-1].query["SignatureMethod"] == "HMAC-SHA1"


def test_sdk_list_jobs_pages_a_group_with_time_config_and_monitoring(sx: FakeSchedulerX) -> None:
    for job_id in range(100, 125):
        sx.add_job(
            NS,
            GROUP,
            job_id,
            time_type=3 if job_id % 5 == 0 else 1,
            time_expression="600" if job_id % 5 == 0 else "0 0 2 * * ?",
            status=0 if job_id == 101 else 1,
            calendar="cn_workday" if job_id == 102 else "",
            data_offset=3600 if job_id == 102 else 0,
            monitor={"TimeoutEnable": True, "Timeout": 1800},
            contacts=[{"UserName": "Li Lei", "UserPhone": "13800000000", "UserMail": "l@x.cn"}],
        )
    sx.add_job(NS, OTHER, 999)
    sdk = client(sx)
    pages = []
    for number in (1, 2, 3):
        request = sx_models.ListJobsRequest(
            region_id="cn-hangzhou", namespace=NS, group_id=GROUP, page_num=number, page_size=10
        )
        pages.append(sdk.list_jobs(request).body.data)
    assert [len(p.jobs) for p in pages] == [10, 10, 5]
    assert {p.total for p in pages} == {25}
    assert [p.page_number for p in pages] == [1, 2, 3]
    listed = [j for p in pages for j in p.jobs]
    assert [j.job_id for j in listed] == list(range(100, 125))
    by_id = {j.job_id: j for j in listed}
    assert (by_id[100].time_config.time_type, by_id[100].time_config.time_expression) == (
        3,
        "600",
    )
    assert by_id[102].time_config.time_expression == "0 0 2 * * ?"
    assert (by_id[102].time_config.calendar, by_id[102].time_config.data_offset) == (
        "cn_workday",
        3600,
    )
    assert (by_id[101].status, by_id[103].status) == (0, 1)
    monitor = by_id[103].job_monitor_info
    assert (monitor.monitor_config.timeout_enable, monitor.monitor_config.timeout) == (True, 1800)
    assert monitor.monitor_config.fail_enable is True
    assert (monitor.contact_info[0].user_name, monitor.contact_info[0].user_phone) == (
        "Li Lei",
        "13800000000",
    )
    disabled = sdk.list_jobs(
        sx_models.ListJobsRequest(region_id="cn-hangzhou", namespace=NS, group_id=GROUP, status="0")
    ).body.data
    assert ([j.job_id for j in disabled.jobs], disabled.total) == ([101], 1)


def test_a_job_moved_to_another_group_is_listed_there_only(sx: FakeSchedulerX) -> None:
    sx.add_job(NS, GROUP, 7)
    sx.add_job(NS, OTHER, 7)
    assert [j.job_id for j in sx.jobs(NS, GROUP)] == []
    assert [j.job_id for j in sx.jobs(NS, OTHER)] == [7]


# -- which time the window filters on --------------------------------------------------------


@pytest.mark.parametrize(
    ("window_field", "expected"),
    [
        # Window [5, 29] minutes: schedule times 10, 20, 25, 26; start times 10, 20, 25;
        # end times 11, 21, 26. The long failure (0 / 1 / 30) is outside on every field.
        ("schedule", ["rejected", "running", "success", "quick_failure"]),
        ("start", ["running", "success", "quick_failure"]),
        ("end", ["rejected", "success", "quick_failure"]),
    ],
)
def test_window_filters_on_the_chosen_time(
    sx: FakeSchedulerX, window_field: Any, expected: list[str]
) -> None:
    runs = estate(sx)
    sx.configure(window_field=window_field)
    body = client(sx).get_job_instance_list(
        group_query(start_timestamp=ms(5), end_timestamp=ms(29))
    )
    assert ids(body.body) == [runs[name] for name in expected]


def test_a_long_run_is_found_by_its_end_only_when_the_window_is_on_end(
    sx: FakeSchedulerX,
) -> None:
    runs = estate(sx)
    window = group_query(status=5, start_timestamp=ms(29), end_timestamp=ms(31))
    assert ids(client(sx).get_job_instance_list(window).body) == []
    sx.configure(window_field="end")
    assert ids(client(sx).get_job_instance_list(window).body) == [runs["long_failure"]]


def test_per_job_queries_use_the_same_switches_when_modern(sx: FakeSchedulerX) -> None:
    runs = estate(sx)
    sx.modern_params = True
    sx.configure(window_field="end", order="id_asc")
    request = sx_models.GetJobInstanceListRequest(
        region_id="cn-hangzhou",
        namespace=NS,
        group_id=GROUP,
        job_id=1,
        start_timestamp=ms(0),
        end_timestamp=ms(60),
    )
    assert ids(client(sx).get_job_instance_list(request).body) == [
        runs["long_failure"],
        runs["success"],
    ]


# -- order and paging ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("schedule_desc", ["rejected", "running", "success", "quick_failure", "long_failure"]),
        ("schedule_asc", ["long_failure", "quick_failure", "success", "running", "rejected"]),
        ("id_asc", ["long_failure", "quick_failure", "success", "running", "rejected"]),
        # Unfinished runs have no end time and sort as the newest.
        ("end_desc", ["running", "long_failure", "rejected", "success", "quick_failure"]),
    ],
)
def test_configurable_order(sx: FakeSchedulerX, order: str, expected: list[str]) -> None:
    runs = estate(sx)
    sx.configure(order=order)
    assert ids(client(sx).get_job_instance_list(group_query()).body) == [
        runs[name] for name in expected
    ]


def test_unknown_switch_values_are_refused() -> None:
    with pytest.raises(ValueError, match="order must be"):
        FakeSchedulerX(order="newest")
    with pytest.raises(ValueError, match="window_field"):
        FakeSchedulerX(window_field="data")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="legacy"):
        FakeSchedulerX().configure(legacy="ancient")  # type: ignore[arg-type]


def test_paging_through_a_group_sees_every_failure_once(sx: FakeSchedulerX) -> None:
    sx.add_job(NS, GROUP, 1)
    sx.add_job(NS, GROUP, 2)
    failures = {
        sx.add_instance(1 + n % 2, status=5, schedule_time=at(n), end_time=at(n) + 5)
        for n in range(25)
    }
    for n in range(10):
        sx.add_instance(1, status=4, schedule_time=at(n) + 1)
    sdk = client(sx)
    pages = [
        ids(sdk.get_job_instance_list(group_query(status=5, page_num=n, page_size=10)).body)
        for n in (1, 2, 3, 4)
    ]
    assert [len(p) for p in pages] == [10, 10, 5, 0]  # no Total: a short page is the end
    seen = [i for p in pages for i in p]
    assert sorted(seen) == sorted(failures)


def test_page_size_over_the_maximum_is_clamped_or_refused(sx: FakeSchedulerX) -> None:
    sx.add_job(NS, GROUP, 1)
    for n in range(30):
        sx.add_instance(1, status=5, schedule_time=at(n))
    sx.configure(max_page_size=20)
    sdk = client(sx)
    clamped = sdk.get_job_instance_list(group_query(page_size=50)).body
    assert len(ids(clamped)) == 20  # silently: the client asked for 50
    sx.configure(oversize="refuse")
    with pytest.raises(tea_exceptions.ClientException) as caught:
        sdk.get_job_instance_list(group_query(page_size=50))
    assert (caught.value.status_code, caught.value.code) == (400, "InvalidParameter")
    assert "PageSize" in caught.value.message
    with pytest.raises(tea_exceptions.ClientException, match="PageNum"):
        sdk.get_job_instance_list(group_query(page_num=0))
    jobs = sdk.list_jobs(
        sx_models.ListJobsRequest(
            region_id="cn-hangzhou", namespace=NS, group_id=GROUP, page_size=20
        )
    )
    assert jobs.body.data.total == 1


# -- an older server -------------------------------------------------------------------------


def test_legacy_servers_and_how_they_answer_a_group_query(sx: FakeSchedulerX) -> None:
    runs = estate(sx)
    sdk = client(sx)
    failed_window = group_query(status=5, start_timestamp=ms(-5), end_timestamp=ms(60))

    sx.configure(legacy="missing_param")
    with pytest.raises(tea_exceptions.ClientException) as caught:
        sdk.get_job_instance_list(failed_window)
    assert (caught.value.status_code, caught.value.code) == (400, "MissingJobId")

    sx.configure(legacy="refuse")
    refused = sdk.get_job_instance_list(failed_window).body
    assert (refused.success, refused.message) == (
        False,
        "jobId is null, please check your parameters",
    )

    sx.configure(legacy="ignore_filters")
    page_1 = ids(sdk.get_job_instance_list(failed_window).body)
    page_2 = ids(sdk.get_job_instance_list(group_query(status=5, page_num=2, page_size=2)).body)
    # Every run of the group, whatever the status asked, and page 2 is page 1 again.
    assert (
        page_1
        == page_2
        == [
            runs[name]
            for name in ("rejected", "running", "success", "quick_failure", "long_failure")
        ]
    )

    sx.configure(legacy="empty")
    empty = sdk.get_job_instance_list(failed_window).body
    assert (empty.success, ids(empty)) == (True, [])

    # A query for one job is answered as before on every flavour.
    one_job = sx_models.GetJobInstanceListRequest(
        region_id="cn-hangzhou", namespace=NS, group_id=GROUP, job_id=1
    )
    assert ids(sdk.get_job_instance_list(one_job).body) == [runs["success"], runs["long_failure"]]
    sx.configure(legacy=None)
    assert ids(sdk.get_job_instance_list(failed_window).body) == [
        runs["quick_failure"],
        runs["long_failure"],
    ]


# -- latency ---------------------------------------------------------------------------------


def test_accounted_latency_is_recorded_not_slept_and_the_clock_stays() -> None:
    clock = ManualClock(T0)
    latency = {"ListJobs": 0.2, "GetJobInstanceList": 0.05}
    with FakeSchedulerX(
        AK,
        SK,
        security_token=TOKEN,
        clock=clock,
        max_skew=None,
        latency=lambda action: latency.get(action, 0.0),
        latency_mode="account",
    ) as sx:
        sx.add_job(NS, GROUP, 1)
        sdk = client(sx)
        for _ in range(8):
            sdk.get_job_instance_list(group_query())
        sdk.list_jobs(
            sx_models.ListJobsRequest(region_id="cn-hangzhou", namespace=NS, group_id=GROUP)
        )
        ledger = sx.latency_ledger()
        assert clock() == T0
        assert ledger == [LatencyEntry(T0, "GetJobInstanceList", 0.05)] * 8 + [
            LatencyEntry(T0, "ListJobs", 0.2)
        ]
        seconds = [e.seconds for e in ledger]
        # Eight 0.05 s calls fill four lanes to 0.1 s; ListJobs then takes one lane to 0.3 s.
        assert makespan(seconds, 4) == pytest.approx(0.3)
        assert makespan(seconds, 1) == pytest.approx(sum(seconds))
        assert sx.latency_ledger(since=T0 + 1) == []
        sx.clear_latency_ledger()
        assert sx.latency_ledger() == []


def test_slept_latency_delays_the_answer_but_not_the_injected_clock() -> None:
    clock = ManualClock(T0)
    with FakeSchedulerX(
        AK, SK, security_token=TOKEN, clock=clock, max_skew=None, latency=0.05
    ) as sx:
        sx.add_job(NS, GROUP, 1)
        started = time.monotonic()
        assert client(sx).get_job_instance_list(group_query()).body.success
        assert time.monotonic() - started >= 0.05
        assert clock() == T0
        assert [e.seconds for e in sx.latency_ledger()] == [0.05]


def test_makespan_of_nothing_and_bad_lanes() -> None:
    assert makespan([], 4) == 0.0
    with pytest.raises(ValueError, match="lanes"):
        makespan([0.1], 0)


# -- retention -------------------------------------------------------------------------------


def test_forget_instances_keeps_the_newest_and_the_unfinished(sx: FakeSchedulerX) -> None:
    sx.add_job(NS, GROUP, 1)
    old = [sx.add_instance(1, status=4, schedule_time=at(n)) for n in range(12)]
    stuck = sx.add_instance(1, status=3, schedule_time=at(-60))
    dropped = sx.forget_instances(older_than=at(100), keep_latest=10)
    # Beyond the newest ten: the stuck run (kept, it is unfinished) and the two oldest.
    assert dropped == 2
    remaining = {sx.instance(i).instance_id for i in old[2:]} | {stuck}
    assert sx.instance_count() == len(remaining)
    with pytest.raises(KeyError):
        sx.instance(old[0])
