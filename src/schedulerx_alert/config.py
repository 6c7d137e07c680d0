"""The YAML config: parsed into typed records, every problem named by its path.

Secrets never live in the file: `${VAR}` in any string is replaced from the
environment, and no message ever repeats a substituted value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from .model import InstanceStatus

DEFAULT_SCHEDULERX_ENDPOINT = "https://schedulerx.aliyuncs.com"
DEFAULT_ALERT_ON = frozenset({InstanceStatus.FAILED, InstanceStatus.REJECTED})
LANGUAGES = ("zh-CN", "en")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


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
class JobSpec:
    job_id: int
    name: str | None = None


@dataclass(frozen=True)
class WatchRule:
    namespace: str
    group: str
    jobs: tuple[JobSpec, ...]
    receivers: tuple[str, ...]
    alert_on: frozenset[InstanceStatus] = DEFAULT_ALERT_ON


@dataclass(frozen=True)
class ReceiverConfig:
    name: str
    webhook: str = field(repr=False)
    secret: str | None = field(default=None, repr=False)
    at_mobiles: tuple[str, ...] = ()
    keyword: str | None = None


@dataclass(frozen=True)
class SchedulerXConfig:
    endpoint: str = DEFAULT_SCHEDULERX_ENDPOINT
    # SchedulerX allows 100 calls a minute per API for the whole account;
    # leave room for the console and other tools using the same account.
    max_calls_per_minute: int = 90
    concurrency: int = 4
    timeout_seconds: float = 5.0


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

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def job_count(self) -> int:
        return sum(len(rule.jobs) for rule in self.watch)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read, substitute and validate a config file; raises ConfigError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc.strerror or exc}"], str(path)) from None
    return parse_config(
        read_yaml(data, str(path)), os.environ if env is None else env, str(path), path.parent
    )


def read_yaml(data: bytes | str, source: str = "config") -> Any:
    """YAML text -> plain values; raises ConfigError naming the line."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise ConfigError(["not UTF-8 text"], source) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError([f"{where}{problem}"], source) from None


def parse_config(
    raw: Any,
    env: Mapping[str, str],
    source: str = "config",
    base_dir: Path = Path("."),
) -> Config:
    parser = _Parser(env)
    config = parser.config(raw, base_dir)
    if parser.problems or config is None:
        raise ConfigError(parser.problems or ["empty config"], source)
    return config


