"""The described sections: docs/config-reference.md is written from the same fields the
walker reads, its defaults are the ones a config gets, and every problem has its path."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from schedulerx_alert.config import Config, ConfigError, JobSpec, ReceiverConfig, parse_config
from schedulerx_alert.config.schema import key_of, options
from schedulerx_alert.core.rules.settings import RuleSettings

ROOT = Path(__file__).resolve().parents[1]
BASE: dict[str, Any] = {
    "region": "cn-hangzhou",
    "state": {"url": "oss://my-bucket/schedulerx-alert/state.json"},
    "receivers": [
        {"name": "ops", "webhook": "https://oapi.dingtalk.com/robot/send?access_token=a"},
        {"name": "dev", "webhook": "https://oapi.dingtalk.com/robot/send?access_token=b"},
    ],
    "watch": [{"namespace": "ns", "group": "g", "jobs": [1], "receivers": ["ops"]}],
}
DBA = {"name": "dba", "webhook": "https://oapi.dingtalk.com/robot/send?access_token=c"}
# The sections whose records become core's (Route, Silence, QuietHours): checked by hand.
LISTED = ("routes", "silences")


def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_config_reference", ROOT / "scripts" / "make_config_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def documented() -> dict[str, Any]:
    """Each section's YAML block on the checked-in page, read as a config would be."""
    page = (ROOT / "docs" / "config-reference.md").read_text(encoding="utf-8")
    blocks = [part.split("```", 1)[0] for part in page.split("```yaml\n")[1:]]
    sections: dict[str, Any] = {}
    for block in blocks:
        sections.update(yaml.safe_load(block))
    return sections


def load(tmp_path: Path, **sections: Any) -> Config:
    env = {"DT_TOKEN": "token", "DT_SECRET": "SECret"}
    return parse_config({**BASE, **sections}, env, "config", tmp_path)


def test_the_checked_in_reference_is_what_the_script_writes() -> None:
    make = script()
    assert (ROOT / "docs" / "config-reference.md").read_text(encoding="utf-8") == make.render()
    assert make.main(["--check"]) == 0


def test_the_reference_names_every_option_of_every_described_section() -> None:
    make = script()
    pages = documented()
    inside = make.nested()

    def check(record: type, page: dict[str, Any], where: str, top: bool = False) -> None:
        names = {key_of(spec) for spec in options(record)} | set(inside.get(record, {}))
        assert set(page) >= names if top else set(page) == names, where
        for key, (child, is_list, _) in inside.get(record, {}).items():
            check(child, page[key][0] if is_list else page[key], f"{where}.{key}")

    for key, record, _ in make.sections():
        page = pages[key][0] if key in make.LISTS else pages.get(key, pages)
        check(record, page, key, top=not key)
    assert set(inside) >= {ReceiverConfig} and len(make.LISTS) == 5


def test_the_documented_defaults_are_what_a_config_without_the_section_gets(
    tmp_path: Path,
) -> None:
    # The page's values (defaults, and examples where a default says too little) are a
    # config the walker accepts; where the page shows a default, the record has it.
    for name in ("my-alert.md.j2", "my-summary.md.j2"):
        (tmp_path / name).write_text("{{ alert }}", encoding="utf-8")
    pages = documented()
    pages["receivers"] += [*BASE["receivers"][1:], DBA]
    loaded = load(tmp_path, **pages)
    bare = load(tmp_path)
    for key, record, _ in script().sections():
        for spec in options(record):
            if spec.metadata["example"] is None and key not in ("", "watch", "workflows", *LISTED):
                assert getattr(getattr(loaded, key), spec.name) == spec.default, (key, spec.name)
                if key not in ("heartbeat", "actions"):
                    assert getattr(getattr(bare, key), spec.name) == spec.default
    assert bare.heartbeat is None and loaded.heartbeat is not None
    # The sections read into core's records: the page's entries, with their defaults.
    assert (bare.actions, bare.silences, bare.routes, bare.quiet_hours) == (None, (), (), {})
    assert loaded.actions is not None and not loaded.actions.enabled
    assert loaded.actions.problems == () and loaded.actions.operations == ()
    [route] = loaded.routes
    assert (route.receivers, route.continue_, route.name) == (("dba",), False, "etl-failures")
    [silence] = loaded.silences
    assert silence.end - silence.start == 9 * 3600 and silence.created_by == "alice"
    quiet = loaded.quiet_hours["ops"]
    assert quiet.zone == loaded.timezone and quiet.except_routes == {"etl-failures"}
    [window] = quiet.windows
    assert (window.days, window.start, window.end) == (frozenset({5, 6}), 22 * 60, 10 * 60)
    assert quiet.except_jobs.job_ids == {92583} and quiet.except_jobs.job_names == ("critical-*",)
    assert loaded.heartbeat.at_text == "09:00" and loaded.health.receiver == "ops"
    assert (loaded.timezone, loaded.shared_cause_min_jobs) == (bare.timezone, 2)
    assert loaded.first_run_lookback == bare.first_run_lookback
    assert loaded.pending_max_age == bare.pending_max_age
    [entry] = loaded.watch
    assert entry.rules == RuleSettings() and entry.jobs[1] == JobSpec(92584, "nightly-etl")
    assert not entry.mention_owners and not entry.include_log
    [flow] = loaded.workflows
    assert (flow.ids, flow.receivers, flow.recovery) == ((301, 302), ("ops",), True)
    assert not flow.mention_owners
    assert bare.workflows == ()
    ops = loaded.receivers["ops"]
    assert ops.access_token == "token" and ops.secret == "SECret" and ops.keyword == "SchedulerX"


def test_a_receiver_with_an_empty_webhook_is_refused_not_dropped(tmp_path: Path) -> None:
    # It used to pass as declared but unusable: its watch entries sent to no one.
    receivers = [{"name": "ops", "webhook": ""}, BASE["receivers"][1]]
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, receivers=receivers)
    assert caught.value.problems == ["receivers[0].webhook: is required"]


@pytest.mark.parametrize("key", ["schedulerx", "state", "dingtalk", "templates", "health"])
def test_every_section_names_an_unknown_key_and_a_bad_value_by_its_path(
    tmp_path: Path, key: str
) -> None:
    section = {**BASE.get(key, {}), "nope": 1, "timeout_seconds": "soon"}
    if key in ("templates", "health"):
        section = {"nope": 1, next(iter(documented()[key])): ["a list"]}
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, **{key: section})
    problems = caught.value.problems
    assert f"{key}.nope: unknown key" in problems
    assert any(p.startswith(f"{key}.") and "not " in p for p in problems if "nope" not in p)


def test_a_required_option_is_named_and_a_bad_one_keeps_its_default(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, state={}, heartbeat={"at": [1, 2]}, schedulerx={"concurrency": 99})
    assert caught.value.problems == [
        "schedulerx.concurrency: must be between 1 and 16, not 99",
        "state.url: is required",
        "heartbeat.receiver: is required",
        'heartbeat.at: must be a time of day such as "09:00", not a list of 2 item(s)',
    ]


def test_a_watch_entry_missing_its_group_still_has_its_other_options_checked(
    tmp_path: Path,
) -> None:
    # The old parser checked mention_owners and include_log only for an entry with a
    # namespace and a group, so a second run of `validate` found more to fix.
    entry = {"namespace": "ns", "jobs": [1], "receivers": ["ops"], "include_log": "yes"}
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, watch=[entry])
    assert caught.value.problems == [
        "watch[0].group: is required",
        "watch[0].include_log: must be true or false, not 'yes'",
    ]
