"""OSS's REST API for single objects (get, put, delete), signed V4, over `requests`.

The function uses three OSS operations, and `import oss2` costs more than `import
requests` itself (it loads its crypto and KMS SDKs with it), on every cold start of
a deployment that keeps its state or config in OSS. This module speaks those three
operations the way oss2's `Bucket` does (URL style, key quoting, `ProviderAuthV4`'s
signature; tests/test_oss_client.py checks the signature against oss2's own) and
nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import time
from collections.abc import Callable, Mapping
from typing import NamedTuple
from urllib.parse import quote, urlsplit

import requests

from schedulerx_alert.support.bounded import TooLarge, read_capped, read_prefix, size

ALGORITHM = "OSS4-HMAC-SHA256"
PRODUCT = "oss"
# The RAM action each operation needs; tests/test_deploy.py derives the function's
# policy from the calls the stores make, so an operation without an action fails there.
RAM_ACTIONS: Mapping[str, str] = {
    "get": "oss:GetObject",
    "put": "oss:PutObject",
    "delete": "oss:DeleteObject",
}
# Headers V4 signs besides x-oss-*, when the request has them (oss2's DEFAULT_SIGNED_HEADERS).
_DEFAULT_SIGNED = frozenset({"content-type", "content-md5"})
# What oss2 guessed for the keys we write (`utils.content_type_by_name`); others get none,
# and OSS stores application/octet-stream, as with oss2.
_CONTENT_TYPES = {".json": "application/json"}
_BUCKET_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
# An error document is a few hundred bytes; a proxy's HTML page may be anything.
_ERROR_BODY_LIMIT = 64 * 1024
# The most of an object `get` reads (bounded.py). The largest the function keeps is the
# state: at most some thousand jobs' runs, a few MiB (bench/state_size.py); the config is
# at most 1 MB, the silence book's snapshot 4 MiB. Over it, the read fails, named.
MAX_OBJECT_BYTES = 16 << 20


class OssError(Exception):
    """An OSS call failed. `status` is OSS's HTTP status, with its error document's
    Code, Message and RequestId; None when no answer came (network error or timeout),
    and then `message` says what happened instead."""

    def __init__(self, status: int | None, code: str, message: str, request_id: str = "") -> None:
        super().__init__(status, code, message, request_id)
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id

    @property
    def no_answer(self) -> bool:
        return self.status is None

    def describe(self, verb: str, key: str) -> str:
        """One line for a log or a problem: what failed, on which key, and OSS's word."""
        if self.status is None:
            return f"OSS {verb} {key}: network error or timeout ({self.message})"
        line = f"OSS {verb} {key}: HTTP {self.status} {self.code}"
        if self.message:
            line += f": {self.message}"
        if self.request_id:
            line += f" (RequestId {self.request_id})"
        return line

    def __str__(self) -> str:
        if self.status is None:
            return f"network error or timeout ({self.message})"
        return f"HTTP {self.status} {self.code}: {self.message}"


class Fetched(NamedTuple):
    data: bytes
    etag: str  # without the quotes, as oss2 gives it


