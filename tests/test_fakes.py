"""The loopback fakes accept what the official SDKs send and reject what is wrong.

These tests are the evidence that the fakes speak the real wire protocols: every happy path
goes through an official client (alibabacloud_schedulerx220190430 for V3, aliyunsdkcore and
tea-openapi "v2" for V1, oss2 for OSS V1/V4); the DingTalk signature is computed here from
the documented formula, independently of the fake's code.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import http.client
import json
import socket
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import oss2
import pytest
import requests
from alibabacloud_schedulerx220190430 import models as sx_models
from alibabacloud_schedulerx220190430.client import Client as SchedulerXClient
from alibabacloud_tea_openapi import exceptions as tea_exceptions
from alibabacloud_tea_openapi.models import Config
from aliyunsdkcore.acs_exception.exceptions import (  # type: ignore[import-untyped]
    ServerException as CoreServerException,
)
from aliyunsdkcore.auth.credentials import (  # type: ignore[import-untyped]
    AccessKeyCredential,
    StsTokenCredential,
)
from aliyunsdkcore.client import AcsClient  # type: ignore[import-untyped]
from aliyunsdkcore.request import CommonRequest  # type: ignore[import-untyped]
from darabonba.exceptions import UnretryableException  # type: ignore[import-untyped]
from oss2.credentials import StaticCredentialsProvider

from tests.fakes import FakeDingTalk, FakeOss, FakeSchedulerX, ManualClock
from tests.fakes.base import RecordedRequest
from tests.fakes.oss import crc64_ecma

AK = "LTAI5tTestKeyId"
SK = "test-secret-Value+/="
TOKEN = "CAIS+sts/token=="
NS = "adcfc35d-e2fe-4fe9-bbaa-20e90ffc0000"
GROUP = "testSchedulerx.defaultGroup"
JOB = 92583


# -- helpers ---------------------------------------------------------------------------------


def v3_client(
    sx: FakeSchedulerX,
    secret: str = SK,
    token: str | None = TOKEN,
    access_key_id: str = AK,
    **config: Any,
) -> SchedulerXClient:
    return SchedulerXClient(
        Config(
            access_key_id=access_key_id,
            access_key_secret=secret,
            security_token=token,
            region_id="cn-hangzhou",
            endpoint=sx.endpoint,
            protocol="http",
            **config,
        )
    )


def list_request(job_id: int = JOB, group: str = GROUP) -> Any:
    return sx_models.GetJobInstanceListRequest(
        region_id="cn-hangzhou", namespace=NS, group_id=group, job_id=job_id
    )


def core_request(
    sx: FakeSchedulerX, method: str = "GET", action: str = "GetJobInstanceList"
) -> Any:
    request = CommonRequest(domain=sx.endpoint, version="2019-04-30", action_name=action)
    request.set_protocol_type("http")
    request.set_method(method)
    request.add_query_param("RegionId", "cn-hangzhou")
    request.add_query_param("Namespace", NS)
    request.add_query_param("GroupId", GROUP)
    request.add_query_param("JobId", str(JOB))
    return request


def core_client(secret: str = SK, token: str | None = TOKEN) -> Any:
    credential = StsTokenCredential(AK, secret, token) if token else AccessKeyCredential(AK, secret)
    return AcsClient(region_id="cn-hangzhou", credential=credential, auto_retry=False)


def replay(sx: FakeSchedulerX, recorded: RecordedRequest, **header_overrides: str) -> Any:
    """Send a recorded request again, byte for byte (a replay attack)."""
    connection = http.client.HTTPConnection("127.0.0.1", sx.port, timeout=5)
    headers = {k: v for k, v in recorded.headers.items() if k != "content-length"}
    headers.update(header_overrides)
    target = recorded.path + (f"?{recorded.raw_query}" if recorded.raw_query else "")
    connection.request(recorded.method, target, body=recorded.body, headers=headers)
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    return response.status, body


def dingtalk_signed_url(webhook: str, secret: str, timestamp_ms: int) -> str:
    # The documented recipe, written independently of tests.fakes.dingtalk.
    string_to_sign = f"{timestamp_ms}\n{secret}"
    digest = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256)
    sign = urllib.parse.quote_plus(base64.b64encode(digest.digest()))
    return f"{webhook}&timestamp={timestamp_ms}&sign={sign}"


def markdown(title: str, text: str) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}


@pytest.fixture
def sx() -> Iterator[FakeSchedulerX]:
    with FakeSchedulerX(AK, SK, security_token=TOKEN) as fake:
        fake.add_job(NS, GROUP, JOB, name="nightly-report")
        yield fake


# -- base machinery --------------------------------------------------------------------------


def test_lifecycle_endpoint_and_request_log() -> None:
    fake = FakeDingTalk()
    fake.start()
    try:
        assert fake.endpoint == f"127.0.0.1:{fake.port}"
        assert fake.url == f"http://127.0.0.1:{fake.port}"
        requests.get(f"{fake.url}/robot/send?access_token=x", timeout=5)
        (entry,) = fake.requests
        assert (entry.method, entry.path, entry.query) == (
            "GET",
            "/robot/send",
            {"access_token": "x"},
        )
        assert entry.verdict == "errcode=43002"
        assert json.loads(entry.response_text)["errcode"] == 43002
    finally:
        fake.stop()
    fake.stop()  # idempotent


def test_unknown_fault_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        FakeOss().fail_next("explode")


# -- SchedulerX: signatures ------------------------------------------------------------------


def test_v3_sdk_with_sts_token_lists_latest_ten_newest_first(sx: FakeSchedulerX) -> None:
    base = datetime(2026, 1, 2, 3, 0, 0)  # naive: Asia/Shanghai wall time
    ids = [
        sx.add_instance(JOB, status=4, schedule_time=base.replace(minute=m), end_time=base)
        for m in range(12)
    ]
    running = sx.add_instance(JOB, status=3, schedule_time=base.replace(minute=30))

    body = v3_client(sx).get_job_instance_list(list_request()).body

    assert body.success is True
    assert body.code == 200
    details = body.data.job_instance_details
    assert [d.instance_id for d in details] == [running, *reversed(ids[-9:])]
    assert details[0].schedule_time == "2026-01-02 03:30:00"
    assert details[0].end_time is None  # still running
    assert details[1].end_time == "2026-01-02 03:00:00"
    assert sx.requests[-1].headers["authorization"].startswith("ACS3-HMAC-SHA256 Credential=")


def test_v3_sdk_with_permanent_key() -> None:
    with FakeSchedulerX(AK, SK) as fake:
        fake.add_job(NS, GROUP, JOB)
        body = v3_client(fake, token=None).get_job_instance_list(list_request()).body
        assert body.success is True


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_v1_core_sdk_with_sts_token(sx: FakeSchedulerX, method: str) -> None:
    sx.add_instance(JOB, status=5, result="NullPointerException")
    request = core_request(sx, method)
    if method == "POST":
        request.add_body_params("PageSize", "10")  # signed as a form field
    body = json.loads(core_client().do_action_with_exception(request))
    assert body["Success"] is True
    assert body["Data"]["JobInstanceDetails"][0]["Result"] == "NullPointerException"
    assert sx.requests[-1].query["SignatureMethod"] == "HMAC-SHA1"
    assert sx.requests[-1].query["SecurityToken"] == TOKEN


def test_v1_core_sdk_with_permanent_key() -> None:
    with FakeSchedulerX(AK, SK) as fake:
        fake.add_job(NS, GROUP, JOB)
        response = core_client(token=None).do_action_with_exception(core_request(fake))
        assert json.loads(response)["Success"] is True


def test_v1_tea_sdk_signature_v2(sx: FakeSchedulerX) -> None:
    client = v3_client(sx, signature_algorithm="v2")
    assert client.get_job_instance_list(list_request()).body.success is True
    assert "Signature" in sx.requests[-1].query


def test_v3_wrong_secret(sx: FakeSchedulerX) -> None:
    with pytest.raises(tea_exceptions.ClientException) as caught:
        v3_client(sx, secret="wrong").get_job_instance_list(list_request())
    assert (caught.value.status_code, caught.value.code) == (400, "SignatureDoesNotMatch")


def test_v1_wrong_secret(sx: FakeSchedulerX) -> None:
    with pytest.raises(CoreServerException) as caught:
        core_client(secret="wrong").do_action_with_exception(core_request(sx))
    assert caught.value.get_error_code() == "SignatureDoesNotMatch"
    assert caught.value.get_http_status() == 400


@pytest.mark.parametrize(
    ("token", "code"),
    [("other-token", "InvalidSecurityToken.Mismatch"), (None, "MissingSecurityToken")],
)
def test_v3_wrong_or_missing_token(sx: FakeSchedulerX, token: str | None, code: str) -> None:
    with pytest.raises(tea_exceptions.ClientException) as caught:
        v3_client(sx, token=token).get_job_instance_list(list_request())
    assert caught.value.code == code


def test_v1_wrong_token(sx: FakeSchedulerX) -> None:
    with pytest.raises(CoreServerException) as caught:
        core_client(token="other-token").do_action_with_exception(core_request(sx))
    assert caught.value.get_error_code() == "InvalidSecurityToken.Mismatch"


def test_unknown_access_key(sx: FakeSchedulerX) -> None:
    with pytest.raises(tea_exceptions.ClientException) as caught:
        v3_client(sx, access_key_id="LTAI5tSomeoneElse").get_job_instance_list(list_request())
    assert (caught.value.status_code, caught.value.code) == (404, "InvalidAccessKeyId.NotFound")


def test_stale_timestamp_is_refused_by_both_versions() -> None:
    clock = ManualClock(time.time() + 16 * 60)  # the server is 16 minutes ahead
    with FakeSchedulerX(AK, SK, clock=clock) as fake:
        fake.add_job(NS, GROUP, JOB)
        with pytest.raises(tea_exceptions.ClientException) as v3:
            v3_client(fake, token=None).get_job_instance_list(list_request())
        with pytest.raises(CoreServerException) as v1:
            core_client(token=None).do_action_with_exception(core_request(fake))
        clock.advance(-2 * 60)  # within 15 minutes again
        assert v3_client(fake, token=None).get_job_instance_list(list_request()).body.success
    assert v3.value.code == "InvalidTimeStamp.Expired"
    assert v1.value.get_error_code() == "InvalidTimeStamp.Expired"


def test_freshness_checks_can_be_turned_off_for_simulated_time() -> None:
    far_past = ManualClock(1_600_000_000.0)
    with FakeSchedulerX(AK, SK, clock=far_past, max_skew=None) as fake:
        fake.add_job(NS, GROUP, JOB)
        assert v3_client(fake, token=None).get_job_instance_list(list_request()).body.success
    with FakeOss(AK, SK, clock=far_past, max_skew=None) as oss:
        oss2.Bucket(oss2.Auth(AK, SK), oss.url, "bucket").put_object("k", b"v")
    with FakeDingTalk(clock=far_past, max_skew_ms=None) as dt:
        webhook = dt.add_robot("tok", secret="SECx")
        signed = dingtalk_signed_url(webhook, "SECx", int(time.time() * 1000))
        assert post(signed, markdown("t", "x"))["errcode"] == 0


def test_replayed_v3_request_is_refused_for_its_nonce(sx: FakeSchedulerX) -> None:
    v3_client(sx).get_job_instance_list(list_request())
    status, body = replay(sx, sx.requests[-1])
    assert (status, body["Code"]) == (400, "SignatureNonceUsed")


def test_replayed_v1_request_is_refused_for_its_nonce(sx: FakeSchedulerX) -> None:
    core_client().do_action_with_exception(core_request(sx))
    status, body = replay(sx, sx.requests[-1])
    assert (status, body["Code"]) == (400, "SignatureNonceUsed")


def test_tampered_v3_request_fails_the_signature(sx: FakeSchedulerX) -> None:
    v3_client(sx).get_job_instance_list(list_request())
    recorded = sx.requests[-1]
    forged = dataclasses.replace(recorded, raw_query=recorded.raw_query.replace(str(JOB), "1"))
    status, body = replay(sx, forged, **{"x-acs-signature-nonce": "fresh-nonce"})
    assert (status, body["Code"]) == (400, "SignatureDoesNotMatch")
    assert body["HostId"] and body["RequestId"] and body["Message"]


def test_unsigned_security_token_header_is_refused(sx: FakeSchedulerX) -> None:
    v3_client(sx).get_job_instance_list(list_request())
    recorded = sx.requests[-1]
    authorization = recorded.headers["authorization"].replace("x-acs-security-token;", "")
    status, body = replay(sx, recorded, authorization=authorization)
    assert (status, body["Code"]) == (400, "IncompleteSignature")


def test_unknown_action(sx: FakeSchedulerX) -> None:
    with pytest.raises(CoreServerException) as caught:
        core_client().do_action_with_exception(core_request(sx, action="DescribeEverything"))
    assert caught.value.get_error_code() == "InvalidAction.NotFound"
    assert caught.value.get_http_status() == 404


# -- SchedulerX: business answers ------------------------------------------------------------


def test_group_mismatch_and_unknown_job_are_success_false(sx: FakeSchedulerX) -> None:
    client = v3_client(sx)
    mismatch = client.get_job_instance_list(list_request(group="other.group")).body
    unknown = client.get_job_instance_list(list_request(job_id=1)).body
    assert mismatch.success is False
    assert mismatch.message == f"jobid: {JOB} not match groupId: other.group"
    assert unknown.success is False
    assert unknown.message == "jobId=1 is not existed"


def test_set_status_moves_a_run_to_failed(sx: FakeSchedulerX) -> None:
    clock_start = time.time()
    run = sx.add_instance(JOB, status=3, schedule_time=clock_start)
    sx.set_status(run, 5, result="timeout", end_time=clock_start + 60)
    (detail,) = v3_client(sx).get_job_instance_list(list_request()).body.data.job_instance_details
    assert (detail.status, detail.result) == (5, "timeout")
    assert detail.end_time is not None


def test_list_jobs_and_get_job_info(sx: FakeSchedulerX) -> None:
    sx.add_job(NS, GROUP, 7, name="other", monitor={"Timeout": 60})
    client = v3_client(sx)
    listed = client.list_jobs(
        sx_models.ListJobsRequest(region_id="cn-hangzhou", namespace=NS, group_id=GROUP)
    ).body
    assert listed.success is True
    assert [j.job_id for j in listed.data.jobs] == [7, JOB]
    info = client.get_job_info(
        sx_models.GetJobInfoRequest(region_id="cn-hangzhou", namespace=NS, group_id=GROUP, job_id=7)
    ).body
    assert info.data.job_config_info.name == "other"
    assert info.data.job_config_info.job_monitor_info.monitor_config.timeout == 60


def test_get_log_as_the_sdk_asks_and_reads_it(sx: FakeSchedulerX) -> None:
    run = sx.add_instance(JOB, status=5)
    sx.add_log(run, "10:00:01 start", "10:00:02 working", "10:00:03 boom")
    client = v3_client(sx)

    def get_log(**options: Any) -> Any:
        request = sx_models.GetLogRequest(
            region_id="cn-hangzhou", namespace=NS, group_id=GROUP, job_id=str(JOB), **options
        )
        return client.get_log(request).body

    answer = get_log(job_instance_id=str(run), line=2)
    assert answer.success is True
    assert answer.data.logs == ["10:00:03 boom", "10:00:02 working"]  # newest first
    assert get_log(job_instance_id=str(run), reverse=False, line=1).data.logs == ["10:00:01 start"]
    assert get_log(job_instance_id=str(run), keyword="boom").data.logs == ["10:00:03 boom"]
    with pytest.raises(tea_exceptions.ClientException):
        get_log(job_instance_id=str(run), line=201)  # "at most 200"
    sx.configure(log_mode="unsupported")
    refused = get_log(job_instance_id=str(run))
    assert refused.success is False and "professional edition" in refused.message
    sx.configure(log_mode="fail")
    with pytest.raises(tea_exceptions.ServerException):
        get_log(job_instance_id=str(run))


def test_quota_of_calls_per_minute_is_enforced_and_measured() -> None:
    clock = ManualClock()
    with FakeSchedulerX(AK, SK, clock=clock, rate_limit=3) as fake:
        fake.add_job(NS, GROUP, JOB)
        client = v3_client(fake, token=None)
        for _ in range(3):
            client.get_job_instance_list(list_request())
        with pytest.raises(tea_exceptions.ClientException) as caught:
            client.get_job_instance_list(list_request())
        assert caught.value.code == "Throttling.User"
        clock.advance(61)
        assert client.get_job_instance_list(list_request()).body.success
        assert fake.calls("GetJobInstanceList") == 5
        assert fake.max_calls_in_any_minute("GetJobInstanceList") == 4
        assert fake.calls("ListJobs") == 0


# -- SchedulerX: faults ----------------------------------------------------------------------


def test_throttle_and_5xx_faults(sx: FakeSchedulerX) -> None:
    sx.fail_next("throttle")
    sx.fail_next("5xx")
    client = v3_client(sx)
    with pytest.raises(tea_exceptions.ClientException) as throttled:
        client.get_job_instance_list(list_request())
    with pytest.raises(tea_exceptions.ServerException) as unavailable:
        client.get_job_instance_list(list_request())
    assert (throttled.value.status_code, throttled.value.code) == (400, "Throttling.User")
    assert (unavailable.value.status_code, unavailable.value.code) == (503, "ServiceUnavailable")
    assert client.get_job_instance_list(list_request()).body.success


def test_success_false_fault(sx: FakeSchedulerX) -> None:
    sx.fail_next("success_false", code=500, message="namespace is busy")
    body = v3_client(sx).get_job_instance_list(list_request()).body
    assert (body.success, body.code, body.message) == (False, 500, "namespace is busy")


def test_malformed_and_html_faults_filtered_by_job(sx: FakeSchedulerX) -> None:
    sx.add_job(NS, GROUP, 2)
    sx.fail_next("malformed", job_id=2)
    sx.fail_next("html", job_id=2)
    url = f"{sx.url}/?Action=GetJobInstanceList&JobId="
    untouched = requests.get(url + str(JOB), timeout=5)  # unsigned, but not faulted
    malformed = requests.get(url + "2", timeout=5)
    html = requests.get(url + "2", timeout=5)
    assert untouched.status_code == 400
    assert malformed.status_code == 200
    with pytest.raises(ValueError, match=r"Expecting|Unterminated"):
        json.loads(malformed.text)
    assert html.status_code == 200
    assert html.headers["Content-Type"].startswith("text/html")
    assert [r.verdict for r in sx.requests] == ["MissingSignature", "fault:malformed", "fault:html"]


def test_timeout_fault_drops_or_answers_late(sx: FakeSchedulerX) -> None:
    sx.fail_next("timeout", seconds=0.3)
    sx.fail_next("timeout", seconds=0.05, then="answer")
    client = v3_client(sx, read_timeout=100)
    with pytest.raises(UnretryableException, match=r"Read timed out"):
        client.get_job_instance_list(list_request())
    started = time.monotonic()
    assert v3_client(sx).get_job_instance_list(list_request()).body.success
    assert time.monotonic() - started >= 0.05
    assert sx.requests[-1].verdict == "fault:timeout+ok"


# -- OSS -------------------------------------------------------------------------------------

KEY = "schedulerx-alert/state v1+ü.json"


def oss_auths() -> list[tuple[str, Any, dict[str, Any]]]:
    v4 = oss2.ProviderAuthV4(StaticCredentialsProvider(AK, SK, TOKEN))
    return [("v1-sts", oss2.StsAuth(AK, SK, TOKEN), {}), ("v4-sts", v4, {"region": "cn-hangzhou"})]


@pytest.fixture
def oss_fake() -> Iterator[FakeOss]:
    with FakeOss(AK, SK, security_token=TOKEN) as fake:
        yield fake


@pytest.mark.parametrize(("name", "auth", "extra"), oss_auths())
def test_oss2_round_trip(oss_fake: FakeOss, name: str, auth: Any, extra: dict[str, Any]) -> None:
    bucket = oss2.Bucket(auth, oss_fake.url, "bucket", **extra)
    bucket.put_object(KEY, b'{"v": 1}', headers={"x-oss-meta-writer": name})
    assert bucket.get_object(KEY).read() == b'{"v": 1}'  # oss2 also checks our CRC64 header
    assert bucket.head_object(KEY).content_length == 8
    assert oss_fake.objects == {KEY: b'{"v": 1}'}
    assert oss_fake.stored(KEY).meta == {"x-oss-meta-writer": name}

    bucket.copy_object("bucket", KEY, "backup/state.json")
    assert [o.key for o in oss2.ObjectIterator(bucket, max_keys=1)] == ["backup/state.json", KEY]
    assert [o.key for o in oss2.ObjectIteratorV2(bucket, prefix="schedulerx-alert/")] == [KEY]
    assert bucket.list_objects(delimiter="/").prefix_list == ["backup/", "schedulerx-alert/"]

    assert bucket.delete_object(KEY).status == 204
    assert bucket.delete_object(KEY).status == 204  # absent: still 204
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.get_object(KEY)
    with pytest.raises(oss2.exceptions.NotFound):
        bucket.head_object(KEY)


def test_oss2_permanent_keys_v1_and_v4() -> None:
    with FakeOss(AK, SK) as fake:
        oss2.Bucket(oss2.Auth(AK, SK), fake.url, "bucket").put_object("a", b"1")
        v4 = oss2.Bucket(oss2.AuthV4(AK, SK), fake.url, "bucket", region="cn-hangzhou")
        assert v4.get_object("a").read() == b"1"


def test_create_only_write_conflicts(oss_fake: FakeOss) -> None:
    bucket = oss2.Bucket(oss2.StsAuth(AK, SK, TOKEN), oss_fake.url, "bucket")
    create_only = {"x-oss-forbid-overwrite": "true"}
    bucket.put_object("lease", b"first", headers=create_only)
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        bucket.put_object("lease", b"second", headers=create_only)
    assert (caught.value.status, caught.value.code) == (409, "FileAlreadyExists")
    bucket.put_object("other", b"x")
    with pytest.raises(oss2.exceptions.ServerError) as copied:
        bucket.copy_object("bucket", "other", "lease", headers=create_only)
    assert copied.value.status == 409
    assert oss_fake.objects["lease"] == b"first"


@pytest.mark.parametrize(("name", "auth", "extra"), oss_auths())
def test_oss_conditional_get_answers_304_while_the_etag_is_current(
    oss_fake: FakeOss, name: str, auth: Any, extra: dict[str, Any]
) -> None:
    bucket = oss2.Bucket(auth, oss_fake.url, "bucket", **extra)
    bucket.put_object("config.json", b"{}")
    etag = bucket.get_object("config.json").etag
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        bucket.get_object("config.json", headers={"If-None-Match": f'"{etag}"'})
    assert caught.value.status == 304
    bucket.put_object("config.json", b'{"v": 2}')
    changed = bucket.get_object("config.json", headers={"If-None-Match": f'"{etag}"'})
    assert changed.read() == b'{"v": 2}' and changed.etag != etag


def test_oss_missing_bucket_and_bad_digest(oss_fake: FakeOss) -> None:
    auth = oss2.StsAuth(AK, SK, TOKEN)
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        oss2.Bucket(auth, oss_fake.url, "nope").get_object("k")
    bucket = oss2.Bucket(auth, oss_fake.url, "bucket")
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        bucket.put_object("k", b"data", headers={"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="})
    assert caught.value.code == "InvalidDigest"


@pytest.mark.parametrize(("name", "auth", "extra"), oss_auths())
def test_oss_wrong_secret(oss_fake: FakeOss, name: str, auth: Any, extra: dict[str, Any]) -> None:
    wrong = (
        oss2.StsAuth(AK, "wrong", TOKEN)
        if name.startswith("v1")
        else oss2.ProviderAuthV4(StaticCredentialsProvider(AK, "wrong", TOKEN))
    )
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        oss2.Bucket(wrong, oss_fake.url, "bucket", **extra).get_object("k")
    assert (caught.value.status, caught.value.code) == (403, "SignatureDoesNotMatch")


@pytest.mark.parametrize(
    "auth",
    [oss2.StsAuth(AK, SK, "stolen"), oss2.Auth(AK, SK), oss2.AnonymousAuth()],
    ids=["wrong-token", "no-token", "anonymous"],
)
def test_oss_wrong_or_missing_credentials(oss_fake: FakeOss, auth: Any) -> None:
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        oss2.Bucket(auth, oss_fake.url, "bucket").put_object("k", b"x")
    assert caught.value.status == 403
    assert caught.value.code in {"InvalidAccessKeyId", "AccessDenied"}
    assert oss_fake.objects == {}


def test_oss_v4_wrong_region(oss_fake: FakeOss) -> None:
    auth = oss2.ProviderAuthV4(StaticCredentialsProvider(AK, SK, TOKEN))
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        oss2.Bucket(auth, oss_fake.url, "bucket", region="cn-beijing").get_object("k")
    assert caught.value.status == 403


@pytest.mark.parametrize(("name", "auth", "extra"), oss_auths())
def test_oss_clock_skew(name: str, auth: Any, extra: dict[str, Any]) -> None:
    fake = FakeOss(AK, SK, TOKEN, clock=ManualClock(time.time() - 20 * 60))
    with fake, pytest.raises(oss2.exceptions.ServerError) as caught:
        oss2.Bucket(auth, fake.url, "bucket", **extra).get_object("k")
    assert caught.value.code == "RequestTimeTooSkewed"


def test_oss_put_raw_plants_corrupt_state(oss_fake: FakeOss) -> None:
    oss_fake.put_raw("state.json", b"{not json")
    bucket = oss2.Bucket(oss2.StsAuth(AK, SK, TOKEN), oss_fake.url, "bucket")
    assert bucket.get_object("state.json").read() == b"{not json"


def test_oss_faults(oss_fake: FakeOss) -> None:
    bucket = oss2.Bucket(oss2.StsAuth(AK, SK, TOKEN), oss_fake.url, "bucket", connect_timeout=0.2)
    oss_fake.put_raw("a", b"1")
    oss_fake.put_raw("b", b"2")
    oss_fake.fail_next("5xx", key="a")
    oss_fake.fail_next("403", key="a")
    assert bucket.get_object("b").read() == b"2"  # faults wait for their key
    with pytest.raises(oss2.exceptions.ServerError) as unavailable:
        bucket.get_object("a")
    with pytest.raises(oss2.exceptions.AccessDenied):
        bucket.get_object("a")
    assert unavailable.value.status == 503
    assert bucket.get_object("a").read() == b"1"


def test_oss_timeout_on_read_only(oss_fake: FakeOss) -> None:
    bucket = oss2.Bucket(oss2.StsAuth(AK, SK, TOKEN), oss_fake.url, "bucket", connect_timeout=0.1)
    oss_fake.fail_next("timeout", op="read", seconds=0.3)
    bucket.put_object("a", b"1")  # writes are unaffected
    with pytest.raises(oss2.exceptions.RequestError):
        bucket.get_object("a")
    oss_fake.fail_next("timeout", op="write", seconds=0.05, then="answer")
    bucket.put_object("a", b"2")
    assert oss_fake.objects["a"] == b"2"
    assert [r.verdict for r in oss_fake.requests] == [
        "ok",
        "fault:timeout",
        "fault:timeout+ok",
    ]


def test_crc64_matches_oss2() -> None:
    crc = oss2.utils.Crc64(0)
    crc.update(b"123456789")
    assert crc64_ecma(b"123456789") == crc.crc == 0x995DC9BBDF1939FA


def _crc64_bitwise(data: bytes) -> int:
    crc = 0xFFFFFFFFFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xC96C5795D7870F42 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFFFFFFFFFF


@pytest.mark.parametrize("data", [b"", b"a", bytes(range(256)) * 3, b"state" * 1000])
def test_crc64_matches_the_bitwise_definition(data: bytes) -> None:
    assert crc64_ecma(data) == _crc64_bitwise(data)


# -- DingTalk --------------------------------------------------------------------------------


def post(url: str, payload: object, **kwargs: Any) -> Any:
    response = requests.post(url, json=payload, timeout=5, **kwargs)
    assert response.status_code == 200
    return response.json()


def test_dingtalk_accepts_text_markdown_action_card_with_at() -> None:
    with FakeDingTalk() as dt:
        url = dt.add_robot("tok")
        at = {"atMobiles": ["13800000000"], "atUserIds": [], "isAtAll": False}
        messages: list[dict[str, Any]] = [
            {"msgtype": "text", "text": {"content": "plain"}, "at": at},
            {**markdown("Job failed", "### failed @13800000000"), "at": at},
            {
                "msgtype": "actionCard",
                "actionCard": {
                    "title": "t",
                    "text": "card",
                    "singleTitle": "Open",
                    "singleURL": "https://example.com",
                },
            },
        ]
        for message in messages:
            assert post(url, message) == {"errcode": 0, "errmsg": "ok"}
        assert dt.messages("tok") == messages
        assert dt.texts("tok") == ["plain", "### failed @13800000000", "card"]


def test_dingtalk_signature() -> None:
    secret = "SEC0123456789abcdef"
    clock = ManualClock()
    with FakeDingTalk(clock=clock) as dt:
        webhook = dt.add_robot("tok", secret=secret)
        now_ms = int(clock() * 1000)
        message = markdown("t", "x")
        assert post(dingtalk_signed_url(webhook, secret, now_ms), message)["errcode"] == 0

        wrong_secret = post(dingtalk_signed_url(webhook, "SECwrong", now_ms), message)
        stale = post(dingtalk_signed_url(webhook, secret, now_ms - 3601 * 1000), message)
        unsigned = post(webhook, message)
        twice = dingtalk_signed_url(webhook, secret, now_ms)
        sign = twice.rsplit("sign=", 1)[1]
        double_encoded = post(twice.replace(sign, urllib.parse.quote_plus(sign)), message)

        assert [r["errcode"] for r in (wrong_secret, stale, unsigned)] == [310000] * 3
        assert "sign not match" in wrong_secret["errmsg"]
        assert "timestamp" in stale["errmsg"]
        # A 32-byte digest always ends in "=", so encoding twice always changes the URL.
        assert double_encoded["errcode"] == 310000
        assert len(dt.messages("tok")) == 1


def test_dingtalk_keywords_token_size_and_bad_bodies() -> None:
    with FakeDingTalk() as dt:
        url = dt.add_robot("tok", keywords=("SchedulerX",))
        assert post(url, markdown("SchedulerX alert", "job failed"))["errcode"] == 0
        no_keyword = post(url, markdown("alert", "job failed"))
        assert (no_keyword["errcode"], "keywords not in content" in no_keyword["errmsg"]) == (
            310000,
            True,
        )
        assert post(f"{dt.url}/robot/send?access_token=nope", markdown("a", "b")) == {
            "errcode": 300001,
            "errmsg": "token is not exist",
        }
        huge = markdown("SchedulerX", "x" * 20001)
        assert post(url, huge)["errcode"] == 460101
        assert post(url, {"markdown": {"title": "SchedulerX", "text": "x"}})["errcode"] == 43004
        assert (
            post(url, {"msgtype": "markdown", "markdown": {"text": "SchedulerX"}})["errcode"]
            == 43004
        )
        as_form = requests.post(url, data=b"{}", timeout=5, headers={"Content-Type": "text/plain"})
        assert as_form.json()["errcode"] == 43004
        assert len(dt.messages("tok")) == 1


def test_dingtalk_rate_limit_mutes_the_robot_for_ten_minutes() -> None:
    clock = ManualClock()
    with FakeDingTalk(clock=clock) as dt:
        url = dt.add_robot("busy")
        quiet = dt.add_robot("quiet")
        for i in range(20):
            assert post(url, markdown("t", f"m{i}"))["errcode"] == 0
            clock.advance(1)
        assert post(url, markdown("t", "21st"))["errcode"] == 130101
        assert post(quiet, markdown("t", "other robot"))["errcode"] == 0
        clock.advance(61)  # the minute is over, but the robot is muted
        assert post(url, markdown("t", "still muted"))["errcode"] == 130101
        clock.advance(600 - 61 + 1)
        assert post(url, markdown("t", "back"))["errcode"] == 0
        assert len(dt.messages("busy")) == 21


def test_dingtalk_rate_limit_holds_under_concurrent_senders() -> None:
    with FakeDingTalk(clock=ManualClock()) as dt:
        url = dt.add_robot("tok")
        with ThreadPoolExecutor(max_workers=10) as pool:
            answers = list(pool.map(lambda i: post(url, markdown("t", str(i))), range(30)))
        codes = sorted(a["errcode"] for a in answers)
        assert codes == [0] * 20 + [130101] * 10
        assert len(dt.messages("tok")) == 20


@pytest.mark.parametrize("errcode", [-1, 130101, 310000, 300001, 460101])
def test_dingtalk_errcode_faults_per_token(errcode: int) -> None:
    with FakeDingTalk() as dt:
        a = dt.add_robot("a")
        b = dt.add_robot("b")
        dt.fail_next(errcode, token="a")
        assert post(b, markdown("t", "x"))["errcode"] == 0
        assert post(a, markdown("t", "x"))["errcode"] == errcode
        assert post(a, markdown("t", "x"))["errcode"] == 0
        assert dt.muted_until("a") == 0.0  # an injected 130101 does not start a mute


def test_dingtalk_5xx_timeout_and_down() -> None:
    with FakeDingTalk() as dt:
        url = dt.add_robot("tok")
        dt.fail_next("5xx", times=2)
        dt.fail_next("timeout", seconds=0.3)
        statuses = [requests.post(url, json=markdown("t", "x"), timeout=5).status_code]
        statuses.append(requests.post(url, json=markdown("t", "x"), timeout=5).status_code)
        assert statuses == [502, 502]
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.post(url, json=markdown("t", "x"), timeout=0.1)
        dt.set_down()
        assert requests.post(url, json=markdown("t", "x"), timeout=5).status_code == 503
        assert requests.post(url, json=markdown("t", "x"), timeout=5).status_code == 503
        dt.set_down(False)
        assert post(url, markdown("t", "x"))["errcode"] == 0
        assert dt.texts("tok") == ["x"]


def test_a_refusing_fake_refuses_at_once_and_keeps_its_port_from_other_servers() -> None:
    fake = FakeDingTalk().start()
    port = fake.port
    fake.refuse()
    try:
        with pytest.raises(requests.ConnectionError):
            requests.post(f"http://127.0.0.1:{port}/robot/send", json={}, timeout=2)
        other = socket.socket()
        with pytest.raises(OSError, match="in use"):
            other.bind(("127.0.0.1", port))
        other.close()
    finally:
        fake.stop()
