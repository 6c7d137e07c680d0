"""The alert rule options of a watch entry, and `shared_cause`: read into RuleSettings,
every problem named by its path and never a value from the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from schedulerx_alert.config import Config, ConfigError, parse_config
from schedulerx_alert.core.model import InstanceStatus, TriggerType
from schedulerx_alert.core.rules import RuleSettings
from schedulerx_alert.tick import targets_of

RULE_OPTIONS = {
    "recovery",
    "consecutive_failures",
    "stuck_after",
    "missed_grace",
    "trigger_types",
    "flap_window",
    "flap_changes",
}
BASE = """
region: cn-hangzhou
state: {url: "oss://my-bucket/state.json"}
receivers:
  - {name: ops, webhook: "https://oapi.dingtalk.com/robot/send?access_token=tok"}
watch:
  - namespace: ns
    group: g
    jobs: [92583]
    receivers: [ops]
"""


def config(env: dict[str, str] | None = None, **entry: Any) -> Config:
    raw = yaml.safe_load(BASE)
    shared = entry.pop("shared_cause", None)
    if shared is not None:
        raw["shared_cause"] = shared
    raw["watch"][0].update(entry)
    return parse_config(raw, env or {})


def problems(**entry: Any) -> list[str]:
    with pytest.raises(ConfigError) as error:
        config(**entry)
    return error.value.problems


def test_the_defaults_are_the_rules_own() -> None:
    loaded = config()
    assert loaded.watch[0].rules == RuleSettings()
    assert loaded.shared_cause_min_jobs == 2


def test_every_option_as_the_readme_writes_it() -> None:
    loaded = config(
        alert_on=["failed", "rejected", "killed"],
        recovery=False,
        consecutive_failures=3,
        stuck_after="30m",
        missed_grace="10m",
        trigger_types=["scheduled", "system_retry"],
        flap_window="2h",
        flap_changes=6,
        shared_cause={"min_jobs": 5},
    )
    rules = loaded.watch[0].rules
    assert rules == RuleSettings(
        alert_on=frozenset({InstanceStatus.FAILED, InstanceStatus.REJECTED, InstanceStatus.KILLED}),
        recovery=False,
        consecutive_failures=3,
        stuck_after=1800,
        missed_grace=600,
        trigger_types=frozenset({TriggerType.SCHEDULED, TriggerType.SYSTEM_RETRY}),
        flap_window=7200,
        flap_changes=6,
    )
    assert loaded.shared_cause_min_jobs == 5
    [target] = targets_of(loaded).values()
    assert target.settings == rules


def test_off_switches() -> None:
    loaded = config(stuck_after="off", flap_window=False, missed_grace="off", shared_cause=False)
    rules = loaded.watch[0].rules
    assert (rules.stuck_after, rules.flap_window, rules.missed_grace) == ("off", None, None)
    assert loaded.shared_cause_min_jobs is None
    assert config(stuck_after=False).watch[0].rules.stuck_after == "off"
    assert config(stuck_after="job_timeout").watch[0].rules.stuck_after == "job_timeout"


def test_a_duration_is_written_in_the_file_never_read_from_the_environment() -> None:
    # Issue 19 item 2: `${VAR}` is read only in secret and endpoint fields.
    with pytest.raises(ConfigError) as error:
        config({"GRACE": "15m"}, missed_grace="${GRACE}")
    assert error.value.problems == [
        "watch[0].missed_grace: ${VAR} is read from the environment only in "
        "receivers[*].webhook, receivers[*].secret, schedulerx.endpoint, state.endpoint; "
        "write this value in the file"
    ]


def test_every_bad_option_is_named_by_its_path_at_once() -> None:
    found = problems(
        recovery="yes",
        consecutive_failures=0,
        stuck_after="30 minutes",
        missed_grace=600,
        trigger_types=["cron"],
        flap_window="0s",
        flap_changes=99,
        shared_cause={"min_jobs": 1},
        colour="red",
    )
    assert found == [
        "watch[0].colour: unknown key",
        "watch[0].stuck_after: '30 minutes' is not a duration; write a number with a unit "
        "(d, h, m, s), largest first, e.g. 30s, 10m, 2h or 1h30m, or job_timeout, or off",
        "watch[0].flap_window: must be longer than 0s, not '0s'",
        "watch[0].missed_grace: must be a duration such as 30s, 10m or 2h (or off), not 600",
        "watch[0].trigger_types: unknown trigger type(s) 'cron' (one of: scheduled, "
        "data_rerun, api, manual_rerun, system_retry)",
        "watch[0].recovery: must be true or false, not 'yes'",
        "watch[0].consecutive_failures: must be between 1 and 100, not 0",
        "watch[0].flap_changes: must be between 2 and 16, not 99",
        "shared_cause.min_jobs: must be between 2 and 1000, not 1",
    ]


def test_a_value_from_the_environment_is_not_repeated() -> None:
    with pytest.raises(ConfigError) as error:
        config({"GRACE": "secret-ish"}, missed_grace="${GRACE}")
    assert not any("secret-ish" in p for p in error.value.problems)


def test_trigger_types_must_be_a_non_empty_list_of_names() -> None:
    assert problems(trigger_types="scheduled") == [
        "watch[0].trigger_types: must be a list of trigger type names, not 'scheduled'"
    ]
    assert problems(trigger_types=[]) == [
        "watch[0].trigger_types: trigger_types is empty; leave it out to watch every trigger type"
    ]
    assert problems(shared_cause="yes") == [
        "shared_cause: must be true, false or a mapping with min_jobs, not 'yes'"
    ]


def test_the_readmes_options_are_the_defaults_they_claim() -> None:
    readme = (Path(__file__).parents[1] / "docs" / "config.md").read_text(encoding="utf-8")
    block = readme.split("## Configuration", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    documented = yaml.safe_load(block)
    entry = {k: v for k, v in documented["watch"][0].items() if k in RULE_OPTIONS}
    assert set(entry) == RULE_OPTIONS
    loaded = config(shared_cause=documented["shared_cause"], **entry)
    assert loaded.watch[0].rules == RuleSettings()
    assert loaded.shared_cause_min_jobs == config().shared_cause_min_jobs
