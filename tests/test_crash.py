"""Crash at any step: SIGKILL the real FC handler mid-tick, recover, check the guarantee.

Each case runs ``index.handler`` in a subprocess (``tests/crash_runner.py``) against the
loopback SchedulerX, OSS and DingTalk servers:

1. a warm-up tick (a committed state, nothing failing yet);
2. the tick under test, after three watched jobs failed or were rejected (three alerts,
   three messages), SIGKILLed at one step by the loopback server the step talks to;
3. recovery ticks once the dead tick's lease has expired (the function timeout, time
   moved forward rather than waited for), until nothing is pending.

The kill points:

1. after fetching: the SchedulerX server has written its answer to the tick's last
   ``GetJobInstanceList``;
2. after claiming: the OSS server stored ``state.json.lease.<N>``, before answering;
3. while posting to DingTalk: message k received, not accepted;
4. after DingTalk accepted message k, before answering (so before the state write);
5. during the state write: the OSS PUT of ``state.json`` that follows the delivery
   received, not stored.

From the kill on, the servers let nothing the dying process sends take effect.

Two tests read each case's outcome: every alert is delivered and at most once more, a
duplicate only of a message DingTalk accepted before the kill; and (stricter, the
README's "instant") only the message DingTalk had just accepted is announced again.
``CRASH_MATRIX`` collects one row per case (``pytest -s`` prints it).
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import yaml

from schedulerx_alert.core.model import InstanceStatus
from schedulerx_alert.core.state import State, load_state
from tests.fakes.base import FakeServer, Request, Response, _Handler
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.oss import FakeOss
from tests.fakes.schedulerx import FakeSchedulerX
from tests.world import AK, GROUP, NS, ROBOT, ROBOT_SECRET, SK, STS

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "alert-bucket"
STATE_KEY = "schedulerx-alert/state.json"
TIMEOUT = 60  # context.function.timeout: a dead tick's lease expires after it
JOBS = (92583, 92584, 92585, 92586)
# What goes wrong before the killed tick: three alerts, one message each, in this order.
FAILING = (
    (92583, InstanceStatus.FAILED, "java.lang.IllegalStateException: disk full"),
    (92584, InstanceStatus.REJECTED, "no worker available"),
    (92585, InstanceStatus.FAILED, "exit code 137"),
)
MAX_RECOVERY_TICKS = 3
INSTANCE_ID = re.compile(r"(?<!\d)\d{13}(?!\d)")


class Point(enum.IntEnum):
    FETCHED = 1
    CLAIMED = 2
    POSTING = 3
    ACCEPTED = 4
    WRITING = 5


@dataclass(frozen=True)
class Case:
    point: Point
    # For POSTING and ACCEPTED: which DingTalk POST of the killed tick (1 = the first).
    message: int = 1

    @property
    def id(self) -> str:
        name = f"{int(self.point)}-{self.point.name.lower()}"
        if self.point in (Point.POSTING, Point.ACCEPTED):
            name += f"-msg{self.message}"
        return name

    @property
    def step(self) -> str:
        return {
            Point.FETCHED: "after fetching",
            Point.CLAIMED: "after claiming",
            Point.POSTING: f"while posting msg {self.message}",
            Point.ACCEPTED: f"after msg {self.message} accepted, before state write",
            Point.WRITING: "during the state write",
        }[self.point]


CASES = (
    Case(Point.FETCHED),
    Case(Point.CLAIMED),
    Case(Point.POSTING, 1),
    Case(Point.POSTING, 2),  # mid-delivery: message 1 out, messages 2 and 3 not
    Case(Point.ACCEPTED, 1),
    Case(Point.ACCEPTED, 2),
    Case(Point.WRITING),
)


# -- the kill switch ----------------------------------------------------------------------


class Killer:
    """SIGKILLs the runner at one step of one tick.

    Once fired, every request reaching any of the servers is dropped unanswered and
    without effect: whatever the dying process still sends cannot count.
    """

    def __init__(self, fetches: int, messages: int) -> None:
        self.fetches = fetches  # GetJobInstanceList calls in the tick
        self.messages = messages  # DingTalk messages the tick sends
        self.case: Case | None = None
        self.where = ""
        self.fired = threading.Event()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._attached = threading.Event()
        self._killed = False
        self._counts: Counter[str] = Counter()

    def arm(self, case: Case) -> None:
        with self._lock:
            self.case = case
            self.where = ""
            self.fired.clear()
            self._killed = False
            self._counts.clear()

    def attach(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self._attached.set()

    def disarm(self) -> None:
        with self._lock:
            self.case = None
            self.fired.clear()
            self._proc = None
            self._attached.clear()

    def at(self, point: Point) -> bool:
        """Armed for ``point`` and not fired yet."""
        case = self.case
        return case is not None and case.point is point and not self.fired.is_set()

    def count(self, what: str) -> int:
        with self._lock:
            self._counts[what] += 1
            return self._counts[what]

    def counted(self, what: str) -> int:
        with self._lock:
            return self._counts[what]

    def fire(self, where: str) -> None:
        """From now on nothing the process sends takes effect."""
        with self._lock:
            if not self.fired.is_set():
                self.where = where
                self.fired.set()

    def kill(self) -> None:
        self.fired.set()
        if not self._attached.wait(10):
            raise RuntimeError("no runner process to kill")
        proc = self._proc
        assert proc is not None
        with self._lock:
            if not self._killed:
                self._killed = True
                os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def blocked(self) -> Response | None:
        if not self.fired.is_set():
            return None
        self.kill()
        return Response.dropped("after the kill")


# -- servers that kill -----------------------------------------------------------------


class _QuietHandler(_Handler):
    """A killed client resets its kept-alive connections: expected here, not an error."""

    def handle(self) -> None:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            super().handle()


class _AnswerHook(_QuietHandler):
    """Also tells the SchedulerX server when an answer has been written to the socket."""

    def _serve(self) -> None:
        super()._serve()
        fake = self.server.fake
        if isinstance(fake, CrashingSchedulerX):
            fake.answered()


def serve_with(fake: FakeServer, handler: type[_Handler]) -> None:
    """Swap the request handler class of a started server."""
    server = fake._server
    assert server is not None, "start the server first"
    server.RequestHandlerClass = handler


class _Crashing(FakeServer):
    """What the three crashing fakes share: a killer, and silence once it fired.

    Listed before the concrete fake, so `_answer` is that fake's own answer."""

    def __init__(self, killer: Killer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.killer = killer

    def _handle(self, request: Request) -> Response:
        blocked = self.killer.blocked()
        if blocked is not None:
            return blocked
        return self._handle_alive(request)

    def _handle_alive(self, request: Request) -> Response:
        raise NotImplementedError

    def _answer(self, request: Request) -> Response:
        return super()._handle(request)


class CrashingSchedulerX(_Crashing, FakeSchedulerX):
    def _handle_alive(self, request: Request) -> Response:
        response = self._answer(request)
        if self.killer.at(Point.FETCHED) and self.killer.count("answers") == self.killer.fetches:
            # The process may act on these answers, and on nothing else.
            self.killer.fire("after the last GetJobInstanceList was answered")
        return response

    def answered(self) -> None:
        case = self.killer.case
        fetched = case is not None and case.point is Point.FETCHED
        if fetched and self.killer.count("written") == self.killer.fetches:
            self.killer.kill()


class CrashingOss(_Crashing, FakeOss):
    def _handle_alive(self, request: Request) -> Response:
        key = unquote(request.path).lstrip("/").partition("/")[2]
        if request.method == "PUT" and ".lease." in key and self.killer.at(Point.CLAIMED):
            response = self._answer(request)
            if response.status == 200:
                self.killer.fire(f"after {key} was stored, before OSS answered")
                self.killer.kill()
                return Response.dropped("stored, then killed")
            return response
        writing = request.method == "PUT" and key == STATE_KEY and self.killer.at(Point.WRITING)
        if writing and self.killer.counted("posts") == self.killer.messages:
            # The write that follows the delivery (not any earlier checkpoint).
            self.killer.fire(f"while OSS received the PUT of {key}, before storing it")
            self.killer.kill()
            return Response.dropped("killed before storing")
        return self._answer(request)


class CrashingDingTalk(_Crashing, FakeDingTalk):
    def _handle_alive(self, request: Request) -> Response:
        case = self.killer.case
        if case is None or request.path != "/robot/send":
            return self._answer(request)
        number = self.killer.count("posts")
        for point in (Point.POSTING, Point.ACCEPTED):
            if not self.killer.at(point) or number != case.message:
                continue
            if point is Point.POSTING:
                self.killer.fire(f"while DingTalk received message {number}, before accepting it")
                self.killer.kill()
                return Response.dropped("killed before accepting")
            response = self._answer(request)
            verdict = "accepted" if response.verdict == "ok" else f"refused ({response.verdict})"
            self.killer.fire(f"after DingTalk {verdict} message {number}, before answering")
            self.killer.kill()
            return Response.dropped("killed before answering")
        return self._answer(request)


# -- the world -----------------------------------------------------------------------------


class ShiftedClock:
    """Wall-clock time plus an offset the test moves; the runner gets the same offset."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def summary(self) -> dict[str, Any]:
        lines = self.stdout.strip().splitlines()
        assert self.returncode == 0 and lines, f"the tick failed:\n{self.stderr}"
        summary: dict[str, Any] = json.loads(lines[-1])
        return summary


class CrashWorld:
    def __init__(self, root: Path) -> None:
        self.clock = ShiftedClock()
        self.killer = Killer(fetches=len(JOBS), messages=len(FAILING))
        self.sx = CrashingSchedulerX(
            self.killer,
            access_key_id=AK,
            access_key_secret=SK,
            security_token=STS,
            clock=self.clock,
        ).start()
        self.oss = CrashingOss(self.killer, AK, SK, STS, self.clock, buckets=(BUCKET,)).start()
        self.dt = CrashingDingTalk(self.killer, clock=self.clock).start()
        serve_with(self.sx, _AnswerHook)
        serve_with(self.oss, _QuietHandler)
        serve_with(self.dt, _QuietHandler)
        self.dt.add_robot(ROBOT, secret=ROBOT_SECRET)
        for job_id in JOBS:
            self.sx.add_job(NS, GROUP, job_id)
        raw = {
            "region": "cn-hangzhou",
            "allow_loopback_http": True,
            "schedulerx": {"endpoint": self.sx.url},
            "state": {"url": f"oss://{BUCKET}/{STATE_KEY}", "endpoint": self.oss.url},
            "dingtalk": {"allowed_hosts": ["127.0.0.1"]},
            "receivers": [
                {
                    "name": "ops",
                    "webhook": f"{self.dt.url}/robot/send?access_token=${{DT_TOKEN}}",
                    "secret": "${DT_SECRET}",
                }
            ],
            "watch": [{"namespace": NS, "group": GROUP, "jobs": list(JOBS), "receivers": ["ops"]}],
        }
        self.config = root / "config.yaml"
        self.config.write_text(yaml.safe_dump(raw), encoding="utf-8")
        self.invocations = 0

    def invoke(self, case: Case | None = None) -> Run:
        """One FC invocation of the real handler in a fresh process."""
        self.invocations += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
        env.update(
            SCHEDULERX_ALERT_CONFIG=str(self.config),
            DT_TOKEN=ROBOT,
            DT_SECRET=ROBOT_SECRET,
            CRASH_TIME_OFFSET=repr(self.clock.offset),
            CRASH_REQUEST_ID=f"tick-{self.invocations}",
            CRASH_TIMEOUT=str(TIMEOUT),
            CRASH_ACCESS_KEY_ID=AK,
            CRASH_ACCESS_KEY_SECRET=SK,
            CRASH_SECURITY_TOKEN=STS,
        )
        if case is not None:
            self.killer.arm(case)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.crash_runner"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            if case is not None:
                self.killer.attach(proc)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            self.killer.disarm()
        return Run(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))

    def deliveries(self) -> list[set[int]]:
        """The instance ids each accepted message names, oldest message first."""
        return [{int(m) for m in INSTANCE_ID.findall(t)} for t in self.dt.texts(ROBOT)]

    def state(self) -> State:
        return load_state(self.oss.objects_in(BUCKET)[STATE_KEY])

    def close(self) -> None:
        for fake in (self.sx, self.oss, self.dt):
            fake.stop()

    def __enter__(self) -> CrashWorld:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- one story per case ----------------------------------------------------------------------


@dataclass
class Outcome:
    case: Case
    expected: dict[int, str]  # instance id -> alert kind
    where: str  # the step the kill interrupted, as the server saw it
    returncode: int  # of the killed tick
    before: list[set[int]]  # instance ids of the messages accepted before the kill
    posts: int  # DingTalk requests the killed tick made
    after: list[set[int]]  # ... of every message accepted by the end
    recoveries: list[dict[str, Any]] = field(default_factory=list)
    state: State | None = None
    objects: list[str] = field(default_factory=list)  # in the bucket, at the end

    def copies(self, messages: list[set[int]]) -> Counter[int]:
        return Counter(i for ids in messages for i in ids if i in self.expected)

    @property
    def accepted_before_kill(self) -> set[int]:
        return set(self.copies(self.before))

    @property
    def delivered(self) -> Counter[int]:
        return self.copies(self.after)

    @property
    def duplicated(self) -> Counter[int]:
        return Counter({i: n - 1 for i, n in self.delivered.items() if n > 1})


@dataclass(frozen=True)
class MatrixRow:
    point: int
    step: str
    expected: int
    accepted_before_kill: int
    delivered: int
    duplicated: int
    recovery_ticks: int


CRASH_MATRIX: list[MatrixRow] = []
_OUTCOMES: dict[Case, Outcome] = {}


def outcome(case: Case) -> Outcome:
    """Play the case's story once; both tests below read the same outcome."""
    if case not in _OUTCOMES:
        _OUTCOMES[case] = play(case)
        o = _OUTCOMES[case]
        CRASH_MATRIX.append(
            MatrixRow(
                int(case.point),
                case.step,
                len(o.expected),
                len(o.accepted_before_kill),
                sum(1 for i in o.expected if o.delivered[i]),
                sum(o.duplicated.values()),
                len(o.recoveries),
            )
        )
    return _OUTCOMES[case]


def play(case: Case) -> Outcome:
    with tempfile.TemporaryDirectory() as tmp, CrashWorld(Path(tmp)) as world:
        warm = world.invoke().summary
        assert (warm["status"], warm["polled"], warm["alerts_new"]) == ("ok", len(JOBS), 0)

        world.clock.advance(60)
        sx = world.sx
        expected = {
            sx.add_instance(job_id, status=status, result=result): status.label
            for job_id, status, result in FAILING
        }
        sx.add_instance(92586, status=InstanceStatus.SUCCESS)
        world.clock.advance(5)

        killed = world.invoke(case)
        result = Outcome(
            case,
            expected,
            world.killer.where,
            killed.returncode,
            before=world.deliveries(),
            posts=world.killer.counted("posts"),
            after=[],
        )
        if killed.returncode != -signal.SIGKILL:
            return result  # the tests say what went wrong

        for n in range(MAX_RECOVERY_TICKS):
            # The first recovery tick comes once the dead tick's lease has expired.
            world.clock.advance(TIMEOUT + 1 if n == 0 else 60)
            summary = world.invoke().summary
            result.recoveries.append(summary)
            if summary["status"] == "ok" and summary["alerts_pending"] == 0:
                break
        result.after = world.deliveries()
        result.state = world.state()
        result.objects = sorted(world.oss.objects_in(BUCKET))
        return result


@pytest.fixture(scope="module", autouse=True)
def _print_crash_matrix() -> Iterator[None]:
    yield
    if CRASH_MATRIX:
        print("\n" + format_matrix(CRASH_MATRIX))


def format_matrix(rows: list[MatrixRow]) -> str:
    head = ("kill point", "alerts expected", "accepted before kill", "delivered", "duplicated")
    body = [
        (
            f"{r.point} {r.step}",
            str(r.expected),
            str(r.accepted_before_kill),
            str(r.delivered),
            str(r.duplicated),
        )
        for r in sorted(rows, key=lambda r: (r.point, r.step))
    ]
    widths = [max(len(row[i]) for row in (head, *body)) for i in range(len(head))]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), rule, *(line(b) for b in body)])


