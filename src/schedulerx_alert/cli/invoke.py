"""Call the deployed function once through the Function Compute API, from a laptop.

Which API: the function is deployed as an FC 3.0 function (s.yaml's `fc3` component,
template.yml's ALIYUN::FC3::Function). FC 3.0 functions have no service, and FC 2.0's
API (2016-08-15, the only one aliyun-fc2 speaks) addresses every function as
/services/{service}/functions/{function}: no documented service name reaches a
function created through FC 3.0. So the default is FC 3.0's own InvokeFunction,
`POST /2023-03-30/functions/{name}/invocations`, signed like every Alibaba Cloud
OpenAPI call today (V3, ACS3-HMAC-SHA256), which is what FC 3.0's official SDK
(alibabacloud-fc20230330) sends. A function that still lives in an FC 2.0 service
is reached with `service=`, through aliyun-fc2 and its `FC <AccessKeyId>:<signature>`
scheme.

Secrets: the credentials never reach a log line or an exception text here, and
aliyun-fc2's own error logging (which prints the request headers, STS token
included) is silenced for the call.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from schedulerx_alert.sources.acs3 import sign_request
from schedulerx_alert.support.credentials import Credentials
from schedulerx_alert.support.redact import Redactor

FC3_API_VERSION = "2023-03-30"
FC2_API_VERSION = "2016-08-15"
# A synchronous call waits for the function; its timeout is 60 s (s.yaml, template.yml).
DEFAULT_TIMEOUT = 90.0


class InvokeError(Exception):
    """The call did not reach the function, or FC refused it."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class Invocation:
    """What the function returned: its body, and whether it raised (`error_type`)."""

    body: bytes
    request_id: str = ""
    error_type: str = ""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None


def account_id_from_env(env: Mapping[str, str] | None = None) -> str | None:
    return _first_set(("ALIBABA_CLOUD_ACCOUNT_ID", "FC_ACCOUNT_ID"), env)


def region_from_env(env: Mapping[str, str] | None = None) -> str | None:
    # The caller's own variable first: FC's are set only inside a function.
    return _first_set(("ALIBABA_CLOUD_REGION_ID", "FC_REGION"), env)


def _first_set(names: tuple[str, ...], env: Mapping[str, str] | None) -> str | None:
    env = os.environ if env is None else env
    return next((env[name] for name in names if env.get(name)), None)


def default_endpoint(region: str, account_id: str | None) -> str:
    """FC's account endpoint when the account is known, else FC 3.0's regional one."""
    if account_id:
        return f"https://{account_id}.{region}.fc.aliyuncs.com"
    return f"https://fcv3.{region}.aliyuncs.com"


def _base_url(endpoint: str) -> tuple[str, str]:
    parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvokeError(f"endpoint must be https://HOST, not {endpoint!r}")
    return f"{parts.scheme}://{parts.netloc}", parts.netloc


