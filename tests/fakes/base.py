"""Shared machinery for the loopback fakes: an HTTP server thread, request log, fault queue.

Each fake subclasses :class:`FakeServer` and implements three hooks:

* ``_context(request)``: the attributes faults can be filtered on (job id, object key, ...);
* ``_fault_response(fault, request)``: what an injected fault looks like on that wire;
* ``_handle(request)``: the real protocol.

The server speaks HTTP/1.1 with keep-alive because the SDKs pool connections; every
response therefore carries a Content-Length.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import parse_qsl, urlsplit

Clock = Callable[[], float]

_F = TypeVar("_F", bound="FakeServer")

#: What a "timeout" fault does once it has slept: close the socket or answer normally.
TimeoutThen = Literal["drop", "answer"]


class ManualClock:
    """A clock tests move by hand, to simulate minutes passing without sleeping."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def set(self, now: float) -> None:
        with self._lock:
            self._now = now


@dataclass(frozen=True)
class Request:
    """One HTTP request as the fake saw it."""

    method: str
    path: str  # without the query string, still percent-encoded
    raw_query: str
    query: dict[str, str]  # first value of each name; blank values kept (signatures cover them)
    headers: dict[str, str]  # lower-case names; repeated headers joined with ","
    body: bytes
    received_at: float  # from the fake's clock

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    verdict: str = "ok"  # short label for the request log: "ok", an error code, "fault:5xx"
    drop: bool = False  # close the connection without answering anything

    @classmethod
    def json(cls, status: int, payload: object, verdict: str = "ok", **headers: str) -> Response:
        body = json.dumps(payload, ensure_ascii=False).encode()
        return cls(
            status,
            body,
            {"Content-Type": "application/json;charset=utf-8", **headers},
            verdict,
        )

    @classmethod
    def dropped(cls, verdict: str) -> Response:
        return cls(0, verdict=verdict, drop=True)


@dataclass(frozen=True)
class RecordedRequest:
    """A request plus the fake's answer, kept in ``fake.requests`` for assertions."""

    method: str
    path: str
    raw_query: str  # as sent, to replay a request exactly
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    received_at: float
    status: int  # 0 when the connection was dropped
    verdict: str
    response_body: bytes = b""

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    @property
    def response_text(self) -> str:
        return self.response_body.decode("utf-8", errors="replace")


@dataclass
class Fault:
    """A queued misbehaviour, consumed by the next requests whose context matches ``filters``."""

    kind: str
    remaining: int
    filters: dict[str, str]
    seconds: float = 1.0  # for "timeout": how long to stall
    then: TimeoutThen = "drop"  # for "timeout": what to do after stalling
    options: dict[str, Any] = field(default_factory=dict)  # fake-specific details

    def matches(self, context: Mapping[str, str]) -> bool:
        return all(context.get(name) == value for name, value in self.filters.items())


class FaultQueue:
    """FIFO of faults; the first one whose filters match a request is consumed by it."""

    def __init__(self) -> None:
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()

    def push(self, fault: Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._faults.append(fault)

    def take(self, context: Mapping[str, str]) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(context):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)


def normalise_filters(**filters: object) -> dict[str, str]:
    """Drop unset filters and compare everything as text (job ids arrive as strings)."""
    return {name: str(value) for name, value in filters.items() if value is not None}


class _Handler(BaseHTTPRequestHandler):
    """Turns raw HTTP into :class:`Request` objects and hands them to the owning fake."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY each response on a
    # kept-alive connection can stall ~40 ms on Nagle + delayed ACK.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet; everything is in ``fake.requests`` instead."""

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # Trailer section ends with an empty line.
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        query: dict[str, str] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            query.setdefault(name, value)
        request = Request(
            method=self.command,
            path=parts.path,
            raw_query=parts.query,
            query=query,
            headers=headers,
            body=self._read_body(),
            received_at=fake.clock(),
        )
        response = fake._dispatch(request)
        if response.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):  # the client may already have given up
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if "Content-Length" not in response.headers:  # HEAD answers state the object's size
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops SYNs under concurrent clients, costing a 1 s retransmit.
    request_queue_size = 128

    def __init__(self, fake: FakeServer) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)


