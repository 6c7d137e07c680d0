"""The YAML config: parsed into typed records, every problem named by its path.

Secrets never live in the file: `${VAR}` in a receiver's webhook or secret, or in an
endpoint, is replaced from the environment. Nowhere else: whoever writes the config
need not know a secret, and every other text can reach a message. The function's own
credentials (ALIBABA_CLOUD_*) and the action signing keys are never substituted. A
message shows what the file says, cut short, and never a value substituted from the
environment, nor any part of a webhook or secret.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from schedulerx_alert.config.records import (
    LANGUAGES as LANGUAGES,
)
from schedulerx_alert.config.records import (
    DingTalkConfig as DingTalkConfig,
)
from schedulerx_alert.config.records import (
    HealthConfig as HealthConfig,
)
from schedulerx_alert.config.records import (
    ReceiverConfig as ReceiverConfig,
)
from schedulerx_alert.config.records import (
    SchedulerXConfig as SchedulerXConfig,
)
from schedulerx_alert.config.records import (
    StateConfig as StateConfig,
)
from schedulerx_alert.config.records import (
    TemplateConfig as TemplateConfig,
)
from schedulerx_alert.config.records import (
    TopLevel,
)
from schedulerx_alert.config.schema import VAR, Walker, key_of, options
from schedulerx_alert.config.schema import join as _join
from schedulerx_alert.config.schema import (
    show as show,
)
from schedulerx_alert.config.watch import JobSpec as JobSpec
from schedulerx_alert.config.watch import WatchRule as WatchRule
from schedulerx_alert.config.watch import read_watch
from schedulerx_alert.config.workflows import WorkflowWatch, read_workflows
from schedulerx_alert.core.group import DEFAULT_MIN_JOBS
from schedulerx_alert.support.urls import HttpUrl

if TYPE_CHECKING:
    # Read by their own modules, loaded only when a config has the section.
    from schedulerx_alert.config.actions import ActionSettings
    from schedulerx_alert.config.heartbeat import HeartbeatConfig
    from schedulerx_alert.core.route import Route
    from schedulerx_alert.core.silence import QuietHours, Silence

# Where secrets go, whatever the config says: the robot's webhook and secret read from
# the environment only to DingTalk; signed API calls only to Alibaba Cloud's hosts.
DINGTALK_HOST = "oapi.dingtalk.com"
# A config is a page of YAML; these bounds are far above any real one and far
# below what exhausts 128 MB (a 787-byte alias bomb expands to billions of values).
MAX_CONFIG_BYTES = 1_000_000
MAX_ALIASES = 100
MAX_VALUES = 100_000
MAX_DEPTH = 64


class ConfigError(Exception):
    """A config that cannot be used; carries one line per problem."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = problems
        self.source = source
        super().__init__(f"{source}: " + "; ".join(problems))

    def __str__(self) -> str:
        lines = [f"{self.source}: {len(self.problems)} problem(s)"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


@dataclass(frozen=True)
class Config:
    region: str
    state: StateConfig
    receivers: Mapping[str, ReceiverConfig]
    watch: tuple[WatchRule, ...]
    timezone: str = "Asia/Shanghai"
    schedulerx: SchedulerXConfig = field(default_factory=SchedulerXConfig)
    dingtalk: DingTalkConfig = field(default_factory=DingTalkConfig)
    templates: TemplateConfig = field(default_factory=TemplateConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    first_run_lookback: timedelta = timedelta(minutes=15)
    pending_max_age: timedelta = timedelta(hours=24)
    base_dir: Path = Path(".")
    # Failures of at least this many jobs with the same error in one tick make one
    # message; None (`shared_cause: false`) keeps one message per failure.
    shared_cause_min_jobs: int | None = DEFAULT_MIN_JOBS
    # The daily digest (config/heartbeat.py); None: no heartbeat.
    heartbeat: HeartbeatConfig | None = None
    # `silences:`, `routes:` and each receiver's `quiet_hours` (config/sections.py).
    silences: tuple[Silence, ...] = ()
    routes: tuple[Route, ...] = ()
    quiet_hours: Mapping[str, QuietHours] = field(default_factory=dict)  # by receiver name
    # `actions:` (config/actions.py); None when the section is absent (no buttons).
    actions: ActionSettings | None = None
    # Workflows watched as a whole (config/workflows.py).
    workflows: tuple[WorkflowWatch, ...] = ()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def job_count(self) -> int:
        """Jobs named by id; those found by `jobs: all` or `job_names` are not known here."""
        return sum(len(rule.jobs) for rule in self.watch)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read, substitute and validate a config file (.json or YAML); raises ConfigError."""
    path = Path(path)
    env = os.environ if env is None else env
    return parse_config(read_config_file(path), env, str(path), path.parent)


def read_config_file(path: Path) -> Any:
    """A config file's plain values (.json or YAML); raises ConfigError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc.strerror or exc}"], str(path)) from None
    return read_config_data(data, str(path))


def read_config_data(data: bytes, source: str) -> Any:
    """The plain values of a config file: JSON when its name ends in .json, else YAML."""
    if source.lower().endswith(".json"):
        return read_json(data, source)
    return read_yaml(data, source)


def config_text(data: bytes | str, source: str) -> str:
    """A config file's text, JSON or YAML, once it is known to be in bounds and UTF-8."""
    size = len(data.encode("utf-8") if isinstance(data, str) else data)
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(
            [f"(top level): the file is {size} bytes; a config is limited to {MAX_CONFIG_BYTES}"],
            source,
        )
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError([f"line {line}: not UTF-8 text"], source) from None


def read_json(data: bytes | str, source: str = "config") -> Any:
    """JSON text (as `make package` writes it) -> plain values; a problem names its line."""
    text = config_text(data, source)
    too_deep = ConfigError([f"(top level): values are nested more than {MAX_DEPTH} deep"], source)
    try:
        raw = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ConfigError([f"line {exc.lineno}, column {exc.colno}: {exc.msg}"], source) from None
    except ValueError as exc:  # NaN/Infinity, or an integer too long to convert
        raise ConfigError([f"(top level): {exc}"], source) from None
    except RecursionError:
        raise too_deep from None
    # The same bounds as a YAML file's, so neither form reaches the parser larger.
    level, count = [raw], 0
    for _ in range(MAX_DEPTH + 1):
        count += len(level)
        level = [
            child
            for value in level
            if isinstance(value, dict | list)
            for child in (value.values() if isinstance(value, dict) else value)
        ]
        if not level:
            break
    else:
        raise too_deep
    if count > MAX_VALUES:
        raise ConfigError([f"(top level): more than {MAX_VALUES} values"], source)
    return raw


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def read_yaml(data: bytes | str, source: str = "config") -> Any:
    """YAML text -> plain values, within bounds that a hostile file cannot blow up."""
    # Imported here, not at the top: the function reads JSON (see read_config_data), and
    # PyYAML would cost its every cold start (docs/bench.md).
    from schedulerx_alert.config.yaml_reader import read_yaml as read

    return read(data, source)


def parse_config(
    raw: Any,
    env: Mapping[str, str],
    source: str = "config",
    base_dir: Path = Path("."),
) -> Config:
    parser = _Parser(env)
    config = parser.config(raw, base_dir)
    if parser.problems or config is None:
        # A config refused anyway lists the `actions:` section's problems with the rest.
        actions = config.actions.problems if config and config.actions else ()
        problems = [*parser.problems, *actions]
        raise ConfigError(problems or ["(top level): the config is empty"], source)
    return config


# The top level's own options, and its sections.
_TOP_KEYS = {key_of(f) for f in options(TopLevel)} | {
    "schedulerx",
    "state",
    "dingtalk",
    "receivers",
    "watch",
    "templates",
    "health",
    "heartbeat",
    "silences",
    "routes",
    "actions",
    "workflows",
}


class _Parser(Walker):
    """Collects every problem instead of stopping at the first one."""

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__(env)
        self.evidence_defaults = {"mention_owners": False, "include_log": False}

    def may_carry_env(self, url: HttpUrl, entry: Mapping[str, Any], keys: tuple[str, ...]) -> bool:
        """Whether `url` may receive what `entry[keys]` read from the environment."""
        if not any(isinstance(entry.get(k), str) and VAR.search(entry[k]) for k in keys):
            return True
        return url.host == DINGTALK_HOST or (self.allow_loopback_http and url.is_loopback)

    def mapping(self, value: Any, path: str) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, not {show(value)}")
            return {}
        return value

    def unknown_keys(self, mapping: Mapping[str, Any], known: set[str], path: str) -> None:
        for key in mapping:
            if key not in known:
                self.fail(_join(path, key), "unknown key")

    def config(self, raw: Any, base_dir: Path) -> Config | None:
        if raw is None:
            self.fail("(top level)", "the config is empty")
            return None
        top = self.mapping(raw, "(top level)")
        self.unknown_keys(top, _TOP_KEYS, "")
        self.allow_loopback_http = self.one(TopLevel, "allow_loopback_http", top)
        actions = top.get("actions")
        if isinstance(actions, dict) and isinstance(actions.get("key_env"), str):
            self.barred.add(actions["key_env"])
        region = self.one(TopLevel, "region", top)
        timezone = self.one(TopLevel, "timezone", top)
        # Defaults for every watch entry's own `mention_owners` and `include_log`.
        self.evidence_defaults = {
            key: self.one(TopLevel, key, top) for key in ("mention_owners", "include_log")
        }
        self.base_dir = base_dir
        dingtalk = self.record(DingTalkConfig, top.get("dingtalk"), "dingtalk") or DingTalkConfig()
        receivers, declared = self.receivers(top.get("receivers"), dingtalk)
        self.declared = declared
        self.usable_receivers = receivers
        watch = self.watch(top.get("watch"))
        health = self.health(top.get("health"), receivers)
        lookback = self.one(TopLevel, "first_run_lookback_minutes", top)
        max_age = self.one(TopLevel, "pending_max_age_hours", top)
        silences, routes, quiet_hours = self.sections(top, timezone)
        config = Config(
            region=region or "",
            timezone=timezone,
            schedulerx=self.record(SchedulerXConfig, top.get("schedulerx"), "schedulerx")
            or SchedulerXConfig(),
            state=self.record(StateConfig, top.get("state"), "state") or StateConfig(url=""),
            dingtalk=dingtalk,
            receivers=receivers,
            watch=watch,
            templates=self.record(TemplateConfig, top.get("templates"), "templates")
            or TemplateConfig(),
            health=health,
            first_run_lookback=timedelta(minutes=lookback),
            pending_max_age=timedelta(hours=max_age),
            base_dir=base_dir,
            shared_cause_min_jobs=self.one(TopLevel, "shared_cause", top),
            heartbeat=self.heartbeat(top.get("heartbeat")),
            silences=silences,
            routes=routes,
            quiet_hours=quiet_hours,
            actions=self.actions(top.get("actions")),
            workflows=read_workflows(self, top.get("workflows"), self.evidence_defaults),
        )
        return config

    def heartbeat(self, raw: Any) -> HeartbeatConfig | None:
        if raw is None:
            return None
        from schedulerx_alert.config.heartbeat import read_heartbeat  # a config with one

        return read_heartbeat(self, raw)

    def sections(
        self, top: Mapping[str, Any], timezone: str
    ) -> tuple[tuple[Silence, ...], tuple[Route, ...], Mapping[str, QuietHours]]:
        """`silences:`, `routes:` and quiet hours, read by config/sections.py (loaded only
        for a config that has one: most ticks never need it)."""
        receivers = top.get("receivers")
        quiet = isinstance(receivers, list) and any(
            isinstance(r, dict) and "quiet_hours" in r for r in receivers
        )
        if top.get("silences") is None and top.get("routes") is None and not quiet:
            return (), (), {}
        from schedulerx_alert.config.sections import read_sections

        self.timezone = timezone
        sections = read_sections(self, top)
        return sections.silences, sections.routes, dict(sections.quiet_hours)

    def actions(self, raw: Any) -> ActionSettings | None:
        """`actions:` (config/actions.py); its keys come from the environment."""
        if raw is None:
            return None
        from schedulerx_alert.config.actions import parse_actions

        # Its problems stay in the settings, not the config's: a broken section costs the
        # buttons, never the alerts (the tick reports them; `validate` refuses them).
        return parse_actions(raw, self.env, self.allow_loopback_http)[0]

    def receivers(
        self, raw: Any, dingtalk: DingTalkConfig
    ) -> tuple[dict[str, ReceiverConfig], set[str]]:
        """The usable receivers, and every name declared (usable or not).

        A receiver with a problem is still known by its name, so a watch rule
        naming it gets no second, misleading "unknown receiver" line.
        """
        result: dict[str, ReceiverConfig] = {}
        declared: set[str] = set()
        if not isinstance(raw, list) or not raw:
            self.fail("receivers", "must be a non-empty list")
            return result, declared
        self.allowed_hosts = dingtalk.allowed_hosts
        for index, item in enumerate(raw):
            path = f"receivers[{index}]"
            values, complete = self.values(ReceiverConfig, item, path)
            url, name = values.get("url"), values.get("name")
            if url is not None and not self.may_carry_env(url, item, ("webhook", "secret")):
                # allowed_hosts is the config's own: it cannot say where a secret may go.
                self.fail(
                    f"{path}.webhook",
                    f"a token or secret read from the environment is sent only to "
                    f"{DINGTALK_HOST}; for another host, write this robot's token and secret "
                    "in the file",
                )
                complete = False
            if name is None:
                continue
            if name in declared:
                self.fail(f"{path}.name", f"duplicate receiver name {show(item.get('name'))}")
                continue
            declared.add(name)
            if complete:
                result[name] = ReceiverConfig(**values)
        return result, declared

    def watch(self, raw: Any) -> tuple[WatchRule, ...]:
        return read_watch(self, raw, self.evidence_defaults)

    def health(self, raw: Any, receivers: Mapping[str, ReceiverConfig]) -> HealthConfig:
        health = self.record(HealthConfig, raw, "health") or HealthConfig()
        named = isinstance(raw, dict) and "receiver" in raw
        if health.receiver is None and "ops" in receivers and not named:
            return dataclasses.replace(health, receiver="ops")
        return health
