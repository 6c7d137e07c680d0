"""A loopback SchedulerX OpenAPI server (product schedulerx2, version 2019-04-30, RPC style).

It checks V3 (``ACS3-HMAC-SHA256`` header) and V1 (``Signature`` parameter) signatures the
way Alibaba Cloud's gateway does, enforces the 100 calls/minute/API quota, and serves
``GetJobInstanceList``, ``GetJobInstance``, ``GetJobInfo`` and ``ListJobs`` from jobs and
instances a test scripts with :meth:`FakeSchedulerX.add_job` / :meth:`add_instance`.

Gateway errors (signature, throttling, unknown action) are HTTP 4xx/5xx JSON
``{RequestId, HostId, Code, Message, Recommend}``; business errors are HTTP 200 with
``Success: false`` like the real service, which the SDK does not raise for.
"""

from __future__ import annotations

import hmac
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from tests.fakes.acs_auth import (
    parse_v3_authorization,
    sha256_hex,
    v1_signature,
    v1_string_to_sign,
    v3_canonical_request,
    v3_signature,
    v3_string_to_sign,
)
from tests.fakes.base import (
    Clock,
    FakeServer,
    Fault,
    Request,
    Response,
    SlidingWindow,
    TimeoutThen,
    normalise_filters,
)

API_VERSION = "2019-04-30"
HOST_ID = "schedulerx.aliyuncs.com"
#: Signed requests are accepted within 15 minutes of the server's clock, either way.
SIGNATURE_TTL = 15 * 60
#: InstanceStatus codes after which a run no longer changes (see FACTS.md).
FINISHED_STATUSES = frozenset({4, 5, 6, 9, 11, 12, 99})
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
TimeValue = datetime | float | None


class ApiError(Exception):
    """A gateway-level error: answered with a non-200 status and a JSON error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class BusinessError(Exception):
    """A service-level error: HTTP 200 with ``Success: false``."""

    def __init__(self, message: str, code: int = 500) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _missing(name: str) -> ApiError:
    return ApiError(400, f"Missing{name}", f"{name} is mandatory for this action.")


THROTTLED = (400, "Throttling.User", "Request was denied due to user flow control.")
UNAVAILABLE = (
    503,
    "ServiceUnavailable",
    "The request has failed due to a temporary failure of the server.",
)


@dataclass
class Job:
    namespace: str
    group: str
    job_id: int
    name: str
    status: int = 1  # 1 enabled, 0 disabled
    time_type: int = 1
    time_expression: str = "0 */5 * * * ?"
    max_attempt: int = 0
    description: str = ""
    monitor: dict[str, Any] = field(default_factory=dict)  # overrides of MonitorConfig

    def config(self) -> dict[str, Any]:
        monitor: dict[str, Any] = {
            "FailEnable": True,
            "TimeoutEnable": False,
            "Timeout": 7200,
            "TimeoutKillEnable": False,
            "MissWorkerEnable": False,
            "SendChannel": "ding",
        }
        monitor.update(self.monitor)
        return {
            "JobId": self.job_id,
            "Name": self.name,
            "Description": self.description,
            "Status": self.status,
            "JobType": "java",
            "ExecuteMode": "standalone",
            "ClassName": f"com.example.{self.name}",
            "MaxAttempt": self.max_attempt,
            "AttemptInterval": 30,
            "MaxConcurrency": 1,
            "Parameters": "",
            "TimeConfig": {
                "TimeType": self.time_type,
                "TimeExpression": self.time_expression,
                "Calendar": "",
                "DataOffset": 0,
            },
            "JobMonitorInfo": {"MonitorConfig": monitor, "ContactInfo": []},
        }


@dataclass
class JobInstance:
    instance_id: int
    job_id: int
    status: int
    result: str
    schedule_time: float
    start_time: float | None
    end_time: float | None
    data_time: float
    trigger_type: int
    time_type: int
    work_addr: str
    executor: str
    progress: str | None = None


class _NonceBook:
    """Nonces seen recently. Older ones can be forgotten: their timestamps are stale anyway."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()  # check-and-record must be atomic across handler threads

    def use(self, nonce: str, now: float) -> bool:
        """Record ``nonce``; False if it was already used."""
        with self._lock:
            if len(self._seen) > 10_000:
                horizon = now - 2 * SIGNATURE_TTL
                self._seen = {n: t for n, t in self._seen.items() if t > horizon}
            if nonce in self._seen:
                return False
            self._seen[nonce] = now
            return True


