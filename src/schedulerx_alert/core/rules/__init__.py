"""The alert rules, one module each, and the engine that runs them in order.

What the integration uses: `evaluate` (engine), `JobHistory`, `Seen`, `JobSchedule`,
`FireTimes` (history), `RuleSettings`, `parse_duration`, `parse_trigger_types`
(settings), `JobRuleState`, `memory_to_json`, `memory_from_json` (memory).
"""

from schedulerx_alert.core.rules.engine import Evaluation, evaluate, evaluate_job
from schedulerx_alert.core.rules.history import (
    UNKNOWN_SCHEDULE,
    FireTimes,
    JobHistory,
    JobSchedule,
    Seen,
)
from schedulerx_alert.core.rules.memory import (
    EMPTY,
    JobRuleState,
    MemoryFormatError,
    memory_from_json,
    memory_to_json,
)
from schedulerx_alert.core.rules.settings import (
    RuleSettings,
    SettingError,
    parse_duration,
    parse_trigger_types,
)

__all__ = [
    "EMPTY",
    "UNKNOWN_SCHEDULE",
    "Evaluation",
    "FireTimes",
    "JobHistory",
    "JobRuleState",
    "JobSchedule",
    "MemoryFormatError",
    "RuleSettings",
    "Seen",
    "SettingError",
    "evaluate",
    "evaluate_job",
    "memory_from_json",
    "memory_to_json",
    "parse_duration",
    "parse_trigger_types",
]