class OssBucket:
    """One bucket through one `requests.Session`.

    Retries: none, as oss2 does for a single call (its Session mounts requests'
    HTTPAdapter with the default max_retries=0; oss2 retries only in its list
    iterators and resumable transfers). A failed call is the tick's to retry.
    Timeout: one number for the connection and for each read, as oss2's
    `connect_timeout`. Redirects are not followed: a 3xx is an error, so the STS
    token header never travels to a host nobody checked.
    """

    def __init__(
        self,
        bucket: str,
        endpoint: str,
        region: str,
        access_key_id: str,
        access_key_secret: str,
        security_token: str | None = None,
        *,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Raises ValueError for a bucket name OSS would refuse, an endpoint that is not
        [scheme://]host[:port] (no scheme: http, as oss2), or no region (V4 needs one)."""
        if not is_valid_bucket_name(bucket):
            raise ValueError(f"{bucket!r} is not a valid OSS bucket name")
        if not region:
            raise ValueError("OSS V4 signatures need the bucket's region")
        self.bucket_name = bucket
        self.region = region
        self._base = _base_url(endpoint, bucket)
        self._access_key_id = access_key_id
        self._access_key_secret = access_key_secret
        self._security_token = security_token or None
        self.timeout = timeout
        self.clock = clock
        self.session = requests.Session()

    def get(
        self, key: str, *, if_none_match: str | None = None, limit: int = MAX_OBJECT_BYTES
    ) -> Fetched | None:
        """The object's bytes and ETag; None when `if_none_match` (an ETag, unquoted)
        is still the object's (304). Raises OssError (404 NoSuchKey when absent; code
        TooLarge for an object over `limit` bytes, of which at most `limit` are read)."""
        headers = {"If-None-Match": f'"{if_none_match}"'} if if_none_match else {}
        response = self._send("GET", key, headers)
        if response.status_code == 304:
            if if_none_match:
                response.close()
                return None
            raise self._error(response)
        try:
            data = read_capped(response, limit)
        except TooLarge as exc:
            message = f"the object is over the {size(limit)} cap (at least {exc.seen} bytes)"
            raise OssError(response.status_code, "TooLarge", message) from None
        except requests.RequestException as exc:
            raise OssError(None, "", self._scrub(f"{type(exc).__name__}: {exc}")) from None
        _check_length(response, data)
        return Fetched(data, _etag(response))

    def put(self, key: str, data: bytes, *, forbid_overwrite: bool = False) -> str:
        """Create or replace the object; its ETag. With `forbid_overwrite`, OSS refuses
        an existing key: OssError 409 FileAlreadyExists."""
        # OSS checks the body against Content-MD5 and stores nothing when they differ;
        # oss2 instead compared CRC-64 after the upload, when the object was written.
        headers = {"Content-MD5": content_md5(data)}
        content_type = _CONTENT_TYPES.get(key[key.rfind(".") :]) if "." in key else None
        if content_type:
            headers["Content-Type"] = content_type
        if forbid_overwrite:
            headers["x-oss-forbid-overwrite"] = "true"
        response = self._send("PUT", key, headers, data)
        read_prefix(response, _ERROR_BODY_LIMIT)
        return _etag(response)

    def delete(self, key: str) -> None:
        """Remove the object; OSS answers 204 whether or not it existed."""
        read_prefix(self._send("DELETE", key, {}), _ERROR_BODY_LIMIT)

    def url(self, key: str) -> str:
        """Where the object is: the whole key quoted, its slashes too, as oss2 does."""
        return self._base + quote(key, safe="")

    def _send(
        self, method: str, key: str, headers: dict[str, str], data: bytes | None = None
    ) -> requests.Response:
        if not key:
            raise ValueError("an OSS object key must not be empty")
        # Identity, as oss2 asks: the object's own bytes, and a Content-Length that
        # counts them (see _check_length).
        headers = {**headers, "Accept-Encoding": "identity"}
        headers.update(
            sign_v4(
                method,
                self.bucket_name,
                key,
                headers,
                access_key_id=self._access_key_id,
                access_key_secret=self._access_key_secret,
                security_token=self._security_token,
                region=self.region,
                now=self.clock(),
            )
        )
        try:
            response = self.session.request(
                method,
                self.url(key),
                data=data,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
                # Read by the caller, up to a cap (bounded.py).
                stream=True,
            )
        except requests.RequestException as exc:
            raise OssError(None, "", self._scrub(f"{type(exc).__name__}: {exc}")) from None
        if not 200 <= response.status_code < 300 and response.status_code != 304:
            raise self._error(response)
        return response

    def _error(self, response: requests.Response) -> OssError:
        # Only an error needs XML. Absent objects are errors too (404 NoSuchKey), and most
        # ticks read one (a journal, the silence book), which costs about 7 M instructions
        # (1.5 % of `import requests`) once per process.
        from xml.etree import ElementTree

        details: dict[str, str] = {}
        try:
            # From the endpoint the config names, at most 64 KiB; ElementTree fetches
            # no external entity.
            body = read_prefix(response, _ERROR_BODY_LIMIT)
            root = ElementTree.fromstring(body)  # noqa: S314
        except ElementTree.ParseError:
            root = None
        if root is not None and root.tag == "Error":
            details = {child.tag: (child.text or "").strip() for child in root}
        # The error document also carries StringToSign, the AccessKeyId and more;
        # only these three go into a message.
        return OssError(
            response.status_code,
            self._scrub(details.get("Code") or response.reason or "error"),
            self._scrub(details.get("Message", "")),
            self._scrub(details.get("RequestId") or response.headers.get("x-oss-request-id", "")),
        )

    def _scrub(self, text: str) -> str:
        """Text from the network or from requests, without our credentials in it (a
        header requests refuses is quoted in its error, the STS token among them)."""
        for secret in (self._access_key_secret, self._security_token, self._access_key_id):
            if secret and len(secret) >= 4:
                # As it is, and as repr() shows it (requests quotes values with %r).
                text = text.replace(secret, "***").replace(repr(secret)[1:-1], "***")
        return text


def _check_length(response: requests.Response, data: bytes | None = None) -> None:
    """A body cut short is a network error. urllib3 2 raises it by itself; urllib3 1.26,
    which the requests of FC's runtime use, returns what arrived. `data`: the body as
    read (a streamed response's), else the response's own."""
    data = response.content if data is None else data
    expected = response.headers.get("Content-Length", "")
    encoding = response.headers.get("Content-Encoding", "identity")
    if expected.isdigit() and encoding == "identity" and len(data) != int(expected):
        raise OssError(None, "", f"the answer ended after {len(data)} of {expected} bytes")


def _etag(response: requests.Response) -> str:
    return response.headers.get("ETag", "").strip('"')


def content_md5(data: bytes) -> str:
    digest = hashlib.md5(data, usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")


def is_valid_bucket_name(name: str) -> bool:
    """OSS's rule, as oss2 checks it: 3-63 of a-z, 0-9 and -, not starting or ending with -."""
    return (
        3 <= len(name) <= 63 and set(name) <= _BUCKET_CHARS and name[0] != "-" and name[-1] != "-"
    )


def _base_url(endpoint: str, bucket: str) -> str:
    """`scheme://host[:port]/bucket/` for an IP address or localhost (path style),
    `scheme://bucket.host[:port]/` otherwise, as oss2's _UrlMaker builds them."""
    endpoint = endpoint.strip()
    if not endpoint.startswith(("http://", "https://")):
        endpoint = "http://" + endpoint  # oss2's _normalize_endpoint
    parts = urlsplit(endpoint)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or parts.path.strip("/") or parts.query or parts.username:
        raise ValueError(f"OSS endpoint {endpoint!r} is not [scheme://]host[:port]")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    if _is_ip_or_localhost(host):
        return f"{parts.scheme}://{netloc}/{bucket}/"
    return f"{parts.scheme}://{bucket}.{netloc}/"


def _is_ip_or_localhost(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        # oss2's test (utils.is_ip_or_localhost): inet_aton, so "127.1" counts too.
        socket.inet_pton(socket.AF_INET6, host) if ":" in host else socket.inet_aton(host)
    except OSError:
        return False
    return True


# -- the V4 signature ---------------------------------------------------------------------


def sign_v4(
    method: str,
    bucket: str,
    key: str,
    headers: Mapping[str, str],
    *,
    access_key_id: str,
    access_key_secret: str,
    security_token: str | None,
    region: str,
    now: float,
) -> dict[str, str]:
    """The headers that sign a request with `headers` (x-oss-date, x-oss-content-sha256,
    the STS token, Authorization), as oss2's ProviderAuthV4._sign_request adds them."""
    added = {"x-oss-date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))}
    added["x-oss-content-sha256"] = "UNSIGNED-PAYLOAD"
    if security_token:
        added["x-oss-security-token"] = security_token
    date_time = added["x-oss-date"]
    scope = f"{date_time[:8]}/{region}/{PRODUCT}/aliyun_v4_request"
    canonical = canonical_request(method, bucket, key, {**headers, **added})
    to_sign = string_to_sign(canonical, date_time, scope)
    signing_key = ("aliyun_v4" + access_key_secret).encode()
    for part in (date_time[:8], region, PRODUCT, "aliyun_v4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
    added["Authorization"] = (
        f"{ALGORITHM} Credential={access_key_id}/{scope}, Signature={signature}"
    )
    return added


def canonical_request(method: str, bucket: str, key: str, headers: Mapping[str, str]) -> str:
    """No query, no additional signed headers: all that single-object calls need."""
    signed = sorted(
        (name.lower(), value)
        for name, value in headers.items()
        if name.lower().startswith("x-oss-") or name.lower() in _DEFAULT_SIGNED
    )
    canonical_headers = "".join(f"{name}:{value}\n" for name, value in signed)
    # The resource keeps its slashes here; in the URL a key's slash is %2F (as oss2).
    resource = quote(f"/{bucket}/{key}", safe="/")
    payload = headers.get("x-oss-content-sha256", "UNSIGNED-PAYLOAD")
    return f"{method}\n{resource}\n\n{canonical_headers}\n\n{payload}"


def string_to_sign(canonical: str, date_time: str, scope: str) -> str:
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"{ALGORITHM}\n{date_time}\n{scope}\n{digest}"