@dataclass(frozen=True)
class _Call:
    """The parts of an RPC request the fake acts on."""

    action: str
    params: dict[str, str]  # query and form body, first value per name
    pairs: list[tuple[str, str]]  # every query and form pair, as V1 signs them
    query_pairs: list[tuple[str, str]]  # query pairs only, as V3 signs them


def _parse_call(request: Request) -> _Call:
    query_pairs = parse_qsl(request.raw_query, keep_blank_values=True)
    body_pairs: list[tuple[str, str]] = []
    if request.header("content-type").startswith("application/x-www-form-urlencoded"):
        body_pairs = parse_qsl(request.body.decode(), keep_blank_values=True)
    pairs = query_pairs + body_pairs
    params: dict[str, str] = {}
    for name, value in pairs:
        params.setdefault(name, value)
    action = request.header("x-acs-action") or params.get("Action", "")
    return _Call(action, params, pairs, query_pairs)


class _PopAuthenticator:
    """Checks one request's credentials and signature; raises :class:`ApiError` if wrong."""

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        security_token: str | None,
        clock: Clock,
        max_skew: float | None,
    ) -> None:
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.security_token = security_token
        self.clock = clock
        self.max_skew = max_skew
        self._nonces = _NonceBook()

    def authenticate(self, request: Request, call: _Call) -> str:
        """Return the signature version used ("v3" or "v1")."""
        if request.header("authorization"):
            self._check_v3(request, call)
            return "v3"
        if "Signature" in call.params:
            self._check_v1(request, call)
            return "v1"
        raise ApiError(400, "MissingSignature", "Signature is mandatory for this action.")

    # -- V3 ----------------------------------------------------------------------------------

    def _check_v3(self, request: Request, call: _Call) -> None:
        auth = parse_v3_authorization(request.header("authorization"))
        if auth is None:
            raise ApiError(
                400,
                "IncompleteSignature",
                "The request signature does not conform to Aliyun standards.",
            )
        signed = set(auth.signed_headers)
        # The gateway insists that host and every x-acs-* header are covered by the signature,
        # otherwise e.g. the STS token or the action could be swapped on a signed request.
        unsigned = [
            name
            for name in request.headers
            if (name == "host" or name.startswith("x-acs-")) and name not in signed
        ]
        if unsigned:
            raise ApiError(
                400,
                "IncompleteSignature",
                f"The request signature does not conform to Aliyun standards. "
                f"Unsigned headers: {';'.join(sorted(unsigned))}",
            )
        for header, name in (
            ("x-acs-action", "Action"),
            ("x-acs-version", "Version"),
            ("x-acs-date", "Timestamp"),
            ("x-acs-signature-nonce", "SignatureNonce"),
        ):
            if not request.header(header):
                raise _missing(name)
        self._check_identity(auth.access_key_id, request.headers.get("x-acs-security-token"))
        canonical = v3_canonical_request(
            method=request.method,
            path=request.path,
            query_pairs=call.query_pairs,
            headers=request.headers,
            signed_headers=auth.signed_headers,
            # Hash what actually arrived, so a tampered body fails like a wrong key does.
            hashed_payload=sha256_hex(request.body),
        )
        string_to_sign = v3_string_to_sign(canonical)
        expected = v3_signature(self.access_key_secret, string_to_sign)
        if not hmac.compare_digest(expected, auth.signature):
            raise _signature_mismatch(string_to_sign)
        if request.header("x-acs-version") != API_VERSION:
            raise ApiError(400, "InvalidVersion", "Specified parameter Version is not valid.")
        self._check_freshness(request.header("x-acs-date"))
        self._check_nonce(request.header("x-acs-signature-nonce"))

    # -- V1 ----------------------------------------------------------------------------------

    def _check_v1(self, request: Request, call: _Call) -> None:
        params = call.params
        for name in ("AccessKeyId", "SignatureNonce", "Timestamp", "Version", "Action"):
            if not params.get(name):
                raise _missing(name)
        if params.get("SignatureMethod", "HMAC-SHA1") != "HMAC-SHA1":
            raise ApiError(
                400, "InvalidSignatureMethod", "Specified signature method is not valid."
            )
        if params.get("SignatureVersion", "1.0") != "1.0":
            raise ApiError(
                400, "InvalidSignatureVersion", "Specified signature version is not valid."
            )
        self._check_identity(params["AccessKeyId"], params.get("SecurityToken"))
        string_to_sign = v1_string_to_sign(request.method, call.pairs)
        expected = v1_signature(self.access_key_secret, string_to_sign)
        if not hmac.compare_digest(expected, params["Signature"]):
            raise _signature_mismatch(string_to_sign)
        if params["Version"] != API_VERSION:
            raise ApiError(400, "InvalidVersion", "Specified parameter Version is not valid.")
        self._check_freshness(params["Timestamp"])
        self._check_nonce(params["SignatureNonce"])

    # -- shared ------------------------------------------------------------------------------

    def _check_identity(self, access_key_id: str, token: str | None) -> None:
        if access_key_id != self.access_key_id:
            raise ApiError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if self.security_token is None:
            if token:
                raise ApiError(
                    400, "InvalidSecurityToken.MalFormed", "Specified SecurityToken is malformed."
                )
            return
        if not token:
            # An STS key is worthless without its token.
            raise ApiError(
                400, "MissingSecurityToken", "SecurityToken is mandatory for this action."
            )
        if not hmac.compare_digest(token, self.security_token):
            raise ApiError(
                400,
                "InvalidSecurityToken.Mismatch",
                "Specified SecurityToken mismatch with the AccessKey.",
            )

    def _check_freshness(self, stamp: str) -> None:
        try:
            signed_at = datetime.strptime(stamp, TIMESTAMP_FORMAT).replace(tzinfo=timezone.utc)
        except ValueError:
            raise ApiError(
                400,
                "InvalidTimeStamp.Format",
                "Specified time stamp or date value is not well formatted.",
            ) from None
        if self.max_skew is not None and abs(signed_at.timestamp() - self.clock()) > self.max_skew:
            raise ApiError(
                400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
            )

    def _check_nonce(self, nonce: str) -> None:
        if not self._nonces.use(nonce, self.clock()):
            raise ApiError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")


