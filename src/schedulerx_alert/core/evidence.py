"""What an alert carries besides the finding: whom to @-mention and the run's last log lines.

Gathered once, when the alert is first owed (sources/evidence.py), and kept on the pending
alert, so a message retried next tick shows the same owners and the same log without asking
SchedulerX again. Everything here is bounded: a pending alert must stay small however long
a job's log lines or its contact list are.

The log lines are kept as SchedulerX wrote them (cut to size, never neutralised): delivery/render.py
makes them inert when it shows them, as it does every other text from a job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Owners (@-mentioned mobiles) one alert keeps.
MAX_OWNERS = 10
#: Log lines kept, each at most LOG_LINE_CHARS, all together at most LOG_CHARS: about 6 KB
#: of CJK text, a third of DingTalk's 20000-byte body.
LOG_LINES = 20
LOG_LINE_CHARS = 300
LOG_CHARS = 2000
NOTE_CHARS = 200
_CUT = " …"


@dataclass(frozen=True)
class Evidence:
    # Validated mobile numbers of the job's SchedulerX contacts (mention_owners).
    owners: tuple[str, ...] = ()
    # The run's last log lines, oldest first (include_log).
    log: tuple[str, ...] = ()
    # Why the alert goes without its log ("" when none was asked for, or it came).
    log_note: str = ""

    @property
    def log_tried(self) -> bool:
        """Whether the log was asked for (or given up on): a retried alert never asks again."""
        return bool(self.log or self.log_note)


NO_EVIDENCE = Evidence()


def excerpt(lines: Sequence[str]) -> tuple[str, ...]:
    """The last LOG_LINES non-blank lines, each and all together within the caps.

    The end of a log explains a failure, so the cut drops lines from the start."""
    kept: list[str] = []
    room = LOG_CHARS
    for raw in reversed(lines):
        for text in reversed(str(raw).splitlines() or [""]):
            text = text.rstrip()
            if not text.strip():
                continue
            if len(text) > LOG_LINE_CHARS:
                text = text[: LOG_LINE_CHARS - len(_CUT)] + _CUT
            if len(kept) == LOG_LINES or len(text) > room:
                return tuple(reversed(kept))
            kept.append(text)
            room -= len(text)
    return tuple(reversed(kept))


def note(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= NOTE_CHARS else text[: NOTE_CHARS - len(_CUT)] + _CUT


# -- in the state (a pending alert's optional "evidence" key) ----------------------------


def to_json(evidence: Evidence) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    if evidence.owners:
        raw["owners"] = list(evidence.owners[:MAX_OWNERS])
    if evidence.log:
        raw["log"] = list(excerpt(evidence.log))
    if evidence.log_note:
        raw["log_note"] = note(evidence.log_note)
    return raw


def from_json(raw: Any, where: str) -> Evidence:
    """ValueError names the field; lists longer than the caps are cut, not refused."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: not an object")
    owners = _texts(raw.get("owners", []), f"{where}.owners")
    log = _texts(raw.get("log", []), f"{where}.log")
    log_note = raw.get("log_note", "")
    if not isinstance(log_note, str):
        raise ValueError(f"{where}.log_note: not a string")
    return Evidence(
        owners=tuple(o[:40] for o in owners[:MAX_OWNERS]),
        log=excerpt(log[-4 * LOG_LINES :]),
        log_note=note(log_note),
    )


def _texts(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: not a list of strings")
    return value
