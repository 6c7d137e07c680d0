"""The config's `heartbeat:` section: a daily digest that is also the monitor's proof of life.

Its options are HeartbeatConfig's fields (docs/config-reference.md).
The language is `templates.language`, like every other message. The section is read by
the config's walker (config/schema.py): every problem is reported at once, each with its
path, and a section with any problem gives no heartbeat.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from schedulerx_alert.config.schema import Invalid, Missing, Walker, option, show

DEFAULT_TOP_JOBS = 5
MAX_TOP_JOBS = 20
_TIME = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")


def _receiver(walker: Walker, value: Any, path: str) -> str:
    if value is None:
        raise Missing
    if not isinstance(value, str):
        raise Invalid(f"must be a receiver name, not {show(value)}")
    if value not in walker.declared:
        raise Invalid(f"unknown receiver {show(value)}")
    return value


def _at(walker: Walker, value: Any, path: str) -> int:
    at = parse_clock(value)
    if at is None:
        # YAML 1.1 reads an unquoted 18:30 as the number 1110 (base 60): say so.
        hint = " (quote it: YAML reads an unquoted 18:30 as a number)" if _is_int(value) else ""
        raise Invalid(f'must be a time of day such as "09:00", not {show(value)}{hint}')
    return at


def _top_jobs(walker: Walker, value: Any, path: str) -> int:
    if not _is_int(value) or not 1 <= value <= MAX_TOP_JOBS:
        raise Invalid(f"must be a whole number from 1 to {MAX_TOP_JOBS}, not {show(value)}")
    return int(value)


@dataclass(frozen=True)
class HeartbeatConfig:
    receiver: str = option(read=_receiver, doc="a receiver from `receivers`", example="ops")
    # Minutes after local midnight.
    at: int = option(read=_at, doc="local time, in the config's `timezone`", example='"09:00"')
    top_jobs: int = option(DEFAULT_TOP_JOBS, read=_top_jobs, doc="failing jobs the digest names")

    @property
    def at_text(self) -> str:
        return f"{self.at // 60:02d}:{self.at % 60:02d}"


def read_heartbeat(walker: Walker, raw: Any) -> HeartbeatConfig | None:
    """The section, or None when absent or unusable (its problems told to `walker`)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        example = "{receiver: ops, at: '09:00'}"
        walker.fail("heartbeat", f"must be a mapping such as {example}, not {show(raw)}")
        return None
    before = len(walker.problems)
    settings = walker.record(HeartbeatConfig, raw, "heartbeat")
    return settings if len(walker.problems) == before else None


def parse_clock(value: Any) -> int | None:
    """Minutes after midnight for "HH:MM"; None for anything else, numbers included: an
    unquoted 18:30 reaches us as 1110, and 900 might mean 09:00 or 15:00."""
    if not isinstance(value, str):
        return None
    match = _TIME.fullmatch(value.strip())
    if match is None:
        return None
    return int(match[1]) * 60 + int(match[2])


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
