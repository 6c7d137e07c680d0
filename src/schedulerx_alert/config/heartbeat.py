"""The config's `heartbeat:` section: a daily digest that is also the monitor's proof of life.

```yaml
heartbeat:
  receiver: ops      # a receiver from `receivers`
  at: "09:00"        # local time, in the config's `timezone`
  top_jobs: 5        # failing jobs the digest names (default 5)
```

The language is `templates.language`, like every other message. config.py calls
`parse_heartbeat` with its own problem list, so every problem is reported at once,
each with its path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

DEFAULT_TOP_JOBS = 5
MAX_TOP_JOBS = 20
_KEYS = ("receiver", "at", "top_jobs")
_TIME = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")


@dataclass(frozen=True)
class HeartbeatConfig:
    receiver: str
    # Minutes after local midnight.
    at: int
    top_jobs: int = DEFAULT_TOP_JOBS

    @property
    def at_text(self) -> str:
        return f"{self.at // 60:02d}:{self.at % 60:02d}"


def parse_heartbeat(
    raw: Any, declared: Collection[str], fail: Callable[[str, str], None]
) -> HeartbeatConfig | None:
    """The section, or None when absent or unusable; `fail(path, message)` takes each
    problem. `declared` are the receiver names the config declares."""
    if raw is None:
        return None
    path = "heartbeat"
    if not isinstance(raw, dict):
        fail(path, f"must be a mapping such as {{receiver: ops, at: '09:00'}}, not {_show(raw)}")
        return None
    for key in raw:
        if key not in _KEYS:
            fail(f"{path}.{str(key)[:60]}", "unknown key")
    receiver = raw.get("receiver")
    ok = True
    if receiver is None:
        fail(f"{path}.receiver", "is required")
        ok = False
    elif not isinstance(receiver, str):
        fail(f"{path}.receiver", f"must be a receiver name, not {_show(receiver)}")
        ok = False
    elif receiver not in declared:
        fail(f"{path}.receiver", f"unknown receiver {_show(receiver)}")
        ok = False
    at = parse_clock(raw.get("at"))
    if at is None:
        value = raw.get("at")
        # YAML 1.1 reads an unquoted 18:30 as the number 1110 (base 60): say so.
        hint = " (quote it: YAML reads an unquoted 18:30 as a number)" if _is_int(value) else ""
        fail(f"{path}.at", f'must be a time of day such as "09:00", not {_show(value)}{hint}')
        ok = False
    top = raw.get("top_jobs", DEFAULT_TOP_JOBS)
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_TOP_JOBS:
        fail(
            f"{path}.top_jobs", f"must be a whole number from 1 to {MAX_TOP_JOBS}, not {_show(top)}"
        )
        ok = False
    if not ok or at is None or not isinstance(receiver, str):
        return None
    return HeartbeatConfig(receiver=receiver, at=at, top_jobs=int(top))


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


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value[:60]) + ("…" if len(value) > 60 else "")
    if isinstance(value, (bool, float)) or value is None:
        return repr(value)
    if isinstance(value, int):
        return str(value) if value.bit_length() <= 64 else "a very large integer"
    return f"a {type(value).__name__}"