class FakeServer:
    """Base class: a ThreadingHTTPServer on 127.0.0.1:<random port> in a daemon thread."""

    #: Fault kinds this fake understands, checked by :meth:`_queue_fault`.
    FAULT_KINDS: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        self.faults = FaultQueue()
        self._lock = threading.RLock()  # subclasses guard their state with it too
        self._log: list[RecordedRequest] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()  # wakes up handlers stalled by "timeout" faults
        self._refusing: socket.socket | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self: _F) -> _F:
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"{type(self).__name__}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def refuse(self) -> None:
        """Stop serving but keep the port: connecting is refused at once, and no other
        server of the test run can be given the port meanwhile (as after a plain `stop`)."""
        port = self.port
        self.stop()
        holder = socket.socket()
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Bound but not listening: the kernel answers a connection attempt with a reset.
        holder.bind(("127.0.0.1", port))
        self._refusing = holder

    def stop(self) -> None:
        if self._refusing is not None:
            self._refusing.close()
            self._refusing = None
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self: _F) -> _F:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    # -- request log -----------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    # -- faults ----------------------------------------------------------------------------

    def _queue_fault(
        self,
        kind: str,
        times: int,
        filters: dict[str, str],
        *,
        seconds: float = 1.0,
        then: TimeoutThen = "drop",
        **options: Any,
    ) -> None:
        if kind not in self.FAULT_KINDS:
            known = ", ".join(sorted(self.FAULT_KINDS))
            raise ValueError(f"unknown fault {kind!r} for {type(self).__name__}; known: {known}")
        if then not in ("drop", "answer"):
            raise ValueError(f"then must be 'drop' or 'answer', not {then!r}")
        self.faults.push(Fault(kind, times, filters, seconds, then, options))

    # -- dispatch --------------------------------------------------------------------------

    def _dispatch(self, request: Request) -> Response:
        self._observe(request)
        fault = self.faults.take(self._context(request))
        if fault is not None and fault.kind == "timeout":
            if fault.then == "drop":
                # Logged before stalling: the client has usually given up before we wake.
                response = Response.dropped("fault:timeout")
                self._record(request, response)
                # Stall on an Event rather than time.sleep so that stop() never waits for it.
                self._stopping.wait(fault.seconds)
                return response
            self._stopping.wait(fault.seconds)
            response = self._handle(request)
            response.verdict = f"fault:timeout+{response.verdict}"
        elif fault is not None:
            response = self._fault_response(fault, request)
            response.verdict = f"fault:{fault.kind}"
        else:
            try:
                response = self._handle(request)
            except Exception as exc:  # a bug in the fake must not look like a network error
                response = self._internal_error(exc)
        self._record(request, response)
        return response

    def _record(self, request: Request, response: Response) -> None:
        entry = RecordedRequest(
            method=request.method,
            path=request.path,
            raw_query=request.raw_query,
            query=dict(request.query),
            headers=dict(request.headers),
            body=request.body,
            received_at=request.received_at,
            status=response.status,
            verdict=response.verdict,
            response_body=response.body,
        )
        with self._lock:
            self._log.append(entry)

    def _internal_error(self, exc: Exception) -> Response:
        return Response(
            500,
            f"fake server bug: {exc!r}".encode(),
            {"Content-Type": "text/plain"},
            verdict=f"bug:{exc!r}",
        )

    # -- hooks for subclasses ---------------------------------------------------------------

    def _observe(self, request: Request) -> None:
        """Called for every request, faulted or not (e.g. to count calls per API)."""

    def _context(self, request: Request) -> dict[str, str]:
        return {}

    def _fault_response(self, fault: Fault, request: Request) -> Response:
        raise NotImplementedError

    def _handle(self, request: Request) -> Response:
        raise NotImplementedError


class SlidingWindow:
    """Timestamps of events, to count them over the trailing ``width`` seconds."""

    def __init__(self, width: float) -> None:
        self.width = width
        self._times: list[float] = []

    def add(self, at: float) -> None:
        self._times.append(at)

    def count(self, now: float) -> int:
        """Events in (now - width, now]."""
        return sum(1 for t in self._times if now - self.width < t <= now)

    def total(self) -> int:
        return len(self._times)

    def max_in_any_window(self) -> int:
        """The largest number of events that ever fell within one window of ``width``."""
        return max_in_window(self._times, self.width)


def max_in_window(times: Iterable[float], width: float) -> int:
    ordered = sorted(times)
    best = 0
    start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= width:
            start += 1
        best = max(best, end - start + 1)
    return best
