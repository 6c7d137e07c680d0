"""Silence links in the deployments: their own function only when enabled, the policy unchanged.

`s.actions.yaml` extends `s.yaml` (Serverless Devs has no conditionals) with the links'
keys for the timer function (a tick signs the links it sends) and a second function,
`<name>-links`, that carries the HTTP trigger; `template.yml` adds the same function and
trigger under the `ActionsEnabled` condition of its `EnableActions` parameter. The links
have a function of their own so that a flood of link requests can never hold up a tick
(issue 19 item 5): FC's concurrency limit is per function. Both files are read here as
their tools read them: extend2's merge (mappings merged, lists replaced) and, for
s.actions.yaml, Serverless Devs' own parser too.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from schedulerx_alert.config.actions import DEFAULT_KEY_ENV
from schedulerx_alert.links.page import HEADERS
from tests import test_deploy as deploy_checks
from tests import test_s_yaml_resolved as resolved_checks

ROOT = deploy_checks.ROOT
ACTIONS = ROOT / "src" / "schedulerx_alert" / "links"
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
def actions_functions(actions_yaml: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each fc3 resource's props, by resource name."""
    resources = actions_yaml["resources"]
    assert all(r["component"] == "fc3" for r in resources.values())
    return {name: r["props"] for name, r in resources.items()}


