"""storage/oss_client.py: our OSS client, against the loopback OSS and against oss2 itself.

* The signature: every request our client sends (several keys: spaces, unicode, `+`,
  `/`, `~`, `%`; with and without an STS token; plain, conditional, create-only
  writes) carries exactly the Authorization header oss2's own `ProviderAuthV4`
  computes for the same request at the same time, and the same canonical request
  and string to sign (oss2's debug log of them); the fake OSS accepts them too. A
  property test does the same for random keys, tokens and signed headers.
* The URL: path style for an IP address or localhost, virtual-hosted otherwise, the
  key quoted as oss2's `_UrlMaker` quotes it.
* The errors: OSS's Code, Message and RequestId; none of our credentials, ever;
  network errors and timeouts marked as such.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import logging
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import oss2
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from oss2.credentials import StaticCredentialsProvider

from schedulerx_alert.storage.oss_client import (
    RAM_ACTIONS,
    OssBucket,
    OssError,
    _check_length,
    canonical_request,
    sign_v4,
    string_to_sign,
)
from tests.fakes.base import ManualClock, RecordedRequest
from tests.fakes.oss import FakeOss

AK, SK, TOKEN = "LTAI5tOssClientKey", "oss-client-secret", "sts-token/with+odd=chars"
REGION = "cn-hangzhou"
NOW = 1_764_000_000.0  # 2025-11-24T16:00:00Z
KEYS = [
    "state.json",
    "schedulerx-alert/state.json",
    "a b/c  d.json",
    "告警/状态 ü.json",
    "x+y=z&k?#.json",
    "tilde~/pct%25/semi;colon:*'()!.json",
    "dir//double/",
]
# oss2 adds these itself when it signs.
ADDED_BY_SIGNER = ("authorization", "x-oss-date", "x-oss-content-sha256", "x-oss-security-token")


@pytest.fixture(params=[TOKEN, None], ids=["sts", "permanent"])
def token(request: pytest.FixtureRequest) -> str | None:
    value: str | None = request.param
    return value


@pytest.fixture
def fake(token: str | None) -> Iterator[FakeOss]:
    with FakeOss(AK, SK, token, clock=ManualClock(NOW), region=REGION) as server:
        yield server


def client(fake: FakeOss, token: str | None = TOKEN, **kwargs: Any) -> OssBucket:
    options: dict[str, Any] = {"timeout": 5.0, "clock": lambda: NOW, **kwargs}
    return OssBucket("bucket", fake.url, REGION, AK, SK, token, **options)


# -- oss2's side of the cross-check -------------------------------------------------------


class _FixedDatetime:
    """What oss2.auth sees as `datetime`: utcnow() is NOW."""

    @staticmethod
    def utcnow() -> datetime:
        return datetime.fromtimestamp(NOW, timezone.utc).replace(tzinfo=None)


class _Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def oss2_signs(
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    key: str,
    headers: dict[str, str],
    token: str | None,
) -> tuple[str, str, str]:
    """oss2's Authorization, canonical request and string to sign for this request."""
    monkeypatch.setattr(oss2.auth, "datetime", _FixedDatetime)
    request = oss2.http.Request(
        method, "http://unused/", headers=dict(headers), region=REGION, product="oss"
    )
    auth = oss2.ProviderAuthV4(StaticCredentialsProvider(AK, SK, token or ""))
    logger = logging.getLogger("oss2.auth")
    captured, level = _Captured(), logger.level
    logger.addHandler(captured)
    logger.setLevel(logging.DEBUG)
    try:
        auth._sign_request(request, "bucket", key)
    finally:
        logger.removeHandler(captured)
        logger.setLevel(level)
    logged = {
        name: text.split(" = ", 1)[1]
        for text in captured.messages
        for name in ("canonical_request", "string to be signed")
        if text.startswith(f"Make signature: {name} = ")
    }
    # oss2 logs the canonical request as the bytes it hashed.
    canonical = ast.literal_eval(logged["canonical_request"]).decode("utf-8")
    return request.headers["authorization"], canonical, logged["string to be signed"]


def unsigned(recorded: RecordedRequest) -> dict[str, str]:
    return {k: v for k, v in recorded.headers.items() if k not in ADDED_BY_SIGNER}


