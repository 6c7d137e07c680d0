"""One walker from the file's plain values to the config's typed records.

A record's options are its dataclass fields declared with `option()`: the default is
the field's own (stated once), `read` turns the file's value into the field's, and
`doc` (with an `example` where the default says too little) is what
scripts/make_config_reference.py writes into docs/config-reference.md. The walker
refuses unknown keys, reads each option and collects every problem with its path
(`schedulerx.query: must be one of ...`), keeping the default where a value is bad so
that the rest is still checked.

A reader gets the walker (for substitution, the config's folder, the receivers
declared) and the value as written; it returns the field's value or raises `Invalid`
with the message, or `Missing` for a value that counts as absent (a YAML null).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Mapping
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from schedulerx_alert.core.shown import show as show

_PLAIN_KEY = r"[A-Za-z_][A-Za-z0-9_-]{0,39}"
VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# The only fields `${VAR}` is read in: a refusal anywhere else names them.
ENV_FIELDS = "receivers[*].webhook, receivers[*].secret, schedulerx.endpoint, state.endpoint"
# Never substituted, in any field: the function's credentials (FC 3.0 and the python3.12
# runtime's names; FC 2.0's) and the link signing keys (actions.key_env, whose default
# this is: config/actions.py's DEFAULT_KEY_ENV).
_CREDENTIAL_PREFIX = "ALIBABA_CLOUD_"
_FC2_CREDENTIALS = frozenset({"accesskeyid", "accesskeysecret", "securitytoken"})
ACTION_KEYS_ENV = "SCHEDULERX_ALERT_ACTION_KEYS"

T = TypeVar("T")
Reader = Callable[["Walker", Any, str], Any]


class Invalid(Exception):
    """A value an option cannot take; the message follows its path."""


class Missing(Exception):
    """A value that counts as absent: the option's default, or "is required"."""


def listed(value: Any, what: str, empty: bool = False) -> list[Any]:
    """A list option's items: Missing for none, Invalid(`what`) for anything but a list,
    or for an empty one unless `empty`."""
    if value is None:
        raise Missing
    if not isinstance(value, list) or not (value or empty):
        raise Invalid(what)
    return value


def small(value: object) -> bool:
    """Not an integer too large for anything here to print or store."""
    return not isinstance(value, int) or value.bit_length() <= 64


def join(path: str, key: object) -> str:
    """`path` and a key from the file: plain when it is a plain word."""
    segment = key if isinstance(key, str) and re.fullmatch(_PLAIN_KEY, key) else f"[{show(key)}]"
    if not path:
        return str(segment)
    return f"{path}{segment}" if segment.startswith("[") else f"{path}.{segment}"


def option(
    default: Any = dataclasses.MISSING,
    *,
    read: Reader,
    doc: str,
    example: str | None = None,
    key: str | None = None,
    repr: bool = True,
    shown: Callable[[Any], str] | None = None,
) -> Any:
    """A field the file sets: its default, its reader and its line in the reference;
    `key`: its name in the file, when not the field's; `shown`: how the reference writes
    its default, when not as describe() does."""
    metadata = {"read": read, "doc": doc, "example": example, "key": key, "shown": shown}
    return dataclasses.field(default=default, metadata=metadata, repr=repr)


def key_of(spec: dataclasses.Field[Any]) -> str:
    """An option's name in the file."""
    return str(spec.metadata["key"] or spec.name)


def options(cls: type) -> list[dataclasses.Field[Any]]:
    """The fields of a record that the file sets, in the order they are read."""
    return [f for f in dataclasses.fields(cls) if "read" in f.metadata]


