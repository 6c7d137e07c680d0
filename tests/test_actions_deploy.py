"""Silence links in the deployments: the HTTP trigger only when enabled, the policy unchanged.

`s.actions.yaml` extends `s.yaml` (Serverless Devs has no conditionals); `template.yml`
adds the trigger under the `ActionsEnabled` condition of its `EnableActions` parameter.
Both are read here as their tools read them: extend2's merge (mappings merged, lists
replaced) and, for s.actions.yaml, Serverless Devs' own parser too.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from schedulerx_alert.actions.page import HEADERS
from schedulerx_alert.actions.settings import DEFAULT_KEY_ENV
from tests import test_deploy as deploy_checks
from tests import test_s_yaml_resolved as resolved_checks

ROOT = deploy_checks.ROOT
ACTIONS = ROOT / "src" / "schedulerx_alert" / "actions"
SECRETS = {**resolved_checks.SECRETS, DEFAULT_KEY_ENV: "fake-signing-key-" + "k" * 32}


def extend(base: Any, override: Any) -> Any:
    """extend2(true, {}, base, override), as Serverless Devs merges a file it extends."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = extend(base.get(key), value) if isinstance(value, dict) else value
        return merged
    return override


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = deploy_checks.load_yaml("template.yml")
    return loaded


@pytest.fixture(scope="module")
def s_yaml() -> dict[str, Any]:
    raw = deploy_checks.load_yaml("s.yaml")
    resolved: dict[str, Any] = deploy_checks.resolve(raw, raw["vars"])
    return resolved


@pytest.fixture(scope="module")
def props(s_yaml: dict[str, Any]) -> dict[str, Any]:
    (resource,) = s_yaml["resources"].values()
    found: dict[str, Any] = resource["props"]
    return found


@pytest.fixture(scope="module")
def actions_yaml() -> dict[str, Any]:
    raw = deploy_checks.load_yaml("s.actions.yaml")
    assert raw.pop("extend") == "s.yaml"
    merged = extend(deploy_checks.load_yaml("s.yaml"), raw)
    resolved: dict[str, Any] = deploy_checks.resolve(merged, merged["vars"])
    return resolved


@pytest.fixture(scope="module")
def actions_props(actions_yaml: dict[str, Any]) -> dict[str, Any]:
    (resource,) = actions_yaml["resources"].values()
    assert resource["component"] == "fc3"
    found: dict[str, Any] = resource["props"]
    return found


def http_trigger(triggers: list[dict[str, Any]]) -> dict[str, Any]:
    (trigger,) = [t for t in triggers if t["triggerType"] == "http"]
    return trigger


def test_s_actions_yaml_is_s_yaml_plus_the_http_trigger_and_the_keys(
    actions_props: dict[str, Any], props: dict[str, Any]
) -> None:
    deploy_checks.test_s_yaml_props_validate_against_the_fc3_schema(actions_props)
    expected = json.loads(json.dumps(props))
    expected["environmentVariables"][DEFAULT_KEY_ENV] = f"<env:{DEFAULT_KEY_ENV}>"
    expected["concurrencyConfig"]["reservedConcurrency"] = 2
    expected["triggers"].append(http_trigger(actions_props["triggers"]))
    assert actions_props == expected
    # The HTTP trigger answers what the function answers: GET, HEAD and POST.
    trigger = http_trigger(actions_props["triggers"])
    assert trigger["qualifier"] == "LATEST"
    assert trigger["triggerConfig"]["authType"] == "anonymous"  # the links are signed
    assert set(trigger["triggerConfig"]["methods"]) == {"GET", "HEAD", "POST"}


def test_s_yaml_itself_has_no_http_trigger(props: dict[str, Any]) -> None:
    assert [t["triggerType"] for t in props["triggers"]] == ["timer"]
    assert DEFAULT_KEY_ENV not in props["environmentVariables"]


