"""The config's `actions:` section: buttons that silence a job from the chat.

```yaml
actions:
  enabled: true                       # default false: no buttons, no HTTP trigger needed
  base_url: https://alert.example.com/silence   # the HTTP trigger's custom domain
  durations: [1h, "until 09:00"]      # one button each (at most 3)
  link_ttl_hours: 24                  # a link older than this is refused
  operations: [retry, mark_success, stop]   # default none: buttons that act on a run
```

`operations` (opt-in, off by default) adds buttons that act on SchedulerX itself: a
failed run's alert offers retry (RetryJobInstance) and mark_success
(SetJobInstanceSuccess), a stuck run's alert offers stop (StopInstance). They need the
write permissions of the deployment's separate operations policy (deploy files).

The keys come from the environment, never from the file: comma-separated, each at
least 32 characters; the first signs new links and every one is accepted, so a key is
rotated by putting the new one first and dropping the old one a `link_ttl_hours` later.
Every problem is reported with its path, and no key's value ever appears in one.

A broken section costs the buttons, not the alerts: the config still loads, the
settings carry the problems (`ActionSettings.problems`), every tick reports them and
sends its alerts without buttons, `validate` and `config push` refuse the file, and the
link endpoint refuses every click.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schedulerx_alert.config import show
from schedulerx_alert.support.urls import HttpUrl, UrlError, parse_http_url

if TYPE_CHECKING:
    from schedulerx_alert.config import Config
    from schedulerx_alert.config.source import ConfigSource

DEFAULT_KEY_ENV = "SCHEDULERX_ALERT_ACTION_KEYS"
MIN_KEY_CHARS = 32
MAX_KEYS = 10
MAX_BUTTONS = 3
MIN_SECONDS = 5 * 60
# Longer silences belong in the config file or `silence add`, where someone says why.
MAX_SECONDS = 7 * 24 * 3600
_KNOWN = {"enabled", "base_url", "durations", "key_env", "link_ttl_hours", "operations"}
# What a button may do to a run, in the order the buttons appear.
OPERATIONS = ("retry", "mark_success", "stop")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Digits bounded: a button lasts at most 7d, and int() refuses over 4300 digits.
_DURATION = re.compile(r"(?:(\d{1,6})d)?(?:(\d{1,6})h)?(?:(\d{1,6})m)?")
_UNTIL = re.compile(r"until ([01]?\d|2[0-3]):([0-5]\d)")
# FC answers on its default domain with `Content-Disposition: attachment`, so a
# browser saves the page instead of showing it: the confirmation never appears.
DEFAULT_FC_DOMAIN = ".fcapp.run"


@dataclass(frozen=True)
class Span:
    """How long a button silences: `seconds` from the click, or until the next
    `until` (hour, minute) of the config's timezone after the alert was sent."""

    seconds: int | None = None
    until: tuple[int, int] | None = None

    def describe(self) -> str:
        if self.until is not None:
            return f"until {self.until[0]:02d}:{self.until[1]:02d}"
        seconds = self.seconds or 0
        days, rest = divmod(seconds, 86400)
        hours, minutes = divmod(rest // 60, 60)
        return "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n)


DEFAULT_SPANS = (Span(seconds=3600), Span(until=(9, 0)))


@dataclass(frozen=True)
class ActionSettings:
    enabled: bool = False
    base_url: HttpUrl | None = None
    spans: tuple[Span, ...] = DEFAULT_SPANS
    key_env: str = DEFAULT_KEY_ENV
    link_ttl: float = 24 * 3600.0
    # Newest first: the first signs. Never printed.
    keys: tuple[str, ...] = field(default=(), repr=False)
    # What is wrong with the section (each with its path); any one turns the buttons off.
    problems: tuple[str, ...] = ()
    # The operations on runs the buttons offer (OPERATIONS); none unless listed.
    operations: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        """Whether messages carry buttons: enabled, and nothing wrong with the section."""
        return self.enabled and not self.problems and bool(self.keys) and self.base_url is not None


def parse_actions(
    raw: Any, env: Mapping[str, str], allow_loopback_http: bool = False
) -> tuple[ActionSettings, list[str]]:
    """The `actions` value of a config (None when absent) and every problem in it (which
    the settings carry too)."""
    problems: list[str] = []
    if raw is None:
        return ActionSettings(), problems
    if not isinstance(raw, dict):
        problem = f"actions: must be a mapping, not {show(raw)}"
        return ActionSettings(problems=(problem,)), [problem]
    for key in raw:
        if key not in _KNOWN:
            problems.append(
                f"actions.{str(key)[:60]}: unknown key (one of: {', '.join(sorted(_KNOWN))})"
            )
    enabled = raw.get("enabled", False)
    if not isinstance(enabled, bool):
        problems.append(f"actions.enabled: must be true or false, not {show(enabled)}")
        enabled = False
    base_url = _base_url(raw.get("base_url"), env, allow_loopback_http, enabled, problems)
    spans = _spans(raw.get("durations"), problems)
    key_env = raw.get("key_env", DEFAULT_KEY_ENV)
    if not isinstance(key_env, str) or not _ENV_NAME.fullmatch(key_env):
        problems.append(
            f"actions.key_env: must be an environment variable's name, not {show(key_env)}"
        )
        key_env = DEFAULT_KEY_ENV
    elif key_env.upper().startswith("FC_"):
        problems.append("actions.key_env: FC reserves names that start with FC_")
    elif key_env != DEFAULT_KEY_ENV:
        # The link function checks a link before it reads any config, so that a forged one
        # costs no I/O: it can only know the keys' variable from its own environment.
        problems.append(
            f"actions.key_env: the link function checks each link against "
            f"{DEFAULT_KEY_ENV} before it reads the config; put the keys there and "
            "leave key_env out"
        )
    ttl_hours = raw.get("link_ttl_hours", 24)
    if (
        isinstance(ttl_hours, bool)
        or not isinstance(ttl_hours, int | float)
        or not 1 <= ttl_hours <= 168
    ):
        problems.append(
            f"actions.link_ttl_hours: must be a number from 1 to 168, not {show(ttl_hours)}"
        )
        ttl_hours = 24
    operations = _operations(raw.get("operations"), problems)
    if operations and not enabled:
        # Listed and quietly off would look like a setting that works.
        problems.append("actions.operations: needs actions.enabled: true (the buttons carry them)")
    keys = _keys(env, key_env, problems) if enabled else ()
    settings = ActionSettings(
        enabled=enabled,
        base_url=base_url,
        spans=spans,
        key_env=key_env,
        link_ttl=float(ttl_hours) * 3600,
        keys=keys,
        problems=tuple(problems),
        operations=operations,
    )
    return settings, problems


def load_actions(
    path: str | Path | ConfigSource, env: Mapping[str, str]
) -> tuple[Config, ActionSettings]:
    """A config file's, or a config's text read from OSS (config/text.py), Config and its
    `actions`; raises ConfigError with every problem, the `actions` section's included."""
    from schedulerx_alert.config import ConfigError, load_config

    config = load_config(path, env) if isinstance(path, str | Path) else path.parse(env)
    settings = config.actions or ActionSettings()
    if settings.problems:
        # The tick runs without buttons; a click cannot be checked with what is left.
        raise ConfigError(list(settings.problems), "actions")
    return config, settings


def _base_url(
    value: Any,
    env: Mapping[str, str],
    allow_loopback_http: bool,
    enabled: bool,
    problems: list[str],
) -> HttpUrl | None:
    path = "actions.base_url"
    if value is None:
        if enabled:
            problems.append(
                f"{path}: is required when actions are enabled "
                "(the custom domain of the function's HTTP trigger)"
            )
        return None
    if not isinstance(value, str):
        problems.append(f"{path}: must be a string, not {show(value)}")
        return None
    if _VAR.search(value):
        # The link is posted in every message with buttons: text that is sent is written
        # in the file, never read from the environment (config/__init__.py).
        problems.append(f"{path}: ${{VAR}} is not read here: the link is sent in messages")
        return None
    try:
        url = parse_http_url(value, allow_loopback_http=allow_loopback_http)
    except UrlError as exc:
        problems.append(f"{path}: {exc}")
        return None
    if url.query:
        problems.append(f"{path}: must have no query (the link adds its own)")
        return None
    if url.host.endswith(DEFAULT_FC_DOMAIN):
        problems.append(
            f"{path}: on FC's default domain (*{DEFAULT_FC_DOMAIN}) browsers download the "
            "confirmation page instead of showing it; bind a custom domain to the HTTP "
            "trigger and name it here"
        )
        return None
    return url


def _spans(raw: Any, problems: list[str]) -> tuple[Span, ...]:
    path = "actions.durations"
    if raw is None:
        return DEFAULT_SPANS
    if not isinstance(raw, list) or not raw:
        problems.append(f'{path}: must be a non-empty list such as [1h, "until 09:00"]')
        return DEFAULT_SPANS
    if len(raw) > MAX_BUTTONS:
        problems.append(
            f"{path}: at most {MAX_BUTTONS} buttons fit under a message, not {len(raw)}"
        )
        return DEFAULT_SPANS
    spans: list[Span] = []
    for index, item in enumerate(raw):
        span = _span(item)
        if span is None:
            problems.append(
                f"{path}[{index}]: {show(item)} is not a duration such as 30m, 1h, 2h30m, 1d "
                f"(from {MIN_SECONDS // 60}m to {MAX_SECONDS // 86400}d) or a time such as "
                '"until 09:00"'
            )
        elif span in spans:
            problems.append(f"{path}[{index}]: {span.describe()} is listed twice")
        else:
            spans.append(span)
    return tuple(spans) if len(spans) == len(raw) else DEFAULT_SPANS


def _operations(raw: Any, problems: list[str]) -> tuple[str, ...]:
    path = "actions.operations"
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(f"{path}: must be a list such as [retry, mark_success, stop]")
        return ()
    chosen: list[str] = []
    for index, item in enumerate(raw):
        if item not in OPERATIONS:
            problems.append(f"{path}[{index}]: {show(item)} is not one of: {', '.join(OPERATIONS)}")
        elif item in chosen:
            problems.append(f"{path}[{index}]: {item} is listed twice")
        else:
            chosen.append(item)
    if len(chosen) != len(raw):
        return ()
    return tuple(op for op in OPERATIONS if op in chosen)


def _span(item: Any) -> Span | None:
    if not isinstance(item, str):
        return None
    text = " ".join(item.strip().lower().split())
    until = _UNTIL.fullmatch(text)
    if until:
        return Span(until=(int(until.group(1)), int(until.group(2))))
    match = _DURATION.fullmatch(text)
    if not match or not any(match.groups()):
        return None
    days, hours, minutes = (int(g or 0) for g in match.groups())
    seconds = days * 86400 + hours * 3600 + minutes * 60
    return Span(seconds=seconds) if MIN_SECONDS <= seconds <= MAX_SECONDS else None


def _keys(env: Mapping[str, str], name: str, problems: list[str]) -> tuple[str, ...]:
    path = "actions.key_env"
    value = env.get(name)
    if not value or not value.strip():
        problems.append(
            f"{path}: environment variable {name} is not set (comma-separated signing keys, "
            f"each at least {MIN_KEY_CHARS} characters; the first signs)"
        )
        return ()
    keys = tuple(k.strip() for k in value.split(",") if k.strip())
    short = [str(i + 1) for i, k in enumerate(keys) if len(k) < MIN_KEY_CHARS]
    if short:
        problems.append(
            f"{path}: key {', '.join(short)} of {len(keys)} in {name} is shorter than "
            f"{MIN_KEY_CHARS} characters"
        )
        return ()
    if len(keys) > MAX_KEYS:
        problems.append(f"{path}: {name} holds {len(keys)} keys; at most {MAX_KEYS}")
        return ()
    return keys
