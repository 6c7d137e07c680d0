"""The YAML config: parsed into typed records, every problem named by its path.

Secrets never live in the file: `${VAR}` in a receiver's webhook or secret, or in an
endpoint, is replaced from the environment. Nowhere else: whoever writes the config
need not know a secret, and every other text can reach a message. The function's own
credentials (ALIBABA_CLOUD_*) and the action signing keys are never substituted. A
message shows what the file says, cut short, and never a value substituted from the
environment, nor any part of a webhook or secret.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schedulerx_alert.core.group import DEFAULT_MIN_JOBS
from schedulerx_alert.core.model import TERMINAL, InstanceStatus
from schedulerx_alert.core.rules.settings import (
    DEFAULT_SETTINGS,
    MAX_FLAP_CHANGES,
    RuleSettings,
    SettingError,
    parse_duration,
    parse_trigger_types,
)
from schedulerx_alert.support.urls import HttpUrl, UrlError, normalise_host, parse_http_url

if TYPE_CHECKING:
    # Read by their own modules, loaded only when a config has the section.
    from schedulerx_alert.config.actions import ActionSettings
    from schedulerx_alert.config.heartbeat import HeartbeatConfig
    from schedulerx_alert.core.route import Route
    from schedulerx_alert.core.silence import QuietHours, Silence

DEFAULT_SCHEDULERX_ENDPOINT = "https://schedulerx.aliyuncs.com"
DEFAULT_ALERT_ON = frozenset({InstanceStatus.FAILED, InstanceStatus.REJECTED})
LANGUAGES = ("zh-CN", "en")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# The only fields `${VAR}` is read in: a refusal anywhere else names them.
ENV_FIELDS = "receivers[*].webhook, receivers[*].secret, schedulerx.endpoint, state.endpoint"
# Never substituted, in any field: the function's credentials (FC 3.0 and the python3.12
# runtime's names; FC 2.0's) and the link signing keys (actions.key_env, whose default
# is actions/settings.py's DEFAULT_KEY_ENV).
_CREDENTIAL_PREFIX = "ALIBABA_CLOUD_"
_FC2_CREDENTIALS = frozenset({"accesskeyid", "accesskeysecret", "securitytoken"})
ACTION_KEYS_ENV = "SCHEDULERX_ALERT_ACTION_KEYS"
# Where secrets go, whatever the config says: the robot's webhook and secret read from
# the environment only to DingTalk; signed API calls only to Alibaba Cloud's hosts.
DINGTALK_HOST = "oapi.dingtalk.com"
CLOUD_DOMAIN = "aliyuncs.com"
# The region is spliced into the default OSS host name: cn-hangzhou, ap-southeast-1.
# Like the patterns below, only for some configs: compiled by re's cache on first use.
_REGION = r"[a-z]{2,}(?:-[a-z0-9]+)+"
# OSS bucket naming rules.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
# These four serve only some configs (mentions, ids written as strings) and error
# messages: patterns for re's own cache, compiled on first use, not at every cold start.
_MOBILE = r"\+?[0-9][0-9-]{2,19}"
# A DingTalk user id (userid/staffId): one short word of letters, digits and a few signs.
_USER_ID = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_PLAIN_KEY = r"[A-Za-z_][A-Za-z0-9_-]{0,39}"
_JOB_ID = r"[0-9]{1,19}"
_DURATION = r"([0-9]{1,7}(?:\.[0-9]{1,3})?)\s*([smh]?)"
_UNITS = {"s": 1, "m": 60, "h": 3600}
# A job name glob: SchedulerX job names are short; a pattern is a line, not a document.
MAX_GLOB = 200
MAX_JOB_ID = 2**63 - 1
# A config is a page of YAML; these bounds are far above any real one and far
# below what exhausts 128 MB (a 787-byte alias bomb expands to billions of values).
MAX_CONFIG_BYTES = 1_000_000
MAX_ALIASES = 100
MAX_VALUES = 100_000
MAX_DEPTH = 64
SHOW_CHARS = 60


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


def show(value: object) -> str:
    """A value from the file fit for a message: one short line, whatever its size."""
    if isinstance(value, str):
        cut = value[:SHOW_CHARS]
        return repr(cut) + ("…" if len(value) > SHOW_CHARS else "")
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value) if value.bit_length() <= 64 else "a very large integer"
    if isinstance(value, list):
        return f"a list of {len(value)} item(s)"
    if isinstance(value, dict):
        return f"a mapping of {len(value)} key(s)"
    return f"a {type(value).__name__}"


@dataclass(frozen=True)
class JobSpec:
    job_id: int
    name: str | None = None


@dataclass(frozen=True)
class WatchRule:
    namespace: str
    group: str
    # Jobs named by id; with `all_jobs` or `job_names` the group's job list (ListJobs) adds
    # the others, less `exclude_jobs` and `exclude_names`.
    jobs: tuple[JobSpec, ...]
    receivers: tuple[str, ...]
    alert_on: frozenset[InstanceStatus] = DEFAULT_ALERT_ON
    # The entry's alert rule options (recovery, consecutive_failures, stuck_after,
    # missed_grace, trigger_types, flap_window, flap_changes), alert_on included.
    rules: RuleSettings = DEFAULT_SETTINGS
    all_jobs: bool = False
    job_names: tuple[str, ...] = ()  # shell-style globs: * ? [abc]
    exclude_jobs: frozenset[int] = frozenset()
    exclude_names: tuple[str, ...] = ()
    # @-mention the job's SchedulerX contacts; add the failed run's last log lines (GetLog).
    mention_owners: bool = False
    include_log: bool = False

    @property
    def discovers(self) -> bool:
        """Whether the jobs watched come from the group's job list, not only from ids."""
        return self.all_jobs or bool(self.job_names)