def test_serverless_devs_resolves_s_actions_yaml_as_these_tests_do(
    tmp_path: Path, actions_props: dict[str, Any]
) -> None:
    run = resolved_checks.resolve_with_s(
        tmp_path, {**resolved_checks.CREDENTIALS, **SECRETS}, ROOT / "s.actions.yaml"
    )
    assert run.returncode == 0, run.stderr
    (resource,) = json.loads(run.stdout)["resources"]
    expected = json.loads(json.dumps(actions_props))
    for name, value in expected["environmentVariables"].items():
        expected["environmentVariables"][name] = SECRETS.get(name, value)
    assert resource["props"] == expected
    without_keys = {k: v for k, v in SECRETS.items() if k != DEFAULT_KEY_ENV}
    run = resolved_checks.resolve_with_s(
        tmp_path, {**resolved_checks.CREDENTIALS, **without_keys}, ROOT / "s.actions.yaml"
    )
    assert run.returncode != 0
    assert f"env('{DEFAULT_KEY_ENV}') not found" in run.stderr


def test_the_template_adds_the_trigger_only_when_enabled(
    template: dict[str, Any], actions_props: dict[str, Any]
) -> None:
    off = deploy_checks.stack(template)
    assert [r for r in off["Resources"].values() if r["Type"] == "ALIYUN::FC3::Trigger"] == [
        off["Resources"]["Trigger"]
    ]
    (function,) = deploy_checks.resources_of(off, "ALIYUN::FC3::Function")
    assert DEFAULT_KEY_ENV not in function["EnvironmentVariables"]
    assert "SilenceLinkTriggerUrl" not in off["Outputs"]

    on = deploy_checks.stack(template, EnableActions="true")
    (function,) = deploy_checks.resources_of(on, "ALIYUN::FC3::Function")
    assert set(function["EnvironmentVariables"]) == set(actions_props["environmentVariables"])
    assert function["EnvironmentVariables"][DEFAULT_KEY_ENV] == {"Ref": "ActionKeys"}
    assert template["Parameters"]["ActionKeys"]["NoEcho"] is True
    (concurrency,) = deploy_checks.resources_of(on, "ALIYUN::FC3::ConcurrencyConfig")
    reserved = actions_props["concurrencyConfig"]["reservedConcurrency"]
    assert concurrency["ReservedConcurrency"] == reserved
    triggers = deploy_checks.resources_of(on, "ALIYUN::FC3::Trigger")
    (ros,) = [t for t in triggers if t["TriggerType"] == "http"]
    fc3 = http_trigger(actions_props["triggers"])
    assert (ros["TriggerName"], ros["Qualifier"]) == (fc3["triggerName"], fc3["qualifier"])
    assert ros["TriggerConfig"] == fc3["triggerConfig"]
    assert on["Outputs"]["SilenceLinkTriggerUrl"]["Value"] == {
        "Fn::GetAtt": ["HttpTrigger", "UrlInternet"]
    }


def test_the_policy_does_not_grow_with_the_links(
    template: dict[str, Any], actions_yaml: dict[str, Any], s_yaml: dict[str, Any]
) -> None:
    roles = [
        deploy_checks.resources_of(
            deploy_checks.stack(template, EnableActions=flag), "ALIYUN::RAM::Role"
        )
        for flag in ("false", "true")
    ]
    assert roles[0] == roles[1]
    assert actions_yaml["vars"]["ramPolicy"] == s_yaml["vars"]["ramPolicy"]
    # The links reach OSS only through the state's store (the calls test_deploy.py
    # derives the policy from), under the state's own key.
    for module in ACTIONS.glob("*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not any(name.split(".")[0] in ("oss2", "requests") for name in imported), module


def test_the_pages_are_html_the_trigger_may_answer() -> None:
    # FC's HTTP trigger refuses some response headers; none of them is set.
    refused = {"connection", "content-length", "date", "keep-alive", "server"}
    assert not {name.lower() for name in HEADERS} & refused
    assert not any(name.lower().startswith("x-fc-") for name in HEADERS)