def _signature_mismatch(string_to_sign: str) -> ApiError:
    return ApiError(
        400,
        "SignatureDoesNotMatch",
        "Specified signature is not matched with our calculation. "
        f"server string to sign is:{string_to_sign}",
    )


class FakeSchedulerX(FakeServer):
    """Fake SchedulerX OpenAPI endpoint; point the SDK's ``endpoint`` at :attr:`endpoint`."""

    FAULT_KINDS = frozenset({"throttle", "5xx", "timeout", "malformed", "success_false", "html"})
    ACTIONS = ("GetJobInstanceList", "GetJobInstance", "GetJobInfo", "ListJobs")

    def __init__(
        self,
        access_key_id: str = "LTAI5tFakeSchedulerXKey",
        access_key_secret: str = "fake-schedulerx-secret",
        security_token: str | None = None,
        clock: Clock = time.time,
        *,
        rate_limit: int = 100,
        tz: str = "Asia/Shanghai",
        modern_params: bool = False,
        max_skew: float | None = SIGNATURE_TTL,
    ) -> None:
        """
        ``rate_limit``: calls per API per trailing 60 s before ``Throttling.User``.
        ``tz``: zone of the ``yyyy-MM-dd HH:mm:ss`` strings (and of naive datetimes given to
        the scripting API).
        ``modern_params``: honour the newer GetJobInstanceList parameters (Status,
        StartTimestamp/EndTimestamp in ms, PageNum, PageSize). Off by default, as in the
        API page the project started from: "returns only the latest 10 instances".
        ``max_skew``: seconds a signed timestamp may differ from ``clock``; None turns the
        check off for tests whose fake clock runs far from the client's real one.
        """
        super().__init__(clock)
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.security_token = security_token
        self.rate_limit = rate_limit
        self.tz = ZoneInfo(tz)
        self.modern_params = modern_params
        self._auth = _PopAuthenticator(
            access_key_id, access_key_secret, security_token, clock, max_skew
        )
        self._jobs: dict[int, Job] = {}
        self._instances: dict[int, JobInstance] = {}
        self._instance_ids = itertools.count(1_700_000_000_001)
        self._calls: dict[str, SlidingWindow] = {}
        self._handlers: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
            "GetJobInstanceList": self._get_job_instance_list,
            "GetJobInstance": self._get_job_instance,
            "GetJobInfo": self._get_job_info,
            "ListJobs": self._list_jobs,
        }

    # -- scripting API ---------------------------------------------------------------------

    def add_job(
        self,
        namespace: str,
        group: str,
        job_id: int,
        name: str = "",
        *,
        status: int = 1,
        time_type: int = 1,
        time_expression: str = "0 */5 * * * ?",
        max_attempt: int = 0,
        description: str = "",
        monitor: dict[str, Any] | None = None,
    ) -> Job:
        job = Job(
            namespace,
            group,
            job_id,
            name or f"job-{job_id}",
            status,
            time_type,
            time_expression,
            max_attempt,
            description,
            dict(monitor or {}),
        )
        with self._lock:
            self._jobs[job_id] = job
        return job

    def add_instance(
        self,
        job_id: int,
        instance_id: int | None = None,
        status: int = 3,
        result: str = "",
        schedule_time: TimeValue = None,
        start_time: TimeValue = None,
        end_time: TimeValue = None,
        trigger_type: int = 1,
        time_type: int | None = None,
        work_addr: str = "10.0.0.5:16888",
        executor: str = "",
        *,
        data_time: TimeValue = None,
        progress: str | None = None,
    ) -> int:
        """Add a run of ``job_id`` and return its instance id.

        Times are datetimes (naive ones are read in the fake's zone) or epoch seconds.
        Defaults: scheduled and started now (by the fake's clock); a finished status ends
        now, an unfinished one has no EndTime; TimeType is the job's.
        """
        with self._lock:
            job = self._job(job_id)
            now = self.clock()
            scheduled = self._epoch(schedule_time, now)
            ended = self._maybe_epoch(end_time)
            if ended is None and status in FINISHED_STATUSES:
                ended = now
            if instance_id is None:
                instance_id = next(self._instance_ids)
                while instance_id in self._instances:
                    instance_id = next(self._instance_ids)
            self._instances[instance_id] = JobInstance(
                instance_id=instance_id,
                job_id=job_id,
                status=status,
                result=result,
                schedule_time=scheduled,
                start_time=self._epoch(start_time, scheduled),
                end_time=ended,
                data_time=self._epoch(data_time, scheduled),
                trigger_type=trigger_type,
                time_type=job.time_type if time_type is None else time_type,
                work_addr=work_addr,
                executor=executor,
                progress=progress,
            )
            return instance_id

    def set_status(
        self,
        instance_id: int,
        status: int,
        result: str | None = None,
        end_time: TimeValue = None,
    ) -> None:
        """Move a run to ``status``; finishing it stamps EndTime (now unless given)."""
        with self._lock:
            instance = self._instances[instance_id]
            instance.status = status
            if result is not None:
                instance.result = result
            if end_time is not None or status in FINISHED_STATUSES:
                instance.end_time = self._epoch(end_time, self.clock())
            else:
                instance.end_time = None

    def instance(self, instance_id: int) -> JobInstance:
        with self._lock:
            return replace(self._instances[instance_id])

    def remove_instance(self, instance_id: int) -> None:
        with self._lock:
            del self._instances[instance_id]

    # -- quota accounting ------------------------------------------------------------------

    def calls(self, action: str) -> int:
        """Requests received for ``action`` so far, whatever the answer was (refused and
        throttled calls count too, also towards the quota, as the gateway's do)."""
        with self._lock:
            window = self._calls.get(action)
            return window.total() if window else 0

    def max_calls_in_any_minute(self, action: str) -> int:
        with self._lock:
            window = self._calls.get(action)
            return window.max_in_any_window() if window else 0

    # -- faults ----------------------------------------------------------------------------

    def fail_next(
        self,
        fault: str,
        times: int = 1,
        *,
        action: str | None = None,
        job_id: int | None = None,
        seconds: float = 1.0,
        then: TimeoutThen = "drop",
        code: int | str | None = None,
        message: str | None = None,
    ) -> None:
        """Make the next ``times`` matching requests misbehave.

        Faults: "throttle" (400 Throttling.User), "5xx" (503 ServiceUnavailable),
        "timeout" (stall ``seconds`` then ``then``="drop" the connection or "answer"),
        "malformed" (200, truncated JSON), "success_false" (200, Success false with
        ``code``/``message``), "html" (200, text/html error page).
        Filters: ``action`` (e.g. "GetJobInstanceList") and ``job_id``.
        """
        filters = normalise_filters(action=action, job_id=job_id)
        self._queue_fault(
            fault, times, filters, seconds=seconds, then=then, code=code, message=message
        )

    # -- server hooks ----------------------------------------------------------------------

    def _observe(self, request: Request) -> None:
        action = _parse_call(request).action
        if action:
            with self._lock:
                self._calls.setdefault(action, SlidingWindow(60.0)).add(request.received_at)

    def _context(self, request: Request) -> dict[str, str]:
        call = _parse_call(request)
        return {"action": call.action, "job_id": call.params.get("JobId", "")}

    def _fault_response(self, fault: Fault, request: Request) -> Response:
        request_id = _request_id()
        if fault.kind == "throttle":
            return _error_response(request_id, *THROTTLED)
        if fault.kind == "5xx":
            return _error_response(request_id, *UNAVAILABLE)
        if fault.kind == "malformed":
            whole = json.dumps(
                {"RequestId": request_id, "Code": 200, "Success": True, "Message": "", "Data": {}}
            ).encode()
            return Response(200, whole[: len(whole) // 2], _json_headers(request_id))
        if fault.kind == "success_false":
            code = fault.options.get("code")
            return Response.json(
                200,
                {
                    "RequestId": request_id,
                    "Code": 500 if code is None else code,
                    "Success": False,
                    "Message": fault.options.get("message") or "system error, please retry",
                },
                **{"x-acs-request-id": request_id},
            )
        if fault.kind == "html":
            page = (
                "<!DOCTYPE html><html><head><title>405 Not Allowed</title></head>"
                "<body><h1>Sorry, your request has been blocked.</h1></body></html>"
            )
            return Response(200, page.encode(), {"Content-Type": "text/html;charset=utf-8"})
        raise AssertionError(fault.kind)

    def _handle(self, request: Request) -> Response:
        request_id = _request_id()
        call = _parse_call(request)
        try:
            if request.method not in ("GET", "POST"):
                raise ApiError(
                    404,
                    "InvalidAction.NotFound",
                    "Specified api is not found, please check your url and method.",
                )
            self._auth.authenticate(request, call)
            with self._lock:
                window = self._calls.get(call.action)
                if window is not None and window.count(request.received_at) > self.rate_limit:
                    raise ApiError(*THROTTLED)
                handler = self._handlers.get(call.action)
                if handler is None:
                    raise ApiError(
                        404,
                        "InvalidAction.NotFound",
                        "Specified api is not found, please check your url and method.",
                    )
                data = handler(call.params)
        except ApiError as error:
            return _error_response(request_id, error.status, error.code, error.message)
        except BusinessError as error:
            return Response.json(
                200,
                {
                    "RequestId": request_id,
                    "Code": error.code,
                    "Success": False,
                    "Message": error.message,
                },
                verdict="Success=false",
                **{"x-acs-request-id": request_id},
            )
        body = {"RequestId": request_id, "Code": 200, "Success": True, "Message": "", "Data": data}
        return Response.json(200, body, **{"x-acs-request-id": request_id})

    # -- actions (called with the lock held) -----------------------------------------------

    def _get_job_instance_list(self, params: dict[str, str]) -> dict[str, Any]:
        job = self._resolve_job(params)
        runs = [i for i in self._instances.values() if i.job_id == job.job_id]
        runs.sort(key=lambda i: (i.schedule_time, i.instance_id), reverse=True)
        page_size = 10
        offset = 0
        if self.modern_params:
            if params.get("Status"):
                runs = [i for i in runs if i.status == _int_param(params, "Status")]
            if params.get("StartTimestamp"):
                start = _int_param(params, "StartTimestamp") / 1000
                runs = [i for i in runs if i.schedule_time >= start]
            if params.get("EndTimestamp"):
                end = _int_param(params, "EndTimestamp") / 1000
                runs = [i for i in runs if i.schedule_time <= end]
            page_size = _int_param(params, "PageSize", 10)
            offset = (_int_param(params, "PageNum", 1) - 1) * page_size
        return {"JobInstanceDetails": [self._detail(i) for i in runs[offset : offset + page_size]]}

    def _get_job_instance(self, params: dict[str, str]) -> dict[str, Any]:
        job = self._resolve_job(params)
        if not params.get("JobInstanceId"):
            raise _missing("JobInstanceId")
        instance = self._instances.get(_int_param(params, "JobInstanceId"))
        if instance is None or instance.job_id != job.job_id:
            raise BusinessError(f"jobInstanceId={params['JobInstanceId']} is not existed")
        detail = self._detail(instance)
        detail.update({"JobName": job.name, "Parameters": "", "TraceId": uuid.uuid4().hex})
        return {"JobInstanceDetail": detail}

    def _get_job_info(self, params: dict[str, str]) -> dict[str, Any]:
        self._require(params, "RegionId", "Namespace", "GroupId")
        if params.get("JobId"):
            job = self._resolve_job(params)
        elif params.get("JobName"):
            found = [
                j
                for j in self._jobs.values()
                if j.name == params["JobName"]
                and j.namespace == params["Namespace"]
                and j.group == params["GroupId"]
            ]
            if not found:
                raise BusinessError(f"jobName={params['JobName']} is not existed")
            job = found[0]
        else:
            raise _missing("JobId")
        return {"JobConfigInfo": job.config()}

    def _list_jobs(self, params: dict[str, str]) -> dict[str, Any]:
        self._require(params, "RegionId", "Namespace", "GroupId")
        jobs = sorted(
            (
                j
                for j in self._jobs.values()
                if j.namespace == params["Namespace"] and j.group == params["GroupId"]
            ),
            key=lambda j: j.job_id,
        )
        if params.get("JobName"):
            jobs = [j for j in jobs if params["JobName"] in j.name]
        if params.get("Status"):
            jobs = [j for j in jobs if str(j.status) == params["Status"]]
        page = _int_param(params, "PageNum", 1)
        size = _int_param(params, "PageSize", 10)
        chosen = jobs[(page - 1) * size : page * size]
        return {
            "Jobs": [j.config() for j in chosen],
            "Total": len(jobs),
            "PageNumber": page,
            "PageSize": size,
        }

    # -- helpers ---------------------------------------------------------------------------

    def _resolve_job(self, params: dict[str, str]) -> Job:
        self._require(params, "RegionId", "Namespace", "GroupId", "JobId")
        job_id = _int_param(params, "JobId")
        job = self._jobs.get(job_id)
        if job is None or job.namespace != params["Namespace"]:
            raise BusinessError(f"jobId={job_id} is not existed")
        if job.group != params["GroupId"]:
            raise BusinessError(f"jobid: {job_id} not match groupId: {params['GroupId']}")
        return job

    @staticmethod
    def _require(params: dict[str, str], *names: str) -> None:
        for name in names:
            if not params.get(name):
                raise _missing(name)

    def _job(self, job_id: int) -> Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise KeyError(f"add_job({job_id}) first") from None

    def _epoch(self, value: TimeValue, default: float) -> float:
        epoch = self._maybe_epoch(value)
        return default if epoch is None else epoch

    def _maybe_epoch(self, value: TimeValue) -> float | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            aware = value if value.tzinfo else value.replace(tzinfo=self.tz)
            return aware.timestamp()
        return float(value)

    def _format(self, epoch: float) -> str:
        return datetime.fromtimestamp(epoch, self.tz).strftime("%Y-%m-%d %H:%M:%S")

    def _detail(self, i: JobInstance) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "InstanceId": i.instance_id,
            "JobId": i.job_id,
            "Status": i.status,
            "Result": i.result,
            "Progress": i.progress
            if i.progress is not None
            else ("complete" if i.status in FINISHED_STATUSES else ""),
            "ScheduleTime": self._format(i.schedule_time),
            "DataTime": self._format(i.data_time),
            "TimeType": i.time_type,
            "TriggerType": i.trigger_type,
            "WorkAddr": i.work_addr,
            "Executor": i.executor,
        }
        if i.start_time is not None:
            detail["StartTime"] = self._format(i.start_time)
        # The real service leaves EndTime out while a run is in progress.
        if i.end_time is not None:
            detail["EndTime"] = self._format(i.end_time)
        return detail


def _int_param(params: dict[str, str], name: str, default: int | None = None) -> int:
    raw = params.get(name)
    if not raw:
        if default is None:
            raise _missing(name)
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(
            400, "InvalidParameter", f"The specified parameter {name} is not valid."
        ) from None


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


def _json_headers(request_id: str) -> dict[str, str]:
    return {"Content-Type": "application/json;charset=utf-8", "x-acs-request-id": request_id}


def _error_response(request_id: str, status: int, code: str, message: str) -> Response:
    body = {
        "RequestId": request_id,
        "HostId": HOST_ID,
        "Code": code,
        "Message": message,
        "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}&product=schedulerx2",
    }
    return Response.json(status, body, verdict=code, **{"x-acs-request-id": request_id})
