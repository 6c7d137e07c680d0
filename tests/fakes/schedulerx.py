"""A loopback SchedulerX OpenAPI server (product schedulerx2, version 2019-04-30, RPC style).

It checks V3 (``ACS3-HMAC-SHA256`` header) and V1 (``Signature`` parameter) signatures the
way Alibaba Cloud's gateway does, enforces the 100 calls/minute/API quota, and serves
``GetJobInstanceList``, ``GetJobInstance``, ``GetJobInfo``, ``ListJobs`` and ``GetLog`` from
jobs, instances and log lines a test scripts with :meth:`FakeSchedulerX.add_job` /
:meth:`add_instance` / :meth:`add_log`; and ``ListWorkFlows``, ``ListWorkflowInstance`` and
``GetWorkflowInstance`` from workflows scripted with ``sx.workflows`` (tests/fakes/workflows.py).

It also takes the three writes on a run (``RetryJobInstance``, ``SetJobInstanceSuccess``:
``JobInstanceId``, by POST; ``StopInstance``: ``InstanceId``, by GET; the methods the official
SDK uses, see ``WRITE_METHODS``), with the same signature checks. The API
pages say retry takes a failed or succeeded run and both need the Professional edition, and
that stop ends a running run; the refusal texts and what a stopped run's status becomes are
not documented, so the fake's are its own (see :meth:`_operate`). A retried run keeps its
instance id and runs again (Status 3, no EndTime), as the console's rerun does; the test
then finishes it with :meth:`set_status`. ``writes`` plays the deployment: "ok", "basic" (an
edition without retry and mark-success) or "forbidden" (a role without the write policy).

``GetJobInstanceList`` also answers queries without ``JobId`` (a whole group's runs, filtered
by ``Status`` and a window, paged), and switches play what the documentation leaves open:
which instance time the window filters on, the order, the largest page size, an older server
that refuses or misreads such queries, and per-request latency (see :meth:`configure`).

Gateway errors (signature, throttling, unknown action) are HTTP 4xx/5xx JSON
``{RequestId, HostId, Code, Message, Recommend}``; business errors are HTTP 200 with
``Success: false`` like the real service, which the SDK does not raise for.
"""

from __future__ import annotations

import heapq
import hmac
import itertools
import json
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, ClassVar, Literal, get_args
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
from tests.fakes.workflows import Workflows

API_VERSION = "2019-04-30"
HOST_ID = "schedulerx.aliyuncs.com"
#: Signed requests are accepted within 15 minutes of the server's clock, either way.
SIGNATURE_TTL = 15 * 60
#: InstanceStatus codes after which a run no longer changes (see FACTS.md).
FINISHED_STATUSES = frozenset({4, 5, 6, 9, 11, 12, 99})
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
TimeValue = datetime | float | None
#: How a server older than the job-less GetJobInstanceList answers a query without JobId.
#: "missing_param": the gateway's 400 MissingJobId (JobId still declared required);
#: "refuse": HTTP 200, Success false; "ignore_filters": the group's 10 newest runs whatever
#: Status, window and paging asked for; "empty": Success true and no runs at all.
LegacyMode = Literal["missing_param", "refuse", "ignore_filters", "empty"]
#: The instance time StartTimestamp/EndTimestamp filter on. Runs without it never match.
WindowField = Literal["schedule", "start", "end"]
#: What a PageSize over the maximum gets: silently the maximum, or 400 InvalidParameter.
Oversize = Literal["clamp", "refuse"]
#: "sleep": the handler waits in real time (the injected clock does not move);
#: "account": no waiting, each request's latency is only written to the latency ledger.
LatencyMode = Literal["sleep", "account"]
ORDER_FIELDS = ("schedule", "start", "end", "id")
LEGACY_MESSAGE = "jobId is null, please check your parameters"
#: How GetLog answers (see :meth:`FakeSchedulerX.configure`).
LogMode = Literal["ok", "slow", "fail", "unsupported"]
#: How ListJobs pages: "ok" as documented; "ignore" answers the first page whatever PageNum
#: asks, with the Total; "ignore_no_total" the same without Total, as a misbehaving server
#: (or a gateway in front of one) might.
JobsPaging = Literal["ok", "ignore", "ignore_no_total"]
#: GetLog's Line is documented as "at most 200".
MAX_LOG_LINES = 200
#: What a namespace without GetLog answers. Not documented: the API page says only that
#: GetLog is for the Professional edition; this wording is the fake's guess, made to look like
#: SchedulerX's other business errors (HTTP 200, Success false).
UNSUPPORTED_LOG_MESSAGE = "log query is only supported by the professional edition"
#: Turns the answer body the fake would send into the raw bytes (or text) it sends instead.
AnswerEdit = Callable[[dict[str, Any]], str | bytes]


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