@dataclass(frozen=True)
class ReceiverConfig:
    name: str
    # Checked and rebuilt from its parts (urls.py): what is posted to is what was checked.
    url: HttpUrl = field(repr=False)
    secret: str | None = field(default=None, repr=False)
    at_mobiles: tuple[str, ...] = ()
    keyword: str | None = None
    at_user_ids: tuple[str, ...] = ()

    @property
    def webhook(self) -> str:
        """The robot's URL in its one normalised spelling: one robot, one string."""
        return str(self.url)

    @property
    def access_token(self) -> str:
        return next((v for k, v in self.url.params() if k == "access_token"), "")


# How runs are found: "auto" asks each group for the runs that need attention (falling back
# per group to per-job polls where the server cannot), "per_job" polls each job after its fire
# times, "every_job" polls every job every tick (the loop of old, for comparisons).
QUERY_MODES = ("auto", "per_job", "every_job")


@dataclass(frozen=True)
class SchedulerXConfig:
    endpoint: str = DEFAULT_SCHEDULERX_ENDPOINT
    # SchedulerX allows 100 calls a minute per API for the whole account;
    # leave room for the console and other tools using the same account.
    max_calls_per_minute: int = 90
    concurrency: int = 4
    timeout_seconds: float = 5.0
    query: str = "auto"
    # How often each group's job list is read again (ListJobs).
    discovery_interval: timedelta = timedelta(minutes=10)
    # Per-job polling: every job at least this often, for runs started by hand or by API.
    sweep_interval: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class StateConfig:
    url: str
    endpoint: str | None = None
    timeout_seconds: float = 5.0


@dataclass(frozen=True)
class DingTalkConfig:
    allowed_hosts: tuple[str, ...] = ("oapi.dingtalk.com",)
    # DingTalk blocks a robot for ten minutes past 20 messages a minute, as
    # counted by its clock; two below that absorbs skew between ours and its.
    max_per_minute: int = 18
    # More alerts than this for one receiver in one tick go out as summaries.
    summary_threshold: int = 3
    timeout_seconds: float = 5.0


@dataclass(frozen=True)
class TemplateConfig:
    language: str = "zh-CN"
    alert: str | None = None
    summary: str | None = None


@dataclass(frozen=True)
class HealthConfig:
    receiver: str | None = None
    impaired_after: int = 3


@dataclass(frozen=True)
class Config:
    region: str
    state: StateConfig
    receivers: Mapping[str, ReceiverConfig]
    watch: tuple[WatchRule, ...]
    timezone: str = "Asia/Shanghai"
    schedulerx: SchedulerXConfig = SchedulerXConfig()
    dingtalk: DingTalkConfig = DingTalkConfig()
    templates: TemplateConfig = TemplateConfig()
    health: HealthConfig = HealthConfig()
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
    # `actions:` (actions/settings.py); None when the section is absent (no buttons).
    actions: ActionSettings | None = None

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
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc.strerror or exc}"], str(path)) from None
    return parse_config(
        read_config_data(data, str(path)),
        os.environ if env is None else env,
        str(path),
        path.parent,
    )


def read_config_data(data: bytes, source: str) -> Any:
    """The plain values of a config file: JSON when its name ends in .json, else YAML."""
    if source.lower().endswith(".json"):
        return read_json(data, source)
    return read_yaml(data, source)


def read_json(data: bytes | str, source: str = "config") -> Any:
    """JSON text (as `make package` writes it) -> plain values; a problem names its line."""
    size = len(data.encode("utf-8") if isinstance(data, str) else data)
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(
            [f"(top level): the file is {size} bytes; a config is limited to {MAX_CONFIG_BYTES}"],
            source,
        )
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        assert isinstance(data, bytes)
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError([f"line {line}: not UTF-8 text"], source) from None
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
    # PyYAML costs a cold start ~15 ms; the function reads JSON (see read_config_data).
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


_TOP_KEYS = {
    "region",
    "timezone",
    "schedulerx",
    "state",
    "dingtalk",
    "receivers",
    "watch",
    "templates",
    "health",
    "first_run_lookback_minutes",
    "pending_max_age_hours",
    "allow_loopback_http",
    "shared_cause",
    "heartbeat",
    "mention_owners",
    "include_log",
    "silences",
    "routes",
    "actions",
}
# The alert rule options of a watch entry (core/rules/settings.py).
_RULE_KEYS = {
    "recovery",
    "consecutive_failures",
    "stuck_after",
    "missed_grace",
    "trigger_types",
    "flap_window",
    "flap_changes",
}
MAX_CONSECUTIVE_FAILURES = 100
# stuck_after, flap_window, missed_grace: a year and a day is longer than any of them
# can mean; a longer one (or 1e400s, read as infinity) is a mistake, refused as such.
MAX_RULE_DAYS = 366
MAX_SHARED_CAUSE_JOBS = 1000
_OFF = "off"


