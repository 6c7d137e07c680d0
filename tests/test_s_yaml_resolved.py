"""s.yaml as `s deploy` reads it: resolved by Serverless Devs' own parser.

tests/test_deploy.py checks s.yaml through a small resolver of its own for ${vars.x},
${env(X)} and ${config('AccountID')}. Here the real one resolves the file:
@serverless-devs/parse-spec, the library the `s` CLI bundles, at the version pinned in
tests/deploy/package-lock.json (`make deploy-tools` installs it). Credentials and the
robot's secrets are fake values in the environment, and tests/deploy/resolve_spec.js
refuses any network access, so this runs offline. The props it prints are the ones `s`
hands the fc3 component; they must be the ones test_deploy.py checked, and what the
code needs.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from schedulerx_alert.handler import CONFIG_ENV
from schedulerx_alert.support.deploy_secrets import SECRETS_ENV
from tests import test_deploy as deploy_checks

ROOT = deploy_checks.ROOT
TOOLS = ROOT / "tests" / "deploy"
SCRIPT = TOOLS / "resolve_spec.js"
PARSER = TOOLS / "node_modules" / "@serverless-devs" / "parse-spec"
# The parser's own names for a key pair given in the environment; with all three set it
# never looks at ~/.s/access.yaml nor asks STS for the account id.
CREDENTIALS = {
    "AccountID": deploy_checks.ACCOUNT,
    "AccessKeyID": "fake-access-key-id",
    "AccessKeySecret": "fake-access-key-secret",
}
SECRETS = {
    SECRETS_ENV: json.dumps({"DT_TOKEN": "fake-robot-token", "DT_SECRET": "SECfake-robot-secret"})
}


def resolve_with_s(
    home: Path, env: Mapping[str, str], s_yaml: Path = ROOT / "s.yaml"
) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    if node is None or not PARSER.is_dir():
        pytest.fail(
            "Serverless Devs' parser is not installed: run `make deploy-tools` (it installs "
            "Debian's nodejs and npm when node is missing, then the parser pinned in "
            f"{TOOLS.relative_to(ROOT)}/package-lock.json)"
        )
    # Only what `s deploy` would see from this shell: no ~/.s of the developer's, no real
    # key pair nor secret from the environment the tests run in.
    clean = {"PATH": os.environ["PATH"], "HOME": str(home)}
    clean["serverless_devs_config_home"] = str(home)  # s's own home, ~/.s by default
    return subprocess.run(
        [node, str(SCRIPT), str(s_yaml), "deploy"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    run = resolve_with_s(tmp_path_factory.mktemp("s-home"), {**CREDENTIALS, **SECRETS})
    assert run.returncode == 0, run.stderr
    answer: dict[str, Any] = json.loads(run.stdout)
    return answer


@pytest.fixture(scope="module")
def props(resolved: dict[str, Any]) -> dict[str, Any]:
    (resource,) = resolved["resources"]
    assert resource["component"] == "fc3"
    found: dict[str, Any] = resource["props"]
    return found


def strings(value: Any) -> Iterator[str]:
    yield from (text for _, text in deploy_checks.walk_strings(value))


def test_s_resolves_every_magic_variable_of_s_yaml(resolved: dict[str, Any]) -> None:
    package = json.loads((TOOLS / "package.json").read_text(encoding="utf-8"))
    assert resolved["parser"] == package["dependencies"]["@serverless-devs/parse-spec"]
    assert resolved["command"] == "deploy"
    unresolved = [text for text in strings(resolved) if "${" in text]
    assert unresolved == []
    # vars.ramPolicy is nobody's props, yet its own ${vars.x} are resolved: the policy
    # s.yaml documents is the one the function's role needs, bucket and all.
    variables = resolved["vars"]
    oss = [s for s in variables["ramPolicy"]["Statement"] if s["Action"][0].startswith("oss:")]
    assert [s["Resource"] for s in oss] == [
        f"acs:oss:*:*:{variables['bucket']}/{variables['statePrefix']}/*",
        f"acs:oss:*:*:{variables['bucket']}/{variables['configKey']}",
    ]


def test_s_hands_fc3_what_the_deploy_tests_checked(
    resolved: dict[str, Any], props: dict[str, Any]
) -> None:
    s_yaml = {"edition": resolved["edition"], "vars": resolved["vars"]}
    deploy_checks.test_s_yaml_values(s_yaml, props)
    deploy_checks.test_s_yaml_props_validate_against_the_fc3_schema(props)
    deploy_checks.test_the_package_is_built_for_the_runtime_s_yaml_deploys(props)
    # test_deploy.py's resolver reads s.yaml the way s does, so its checks against
    # template.yml and the code (the RAM policy above all) hold for what s deploys.
    raw = deploy_checks.load_yaml("s.yaml")
    ours = deploy_checks.resolve(raw, raw["vars"])
    secrets = {f"<env:{name}>": value for name, value in SECRETS.items()}
    (resource,) = ours["resources"].values()
    expected = json.loads(json.dumps(resource["props"]))
    for name, value in expected["environmentVariables"].items():
        expected["environmentVariables"][name] = secrets.get(value, value)
    assert props == expected
    assert resolved["vars"] == ours["vars"]


def test_the_function_s_deploys_runs_this_repos_handler_and_config(props: dict[str, Any]) -> None:
    module, _, name = props["handler"].rpartition(".")
    handler = getattr(importlib.import_module(module), name)
    assert list(inspect.signature(handler).parameters) == ["event", "context"]
    assert Path(inspect.getfile(handler)) == ROOT / "src" / f"{module}.py"
    # `make package` builds dist/code/ with config.json at its top; FC mounts it at /code.
    assert props["code"] == "./dist/code"
    assert props["environmentVariables"] == {CONFIG_ENV: "/code/config.json", **SECRETS}


def test_a_deployer_who_forgot_a_secret_is_stopped_before_anything_is_deployed(
    tmp_path: Path,
) -> None:
    run = resolve_with_s(tmp_path, CREDENTIALS)
    assert run.returncode != 0
    assert f"env('{SECRETS_ENV}') not found" in run.stderr
    assert run.stdout == ""


def test_without_a_key_pair_s_cannot_name_the_role(tmp_path: Path) -> None:
    run = resolve_with_s(tmp_path, SECRETS)
    assert run.returncode != 0
    assert "config('AccountID') not found" in run.stderr


def test_resolving_never_reaches_the_network(tmp_path: Path) -> None:
    # With the aliyun CLI's credentials the parser asks STS for the account id; the
    # script refuses that, and says so even though the parser swallows the refusal.
    aliyun = tmp_path / "aliyun.json"
    profile = {"name": "default", "mode": "AK", "access_key_id": "fake", "access_key_secret": "x"}
    aliyun.write_text(json.dumps({"current": "default", "profiles": [profile]}), encoding="utf-8")
    s_yaml = tmp_path / "s.yaml"
    text = (ROOT / "s.yaml").read_text(encoding="utf-8")
    s_yaml.write_text(text.replace("\naccess: default\n", "\naccess: ${aliyun-cli}\n"), "utf-8")
    run = resolve_with_s(tmp_path, {**SECRETS, "ALIBABACLOUD_CONFIG": str(aliyun)}, s_yaml)
    assert run.returncode != 0
    assert "the parser tried the network: connect sts.cn-hangzhou.aliyuncs.com:443" in run.stderr
