"""Every answer is read up to a cap for its API (bounded.py): one answer over it fails
that call, named with the API and the cap, and the tick goes on with everything else.

The answers are served whole by the loopback servers; bench/answer_caps.py measures
what reading them costs in memory.
"""

from __future__ import annotations

import gzip
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from schedulerx_alert.core.state import load_state
from schedulerx_alert.sources.schedulerx import SchedulerXClient, SchedulerXError
from schedulerx_alert.storage.oss_client import MAX_OBJECT_BYTES, OssBucket, OssError
from schedulerx_alert.support.bounded import CHUNK
from schedulerx_alert.support.credentials import Credentials
from tests.test_owners_evidence import body, messages, watch
from tests.world import AK, SK, STS, World

FAILED = 5
OSS_KEY = "schedulerx-alert/state.json"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path) as w:
        yield w


def test_a_run_list_over_8_mib_fails_that_job_only(world: World) -> None:
    world.sx.add_instance(92583, status=FAILED, result="NullPointerException")
    world.sx.add_instance(92584, status=FAILED, result="x" * (9 << 20))
    summary = world.tick()
    assert summary.alerts_sent == 1 and summary.polled == 1
    [error] = summary.errors
    assert error["job"].endswith("/92584")
    assert "GetJobInstanceList" in error["error"] and "8 MiB cap" in error["error"]
    assert "92583" in world.texts()[0]
    # Over the cap is not retried in the tick: the same answer would come again.
    assert world.sx.calls("GetJobInstanceList") == 2


def test_a_run_list_under_its_cap_is_read_whole(world: World) -> None:
    world.sx.add_instance(92584, status=FAILED, result="y" * (3 << 20))
    summary = world.tick()
    assert summary.errors == [] and summary.alerts_sent == 1


def test_a_log_answer_over_1_mib_leaves_the_alert_without_its_log(world: World) -> None:
    watch(world, include_log=True)
    run = world.sx.add_instance(92583, status=FAILED, result="boom")
    world.sx.add_log(run, *["z" * 30_000] * 50)  # 1.5 MB in the 50 lines asked for
    summary = world.tick()
    assert summary.calls["GetLog"] == 1 and summary.alerts_sent == 1
    (message,) = messages(world)
    assert "GetLog" in body(message) and "1 MiB cap" in body(message)
    assert "z" * 100 not in body(message)


def test_a_state_object_over_16_mib_is_a_named_read_failure(tmp_path: Path) -> None:
    with World(tmp_path, state="oss") as world:
        assert world.oss is not None
        world.oss.put_raw(OSS_KEY, b" " * (MAX_OBJECT_BYTES + 1), bucket="alert-bucket")
        world.sx.add_instance(92583, status=FAILED)
        summary = world.tick()
        assert summary.status == "failed" and summary.alerts_sent == 0
        assert summary.problems[0].startswith(f"state unusable: OSS read {OSS_KEY}")
        assert "TooLarge" in summary.problems[0] and "16 MiB cap" in summary.problems[0]


def test_an_oss_read_names_its_own_cap(tmp_path: Path) -> None:
    with World(tmp_path, state="oss") as world:
        assert world.oss is not None
        world.oss.put_raw("small", b"a" * 1000, bucket="alert-bucket")
        bucket = OssBucket("alert-bucket", world.oss.url, "cn-hangzhou", AK, SK, STS)
        got = bucket.get("small", limit=1000)
        assert got is not None and got.data == b"a" * 1000
        with pytest.raises(OssError) as caught:
            bucket.get("small", limit=999)
        assert caught.value.code == "TooLarge" and "999 bytes cap" in str(caught.value)
        # The connection is not left half-read: the next call on the session works.
        again = bucket.get("small")
        assert again is not None and len(again.data) == 1000


def test_a_dingtalk_answer_over_64_kib_is_a_failed_send_kept_for_the_next_tick(
    world: World,
) -> None:
    world.sx.add_instance(92583, status=FAILED)
    world.dt.fail_next(-1, times=5, errmsg="e" * (80 << 10))
    summary = world.tick()
    assert (summary.alerts_sent, summary.alerts_pending) == (0, 1)
    [problem] = summary.problems
    assert "DingTalk: the answer is over the 64 KiB cap" in problem
    [pending] = load_state(world.state_path.read_bytes()).outbox
    assert (pending.last_error or "").startswith("DingTalk: the answer is over the 64 KiB cap")
    world.dt.faults.clear()  # DingTalk answers as it should again
    world.advance(60)
    assert world.tick().alerts_sent == 1


class _Flood(http.server.BaseHTTPRequestHandler):
    """Answers every GET with `total` bytes of JSON-ish text, chunked (no Content-Length),
    or gzip-compressed (a small body that inflates past any cap)."""

    total = 0
    gzipped = False

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.gzipped:
            body = gzip.compress(b" " * self.total)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        piece = b" " * 65536
        try:
            for _ in range(self.total // len(piece)):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: what the cap is for

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("gzipped", [False, True])
def test_an_answer_without_its_length_is_read_no_further_than_the_cap(gzipped: bool) -> None:
    handler = type("Flood", (_Flood,), {"total": 40 << 20, "gzipped": gzipped})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = SchedulerXClient(
            f"http://127.0.0.1:{server.server_address[1]}",
            "cn-hangzhou",
            Credentials(AK, SK, STS),
            ZoneInfo("Asia/Shanghai"),
        )
        with pytest.raises(SchedulerXError) as caught:
            client.call("GetLog", {"Namespace": "ns", "GroupId": "g"})
    finally:
        server.shutdown()
        server.server_close()
    error = caught.value
    assert not error.retryable and str(error).startswith("GetLog: the answer is over the 1 MiB cap")
    seen = int(str(error).rsplit("at least ", 1)[1].split()[0])
    assert (1 << 20) < seen <= (1 << 20) + CHUNK
