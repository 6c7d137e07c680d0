"""The config's `actions:` section: buttons that silence a job from the chat. Its
options are ActionSettings's fields (docs/config-reference.md), read by the walker.

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

from schedulerx_alert.config.schema import (
    ACTION_KEYS_ENV,
    VAR,
    Invalid,
    Missing,
    Walker,
    boolean,
    join,
    key_of,
    listed,
    option,
    options,
    show,
)
from schedulerx_alert.support.urls import HttpUrl, UrlError, parse_http_url

if TYPE_CHECKING:
    from schedulerx_alert.config import Config
    from schedulerx_alert.config.source import ConfigSource

DEFAULT_KEY_ENV = ACTION_KEYS_ENV
MIN_KEY_CHARS = 32
MAX_KEYS = 10
MAX_BUTTONS = 3
MIN_SECONDS = 5 * 60
# Longer silences belong in the config file or `silence add`, where someone says why.
MAX_SECONDS = 7 * 24 * 3600
MAX_TTL_HOURS = 168
# What a button may do to a run, in the order the buttons appear.
OPERATIONS = ("retry", "mark_success", "stop")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
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


# -- readers -------------------------------------------------------------------


def base_url(walker: Walker, value: Any, path: str) -> HttpUrl:
    if value is None:
        raise Missing  # required only when enabled: read_actions says so
    if not isinstance(value, str):
        raise Invalid(f"must be a string, not {show(value)}")
    if VAR.search(value):
        # The link is posted in every message with buttons: text that is sent is written
        # in the file, never read from the environment (config/__init__.py).
        raise Invalid("${VAR} is not read here: the link is sent in messages")
    try:
        url = parse_http_url(value, allow_loopback_http=walker.allow_loopback_http)
    except UrlError as exc:
        raise Invalid(str(exc)) from None
    if url.query:
        raise Invalid("must have no query (the link adds its own)")
    if url.host.endswith(DEFAULT_FC_DOMAIN):
        raise Invalid(
            f"on FC's default domain (*{DEFAULT_FC_DOMAIN}) browsers download the "
            "confirmation page instead of showing it; bind a custom domain to the HTTP "
            "trigger and name it here"
        )
    return url


def spans(walker: Walker, value: Any, path: str) -> tuple[Span, ...]:
    """Every button's span; a bad one keeps the default buttons (and says why)."""
    value = listed(value, 'must be a non-empty list such as [1h, "until 09:00"]')
    if len(value) > MAX_BUTTONS:
        raise Invalid(f"at most {MAX_BUTTONS} buttons fit under a message, not {len(value)}")
    found: list[Span] = []
    for index, item in enumerate(value):
        span = _span(item)
        if span is None:
            walker.fail(
                f"{path}[{index}]",
                f"{show(item)} is not a duration such as 30m, 1h, 2h30m, 1d "
                f"(from {MIN_SECONDS // 60}m to {MAX_SECONDS // 86400}d) or a time such as "
                '"until 09:00"',
            )
        elif span in found:
            walker.fail(f"{path}[{index}]", f"{span.describe()} is listed twice")
        else:
            found.append(span)
    if len(found) != len(value):
        raise Missing
    return tuple(found)


def key_env(walker: Walker, value: Any, path: str) -> str:
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        raise Invalid(f"must be an environment variable's name, not {show(value)}")
    # Kept though refused, so that the keys are looked for where the file says.
    if value.upper().startswith("FC_"):
        walker.fail(path, "FC reserves names that start with FC_")
    elif value != DEFAULT_KEY_ENV:
        # The link function checks a link before it reads any config, so that a forged one
        # costs no I/O: it can only know the keys' variable from its own environment.
        walker.fail(
            path,
            f"the link function checks each link against {DEFAULT_KEY_ENV} before it reads "
            "the config; put the keys there and leave key_env out",
        )
    return value


def link_ttl(walker: Walker, value: Any, path: str) -> float:
    """Hours in the file, seconds in the settings."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 1 <= value <= MAX_TTL_HOURS
    ):
        raise Invalid(f"must be a number from 1 to {MAX_TTL_HOURS}, not {show(value)}")
    return float(value) * 3600


def operations(walker: Walker, value: Any, path: str) -> tuple[str, ...]:
    """The operations listed, in OPERATIONS' order; any bad one: none."""
    value = listed(value, "must be a list such as [retry, mark_success, stop]", empty=True)
    chosen: list[str] = []
    for index, item in enumerate(value):
        if item not in OPERATIONS:
            walker.fail(f"{path}[{index}]", f"{show(item)} is not one of: {', '.join(OPERATIONS)}")
        elif item in chosen:
            walker.fail(f"{path}[{index}]", f"{item} is listed twice")
        else:
            chosen.append(item)
    if len(chosen) != len(value):
        raise Missing
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


def _spans_shown(value: tuple[Span, ...]) -> str:
    return "[" + ", ".join(f'"{s.describe()}"' if s.until else s.describe() for s in value) + "]"


