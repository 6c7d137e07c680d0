"""The SchedulerX OpenAPI edge: signed calls, typed answers, classified errors."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import requests

from schedulerx_alert.core.model import JobInstance, JobKey
from schedulerx_alert.sources.acs3 import sign_request
from schedulerx_alert.sources.listing import (
    AnswerUnreadable,
    GroupListing,
    Listing,
    decode_int,
    parse_group_listing,
    parse_listing,
    show,
)
from schedulerx_alert.support.bounded import TooLarge, read_capped
from schedulerx_alert.support.credentials import Credentials

T = TypeVar("T")

API_VERSION = "2019-04-30"
# Every OpenAPI action the product calls, with the RAM action that allows it;
# the deployment's policy is derived from and checked against this table.
RAM_ACTIONS: Mapping[str, str] = {
    "GetJobInstanceList": "edas:ReadSchedulerxJobInstanceQuery",
    # Runs unfinished since before a group's window, read by id (sources/poll.py), and the
    # link endpoint's re-read of a run.
    "GetJobInstance": "edas:ReadSchedulerxJobInstanceQuery",
    # Discovery: a group's job list, and one job found in a group's runs before its list.
    # ListJobs' RAM action is not documented; GetJobInfo's is this one.
    "ListJobs": "edas:ReadSchedulerxJobQuery",
    "GetJobInfo": "edas:ReadSchedulerxJobQuery",
    # include_log: the failed run's last lines (Professional edition only).
    "GetLog": "edas:ReadSchedulerxLogQuery",
    # `workflows:` (sources/workflows.py); Professional edition only. The action is the
    # one documented for ListWorkflowInstance and GetWorkflowInstance; ListWorkFlows'
    # is not documented.
    "ListWorkFlows": "edas:ReadSchedulerxWorkflowQuery",
    "ListWorkflowInstance": "edas:ReadSchedulerxWorkflowQuery",
    "GetWorkflowInstance": "edas:ReadSchedulerxWorkflowQuery",
}
# The operations from the chat (`actions.operations`), each with the RAM action of its API
# page ("授权信息"); they live in a policy of their own, attached only when enabled. The
# link endpoint re-reads the run with GetJobInstance, a read the policy above allows.
WRITE_RAM_ACTIONS: Mapping[str, str] = {
    "RetryJobInstance": "edas:ManageSchedulerxJobInstRun",
    "SetJobInstanceSuccess": "edas:ManageSchedulerxJobInstMarkSuccess",
    "StopInstance": "edas:ManageSchedulerxJobInstStop",
}
# Each operation's action, and the name of its run id parameter (StopInstance's differs).
OPERATION_CALLS: Mapping[str, tuple[str, str]] = {
    "retry": ("RetryJobInstance", "JobInstanceId"),
    "mark_success": ("SetJobInstanceSuccess", "JobInstanceId"),
    "stop": ("StopInstance", "InstanceId"),
}
# Each write's HTTP method, as the official SDK (alibabacloud_schedulerx220190430 2.2.3,
# `Params(method=...)`) sends it: the two Professional-edition writes by POST, StopInstance
# by GET, the parameters in the query either way (docs/operations.md, "How the writes are
# sent"). The reads are GETs.
WRITE_METHODS: Mapping[str, str] = {
    "RetryJobInstance": "POST",
    "SetJobInstanceSuccess": "POST",
    "StopInstance": "GET",
}

# The most of an answer each action is read up to (bounded.py); over it, that call fails.
# A run list page is some hundred runs, each with a Result (an exception's stack trace,
# or whatever a job printed): 8 MiB is 80 KiB a run for a page of 100. ListJobs pages
# hold at most 100 jobs of a few KiB. GetJobInfo is one job, and of GetLog's answer the
# last lines are kept, a few KiB (evidence.py): 1 MiB each leaves both ample room.
ANSWER_CAPS: Mapping[str, int] = {
    "GetJobInstanceList": 8 << 20,
    "ListJobs": 8 << 20,
    "GetJobInfo": 1 << 20,
    "GetLog": 1 << 20,
    # A workflow instance's DAG carries each node's Result, as a run list page does.
    "ListWorkFlows": 8 << 20,
    "ListWorkflowInstance": 1 << 20,
    "GetWorkflowInstance": 8 << 20,
}
DEFAULT_ANSWER_CAP = 8 << 20


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
        detail: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        # SchedulerX's own Message, when it sent one (the page quotes it, as data).
        self.detail = detail
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
        return self.request("GET", action, params)

    def request(self, method: str, action: str, params: Mapping[str, str]) -> dict[str, Any]:
        """One signed call, its parameters in the query (a POST has an empty body, as the
        SDK sends one); the parsed body of a successful answer."""
        query = {"RegionId": self.region, **params}
        headers = sign_request(
            method=method,
            host=self.host,
            action=action,
            version=API_VERSION,
            query=query,
            access_key_id=self.credentials.access_key_id,
            access_key_secret=self.credentials.access_key_secret,
            security_token=self.credentials.security_token,
            now=datetime.fromtimestamp(self.clock(), timezone.utc),
        )
        cap = ANSWER_CAPS.get(action, DEFAULT_ANSWER_CAP)
        try:
            response = self.session.request(
                method,
                self.base_url,
                params=query,
                headers=headers,
                timeout=self.timeout,
                stream=True,
            )
            content = read_capped(response, cap)
        except TooLarge as exc:
            # Asking again brings the same answer: this call fails, the others go on.
            raise SchedulerXError(f"{action}: {exc}", retryable=False) from None
        except requests.Timeout:
            raise SchedulerXError(f"{action}: timed out", retryable=True) from None
        except requests.RequestException as exc:
            reason = type(exc).__name__
            raise SchedulerXError(f"{action}: network error ({reason})", retryable=True) from None
        return decode_answer(
            action, response.status_code, response.headers.get("Content-Type", ""), content
        )

    def get_job_instance_list(self, job: JobKey) -> Listing:
        """The job's runs as listed; runs that cannot be read come back as problems."""
        params = {"Namespace": job.namespace, "GroupId": job.group, "JobId": str(job.job_id)}
        return self._listed(params, lambda body: parse_listing(job, body, self.zone))

    def group_instance_list(
        self,
        namespace: str,
        group: str,
        status: int | None,
        window: tuple[int, int] | None,
        page: int,
        size: int,
    ) -> GroupListing:
        """One page of a group's runs in one status, or in every status (None), within
        `window` (epoch ms, inclusive)."""
        params = {
            "Namespace": namespace,
            "GroupId": group,
            "PageNum": str(page),
            "PageSize": str(size),
        }
        if status is not None:
            params["Status"] = str(status)
        if window is not None:
            params["StartTimestamp"], params["EndTimestamp"] = str(window[0]), str(window[1])
        return self._listed(
            params, lambda body: parse_group_listing(namespace, group, body, self.zone)
        )

    def _listed(self, params: Mapping[str, str], parse: Callable[[dict[str, Any]], T]) -> T:
        """GetJobInstanceList's answer as `parse` reads it; an answer it cannot read is an
        error that asking again will not mend."""
        body = self.call("GetJobInstanceList", params)
        try:
            return parse(body)
        except AnswerUnreadable as exc:
            raise SchedulerXError(
                f"GetJobInstanceList: {exc}",
                retryable=False,
                request_id=_text(body.get("RequestId")),
            ) from None

    def get_job_instance(self, job: JobKey, instance_id: int) -> JobInstance | None:
        """One run as SchedulerX has it now; None when its answer holds no readable run."""
        body = self.call(
            "GetJobInstance",
            {
                "Namespace": job.namespace,
                "GroupId": job.group,
                "JobId": str(job.job_id),
                "JobInstanceId": str(instance_id),
            },
        )
        data = body.get("Data")
        detail = data.get("JobInstanceDetail") if isinstance(data, dict) else None
        try:
            listing = parse_listing(job, {"Data": {"JobInstanceDetails": [detail]}}, self.zone)
        except AnswerUnreadable:
            return None
        return next((r for r in listing.instances if r.instance_id == instance_id), None)

    def operate(self, operation: str, job: JobKey, instance_id: int) -> str:
        """Retry, mark as succeeded or stop one run; the answer's RequestId. SchedulerX's
        refusals (Success=false: wrong state, another edition) raise SchedulerXError."""
        action, id_name = OPERATION_CALLS[operation]
        body = self.request(
            WRITE_METHODS[action],
            action,
            {
                "Namespace": job.namespace,
                "GroupId": job.group,
                "JobId": str(job.job_id),
                id_name: str(instance_id),
            },
        )
        return _text(body.get("RequestId"))