class _Parser:
    """Collects every problem instead of stopping at the first one."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []
        self.allow_loopback_http = False
        self.evidence_defaults = {"mention_owners": False, "include_log": False}
        # Variables never substituted besides the credentials: the action keys' own.
        self.barred = {ACTION_KEYS_ENV}

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    # -- scalars -------------------------------------------------------------

    def substitute(self, path: str, value: str, from_env: bool = False) -> str | None:
        """`value` with its `${VAR}`s replaced, where `from_env` (a secret or an endpoint)
        allows them; else None, the reason recorded."""
        names = _VAR.findall(value)
        if not names:
            return value
        if not from_env:
            self.fail(
                path,
                f"${{VAR}} is read from the environment only in {ENV_FIELDS}; "
                "write this value in the file",
            )
            return None
        barred = sorted({name for name in names if self.is_barred(name)})
        if barred:
            self.fail(
                path,
                f"{', '.join(barred)} is never read into the config: it holds the function's "
                "credentials or its action signing keys",
            )
            return None
        missing = [name for name in names if name not in self.env]
        if missing:
            self.fail(path, f"environment variable {', '.join(sorted(set(missing)))} is not set")
            return None
        return _VAR.sub(lambda m: self.env[m.group(1)], value)

    def may_carry_env(self, url: HttpUrl, entry: Mapping[str, Any], keys: tuple[str, ...]) -> bool:
        """Whether `url` may receive what `entry[keys]` read from the environment."""
        if not any(isinstance(entry.get(k), str) and _VAR.search(entry[k]) for k in keys):
            return True
        return url.host == DINGTALK_HOST or (self.allow_loopback_http and url.is_loopback)

    def is_barred(self, name: str) -> bool:
        return (
            name.upper().startswith(_CREDENTIAL_PREFIX)
            or name.lower() in _FC2_CREDENTIALS
            or name in self.barred
        )

    def string(
        self,
        mapping: Mapping[str, Any],
        key: str,
        path: str,
        default: str | None = None,
        *,
        from_env: bool = False,
    ) -> str | None:
        value = mapping.get(key)
        if value is None:
            if default is None:
                self.fail(_join(path, key), "is required")
            return default
        if isinstance(value, bool) or not isinstance(value, str | int) or not _small(value):
            self.fail(_join(path, key), f"must be a string, not {show(value)}")
            return default
        return self.substitute(_join(path, key), str(value), from_env)

    def optional_string(
        self, mapping: Mapping[str, Any], key: str, path: str, *, from_env: bool = False
    ) -> str | None:
        if mapping.get(key) in (None, ""):
            return None
        result = self.string(mapping, key, path, from_env=from_env)
        return result or None

    def boolean(self, mapping: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        value = mapping.get(key, default)
        if not isinstance(value, bool):
            self.fail(_join(path, key), f"must be true or false, not {show(value)}")
            return default
        return value

    def number(
        self,
        mapping: Mapping[str, Any],
        key: str,
        path: str,
        default: float,
        low: float,
        high: float,
    ) -> float:
        raw = value = mapping.get(key, default)
        if isinstance(value, str):
            text = self.substitute(_join(path, key), value)
            try:
                value = float(text) if text is not None else default
            except ValueError:
                self.fail(_join(path, key), f"must be a number, not {show(raw)}")
                return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not _small(value):
            self.fail(_join(path, key), f"must be a number, not {show(raw)}")
            return default
        if not low <= value <= high:
            # A value from the environment is not repeated, only where it came from.
            shown = show(raw) if isinstance(raw, str) else f"{value:g}"
            self.fail(_join(path, key), f"must be between {low:g} and {high:g}, not {shown}")
            return default
        return value

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

    def url(self, path: str, value: str) -> HttpUrl | None:
        try:
            return parse_http_url(value, allow_loopback_http=self.allow_loopback_http)
        except UrlError as exc:
            self.fail(path, str(exc))
            return None

    def endpoint(self, raw: Mapping[str, Any], path: str, default: str | None) -> str | None:
        """An API endpoint: scheme://host[:port], nothing after it."""
        value = self.string(raw, "endpoint", path, default, from_env=True) if default else None
        if default is None:
            value = self.optional_string(raw, "endpoint", path, from_env=True)
        if value is None:
            return default
        url = self.url(_join(path, "endpoint"), value)
        if url is None:
            return default
        if url.path not in ("", "/") or url.query:
            self.fail(_join(path, "endpoint"), "must be just https://HOST[:PORT], no path or query")
            return default
        if not (_cloud_host(url.host) or (self.allow_loopback_http and url.is_loopback)):
            # Every call to it is signed and carries the function's STS token.
            self.fail(
                _join(path, "endpoint"),
                f"must be an Alibaba Cloud endpoint (a host under {CLOUD_DOMAIN}): calls to "
                "it carry the function's credentials",
            )
            return default
        return url.origin

    # -- sections ------------------------------------------------------------

    def config(self, raw: Any, base_dir: Path) -> Config | None:
        if raw is None:
            self.fail("(top level)", "the config is empty")
            return None
        top = self.mapping(raw, "(top level)")
        self.unknown_keys(top, _TOP_KEYS, "")
        self.allow_loopback_http = self.boolean(top, "allow_loopback_http", "", False)
        actions = top.get("actions")
        if isinstance(actions, dict) and isinstance(actions.get("key_env"), str):
            self.barred.add(actions["key_env"])
        region = self.string(top, "region", "")
        if region is not None and not re.fullmatch(_REGION, region):
            self.fail(
                "region", f"must be a region id such as cn-hangzhou, not {show(top['region'])}"
            )
        timezone = self.timezone(top)
        # Defaults for every watch entry's own `mention_owners` and `include_log`.
        self.evidence_defaults = {
            key: self.boolean(top, key, "", False) for key in ("mention_owners", "include_log")
        }
        dingtalk = self.dingtalk(self.mapping(top.get("dingtalk"), "dingtalk"))
        receivers, declared = self.receivers(top.get("receivers"), dingtalk)
        watch = self.watch(top.get("watch"), receivers, declared)
        health = self.health(self.mapping(top.get("health"), "health"), receivers, declared)
        lookback = self.number(top, "first_run_lookback_minutes", "", 15, 0, 7 * 24 * 60)
        max_age = self.number(top, "pending_max_age_hours", "", 24, 1, 30 * 24)
        silences, routes, quiet_hours = self.sections(top, declared, timezone)
        config = Config(
            region=region or "",
            timezone=timezone,
            schedulerx=self.schedulerx(self.mapping(top.get("schedulerx"), "schedulerx")),
            state=self.state(self.mapping(top.get("state"), "state")),
            dingtalk=dingtalk,
            receivers=receivers,
            watch=watch,
            templates=self.templates(self.mapping(top.get("templates"), "templates"), base_dir),
            health=health,
            first_run_lookback=timedelta(minutes=lookback),
            pending_max_age=timedelta(hours=max_age),
            base_dir=base_dir,
            shared_cause_min_jobs=self.shared_cause(top.get("shared_cause", True)),
            heartbeat=self.heartbeat(top.get("heartbeat"), declared),
            silences=silences,
            routes=routes,
            quiet_hours=quiet_hours,
            actions=self.actions(top.get("actions")),
        )
        return config

    def heartbeat(self, raw: Any, declared: Collection[str]) -> HeartbeatConfig | None:
        if raw is None:
            return None
        from schedulerx_alert.config.heartbeat import (
            parse_heartbeat,  # only a config with `heartbeat:`
        )

        return parse_heartbeat(raw, declared, self.fail)

    def sections(
        self, top: Mapping[str, Any], declared: set[str], timezone: str
    ) -> tuple[tuple[Silence, ...], tuple[Route, ...], Mapping[str, QuietHours]]:
        """`silences:`, `routes:` and quiet hours, read by config/sections.py (loaded only
        for a config that has one: most ticks never need it)."""
        receivers = top.get("receivers")
        quiet = isinstance(receivers, list) and any(
            isinstance(r, dict) and "quiet_hours" in r for r in receivers
        )
        if top.get("silences") is None and top.get("routes") is None and not quiet:
            return (), (), {}
        from schedulerx_alert.config.sections import parse_sections

        sections, problems = parse_sections(top, declared, timezone)
        self.problems.extend(problems)
        return sections.silences, sections.routes, dict(sections.quiet_hours)

    def actions(self, raw: Any) -> ActionSettings | None:
        """`actions:` (actions/settings.py); its keys come from the environment."""
        if raw is None:
            return None
        from schedulerx_alert.config.actions import parse_actions

        # Its problems stay in the settings, not the config's: a broken section costs the
        # buttons, never the alerts (the tick reports them; `validate` refuses them).
        return parse_actions(raw, self.env, self.allow_loopback_http)[0]

    def shared_cause(self, raw: Any) -> int | None:
        """`shared_cause: true` (default), `false`, or `{min_jobs: N}`."""
        if isinstance(raw, bool):
            return DEFAULT_MIN_JOBS if raw else None
        if not isinstance(raw, dict):
            self.fail(
                "shared_cause", f"must be true, false or a mapping with min_jobs, not {show(raw)}"
            )
            return DEFAULT_MIN_JOBS
        self.unknown_keys(raw, {"min_jobs"}, "shared_cause")
        return self.count(
            raw, "min_jobs", "shared_cause", DEFAULT_MIN_JOBS, 2, MAX_SHARED_CAUSE_JOBS
        )

    def count(
        self, mapping: Mapping[str, Any], key: str, path: str, default: int, low: int, high: int
    ) -> int:
        value = mapping.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not _small(value):
            self.fail(_join(path, key), f"must be a whole number, not {show(value)}")
            return default
        if not low <= value <= high:
            self.fail(_join(path, key), f"must be between {low} and {high}, not {value}")
            return default
        return value

    def timezone(self, top: Mapping[str, Any]) -> str:
        default = "Asia/Shanghai"
        timezone = self.string(top, "timezone", "", default) or default
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            self.fail("timezone", f"unknown time zone {show(top.get('timezone'))}")
            return default
        return timezone

    def schedulerx(self, raw: Mapping[str, Any]) -> SchedulerXConfig:
        path = "schedulerx"
        self.unknown_keys(
            raw,
            {
                "endpoint",
                "max_calls_per_minute",
                "concurrency",
                "timeout_seconds",
                "query",
                "discovery_interval",
                "sweep_interval",
            },
            path,
        )
        endpoint = self.endpoint(raw, path, DEFAULT_SCHEDULERX_ENDPOINT)
        query = self.string(raw, "query", path, "auto") or "auto"
        if query not in QUERY_MODES:
            self.fail(
                f"{path}.query",
                f"must be one of {', '.join(QUERY_MODES)}, not {show(raw.get('query'))}",
            )
            query = "auto"
        minute, day = timedelta(minutes=1), timedelta(days=1)
        return SchedulerXConfig(
            endpoint=endpoint or DEFAULT_SCHEDULERX_ENDPOINT,
            max_calls_per_minute=int(self.number(raw, "max_calls_per_minute", path, 90, 1, 1000)),
            concurrency=int(self.number(raw, "concurrency", path, 4, 1, 16)),
            timeout_seconds=self.number(raw, "timeout_seconds", path, 5, 0.1, 60),
            query=query,
            discovery_interval=self.interval(
                raw, "discovery_interval", path, timedelta(minutes=10), minute, day
            ),
            sweep_interval=self.interval(
                raw, "sweep_interval", path, timedelta(minutes=15), minute, day
            ),
        )

    def interval(
        self,
        raw: Mapping[str, Any],
        key: str,
        path: str,
        default: timedelta,
        low: timedelta,
        high: timedelta,
    ) -> timedelta:
        """`90s`, `10m`, `1h`, or a number of seconds."""
        value = raw.get(key)
        if value is None:
            return default
        here = _join(path, key)
        seconds: float | None = None
        if isinstance(value, str):
            text = self.substitute(here, value)
            if text is None:
                return default
            match = re.fullmatch(_DURATION, text.strip())
            if match:
                seconds = float(match[1]) * _UNITS[match[2] or "s"]
        elif isinstance(value, int | float) and not isinstance(value, bool) and _small(value):
            seconds = float(value)
        if seconds is None:
            self.fail(here, f"must be a duration such as 90s, 10m or 1h, not {show(value)}")
            return default
        if not low.total_seconds() <= seconds <= high.total_seconds():
            self.fail(here, f"must be between {_span(low)} and {_span(high)}, not {show(value)}")
            return default
        return timedelta(seconds=seconds)

    def state(self, raw: Mapping[str, Any]) -> StateConfig:
        path = "state"
        self.unknown_keys(raw, {"url", "endpoint", "timeout_seconds"}, path)
        url = self.string(raw, "url", path) or ""
        if url:
            problem = _state_url_problem(url)
            if problem:
                self.fail(f"{path}.url", problem)
        return StateConfig(
            url=url,
            endpoint=self.endpoint(raw, path, None),
            timeout_seconds=self.number(raw, "timeout_seconds", path, 5, 0.1, 30),
        )

    def dingtalk(self, raw: Mapping[str, Any]) -> DingTalkConfig:
        path = "dingtalk"
        self.unknown_keys(
            raw,
            {"allowed_hosts", "max_per_minute", "summary_threshold", "timeout_seconds"},
            path,
        )
        hosts = raw.get("allowed_hosts", ["oapi.dingtalk.com"])
        allowed: list[str] = []
        if not isinstance(hosts, list) or not hosts:
            self.fail(f"{path}.allowed_hosts", "must be a non-empty list of host names")
        else:
            for index, host in enumerate(hosts):
                try:
                    if not isinstance(host, str):
                        raise UrlError(f"must be a host name, not {show(host)}")
                    allowed.append(normalise_host(host))
                except UrlError as exc:
                    self.fail(f"{path}.allowed_hosts[{index}]", str(exc))
        return DingTalkConfig(
            allowed_hosts=tuple(allowed) or ("oapi.dingtalk.com",),
            max_per_minute=int(self.number(raw, "max_per_minute", path, 18, 1, 20)),
            summary_threshold=int(self.number(raw, "summary_threshold", path, 3, 1, 20)),
            timeout_seconds=self.number(raw, "timeout_seconds", path, 5, 0.1, 30),
        )

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
        for index, item in enumerate(raw):
            path = f"receivers[{index}]"
            entry = self.mapping(item, path)
            self.unknown_keys(
                entry,
                {
                    "name",
                    "webhook",
                    "secret",
                    "at_mobiles",
                    "at_user_ids",
                    "keyword",
                    "quiet_hours",
                },
                path,
            )
            name = self.string(entry, "name", path)
            webhook = self.string(entry, "webhook", path, from_env=True)
            secret = self.optional_string(entry, "secret", path, from_env=True)
            keyword = self.optional_string(entry, "keyword", path)
            mobiles = self.mobiles(entry.get("at_mobiles"), f"{path}.at_mobiles")
            user_ids = self.user_ids(entry.get("at_user_ids"), f"{path}.at_user_ids")
            url = None
            if webhook:
                url = self.webhook(f"{path}.webhook", webhook, str(entry["webhook"]), dingtalk)
            if url is not None and not self.may_carry_env(url, entry, ("webhook", "secret")):
                # allowed_hosts is the config's own: it cannot say where a secret may go.
                self.fail(
                    f"{path}.webhook",
                    f"a token or secret read from the environment is sent only to "
                    f"{DINGTALK_HOST}; for another host, write this robot's token and secret "
                    "in the file",
                )
                url = None
            if secret is not None and not secret.startswith("SEC"):
                self.fail(f"{path}.secret", "a DingTalk robot secret starts with 'SEC'")
            if name is None:
                continue
            if name in declared:
                self.fail(f"{path}.name", f"duplicate receiver name {show(entry.get('name'))}")
                continue
            declared.add(name)
            if url is None:
                continue
            result[name] = ReceiverConfig(
                name=name,
                url=url,
                secret=secret,
                at_mobiles=mobiles,
                keyword=keyword,
                at_user_ids=user_ids,
            )
        return result, declared

    def mobiles(self, raw: Any, path: str) -> tuple[str, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.fail(path, "must be a list of phone numbers")
            return ()
        mobiles: list[str] = []
        for index, item in enumerate(raw):
            text = str(item) if isinstance(item, str | int) and _small(item) else ""
            if isinstance(item, bool) or not re.fullmatch(_MOBILE, text):
                self.fail(f"{path}[{index}]", f"must be a phone number, not {show(item)}")
            else:
                mobiles.append(text)
        return tuple(mobiles)

    def user_ids(self, raw: Any, path: str) -> tuple[str, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.fail(path, "must be a list of DingTalk user ids")
            return ()
        ids: list[str] = []
        for index, item in enumerate(raw):
            if not isinstance(item, str) or not re.fullmatch(_USER_ID, item):
                self.fail(
                    f"{path}[{index}]",
                    f"must be a DingTalk user id (letters, digits, _ . -), not {show(item)}",
                )
            elif item not in ids:
                ids.append(item)
        return tuple(ids)

    def webhook(
        self, path: str, webhook: str, raw: str, dingtalk: DingTalkConfig
    ) -> HttpUrl | None:
        # The URL carries the access token: describe it, never print it.
        url = self.url(path, webhook)
        if url is None:
            return None
        problems: list[str] = []
        if url.host not in dingtalk.allowed_hosts:
            allowed = ", ".join(dingtalk.allowed_hosts)
            # A host that came from the environment is not repeated.
            host = repr(url.host) if "$" not in raw.split("?")[0] else "(from the environment)"
            problems.append(f"host {host} is not in dingtalk.allowed_hosts ({allowed})")
        names = [name for name, _ in url.params()]
        tokens = [value for name, value in url.params() if name == "access_token"]
        if len(tokens) != 1 or not tokens[0]:
            problems.append("must have exactly one non-empty access_token query parameter")
        for added in ("timestamp", "sign"):
            if added in names:
                problems.append(f"must not carry {added}: it is added when each message is signed")
        for problem in problems:
            self.fail(path, problem)
        return None if problems else url

    def watch(
        self, raw: Any, receivers: Mapping[str, ReceiverConfig], declared: set[str]
    ) -> tuple[WatchRule, ...]:
        rules: list[WatchRule] = []
        if not isinstance(raw, list) or not raw:
            self.fail("watch", "must be a non-empty list")
            return ()
        seen: dict[tuple[str, str, int], str] = {}
        for index, item in enumerate(raw):
            path = f"watch[{index}]"
            entry = self.mapping(item, path)
            self.unknown_keys(
                entry,
                {
                    "namespace",
                    "group",
                    "jobs",
                    "job_names",
                    "exclude_jobs",
                    "exclude_names",
                    "receivers",
                    "alert_on",
                    "mention_owners",
                    "include_log",
                    *_RULE_KEYS,
                },
                path,
            )
            namespace = self.string(entry, "namespace", path)
            group = self.string(entry, "group", path)
            all_jobs = entry.get("jobs") == "all"
            globs = self.globs(entry.get("job_names"), f"{path}.job_names")
            jobs: tuple[JobSpec, ...] = ()
            if all_jobs and globs:
                self.fail(
                    f"{path}.job_names",
                    "jobs: all already watches every job of the group; drop one of the two",
                )
            elif entry.get("jobs") is None and not globs:
                if "job_names" not in entry:
                    self.fail(
                        path,
                        "needs jobs (a list of job ids, or all) or job_names (name patterns)",
                    )
            elif not all_jobs and entry.get("jobs") is not None:
                jobs = self.jobs(entry.get("jobs"), f"{path}.jobs")
            exclude_jobs = frozenset(
                job.job_id
                for job in self.ids(entry.get("exclude_jobs"), f"{path}.exclude_jobs", False)
            )
            exclude_names = self.globs(entry.get("exclude_names"), f"{path}.exclude_names")
            if (exclude_jobs or exclude_names) and not (all_jobs or globs):
                which = "exclude_jobs" if exclude_jobs else "exclude_names"
                self.fail(f"{path}.{which}", "excludes apply to jobs: all or job_names only")
            for job in jobs:
                if job.job_id in exclude_jobs:
                    self.fail(f"{path}.exclude_jobs", f"job {job.job_id} is also listed in jobs")
            names = self.receiver_names(
                entry.get("receivers"), f"{path}.receivers", receivers, declared
            )
            alert_on = self.alert_on(entry.get("alert_on"), f"{path}.alert_on")
            settings = self.rule_settings(entry, path, alert_on)
            if namespace is None or group is None:
                continue
            for job in jobs:
                key = (namespace, group, job.job_id)
                if key in seen:
                    self.fail(f"{path}.jobs", f"job {job.job_id} is already watched by {seen[key]}")
                seen[key] = path
            rules.append(
                WatchRule(
                    namespace,
                    group,
                    jobs,
                    names,
                    alert_on,
                    settings,
                    all_jobs=all_jobs,
                    job_names=globs,
                    exclude_jobs=exclude_jobs,
                    exclude_names=exclude_names,
                    mention_owners=self.boolean(
                        entry, "mention_owners", path, self.evidence_defaults["mention_owners"]
                    ),
                    include_log=self.boolean(
                        entry, "include_log", path, self.evidence_defaults["include_log"]
                    ),
                )
            )
        return tuple(rules)

    def globs(self, raw: Any, path: str) -> tuple[str, ...]:
        """Job name patterns (`etl-*`, `report-?`), matched against the whole name."""
        if raw is None:
            return ()
        if not isinstance(raw, list) or not raw:
            self.fail(path, 'must be a non-empty list of name patterns such as ["etl-*"]')
            return ()
        globs: list[str] = []
        for index, item in enumerate(raw):
            here = f"{path}[{index}]"
            if not isinstance(item, str) or not item.strip():
                self.fail(here, f"must be a name pattern, not {show(item)}")
            elif len(item) > MAX_GLOB or not item.isprintable():
                self.fail(here, f"must be one printable line of at most {MAX_GLOB} characters")
            else:
                globs.append(item)
        return tuple(globs)

    def rule_settings(
        self, entry: Mapping[str, Any], path: str, alert_on: frozenset[InstanceStatus]
    ) -> RuleSettings:
        """The entry's alert rule options, each problem named by its path."""
        default = RuleSettings()
        stuck = self.duration(entry, "stuck_after", path, ("job_timeout", _OFF))
        window = self.duration(entry, "flap_window", path, (_OFF,))
        grace = self.duration(entry, "missed_grace", path, (_OFF,))
        trigger_types = default.trigger_types
        if "trigger_types" in entry:
            raw = entry["trigger_types"]
            here = _join(path, "trigger_types")
            if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
                self.fail(here, f"must be a list of trigger type names, not {show(raw)}")
            else:
                try:
                    trigger_types = parse_trigger_types(raw)
                except SettingError as exc:
                    self.fail(here, str(exc)[:200])
        try:
            return RuleSettings(
                alert_on=alert_on,
                recovery=self.boolean(entry, "recovery", path, default.recovery),
                consecutive_failures=self.count(
                    entry,
                    "consecutive_failures",
                    path,
                    default.consecutive_failures,
                    1,
                    MAX_CONSECUTIVE_FAILURES,
                ),
                stuck_after=_stuck_after(stuck, default),
                missed_grace=None if grace in (None, _OFF) else float(grace),
                trigger_types=trigger_types,
                flap_window=default.flap_window if window is None else _seconds_or_none(window),
                flap_changes=self.count(
                    entry, "flap_changes", path, default.flap_changes, 2, MAX_FLAP_CHANGES
                ),
            )
        except SettingError as exc:  # every value was checked above; kept as a net
            self.fail(path, str(exc)[:200])
            return default

    def duration(
        self, entry: Mapping[str, Any], key: str, path: str, words: tuple[str, ...]
    ) -> float | str | None:
        """`30s`, `10m`, `2h` (or one of `words`; `false` for off); None when absent."""
        if key not in entry or entry[key] is None:
            return None
        here = _join(path, key)
        raw = entry[key]
        if raw is False and _OFF in words:
            return _OFF
        if not isinstance(raw, str):
            also = f" (or {', '.join(words)})"
            self.fail(here, f"must be a duration such as 30s, 10m or 2h{also}, not {show(raw)}")
            return None
        text = self.substitute(here, raw)
        if text is None:
            return None
        if text.strip().lower() in words:
            return text.strip().lower()
        try:
            seconds = parse_duration(text)
        except SettingError:
            # Said in our words: parse_duration's would repeat a value from the environment.
            self.fail(
                here,
                f"{show(raw)} is not a duration; write a number with a unit (d, h, m, s), "
                f"largest first, e.g. 30s, 10m, 2h or 1h30m{''.join(f', or {w}' for w in words)}",
            )
            return None
        if not seconds > 0:
            self.fail(here, f"must be longer than 0s, not {show(raw)}")
            return None
        if seconds > MAX_RULE_DAYS * 86400:
            self.fail(here, f"must be at most {MAX_RULE_DAYS}d, not {show(raw)}")
            return None
        return seconds

    def jobs(self, raw: Any, path: str) -> tuple[JobSpec, ...]:
        if isinstance(raw, str):
            self.fail(path, f"must be a list of job ids or all, not {show(raw)}")
            return ()
        return self.ids(raw, path, True)

    def ids(self, raw: Any, path: str, named: bool) -> tuple[JobSpec, ...]:
        if raw is None and not named:
            return ()
        if not isinstance(raw, list) or not raw:
            self.fail(path, "must be a non-empty list of job ids")
            return ()
        jobs: list[JobSpec] = []
        for index, item in enumerate(raw):
            here = f"{path}[{index}]"
            if isinstance(item, dict) and named:
                self.unknown_keys(item, {"id", "name"}, here)
                job_id, name = item.get("id"), item.get("name")
                if name is not None and not isinstance(name, str):
                    self.fail(f"{here}.name", f"must be a string, not {show(name)}")
                    name = None
            else:
                job_id, name = item, None
            number = job_id
            if isinstance(number, str) and re.fullmatch(_JOB_ID, number):
                number = int(number)
            if (
                isinstance(number, bool)
                or not isinstance(number, int)
                or not 0 < number <= MAX_JOB_ID
            ):
                self.fail(here, f"job id must be a positive integer, not {show(job_id)}")
                continue
            jobs.append(JobSpec(number, name))
        return tuple(jobs)

    def receiver_names(
        self,
        raw: Any,
        path: str,
        receivers: Mapping[str, ReceiverConfig],
        declared: set[str],
    ) -> tuple[str, ...]:
        if not isinstance(raw, list) or not raw:
            self.fail(path, "must name at least one receiver")
            return ()
        names: list[str] = []
        robots: dict[tuple[str, str, str], str] = {}
        for index, item in enumerate(raw):
            here = f"{path}[{index}]"
            if not isinstance(item, str):
                self.fail(here, f"receiver names are strings, not {show(item)}")
            elif item in names:
                # diff.py owes one alert per listed receiver: a repeat sends everything twice.
                self.fail(here, f"duplicate receiver {show(item)}")
            elif item not in declared:
                self.fail(here, f"unknown receiver {show(item)}")
            elif item in receivers:
                url = receivers[item].url
                robot = (url.origin, url.path, receivers[item].access_token)
                if robot in robots:
                    self.fail(
                        here,
                        f"{show(item)} posts to the same robot as {show(robots[robot])}: "
                        "that group would get every alert twice",
                    )
                    continue
                robots[robot] = item
                names.append(item)
        return tuple(names)

    def alert_on(self, raw: Any, path: str) -> frozenset[InstanceStatus]:
        if raw is None:
            return DEFAULT_ALERT_ON
        if not isinstance(raw, list) or not raw:
            self.fail(path, "must be a non-empty list of statuses such as [failed, rejected]")
            return DEFAULT_ALERT_ON
        statuses: set[InstanceStatus] = set()
        known = {s.label: s for s in InstanceStatus}
        final = ", ".join(sorted(s.label for s in TERMINAL))
        for index, item in enumerate(raw):
            here = f"{path}[{index}]"
            status: InstanceStatus | None = None
            if isinstance(item, int) and not isinstance(item, bool):
                status = InstanceStatus.parse(item) if _small(item) else None
            elif isinstance(item, str):
                status = known.get(item.lower())
            if status is None:
                self.fail(here, f"unknown status {show(item)} (one of: {final})")
            elif status not in TERMINAL:
                # The diff alerts on a run once it has finished; a run is never
                # finished in this status, so the rule could never fire.
                self.fail(
                    here,
                    f"{status.label!r} is not a final status, so it can never fire "
                    f"(one of: {final})",
                )
            else:
                statuses.add(status)
        return frozenset(statuses) or DEFAULT_ALERT_ON

    def templates(self, raw: Mapping[str, Any], base_dir: Path) -> TemplateConfig:
        path = "templates"
        self.unknown_keys(raw, {"language", "alert", "summary"}, path)
        language = self.string(raw, "language", path, "zh-CN") or "zh-CN"
        if language not in LANGUAGES:
            self.fail(
                f"{path}.language",
                f"must be one of {', '.join(LANGUAGES)}, not {show(raw.get('language'))}",
            )
            language = "zh-CN"
        files: dict[str, str | None] = {}
        for key in ("alert", "summary"):
            value = self.optional_string(raw, key, path)
            if value is not None:
                file, problem = _template_file(base_dir, value)
                if problem is not None:
                    shown = show(raw.get(key))
                    self.fail(
                        f"{path}.{key}",
                        f"no such template file {shown}"
                        if problem == _NO_FILE
                        else f"{shown} is refused: {problem}",
                    )
                value = str(file) if file else None
            files[key] = value
        return TemplateConfig(language, files["alert"], files["summary"])

    def health(
        self,
        raw: Mapping[str, Any],
        receivers: Mapping[str, ReceiverConfig],
        declared: set[str],
    ) -> HealthConfig:
        path = "health"
        self.unknown_keys(raw, {"receiver", "impaired_after"}, path)
        receiver = self.optional_string(raw, "receiver", path)
        if receiver is not None and receiver not in declared:
            self.fail(f"{path}.receiver", f"unknown receiver {show(raw.get('receiver'))}")
            receiver = None
        if receiver is None and "ops" in receivers and "receiver" not in raw:
            receiver = "ops"
        after = int(self.number(raw, "impaired_after", path, 3, 1, 1000))
        return HealthConfig(receiver=receiver, impaired_after=after)


def _stuck_after(
    value: float | str | None, default: RuleSettings
) -> float | Literal["job_timeout", "off"]:
    if value == "job_timeout":
        return "job_timeout"
    if value == _OFF:
        return "off"
    return default.stuck_after if value is None or isinstance(value, str) else value


def _seconds_or_none(value: float | str) -> float | None:
    return None if isinstance(value, str) else value


def _span(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _cloud_host(host: str) -> bool:
    return host == CLOUD_DOMAIN or host.endswith("." + CLOUD_DOMAIN)


def _small(value: object) -> bool:
    """Not an integer too large for anything here to print or store."""
    return not isinstance(value, int) or value.bit_length() <= 64


_NO_FILE = "no such file"


def _template_file(base_dir: Path, name: str) -> tuple[Path | None, str | None]:
    """The template file `name` names, or why it is refused.

    Whoever writes the config need not be able to read the function's files: a template
    is rendered into a chat, so a path out of `base_dir` (/proc/self/environ, `..`, a
    link pointing elsewhere) would post whatever it reads there.
    """
    inside = (
        "a template is a file in the config's folder (for a config in OSS, the code "
        "package's), named relative to it; absolute paths and '..' are refused"
    )
    if not name.isprintable() or "\\" in name:
        return None, inside
    given = PurePosixPath(name)
    if given.is_absolute() or ".." in given.parts or name.startswith("~"):
        return None, inside
    try:
        root = base_dir.resolve()
        file = (root / given).resolve()
        if not file.is_relative_to(root):
            return None, f"resolves outside the config's folder; {inside}"
        return (file, None) if file.is_file() else (None, _NO_FILE)
    except (OSError, ValueError, RuntimeError):
        return None, _NO_FILE


def _state_url_problem(url: str) -> str | None:
    """What is wrong with a state.url, without repeating it; None when fine."""
    if not url.isprintable() or any(c in url for c in "?#\\"):
        return "must not contain '?', '#', a backslash or control characters"
    try:
        parts = urlsplit(url)
    except ValueError:  # brackets that do not make an IPv6 literal
        return "must be oss://BUCKET/KEY or file:///ABSOLUTE/PATH"
    if parts.scheme == "oss":
        key = parts.path[1:]
        if not _BUCKET.fullmatch(parts.netloc):
            return (
                "must be oss://BUCKET/KEY; a bucket name is 3-63 lowercase letters, digits "
                "and hyphens, starting and ending with a letter or digit"
            )
        if not key or key.startswith("/") or key.endswith("/") or len(key.encode()) > 1023:
            return "must be oss://BUCKET/KEY, with KEY an object name (not a folder)"
        return None
    if parts.scheme == "file":
        if parts.netloc or not parts.path.startswith("/") or parts.path.endswith("/"):
            return "must be file:///ABSOLUTE/PATH/state.json"
        return None
    return "must start with oss:// or file://"


def _key(key: object) -> str:
    """A key from the file as a path segment: plain when it is a plain word."""
    if isinstance(key, str) and re.fullmatch(_PLAIN_KEY, key):
        return key
    return f"[{show(key)}]"


def _join(path: str, key: object) -> str:
    segment = _key(key)
    if not path:
        return segment
    return f"{path}{segment}" if segment.startswith("[") else f"{path}.{segment}"
