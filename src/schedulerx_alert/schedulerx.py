"""The SchedulerX OpenAPI edge: signed calls, typed answers, classified errors."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import requests

from .acs3 import sign_request
from .credentials import Credentials
from .model import JobInstance, JobKey

API_VERSION = "2019-04-30"
# Every OpenAPI action the product calls, with the RAM action that allows it;
# the deployment's policy is derived from and checked against this table.
RAM_ACTIONS: Mapping[str, str] = {
    "GetJobInstanceList": "edas:ReadSchedulerxJobInstanceQuery",
}
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class SchedulerXError(Exception):
    """A call that did not return data; `retryable` says whether trying again may help."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        code: str = "",
        status: int | None = None,
        request_id: str = "",
        throttled: bool = False,
        auth: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.code = code
        self.status = status
        self.request_id = request_id
        self.throttled = throttled
        self.auth = auth

    def __str__(self) -> str:
        parts = [self.message]
        if self.request_id:
            parts.append(f"(RequestId {self.request_id})")
        return " ".join(parts)


class SchedulerXClient:
    def __init__(
        self,
        endpoint: str,
        region: str,
        credentials: Credentials,
        zone: ZoneInfo,
        timeout: float = 5.0,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        self.base_url = f"{parts.scheme}://{parts.netloc}/"
        self.host = parts.netloc
        self.region = region
        self.credentials = credentials
        self.zone = zone
        self.timeout = timeout
        self.session = session or requests.Session()
        self.clock = clock

    def call(self, action: str, params: Mapping[str, str]) -> dict[str, Any]:
        """One signed GET; the parsed body of a successful answer."""
        query = {"RegionId": self.region, **params}
        headers = sign_request(
            method="GET",
            host=self.host,
            action=action,
            version=API_VERSION,
            query=query,
            access_key_id=self.credentials.access_key_id,
            access_key_secret=self.credentials.access_key_secret,
            security_token=self.credentials.security_token,
            now=datetime.fromtimestamp(self.clock(), timezone.utc),
        )
        try:
            response = self.session.get(
                self.base_url, params=query, headers=headers, timeout=self.timeout
            )
        except requests.Timeout:
            raise SchedulerXError(f"{action}: timed out", retryable=True) from None
        except requests.RequestException as exc:
            reason = type(exc).__name__
            raise SchedulerXError(f"{action}: network error ({reason})", retryable=True) from None
        return _parse_response(action, response)

    def get_job_instance_list(self, job: JobKey) -> list[JobInstance]:
        body = self.call(
            "GetJobInstanceList",
            {"Namespace": job.namespace, "GroupId": job.group, "JobId": str(job.job_id)},
        )
        data = body.get("Data") or {}
        details = data.get("JobInstanceDetails") if isinstance(data, dict) else None
        # The docs' sample shows one object where real answers carry a list.
        if isinstance(details, dict):
            details = [details]
        if details is None:
            details = []
        if not isinstance(details, list):
            raise SchedulerXError(
                "GetJobInstanceList: Data.JobInstanceDetails is not a list", retryable=False
            )
        return [parse_instance(job, item, self.zone) for item in details if isinstance(item, dict)]


def _parse_response(action: str, response: requests.Response) -> dict[str, Any]:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        kind = response.headers.get("Content-Type", "unknown type").split(";")[0]
        # Gateways answer outages with HTML pages, sometimes with status 200.
        raise SchedulerXError(
            f"{action}: HTTP {status} answer is not JSON ({kind})",
            retryable=True,
            status=status,
        ) from None
    if not isinstance(body, dict):
        raise SchedulerXError(f"{action}: answer is not a JSON object", retryable=True)
    code = str(body.get("Code") or "")
    message = str(body.get("Message") or "")
    request_id = str(body.get("RequestId") or "")
    if status >= 400:
        throttled = "throttling" in code.lower() or status == 429
        auth = status in (401, 403) or code.startswith(
            ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidSecurityToken", "Forbidden")
        )
        raise SchedulerXError(
            f"{action}: HTTP {status} {code}: {message}".rstrip(": "),
            retryable=throttled or status >= 500,
            code=code,
            status=status,
            request_id=request_id,
            throttled=throttled,
            auth=auth,
        )
    if body.get("Success") is not True:
        # Business errors (job not in group, no such job) arrive as HTTP 200.
        raise SchedulerXError(
            f"{action}: Success=false, Code {code or '?'}: {message or 'no message'}",
            retryable=False,
            code=code,
            status=status,
            request_id=request_id,
        )
    return body


def parse_time(value: Any, zone: ZoneInfo) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value.strip(), _TIME_FORMAT).replace(tzinfo=zone)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_instance(job: JobKey, raw: Mapping[str, Any], zone: ZoneInfo) -> JobInstance:
    """A JobInstance from one JobInstanceDetails entry; tolerant of odd values."""
    status = _int(raw.get("Status"))
    instance_id = _int(raw.get("InstanceId"))
    if instance_id is None:
        raise SchedulerXError(
            f"GetJobInstanceList: instance without InstanceId: {json.dumps(raw)[:200]}",
            retryable=False,
        )
    return JobInstance(
        job=job,
        instance_id=instance_id,
        status_code=status if status is not None else 0,
        result=str(raw.get("Result") or ""),
        progress=str(raw.get("Progress") or ""),
        schedule_time=parse_time(raw.get("ScheduleTime"), zone),
        start_time=parse_time(raw.get("StartTime"), zone),
        end_time=parse_time(raw.get("EndTime"), zone),
        data_time=parse_time(raw.get("DataTime"), zone),
        time_type=_int(raw.get("TimeType")),
        trigger_type=_int(raw.get("TriggerType")),
        work_addr=str(raw.get("WorkAddr") or ""),
        executor=str(raw.get("Executor") or ""),
    )
