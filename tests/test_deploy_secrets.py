"""Any number of robots' secrets reach the function through the deploy files as shipped.

The story of issue 18 item 6: a config with two robots (ops, data team) is built with
`make package`, deployed with s.yaml or template.yml as they are (values only, no
edits), and ticks. Here the build is the real script, s.yaml is resolved by Serverless
Devs' own parser (tests/test_s_yaml_resolved.py), template.yml as ROS creates its stack
(tests/test_deploy.py's `stack`), and the function is the built package run as FC runs
it, with exactly the environment the deploy file gives it, against loopback robots.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from schedulerx_alert.support.deploy_secrets import (
    SECRETS_ENV,
    SecretsError,
    apply,
    missing_hint,
    secrets_in,
)
from tests import test_deploy as deploy_checks
from tests import test_s_yaml_resolved as resolved_checks
from tests.world import AK, SK, STS, World

ROOT = deploy_checks.ROOT
BUILD = ROOT / "scripts" / "build_package.py"
CACHE = ROOT / "build" / "wheels"
LOCAL = f"{sys.version_info.major}.{sys.version_info.minor}"
# The robots' real secrets, in the deployer's shell only.
ROBOTS = {
    "ops": ("DT_OPS_TOKEN", "ops-robot-token-0123456789", "DT_OPS_SECRET", "SECops0123456789"),
    "data": ("DT_DATA_TOKEN", "data-robot-token-98765432", "DT_DATA_SECRET", "SECdata987654"),
}
SHELL = {
    name: value
    for token_env, token, secret_env, secret in ROBOTS.values()
    for name, value in ((token_env, token), (secret_env, secret))
}
# `make package` checks the config with values of the right shape; none is shipped.
BUILD_SHELL = {n: ("SECbuild" if "SECRET" in n else "build-token-") + n.lower() for n in SHELL}
TIMER = b'{"triggerTime": "2026-11-25T02:00:00Z", "triggerName": "every-minute", "payload": ""}'


def two_robot_config(world: World, path: Path) -> Path:
    raw = dict(world.raw)
    raw["receivers"] = []
    for name, (token_env, token, secret_env, secret) in ROBOTS.items():
        world.dt.add_robot(token, secret=secret)
        webhook = world.dt.webhook("TOKEN").replace("TOKEN", f"${{{token_env}}}")
        raw["receivers"].append({"name": name, "webhook": webhook, "secret": f"${{{secret_env}}}"})
    raw["watch"] = [{**raw["watch"][0], "receivers": list(ROBOTS)}]
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def make_package(config: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """`make package` for this machine's Python, in a shell with build-time values."""
    return subprocess.run(
        [
            *(sys.executable, str(BUILD), "--python-version", LOCAL, "--no-zip"),
            *("--out", str(out), "--cache", str(CACHE), "--bytecode", "none"),
            *("--config", str(config)),
        ],
        env={**os.environ, **BUILD_SHELL},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def secrets_as_printed(report: str, shell: dict[str, str]) -> str:
    """SCHEDULERX_ALERT_SECRETS as the deployer makes it: the command `make package`
    printed, run in a shell holding the robots' real secrets."""
    (command,) = re.findall(rf"^  s deploy: (export {SECRETS_ENV}=.*\)\") with", report, re.M)
    result = subprocess.run(
        ["bash", "-c", f'{command}; printf %s "${SECRETS_ENV}"'],
        env={"PATH": os.environ["PATH"], **shell},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def fc_tick(
    code: Path, function_env: dict[str, str], tmp: Path
) -> subprocess.CompletedProcess[str]:
    """One timer tick of the package as FC runs it: its code mounted at /code (here:
    `code`), nothing on the path but it and the standard library, and no variable but
    the function's own (and FC's PATH and TMPDIR)."""
    env = {
        **function_env,
        "SCHEDULERX_ALERT_CONFIG": function_env["SCHEDULERX_ALERT_CONFIG"].replace(
            "/code/", f"{code}/"
        ),
        "PATH": os.defpath,
        "TMPDIR": str(tmp),
    }
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(code)!r})
        from types import SimpleNamespace as NS
        import index
        context = NS(request_id="1-deploy", function=NS(timeout=60),
                     credentials=NS(access_key_id={AK!r}, access_key_secret={SK!r},
                                    security_token={STS!r}))
        print(index.handler({TIMER!r}, context))
        """
    )
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def deployed_env_s_yaml(tmp: Path, secrets: str) -> dict[str, str]:
    """The function's environment as `s deploy` sets it from s.yaml as shipped."""
    run = resolved_checks.resolve_with_s(
        tmp / "s-home", {**resolved_checks.CREDENTIALS, SECRETS_ENV: secrets}
    )
    assert run.returncode == 0, run.stderr
    (resource,) = json.loads(run.stdout)["resources"]
    env: dict[str, str] = resource["props"]["environmentVariables"]
    return env


