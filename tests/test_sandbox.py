"""The sandbox (tests/sandbox.py) stood up from a newcomer's two-namespace config and driven
through its control channel as a second terminal would: each alert kind reaches the
group the config routes it to, in the config's language, and the `export` lines it
prints point the real CLI at it.
"""

from __future__ import annotations

import math
import os
import shlex
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml

from tests.fakes.base import ManualClock
from tests.sandbox import CONTROL_FILE, ControlServer, Sandbox, main, send_control
from tests.test_actions import form_of

ROOT = Path(__file__).resolve().parent.parent
PAYMENTS = "adcfc35d-e2fe-4fe9-bbaa-20e90ffc1234"
DATA = "5b3e7f00-aaaa-bbbb-cccc-0123456789ab"

# As a newcomer writes it: secrets from the environment, real endpoints, two namespaces,
# one group by job ids and one by `jobs: all` (read with group queries, the default);
# small thresholds to see stuck and missed runs.
CONFIG: dict[str, Any] = {
    "region": "cn-hangzhou",
    "schedulerx": {"endpoint": "https://schedulerx.aliyuncs.com"},
    "state": {
        "url": "oss://my-alert-state/schedulerx-alert/state.json",
        "endpoint": "https://oss-cn-hangzhou-internal.aliyuncs.com",
    },
    "dingtalk": {"allowed_hosts": ["oapi.dingtalk.com"], "summary_threshold": 10},
    "receivers": [
        {
            "name": "payments-oncall",
            "webhook": "https://oapi.dingtalk.com/robot/send?access_token=${DT_TOKEN}",
            "secret": "${DT_SECRET}",
        },
        {
            "name": "data-team",
            "webhook": "https://oapi.dingtalk.com/robot/send?access_token=${DATA_TOKEN}",
            "secret": "${DATA_SECRET}",
            "keyword": "SchedulerX",
        },
    ],
    "watch": [
        {
            "namespace": PAYMENTS,
            "group": "payments.settle",
            "jobs": [92583, {"id": 92584, "name": "nightly settlement"}],
            "receivers": ["payments-oncall"],
        },
        {
            "namespace": DATA,
            "group": "data.etl",
            "jobs": "all",
            "receivers": ["data-team"],
            "alert_on": ["failed", "rejected"],
            "stuck_after": "1m",
            "missed_grace": "1m",
        },
    ],
    "templates": {"language": "en"},
}


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    config = tmp_path / "my.yaml"
    config.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    # A clock that moves only when told, 5 s into a minute close to the real time (the
    # CLI run below signs with the real one).
    clock = ManualClock(math.floor(time.time() / 60) * 60 + 5)
    with Sandbox(config, tmp_path / "sandbox", clock=clock) as box:
        box.start()
        control = ControlServer(box).start(box.directory)
        try:
            yield box
        finally:
            control.stop()


def control(box: Sandbox, command: str, argument: str = "") -> dict[str, Any]:
    status, answer = send_control(box.directory, command, argument)
    assert status == 200, answer
    return answer


def tick(box: Sandbox) -> dict[str, Any]:
    summary: dict[str, Any] = control(box, "tick")["summary"]
    assert summary["status"] == "ok", summary
    return summary


def headings(box: Sandbox, receiver: str) -> list[str]:
    [robot] = [r for r in box.robots if r.receiver == receiver]
    return [text.partition("\n")[0] for text in box.dt.texts(robot.token)]


def job_named(box: Sandbox, name: str) -> str:
    [job] = [j for j in box.jobs if j.name == name]
    return str(job.job_id)


