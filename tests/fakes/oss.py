"""A loopback OSS server for path-style requests (``/bucket/key``), as oss2 sends them to an
IP endpoint such as ``http://127.0.0.1:PORT``.

It verifies V1 (``OSS AK:sig``) and V4 (``OSS4-HMAC-SHA256``) signatures, including the STS
token in ``x-oss-security-token``, and implements PutObject (with
``x-oss-forbid-overwrite``), GetObject and HeadObject (``If-None-Match``: 304 when the ETag
matches), DeleteObject, CopyObject, ListObjects and ListObjectsV2. Errors are OSS XML
bodies with ``x-oss-request-id`` so that oss2 raises its proper exception classes
(``NoSuchKey``, ``NoSuchBucket``, ``ServerError`` with status 409, ...).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import parse_qsl, quote, unquote

import crcmod

from tests.fakes.base import (
    Clock,
    FakeServer,
    Fault,
    Request,
    Response,
    TimeoutThen,
    normalise_filters,
)
from tests.fakes.oss_auth import (
    parse_v1_authorization,
    parse_v4_authorization,
    v1_signature,
    v1_string_to_sign,
    v4_canonical_request,
    v4_signature,
    v4_string_to_sign,
)

#: OSS rejects requests whose Date / x-oss-date is further than this from its clock.
MAX_SKEW = 15 * 60
READ_METHODS = frozenset({"GET", "HEAD"})


class OssError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def _no_such_key(key: str) -> OssError:
    return OssError(404, "NoSuchKey", "The specified key does not exist.", Key=key)


def _access_denied() -> OssError:
    return OssError(403, "AccessDenied", "You have no right to access this object.")


def crc64_ecma(data: bytes) -> int:
    """CRC-64/XZ (ECMA-182, reflected), the value OSS returns in x-oss-hash-crc64ecma.

    crcmod's C extension: in pure Python, a 2 MB state took the fake longer than the
    client's 5 s timeout on a loaded machine. test_fakes checks it against the
    standard's check value and a bitwise reference."""
    return int(_CRC64(data))


_CRC64 = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, xorOut=0xFFFFFFFFFFFFFFFF, rev=True)


@dataclass
class StoredObject:
    data: bytes
    content_type: str
    last_modified: float
    meta: dict[str, str] = field(default_factory=dict)  # x-oss-meta-* headers, lower-case

    @property
    def etag(self) -> str:
        return '"' + hashlib.md5(self.data).hexdigest().upper() + '"'

    @functools.cached_property
    def crc64(self) -> str:
        # Objects are never changed in place (a write stores a new one): computed once.
        return str(crc64_ecma(self.data))

    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": self.content_type,
            "ETag": self.etag,
            "Last-Modified": _http_date(self.last_modified),
            "x-oss-object-type": "Normal",
            "x-oss-storage-class": "Standard",
            "x-oss-hash-crc64ecma": self.crc64,
            **self.meta,
        }


@dataclass(frozen=True)
class _Target:
    bucket: str
    key: str
    query: list[tuple[str, str]]


def _parse_target(request: Request) -> _Target:
    bucket, _, key = unquote(request.path).lstrip("/").partition("/")
    return _Target(bucket, key, parse_qsl(request.raw_query, keep_blank_values=True))


