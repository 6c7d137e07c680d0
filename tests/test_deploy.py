"""s.yaml and template.yml, checked offline since neither `s deploy` nor ROS runs here.

* s.yaml's fc3 props validate against the fc3 component's JSON schema
  (shared/reference/fc3-schema.json) once ${vars.x}, ${env(X)} and ${config(...)}
  are resolved, and carry the values the function depends on.
* Every template.yml resource's properties exist for its type (nested structs too),
  and every Fn::GetAtt names a real attribute, per the ROS CDK packages' jsii
  specs, read from their wheels (never imported): `.jsii` for the types and
  `lib/*.generated.js` for the exact ROS property names (`ttl` is `TTL`).
* Both files agree, and the RAM policy (the same in both) grants exactly the
  actions the code calls: SchedulerX's from schedulerx.RAM_ACTIONS, OSS's from the
  OSS client's calls in storage/store.py (on the state's prefix) and in config/oss.py (on the
  one key of a pushed config), each through oss_client.RAM_ACTIONS, and log writing.
"""

from __future__ import annotations

import ast
import io
import json
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from schedulerx_alert.sources.schedulerx import RAM_ACTIONS
from schedulerx_alert.storage import oss_client
from schedulerx_alert.support.deploy_secrets import SECRETS_ENV

ROOT = Path(__file__).resolve().parent.parent
# The fc3 component's JSON schema (MIT), kept here so the repo tests itself.
SCHEMA = ROOT / "tests" / "data" / "fc3-schema.json"
STORE = ROOT / "src" / "schedulerx_alert" / "storage" / "store.py"
# The function's read of a config kept in OSS (`config push` runs with the operator's keys).
CONFIG_READER = ROOT / "src" / "schedulerx_alert" / "storage" / "config_object.py"
ROS_CDK = ("ros-cdk-fc3", "ros-cdk-ram", "ros-cdk-sls")
ROS_CDK_VERSION = "1.15.0"
ROS_CDK_CACHE = ROOT / "build" / f"ros-cdk-{ROS_CDK_VERSION}"
ACCOUNT = "1234567890123456"

# What FC needs on the function's role to write the function's logs to SLS.
LOG_ACTIONS = frozenset({"log:PostLogStoreLogs"})
MIN, MAX_EVENT_AGE = 60, 600

# -- s.yaml ---------------------------------------------------------------------------------


def load_yaml(name: str) -> Any:
    return yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))


_MAGIC = re.compile(r"\$\{\s*(vars\.[\w.]+|env\(\s*'?(\w+)'?\s*\)|config\(\s*'(\w+)'\s*\))\s*\}")