def deployed_env_template(secrets: str) -> dict[str, str]:
    """The function's environment as ROS creates it from template.yml as shipped."""
    template = deploy_checks.load_yaml("template.yml")
    parameters = {"CodeBucket": "code-bucket", "RobotSecrets": secrets}
    created = deploy_checks.stack(template, **parameters)
    (function,) = deploy_checks.resources_of(created, "ALIYUN::FC3::Function")
    values = {name: p.get("Default") for name, p in template["Parameters"].items()}
    values.update(parameters)
    env = {}
    for name, value in function["EnvironmentVariables"].items():
        assert set(value) == {"Ref"}, f"{name}: only parameters are understood here"
        env[name] = values[value["Ref"]]
    return env


@pytest.fixture
def story(tmp_path: Path) -> Any:
    with World(tmp_path / "world", real_time=True) as world:
        config = two_robot_config(world, tmp_path / "config.yaml")
        build = make_package(config, tmp_path / "code")
        assert build.returncode == 0, build.stderr
        world.sx.add_instance(92583, status=5, result="NullPointerException")
        yield world, tmp_path / "code", build.stdout


def assert_both_robots_heard(world: World, run: subprocess.CompletedProcess[str]) -> None:
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert (summary["status"], summary["alerts_sent"]) == ("ok", 2), summary
    for _, token, _, _ in ROBOTS.values():
        (text,) = world.dt.texts(token)
        assert "92583" in text
    # And the function's log says so, one line per alert (alert_log.py).
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    alerts = [line for line in lines if line["event"] == "alert"]
    assert sorted((a["outcome"], a["receiver"], a["job_id"]) for a in alerts) == [
        ("sent", "data", 92583),
        ("sent", "ops", 92583),
    ]
    assert not [value for value in SHELL.values() if value in run.stderr + run.stdout]


def test_make_package_prints_every_variable_the_deploy_must_provide_and_no_value(
    story: Any,
) -> None:
    _, code, report = story
    for token_env, _, secret_env, _ in ROBOTS.values():
        assert re.search(rf"^  {token_env} +receivers\[\d\]\.webhook$", report, re.M), report
        assert re.search(rf"^  {secret_env} +receivers\[\d\]\.secret$", report, re.M), report
    assert f"all in {SECRETS_ENV}" in report and "RobotSecrets" in report
    assert not [value for value in BUILD_SHELL.values() if value in report]
    shipped = (code / "config.json").read_text(encoding="utf-8")
    assert not [value for value in BUILD_SHELL.values() if value in shipped]


def test_two_robots_through_s_yaml_as_shipped(story: Any, tmp_path: Path) -> None:
    world, code, report = story
    env = deployed_env_s_yaml(tmp_path, secrets_as_printed(report, SHELL))
    assert_both_robots_heard(world, fc_tick(code, env, tmp_path))


def test_two_robots_through_template_yml_as_shipped(story: Any, tmp_path: Path) -> None:
    world, code, report = story
    env = deployed_env_template(secrets_as_printed(report, SHELL))
    assert_both_robots_heard(world, fc_tick(code, env, tmp_path))


def test_a_robot_secret_left_out_of_the_deploy_is_named_and_nothing_is_sent(
    story: Any, tmp_path: Path
) -> None:
    world, code, _ = story
    shell = {k: v for k, v in SHELL.items() if k != "DT_DATA_SECRET"}
    secrets = json.dumps(shell)
    env = deployed_env_template(secrets)
    run = fc_tick(code, env, tmp_path)
    assert run.returncode != 0
    assert "receivers[1].secret: environment variable DT_DATA_SECRET is not set" in run.stderr
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    hint = [line for line in lines if SECRETS_ENV in line["message"]]
    assert hint and "it holds DT_DATA_TOKEN, DT_OPS_SECRET, DT_OPS_TOKEN" in hint[0]["message"]
    assert not [value for value in SHELL.values() if value in run.stderr + run.stdout]
    for _, token, _, _ in ROBOTS.values():
        assert world.dt.texts(token) == []