@pytest.fixture(scope="module")
def actions_props(actions_functions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The timer function's props in s.actions.yaml."""
    return actions_functions[TIMER]


@pytest.fixture(scope="module")
def links_props(actions_functions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return actions_functions[LINKS]


TIMER, LINKS = "schedulerx-alert", "schedulerx-alert-links"


def http_trigger(triggers: list[dict[str, Any]]) -> dict[str, Any]:
    (trigger,) = [t for t in triggers if t["triggerType"] == "http"]
    return trigger


def test_s_actions_yaml_is_s_yaml_plus_the_keys_and_a_links_function(
    actions_functions: dict[str, dict[str, Any]],
    actions_props: dict[str, Any],
    links_props: dict[str, Any],
    props: dict[str, Any],
) -> None:
    assert set(actions_functions) == {TIMER, LINKS}
    for function in actions_functions.values():
        deploy_checks.test_s_yaml_props_validate_against_the_fc3_schema(function)
    # The timer function: s.yaml's, with the variable of the keys its ticks sign links with.
    expected = json.loads(json.dumps(props))
    expected["environmentVariables"][DEFAULT_KEY_ENV] = f"<env:{DEFAULT_KEY_ENV}>"
    assert actions_props == expected
    # The links function: the same code, role, sizes and environment, another handler,
    # its own concurrency, the HTTP trigger and nothing else.
    links = json.loads(json.dumps(expected))
    del links["asyncInvokeConfig"]  # an HTTP request is synchronous
    links.update(
        functionName=f"{props['functionName']}-links",
        description=links_props["description"],
        handler="index.links",
        concurrencyConfig={"reservedConcurrency": 2},
        triggers=[http_trigger(links_props["triggers"])],
    )
    assert links_props == links
    # The HTTP trigger answers what the function answers: GET, HEAD and POST.
    trigger = http_trigger(links_props["triggers"])
    assert trigger["qualifier"] == "LATEST"
    assert trigger["triggerConfig"]["authType"] == "anonymous"  # the links are signed
    assert set(trigger["triggerConfig"]["methods"]) == {"GET", "HEAD", "POST"}


def test_s_yaml_itself_has_no_http_trigger(props: dict[str, Any]) -> None:
    assert [t["triggerType"] for t in props["triggers"]] == ["timer"]
    assert DEFAULT_KEY_ENV not in props["environmentVariables"]


def test_serverless_devs_resolves_s_actions_yaml_as_these_tests_do(
    tmp_path: Path, actions_functions: dict[str, dict[str, Any]]
) -> None:
    run = resolved_checks.resolve_with_s(
        tmp_path, {**resolved_checks.CREDENTIALS, **SECRETS}, ROOT / "s.actions.yaml"
    )
    assert run.returncode == 0, run.stderr
    resources = {r["name"]: r for r in json.loads(run.stdout)["resources"]}
    assert set(resources) == set(actions_functions)
    for name, props in actions_functions.items():
        expected = json.loads(json.dumps(props))
        for env, value in expected["environmentVariables"].items():
            expected["environmentVariables"][env] = SECRETS.get(env, value)
        assert resources[name]["props"] == expected, name
    without_keys = {k: v for k, v in SECRETS.items() if k != DEFAULT_KEY_ENV}
    run = resolved_checks.resolve_with_s(
        tmp_path, {**resolved_checks.CREDENTIALS, **without_keys}, ROOT / "s.actions.yaml"
    )
    assert run.returncode != 0
    assert f"env('{DEFAULT_KEY_ENV}') not found" in run.stderr


def test_the_template_adds_the_links_function_only_when_enabled(
    template: dict[str, Any], actions_props: dict[str, Any], links_props: dict[str, Any]
) -> None:
    off = deploy_checks.stack(template)
    assert [r for r in off["Resources"].values() if r["Type"] == "ALIYUN::FC3::Trigger"] == [
        off["Resources"]["Trigger"]
    ]
    (function,) = deploy_checks.resources_of(off, "ALIYUN::FC3::Function")
    assert DEFAULT_KEY_ENV not in function["EnvironmentVariables"]
    assert "SilenceLinkTriggerUrl" not in off["Outputs"]

    on = deploy_checks.stack(template, EnableActions="true")
    resources = on["Resources"]
    function, links = resources["Function"]["Properties"], resources["LinksFunction"]["Properties"]
    assert set(function["EnvironmentVariables"]) == set(actions_props["environmentVariables"])
    assert function["EnvironmentVariables"][DEFAULT_KEY_ENV] == {"Ref": "ActionKeys"}
    assert template["Parameters"]["ActionKeys"]["NoEcho"] is True
    # The links function: the timer function's code, role, sizes, logs and environment.
    same = {k: v for k, v in function.items() if k not in ("FunctionName", "Description")}
    assert {k: v for k, v in links.items() if k in same} == {**same, "Handler": "index.links"}
    assert set(links) == set(function)
    assert links["FunctionName"] == {"Fn::Sub": "${FunctionName}-links"}
    assert links["Handler"] == links_props["handler"]
    assert set(links["EnvironmentVariables"]) == set(links_props["environmentVariables"])
    concurrency = {
        r["Properties"]["FunctionName"]["Fn::GetAtt"][0]: r["Properties"]["ReservedConcurrency"]
        for r in resources.values()
        if r["Type"] == "ALIYUN::FC3::ConcurrencyConfig"
    }
    assert concurrency == {
        "Function": actions_props["concurrencyConfig"]["reservedConcurrency"],
        "LinksFunction": links_props["concurrencyConfig"]["reservedConcurrency"],
    }
    triggers = deploy_checks.resources_of(on, "ALIYUN::FC3::Trigger")
    (ros,) = [t for t in triggers if t["TriggerType"] == "http"]
    assert ros["FunctionName"] == {"Fn::GetAtt": ["LinksFunction", "FunctionName"]}
    fc3 = http_trigger(links_props["triggers"])
    assert (ros["TriggerName"], ros["Qualifier"]) == (fc3["triggerName"], fc3["qualifier"])
    assert ros["TriggerConfig"] == fc3["triggerConfig"]
    assert on["Outputs"]["SilenceLinkTriggerUrl"]["Value"] == {
        "Fn::GetAtt": ["HttpTrigger", "UrlInternet"]
    }


def functions_of_s_yaml(functions: dict[str, dict[str, Any]]) -> dict[str, tuple[set[str], int]]:
    """Function -> (its triggers' types, its reserved concurrency), as s deploys them."""
    return {
        props["functionName"]: (
            {t["triggerType"] for t in props.get("triggers", [])},
            props["concurrencyConfig"]["reservedConcurrency"],
        )
        for props in functions.values()
    }


def functions_of_template(created: dict[str, Any]) -> dict[str, tuple[set[str], int]]:
    """The same for the stack ROS creates (a function named by its resource)."""
    resources = created["Resources"]

    def target(props: dict[str, Any]) -> str:
        name: str = props["FunctionName"]["Fn::GetAtt"][0]
        return name

    out: dict[str, tuple[set[str], int]] = {}
    for name, resource in resources.items():
        if resource["Type"] != "ALIYUN::FC3::Function":
            continue
        kinds = {
            r["Properties"]["TriggerType"]
            for r in resources.values()
            if r["Type"] == "ALIYUN::FC3::Trigger" and target(r["Properties"]) == name
        }
        (reserved,) = [
            r["Properties"]["ReservedConcurrency"]
            for r in resources.values()
            if r["Type"] == "ALIYUN::FC3::ConcurrencyConfig" and target(r["Properties"]) == name
        ]
        out[name] = (kinds, reserved)
    return out


def test_the_timer_never_waits_on_the_link_endpoint(
    template: dict[str, Any], actions_functions: dict[str, dict[str, Any]]
) -> None:
    """FC's concurrency limit is per function: the function the timer calls takes no
    link request, and keeps its one instance; the links' function has a limit of its own."""
    for deployed in (
        functions_of_s_yaml(actions_functions),
        functions_of_template(deploy_checks.stack(template, EnableActions="true")),
    ):
        (timer,) = [name for name, (kinds, _) in deployed.items() if "timer" in kinds]
        (links,) = [name for name, (kinds, _) in deployed.items() if "http" in kinds]
        assert timer != links
        assert deployed[timer] == ({"timer"}, 1)
        assert deployed[links] == ({"http"}, 2)


def test_the_links_handler_never_runs_a_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever reaches the links function is answered as a link request: a timer's
    event (a trigger added by hand) gets a 400 page, and nothing is polled or sent."""
    import index

    def no_tick(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("the links function ran a tick")

    monkeypatch.setattr(index, "handle", no_tick)
    timer = b'{"triggerTime": "2026-11-25T02:00:00Z", "triggerName": "every-minute"}'
    context = SimpleNamespace(request_id="1-links", function=SimpleNamespace(timeout=60))
    answer = json.loads(index.links(timer, context))
    assert answer["statusCode"] == 400


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


def test_the_write_actions_live_in_their_own_policy_attached_only_with_operations(
    template: dict[str, Any], actions_yaml: dict[str, Any], s_yaml: dict[str, Any]
) -> None:
    from schedulerx_alert.sources.schedulerx import (
        OPERATION_CALLS,
        RAM_ACTIONS,
        WRITE_RAM_ACTIONS,
    )
    from tests.fakes.schedulerx import FakeSchedulerX

    writes = set(WRITE_RAM_ACTIONS.values())
    # Every operation the links call has its RAM action; the loopback server takes each.
    assert {action for action, _ in OPERATION_CALLS.values()} == set(WRITE_RAM_ACTIONS)
    assert set(FakeSchedulerX.WRITES) == set(WRITE_RAM_ACTIONS)
    assert not writes & set(RAM_ACTIONS.values())

    def granted(document: dict[str, Any]) -> set[str]:
        return {a for statement in document["Statement"] for a in statement["Action"]}

    read_only = deploy_checks.resources_of(deploy_checks.stack(template), "ALIYUN::RAM::Role")
    for flags in ({}, {"EnableActions": "true"}):
        stack = deploy_checks.stack(template, **flags)
        assert deploy_checks.resources_of(stack, "ALIYUN::RAM::ManagedPolicy") == []
        (role,) = deploy_checks.resources_of(stack, "ALIYUN::RAM::Role")
        assert not granted(role["Policies"][0]["PolicyDocument"]) & writes
    on = deploy_checks.stack(template, EnableActions="true", EnableOperations="true")
    (policy,) = deploy_checks.resources_of(on, "ALIYUN::RAM::ManagedPolicy")
    assert granted(policy["PolicyDocument"]) == writes
    assert policy["Roles"] == [{"Fn::GetAtt": ["Role", "RoleName"]}]
    # The role's own policy is the same with operations on: the writes are the other one's.
    assert deploy_checks.resources_of(on, "ALIYUN::RAM::Role") == read_only

    # Serverless Devs creates no role: s.actions.yaml carries the same policy to attach.
    assert actions_yaml["vars"]["operationsPolicy"] == policy["PolicyDocument"]
    assert not granted(s_yaml["vars"]["ramPolicy"]) & writes
    assert not granted(actions_yaml["vars"]["ramPolicy"]) & writes
