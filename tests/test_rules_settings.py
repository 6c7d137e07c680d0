"""Rule options as a watch entry writes them, and the rules' stored memory, read strictly."""

from __future__ import annotations

import pytest

from schedulerx_alert.core.model import InstanceStatus, TriggerType
from schedulerx_alert.core.rules import (
    JobRuleState,
    MemoryFormatError,
    RuleSettings,
    SettingError,
    memory_from_json,
    memory_to_json,
    parse_duration,
    parse_trigger_types,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("10m", 600), ("2h", 7200), ("1h30m", 5400), ("1d", 86400), (" 1.5H ", 5400)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "10x", "m", "30m1h", "1h 30m", "-5m", "10mm"])
def test_a_bad_duration_says_how_to_write_one(text: str) -> None:
    with pytest.raises(SettingError, match=r"is not a duration; .* e\.g\. 30s, 10m, 2h or 1h30m"):
        parse_duration(text)


def test_a_duration_must_be_text() -> None:
    with pytest.raises(SettingError, match="600 is not a duration; write it as text"):
        parse_duration(600)  # type: ignore[arg-type]


def test_the_defaults_are_the_issue_s() -> None:
    settings = RuleSettings()
    assert settings.recovery is True
    assert settings.consecutive_failures == 1
    assert settings.stuck_after == "job_timeout"
    assert settings.missed_grace is None
    assert settings.trigger_types == frozenset(TriggerType)
    assert settings.flap_window == 3600
    assert settings.flap_changes == 4
    assert settings.alert_on == {InstanceStatus.FAILED, InstanceStatus.REJECTED}


def test_trigger_type_names() -> None:
    assert parse_trigger_types(["scheduled", "API"]) == {TriggerType.SCHEDULED, TriggerType.API}
    with pytest.raises(SettingError, match=r"unknown trigger type\(s\) 'cron', 'rerun' \(one of: "):
        parse_trigger_types(["cron", "scheduled", "rerun"])
    with pytest.raises(SettingError, match="trigger_types is empty"):
        parse_trigger_types([])


def test_every_bad_option_is_named_at_once() -> None:
    with pytest.raises(SettingError) as error:
        RuleSettings(consecutive_failures=0, stuck_after=-1, missed_grace=0, flap_changes=1)
    message = str(error.value)
    for part in ("consecutive_failures", "stuck_after", "missed_grace", "flap_changes"):
        assert part in message


def test_stuck_threshold() -> None:
    assert RuleSettings().stuck_threshold(1800) == 1800
    assert RuleSettings().stuck_threshold(None) is None
    assert RuleSettings(stuck_after="off").stuck_threshold(1800) is None
    assert RuleSettings(stuck_after=60).stuck_threshold(1800) == 60


def test_a_quiet_job_s_memory_is_empty() -> None:
    assert memory_to_json(JobRuleState()) == {}
    assert memory_from_json({}) == JobRuleState()


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ([], "rules: expected an object, got list"),
        ({"streak": -1}, "rules.streak: -1 is not a count"),
        ({"streak": True}, "rules.streak: True is not a count"),
        ({"announced": "yes"}, "rules.announced: 'yes' is not true or false"),
        ({"streak_since": "today"}, "rules.streak_since: 'today' is not an epoch time"),
        ({"streak_since": 1e999}, "rules.streak_since: inf is not an epoch time"),
        ({"streak_since": -1e30}, "rules.streak_since: -1e+30 is not an epoch time"),
        (
            {"changes": [1, 1e12]},
            "rules.changes: [1, 1000000000000.0] is not a list of epoch times",
        ),
        ({"changes": [1, 2e999]}, "rules.changes: [1, inf] is not a list of epoch times"),
        ({"stuck": [1, "2"]}, "rules.stuck: [1, '2'] is not a list of instance ids"),
        ({"changes": [1, None]}, "rules.changes: [1, None] is not a list of epoch times"),
        ({"last_outcome": "meh"}, "rules.last_outcome: 'meh' is not ok or fail"),
        ({"last_failure": 5}, "rules.last_failure: 5 is not text"),
        ({"mood": 1}, "rules: unknown field(s) mood"),
    ],
)
def test_bad_stored_memory_is_named(raw: object, problem: str) -> None:
    with pytest.raises(MemoryFormatError) as error:
        memory_from_json(raw)
    assert str(error.value) == problem