@dataclass(slots=True)
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
    #: JobMonitorInfo.ContactInfo entries: UserName, UserPhone, UserMail, Ding.
    contacts: list[dict[str, str]] = field(default_factory=list)
    calendar: str = ""
    data_offset: int = 0

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
                "Calendar": self.calendar,
                "DataOffset": self.data_offset,
            },
            "JobMonitorInfo": {
                "MonitorConfig": monitor,
                "ContactInfo": [dict(c) for c in self.contacts],
            },
        }


@dataclass(slots=True)
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


@dataclass(frozen=True)
class LatencyEntry:
    """One request's simulated server latency, by the fake's clock."""

    received_at: float
    action: str
    seconds: float


def makespan(latencies: list[float], lanes: int) -> float:
    """Seconds the calls take on ``lanes`` parallel connections, each call started on the
    first free lane in the order given.

    A lower bound on a client's wall time when its calls do not wait for each other; calls
    that do (page 2 after page 1) take ``sum(latencies)`` at worst.
    """
    if lanes < 1:
        raise ValueError("lanes must be >= 1")
    free = [0.0] * min(lanes, max(len(latencies), 1))
    for seconds in latencies:
        heapq.heappush(free, heapq.heappop(free) + seconds)
    return max(free)


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
    ACTIONS = ("GetJobInstanceList", "GetJobInstance", "GetJobInfo", "ListJobs", "GetLog")
    WRITES = ("RetryJobInstance", "SetJobInstanceSuccess", "StopInstance")
    # The HTTP method each write takes, as the official SDK sends it (alibabacloud_
    # schedulerx220190430 2.2.3, client.py: `Params(method=...)`, the parameters in the
    # query). A write sent with another method is refused; the reads take GET and POST.
    WRITE_METHODS: ClassVar[dict[str, str]] = {
        "RetryJobInstance": "POST",
        "SetJobInstanceSuccess": "POST",
        "StopInstance": "GET",
    }

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
        legacy: LegacyMode | None = None,
        legacy_message: str = LEGACY_MESSAGE,
        window_field: WindowField = "schedule",
        order: str = "schedule_desc",
        max_page_size: int = 100,
        oversize: Oversize = "clamp",
        latency: float | Callable[[str], float] = 0.0,
        latency_mode: LatencyMode = "sleep",
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
        The other switches are described at :meth:`configure`.
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
        # Indexes, so that a group query over 20,000 jobs does not scan every run.
        self._group_jobs: dict[tuple[str, str], set[int]] = {}
        self._job_runs: dict[int, dict[int, JobInstance]] = {}
        self._latency_log: list[LatencyEntry] = []
        self.legacy: LegacyMode | None = None
        self.legacy_message = legacy_message
        self.window_field: WindowField = "schedule"
        self.order = "schedule_desc"
        self.max_page_size = 100
        self.oversize: Oversize = "clamp"
        self.latency: float | Callable[[str], float] = 0.0
        self.latency_mode: LatencyMode = "sleep"
        self.log_mode: LogMode = "ok"
        self.jobs_paging: JobsPaging = "ok"
        self.log_delay = 5.0
        # Each run's log lines, oldest first, as a worker wrote them.
        self._logs: dict[int, list[str]] = {}
        self.configure(
            legacy=legacy,
            window_field=window_field,
            order=order,
            max_page_size=max_page_size,
            oversize=oversize,
            latency=latency,
            latency_mode=latency_mode,
        )
        self._instance_ids = itertools.count(1_700_000_000_001)
        self._calls: dict[str, SlidingWindow] = {}
        self._rewrites: dict[str, AnswerEdit] = {}
        self._handlers: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
            "GetJobInstanceList": self._get_job_instance_list,
            "GetJobInstance": self._get_job_instance,
            "GetJobInfo": self._get_job_info,
            "ListJobs": self._list_jobs,
            "GetLog": self._get_log,
            "RetryJobInstance": lambda p: self._operate("RetryJobInstance", p),
            "SetJobInstanceSuccess": lambda p: self._operate("SetJobInstanceSuccess", p),
            "StopInstance": lambda p: self._operate("StopInstance", p),
        }
        self.writes = "ok"
        # Every write that changed a run: (action, instance id), in order.
        self.operations: list[tuple[str, int]] = []
        # Workflows (tests/fakes/workflows.py): scripted with `sx.workflows.add` and `.run`.
        self.workflows = Workflows(self)
        self._handlers.update(self.workflows.handlers())

    # -- switches --------------------------------------------------------------------------

    def configure(
        self,
        *,
        legacy: LegacyMode | Literal["keep"] | None = "keep",
        window_field: WindowField | None = None,
        order: str | None = None,
        max_page_size: int | None = None,
        oversize: Oversize | None = None,
        latency: float | Callable[[str], float] | None = None,
        latency_mode: LatencyMode | None = None,
        log_mode: LogMode | None = None,
        log_delay: float | None = None,
        jobs_paging: JobsPaging | None = None,
    ) -> None:
        """Change how the server answers; arguments left out keep their value.

        ``legacy``: how a GetJobInstanceList *without* JobId is answered: None, the current
        API (filters and paging honoured, as ``modern_params`` does for one job), or one of
        the older servers of :data:`LegacyMode`. Queries with a JobId are not affected.
        ``window_field``: which instance time StartTimestamp/EndTimestamp (ms, inclusive)
        filter on; runs without that time (not started, not ended) never match a window.
        ``order``: ``<schedule|start|end|id>_<asc|desc>``; a run without the time sorts as
        the newest; ties go by instance id in the same direction. GetJobInstanceList
        answers carry no Total, as in the SDK's response model: a short page is the end.
        ``max_page_size`` and ``oversize``: the largest PageSize (GetJobInstanceList and
        ListJobs) and what a larger one gets: "clamp" (silently the maximum) or "refuse"
        (400 InvalidParameter).
        ``latency``: seconds per request, or a function of the action; ``latency_mode``:
        "sleep" waits that long in real time before answering (the injected clock does not
        move), "account" does not wait and only records it in :meth:`latency_ledger`, for a
        benchmark to add up with :func:`makespan`. Both modes record it.
        ``log_mode``: how GetLog answers: "ok" (the run's lines, newest first unless
        ``Reverse=false``, at most ``Line``), "slow" (the same after ``log_delay`` seconds of
        real time), "fail" (HTTP 500 InternalError) or "unsupported" (HTTP 200, Success false,
        :data:`UNSUPPORTED_LOG_MESSAGE`: a namespace of the Basic edition, as far as anyone
        can tell without the documentation saying).
        ``jobs_paging``: how ListJobs honours PageNum (:data:`JobsPaging`).
        """
        if legacy != "keep":
            if legacy is not None and legacy not in get_args(LegacyMode):
                raise ValueError(f"legacy must be None or one of {get_args(LegacyMode)}")
            self.legacy = legacy
        if window_field is not None:
            if window_field not in get_args(WindowField):
                raise ValueError(f"window_field must be one of {get_args(WindowField)}")
            self.window_field = window_field
        if order is not None:
            _order_key(order)  # validates
            self.order = order
        if max_page_size is not None:
            if max_page_size < 1:
                raise ValueError("max_page_size must be >= 1")
            self.max_page_size = max_page_size
        if oversize is not None:
            if oversize not in get_args(Oversize):
                raise ValueError(f"oversize must be one of {get_args(Oversize)}")
            self.oversize = oversize
        if latency is not None:
            self.latency = latency
        if latency_mode is not None:
            if latency_mode not in get_args(LatencyMode):
                raise ValueError(f"latency_mode must be one of {get_args(LatencyMode)}")
            self.latency_mode = latency_mode
        if log_mode is not None:
            if log_mode not in get_args(LogMode):
                raise ValueError(f"log_mode must be one of {get_args(LogMode)}")
            self.log_mode = log_mode
        if log_delay is not None:
            self.log_delay = log_delay
        if jobs_paging is not None:
            if jobs_paging not in get_args(JobsPaging):
                raise ValueError(f"jobs_paging must be one of {get_args(JobsPaging)}")
            self.jobs_paging = jobs_paging

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
        contacts: list[dict[str, str]] | None = None,
        calendar: str = "",
        data_offset: int = 0,
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
            [dict(c) for c in contacts or []],
            calendar,
            data_offset,
        )
        with self._lock:
            old = self._jobs.get(job_id)
            if old is not None:
                self._group_jobs[(old.namespace, old.group)].discard(job_id)
            self._jobs[job_id] = job
            self._group_jobs.setdefault((namespace, group), set()).add(job_id)
        return job

    def add_group(self, namespace: str, group: str) -> None:
        """A group with no jobs yet; a group is also created by its first :meth:`add_job`."""
        with self._lock:
            self._group_jobs.setdefault((namespace, group), set())

    def jobs(self, namespace: str, group: str) -> list[Job]:
        """The jobs of one group, by job id."""
        with self._lock:
            ids = sorted(self._group_jobs.get((namespace, group), ()))
            return [self._jobs[i] for i in ids]

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
        started: bool = True,
    ) -> int:
        """Add a run of ``job_id`` and return its instance id.

        Times are datetimes (naive ones are read in the fake's zone) or epoch seconds.
        Defaults: scheduled and started now (by the fake's clock); a finished status ends
        now, an unfinished one has no EndTime; TimeType is the job's. ``started=False``
        leaves StartTime out (a run rejected or still waiting).
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
            elif instance_id in self._instances:
                self._forget(instance_id)
            instance = self._instances[instance_id] = JobInstance(
                instance_id=instance_id,
                job_id=job_id,
                status=status,
                result=result,
                schedule_time=scheduled,
                start_time=self._epoch(start_time, scheduled) if started else None,
                end_time=ended,
                data_time=self._epoch(data_time, scheduled),
                trigger_type=trigger_type,
                time_type=job.time_type if time_type is None else time_type,
                work_addr=work_addr,
                executor=executor,
                progress=progress,
            )
            self._job_runs.setdefault(job_id, {})[instance_id] = instance
            return instance_id

    def add_log(self, instance_id: int, *lines: str) -> None:
        """Lines the run's worker logged, oldest first (added to any it had)."""
        with self._lock:
            if instance_id not in self._instances:
                raise KeyError(f"add_instance({instance_id}) first")
            self._logs.setdefault(instance_id, []).extend(lines)

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
            self._forget(instance_id)

    def forget_instances(self, older_than: float, keep_latest: int = 10) -> int:
        """Drop finished runs scheduled before ``older_than``, keeping each job's
        ``keep_latest`` newest; return how many were dropped. SchedulerX keeps history for
        a limited time too; a long simulation calls this to stay small."""
        dropped = 0
        with self._lock:
            for runs in self._job_runs.values():
                if len(runs) <= keep_latest:
                    continue
                newest = sorted(runs.values(), key=_newest_first)
                for run in newest[keep_latest:]:
                    if run.schedule_time < older_than and run.status in FINISHED_STATUSES:
                        self._forget(run.instance_id)
                        dropped += 1
        return dropped

    def instances(self, job_id: int | None = None) -> list[JobInstance]:
        """Copies of the runs kept (of one job, or all), by instance id."""
        with self._lock:
            if job_id is None:
                chosen = list(self._instances.values())
            else:
                chosen = list(self._job_runs.get(job_id, {}).values())
            return sorted((replace(i) for i in chosen), key=lambda i: i.instance_id)

    def instance_count(self) -> int:
        with self._lock:
            return len(self._instances)

    def _forget(self, instance_id: int) -> None:
        instance = self._instances.pop(instance_id)
        runs = self._job_runs.get(instance.job_id)
        if runs is not None:
            runs.pop(instance_id, None)

    def rewrite_answers(self, job_id: int, edit: AnswerEdit | None) -> None:
        """Send ``job_id``'s GetJobInstanceList answers as ``edit`` writes them; None stops.

        ``edit`` gets the body the fake would have sent and returns the raw text to send, so a
        test can serve what no JSON encoder writes: ``1e400``, ``Infinity``, 100,000 nested
        ``[``, one run listed twice, ``Data`` as a list. Signatures and the quota still apply.
        """
        with self._lock:
            if edit is None:
                self._rewrites.pop(str(job_id), None)
            else:
                self._rewrites[str(job_id)] = edit

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

    def latency_ledger(self, since: float | None = None) -> list[LatencyEntry]:
        """The simulated latency of every request received at or after ``since``."""
        with self._lock:
            return [e for e in self._latency_log if since is None or e.received_at >= since]

    def clear_latency_ledger(self) -> None:
        with self._lock:
            self._latency_log.clear()

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
        latency = self.latency(action) if callable(self.latency) else self.latency
        if action == "GetLog" and self.log_mode == "slow":
            latency = max(latency, self.log_delay)
        if latency > 0:
            with self._lock:
                self._latency_log.append(LatencyEntry(request.received_at, action, latency))
            if self.latency_mode == "sleep":
                # Before the answer is computed, outside the lock, and cut short by stop().
                self._stopping.wait(latency)

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
            wanted = self.WRITE_METHODS.get(call.action)
            if wanted is not None and request.method != wanted:
                # The gateway's answer to a method an API does not take is not documented;
                # this one is the fake's own.
                raise ApiError(
                    400,
                    "UnsupportedHTTPMethod",
                    f"{call.action} takes {wanted}, not {request.method}.",
                )
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
                edit = None
                if call.action == "GetJobInstanceList":
                    edit = self._rewrites.get(call.params.get("JobId", ""))
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
        if edit is not None:
            raw = edit(body)
            payload = raw.encode() if isinstance(raw, str) else raw
            return Response(200, payload, _json_headers(request_id), verdict="rewritten")
        return Response.json(200, body, **{"x-acs-request-id": request_id})

    # -- actions (called with the lock held) -----------------------------------------------

    def _get_job_instance_list(self, params: dict[str, str]) -> dict[str, Any]:
        if not params.get("JobId"):
            return self._group_instance_list(params)
        job = self._resolve_job(params)
        runs = list(self._job_runs.get(job.job_id, {}).values())
        if self.modern_params:
            return {"JobInstanceDetails": self._filtered_page(runs, params)}
        runs.sort(key=_newest_first)
        return {"JobInstanceDetails": [self._detail(i) for i in runs[:10]]}

    def _group_instance_list(self, params: dict[str, str]) -> dict[str, Any]:
        self._require(params, "RegionId", "Namespace", "GroupId")
        if self.legacy == "missing_param":
            raise _missing("JobId")
        if self.legacy == "refuse":
            raise BusinessError(self.legacy_message)
        if self.legacy == "empty":
            return {"JobInstanceDetails": []}
        runs = [
            run
            for job_id in self._group_jobs.get((params["Namespace"], params["GroupId"]), ())
            for run in self._job_runs.get(job_id, {}).values()
        ]
        if self.legacy == "ignore_filters":
            runs.sort(key=_newest_first)
            return {"JobInstanceDetails": [self._detail(i) for i in runs[:10]]}
        return {"JobInstanceDetails": self._filtered_page(runs, params)}

    def _filtered_page(self, runs: list[JobInstance], params: dict[str, str]) -> list[Any]:
        if params.get("Status"):
            status = _int_param(params, "Status")
            runs = [i for i in runs if i.status == status]
        start = _int_param(params, "StartTimestamp", -1)
        end = _int_param(params, "EndTimestamp", -1)
        if start >= 0 or end >= 0:
            low = start / 1000 if start >= 0 else -math.inf
            high = end / 1000 if end >= 0 else math.inf
            attribute = f"{self.window_field}_time"
            runs = [
                i for i in runs if (t := getattr(i, attribute)) is not None and low <= t <= high
            ]
        key, newest_first = _order_key(self.order)
        runs.sort(key=key, reverse=newest_first)
        number, size = self._page(params, default_size=10)
        chosen = runs[(number - 1) * size : number * size]
        return [self._detail(i) for i in chosen]

    def _page(self, params: dict[str, str], default_size: int) -> tuple[int, int]:
        number = _int_param(params, "PageNum", 1)
        size = _int_param(params, "PageSize", default_size)
        if number < 1:
            raise _invalid("PageNum")
        if size < 1 or (size > self.max_page_size and self.oversize == "refuse"):
            raise _invalid("PageSize")
        return number, min(size, self.max_page_size)

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

    def _operate(self, action: str, params: dict[str, str]) -> dict[str, Any]:
        if self.writes == "forbidden":
            raise ApiError(
                403,
                "Forbidden.RAM",
                f"User not authorized to operate on the specified resource ({action}).",
            )
        job = self._resolve_job(params)
        id_name = "InstanceId" if action == "StopInstance" else "JobInstanceId"
        if not params.get(id_name):
            raise _missing(id_name)
        instance = self._instances.get(_int_param(params, id_name))
        if instance is None or instance.job_id != job.job_id:
            raise BusinessError(f"jobInstanceId={params[id_name]} is not existed")
        now = self.clock()
        if action == "StopInstance":
            if instance.status != 3:
                raise BusinessError(f"instance={instance.instance_id} is not running, cannot stop")
            instance.status, instance.end_time = 5, now
            instance.result = "stopped by the user"
        else:
            if self.writes == "basic":
                raise BusinessError("only the professional edition supports this operation")
            allowed = (4, 5) if action == "RetryJobInstance" else (5,)
            if instance.status not in allowed:
                raise BusinessError(
                    f"instance={instance.instance_id} status={instance.status}, "
                    f"cannot {'retry' if action == 'RetryJobInstance' else 'set success'}"
                )
            if action == "RetryJobInstance":
                instance.status, instance.start_time, instance.end_time = 3, now, None
                instance.result, instance.trigger_type = "", 4
            else:
                instance.status, instance.end_time = 4, now
        self.operations.append((action, instance.instance_id))
        return {}

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

    def _get_log(self, params: dict[str, str]) -> dict[str, Any]:
        """GetLog: Namespace and GroupId required; JobId, JobInstanceId, Keyword, Line (at most
        200), Offset and Reverse (default true: newest first) as the SDK's request model has
        them. StartTimestamp/EndTimestamp are accepted and not applied: lines carry no time
        the fake knows."""
        self._require(params, "RegionId", "Namespace", "GroupId")
        if self.log_mode == "fail":
            raise ApiError(
                500,
                "InternalError",
                "The request processing has failed due to some unknown error.",
            )
        if self.log_mode == "unsupported":
            raise BusinessError(UNSUPPORTED_LOG_MESSAGE, code=403)
        for name in ("StartTimestamp", "EndTimestamp"):
            if params.get(name):
                _int_param(params, name)
        line = _int_param(params, "Line", 100)
        offset = _int_param(params, "Offset", 0)
        if not 1 <= line <= MAX_LOG_LINES:
            raise _invalid("Line")
        if offset < 0:
            raise _invalid("Offset")
        runs: list[int]
        if params.get("JobInstanceId"):
            instance = self._instances.get(_int_param(params, "JobInstanceId"))
            if instance is None:
                raise BusinessError(f"jobInstanceId={params['JobInstanceId']} is not existed")
            if params.get("JobId") and instance.job_id != _int_param(params, "JobId"):
                raise BusinessError(f"jobInstanceId={instance.instance_id} not match jobId")
            runs = [instance.instance_id]
        elif params.get("JobId"):
            runs = sorted(self._job_runs.get(self._resolve_job(params).job_id, {}))
        else:
            raise _missing("JobId")
        lines = [text for run in runs for text in self._logs.get(run, [])]
        if params.get("Keyword"):
            lines = [text for text in lines if params["Keyword"] in text]
        if params.get("Reverse", "true").lower() != "false":
            lines.reverse()
        return {"Logs": lines[offset : offset + line]}

    def _list_jobs(self, params: dict[str, str]) -> dict[str, Any]:
        self._require(params, "RegionId", "Namespace", "GroupId")
        group = (params["Namespace"], params["GroupId"])
        if group not in self._group_jobs:
            # SchedulerX answers a namespace or group it does not know with an error; the
            # wording here is the fake's.
            raise BusinessError(f"groupId={group[1]} is not existed in namespace={group[0]}")
        jobs = [self._jobs[i] for i in sorted(self._group_jobs[group])]
        if params.get("JobName"):
            jobs = [j for j in jobs if params["JobName"] in j.name]
        if params.get("Status"):
            jobs = [j for j in jobs if str(j.status) == params["Status"]]
        page, size = self._page(params, default_size=10)
        if self.jobs_paging != "ok":
            page = 1
        chosen = jobs[(page - 1) * size : page * size]
        answer: dict[str, Any] = {
            "Jobs": [j.config() for j in chosen],
            "Total": len(jobs),
            "PageNumber": page,
            "PageSize": size,
        }
        if self.jobs_paging == "ignore_no_total":
            del answer["Total"]
        return answer

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


def _invalid(name: str) -> ApiError:
    return ApiError(400, "InvalidParameter", f"The specified parameter {name} is not valid.")


def _newest_first(run: JobInstance) -> tuple[float, int]:
    """Sort key of the older answers: latest schedule time first, then latest id."""
    return (-run.schedule_time, -run.instance_id)


def _order_key(order: str) -> tuple[Callable[[JobInstance], tuple[float, int]], bool]:
    """A sort key and "reverse" for ``<field>_<asc|desc>``."""
    name, _, direction = order.rpartition("_")
    if name not in ORDER_FIELDS or direction not in ("asc", "desc"):
        raise ValueError(f"order must be <{'|'.join(ORDER_FIELDS)}>_<asc|desc>, not {order!r}")
    if name == "id":
        return (lambda run: (0.0, run.instance_id)), direction == "desc"
    attribute = f"{name}_time"

    def key(run: JobInstance) -> tuple[float, int]:
        value: float | None = getattr(run, attribute)
        return (math.inf if value is None else value, run.instance_id)

    return key, direction == "desc"


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
