"""Config: the documented shape loads; every problem is named by its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedulerx_alert.cli import main
from schedulerx_alert.config import ConfigError, load_config, parse_config
from schedulerx_alert.model import InstanceStatus

TOKEN = "tok-0123456789abcdef"
SECRET = "SEC0123456789abcdef"
ENV = {"DT_TOKEN": TOKEN, "DT_SECRET": SECRET}

GOOD = """
region: cn-hangzhou
timezone: Asia/Shanghai
schedulerx:
  endpoint: https://schedulerx.aliyuncs.com
state:
  url: oss://my-bucket/schedulerx-alert/state.json
  endpoint: https://oss-cn-hangzhou-internal.aliyuncs.com
dingtalk:
  allowed_hosts: [oapi.dingtalk.com]
receivers:
  - name: ops
    webhook: https://oapi.dingtalk.com/robot/send?access_token=${DT_TOKEN}
    secret: ${DT_SECRET}
    at_mobiles: []
watch:
  - namespace: adcfc35d-e2fe-4fe9-bbaa-20e90ffc1234
    group: testSchedulerx.defaultGroup
    jobs: [92583, 92584]
    receivers: [ops]
    alert_on: [failed, rejected]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_documented_shape_loads_with_secrets_from_the_environment(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), ENV)
    ops = config.receivers["ops"]
    assert ops.webhook.endswith(TOKEN)
    assert ops.secret == SECRET
    assert config.watch[0].alert_on == {InstanceStatus.FAILED, InstanceStatus.REJECTED}
    assert config.job_count == 2
    assert config.first_run_lookback.total_seconds() == 900
    # repr must not leak the secret either.
    assert SECRET not in repr(ops) and TOKEN not in repr(ops)


def test_every_problem_is_reported_with_its_path_and_no_secret(tmp_path: Path) -> None:
    bad = (
        GOOD.replace("receivers: [ops]", "receivers: [nobody]")
        .replace("[92583, 92584]", "[92583, -1, abc]")
        .replace("oapi.dingtalk.com/robot", "evil.example.com/robot")
        .replace("oss://my-bucket", "s3://my-bucket")
        .replace("alert_on: [failed, rejected]", "alert_on: [failed, exploded]")
    )
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, bad), ENV)
    problems = caught.value.problems
    text = str(caught.value)
    assert "watch[0].receivers[0]: unknown receiver 'nobody'" in problems
    assert "watch[0].jobs[1]: job id must be a positive integer, not -1" in problems
    assert "watch[0].jobs[2]: job id must be a positive integer, not 'abc'" in problems
    assert any(p.startswith("receivers[0].webhook: host 'evil.example.com'") for p in problems)
    assert any(p.startswith("state.url: must start with oss:// or file://") for p in problems)
    assert any(p.startswith("watch[0].alert_on[1]: unknown status 'exploded'") for p in problems)
    assert TOKEN not in text and SECRET not in text


def test_missing_environment_variables_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, GOOD), {"DT_TOKEN": TOKEN})
    assert caught.value.problems == [
        "receivers[0].secret: environment variable DT_SECRET is not set"
    ]


def test_yaml_syntax_errors_point_at_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "region: [unclosed\nwatch: x\n"), ENV)
    assert "line " in str(caught.value)


def test_unknown_keys_and_wrong_types_are_named() -> None:
    raw = {
        "region": "cn-hangzhou",
        "state": {"url": "file:///tmp/s.json"},
        "recievers": [],
        "receivers": "ops",
        "watch": [],
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, ENV)
    assert "recievers: unknown key" in caught.value.problems
    assert "receivers: must be a non-empty list" in caught.value.problems
    assert "watch: must be a non-empty list" in caught.value.problems


def test_validate_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert main(["validate", "--config", str(write(tmp_path, GOOD))]) == 0
    assert "ok (2 jobs in 1 watch rule(s)" in capsys.readouterr().out
    bad = write(tmp_path, GOOD.replace("receivers: [ops]", "receivers: [nobody]"))
    assert main(["validate", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "watch[0].receivers[0]: unknown receiver 'nobody'" in err
    assert TOKEN not in err and SECRET not in err