class _OssAuthenticator:
    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        security_token: str | None,
        region: str,
        clock: Clock,
        max_skew: float | None,
    ) -> None:
        self.max_skew = max_skew
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.security_token = security_token
        self.region = region
        self.clock = clock

    def authenticate(self, request: Request, target: _Target) -> str:
        """Return "v1" or "v4"; raise :class:`OssError` when the request is not allowed."""
        authorization = request.header("authorization")
        if authorization.startswith("OSS4-HMAC-SHA256"):
            self._check_v4(request, target, authorization)
            return "v4"
        if authorization.startswith("OSS "):
            self._check_v1(request, target, authorization)
            return "v1"
        if authorization:
            raise OssError(400, "InvalidArgument", "Authorization header is invalid.")
        raise OssError(403, "AccessDenied", "AnonymousUser has no right to access this object.")

    def _check_v1(self, request: Request, target: _Target, authorization: str) -> None:
        parsed = parse_v1_authorization(authorization)
        if parsed is None:
            raise OssError(400, "InvalidArgument", "Authorization header is invalid.")
        access_key_id, signature = parsed
        self._check_identity(access_key_id, request)
        string_to_sign = v1_string_to_sign(
            request.method, request.headers, target.bucket, target.key, target.query
        )
        expected = v1_signature(self.access_key_secret, string_to_sign)
        if not hmac.compare_digest(expected, signature):
            raise _signature_mismatch(access_key_id, string_to_sign)
        date = request.header("x-oss-date") or request.header("date")
        try:
            signed_at = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            raise OssError(403, "AccessDenied", "Invalid date format of header Date.") from None
        self._check_skew(signed_at)

    def _check_v4(self, request: Request, target: _Target, authorization: str) -> None:
        auth = parse_v4_authorization(authorization)
        if auth is None:
            raise OssError(400, "InvalidArgument", "Authorization header is invalid.")
        self._check_identity(auth.access_key_id, request)
        date_time = request.header("x-oss-date")
        try:
            signed_at = datetime.strptime(date_time, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            raise OssError(403, "AccessDenied", "Invalid x-oss-date.") from None
        if auth.date != date_time[:8] or auth.region != self.region or auth.product != "oss":
            raise OssError(
                403,
                "SignatureDoesNotMatch",
                f"Invalid signing scope {auth.scope}; expected region {self.region}.",
            )
        canonical = v4_canonical_request(
            method=request.method,
            bucket=target.bucket,
            key=target.key,
            query=target.query,
            headers=request.headers,
            additional_headers=auth.additional_headers,
        )
        string_to_sign = v4_string_to_sign(canonical, date_time, auth.scope)
        expected = v4_signature(self.access_key_secret, auth, string_to_sign)
        if not hmac.compare_digest(expected, auth.signature):
            raise _signature_mismatch(auth.access_key_id, string_to_sign)
        self._check_skew(signed_at.timestamp())

    def _check_identity(self, access_key_id: str, request: Request) -> None:
        if access_key_id != self.access_key_id:
            raise OssError(
                403,
                "InvalidAccessKeyId",
                "The OSS Access Key Id you provided does not exist in our records.",
                OSSAccessKeyId=access_key_id,
            )
        token = request.header("x-oss-security-token")
        if self.security_token is None and not token:
            return
        if self.security_token is None or not token:
            # A temporary key without its token (or a token on a permanent key) is unknown.
            raise OssError(
                403,
                "InvalidAccessKeyId",
                "The OSS Access Key Id you provided does not exist in our records.",
                OSSAccessKeyId=access_key_id,
            )
        if not hmac.compare_digest(token, self.security_token):
            raise OssError(
                403,
                "InvalidAccessKeyId",
                "The security token you provided is invalid.",
                OSSAccessKeyId=access_key_id,
            )

    def _check_skew(self, signed_at: float) -> None:
        if self.max_skew is not None and abs(signed_at - self.clock()) > self.max_skew:
            raise OssError(
                403,
                "RequestTimeTooSkewed",
                "The difference between the request time and the current time is too large.",
            )


def _signature_mismatch(access_key_id: str, string_to_sign: str) -> OssError:
    return OssError(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
        OSSAccessKeyId=access_key_id,
        StringToSign=string_to_sign,
    )


class FakeOss(FakeServer):
    """Fake OSS endpoint: ``oss2.Bucket(auth, fake.url, "bucket")``."""

    FAULT_KINDS = frozenset({"5xx", "403", "timeout"})

    def __init__(
        self,
        access_key_id: str = "LTAI5tFakeOssKey",
        access_key_secret: str = "fake-oss-secret",
        security_token: str | None = None,
        clock: Clock = time.time,
        *,
        buckets: tuple[str, ...] = ("bucket",),
        region: str = "cn-hangzhou",
        max_skew: float | None = MAX_SKEW,
    ) -> None:
        """``buckets``: the buckets that exist (the first is the default for helpers).
        ``region``: the region V4 signatures must be scoped to.
        ``max_skew``: seconds Date/x-oss-date may differ from ``clock`` (None: unchecked)."""
        super().__init__(clock)
        if not buckets:
            raise ValueError("at least one bucket")
        self.default_bucket = buckets[0]
        self.region = region
        self._auth = _OssAuthenticator(
            access_key_id, access_key_secret, security_token, region, clock, max_skew
        )
        self._buckets: dict[str, dict[str, StoredObject]] = {name: {} for name in buckets}

    # -- scripting / assertions ------------------------------------------------------------

    @property
    def objects(self) -> dict[str, bytes]:
        """Snapshot of the default bucket: key → content."""
        return self.objects_in(self.default_bucket)

    def objects_in(self, bucket: str) -> dict[str, bytes]:
        with self._lock:
            return {key: obj.data for key, obj in self._buckets[bucket].items()}

    def stored(self, key: str, bucket: str | None = None) -> StoredObject:
        """The object with its metadata (content type, x-oss-meta-*, last modified)."""
        with self._lock:
            return self._buckets[bucket or self.default_bucket][key]

    def put_raw(
        self,
        key: str,
        data: bytes,
        bucket: str | None = None,
        content_type: str = "application/octet-stream",
    ) -> None:
        """Plant an object directly, bypassing HTTP (e.g. corrupt state)."""
        with self._lock:
            self._buckets[bucket or self.default_bucket][key] = StoredObject(
                data, content_type, self.clock()
            )

    def delete_raw(self, key: str, bucket: str | None = None) -> None:
        with self._lock:
            self._buckets[bucket or self.default_bucket].pop(key, None)

    def add_bucket(self, name: str) -> None:
        with self._lock:
            self._buckets.setdefault(name, {})

    # -- faults ----------------------------------------------------------------------------

    def fail_next(
        self,
        fault: str,
        times: int = 1,
        *,
        key: str | None = None,
        op: str | None = None,
        bucket: str | None = None,
        seconds: float = 1.0,
        then: TimeoutThen = "drop",
    ) -> None:
        """Make the next ``times`` matching requests misbehave.

        Faults: "5xx" (503 ServiceUnavailable), "403" (AccessDenied), "timeout" (stall
        ``seconds`` then ``then``="drop" the connection or "answer" normally).
        Filters: ``key``, ``bucket``, ``op`` = "read" (GET/HEAD) or "write" (PUT/POST/DELETE).
        """
        if op not in (None, "read", "write"):
            raise ValueError(f"op must be 'read' or 'write', not {op!r}")
        filters = normalise_filters(key=key, op=op, bucket=bucket)
        self._queue_fault(fault, times, filters, seconds=seconds, then=then)

    # -- server hooks ----------------------------------------------------------------------

    def _context(self, request: Request) -> dict[str, str]:
        target = _parse_target(request)
        return {
            "key": target.key,
            "bucket": target.bucket,
            "op": "read" if request.method in READ_METHODS else "write",
        }

    def _fault_response(self, fault: Fault, request: Request) -> Response:
        if fault.kind == "5xx":
            error = OssError(
                503, "ServiceUnavailable", "Please reduce your request rate and try again."
            )
        elif fault.kind == "403":
            error = _access_denied()
        else:
            raise AssertionError(fault.kind)
        return _error_response(error, request)

    def _handle(self, request: Request) -> Response:
        target = _parse_target(request)
        try:
            self._auth.authenticate(request, target)
            with self._lock:
                return self._operate(request, target)
        except OssError as error:
            return _error_response(error, request)

    # -- operations (lock held) ------------------------------------------------------------

    def _operate(self, request: Request, target: _Target) -> Response:
        if not target.bucket:
            raise OssError(405, "MethodNotAllowed", "The specified method is not allowed.")
        objects = self._buckets.get(target.bucket)
        if objects is None:
            raise OssError(
                404,
                "NoSuchBucket",
                "The specified bucket does not exist.",
                BucketName=target.bucket,
            )
        method = request.method
        if not target.key:
            if method == "GET":
                return self._list(request, target, objects)
            raise OssError(405, "MethodNotAllowed", "The specified method is not allowed.")
        if method == "PUT" and request.header("x-oss-copy-source"):
            return self._copy(request, target, objects)
        if method == "PUT":
            return self._put(request, target, objects)
        if method in READ_METHODS:
            stored = objects.get(target.key)
            if stored is None:
                raise _no_such_key(target.key)
            if _matches(request.header("if-none-match"), stored.etag):
                # As OSS does: the reader's copy is current; no body, no error document.
                return _ok(304, headers={"ETag": stored.etag})
            body = stored.data
            headers = {**stored.headers(), "Content-Length": str(len(body))}
            return _ok(200, body if method == "GET" else b"", headers)
        if method == "DELETE":
            objects.pop(target.key, None)  # OSS answers 204 whether or not the key existed
            return _ok(204)
        raise OssError(405, "MethodNotAllowed", "The specified method is not allowed.")

    def _check_overwrite(
        self, request: Request, objects: dict[str, StoredObject], key: str
    ) -> None:
        if request.header("x-oss-forbid-overwrite").lower() == "true" and key in objects:
            raise OssError(
                409,
                "FileAlreadyExists",
                "The object you specified already exists and can not be overwritten.",
                Key=key,
            )

    def _put(self, request: Request, target: _Target, objects: dict[str, StoredObject]) -> Response:
        md5 = request.header("content-md5")
        if md5 and md5 != base64.b64encode(hashlib.md5(request.body).digest()).decode():
            raise OssError(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
        self._check_overwrite(request, objects, target.key)
        stored = StoredObject(
            request.body,
            request.header("content-type") or "application/octet-stream",
            self.clock(),
            _meta_headers(request),
        )
        objects[target.key] = stored
        return _ok(
            200,
            headers={
                "ETag": stored.etag,
                "x-oss-hash-crc64ecma": stored.crc64,
                "Content-MD5": base64.b64encode(hashlib.md5(stored.data).digest()).decode(),
            },
        )

    def _copy(
        self, request: Request, target: _Target, objects: dict[str, StoredObject]
    ) -> Response:
        source = unquote(request.header("x-oss-copy-source")).lstrip("/")
        source_bucket, _, source_key = source.partition("/")
        source_objects = self._buckets.get(source_bucket)
        if source_objects is None:
            raise OssError(404, "NoSuchBucket", "The specified bucket does not exist.")
        original = source_objects.get(source_key)
        if original is None:
            raise _no_such_key(source_key)
        self._check_overwrite(request, objects, target.key)
        replace = request.header("x-oss-metadata-directive").upper() == "REPLACE"
        copied = StoredObject(
            original.data,
            (request.header("content-type") or original.content_type)
            if replace
            else original.content_type,
            self.clock(),
            _meta_headers(request) if replace else dict(original.meta),
        )
        objects[target.key] = copied
        root = ET.Element("CopyObjectResult")
        ET.SubElement(root, "ETag").text = copied.etag
        ET.SubElement(root, "LastModified").text = _iso_date(copied.last_modified)
        return _xml(200, root, {"ETag": copied.etag})

    def _list(
        self, request: Request, target: _Target, objects: dict[str, StoredObject]
    ) -> Response:
        params = dict(target.query)
        v2 = params.get("list-type") == "2"
        prefix = params.get("prefix", "")
        delimiter = params.get("delimiter", "")
        max_keys = int(params.get("max-keys") or 100)
        url_encoded = params.get("encoding-type") == "url"
        after = params.get("continuation-token") or params.get("start-after", "")
        if not v2:
            after = params.get("marker", "")
        contents: list[str] = []
        prefixes: list[str] = []
        truncated = False
        last = ""
        for key in sorted(k for k in objects if k.startswith(prefix) and k > after):
            if delimiter and delimiter in key[len(prefix) :]:
                common = key[: key.index(delimiter, len(prefix)) + len(delimiter)]
                if common in prefixes:
                    continue
                entry_is_prefix = True
            else:
                common = ""
                entry_is_prefix = False
            if len(contents) + len(prefixes) == max_keys:
                truncated = True
                break
            if entry_is_prefix:
                prefixes.append(common)
            else:
                contents.append(key)
            last = key

        def enc(text: str) -> str:
            return quote(text, safe="") if url_encoded else text

        root = ET.Element("ListBucketResult")
        fields = [("Name", target.bucket), ("Prefix", enc(prefix))]
        if v2:
            fields += [("StartAfter", enc(params.get("start-after", "")))]
            fields += [("ContinuationToken", params.get("continuation-token", ""))]
        else:
            fields += [("Marker", enc(after))]
        fields += [
            ("MaxKeys", str(max_keys)),
            ("Delimiter", enc(delimiter)),
            ("IsTruncated", "true" if truncated else "false"),
        ]
        if truncated:
            fields.append(("NextContinuationToken" if v2 else "NextMarker", enc(last)))
        if v2:
            fields.append(("KeyCount", str(len(contents) + len(prefixes))))
        if url_encoded:
            fields.append(("EncodingType", "url"))
        for name, text in fields:
            ET.SubElement(root, name).text = text
        for key in contents:
            stored = objects[key]
            node = ET.SubElement(root, "Contents")
            for name, text in (
                ("Key", enc(key)),
                ("LastModified", _iso_date(stored.last_modified)),
                ("ETag", stored.etag),
                ("Type", "Normal"),
                ("Size", str(len(stored.data))),
                ("StorageClass", "Standard"),
            ):
                ET.SubElement(node, name).text = text
        for common in prefixes:
            ET.SubElement(ET.SubElement(root, "CommonPrefixes"), "Prefix").text = enc(common)
        return _xml(200, root)


def _matches(if_none_match: str, etag: str) -> bool:
    """An If-None-Match header (one ETag, a list, or *) names this ETag."""
    tags = [tag.strip() for tag in if_none_match.split(",") if tag.strip()]
    return "*" in tags or etag in tags


def _meta_headers(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k.startswith("x-oss-meta-")}


def _request_id() -> str:
    return secrets.token_hex(12).upper()


def _http_date(epoch: float) -> str:
    return format_datetime(datetime.fromtimestamp(epoch, timezone.utc), usegmt=True)


def _iso_date(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _ok(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Response:
    return Response(status, body, {"x-oss-request-id": _request_id(), **(headers or {})})


def _xml(status: int, root: ET.Element, headers: dict[str, str] | None = None) -> Response:
    body = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return _ok(status, body, {"Content-Type": "application/xml", **(headers or {})})


def _error_response(error: OssError, request: Request) -> Response:
    request_id = _request_id()
    root = ET.Element("Error")
    fields = {"Code": error.code, "Message": error.message, "RequestId": request_id}
    fields["HostId"] = request.header("host", "127.0.0.1")
    fields.update(error.extra)
    for name, text in fields.items():
        ET.SubElement(root, name).text = text
    body = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    headers = {"Content-Type": "application/xml", "x-oss-request-id": request_id}
    if request.method == "HEAD":
        # HEAD answers carry no body; OSS puts the error document in x-oss-err instead.
        headers["x-oss-err"] = base64.b64encode(body).decode()
        body = b""
    return Response(error.status, body, headers, verdict=error.code)