def decode_answer(action: str, status: int, content_type: str, content: bytes) -> dict[str, Any]:
    """The body of a successful answer; any other answer raises `SchedulerXError`."""
    try:
        body = json.loads(content, parse_int=decode_int)
    except RecursionError:
        # Not a ValueError: left alone it would escape every handler and end the tick.
        raise SchedulerXError(
            f"{action}: HTTP {status} answer is nested too deeply to read",
            retryable=False,
            status=status,
        ) from None
    except ValueError:
        kind = content_type.split(";")[0].strip() or "unknown type"
        # Gateways answer outages with HTML pages, sometimes with status 200.
        raise SchedulerXError(
            f"{action}: HTTP {status} answer is not JSON ({kind})",
            retryable=True,
            status=status,
        ) from None
    if not isinstance(body, dict):
        raise SchedulerXError(f"{action}: answer is not a JSON object", retryable=True)
    code = _text(body.get("Code"))
    message = _text(body.get("Message"))
    request_id = _text(body.get("RequestId"))
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
            detail=message,
        )
    if body.get("Success") is not True:
        # Business errors (job not in group, no such job) arrive as HTTP 200.
        raise SchedulerXError(
            f"{action}: Success=false, Code {code or '?'}: {message or 'no message'}",
            retryable=False,
            code=code,
            status=status,
            request_id=request_id,
            detail=message,
        )
    return body


def _text(value: Any, limit: int = 500) -> str:
    """An envelope field as text, bounded: a 10 MB or 900-deep Message is one line."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + "..."
    return show(value)
