"""The config's silences, routes and quiet hours: read into records, every problem named."""

from __future__ import annotations

import copy
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from schedulerx_alert.config import ConfigError, load_config, parse_config
from schedulerx_alert.config.sections import sections_of
from schedulerx_alert.core.route import Route
from schedulerx_alert.core.silence import KINDS, Matcher, QuietHours, QuietWindow

CONFIG = """\
region: cn-hangzhou
timezone: {zone}
state:
  url: file://{root}/state.json
receivers:
  - name: ops
    webhook: https://oapi.dingtalk.com/robot/send?access_token=${{DT_TOKEN}}
    quiet_hours:
      windows:
        - {{days: weekdays, time: "00:00-08:00"}}
        - {{days: [sat, Sunday], time: "22:00-10:00"}}
      except_kinds: [missed]
  - name: dba
    webhook: https://oapi.dingtalk.com/robot/send?access_token=dba
watch:
  - namespace: ns
    group: etl
    jobs: [92583]
    receivers: [ops]
routes:
  - match: {{group: etl, kind: failed}}
    receivers: [dba]
    continue: true
silences:
  - match: {{job: 92583}}
    start: "2026-11-26 00:00"
    end: 2026-11-26 09:00:00
    comment: warehouse migration
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_config_with_all_three_sections_reads_into_records(tmp_path: Path) -> None:
    path = write(tmp_path, CONFIG.format(zone="Asia/Shanghai", root=tmp_path))
    config = load_config(path, {"DT_TOKEN": "t"})
    sections = sections_of(config)
    assert list(config.receivers) == ["ops", "dba"]
    assert sections.routes == (
        Route(Matcher(group="etl", kinds=frozenset({"failed"})), ("dba",), True),
    )
    (silence,) = sections.silences
    shanghai = ZoneInfo("Asia/Shanghai")
    assert silence.id == "silences[0]"
    assert silence.source == "config"
    assert silence.matcher == Matcher(job_ids=frozenset({92583}))
    # A quoted time and one YAML reads as a timestamp are both in the config's zone.
    assert silence.start == datetime(2026, 11, 26, 0, 0, tzinfo=shanghai).timestamp()
    assert silence.end == datetime(2026, 11, 26, 9, 0, tzinfo=shanghai).timestamp()
    assert sections.quiet_hours == {
        "ops": QuietHours(
            (
                QuietWindow(frozenset(range(5)), 0, 480),
                QuietWindow(frozenset({5, 6}), 22 * 60, 10 * 60),
            ),
            "Asia/Shanghai",
            frozenset({"missed"}),
        )
    }


def test_silence_times_follow_the_configured_zone(tmp_path: Path) -> None:
    path = write(tmp_path, CONFIG.format(zone="UTC", root=tmp_path))
    sections = sections_of(load_config(path, {"DT_TOKEN": "t"}))
    assert sections.silences[0].start == datetime(2026, 11, 26, tzinfo=ZoneInfo("UTC")).timestamp()
    assert sections.quiet_hours["ops"].zone == "UTC"


def test_problems_of_both_parsers_come_together_each_with_its_path(tmp_path: Path) -> None:
    text = CONFIG.format(zone="Asia/Shanghai", root=tmp_path)
    text = text.replace("kind: failed", "kind: failedd").replace("[dba]", "[dba, nobody]")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})  # DT_TOKEN unset: config.py's own problem
    problems = caught.value.problems
    assert "receivers[0].webhook: environment variable DT_TOKEN is not set" in problems
    assert any(p.startswith("routes[0].match.kind: unknown kind 'failedd'") for p in problems)
    assert "routes[0].receivers[1]: unknown receiver 'nobody'" in problems


# A config with none of the three sections, and nothing wrong with it.
PLAIN: dict[str, Any] = {
    "region": "cn-hangzhou",
    "state": {"url": "file:///tmp/state.json"},
    "receivers": [
        {"name": "ops", "webhook": "https://oapi.dingtalk.com/robot/send?access_token=t"}
    ],
    "watch": [{"namespace": "ns", "group": "etl", "jobs": [92583], "receivers": ["ops"]}],
}


def test_every_bad_silence_route_and_window_is_named() -> None:
    raw = copy.deepcopy(PLAIN)
    raw["silences"] = [
        {"match": {}, "start": "2026-11-26 09:00", "end": "2026-11-26 08:00"},
        {"match": {"group": "etl"}, "start": "tomorrow", "comment": 5},
        "not a mapping",
    ]
    raw["routes"] = [{"match": {"group": "etl"}, "receivers": [], "continue": "yes"}]
    raw["receivers"][0]["quiet_hours"] = {
        "timezone": "Mars/Olympus",
        "windows": [
            {"days": "weekdays", "time": "08:00-08:00"},
            {"days": "someday", "time": "25:00-03:00"},
        ],
        "except_kinds": ["late"],
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, {})
    assert caught.value.problems == [
        "silences[0].match: names nothing; say which jobs or kinds to hold back",
        "silences[0].end: must be after start",
        "silences[1].start: 'tomorrow' is not a time like '2026-11-26 09:00' (in Asia/Shanghai)",
        "silences[1].end: is required",
        "silences[1].comment: must be a string, not 5",
        "silences[2]: must be a mapping, not 'not a mapping'",
        "routes[0].receivers: must name at least one receiver",
        "routes[0].continue: must be true or false, not 'yes'",
        "receivers[0].quiet_hours.timezone: unknown time zone 'Mars/Olympus'",
        "receivers[0].quiet_hours.windows[0].time: 08:00-08:00 is empty; "
        "for a whole day write 00:00-24:00",
        "receivers[0].quiet_hours.windows[1].days: 'someday' is not a day "
        "(mon..sun, weekdays, weekends or daily)",
        "receivers[0].quiet_hours.windows[1].time: must be HH:MM-HH:MM such as 00:00-08:00, "
        "not '25:00-03:00'",
        "receivers[0].quiet_hours.except_kinds: unknown kind 'late' (one of: "
        + ", ".join(sorted(KINDS))
        + ")",
    ]


def test_a_config_without_the_sections_has_none() -> None:
    config = parse_config(copy.deepcopy(PLAIN), {})
    assert (config.silences, config.routes, config.quiet_hours) == ((), (), {})


def test_the_function_reads_the_sections_itself_and_ships_them_as_json(tmp_path: Path) -> None:
    # The deployed function parses config.json with config.py alone: no section is refused,
    # and what `make package` ships reads the same.
    from schedulerx_alert.cli.config_cmd import packaged_json

    text = CONFIG.format(zone="Asia/Shanghai", root=tmp_path) + (
        "actions:\n  enabled: true\n  base_url: https://alert.example.com/silence\n"
    )
    path = write(tmp_path, text)
    env = {"DT_TOKEN": "t", "SCHEDULERX_ALERT_ACTION_KEYS": "k" * 40}
    config = load_config(path, env)
    assert [silence.id for silence in config.silences] == ["silences[0]"]
    assert [route.receivers for route in config.routes] == [("dba",)]
    assert list(config.quiet_hours) == ["ops"]
    assert config.actions is not None and config.actions.enabled
    assert config.actions.keys == ("k" * 40,)
    shipped = tmp_path / "config.json"
    shipped.write_text(packaged_json(path, env), encoding="utf-8")
    assert load_config(shipped, env) == load_config(path, env).__class__(
        **{**load_config(path, env).__dict__, "base_dir": shipped.parent}
    )


def test_a_config_refuses_bad_sections_with_every_other_problem(tmp_path: Path) -> None:
    text = CONFIG.format(zone="Asia/Shanghai", root=tmp_path).replace("[dba]", "[nobody]")
    text = text.replace("    except_kinds: [missed]", "    except_kinds: [missed]\n    colour: red")
    text += "actions:\n  enabled: true\n"
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), {})
    assert caught.value.problems == [
        "receivers[0].colour: unknown key",
        "receivers[0].webhook: environment variable DT_TOKEN is not set",
        "routes[0].receivers[0]: unknown receiver 'nobody'",
        "actions.base_url: is required when actions are enabled (the custom domain of the "
        "function's HTTP trigger)",
        "actions.key_env: environment variable SCHEDULERX_ALERT_ACTION_KEYS is not set "
        "(comma-separated signing keys, each at least 32 characters; the first signs)",
    ]