@dataclass(frozen=True)
class ActionSettings:
    """The `actions:` section; its options are read in the order of the fields."""

    enabled: bool = option(
        False, read=boolean, doc="buttons under alerts; false: none, no HTTP trigger needed"
    )
    base_url: HttpUrl | None = option(  # noqa: RUF009 (a field, as field() is)
        None,
        read=base_url,
        doc="the HTTP trigger's custom domain (required when enabled; not *.fcapp.run)",
        example="https://alert.example.com/silence",
    )
    spans: tuple[Span, ...] = option(
        DEFAULT_SPANS,
        read=spans,
        key="durations",
        shown=_spans_shown,
        doc=f"one silence button each, at most {MAX_BUTTONS}: 30m to 7d, or until HH:MM",
    )
    key_env: str = option(
        DEFAULT_KEY_ENV,
        read=key_env,
        doc="where the signing keys are (comma-separated, the first signs); leave it out",
    )
    link_ttl: float = option(
        24 * 3600.0,
        read=link_ttl,
        key="link_ttl_hours",
        shown=lambda seconds: f"{seconds / 3600:g}",
        doc=f"a link older than this is refused (1 to {MAX_TTL_HOURS})",
    )
    # Newest first: the first signs. Never printed.
    keys: tuple[str, ...] = field(default=(), repr=False)
    # What is wrong with the section (each with its path); any one turns the buttons off.
    problems: tuple[str, ...] = ()
    # The operations on runs the buttons offer (OPERATIONS); none unless listed.
    operations: tuple[str, ...] = option(
        (),
        read=operations,
        doc="buttons that act on a run: retry, mark_success, stop (needs the deploy's "
        "operations policy)",
    )

    @property
    def usable(self) -> bool:
        """Whether messages carry buttons: enabled, and nothing wrong with the section."""
        return self.enabled and not self.problems and bool(self.keys) and self.base_url is not None


def parse_actions(
    raw: Any, env: Mapping[str, str], allow_loopback_http: bool = False
) -> tuple[ActionSettings, list[str]]:
    """The `actions` value of a config (None when absent) and every problem in it (which
    the settings carry too)."""
    # A walker of its own: the section's problems stay in the settings, not the config's.
    walker = Walker(env)
    walker.allow_loopback_http = allow_loopback_http
    settings = read_actions(walker, raw)
    return settings, walker.problems


def read_actions(walker: Walker, raw: Any) -> ActionSettings:
    path = "actions"
    if raw is None:
        return ActionSettings()
    if not isinstance(raw, dict):
        walker.fail(path, f"must be a mapping, not {show(raw)}")
        return ActionSettings(problems=tuple(walker.problems))
    known = sorted(key_of(spec) for spec in options(ActionSettings))
    for key in raw:
        if key not in known:
            walker.fail(join(path, key), f"unknown key (one of: {', '.join(known)})")
    values, _ = walker.values(ActionSettings, {k: v for k, v in raw.items() if k in known}, path)
    settings = ActionSettings(**values)
    if settings.enabled and raw.get("base_url") is None:
        walker.fail(
            f"{path}.base_url",
            "is required when actions are enabled (the custom domain of the function's HTTP "
            "trigger)",
        )
    if settings.operations and not settings.enabled:
        # Listed and quietly off would look like a setting that works.
        walker.fail(f"{path}.operations", "needs actions.enabled: true (the buttons carry them)")
    keys = _keys(walker, settings.key_env, f"{path}.key_env") if settings.enabled else ()
    return ActionSettings(**values, keys=keys, problems=tuple(walker.problems))


def load_actions(
    path: str | Path | ConfigSource, env: Mapping[str, str]
) -> tuple[Config, ActionSettings]:
    """A config file's, or a config's text read from OSS (storage/config_text.py), Config and its
    `actions`; raises ConfigError with every problem, the `actions` section's included."""
    from schedulerx_alert.config import ConfigError, load_config

    config = load_config(path, env) if isinstance(path, str | Path) else path.parse(env)
    settings = config.actions or ActionSettings()
    if settings.problems:
        # The tick runs without buttons; a click cannot be checked with what is left.
        raise ConfigError(list(settings.problems), "actions")
    return config, settings


def _keys(walker: Walker, name: str, path: str) -> tuple[str, ...]:
    value = walker.env.get(name)
    if not value or not value.strip():
        walker.fail(
            path,
            f"environment variable {name} is not set (comma-separated signing keys, "
            f"each at least {MIN_KEY_CHARS} characters; the first signs)",
        )
        return ()
    keys = tuple(k.strip() for k in value.split(",") if k.strip())
    short = [str(i + 1) for i, k in enumerate(keys) if len(k) < MIN_KEY_CHARS]
    if short:
        walker.fail(
            path,
            f"key {', '.join(short)} of {len(keys)} in {name} is shorter than "
            f"{MIN_KEY_CHARS} characters",
        )
        return ()
    if len(keys) > MAX_KEYS:
        walker.fail(path, f"{name} holds {len(keys)} keys; at most {MAX_KEYS}")
        return ()
    return keys
