"""Faults at every edge: each loses no alert and says what went wrong."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from schedulerx_alert.core.state import STATE_VERSION, load_state
from schedulerx_alert.support.credentials import Credentials
from tests.fakes.base import ManualClock
from tests.fakes.schedulerx import FakeSchedulerX
from tests.world import AK, NS, STS, World

OSS_KEY = "schedulerx-alert/state.json"


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("timeout", "timed out"),
        ("5xx", "HTTP 503"),
        ("throttle", "Throttling"),
        ("malformed", "not JSON"),
        ("html", "not JSON (text/html)"),
        ("success_false", "Success=false"),
    ],
)
def test_schedulerx_fault_on_one_job_is_reported_and_caught_up_next_tick(
    world: World, fault: str, words: str
) -> None:
    world.raw["schedulerx"] = {"endpoint": world.sx.url, "timeout_seconds": 0.3}
    world.sx.add_instance(92583, status=5)
    failing = world.sx.add_instance(92584, status=5)
    # Retryable faults are tried three times in a tick; business errors once.
    times = 1 if fault == "success_false" else 3
    world.sx.fail_next(fault, times=times, job_id=92584, seconds=0.6)
    broken = world.tick()
    assert broken.alerts_sent == 1 and broken.polled == 1
    [error] = broken.errors
    assert error["job"].endswith("/92584") and words in error["error"]
    world.advance(60)
    healed = world.tick()
    assert healed.errors == [] and healed.alerts_sent == 1
    assert str(failing) in world.texts()[-1]


def test_business_errors_are_not_retried(world: World) -> None:
    world.sx.fail_next("success_false", times=5, job_id=92584, message="jobId=92584 is not existed")
    world.tick()
    assert world.sx.calls("GetJobInstanceList") == 2


@pytest.fixture
def oss(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path, state="oss") as w:
        w.raw["state"]["timeout_seconds"] = 0.3
        yield w


@pytest.mark.parametrize("fault", ["5xx", "403", "timeout"])
def test_unreadable_state_announces_nothing_and_says_why(oss: World, fault: str) -> None:
    assert oss.oss is not None
    oss.sx.add_instance(92583, status=5)
    oss.oss.fail_next(fault, times=8, op="read", seconds=0.6)
    summary = oss.tick()
    assert summary.status == "failed" and summary.alerts_sent == 0
    assert summary.problems[0].startswith("state unusable: OSS read")
    assert oss.texts() == [] and OSS_KEY not in oss.oss.objects_in("alert-bucket")
    oss.oss.faults.clear()  # OSS recovers
    oss.advance(60)
    assert oss.tick().alerts_sent == 1


@pytest.mark.parametrize("fault", ["5xx", "timeout"])
def test_a_state_write_that_fails_once_is_retried_and_nothing_is_sent_twice(
    oss: World, fault: str
) -> None:
    assert oss.oss is not None
    oss.sx.add_instance(92583, status=5)
    oss.oss.fail_next(fault, times=1, key=OSS_KEY, op="write", seconds=0.6)
    first = oss.tick()
    assert first.alerts_sent == 1 and first.problems == []
    oss.advance(60)
    assert oss.tick().alerts_sent == 0
    assert len(oss.texts()) == 1


def test_a_lease_that_cannot_be_written_stops_the_tick_before_sending(oss: World) -> None:
    assert oss.oss is not None
    oss.sx.add_instance(92583, status=5)
    oss.oss.fail_next("403", times=5, op="write")
    summary = oss.tick()
    assert summary.status == "failed" and "AccessDenied" in summary.problems[0]
    assert oss.texts() == []


def test_state_from_a_newer_schema_is_left_alone_and_reported(oss: World) -> None:
    assert oss.oss is not None
    newer = b'{"version": %d, "jobs": {}, "future": true}' % (STATE_VERSION + 1)
    oss.oss.put_raw(OSS_KEY, newer, bucket="alert-bucket")
    oss.sx.add_instance(92583, status=5)
    summary = oss.tick()
    assert summary.status == "failed"
    assert (
        f"schema version {STATE_VERSION + 1}" in summary.problems[0]
        and "refusing to overwrite" in summary.problems[0]
    )
    assert oss.oss.objects_in("alert-bucket")[OSS_KEY] == newer
    assert oss.texts() == []


@pytest.mark.parametrize("fault", ["5xx", "timeout"])
def test_dingtalk_outages_keep_the_alert_pending(world: World, fault: str) -> None:
    world.raw["dingtalk"] = {"allowed_hosts": ["127.0.0.1"], "timeout_seconds": 0.3}
    world.sx.add_instance(92583, status=5)
    world.dt.fail_next(fault, times=2, seconds=0.6)
    summary = world.tick()
    assert (summary.alerts_sent, summary.alerts_pending) == (0, 1)
    assert load_state(world.state_path.read_bytes()).outbox[0].attempts == 1
    world.advance(60)
    assert world.tick().alerts_sent == 1
    assert len(world.texts()) == 1


class SlowSchedulerX(FakeSchedulerX):
    """Each answer takes 4 s of (simulated) time."""

    def _handle(self, request):  # type: ignore[no-untyped-def]
        assert isinstance(self.clock, ManualClock)
        self.clock.advance(4)
        return super()._handle(request)


def test_a_long_tick_stops_in_time_and_commits_what_it_has(tmp_path: Path) -> None:
    with World(tmp_path, jobs=tuple(range(100, 130))) as world:
        world.sx.stop()
        world.sx = SlowSchedulerX(
            access_key_id=world.credentials.access_key_id,
            access_key_secret=world.credentials.access_key_secret,
            security_token=world.credentials.security_token,
            clock=world.clock,
        ).start()
        for job_id in range(100, 130):
            world.sx.add_job(NS, world.raw["watch"][0]["group"], job_id)
        world.sx.add_instance(100, status=5)
        # Each job polled on its own (the loop group queries replace): deferral per job.
        world.raw["schedulerx"] = {
            "endpoint": world.sx.url,
            "concurrency": 1,
            "query": "every_job",
        }
        started = world.clock()
        summary = world.tick(timeout=60)
        # 60 s of function time: polling stops at 36 s (15 s kept for sending,
        # 9 s for the commit), about 8 calls of 4 s.
        assert 5 <= summary.polled < 30 and summary.deferred == 30 - summary.polled
        assert world.clock() - started < 60
        assert summary.alerts_sent == 1
        saved = load_state(world.state_path.read_bytes())
        assert len(saved.jobs) == summary.polled


def test_a_tick_whose_state_write_keeps_failing_sends_nothing_twice_next_time(
    oss: World,
) -> None:
    """Job 92583 fails; DingTalk accepts the alert, then OSS refuses every state
    write: the tick gives its lease back uncommitted. The next tick takes the
    same lease number and must still honour the journal the first one left."""
    assert oss.oss is not None
    oss.sx.add_instance(92583, status=5)
    oss.oss.fail_next("403", times=50, key=OSS_KEY, op="write")
    first = oss.tick()
    assert first.alerts_sent == 1 and any("not saved" in p for p in first.problems)
    oss.oss.faults.clear()  # OSS recovers
    oss.advance(60)
    second = oss.tick()
    assert second.alerts_sent == 0 and second.alerts_new == 0
    assert len(oss.texts()) == 1
    oss.advance(60)
    oss.sx.add_instance(92583, status=5)
    assert oss.tick().alerts_sent == 1 and len(oss.texts()) == 2


def test_a_signature_oss_rejects_names_the_key_and_the_code_and_never_the_secret(
    oss: World, caplog: pytest.LogCaptureFixture
) -> None:
    oss.sx.add_instance(92583, status=5)
    oss.credentials = Credentials(AK, "not-the-secret-4e1f", STS)
    summary = oss.tick()
    assert summary.status == "failed" and oss.texts() == []
    assert summary.problems[0].startswith(
        f"state unusable: OSS read {OSS_KEY}: HTTP 403 SignatureDoesNotMatch: "
        "The request signature we calculated does not match"
    )
    everything = json.dumps(summary.problems) + caplog.text
    assert "not-the-secret-4e1f" not in everything and STS not in everything


def test_a_refused_oss_connection_is_a_network_error_line(oss: World) -> None:
    oss.sx.add_instance(92583, status=5)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    summary = oss.tick(state={**oss.raw["state"], "endpoint": closed})
    assert summary.status == "failed" and oss.texts() == []
    assert summary.problems[0].startswith(
        f"state unusable: OSS read {OSS_KEY}: network error or timeout (ConnectionError: "
    )


def test_a_state_key_with_unicode_and_spaces_round_trips(oss: World) -> None:
    assert oss.oss is not None
    key = "告警 数据/state v1+ü.json"
    state = {**oss.raw["state"], "url": f"oss://alert-bucket/{key}"}
    oss.sx.add_instance(92583, status=5)
    assert oss.tick(state=state).alerts_sent == 1
    oss.advance(60)
    again = oss.tick(state=state)
    assert (again.status, again.alerts_sent) == ("ok", 0)  # it read what it wrote
    stored = oss.oss.objects_in("alert-bucket")
    assert load_state(stored[key]).lease_generation == 2
    assert len(oss.texts()) == 1
