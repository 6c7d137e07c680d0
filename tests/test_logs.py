"""What leaves the process: JSON lines for SLS in FC, readable lines on a terminal,
progress only where a person watches, and never a secret, tracebacks included.

The leak stories run the real FC handler in a process of its own (as FC does, and as
tests/crash_runner.py does) and read everything it writes to stdout and stderr.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from schedulerx_alert.support.process_log import (
    JsonFormatter,
    TextFormatter,
    fields,
    no_progress,
    progress_reporter,
)
from schedulerx_alert.support.redact import Redactor
from tests.world import AK, ROBOT, ROBOT_SECRET, SECRETS, SK, STS, World

ROOT = Path(__file__).resolve().parent.parent
REQUEST_ID = "1-logs-test"


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def live_world(tmp_path: Path) -> Iterator[World]:
    # The subprocess signs with the real clock, so the fakes use it too.
    with World(tmp_path, real_time=True) as world:
        yield world


def write_config(world: World, tmp_path: Path, webhook: str) -> Path:
    raw = dict(world.raw)
    raw["receivers"] = [{"name": "ops", "webhook": webhook, "secret": "${DT_SECRET}"}]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def product_env(config: Path, **extra: str) -> dict[str, str]:
    """What FC's environment holds for the function: the config's ${VAR}s, no FC_* name
    (the handler alone must be signal enough), no terminal."""
    env = {
        "PATH": os.defpath,
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
        "SCHEDULERX_ALERT_CONFIG": str(config),
        "DT_TOKEN": ROBOT,
        "DT_SECRET": ROBOT_SECRET,
    }
    env.update(extra)
    return env


def run_python(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


# What FC's runtime does with the handler: call it with a context, print its result,
# and print an exception that escapes it (type, message, traceback), as it does to the
# function's log. Then three things that happen in a real process besides the handler.
LEAK_SCRIPT = textwrap.dedent(
    """
    import json, logging, os, sys, traceback
    from types import SimpleNamespace as NS
    import requests
    import index
    from schedulerx_alert.config import load_config
    from schedulerx_alert.delivery.channels.dingtalk import DingTalkReceiver

    ak, sk, sts = sys.argv[1:4]
    context = NS(
        request_id="{request_id}",
        function=NS(name="schedulerx-alert", handler="index.handler", timeout=60, memory=128),
        credentials=NS(access_key_id=ak, access_key_secret=sk, security_token=sts),
    )
    event = b'{{"triggerTime": "2026-11-25T02:00:00Z", "triggerName": "t", "payload": ""}}'

    def fc_invoke():
        try:
            print(index.handler(event, context), flush=True)
        except Exception as exc:
            print(json.dumps({{"errorType": type(exc).__name__, "errorMessage": str(exc)}}))
            sys.stderr.write(traceback.format_exc())

    # 1. A tick whose robot cannot be reached: the connection is refused.
    fc_invoke()

    log = logging.getLogger("schedulerx_alert")
    config = load_config(os.environ["SCHEDULERX_ALERT_CONFIG"])
    signed = DingTalkReceiver(config.receivers["ops"]).signed_url()
    # 2. A failed connection logged with its traceback, by us and by a library.
    try:
        requests.post(signed, json={{}}, timeout=5)
    except requests.RequestException:
        log.error("posting failed", exc_info=True)
        logging.getLogger("urllib3.connectionpool").warning("retrying %s", signed, stack_info=True)
    # 3. A log call whose arguments do not fit its format.
    log.warning("robot %s answered %s", signed)

    # 4. An exception that escapes the handler, as a bug would let a requests error out.
    def leaky_send(self, message):
        self.session.post(self.signed_url(), data=self.body(message), timeout=5)

    DingTalkReceiver.send = leaky_send
    fc_invoke()

    # 5. And one that escapes the process.
    requests.post(signed, timeout=5)
    """
).format(request_id=REQUEST_ID)


def test_no_secret_leaves_the_process_when_a_webhook_refuses_connections(
    live_world: World, tmp_path: Path
) -> None:
    webhook = f"http://127.0.0.1:{closed_port()}/robot/send?access_token=${{DT_TOKEN}}"
    config = write_config(live_world, tmp_path, webhook)
    live_world.sx.add_instance(92583, status=5)

    result = run_python(product_env(config), "-c", LEAK_SCRIPT, AK, SK, STS)

    everything = result.stdout + result.stderr
    for secret in SECRETS:
        assert secret not in everything, f"a secret reached the output:\n{everything}"
    # Each of the five really happened, with what a person needs to follow it up.
    first = json.loads(result.stdout.splitlines()[0])
    assert (first["alerts_sent"], first["alerts_pending"]) == (0, 1)
    assert result.stderr.count("ConnectionError") >= 4
    assert "access_token=***" in result.stderr and "sign=***" in result.stderr
    assert "unformattable log arguments" in result.stderr
    crash = json.loads(result.stdout.splitlines()[-1])
    assert crash["errorType"] == "RedactedError"
    assert crash["errorMessage"].startswith("ConnectionError: ")
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    [handler_error] = [r for r in logged if r["event"] == "handler_error"]
    assert handler_error["request_id"] == REQUEST_ID
    assert handler_error["error_type"] == "ConnectionError"
    assert "Traceback" in handler_error["exception"]
    assert result.returncode == 1  # the last exception left the process


def test_a_secret_that_json_would_escape_is_still_redacted() -> None:
    secret = 'tok"en\\with/quotes'
    formatter = JsonFormatter(Redactor([secret]))
    record = logging.LogRecord("schedulerx_alert", logging.ERROR, __file__, 1, "%s", None, None)
    record.__dict__.update(fields({"event": "tick", "problems": [f"robot said {secret}"]}))
    line = formatter.format(record)
    assert json.loads(line)["problems"] == ["robot said ***"]
    assert secret not in line and json.dumps(secret)[1:-1] not in line


# -- SLS: one JSON object per line in FC --------------------------------------------------------


def run_handler(world: World, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    webhook = world.dt.webhook("TOKEN").replace("TOKEN", "${DT_TOKEN}")
    config = write_config(world, tmp_path, webhook)
    return run_python(
        product_env(
            config,
            CRASH_REQUEST_ID=REQUEST_ID,
            CRASH_ACCESS_KEY_ID=AK,
            CRASH_ACCESS_KEY_SECRET=SK,
            CRASH_SECURITY_TOKEN=STS,
            **env,
        ),
        "-m",
        "tests.crash_runner",
    )


def test_in_fc_every_log_line_is_a_json_object_with_the_tick_summary_at_the_top(
    live_world: World, tmp_path: Path
) -> None:
    live_world.sx.add_instance(92583, status=5)
    live_world.sx.fail_next("success_false", times=10, job_id=92584, message="namespace is busy")
    result = run_handler(live_world, tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert lines, "the tick logged nothing"
    for line in lines:
        assert {"time", "level", "request_id", "event", "message"} <= set(line)
        assert line["request_id"] == REQUEST_ID
    [tick] = [line for line in lines if line["event"] == "tick"]
    assert (tick["level"], tick["status"], tick["jobs"], tick["alerts_sent"]) == (
        "INFO",
        "degraded",
        2,
        1,
    )
    assert tick["errors"][0]["job"].endswith("92584")
    warnings = [line for line in lines if line["level"] == "WARNING"]
    assert any("92584" in line["message"] for line in warnings)


@pytest.mark.parametrize(
    ("flags", "env", "expect_json"),
    [
        ((), {}, False),
        ((), {"SCHEDULERX_ALERT_LOG_FORMAT": "json"}, True),
        ((), {"FC_FUNCTION_NAME": "schedulerx-alert"}, True),
        (("--log-format", "text"), {"FC_FUNCTION_NAME": "schedulerx-alert"}, False),
    ],
)
def test_the_command_line_logs_readable_lines_unless_told_or_in_fc(
    live_world: World,
    tmp_path: Path,
    flags: tuple[str, ...],
    env: dict[str, str],
    expect_json: bool,
) -> None:
    live_world.sx.fail_next("success_false", times=10, job_id=92584, message="namespace is busy")
    config = write_config(live_world, tmp_path, live_world.dt.webhook(ROBOT))
    process_env = product_env(
        config,
        ALIBABA_CLOUD_ACCESS_KEY_ID=AK,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=SK,
        ALIBABA_CLOUD_SECURITY_TOKEN=STS,
        **env,
    )
    result = run_python(
        process_env, "-m", "schedulerx_alert.cli.main", "check", "-c", str(config), *flags
    )
    assert result.returncode == 1, result.stderr  # a job could not be polled
    # The failed job is logged as a warning, and the problem it makes as an error.
    lines = [line for line in result.stderr.splitlines() if "92584" in line]
    if expect_json:
        records = [json.loads(line) for line in lines]
        assert {(r["level"], r["event"]) for r in records} == {("WARNING", "log"), ("ERROR", "log")}
    else:
        assert not [line for line in lines if line.startswith("{")]
        assert any(" WARNING job " in line for line in lines)
        assert any(" ERROR   " in line for line in lines)
    assert json.loads(result.stdout)["status"] == "degraded"  # the command's own output


def test_the_handler_logs_readable_lines_when_told_to(live_world: World, tmp_path: Path) -> None:
    result = run_handler(live_world, tmp_path, SCHEDULERX_ALERT_LOG_FORMAT="text")
    assert result.returncode == 0, result.stderr
    [tick] = [line for line in result.stderr.splitlines() if " tick: " in line]
    assert " INFO    tick: status=ok jobs=2 polled=2 " in tick


def test_text_lines_keep_a_traceback_readable_and_redacted() -> None:
    formatter = TextFormatter(Redactor([ROBOT]))
    try:
        raise ConnectionError(f"refused: /robot/send?access_token={ROBOT}")
    except ConnectionError:
        record = logging.LogRecord(
            "schedulerx_alert", logging.ERROR, __file__, 1, "post failed", None, sys.exc_info()
        )
    text = formatter.format(record)
    assert text.splitlines()[0].endswith("ERROR   post failed")
    assert "Traceback (most recent call last):" in text and ROBOT not in text


# -- progress -----------------------------------------------------------------------------------


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.1
        return self.now


def read_all(leader: int) -> str:
    """Everything written to a pseudo-terminal whose other end is closed."""
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the other end is closed and all was read
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return b"".join(chunks).decode()


def test_progress_shows_on_a_terminal_and_ends_with_a_newline() -> None:
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal:
        report = progress_reporter(terminal, env={}, clock=Ticker())
        for done in range(1, 11):
            report("jobs polled", done, 10)
    shown = read_all(leader)
    assert "jobs polled 1/10" in shown and shown.endswith("jobs polled 10/10\r\n")
    # Throttled: not every step rewrites the line.
    assert shown.count("jobs polled") < 10


def test_no_progress_in_fc_or_into_a_pipe() -> None:
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal:
        assert progress_reporter(terminal, env={"FC_FUNCTION_NAME": "f"}) is no_progress
    os.close(leader)
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as pipe:
        assert progress_reporter(pipe, env={}) is no_progress
    os.close(read_end)
    assert progress_reporter(io.StringIO(), env={}) is no_progress


def check_on_a_terminal(world: World, tmp_path: Path, **env: str) -> tuple[str, str]:
    """`schedulerx-alert check` with its stderr on a pseudo-terminal: (terminal, stdout)."""
    config = write_config(world, tmp_path, world.dt.webhook(ROBOT))
    process_env = product_env(
        config,
        ALIBABA_CLOUD_ACCESS_KEY_ID=AK,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=SK,
        ALIBABA_CLOUD_SECURITY_TOKEN=STS,
        **env,
    )
    leader, follower = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "schedulerx_alert.cli.main", "check", "-c", str(config)],
        env=process_env,
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
        cwd=ROOT,
    )
    os.close(follower)
    terminal = read_all(leader)  # until the process closes its end
    stdout, _ = process.communicate(timeout=120)
    assert process.returncode == 0, terminal
    return terminal, stdout


def test_a_long_check_shows_its_progress_on_a_terminal(tmp_path: Path) -> None:
    jobs = tuple(range(93000, 93040))
    with World(tmp_path, jobs=jobs, real_time=True) as world:
        terminal, stdout = check_on_a_terminal(world, tmp_path)
    assert json.loads(stdout)["polled"] == len(jobs)
    # One line rewritten in place (its carriage returns), ending once at its total: the
    # plan's reads (group queries or per-job polls), not necessarily one per job.
    shown = re.findall(r"\rSchedulerX reads (\d+)/(\d+)", terminal)
    assert shown and shown[-1][0] == shown[-1][1] != "0"
    assert terminal.count(f"reads {shown[-1][1]}/{shown[-1][1]}\r\n") == 1
    assert "SchedulerX reads" not in stdout


def test_no_progress_in_fc_even_on_a_terminal(tmp_path: Path) -> None:
    with World(tmp_path, jobs=tuple(range(93000, 93010)), real_time=True) as world:
        terminal, stdout = check_on_a_terminal(world, tmp_path, FC_FUNCTION_NAME="schedulerx-alert")
    assert json.loads(stdout)["polled"] == 10
    assert "SchedulerX reads" not in terminal  # the same run as above, but in FC
