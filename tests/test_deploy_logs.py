"""The SLS index the deploy files create names exactly the keys the function logs.

FC writes each line of the function into a log entry's `message` field; every line is
one JSON object (docs/operations.md, "Logs"). template.yml's LogIndex indexes `message` as JSON with
a sub-key for every key of the tick summary (TickSummary's counts and status), of each
alert's outcome (alert_log.INDEX_KEYS) and of every line (level, request_id, event ...).
s.yaml's fc3 component cannot declare an index (its logConfig has no such field: the
schema is checked here), so sls-index.json holds the same index for the one command the
docs/operations.md gives. tests/test_deploy.py checks every ROS property name and allowed value.
"""

from __future__ import annotations

import dataclasses
import json
import re

from schedulerx_alert.delivery.alert_log import INDEX_KEYS
from schedulerx_alert.tick import TickSummary
from tests import test_deploy as deploy_checks

ROOT = deploy_checks.ROOT
# Keys of every line (logs.JsonFormatter) and of an exception leaving the handler.
LINE_KEYS = {
    "level": "text",
    "request_id": "text",
    "event": "text",
    "message": "text",
    "error_type": "text",
}


def logged_keys() -> dict[str, str]:
    """Every key SLS should index, with its type, from the code."""
    tick = {"status": "text"}
    tick |= {f.name: "long" for f in dataclasses.fields(TickSummary) if f.type == "int"}
    keys = {**LINE_KEYS, **tick}
    for key, kind in INDEX_KEYS.items():
        assert keys.setdefault(key, kind) == kind, f"{key}: one key, two types"
    return keys


def test_the_tick_summarys_counts_are_what_the_code_says() -> None:
    keys = logged_keys()
    assert {"alerts_sent", "alerts_pending", "duration_ms"} <= {
        k for k, v in keys.items() if v == "long"
    }
    assert {"outcome", "job_id", "instance_id", "receiver", "robot", "kind"} <= set(keys)


def test_the_stack_indexes_every_key_the_function_logs() -> None:
    template = deploy_checks.load_yaml("template.yml")
    (index,) = deploy_checks.resources_of(template, "ALIYUN::SLS::Index")
    assert index["LogstoreName"] == {"Fn::GetAtt": ["LogStore", "LogstoreName"]}
    assert index["FullTextIndex"]["Enable"] is True
    (message,) = index["KeyIndices"]
    assert message["Name"] == "message" and message["Type"] == "json"
    assert message["EnableAnalytics"] is True
    declared = {key["Name"]: key["Type"] for key in message["JsonKeyIndices"]}
    assert len(declared) == len(message["JsonKeyIndices"])
    assert declared == logged_keys()
    assert all(key["EnableAnalytics"] is True for key in message["JsonKeyIndices"])
    # The function's logs go to this logstore, the index first.
    (function,) = deploy_checks.resources_of(deploy_checks.stack(template), "ALIYUN::FC3::Function")
    assert function["LogConfig"]["Logstore"] == index["LogstoreName"]
    assert template["Resources"]["Function"]["DependsOn"] == "LogIndex"


def test_sls_index_json_is_the_same_index_for_s_yaml() -> None:
    body = json.loads((ROOT / "sls-index.json").read_text(encoding="utf-8"))
    assert set(body) == {"line", "keys"}
    (name,) = body["keys"]
    message = body["keys"][name]
    assert (name, message["type"], message["doc_value"]) == ("message", "json", True)
    declared = {key: spec["type"] for key, spec in message["json_keys"].items()}
    assert declared == logged_keys()
    assert all(spec["doc_value"] is True for spec in message["json_keys"].values())


def test_s_yaml_cannot_declare_an_index_so_the_readme_gives_the_command() -> None:
    schema = json.loads(deploy_checks.SCHEMA.read_text(encoding="utf-8"))
    log_config = schema["properties"]["logConfig"]
    fields: set[str] = set()
    for option in log_config.get("anyOf", log_config.get("oneOf", [log_config])):
        target = option
        if "$ref" in option:
            target = schema["definitions"][option["$ref"].rsplit("/", 1)[1]]
        fields |= set(target.get("properties", {}))
    assert fields and not [f for f in fields if "index" in f.lower()], fields
    readme = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    commands = re.findall(r"aliyunlog log \w+_index [^\n]*sls-index\.json", readme)
    assert commands, "docs/operations.md: the command that creates the index from sls-index.json"