class Walker:
    """Reads sections into records, collecting every problem instead of the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []
        self.allow_loopback_http = False
        self.base_dir = Path(".")
        self.declared: Collection[str] = ()
        self.allowed_hosts: tuple[str, ...] = ()
        self.usable_receivers: Mapping[str, Any] = {}  # by name
        # The config's, for the sections read after the top level (config/sections.py).
        self.timezone = "UTC"
        self.route_names: Collection[str] = ()
        # Variables never substituted besides the credentials: the action keys' own.
        self.barred = {ACTION_KEYS_ENV}

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def record(self, cls: type[T], raw: Any, path: str) -> T | None:
        """`raw` (a mapping; None for an absent section) read into `cls`, or None when a
        required option has no usable value. A bad option keeps its default."""
        values, complete = self.values(cls, raw, path)
        return cls(**values) if complete else None

    def values(self, cls: type, raw: Any, path: str) -> tuple[dict[str, Any], bool]:
        """The options of `cls` that `raw` gives usable values, by field name, and whether
        every required one has one."""
        if raw is None:
            raw = {}
        elif not isinstance(raw, dict):
            self.fail(path, f"must be a mapping, not {show(raw)}")
            raw = {}
        fields = options(cls)
        known = {key_of(f) for f in fields} | set(getattr(cls, "OTHER_KEYS", ()))
        for key in raw:
            if key not in known:
                self.fail(join(path, key), "unknown key")
        values: dict[str, Any] = {}
        complete = True
        for spec in fields:
            key = key_of(spec)
            here = join(path, key)
            required = spec.default is dataclasses.MISSING
            try:
                if key not in raw and not required:
                    continue
                values[spec.name] = spec.metadata["read"](self, raw.get(key), here)
            except Missing:
                if required:
                    self.fail(here, "is required")
                    complete = False
            except Invalid as exc:
                self.fail(here, str(exc))
                complete = complete and not required
        return values, complete

    def one(self, cls: type, name: str, raw: Mapping[str, Any], path: str = "") -> Any:
        """The option `name` of `cls` read from `raw`, where a section's options are read
        in an order of their own; its default when absent or bad (None: required)."""
        spec = next(f for f in options(cls) if f.name == name)
        key = key_of(spec)
        default = None if spec.default is dataclasses.MISSING else spec.default
        here = join(path, key)
        try:
            if key in raw or default is None:
                return spec.metadata["read"](self, raw.get(key), here)
        except Missing:
            if default is None:
                self.fail(here, "is required")
        except Invalid as exc:
            self.fail(here, str(exc))
        return default

    # -- substitution --------------------------------------------------------

    def substituted(self, value: str, from_env: bool = False) -> str:
        """`value` with its `${VAR}`s replaced where `from_env` (a secret or an endpoint)
        allows them; Invalid saying why not."""
        names = VAR.findall(value)
        if not names:
            return value
        if not from_env:
            raise Invalid(
                f"${{VAR}} is read from the environment only in {ENV_FIELDS}; "
                "write this value in the file"
            )
        barred = sorted({name for name in names if self.is_barred(name)})
        if barred:
            raise Invalid(
                f"{', '.join(barred)} is never read into the config: it holds the function's "
                "credentials or its action signing keys"
            )
        missing = [name for name in names if name not in self.env]
        if missing:
            raise Invalid(f"environment variable {', '.join(sorted(set(missing)))} is not set")
        return VAR.sub(lambda m: self.env[m.group(1)], value)

    def is_barred(self, name: str) -> bool:
        return (
            name.upper().startswith(_CREDENTIAL_PREFIX)
            or name.lower() in _FC2_CREDENTIALS
            or name in self.barred
        )


# -- readers -----------------------------------------------------------------


def text(walker: Walker, value: Any, path: str, from_env: bool = False) -> str:
    """A string (a number is read as its digits); null counts as absent."""
    if value is None:
        raise Missing
    if isinstance(value, bool) or not isinstance(value, str | int) or not small(value):
        raise Invalid(f"must be a string, not {show(value)}")
    return walker.substituted(str(value), from_env)


def optional_text(walker: Walker, value: Any, path: str, from_env: bool = False) -> str | None:
    """A string, or None for null or an empty one."""
    if value in (None, ""):
        return None
    return text(walker, value, path, from_env) or None


def one_of(*choices: str) -> Reader:
    def read(walker: Walker, value: Any, path: str) -> str:
        word = text(walker, value, path)
        if not word:  # an empty one is the default, as it always was
            raise Missing
        if word not in choices:
            raise Invalid(f"must be one of {', '.join(choices)}, not {show(value)}")
        return word

    return read


def number(low: float, high: float, whole: bool = False) -> Reader:
    """A number from `low` to `high` (also written as a string); `whole`: an int kept."""

    def read(walker: Walker, raw: Any, path: str) -> float:
        value = raw
        if isinstance(value, str):
            try:
                value = float(walker.substituted(value))
            except ValueError:
                raise Invalid(f"must be a number, not {show(raw)}") from None
        if isinstance(value, bool) or not isinstance(value, int | float) or not small(value):
            raise Invalid(f"must be a number, not {show(raw)}")
        if not low <= value <= high:
            # A value from the environment is not repeated, only where it came from.
            shown = show(raw) if isinstance(raw, str) else f"{value:g}"
            raise Invalid(f"must be between {low:g} and {high:g}, not {shown}")
        return int(value) if whole else value

    return read


def count(low: int, high: int) -> Reader:
    """A whole number from `low` to `high`, written as one."""

    def read(walker: Walker, value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not small(value):
            raise Invalid(f"must be a whole number, not {show(value)}")
        if not low <= value <= high:
            raise Invalid(f"must be between {low} and {high}, not {value}")
        return value

    return read


def boolean(walker: Walker, value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"must be true or false, not {show(value)}")
    return value


def declared_receiver(walker: Walker, value: Any, path: str) -> str | None:
    """The name of a receiver the config declares (usable or not)."""
    name = optional_text(walker, value, path)
    if name is not None and name not in walker.declared:
        raise Invalid(f"unknown receiver {show(value)}")
    return name


def describe(value: Any) -> str:
    """A default as the reference writes it in YAML."""
    from datetime import timedelta

    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, timedelta):
        return span(value)
    if isinstance(value, frozenset):  # of enum members: by their order
        value = tuple(sorted(value, key=lambda member: member.value))
    if isinstance(value, tuple | list):
        return "[" + ", ".join(describe(v) for v in value) + "]"
    if isinstance(value, Enum):
        return str(getattr(value, "label", value.name.lower()))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def span(seconds: Any) -> str:
    """A duration (timedelta or seconds) in its largest whole unit: 90s, 10m, 1h."""
    total = seconds if isinstance(seconds, int | float) else seconds.total_seconds()
    for unit, size in (("h", 3600), ("m", 60)):
        if total >= size and total % size == 0:
            return f"{total / size:g}{unit}"
    return f"{total:g}s"
