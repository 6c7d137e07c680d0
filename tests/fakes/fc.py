"""A loopback Function Compute API endpoint: InvokeFunction, as FC 2.0 and FC 3.0 serve it.

* FC 2.0 (2016-08-15), ``POST /2016-08-15/services/{service[.qualifier]}/functions/{name}/
  invocations``, authenticated with FC's own scheme, ``Authorization: FC <AccessKeyId>:<sig>``
  where ``sig = base64(HMAC-SHA256(secret, METHOD\\nContent-MD5\\nContent-Type\\nDate\\n
  <x-fc-* headers, lower-case, sorted, "name:value\\n" each><path>[\\n<sorted k=v>]))`` and
  the STS token travels in ``x-fc-security-token`` (as aliyun-fc2's ``fc2.auth.Auth`` signs);
* FC 3.0 (2023-03-30), ``POST /2023-03-30/functions/{name}/invocations[?qualifier=]``,
  authenticated with the OpenAPI V3 signature (``ACS3-HMAC-SHA256``) as the official
  ``alibabacloud_fc20230330`` SDK sends it; ``host``, every ``x-acs-*`` and every ``x-fc-*``
  header must be signed, and the body must match ``x-acs-content-sha256``.

Deployed functions are Python callables ``bytes -> bytes``; one that raises
:class:`FunctionError` answers like a function that raised on FC: HTTP 200 with
``x-fc-error-type: UnhandledInvocationError`` and an ``errorMessage`` body. API errors are
``{"Code", "Message", "RequestId"}`` on the FC 3.0 paths and ``{"ErrorCode", "ErrorMessage",
"RequestId"}`` on the FC 2.0 ones, with the request id also in ``x-fc-request-id``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, unquote

from tests.fakes.acs_auth import (
    parse_v3_authorization,
    sha256_hex,
    v3_canonical_request,
    v3_signature,
    v3_string_to_sign,
)
from tests.fakes.base import Clock, FakeServer, Fault, Request, Response, normalise_filters

FC2_VERSION = "2016-08-15"
FC3_VERSION = "2023-03-30"
#: FC rejects requests signed further than this from its clock.
MAX_SKEW = 15 * 60

FunctionHandler = Callable[[bytes], bytes]


class FunctionError(Exception):
    """Raised by a deployed handler: the invocation answers like an unhandled exception."""

    def __init__(self, message: str, error_type: str = "Exception") -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type


class FcApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Invocation:
    api: str  # "2016-08-15" or "2023-03-30"
    function: str  # "name" (FC 3.0) or "service/name" (FC 2.0)
    qualifier: str
    payload: bytes
    invocation_type: str
    signature: str  # "FC" or "ACS3"


@dataclass(frozen=True)
class _Target:
    api: str
    service: str | None
    function: str
    qualifier: str


def fc_string_to_sign(
    method: str, path: str, headers: Mapping[str, str], queries: Mapping[str, str] | None = None
) -> str:
    """FC's string to sign; ``headers`` with lower-case names, ``path`` unescaped."""
    canonical_headers = "".join(
        f"{name}:{headers[name]}\n" for name in sorted(headers) if name.startswith("x-fc-")
    )
    resource = path
    if queries:
        resource += "\n" + "\n".join(sorted(f"{k}={v}" for k, v in queries.items()))
    return "\n".join(
        [
            method.upper(),
            headers.get("content-md5", ""),
            headers.get("content-type", ""),
            headers.get("date", ""),
            canonical_headers + resource,
        ]
    )


def fc_signature(secret: str, string_to_sign: str) -> str:
    digest = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _parse_target(request: Request) -> _Target:
    parts = [unquote(p) for p in request.path.strip("/").split("/")]
    query = dict(parse_qsl(request.raw_query, keep_blank_values=True))
    shape = [*parts[:2], *parts[3:4], *parts[5:]]
    if len(parts) == 6 and shape == [FC2_VERSION, "services", "functions", "invocations"]:
        service, _, qualifier = parts[2].partition(".")
        return _Target(FC2_VERSION, service, parts[4], qualifier or "LATEST")
    if len(parts) == 4 and [*parts[:2], parts[3]] == [FC3_VERSION, "functions", "invocations"]:
        return _Target(FC3_VERSION, None, parts[2], query.get("qualifier") or "LATEST")
    raise FcApiError(404, "PathNotSupported", f"{request.method} {request.path} is not supported")