def assert_signed_as_oss2_signs(
    monkeypatch: pytest.MonkeyPatch, recorded: RecordedRequest, key: str, token: str | None
) -> None:
    assert recorded.ok, recorded.verdict  # the fake verified the signature too
    authorization, canonical, to_sign = oss2_signs(
        monkeypatch, recorded.method, key, unsigned(recorded), token
    )
    ours = canonical_request(recorded.method, "bucket", key, recorded.headers)
    assert ours == canonical
    assert string_to_sign(ours, recorded.headers["x-oss-date"], to_sign.split("\n")[2]) == to_sign
    assert recorded.headers["authorization"] == authorization
    assert recorded.headers["x-oss-date"] == "20251124T160000Z"
    assert recorded.headers["x-oss-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert recorded.headers.get("x-oss-security-token") == token


@pytest.mark.parametrize("key", KEYS)
def test_every_request_is_signed_exactly_as_oss2_signs_it(
    fake: FakeOss, token: str | None, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = client(fake, token)
    etag = bucket.put(key, b'{"v": 1}')
    assert bucket.put(key + ".lease", b"1", forbid_overwrite=True)
    got = bucket.get(key)
    assert got is not None and got.data == b'{"v": 1}' and got.etag == etag
    assert bucket.get(key, if_none_match=etag) is None
    bucket.delete(key)
    assert fake.objects == {key + ".lease": b"1"}  # the key arrived as it was given
    recorded = fake.requests
    assert [r.method for r in recorded] == ["PUT", "PUT", "GET", "GET", "DELETE"]
    assert recorded[1].headers["x-oss-forbid-overwrite"] == "true"
    assert recorded[3].headers["if-none-match"] == f'"{etag}"'
    for request, signed_key in zip(recorded, [key, key + ".lease", key, key, key], strict=True):
        assert_signed_as_oss2_signs(monkeypatch, request, signed_key, token)


def test_a_json_key_is_stored_as_json_with_a_digest_oss_checks(
    fake: FakeOss, token: str | None
) -> None:
    bucket = client(fake, token)
    bucket.put("state.json", b"{}")
    bucket.put("state.json.lease.7", b"{}")
    assert fake.stored("state.json").content_type == "application/json"
    assert fake.stored("state.json.lease.7").content_type == "application/octet-stream"
    put = fake.requests[0]
    assert put.headers["content-md5"] == base64.b64encode(hashlib.md5(b"{}").digest()).decode()


printable = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=","), min_size=1
)


@settings(deadline=None)
@given(
    key=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40),
    token=st.one_of(st.none(), printable),
    meta=st.dictionaries(
        st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=8), printable, max_size=3
    ),
    content_type=st.one_of(st.none(), st.sampled_from(["application/json", "text/plain"])),
    method=st.sampled_from(["GET", "PUT", "DELETE"]),
)
def test_the_signature_matches_oss2_for_any_key_token_and_signed_headers(
    key: str, token: str | None, meta: dict[str, str], content_type: str | None, method: str
) -> None:
    headers = {f"x-oss-meta-{name}": value for name, value in meta.items()}
    headers["Accept-Encoding"] = "identity"
    if content_type:
        headers["Content-Type"] = content_type
    ours = sign_v4(
        method,
        "bucket",
        key,
        headers,
        access_key_id=AK,
        access_key_secret=SK,
        security_token=token,
        region=REGION,
        now=NOW,
    )
    with pytest.MonkeyPatch.context() as monkeypatch:
        authorization, canonical, _ = oss2_signs(monkeypatch, method, key, headers, token)
    assert ours["Authorization"] == authorization
    assert canonical_request(method, "bucket", key, {**headers, **ours}) == canonical


