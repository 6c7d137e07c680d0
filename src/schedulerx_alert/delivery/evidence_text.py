"""The run's log lines as a message shows them: inert text inside a code fence.

Each line goes through neutralise.block first, which swaps every markup character for its
full-width lookalike: no ASCII backtick is left, so no line of the log can close the fence
and turn what follows into live markdown, and a client that shows no code blocks still
shows plain text (no link, image, heading or @-mention). The end of a log explains a
failure, so when a message must shrink the log loses its first lines, not its last.
"""

from __future__ import annotations

from typing import Any

from schedulerx_alert.core.evidence import LOG_CHARS, LOG_LINES, Evidence

FENCE = "```"
# How much more log than error text a message keeps as it shrinks (deliver.RESULT_LIMITS):
# all of it with the full error text, a little with the shortest, none without any.
LOG_SLACK = 500


def log_limit(result_limit: int) -> int:
    return 0 if result_limit <= 0 else min(LOG_CHARS, result_limit + LOG_SLACK)


def log_context(evidence: Evidence, result_limit: int) -> dict[str, Any]:
    """`log` (the fenced block, "" when there is none), `log_lines` and `log_note`."""
    from schedulerx_alert.delivery.neutralise import block, line

    limit = log_limit(result_limit)
    tail: list[str] = []
    room = limit
    for text in reversed(evidence.log):
        if room - len(text) < 0 or len(tail) == LOG_LINES:
            break
        tail.append(text)
        room -= len(text)
    # Neutral text can be longer than its source (defanged hosts): room for that, still capped.
    lines = block("\n".join(reversed(tail)), 2 * limit, LOG_LINES) if tail else ()
    note = line(evidence.log_note) if evidence.log_note else None
    if evidence.log and not lines:
        note = "left out to fit DingTalk's size limit"
    return {
        "log": "\n".join((FENCE, *lines, FENCE)) if lines else "",
        "log_lines": list(lines),
        "log_note": note,
    }
