"""Config: the documented shape loads; every problem is named by its path."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import index
from schedulerx_alert.cli.main import main
from schedulerx_alert.config import ConfigError, load_config, parse_config, read_yaml
from schedulerx_alert.core.model import InstanceStatus
from schedulerx_alert.handler import EventError, parse_event

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


def problems_in(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(read_yaml(text), ENV if env is None else env)
    return caught.value.problems


# -- a receiver twice in one rule ------------------------------------------------------------


def test_a_receiver_listed_twice_in_one_rule_is_refused() -> None:
    # diff.py owes one alert per listed receiver: [ops, ops] sent everything twice.
    problems = problems_in(GOOD.replace("receivers: [ops]", "receivers: [ops, ops]"))
    assert problems == ["watch[0].receivers[1]: duplicate receiver 'ops'"]


TWO_NAMES_ONE_ROBOT = GOOD.replace(
    "    at_mobiles: []\n",
    "    at_mobiles: []\n"
    "  - name: ops-oncall\n"
    "    webhook: https://OAPI.dingtalk.com:443/robot/send?access_token=${DT_TOKEN}\n"
    "    at_mobiles: ['13800000000']\n",
)


def test_two_names_for_one_robot_may_serve_different_rules_but_not_one() -> None:
    # Same group, different people @-mentioned per rule: a real use, so not refused...
    apart = TWO_NAMES_ONE_ROBOT + (
        "  - namespace: other\n    group: g\n    jobs: [1]\n    receivers: [ops-oncall]\n"
    )
    config = parse_config(read_yaml(apart), ENV)
    assert config.receivers["ops"].webhook == config.receivers["ops-oncall"].webhook
    # ...but both in one rule would put every alert in that group twice.
    together = TWO_NAMES_ONE_ROBOT.replace("receivers: [ops]", "receivers: [ops, ops-oncall]")
    [problem] = problems_in(together)
    assert problem.startswith(
        "watch[0].receivers[1]: 'ops-oncall' posts to the same robot as 'ops'"
    )
    assert TOKEN not in problem


# -- YAML that would exhaust memory -------------------------------------------------------------

LOLS = "\n".join(
    [f"l0: &l0 [{', '.join(['lol'] * 9)}]"]
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
)
BOMB = f"""region: cn-hangzhou
state: {{url: "file:///tmp/state.json"}}
receivers: [{{name: ops, webhook: "https://oapi.dingtalk.com/robot/send?access_token=t"}}]
{LOLS}
watch: [{{namespace: n, group: g, receivers: [ops], jobs: *l8}}]
"""


def test_an_alias_bomb_is_refused_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 9**9 values from 72 aliases: the repr of one of them was the MemoryError.
    assert len(BOMB) < 800
    assert main(["validate", "--config", str(write(tmp_path, BOMB))]) == 2
    err = capsys.readouterr().err
    assert "line 9, column 5: this value expands to more than 100000 values" in err
    assert len(err) < 400


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "a: &a x\nb: [" + ", ".join(["*a"] * 101) + "]\n",
            "line 2, column 405: too many aliases (YAML alias expansion is limited to 100)",
        ),
        ("a: &a [1, *a]\n", "line 1, column 11: an alias refers to a value that contains it"),
        ("a: " + "[" * 70 + "]" * 70 + "\n", "line 1, column 67: values are nested more than"),
        ("region: 0x" + "f" * 5000 + "\n", "line 1, column 9: this number is too long"),
        ("region: " + "9" * 5000 + "\n", "line 1, column 9: this number is too long"),
        ("region: x\n" * 100_001, "(top level): the file is 1000010 bytes; a config is"),
    ],
)
def test_yaml_is_read_within_bounds(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        read_yaml(text)
    [reported] = caught.value.problems
    assert reported.startswith(problem)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("region: 2020-99-99\n", "line 1, column 9: cannot read this value as timestamp"),
        ("region: !!int x\n", "line 1, column 9: cannot read this value as int"),
        ("region: !!bool maybe\n", "line 1, column 9: cannot read this value as bool"),
        ("watch: [1, !!float z]\n", "line 1, column 12: cannot read this value as float"),
    ],
)
def test_a_value_its_yaml_tag_cannot_hold_is_named_by_line(text: str, problem: str) -> None:
    # PyYAML's constructors raise plain ValueError/KeyError for these.
    with pytest.raises(ConfigError) as caught:
        read_yaml(text)
    assert caught.value.problems == [problem]


@pytest.mark.parametrize("name", ["config.yaml", "config.json"])
def test_a_file_that_is_not_utf8_or_too_large_is_named_so(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b'{"region": "cn-hangzhou",\n"watch": "\xff"}\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, ENV)
    assert caught.value.problems == ["line 2: not UTF-8 text"]
    path.write_bytes(b'{"region": "' + b"x" * 1_000_001 + b'"}')
    with pytest.raises(ConfigError) as caught:
        load_config(path, ENV)
    [problem] = caught.value.problems
    assert problem.startswith("(top level): the file is 1000015 bytes; a config is limited to")


def test_no_message_repeats_a_large_value() -> None:
    raw = read_yaml(GOOD)
    raw["region"] = ["x"] * 10_000
    raw["watch"][0]["jobs"] = ["9" * 100_000]
    raw["watch"][0]["receivers"] = ["n" * 100_000]
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, ENV)
    assert "region: must be a string, not a list of 10000 item(s)" in caught.value.problems
    assert all(len(p) < 200 for p in caught.value.problems), caught.value.problems
    assert f"watch[0].jobs[0]: job id must be a positive integer, not '{'9' * 60}'…" in (
        caught.value.problems
    )


def test_a_value_from_the_environment_is_never_repeated() -> None:
    hidden = "tz-from-env-0123456789"
    env = {**ENV, "TZ_NAME": hidden, "CALLS": "250"}
    text = GOOD.replace("timezone: Asia/Shanghai", "timezone: ${TZ_NAME}").replace(
        "  endpoint: https://schedulerx.aliyuncs.com\n",
        "  endpoint: https://schedulerx.aliyuncs.com\n  max_calls_per_minute: ${CALLS}\n",
    )
    problems = problems_in(text, env)
    # Read only where secrets and endpoints are (issue 19 item 2); refused by their path.
    assert any(p.startswith("timezone: ${VAR} is read from the environment only") for p in problems)
    assert any(
        p.startswith("schedulerx.max_calls_per_minute: ${VAR} is read from the environment only")
        for p in problems
    )
    assert not any(hidden in p or "250" in p for p in problems)
    # Where it is read, a bad value is described, not repeated.
    text = GOOD.replace("https://schedulerx.aliyuncs.com", "${ENDPOINT}")
    problems = problems_in(text, {**ENV, "ENDPOINT": f"ftp://{hidden}"})
    assert problems and not any(hidden in p for p in problems)


# -- item 13: what validated, then failed every tick ----------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "oss://My_Bucket/schedulerx-alert/state.json",
        "oss://ab/state.json",
        "oss://-bucket/state.json",
        "oss://bucket-/state.json",
        "oss://user@bucket/state.json",
        "oss://bucket:80/state.json",
    ],
)
def test_an_oss_bucket_name_follows_oss_rules(url: str) -> None:
    [problem] = problems_in(GOOD.replace("oss://my-bucket/schedulerx-alert/state.json", url))
    assert problem.startswith("state.url: must be oss://BUCKET/KEY; a bucket name is 3-63")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("oss://my-bucket/", "must be oss://BUCKET/KEY, with KEY an object name"),
        ("oss://my-bucket/state/", "must be oss://BUCKET/KEY, with KEY an object name"),
        ("oss://my-bucket/state.json?x=1", "must not contain '?', '#'"),
        ("oss://[my-bucket/state.json", "must be oss://BUCKET/KEY or file:///ABSOLUTE/PATH"),
        ("file://host/tmp/state.json", "must be file:///ABSOLUTE/PATH/state.json"),
        ("file:relative.json", "must be file:///ABSOLUTE/PATH/state.json"),
    ],
)
def test_a_state_url_names_one_object(url: str, problem: str) -> None:
    text = GOOD.replace("oss://my-bucket/schedulerx-alert/state.json", f"'{url}'")
    [reported] = problems_in(text)
    assert reported.startswith(f"state.url: {problem}")


@pytest.mark.parametrize(
    ("section", "endpoint", "problem"),
    [
        ("schedulerx", "http://schedulerx.aliyuncs.com", "must use https://"),
        ("state", "http://oss-cn-hangzhou-internal.aliyuncs.com", "must use https://"),
        ("schedulerx", "http://127.0.0.1:8080", "with allow_loopback_http: true"),
        ("state", "https://ak:pw-0123@oss-cn-hangzhou.aliyuncs.com", "user info"),
        ("schedulerx", "https://schedulerx.aliyuncs.com/x?y=1", "no path or query"),
        ("state", "oss-cn-hangzhou.aliyuncs.com", "must be an https:// URL"),
    ],
)
def test_endpoints_carrying_credentials_are_https(
    section: str, endpoint: str, problem: str
) -> None:
    # Every call to them carries the STS token (and SchedulerX's is signed with the key).
    raw = read_yaml(GOOD)
    raw[section]["endpoint"] = endpoint
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, ENV)
    [reported] = caught.value.problems
    assert reported.startswith(f"{section}.endpoint: ") and problem in reported
    assert "pw-0123" not in reported


def test_loopback_http_endpoints_need_the_explicit_allow() -> None:
    raw = read_yaml(GOOD)
    raw["schedulerx"]["endpoint"] = "http://127.0.0.1:8080/"
    raw["state"]["endpoint"] = "http://[::1]:9000"
    raw["allow_loopback_http"] = True
    config = parse_config(raw, ENV)
    assert config.schedulerx.endpoint == "http://127.0.0.1:8080"
    assert config.state.endpoint == "http://[::1]:9000"
    raw["allow_loopback_http"] = "yes"
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, ENV)
    assert "allow_loopback_http: must be true or false, not 'yes'" in caught.value.problems


def test_a_region_is_a_region_id() -> None:
    # The region is spliced into the default OSS host, which gets the STS token.
    assert problems_in(GOOD.replace("region: cn-hangzhou", "region: ''")) == [
        "region: must be a region id such as cn-hangzhou, not ''"
    ]
    text = GOOD.replace("region: cn-hangzhou", "region: 'x.evil.example#'")
    assert problems_in(text) == [
        "region: must be a region id such as cn-hangzhou, not 'x.evil.example#'"
    ]


def test_alert_on_takes_final_statuses_only() -> None:
    # The diff alerts on a run once it has ended; `running` never ends as running.
    text = GOOD.replace("alert_on: [failed, rejected]", "alert_on: [failed, running, 1]")
    finals = "failed, killed, partial_failed, rejected, removed, skipped, success"
    assert problems_in(text) == [
        f"watch[0].alert_on[1]: 'running' is not a final status, so it can never fire "
        f"(one of: {finals})",
        f"watch[0].alert_on[2]: 'waiting' is not a final status, so it can never fire "
        f"(one of: {finals})",
    ]
    text = GOOD.replace("alert_on: [failed, rejected]", "alert_on: [killed, partial_failed]")
    rule = parse_config(read_yaml(text), ENV).watch[0]
    assert rule.alert_on == {InstanceStatus.KILLED, InstanceStatus.PARTIAL_FAILED}


def test_a_missing_variable_is_named_where_it_is_used_and_nowhere_else() -> None:
    # The receiver is still known by name: no follow-on "unknown receiver 'ops'".
    text = GOOD + "health:\n  receiver: ops\n"
    assert problems_in(text, {"DT_SECRET": SECRET}) == [
        "receivers[0].webhook: environment variable DT_TOKEN is not set"
    ]


# -- the invocation event -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        b'{"dry_run": "false"}',
        b'{"dry_run": "true"}',
        b'{"dry_run": 1}',
        b'{"dry_run": null}',
        json.dumps(
            {"triggerTime": "2026-11-25T02:00:00Z", "payload": '{"dry_run": "false"}'}
        ).encode(),
    ],
)
def test_dry_run_is_a_json_boolean_or_nothing_runs(event: bytes) -> None:
    # "false" is truthy: it used to run a dry run, so the timer silently alerted no one.
    with pytest.raises(EventError) as caught:
        index.handler(event, SimpleNamespace(request_id="r"))
    assert str(caught.value).startswith("event.dry_run: must be true or false (JSON), not ")


def test_dry_run_booleans_and_timer_events_are_read() -> None:
    assert parse_event(b'{"dry_run": true}') == {"dry_run": True}
    assert parse_event(b'{"dry_run": false}') == {"dry_run": False}
    timer = {"triggerTime": "2026-11-25T02:00:00Z", "payload": ""}
    assert parse_event(json.dumps(timer).encode()) == {}


@pytest.mark.parametrize(
    ("section", "key", "said", "empty_ok"),
    [
        ("receivers", "at_mobiles", "must be a list of phone numbers", True),
        ("receivers", "at_user_ids", "must be a list of DingTalk user ids", True),
        ("watch", "exclude_jobs", "must be a non-empty list of job ids", False),
        (
            "watch",
            "job_names",
            'must be a non-empty list of name patterns such as ["etl-*"]',
            False,
        ),
        (
            "watch",
            "alert_on",
            "must be a non-empty list of statuses such as [failed, rejected]",
            False,
        ),
        ("actions", "durations", 'must be a non-empty list such as [1h, "until 09:00"]', False),
        ("actions", "operations", "must be a list such as [retry, mark_success, stop]", True),
    ],
)
def test_a_list_option_refuses_what_is_not_a_list_and_an_empty_one_where_it_needs_items(
    section: str, key: str, said: str, empty_ok: bool
) -> None:
    from schedulerx_alert.config.actions import parse_actions
    from schedulerx_alert.config.yaml_reader import read_yaml

    def problems(value: Any) -> list[str]:
        if section == "actions":
            raw = {"enabled": True, "base_url": "https://alert.example.com/s", key: value}
            return parse_actions(raw, {"SCHEDULERX_ALERT_ACTION_KEYS": "k" * 32})[1]
        raw = read_yaml(GOOD)
        raw[section][0][key] = value
        try:
            parse_config(raw, ENV, "config.yaml", Path("."))
        except ConfigError as exc:
            return exc.problems
        return []

    where = "actions" if section == "actions" else f"{section}[0]"
    assert f"{where}.{key}: {said}" in problems("x")
    assert (f"{where}.{key}: {said}" in problems([])) is not empty_ok
    # Left empty (`key:` and nothing): as if left out.
    assert not [p for p in problems(None) if p.startswith(f"{where}.{key}")]


def test_a_file_that_cannot_be_read_is_named_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(missing, ENV)
    assert caught.value.problems == ["cannot read: No such file or directory"]
    assert main(["validate", "-c", str(missing)]) == 2
    assert "cannot read: No such file or directory" in capsys.readouterr().err