def resolve(value: Any, variables: Mapping[str, Any]) -> Any:
    """Serverless Devs' magic variables: vars keep their type when they are the whole value."""
    if isinstance(value, dict):
        return {k: resolve(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, variables) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> Any:
        expression, env, config = match.group(1), match.group(2), match.group(3)
        if env:
            return f"<env:{env}>"
        if config:
            assert config == "AccountID", config
            return ACCOUNT
        name = expression.split(".", 1)[1]
        assert name in variables, f"undefined ${{{expression}}}"
        return resolve(variables[name], variables)

    whole = _MAGIC.fullmatch(value)
    if whole:
        return one(whole)
    return _MAGIC.sub(lambda m: str(one(m)), value)


@pytest.fixture(scope="module")
def s_yaml() -> dict[str, Any]:
    raw = load_yaml("s.yaml")
    resolved: dict[str, Any] = resolve(raw, raw.get("vars", {}))
    return resolved


@pytest.fixture(scope="module")
def props(s_yaml: dict[str, Any]) -> dict[str, Any]:
    resources = s_yaml["resources"]
    assert len(resources) == 1
    (resource,) = resources.values()
    assert resource["component"] == "fc3"
    found: dict[str, Any] = resource["props"]
    return found


def test_s_yaml_props_validate_against_the_fc3_schema(props: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(props)]
    assert errors == []
    # The schema takes unknown keys silently: each one must be a property it defines.
    assert set(props) <= set(schema["properties"])
    for trigger in props["triggers"]:
        assert set(trigger) <= set(schema["definitions"]["ITrigger"]["properties"])


def test_s_yaml_values(s_yaml: dict[str, Any], props: dict[str, Any]) -> None:
    assert s_yaml["edition"] == "3.0.0"
    assert {"region", "bucket", "statePrefix", "functionName", "configKey"} <= set(s_yaml["vars"])
    assert props["runtime"] in ("python3.10", "python3.12")
    assert props["handler"] == "index.handler"
    assert props["code"] == "./dist/code"
    assert (props["timeout"], props["memorySize"]) == (60, 128)
    # FC 3.0: memory (GB) per vCPU between 1 and 4, vCPU in steps of 0.05.
    assert 1 <= props["memorySize"] / 1024 / props["cpu"] <= 4
    assert round(props["cpu"] / 0.05, 6).is_integer()
    assert props["logConfig"] == "auto"
    assert props["role"] == f"acs:ram::{ACCOUNT}:role/{s_yaml['vars']['roleName']}"
    assert props["asyncInvokeConfig"]["maxAsyncRetryAttempts"] == 0
    assert MIN <= props["asyncInvokeConfig"]["maxAsyncEventAgeInSeconds"] <= MAX_EVENT_AGE
    assert props["concurrencyConfig"]["reservedConcurrency"] == 1
    (trigger,) = props["triggers"]
    assert trigger["triggerType"] == "timer"
    assert trigger["triggerConfig"]["enable"] is True
    assert every_minute(trigger["triggerConfig"]["cronExpression"])


def test_secrets_come_from_the_deployers_environment_never_from_the_file() -> None:
    raw = load_yaml("s.yaml")
    (resource,) = raw["resources"].values()
    env = resource["props"]["environmentVariables"]
    assert env["SCHEDULERX_ALERT_CONFIG"] == "${vars.config}"
    # What `make package` ships: the function reads JSON, never loading a YAML parser.
    assert raw["vars"]["config"] == "/code/config.json"
    # Every ${VAR} of the config, however many robots, in one JSON object from the shell
    # (tests/test_deploy_secrets.py deploys a two-robot config through it).
    secrets = {k: v for k, v in env.items() if k != "SCHEDULERX_ALERT_CONFIG"}
    assert secrets == {SECRETS_ENV: f"${{env({SECRETS_ENV})}}"}


def test_every_variable_s_yaml_declares_is_read(s_yaml: dict[str, Any]) -> None:
    """A variable nothing reads looks like a setting and does nothing."""
    raw = load_yaml("s.yaml")
    uses = json.dumps(raw["resources"]) + json.dumps(load_yaml("s.actions.yaml"))
    uses += json.dumps(raw["vars"])  # vars.ramPolicy names vars.bucket, ...
    unread = [name for name in raw["vars"] if f"${{vars.{name}}}" not in uses]
    # ramPolicy is the policy to create the role with (README, Deploy); the tests hold
    # it to the code and to template.yml's.
    assert unread == ["ramPolicy"]


def walk_strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk_strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk_strings(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value


def every_minute(cron: str) -> bool:
    if cron.strip() == "@every 1m":
        return True
    fields = cron.split()
    return (
        len(fields) == 6
        and fields[0].isdigit()
        and fields[1:] in (["*"] * 5, ["*", "*", "*", "*", "?"])
    )


def test_the_package_is_built_for_the_runtime_s_yaml_deploys(props: dict[str, Any]) -> None:
    script = ROOT / "scripts" / "build_package.py"
    out = subprocess.run(
        [sys.executable, str(script), "--print-python-version"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert f"python{out}" == props["runtime"]


def test_the_example_config_keeps_state_where_the_policy_allows(s_yaml: dict[str, Any]) -> None:
    config = load_yaml("config.example.yaml")
    state = urlsplit(config["state"]["url"])
    prefix = state.path.lstrip("/").rpartition("/")[0]
    assert (state.netloc, prefix) == (s_yaml["vars"]["bucket"], s_yaml["vars"]["statePrefix"])
    assert config["region"] == s_yaml["vars"]["region"]
    parameters = load_yaml("template.yml")["Parameters"]
    assert parameters["StateBucket"]["Default"] == state.netloc
    assert parameters["StatePrefix"]["Default"] == prefix


# -- the ROS resource specs -----------------------------------------------------------------


@dataclass
class RosSpec:
    """Types of the ROS CDK jsii assemblies, and the ROS names of each struct's properties."""

    types: dict[str, Any] = field(default_factory=dict)
    ros_names: dict[str, dict[str, str]] = field(default_factory=dict)  # fn -> js -> ROS
    resources: dict[str, str] = field(default_factory=dict)  # ALIYUN::X::Y -> class fqn
    # Validator name (RosIndex_KeyIndicesProperty) -> jsii property -> the values it allows.
    allowed: dict[str, dict[str, list[Any]]] = field(default_factory=dict)

    def add(self, jsii: dict[str, Any], javascript: str) -> None:
        self.types.update(jsii["types"])
        for match in re.finditer(
            r"function (Ros\w+?)Validator\(properties\) \{(.*?)\n\}", javascript, re.S
        ):
            choices = re.findall(
                r"propertyValidator\('(\w+)', ros\.validateAllowedValues\)\(\{\s*"
                r"data: [^,]+,\s*allowedValues: (\[[^\]]*\])",
                match.group(2),
            )
            self.allowed[match.group(1)] = {name: json.loads(values) for name, values in choices}
        for match in re.finditer(
            r"function (\w+)ToRosTemplate\(properties[^)]*\) \{(.*?)\n\}", javascript, re.S
        ):
            pairs = re.findall(r"'(\w+)': [^\n]*\(properties\.(\w+)\)", match.group(2))
            names = {js: ros for ros, js in pairs}
            self.ros_names[match.group(1)] = names
        for fqn, spec in jsii["types"].items():
            summary = spec.get("docs", {}).get("summary", "")
            found = re.search(r"ROS resource type `(ALIYUN::\w+::\w+)`", summary)
            if spec.get("kind") == "class" and found and fqn.split(".")[-1].startswith("Ros"):
                self.resources[found.group(1)] = fqn

    def allowed_values(self, fqn: str) -> dict[str, list[Any]]:
        """jsii property -> the values ROS allows it, for a props/struct fqn."""
        return self.allowed.get(fqn.split(".", 1)[1].replace(".", "_"), {})

    def struct_names(self, fqn: str) -> dict[str, tuple[str, Any, bool]]:
        """ROS property name -> (jsii name, type, required) for a props/struct fqn."""
        local = fqn.split(".", 1)[1].replace(".", "")
        mapping = self.ros_names[local[0].lower() + local[1:]]
        result = {}
        for prop in self.types[fqn]["properties"]:
            ros = mapping.get(prop["name"], prop["name"][0].upper() + prop["name"][1:])
            result[ros] = (prop["name"], prop["type"], not prop.get("optional", False))
        return result

    def attributes(self, resource_type: str) -> set[str]:
        spec = self.types[self.resources[resource_type]]
        return {p["name"][4:] for p in spec.get("properties", []) if p["name"].startswith("attr")}

    def structs_in(self, type_ref: Any, collection: str | None = None) -> Iterator[str]:
        """Struct fqns a property of this type may hold (inside `collection` if given)."""
        if not isinstance(type_ref, dict):
            return
        if "union" in type_ref:
            for member in type_ref["union"]["types"]:
                yield from self.structs_in(member, collection)
        elif "collection" in type_ref:
            if collection == type_ref["collection"]["kind"]:
                yield from self.structs_in(type_ref["collection"]["elementtype"])
        elif "fqn" in type_ref and collection is None:
            spec = self.types.get(type_ref["fqn"], {})
            if spec.get("kind") == "interface" and spec.get("datatype"):
                yield type_ref["fqn"]


def download_ros_cdk() -> list[Path]:
    wheels = sorted(ROS_CDK_CACHE.glob("*.whl"))
    if len(wheels) == len(ROS_CDK):
        return wheels
    ROS_CDK_CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            str(ROS_CDK_CACHE),
            *(f"{name}=={ROS_CDK_VERSION}" for name in ROS_CDK),
        ],
        check=True,
        capture_output=True,
    )
    return sorted(ROS_CDK_CACHE.glob("*.whl"))


@pytest.fixture(scope="module")
def ros_spec() -> RosSpec:
    spec = RosSpec()
    for wheel in download_ros_cdk():
        with zipfile.ZipFile(wheel) as zf:
            (tgz,) = [n for n in zf.namelist() if n.endswith(".jsii.tgz")]
            data = zf.read(tgz)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            jsii = json.load(_member(tar, "package/.jsii"))
            javascript = "\n".join(
                _member(tar, m.name).read().decode()
                for m in tar.getmembers()
                if m.name.startswith("package/lib/") and m.name.endswith(".generated.js")
            )
        spec.add(jsii, javascript)
    return spec


def _member(tar: tarfile.TarFile, name: str) -> io.BufferedReader:
    handle = tar.extractfile(name)
    assert handle is not None, name
    return handle  # type: ignore[return-value]


# -- template.yml ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml("template.yml")
    return loaded


def is_intrinsic(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and len(value) == 1
        and next(iter(value)).startswith(("Fn::", "Ref"))
    )


def check_struct(
    spec: RosSpec, fqn: str, value: dict[str, Any], where: str, problems: list[str]
) -> None:
    names = spec.struct_names(fqn)
    allowed = spec.allowed_values(fqn)
    for key, item in value.items():
        if key not in names:
            problems.append(f"{where}.{key}: no such property (known: {', '.join(sorted(names))})")
            continue
        choices = allowed.get(names[key][0])
        if choices is not None and not is_intrinsic(item) and item not in choices:
            problems.append(f"{where}.{key}: {item!r} is not one of {choices}")
        check_value(spec, names[key][1], item, f"{where}.{key}", problems)
    for key, (_, _, required) in names.items():
        if required and key not in value:
            problems.append(f"{where}.{key}: required")


def check_value(spec: RosSpec, type_ref: Any, value: Any, where: str, problems: list[str]) -> None:
    if is_intrinsic(value):
        return
    if isinstance(value, dict):
        structs = list(spec.structs_in(type_ref))
        if structs:
            check_struct(spec, structs[0], value, where, problems)
    elif isinstance(value, list):
        structs = list(spec.structs_in(type_ref, "array"))
        for index, item in enumerate(value):
            if structs and isinstance(item, dict) and not is_intrinsic(item):
                check_struct(spec, structs[0], item, f"{where}[{index}]", problems)


def test_template_header_and_secret_parameters(template: dict[str, Any]) -> None:
    assert template["ROSTemplateFormatVersion"] == "2015-09-01"
    parameters = template["Parameters"]
    assert parameters["RobotSecrets"]["NoEcho"] is True
    assert "Default" not in parameters["RobotSecrets"]
    assert template["Outputs"]


def test_every_resource_property_exists_for_its_type(
    template: dict[str, Any], ros_spec: RosSpec
) -> None:
    problems: list[str] = []
    for name, resource in template["Resources"].items():
        kind = resource["Type"]
        assert kind in ros_spec.resources, f"{name}: unknown resource type {kind}"
        props_fqn = ros_spec.resources[kind] + "Props"
        check_struct(ros_spec, props_fqn, resource.get("Properties", {}), name, problems)
    assert problems == []


def test_every_reference_resolves(template: dict[str, Any], ros_spec: RosSpec) -> None:
    resources = template["Resources"]
    names = set(template["Parameters"]) | set(resources)
    pseudo = {
        "ALIYUN::Region",
        "ALIYUN::AccountId",
        "ALIYUN::StackName",
        "ALIYUN::StackId",
        "ALIYUN::NoValue",
    }
    conditions = set(template.get("Conditions", {}))
    problems = []
    for kind, value in walk(template):
        if kind == "Fn::If" and value[0] not in conditions:
            problems.append(f"Fn::If {value[0]}")
    for section in ("Resources", "Outputs"):
        for name, entry in template.get(section, {}).items():
            if "Condition" in entry and entry["Condition"] not in conditions:
                problems.append(f"{section}.{name}.Condition {entry['Condition']}")
    for kind, value in walk(template):
        if kind == "Ref" and value not in names | pseudo:
            problems.append(f"Ref {value}")
        elif kind == "Fn::GetAtt":
            target, attribute = value
            if attribute not in ros_spec.attributes(resources[target]["Type"]):
                problems.append(f"Fn::GetAtt {target}.{attribute}")
        elif kind == "Fn::Sub":
            for ref in re.findall(r"\$\{([\w:]+)\}", value):
                if ref not in names | pseudo:
                    problems.append(f"Fn::Sub ${{{ref}}}")
    for name, resource in resources.items():
        depends = resource.get("DependsOn", [])
        for target in [depends] if isinstance(depends, str) else depends:
            if target not in resources:
                problems.append(f"{name}.DependsOn {target}")
    assert problems == []


def walk(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" or key.startswith("Fn::"):
                yield key, item
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def resources_of(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r.get("Properties", {}) for r in template["Resources"].values() if r["Type"] == kind]


_NO_VALUE = object()


def stack(template: dict[str, Any], **parameters: str) -> dict[str, Any]:
    """The template as ROS creates it with these parameters (others at their defaults):
    conditions decided, resources and outputs whose condition is false left out,
    `Fn::If` chosen, `Ref: ALIYUN::NoValue` removed."""
    values = {name: p.get("Default") for name, p in template["Parameters"].items()}
    values.update(parameters)

    def operand(value: Any) -> Any:
        return values[value["Ref"]] if isinstance(value, dict) and "Ref" in value else value

    truth = {}
    for name, condition in template.get("Conditions", {}).items():
        ((function, (left, right)),) = condition.items()
        assert function == "Fn::Equals", f"{name}: only Fn::Equals is understood here"
        truth[name] = operand(left) == operand(right)

    def decide(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"Fn::If"}:
                name, yes, no = value["Fn::If"]
                return decide(yes if truth[name] else no)
            if value == {"Ref": "ALIYUN::NoValue"}:
                return _NO_VALUE
            kept = {k: decide(v) for k, v in value.items()}
            return {k: v for k, v in kept.items() if v is not _NO_VALUE}
        if isinstance(value, list):
            return [v for v in (decide(item) for item in value) if v is not _NO_VALUE]
        return value

    created: dict[str, Any] = decide({k: v for k, v in template.items() if k != "Conditions"})
    for section in ("Resources", "Outputs"):
        created[section] = {
            name: {k: v for k, v in entry.items() if k != "Condition"}
            for name, entry in created.get(section, {}).items()
            if truth.get(entry.get("Condition", ""), True)
        }
    return created


def test_template_and_s_yaml_agree(
    template: dict[str, Any], props: dict[str, Any], s_yaml: dict[str, Any]
) -> None:
    # With its parameters at their defaults (no silence links), as s.yaml deploys it.
    template = stack(template)
    (function,) = resources_of(template, "ALIYUN::FC3::Function")
    parameters = template["Parameters"]
    assert parameters["Runtime"]["Default"] == props["runtime"]
    assert set(parameters["Runtime"]["AllowedValues"]) == {"python3.10", "python3.12"}
    assert parameters["FunctionName"]["Default"] == props["functionName"]
    assert parameters["RoleName"]["Default"] == s_yaml["vars"]["roleName"]
    for ros, fc3 in (
        ("Handler", "handler"),
        ("Timeout", "timeout"),
        ("MemorySize", "memorySize"),
        ("Cpu", "cpu"),
        ("DiskSize", "diskSize"),
        ("InternetAccess", "internetAccess"),
    ):
        assert function[ros] == props[fc3], ros
    assert set(function["EnvironmentVariables"]) == set(props["environmentVariables"])
    assert function["EnvironmentVariables"]["SCHEDULERX_ALERT_CONFIG"] == {"Ref": "Config"}
    assert (
        parameters["Config"]["Default"] == props["environmentVariables"]["SCHEDULERX_ALERT_CONFIG"]
    )
    assert parameters["ConfigKey"]["Default"] == s_yaml["vars"]["configKey"]
    for secret in set(props["environmentVariables"]) - {"SCHEDULERX_ALERT_CONFIG"}:
        assert parameters[function["EnvironmentVariables"][secret]["Ref"]]["NoEcho"] is True
    (retry,) = resources_of(template, "ALIYUN::FC3::AsyncInvokeConfig")
    assert retry["MaxAsyncRetryAttempts"] == props["asyncInvokeConfig"]["maxAsyncRetryAttempts"]
    age = props["asyncInvokeConfig"]["maxAsyncEventAgeInSeconds"]
    assert retry["MaxAsyncEventAgeInSeconds"] == age
    (concurrency,) = resources_of(template, "ALIYUN::FC3::ConcurrencyConfig")
    assert concurrency["ReservedConcurrency"] == props["concurrencyConfig"]["reservedConcurrency"]
    (trigger,) = resources_of(template, "ALIYUN::FC3::Trigger")
    (s_trigger,) = props["triggers"]
    assert trigger["TriggerType"] == s_trigger["triggerType"] == "timer"
    assert trigger["TriggerName"] == s_trigger["triggerName"]
    assert trigger["TriggerConfig"] == s_trigger["triggerConfig"]


# -- the RAM policy -------------------------------------------------------------------------


def oss_actions_of(module: Path) -> set[str]:
    """The RAM actions of the OSS client calls in one module (`<x>.bucket.<operation>(...)`),
    each operation's from oss_client.RAM_ACTIONS (tests/test_oss_client.py checks that
    every operation of the client is there)."""
    calls = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Attribute)
            and node.func.value.attr == "bucket"
        ):
            calls.add(node.func.attr)
    assert calls, f"no OSS client call found in {module.name}"
    unknown = calls - set(oss_client.RAM_ACTIONS)
    assert not unknown, f"{module.name} calls {unknown}, which have no RAM action in oss_client"
    return {oss_client.RAM_ACTIONS[call] for call in calls}


def actions_the_code_calls() -> set[str]:
    """SchedulerX actions from RAM_ACTIONS; OSS actions from the OSS client calls in the code."""
    oss = oss_actions_of(STORE) | oss_actions_of(CONFIG_READER)
    return set(RAM_ACTIONS.values()) | oss | LOG_ACTIONS


def normalised_policy(document: Any, substitutions: Mapping[str, str]) -> list[dict[str, Any]]:
    statements = []
    for statement in document["Statement"]:
        resource = statement["Resource"]
        if isinstance(resource, dict):
            resource = resource["Fn::Sub"]
        for old, new in substitutions.items():
            resource = resource.replace(old, new)
        actions = statement["Action"]
        statements.append(
            {
                "Effect": statement["Effect"],
                "Action": sorted([actions] if isinstance(actions, str) else actions),
                "Resource": resource,
            }
        )
    return sorted(statements, key=lambda s: s["Action"])


@pytest.fixture(scope="module")
def policies(template: dict[str, Any], s_yaml: dict[str, Any]) -> list[list[dict[str, Any]]]:
    (role,) = resources_of(template, "ALIYUN::RAM::Role")
    (inline,) = role["Policies"]
    parameters = template["Parameters"]
    ros = normalised_policy(
        inline["PolicyDocument"],
        {
            "${StateBucket}": parameters["StateBucket"]["Default"],
            "${StatePrefix}": parameters["StatePrefix"]["Default"],
            "${ConfigKey}": parameters["ConfigKey"]["Default"],
            "${ALIYUN::Region}": s_yaml["vars"]["region"],
        },
    )
    serverless = normalised_policy(s_yaml["vars"]["ramPolicy"], {})
    return [ros, serverless]


def test_the_policy_is_the_same_in_both_files(policies: list[list[dict[str, Any]]]) -> None:
    ros, serverless = policies
    assert ros == serverless


def test_the_policy_grants_exactly_what_the_code_calls(
    policies: list[list[dict[str, Any]]], s_yaml: dict[str, Any]
) -> None:
    for policy in policies:
        granted = {action for statement in policy for action in statement["Action"]}
        assert granted == actions_the_code_calls()
        assert all("*" not in action for action in granted)
        assert all(statement["Effect"] == "Allow" for statement in policy)
        bucket, prefix = s_yaml["vars"]["bucket"], s_yaml["vars"]["statePrefix"]
        config_key = s_yaml["vars"]["configKey"]
        on_oss = {
            statement["Resource"]: set(statement["Action"])
            for statement in policy
            if any(a.startswith("oss:") for a in statement["Action"])
        }
        assert all(a.startswith("oss:") for actions in on_oss.values() for a in actions)
        # The state's prefix: what the store calls. The config: the one key, read only.
        assert on_oss == {
            f"acs:oss:*:*:{bucket}/{prefix}/*": oss_actions_of(STORE),
            f"acs:oss:*:*:{bucket}/{config_key}": {"oss:GetObject"},
        }
        assert oss_actions_of(CONFIG_READER) == {"oss:GetObject"}
        # Outside the state's prefix: the function may never overwrite its own config.
        assert not config_key.startswith(f"{prefix}/") and "*" not in config_key


def test_the_role_is_trusted_by_function_compute_only(template: dict[str, Any]) -> None:
    (role,) = resources_of(template, "ALIYUN::RAM::Role")
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRole" and statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": ["fc.aliyuncs.com"]}
    assert "PolicyAttachments" not in role