# -- the guarantee ------------------------------------------------------------------------------


def accepted_before_kill(case: Case, expected: int) -> int:
    """How many messages DingTalk accepted before the kill, by the kill point."""
    return {
        Point.FETCHED: 0,
        Point.CLAIMED: 0,
        Point.POSTING: case.message - 1,
        Point.ACCEPTED: case.message,
        Point.WRITING: expected,
    }[case.point]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_after_a_kill_every_alert_is_delivered_and_none_more_than_twice(case: Case) -> None:
    o = outcome(case)
    assert o.returncode == -signal.SIGKILL, f"the tick was not killed {case.step}"
    assert o.where, "the kill point was never reached"
    # The kill landed on the step it names: one message per alert, in job order.
    assert len(o.before) == accepted_before_kill(case, len(o.expected)), o.where

    assert all(o.delivered[i] >= 1 for i in o.expected), f"lost: {o.expected.keys() - o.delivered}"
    assert all(n <= 2 for n in o.delivered.values()), f"announced 3+ times: {o.delivered}"
    assert set(o.duplicated) <= o.accepted_before_kill, "a duplicate DingTalk never accepted"
    assert all(ids & o.expected.keys() for ids in o.after), "a message about nothing expected"

    first = o.recoveries[0]
    assert first["status"] != "skipped", f"the dead tick's lease still blocks: {first['notes']}"
    last = o.recoveries[-1]
    assert (last["status"], last["alerts_pending"]) == ("ok", 0), f"stuck: {o.recoveries}"

    assert o.state is not None and o.state.outbox == ()
    for iid, kind in o.expected.items():
        [record] = [job.instances[iid] for job in o.state.jobs.values() if iid in job.instances]
        assert kind in record.alerted
    assert o.objects == [STATE_KEY], "a lease or temporary object was left behind"


# What the guarantee allows: a kill in the instant between DingTalk accepting a message
# and the state write that records it re-announces that message, once. That instant is
# the tick's last DingTalk call having been accepted, with nothing but the state write
# after it: kill point 4, or point 5 for the message the write records.


def allowed_duplicates(o: Outcome) -> set[int]:
    """The alerts of the message DingTalk had just accepted when the tick died, if any."""
    if o.before and o.posts == len(o.before):
        return o.before[-1] & o.expected.keys()
    return set()


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_a_kill_re_announces_only_the_message_dingtalk_had_just_accepted(case: Case) -> None:
    o = outcome(case)
    assert o.returncode == -signal.SIGKILL, f"the tick was not killed {case.step}"
    allowed = allowed_duplicates(o)
    assert set(o.duplicated) <= allowed, (
        f"re-announced after a kill {case.step}: {sorted(o.duplicated)}; "
        f"the guarantee allows {sorted(allowed) or 'none'}"
    )
    assert all(n == 1 for n in o.duplicated.values())
