"""The per-watch-entry options of the alert rules, with their defaults stated once."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from schedulerx_alert.core.model import InstanceStatus, TriggerType

DEFAULT_ALERT_ON = frozenset({InstanceStatus.FAILED, InstanceStatus.REJECTED})
# scheduled, data_rerun, api, manual_rerun, system_retry: the names silences match on too.
TRIGGER_NAMES = {t.name.lower(): t for t in TriggerType}
# Flap detection keeps this many state changes per job at most.
MAX_FLAP_CHANGES = 16

_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
# Only configs that set a duration read it: compiled by re's cache on first use.
_DURATION = r"(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?"


class SettingError(ValueError):
    """An option value the rules cannot use; the message says which and why."""


def parse_duration(text: str) -> float:
    """Seconds in `30s`, `10m`, `2h`, `1d` or a combination such as `1h30m`."""
    if not isinstance(text, str):
        raise SettingError(f"{text!r} is not a duration; write it as text such as 30s, 10m or 2h")
    compact = text.strip().lower()
    match = re.fullmatch(_DURATION, compact)
    if not compact or match is None or not any(match.groups()):
        raise SettingError(
            f"{text!r} is not a duration; write a number with a unit (d, h, m, s) "
            "largest first, e.g. 30s, 10m, 2h or 1h30m"
        )
    return sum(
        float(value) * seconds
        for value, seconds in zip(match.groups(), _UNITS.values(), strict=True)
        if value is not None
    )


def parse_trigger_types(names: Iterable[str]) -> frozenset[TriggerType]:
    """The trigger types named in `trigger_types`; every unknown name is reported."""
    wanted = [str(name).strip().lower() for name in names]
    unknown = [name for name in wanted if name not in TRIGGER_NAMES]
    if unknown:
        raise SettingError(
            f"unknown trigger type(s) {', '.join(map(repr, unknown))} "
            f"(one of: {', '.join(TRIGGER_NAMES)})"
        )
    if not wanted:
        raise SettingError("trigger_types is empty; leave it out to watch every trigger type")
    return frozenset(TRIGGER_NAMES[name] for name in wanted)


@dataclass(frozen=True)
class RuleSettings:
    """One watch entry's rule options; durations are seconds."""

    alert_on: frozenset[InstanceStatus] = DEFAULT_ALERT_ON
    recovery: bool = True
    consecutive_failures: int = 1
    # "job_timeout": the job's own JobMonitorInfo Timeout when TimeoutEnable is on.
    stuck_after: float | Literal["job_timeout", "off"] = "job_timeout"
    missed_grace: float | None = None
    trigger_types: frozenset[TriggerType] = frozenset(TriggerType)
    # None turns flap detection off.
    flap_window: float | None = 3600.0
    flap_changes: int = 4

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.consecutive_failures < 1:
            problems.append(
                f"consecutive_failures must be 1 or more, not {self.consecutive_failures}"
            )
        if isinstance(self.stuck_after, str):
            if self.stuck_after not in ("job_timeout", "off"):
                problems.append(
                    f"stuck_after must be a duration, job_timeout or off, not {self.stuck_after!r}"
                )
        elif not self.stuck_after > 0:
            problems.append(f"stuck_after must be longer than 0s, not {self.stuck_after}")
        for name in ("missed_grace", "flap_window"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                problems.append(f"{name} must be longer than 0s, not {value}")
        if not 2 <= self.flap_changes <= MAX_FLAP_CHANGES:
            problems.append(
                f"flap_changes must be 2 to {MAX_FLAP_CHANGES}, not {self.flap_changes}"
            )
        if not self.alert_on:
            problems.append("alert_on is empty")
        if not self.trigger_types:
            problems.append("trigger_types is empty")
        if problems:
            raise SettingError("; ".join(problems))

    def stuck_threshold(self, job_timeout: float | None) -> float | None:
        """Seconds after which a run that has not ended is stuck, or None when off."""
        if self.stuck_after == "off":
            return None
        if self.stuck_after == "job_timeout":
            return job_timeout if job_timeout and job_timeout > 0 else None
        return self.stuck_after


DEFAULT_SETTINGS = RuleSettings()