# -- URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:8080",
        "127.0.0.1",
        "https://localhost:9000",
        "http://127.1",
        "oss-cn-hangzhou.aliyuncs.com",
        "https://oss-cn-hangzhou-internal.aliyuncs.com",
        "http://OSS-CN-Hangzhou.aliyuncs.com:80",
        " https://oss-cn-beijing.aliyuncs.com/ ",
    ],
)
@pytest.mark.parametrize("key", KEYS)
def test_urls_are_oss2s_path_style_for_ip_and_localhost_virtual_hosted_otherwise(
    endpoint: str, key: str
) -> None:
    expected = oss2.Bucket(oss2.Auth(AK, SK), endpoint, "my-bucket")._make_url("my-bucket", key)
    assert OssBucket("my-bucket", endpoint, REGION, AK, SK).url(key) == expected


def test_an_ipv6_endpoint_is_path_style_with_its_brackets() -> None:
    # oss2 drops the brackets and refuses the endpoint; ours keeps them.
    assert OssBucket("my-bucket", "http://[::1]:9000", REGION, AK, SK).url("k") == (
        "http://[::1]:9000/my-bucket/k"
    )


@pytest.mark.parametrize(
    ("bucket", "endpoint", "region", "words"),
    [
        ("Bucket", "https://oss-cn-hangzhou.aliyuncs.com", REGION, "bucket name"),
        ("-bucket", "https://oss-cn-hangzhou.aliyuncs.com", REGION, "bucket name"),
        ("bu", "https://oss-cn-hangzhou.aliyuncs.com", REGION, "bucket name"),
        ("bucket", "https://oss-cn-hangzhou.aliyuncs.com/path", REGION, "endpoint"),
        ("bucket", "https://", REGION, "endpoint"),
        ("bucket", "https://host:port", REGION, "endpoint"),
        ("bucket", "https://oss-cn-hangzhou.aliyuncs.com", "", "region"),
    ],
)
def test_what_oss_cannot_have_is_refused_before_any_request(
    bucket: str, endpoint: str, region: str, words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        OssBucket(bucket, endpoint, region, AK, SK)


# -- answers and errors ----------------------------------------------------------------------


def test_a_missing_key_is_404_no_such_key_with_the_request_id(
    fake: FakeOss, token: str | None
) -> None:
    bucket = client(fake, token)
    with pytest.raises(OssError) as caught:
        bucket.get("nope.json")
    error = caught.value
    assert (error.status, error.code, error.no_answer) == (404, "NoSuchKey", False)
    assert error.request_id and error.request_id in error.describe("read", "nope.json")
    assert error.describe("read", "nope.json").startswith(
        "OSS read nope.json: HTTP 404 NoSuchKey: The specified key does not exist. (RequestId "
    )


def test_a_create_only_write_on_an_existing_key_is_409_and_keeps_the_first(
    fake: FakeOss, token: str | None
) -> None:
    bucket = client(fake, token)
    bucket.put("lease", b"first", forbid_overwrite=True)
    with pytest.raises(OssError) as caught:
        bucket.put("lease", b"second", forbid_overwrite=True)
    assert (caught.value.status, caught.value.code) == (409, "FileAlreadyExists")
    assert fake.objects["lease"] == b"first"
    bucket.put("lease", b"third")  # a plain write replaces it
    assert fake.objects["lease"] == b"third"


@pytest.mark.parametrize(
    ("secret", "token", "code"),
    [
        ("wrong-secret-value", TOKEN, "SignatureDoesNotMatch"),
        (SK, "stolen-token-value", "InvalidAccessKeyId"),
        (SK, None, "InvalidAccessKeyId"),
    ],
)
def test_refused_credentials_name_the_code_and_never_a_credential(
    secret: str, token: str | None, code: str
) -> None:
    with FakeOss(AK, SK, TOKEN, region=REGION) as fake:
        bucket = OssBucket("bucket", fake.url, REGION, AK, secret, token, timeout=5.0)
        with pytest.raises(OssError) as caught:
            bucket.put("state.json", b"{}")
    line = caught.value.describe("write", "state.json")
    assert line.startswith(f"OSS write state.json: HTTP 403 {code}: ")
    assert fake.requests[0].verdict == code
    for credential in (secret, token, AK, SK, TOKEN):
        assert credential is None or credential not in line + str(caught.value)


def test_a_wrong_region_is_a_signature_error() -> None:
    with FakeOss(AK, SK, TOKEN, region="cn-beijing") as fake, pytest.raises(OssError) as caught:
        OssBucket("bucket", fake.url, REGION, AK, SK, TOKEN).get("k")
    assert (caught.value.status, caught.value.code) == (403, "SignatureDoesNotMatch")


def test_faults_are_osss_answers(fake: FakeOss, token: str | None) -> None:
    bucket = client(fake, token)
    fake.fail_next("5xx")
    fake.fail_next("403")
    with pytest.raises(OssError) as unavailable:
        bucket.get("k")
    with pytest.raises(OssError) as denied:
        bucket.put("k", b"x")
    assert (unavailable.value.status, unavailable.value.code) == (503, "ServiceUnavailable")
    assert (denied.value.status, denied.value.code) == (403, "AccessDenied")
    assert "Please reduce your request rate" in unavailable.value.describe("read", "k")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_a_refused_connection_is_a_network_error() -> None:
    bucket = OssBucket("bucket", f"http://127.0.0.1:{free_port()}", REGION, AK, SK, TOKEN)
    with pytest.raises(OssError) as caught:
        bucket.get("state.json")
    assert caught.value.no_answer and caught.value.status is None
    line = caught.value.describe("read", "state.json")
    assert line.startswith("OSS read state.json: network error or timeout (ConnectionError: ")
    assert "refused" in line


def test_a_timeout_is_a_network_error_and_is_not_retried(fake: FakeOss, token: str | None) -> None:
    bucket = client(fake, token, timeout=0.2)
    fake.fail_next("timeout", seconds=0.6)
    with pytest.raises(OssError) as caught:
        bucket.get("state.json")
    assert caught.value.no_answer
    assert caught.value.describe("read", "state.json").startswith(
        "OSS read state.json: network error or timeout (ReadTimeout: "
    )
    assert len(fake.requests) == 1  # one attempt, as oss2 makes


def test_a_header_requests_refuses_is_reported_without_the_token() -> None:
    # requests quotes a header value it refuses; here that value is the STS token.
    bad_token = "secret-sts-token\r\nInjected: 1"
    bucket = OssBucket("bucket", "http://127.0.0.1:9", REGION, AK, SK, bad_token)
    with pytest.raises(OssError) as caught:
        bucket.get("state.json")
    line = caught.value.describe("read", "state.json")
    assert caught.value.no_answer and "InvalidHeader" in line
    assert "secret-sts-token" not in line and "***" in line


def test_a_body_cut_short_is_a_network_error() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def answer_short() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}")

    threading.Thread(target=answer_short, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
    try:
        with pytest.raises(OssError) as caught:
            OssBucket("bucket", endpoint, REGION, AK, SK).get("state.json")
    finally:
        server.close()
    assert caught.value.no_answer


def test_a_short_body_is_caught_where_urllib3_1_would_accept_it() -> None:
    # urllib3 2 raises by itself (above); urllib3 1.26, FC's runtime's, hands it over.
    response = requests.Response()
    response.status_code = 200
    response.headers["Content-Length"] = "10"
    response._content = b"{}"
    with pytest.raises(OssError) as caught:
        _check_length(response)
    assert caught.value.no_answer and "ended after 2 of 10 bytes" in str(caught.value)
    response.headers["Content-Length"] = "2"
    _check_length(response)


def test_an_error_without_an_oss_document_names_the_http_status() -> None:
    """A proxy's HTML page: the status and its reason, no made-up OSS code."""
    import http.server

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html>bad gateway</html>"
            self.send_response(502)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        bucket = OssBucket("bucket", f"http://127.0.0.1:{server.server_port}", REGION, AK, SK)
        with pytest.raises(OssError) as caught:
            bucket.get("k")
    finally:
        server.shutdown()
        server.server_close()
    assert caught.value.describe("read", "k") == "OSS read k: HTTP 502 Bad Gateway"


def test_each_operation_has_its_ram_action() -> None:
    """tests/test_deploy.py maps the stores' calls through RAM_ACTIONS: every public
    operation of the client must be there, so a new one cannot slip past the policy."""
    operations = {
        name
        for name, value in vars(OssBucket).items()
        if callable(value) and not name.startswith("_") and name != "url"
    }
    assert operations == set(RAM_ACTIONS)