class FakeFc(FakeServer):
    """Fake FC endpoint: ``fc2.Client(endpoint=fake.url, ...)`` or the FC 3.0 SDK at it."""

    FAULT_KINDS = frozenset({"5xx", "throttle", "timeout"})

    def __init__(
        self,
        access_key_id: str = "LTAI5tFakeFcKey",
        access_key_secret: str = "fake-fc-secret",
        security_token: str | None = None,
        clock: Clock = time.time,
        *,
        max_skew: float | None = MAX_SKEW,
    ) -> None:
        super().__init__(clock)
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.security_token = security_token
        self.max_skew = max_skew
        self._functions: dict[tuple[str | None, str], FunctionHandler] = {}
        self._invocations: list[Invocation] = []

    # -- scripting / assertions ------------------------------------------------------------

    def deploy(self, name: str, handler: FunctionHandler, service: str | None = None) -> None:
        """An FC 3.0 function ``name``, or with ``service`` an FC 2.0 one inside that service."""
        with self._lock:
            self._functions[(service, name)] = handler

    @property
    def invocations(self) -> list[Invocation]:
        with self._lock:
            return list(self._invocations)

    def fail_next(
        self,
        fault: str,
        times: int = 1,
        *,
        function: str | None = None,
        seconds: float = 1.0,
    ) -> None:
        """Faults: "5xx" (503 ServiceUnavailable), "throttle" (429 ResourceExhausted),
        "timeout" (stall ``seconds`` then drop the connection)."""
        self._queue_fault(fault, times, normalise_filters(function=function), seconds=seconds)

    # -- server hooks ----------------------------------------------------------------------

    def _context(self, request: Request) -> dict[str, str]:
        try:
            return {"function": _parse_target(request).function}
        except FcApiError:
            return {}

    def _fault_response(self, fault: Fault, request: Request) -> Response:
        fc3 = request.path.startswith(f"/{FC3_VERSION}/")
        if fault.kind == "throttle":
            return _error(FcApiError(429, "ResourceExhausted", "Concurrency limit exceeded."), fc3)
        return _error(FcApiError(503, "ServiceUnavailable", "Service is not available."), fc3)

    def _handle(self, request: Request) -> Response:
        try:
            if request.method != "POST":
                raise FcApiError(405, "MethodNotAllowed", f"{request.method} is not allowed")
            target = _parse_target(request)
            scheme = self._authenticate(request, target)
            return self._invoke(request, target, scheme)
        except FcApiError as exc:
            return _error(exc, fc3=request.path.startswith(f"/{FC3_VERSION}/"))

    # -- authentication --------------------------------------------------------------------

    def _authenticate(self, request: Request, target: _Target) -> str:
        authorization = request.header("authorization")
        if authorization.startswith("FC "):
            if target.api != FC2_VERSION:
                raise FcApiError(400, "InvalidArgument", "FC 3.0 calls are signed ACS3-HMAC-SHA256")
            self._check_fc(request, authorization)
            return "FC"
        if authorization.startswith("ACS3-HMAC-SHA256 "):
            self._check_acs3(request, target, authorization)
            return "ACS3"
        raise FcApiError(400, "MissingRequiredHeader", "required HTTP header Authorization")

    def _check_fc(self, request: Request, authorization: str) -> None:
        key_id, _, signature = authorization[3:].strip().rpartition(":")
        self._check_identity(key_id, request.header("x-fc-security-token") or None)
        date = request.header("date")
        if not date:
            raise FcApiError(400, "MissingRequiredHeader", "required HTTP header Date")
        try:
            signed_at = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            raise FcApiError(400, "InvalidArgument", f"Date {date!r} is malformed") from None
        self._check_skew(signed_at)
        string_to_sign = fc_string_to_sign(request.method, unquote(request.path), request.headers)
        if not hmac.compare_digest(fc_signature(self.access_key_secret, string_to_sign), signature):
            raise FcApiError(
                403,
                "SignatureNotMatch",
                f"signature {signature} not match, string to sign: {string_to_sign!r}",
            )

    def _check_acs3(self, request: Request, target: _Target, authorization: str) -> None:
        auth = parse_v3_authorization(authorization)
        if auth is None:
            raise FcApiError(400, "IncompleteSignature", "malformed ACS3 Authorization")
        unsigned = [
            name
            for name in request.headers
            if (name == "host" or name.startswith(("x-acs-", "x-fc-")))
            and name not in auth.signed_headers
        ]
        if unsigned:
            raise FcApiError(
                400, "IncompleteSignature", f"unsigned headers: {';'.join(sorted(unsigned))}"
            )
        if request.header("x-acs-version") != target.api:
            raise FcApiError(400, "InvalidVersion", "x-acs-version does not match the path")
        self._check_identity(auth.access_key_id, request.header("x-acs-security-token") or None)
        hashed = sha256_hex(request.body)
        if request.header("x-acs-content-sha256", hashed) != hashed:
            raise FcApiError(400, "ContentSHA256Mismatch", "body does not match its hash")
        canonical = v3_canonical_request(
            method=request.method,
            path=request.path,
            query_pairs=parse_qsl(request.raw_query, keep_blank_values=True),
            headers=request.headers,
            signed_headers=auth.signed_headers,
            hashed_payload=hashed,
        )
        string_to_sign = v3_string_to_sign(canonical)
        if not hmac.compare_digest(
            v3_signature(self.access_key_secret, string_to_sign), auth.signature
        ):
            raise FcApiError(
                403,
                "SignatureDoesNotMatch",
                f"signature not match, string to sign: {string_to_sign!r}",
            )
        try:
            signed_at = datetime.strptime(request.header("x-acs-date"), "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            raise FcApiError(400, "InvalidTimeStamp.Format", "x-acs-date is malformed") from None
        self._check_skew(signed_at.replace(tzinfo=timezone.utc).timestamp())

    def _check_identity(self, key_id: str, token: str | None) -> None:
        if key_id != self.access_key_id:
            raise FcApiError(403, "InvalidAccessKeyID", f"access key id {key_id!r} not found")
        if self.security_token is None and token:
            raise FcApiError(403, "InvalidSecurityToken", "security token is not expected")
        if self.security_token is not None and not (
            token and hmac.compare_digest(token, self.security_token)
        ):
            raise FcApiError(403, "InvalidSecurityToken", "security token missing or invalid")

    def _check_skew(self, signed_at: float) -> None:
        if self.max_skew is not None and abs(signed_at - self.clock()) > self.max_skew:
            raise FcApiError(403, "RequestTimeTooSkewed", "the request time is too skewed")

    # -- invocation ------------------------------------------------------------------------

    def _invoke(self, request: Request, target: _Target, scheme: str) -> Response:
        with self._lock:
            handler = self._functions.get((target.service, target.function))
        if handler is None:
            if target.service is not None and not any(
                service == target.service for service, _ in self._functions
            ):
                raise FcApiError(
                    404, "ServiceNotFound", f"service '{target.service}' does not exist"
                )
            raise FcApiError(
                404, "FunctionNotFound", f"function '{target.function}' does not exist"
            )
        invocation_type = request.header("x-fc-invocation-type", "Sync")
        name = target.function if target.service is None else f"{target.service}/{target.function}"
        with self._lock:
            self._invocations.append(
                Invocation(
                    target.api, name, target.qualifier, request.body, invocation_type, scheme
                )
            )
        request_id = _request_id()
        headers = {"x-fc-request-id": request_id, "Content-Type": "application/octet-stream"}
        if invocation_type == "Async":
            return Response(202, b"", headers)
        try:
            body = handler(request.body)
        except FunctionError as exc:
            error = {"errorMessage": exc.message, "errorType": exc.error_type, "stackTrace": []}
            return Response.json(
                200,
                error,
                "function-error",
                **{"x-fc-request-id": request_id, "x-fc-error-type": "UnhandledInvocationError"},
            )
        return Response(200, body, headers)


def _request_id() -> str:
    return f"1-{secrets.token_hex(4)}-{secrets.token_hex(12)}"


def _error(exc: FcApiError, fc3: bool = False) -> Response:
    """FC 3.0 answers errors as {Code, Message}; FC 2.0 as {ErrorCode, ErrorMessage}."""
    request_id = _request_id()
    if fc3:
        body = {"Code": exc.code, "Message": exc.message, "RequestId": request_id}
    else:
        body = {"ErrorCode": exc.code, "ErrorMessage": exc.message, "RequestId": request_id}
    return Response.json(exc.status, body, exc.code, **{"x-fc-request-id": request_id})