def test_each_alert_kind_reaches_its_group_from_the_controls(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    box = sandbox
    # Seeded as the config names them: ids as listed, a handful for `jobs: all`.
    assert [(j.namespace, j.job_id, j.name) for j in box.jobs if j.listed] == [
        (PAYMENTS, 92583, "job-92583"),
        (PAYMENTS, 92584, "nightly settlement"),
    ]
    found = [j.name for j in box.jobs if not j.listed and j.namespace == DATA]
    assert len(found) >= 3
    etl, export, sync = (job_named(box, name) for name in found[:3])

    tick(box)  # ten minutes of successful runs: nothing to say
    assert headings(box, "payments-oncall") == headings(box, "data-team") == []

    control(box, "fail", "92583")
    control(box, "fail", etl)
    control(box, "advance", "60")  # the next fire: both fail
    assert tick(box)["alerts_sent"] == 2
    control(box, "advance", "60")  # and the one after succeeds
    tick(box)
    control(box, "reject", export)
    control(box, "advance", "60")
    tick(box)
    control(box, "hang", sync)
    control(box, "skip", found[3])
    control(box, "advance", "60")
    tick(box)
    control(box, "advance", "70")  # past stuck_after and missed_grace (1m)
    tick(box)

    assert headings(box, "payments-oncall")[0] == "### SchedulerX job failed: 92583"
    data = headings(box, "data-team")
    expected = [
        f"### SchedulerX job failed: {found[0]} ({etl})",
        f"### SchedulerX job recovered: {found[0]} ({etl})",
        f"### SchedulerX job rejected: {found[1]} ({export})",
        f"### SchedulerX job stuck: {found[2]} ({sync})",
        f"### SchedulerX job missed its run: {found[3]} ({job_named(box, found[3])})",
    ]
    for heading in expected:
        assert data.count(heading) == 1, (heading, data)
    # The messages are printed as the demo prints them, named by receiver.
    out = capsys.readouterr().out
    assert "┌─ data-team (DingTalk) receives " in out
    for heading in expected:
        assert f"    │ {heading}\n" in out


def test_the_printed_exports_point_the_real_cli_at_the_sandbox(sandbox: Sandbox) -> None:
    box = sandbox
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "DT_"))}
    lines = [line.strip() for line in box.banner().splitlines()]
    exports = [line for line in lines if line.startswith("export ")]
    for line in exports:
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = shlex.split(value)[0]
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    tick(box)
    control(box, "fail", "92584")
    control(box, "advance", "60")

    check = subprocess.run(
        [sys.executable, "-m", "schedulerx_alert.cli.main", "check", "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert check.returncode == 0, check.stderr
    assert "--- to payments-oncall: " in check.stdout
    assert "### SchedulerX job failed: nightly settlement (92584)" in check.stdout
    assert headings(box, "payments-oncall") == [], "a dry run sends nothing"
    # The secrets printed are the sandbox's own, never the config's variables unresolved.
    assert all("${" not in line for line in exports)


def test_a_control_for_a_job_the_sandbox_does_not_know_is_refused(sandbox: Sandbox) -> None:
    status, answer = send_control(sandbox.directory, "fail", "12345")
    assert status == 400 and "no job '12345'" in answer["error"]


def test_the_command_prints_the_environment_and_stops_after_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "my.yaml"
    config.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    directory = tmp_path / "box"
    assert main(["--config", str(config), "--dir", str(directory), "--for", "0.2"]) == 0
    out = capsys.readouterr().out
    assert f"export SCHEDULERX_ALERT_CONFIG={directory / 'sandbox.my.yaml'}" in out
    assert "export DT_SECRET=SEC" in out and "export DATA_TOKEN=sandbox-data-team-" in out
    assert not (directory / CONTROL_FILE).exists(), "the control file goes with the sandbox"


def test_a_silence_button_opens_the_function_s_link_handler_in_the_sandbox(
    tmp_path: Path,
) -> None:
    raw = {
        **CONFIG,
        "actions": {
            "enabled": True,
            "base_url": "https://alert.example.com/silence",
            "durations": ["1h"],
        },
    }
    config = tmp_path / "my.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with Sandbox(config, tmp_path / "sandbox", clock=ManualClock(time.time())) as box:
        box.start()
        box.control("fail", "92583")
        box.control("advance", "60")
        box.tick()
        [robot] = [r for r in box.robots if r.receiver == "payments-oncall"]
        [card] = box.dt.messages(robot.token)
        [button] = card["actionCard"]["btns"]
        assert button["title"] == "Silence 1 h"
        url = button["actionURL"]
        assert box.links is not None and url.startswith(box.links.url + "silence?")

        with urllib.request.urlopen(url, timeout=30) as opened:
            page = opened.read().decode()
        assert opened.status == 200 and "92583" in page
        form = form_of(page)
        # As a browser posts the confirmation form: from the page's own origin.
        origin = box.links.url.rstrip("/")
        confirm = urllib.request.Request(
            url, data=urlencode(form.fields).encode(), headers={"Origin": origin}
        )
        with urllib.request.urlopen(confirm, timeout=30) as confirmed:
            assert confirmed.status == 200 and "Silenced" in confirmed.read().decode()

        box.control("fail", "92583")
        box.control("advance", "60")
        summary = box.tick()
        assert summary.alerts_silenced == 1 and len(box.dt.messages(robot.token)) == 1


def test_job_names_patterns_get_jobs_that_match_them_and_one_that_does_not(
    tmp_path: Path,
) -> None:
    raw = {**CONFIG, "watch": [{**CONFIG["watch"][1], "jobs": None}]}
    raw["watch"][0].pop("jobs")
    raw["watch"][0]["job_names"] = ["etl-*", "report-[ab]?"]
    config = tmp_path / "my.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with Sandbox(config, tmp_path / "sandbox", clock=ManualClock(time.time())) as box:
        box.start()
        seeded = {job.name: job.watched for job in box.jobs}
        assert seeded == {
            "etl-orders": True,
            "etl-users": True,
            "report-a1": True,
            "adhoc-cleanup": False,
        }
        # The function's own reading of the group's job list agrees.
        box.control("fail", "adhoc-cleanup")
        box.control("fail", "report-a1")
        box.control("advance", "60")
        assert box.tick().alerts_sent == 1
        assert headings(box, "data-team") == [
            f"### SchedulerX job failed: report-a1 ({job_named(box, 'report-a1')})"
        ]


def test_a_retry_button_acts_on_the_sandbox_s_schedulerx_once(tmp_path: Path) -> None:
    raw = {
        **CONFIG,
        "actions": {
            "enabled": True,
            "base_url": "https://alert.example.com/act",
            "durations": ["1h"],
            "operations": ["retry", "mark_success"],
        },
    }
    config = tmp_path / "my.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with Sandbox(config, tmp_path / "sandbox", clock=ManualClock(time.time())) as box:
        box.start()
        box.control("fail", "92583")
        box.control("advance", "60")
        box.tick()
        [robot] = [r for r in box.robots if r.receiver == "payments-oncall"]
        [card] = box.dt.messages(robot.token)
        buttons = {b["title"]: b["actionURL"] for b in card["actionCard"]["btns"]}
        assert list(buttons) == ["Silence 1 h", "Retry this run", "Mark as succeeded"]
        url = buttons["Retry this run"]
        assert box.links is not None and url.startswith(box.links.url + "act?")

        with urllib.request.urlopen(url, timeout=30) as opened:
            page = opened.read().decode()
        assert opened.status == 200 and "Retry run" in page and box.sx.operations == []
        confirm = urllib.request.Request(
            url,
            data=urlencode(form_of(page).fields).encode(),
            headers={"Origin": box.links.url.rstrip("/")},
        )
        with urllib.request.urlopen(confirm, timeout=30) as confirmed:
            assert confirmed.status == 200 and "is running again" in confirmed.read().decode()
        [(action, run)] = box.sx.operations
        assert action == "RetryJobInstance"
        follow = box.dt.texts(robot.token)[-1]
        assert follow.startswith("### Retried") and str(run) in follow

        box.sx.set_status(run, 4)
        box.control("advance", "60")
        box.tick()
        assert any("recovered" in t and str(run) in t for t in box.dt.texts(robot.token))