def sign_fc3(
    *,
    method: str,
    host: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    credentials: Credentials,
    action: str,
    now: datetime | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Headers for one ROA-style FC 3.0 call, signed V3 over every header sent."""
    signed = sign_request(
        method=method,
        host=host,
        action=action,
        version=FC3_API_VERSION,
        query=query,
        access_key_id=credentials.access_key_id,
        access_key_secret=credentials.access_key_secret,
        security_token=credentials.security_token,
        body=body,
        path=path,
        headers=headers,
        now=now,
        nonce=nonce,
    )
    signed["authorization"] = signed.pop("Authorization")
    return signed


def invoke_fc3(
    endpoint: str,
    function_name: str,
    payload: bytes,
    credentials: Credentials,
    *,
    qualifier: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    session: requests.Session | None = None,
) -> Invocation:
    """FC 3.0 InvokeFunction, synchronous: the function's answer, or InvokeError."""
    base, host = _base_url(endpoint)
    path = f"/{FC3_API_VERSION}/functions/{quote(function_name, safe='')}/invocations"
    query = {"qualifier": qualifier} if qualifier else {}
    headers = sign_fc3(
        method="POST",
        host=host,
        path=path,
        query=query,
        headers={
            "content-type": "application/octet-stream",
            "x-fc-invocation-type": "Sync",
            "x-fc-log-type": "None",
        },
        body=payload,
        credentials=credentials,
        action="InvokeFunction",
    )
    headers.pop("host")  # requests sends it from the URL, identically
    http = session or requests.Session()
    try:
        response = http.post(
            base + path, params=query, data=payload, headers=headers, timeout=timeout
        )
    except requests.Timeout:
        raise InvokeError(f"no answer from {host} within {timeout:g} s") from None
    except requests.RequestException as exc:
        raise InvokeError(f"cannot reach {host}: {type(exc).__name__}") from None
    request_id = response.headers.get("x-fc-request-id", "")
    if response.status_code >= 400:
        raise _api_error(response.status_code, response.content, request_id)
    return Invocation(response.content, request_id, response.headers.get("x-fc-error-type", ""))


class _DropFc2Records(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return f"{os.sep}fc2{os.sep}" not in record.pathname


@contextlib.contextmanager
def _quiet_fc2() -> Iterator[None]:
    """aliyun-fc2 logs failed calls' request headers (STS token included) on the root logger."""
    root = logging.getLogger()
    drop = _DropFc2Records()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def invoke_fc2(
    endpoint: str,
    service: str,
    function_name: str,
    payload: bytes,
    credentials: Credentials,
    *,
    qualifier: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Invocation:
    """FC 2.0 InvokeFunction through aliyun-fc2, for a function that lives in a service."""
    import fc2

    base, _ = _base_url(endpoint)
    client = fc2.Client(
        endpoint=base,
        accessKeyID=credentials.access_key_id,
        accessKeySecret=credentials.access_key_secret,
        securityToken=credentials.security_token or "",
        Timeout=timeout,
    )
    with _quiet_fc2():
        try:
            response = client.invoke_function(
                service,
                function_name,
                payload=payload,
                headers={"x-fc-invocation-type": "Sync", "x-fc-log-type": "None"},
                qualifier=qualifier,
            )
        except fc2.fc_exceptions.FcError as exc:
            body = str(exc.message).encode()
            status = int(exc.status_code or 0)
            request_id = str(exc.request_id or "")
            if 0 < status < 400:
                # HTTP 200 with x-fc-error-type: the function ran and raised.
                return Invocation(body, request_id, "UnhandledInvocationError")
            raise _api_error(status, body, request_id) from None
        except requests.RequestException as exc:
            raise InvokeError(f"cannot reach {base}: {type(exc).__name__}") from None
    headers = response.headers
    data = response.data
    return Invocation(
        data if isinstance(data, bytes) else json.dumps(data).encode(),
        str(headers.get("x-fc-request-id", "")),
        str(headers.get("x-fc-error-type", "")),
    )


def _api_error(status: int, body: bytes, request_id: str) -> InvokeError:
    code = message = ""
    with contextlib.suppress(ValueError, AttributeError):
        parsed = json.loads(body)
        code = str(parsed.get("ErrorCode") or parsed.get("Code") or parsed.get("code") or "")
        message = str(
            parsed.get("ErrorMessage") or parsed.get("Message") or parsed.get("message") or ""
        )
    if not code and not message:
        message = body[:200].decode("utf-8", "replace")
    text = f"FC answered HTTP {status} {code}: {message}".rstrip(": ")
    if status in (401, 403):
        text += (
            " (the caller needs fc:InvokeFunction on the function, e.g. AliyunFCInvocationAccess)"
        )
    if status == 404:
        text += " (check --function-name, --region and --account-id)"
    if request_id:
        text += f" (RequestId {request_id})"
    return InvokeError(text, status=status, code=code)


def redactor_of(credentials: Credentials) -> Redactor:
    """What an FC call's words pass through: the key pair and the STS token."""
    return Redactor(
        [credentials.access_key_id, credentials.access_key_secret, credentials.security_token]
    )


def invoke(
    *,
    function_name: str,
    region: str,
    credentials: Credentials,
    dry_run: bool = False,
    account_id: str | None = None,
    endpoint: str | None = None,
    service: str | None = None,
    qualifier: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Invocation:
    """One synchronous call of the deployed function with `{"dry_run": ...}` as the event."""
    payload = json.dumps({"dry_run": dry_run}).encode()
    url = endpoint or default_endpoint(region, account_id)
    redact = redactor_of(credentials)
    try:
        if service:
            if not endpoint and not account_id:
                raise InvokeError("an FC 2.0 service needs --account-id (or --endpoint)")
            return invoke_fc2(
                url,
                service,
                function_name,
                payload,
                credentials,
                qualifier=qualifier,
                timeout=timeout,
            )
        return invoke_fc3(
            url, function_name, payload, credentials, qualifier=qualifier, timeout=timeout
        )
    except InvokeError as exc:
        # Belt and braces: an error text never carries a credential.
        raise InvokeError(redact(str(exc)), status=exc.status, code=exc.code) from None