def test_the_deploy_files_carry_no_per_robot_variable() -> None:
    """No variable, parameter or environment name belongs to one robot: the one object
    carries them all."""
    per_robot = re.compile(r"DT_|webhook|DingTalk|Robot(?!Secrets$)", re.I)
    template = deploy_checks.load_yaml("template.yml")
    assert not [p for p in template["Parameters"] if per_robot.search(p)]
    functions = deploy_checks.resources_of(template, "ALIYUN::FC3::Function")
    envs = [set(f["EnvironmentVariables"]) for f in functions]
    for name in ("s.yaml", "s.actions.yaml"):
        raw = deploy_checks.load_yaml(name)
        assert not [v for v in raw.get("vars", {}) if per_robot.search(v)], name
        envs += [set(r["props"].get("environmentVariables", {})) for r in raw["resources"].values()]
    assert all(env and all(n.startswith("SCHEDULERX_ALERT_") for n in env) for env in envs)


# -- the function's side -------------------------------------------------------------------------


def test_the_objects_entries_join_the_environment() -> None:
    env = {SECRETS_ENV: json.dumps(SHELL), "DT_OPS_TOKEN": SHELL["DT_OPS_TOKEN"]}
    assert apply(env) == sorted(SHELL)
    assert {name: env[name] for name in SHELL} == SHELL
    assert apply({}) == [] and apply({SECRETS_ENV: " "}) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"DT_OPS_TOKEN": "tok-value', "it is not JSON (Unterminated string"),
        ('["tok-value"]', "must be a JSON object such as"),
        ('{"DT OPS": "tok-value"}', "'DT OPS' is not a variable name"),
        ('{"FC_REGION": "tok-value"}', "FC_REGION: FC reserves names starting with FC_"),
        ('{"DT_OPS_TOKEN": 12345}', "DT_OPS_TOKEN: its value must be a JSON string, not int"),
    ],
)
def test_an_unusable_object_is_refused_by_name_never_showing_a_value(
    text: str, expected: str
) -> None:
    with pytest.raises(SecretsError) as caught:
        secrets_in({SECRETS_ENV: text})
    assert expected in str(caught.value)
    assert "tok-value" not in str(caught.value) and "12345" not in str(caught.value)


def test_a_secret_set_two_ways_with_two_values_is_refused() -> None:
    env = {SECRETS_ENV: json.dumps({"DT_OPS_TOKEN": "one-value"}), "DT_OPS_TOKEN": "two-value"}
    with pytest.raises(SecretsError, match="DT_OPS_TOKEN also set as a variable of its own"):
        apply(env)
    assert env["DT_OPS_TOKEN"] == "two-value"


def test_the_hint_names_what_the_object_holds() -> None:
    problem = "receivers[1].secret: environment variable DT_DATA_SECRET is not set"
    hint = missing_hint(problem, {SECRETS_ENV: json.dumps({"DT_OPS_TOKEN": "v"})})
    assert hint is not None and "it holds DT_OPS_TOKEN" in hint and '"v"' not in hint
    assert "it is unset or empty" in (missing_hint(problem, {}) or "")
    assert missing_hint("watch: must be a non-empty list", {}) is None


# -- what make package says ------------------------------------------------------------------


def _build_script() -> Any:
    spec = importlib.util.spec_from_file_location("build_package", BUILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_links_keys_are_named_where_each_deploy_file_takes_them() -> None:
    build = _build_script()
    config = {
        "receivers": [{"webhook": "https://x/robot/send?access_token=${T}", "secret": "${S}"}],
        "actions": {"enabled": True},
    }
    report = build.variables_report(json.dumps(config))
    assert re.search(r"^  T  receivers\[0\]\.webhook$", report, re.M)
    assert "The silence links' keys: SCHEDULERX_ALERT_ACTION_KEYS (s.actions.yaml" in report
    assert '"T S".split()' in report
    # A variable of its own choosing cannot be passed by s.actions.yaml: it joins the object.
    config["actions"] = {"enabled": True, "key_env": "LINK_KEYS"}
    report = build.variables_report(json.dumps(config))
    assert '"T S LINK_KEYS".split()' in report and "silence links' keys" not in report


def test_a_variable_fc_reserves_stops_the_build_and_a_big_object_is_warned_of() -> None:
    build = _build_script()
    with pytest.raises(SystemExit, match="the config names FC_TOKEN: FC reserves"):
        build.variables_report(json.dumps({"secret": "${FC_TOKEN}"}))
    many = {"receivers": [{"secret": f"${{DT_ROBOT_{n}_SECRET}}"} for n in range(40)]}
    assert "Warning: with robot-sized values" in build.variables_report(json.dumps(many))
    few = {"receivers": [{"secret": f"${{DT_ROBOT_{n}_SECRET}}"} for n in range(4)]}
    assert "Warning" not in build.variables_report(json.dumps(few))