class _Parser:
    """Collects every problem instead of stopping at the first one."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    # -- scalars -------------------------------------------------------------

    def substitute(self, path: str, value: str) -> str | None:
        missing = [name for name in _VAR.findall(value) if name not in self.env]
        if missing:
            names = ", ".join(sorted(set(missing)))
            self.fail(path, f"environment variable {names} is not set")
            return None
        return _VAR.sub(lambda m: self.env[m.group(1)], value)

    def string(
        self, mapping: Mapping[str, Any], key: str, path: str, default: str | None = None
    ) -> str | None:
        value = mapping.get(key)
        if value is None:
            if default is None:
                self.fail(f"{path}.{key}" if path else key, "is required")
            return default
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.fail(_join(path, key), f"must be a string, not {type(value).__name__}")
            return default
        return self.substitute(_join(path, key), str(value))

    def optional_string(self, mapping: Mapping[str, Any], key: str, path: str) -> str | None:
        if mapping.get(key) in (None, ""):
            return None
        result = self.string(mapping, key, path)
        return result or None

    def number(
        self,
        mapping: Mapping[str, Any],
        key: str,
        path: str,
        default: float,
        low: float,
        high: float,
    ) -> float:
        value = mapping.get(key, default)
        if isinstance(value, str):
            value = self.substitute(_join(path, key), value)
            try:
                value = float(value) if value is not None else default
            except ValueError:
                self.fail(_join(path, key), "must be a number")
                return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(_join(path, key), f"must be a number, not {value!r}")
            return default
        if not low <= value <= high:
            self.fail(_join(path, key), f"must be between {low:g} and {high:g}, not {value:g}")
            return default
        return value

    def mapping(self, value: Any, path: str) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, not {type(value).__name__}")
            return {}
        return value

    def unknown_keys(self, mapping: Mapping[str, Any], known: set[str], path: str) -> None:
        for key in mapping:
            if key not in known:
                self.fail(_join(path, str(key)), "unknown key")

    # -- sections ------------------------------------------------------------

    def config(self, raw: Any, base_dir: Path) -> Config | None:
        if raw is None:
            self.problems.append("the config is empty")
            return None
        top = self.mapping(raw, "(top level)")
        self.unknown_keys(
            top,
            {
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
            },
            "",
        )
        region = self.string(top, "region", "") or ""
        timezone = self.string(top, "timezone", "", "Asia/Shanghai") or "Asia/Shanghai"
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.fail("timezone", f"unknown time zone {timezone!r}")
        dingtalk = self.dingtalk(self.mapping(top.get("dingtalk"), "dingtalk"))
        receivers = self.receivers(top.get("receivers"), dingtalk)
        watch = self.watch(top.get("watch"), receivers)
        health = self.health(self.mapping(top.get("health"), "health"), receivers)
        lookback = self.number(top, "first_run_lookback_minutes", "", 15, 0, 7 * 24 * 60)
        max_age = self.number(top, "pending_max_age_hours", "", 24, 1, 30 * 24)
        config = Config(
            region=region,
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
        )
        return config

    def schedulerx(self, raw: Mapping[str, Any]) -> SchedulerXConfig:
        path = "schedulerx"
        self.unknown_keys(
            raw, {"endpoint", "max_calls_per_minute", "concurrency", "timeout_seconds"}, path
        )
        endpoint = self.string(raw, "endpoint", path, DEFAULT_SCHEDULERX_ENDPOINT)
        endpoint = endpoint or DEFAULT_SCHEDULERX_ENDPOINT
        if urlsplit(endpoint).scheme not in ("http", "https"):
            self.fail(f"{path}.endpoint", f"must start with https://, not {endpoint!r}")
        return SchedulerXConfig(
            endpoint=endpoint.rstrip("/"),
            max_calls_per_minute=int(self.number(raw, "max_calls_per_minute", path, 90, 1, 100)),
            concurrency=int(self.number(raw, "concurrency", path, 4, 1, 16)),
            timeout_seconds=self.number(raw, "timeout_seconds", path, 5, 0.1, 60),
        )

    def state(self, raw: Mapping[str, Any]) -> StateConfig:
        path = "state"
        self.unknown_keys(raw, {"url", "endpoint", "timeout_seconds"}, path)
        url = self.string(raw, "url", path) or ""
        parts = urlsplit(url)
        if url and parts.scheme == "oss":
            if not parts.netloc or not parts.path.strip("/"):
                self.fail(f"{path}.url", f"must be oss://BUCKET/KEY, not {url!r}")
        elif url and parts.scheme == "file":
            if not parts.path.startswith("/"):
                self.fail(f"{path}.url", f"must be file:///ABSOLUTE/PATH, not {url!r}")
        elif url:
            self.fail(f"{path}.url", f"must start with oss:// or file://, not {url!r}")
        return StateConfig(
            url=url,
            endpoint=self.optional_string(raw, "endpoint", path),
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
        if not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
            self.fail(f"{path}.allowed_hosts", "must be a list of host names")
            hosts = ["oapi.dingtalk.com"]
        return DingTalkConfig(
            allowed_hosts=tuple(h.lower() for h in hosts),
            max_per_minute=int(self.number(raw, "max_per_minute", path, 18, 1, 20)),
            summary_threshold=int(self.number(raw, "summary_threshold", path, 3, 1, 20)),
            timeout_seconds=self.number(raw, "timeout_seconds", path, 5, 0.1, 30),
        )

    def receivers(self, raw: Any, dingtalk: DingTalkConfig) -> dict[str, ReceiverConfig]:
        result: dict[str, ReceiverConfig] = {}
        if not isinstance(raw, list) or not raw:
            self.fail("receivers", "must be a non-empty list")
            return result
        for index, item in enumerate(raw):
            path = f"receivers[{index}]"
            entry = self.mapping(item, path)
            self.unknown_keys(entry, {"name", "webhook", "secret", "at_mobiles", "keyword"}, path)
            name = self.string(entry, "name", path)
            webhook = self.string(entry, "webhook", path)
            secret = self.optional_string(entry, "secret", path)
            keyword = self.optional_string(entry, "keyword", path)
            mobiles = entry.get("at_mobiles") or []
            if not isinstance(mobiles, list) or not all(
                isinstance(m, str | int) and not isinstance(m, bool) for m in mobiles
            ):
                self.fail(f"{path}.at_mobiles", "must be a list of phone numbers")
                mobiles = []
            if webhook is not None:
                self.check_webhook(f"{path}.webhook", webhook, dingtalk)
            if secret is not None and not secret.startswith("SEC"):
                self.fail(f"{path}.secret", "a DingTalk robot secret starts with 'SEC'")
            if name is None or webhook is None:
                continue
            if name in result:
                self.fail(f"{path}.name", f"duplicate receiver name {name!r}")
                continue
            result[name] = ReceiverConfig(
                name=name,
                webhook=webhook,
                secret=secret,
                at_mobiles=tuple(str(m) for m in mobiles),
                keyword=keyword,
            )
        return result

    def check_webhook(self, path: str, webhook: str, dingtalk: DingTalkConfig) -> None:
        # The URL carries the access token: describe it, never print it.
        parts = urlsplit(webhook)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("https", "http") or not host:
            self.fail(path, "must be an https:// DingTalk robot URL")
            return
        if host not in dingtalk.allowed_hosts:
            allowed = ", ".join(dingtalk.allowed_hosts)
            self.fail(path, f"host {host!r} is not in dingtalk.allowed_hosts ({allowed})")
        if parts.scheme != "https" and host not in _LOOPBACK:
            self.fail(path, "must use https (the URL carries the robot's access token)")
        if not parse_qs(parts.query).get("access_token", [""])[0]:
            self.fail(path, "has no access_token query parameter")

    def watch(self, raw: Any, receivers: Mapping[str, ReceiverConfig]) -> tuple[WatchRule, ...]:
        rules: list[WatchRule] = []
        if not isinstance(raw, list) or not raw:
            self.fail("watch", "must be a non-empty list")
            return ()
        seen: dict[tuple[str, str, int], str] = {}
        for index, item in enumerate(raw):
            path = f"watch[{index}]"
            entry = self.mapping(item, path)
            self.unknown_keys(entry, {"namespace", "group", "jobs", "receivers", "alert_on"}, path)
            namespace = self.string(entry, "namespace", path)
            group = self.string(entry, "group", path)
            jobs = self.jobs(entry.get("jobs"), f"{path}.jobs")
            names = self.receiver_names(entry.get("receivers"), f"{path}.receivers", receivers)
            alert_on = self.alert_on(entry.get("alert_on"), f"{path}.alert_on")
            if namespace is None or group is None:
                continue
            for job in jobs:
                key = (namespace, group, job.job_id)
                if key in seen:
                    self.fail(f"{path}.jobs", f"job {job.job_id} is already watched by {seen[key]}")
                seen[key] = path
            rules.append(WatchRule(namespace, group, jobs, names, alert_on))
        return tuple(rules)

    def jobs(self, raw: Any, path: str) -> tuple[JobSpec, ...]:
        if not isinstance(raw, list) or not raw:
            self.fail(path, "must be a non-empty list of job ids")
            return ()
        jobs: list[JobSpec] = []
        for index, item in enumerate(raw):
            here = f"{path}[{index}]"
            if isinstance(item, dict):
                self.unknown_keys(item, {"id", "name"}, here)
                job_id, name = item.get("id"), item.get("name")
                if name is not None and not isinstance(name, str):
                    self.fail(f"{here}.name", "must be a string")
                    name = None
            else:
                job_id, name = item, None
            if isinstance(job_id, str) and job_id.isdigit():
                job_id = int(job_id)
            if isinstance(job_id, bool) or not isinstance(job_id, int) or job_id <= 0:
                self.fail(here, f"job id must be a positive integer, not {job_id!r}")
                continue
            jobs.append(JobSpec(job_id, name))
        return tuple(jobs)

    def receiver_names(
        self, raw: Any, path: str, receivers: Mapping[str, ReceiverConfig]
    ) -> tuple[str, ...]:
        if not isinstance(raw, list) or not raw:
            self.fail(path, "must name at least one receiver")
            return ()
        names: list[str] = []
        for item in raw:
            if not isinstance(item, str):
                self.fail(path, f"receiver names are strings, not {item!r}")
            elif item not in receivers:
                self.fail(path, f"unknown receiver {item!r}")
            else:
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
        for item in raw:
            if isinstance(item, int) and not isinstance(item, bool):
                status = InstanceStatus.parse(item)
            else:
                status = known.get(str(item).lower())
            if status is None:
                choices = ", ".join(sorted(known))
                self.fail(path, f"unknown status {item!r} (one of: {choices})")
            else:
                statuses.add(status)
        return frozenset(statuses) or DEFAULT_ALERT_ON

    def templates(self, raw: Mapping[str, Any], base_dir: Path) -> TemplateConfig:
        path = "templates"
        self.unknown_keys(raw, {"language", "alert", "summary"}, path)
        language = self.string(raw, "language", path, "zh-CN") or "zh-CN"
        if language not in LANGUAGES:
            self.fail(
                f"{path}.language", f"must be one of {', '.join(LANGUAGES)}, not {language!r}"
            )
            language = "zh-CN"
        files: dict[str, str | None] = {}
        for key in ("alert", "summary"):
            value = self.optional_string(raw, key, path)
            if value is not None:
                file = (base_dir / value).resolve()
                if not file.is_file():
                    self.fail(f"{path}.{key}", f"no such template file {str(file)!r}")
                value = str(file)
            files[key] = value
        return TemplateConfig(language, files["alert"], files["summary"])

    def health(
        self, raw: Mapping[str, Any], receivers: Mapping[str, ReceiverConfig]
    ) -> HealthConfig:
        path = "health"
        self.unknown_keys(raw, {"receiver", "impaired_after"}, path)
        receiver = self.optional_string(raw, "receiver", path)
        if receiver is not None and receiver not in receivers:
            self.fail(f"{path}.receiver", f"unknown receiver {receiver!r}")
            receiver = None
        if receiver is None and "ops" in receivers and "receiver" not in raw:
            receiver = "ops"
        after = int(self.number(raw, "impaired_after", path, 3, 1, 1000))
        return HealthConfig(receiver=receiver, impaired_after=after)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def redact_url(url: str) -> str:
    """A webhook URL fit for logs: scheme, host and path, never the query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{parts.path}?access_token=***"
