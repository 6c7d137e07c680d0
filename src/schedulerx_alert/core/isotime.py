"""ISO 8601 times as people and services write them, read alike on every runtime.

`datetime.fromisoformat` grew up in 3.11: 3.10, FC's runtime, refuses `Z`, an offset
without its colon (`+0800`), and a fraction that is not 3 or 6 digits, all of which
3.11 reads. A config written and checked on a newer Python must mean the same on FC,
so these forms are rewritten into the one 3.10 reads before it is asked.
"""

from __future__ import annotations

import re
from datetime import datetime

# A calendar date, a time of day (minutes at least), and the forms 3.10 refuses. For
# re's cache, compiled on first use: SchedulerX's own times never need it.
_DATE_TIME = (
    r"(?P<base>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?=[.,]|[Zz+-]|$))?)"
    r"(?:(?<=:\d{2}:\d{2})[.,](?P<fraction>\d{1,9}))?"
    r"(?P<zone>[Zz]|[+-]\d{2}(?::?\d{2})?)?"
)


def parse_iso(text: str) -> datetime:
    """`datetime.fromisoformat(text)` as Python 3.11 reads the common forms: a `Z` or
    `z` zone, `+08`/`+0800`/`+08:00` offsets, a `.` or `,` fraction of 1 to 9 digits
    (beyond microseconds cut off). Naive when `text` names no zone. ValueError when
    it is not a time."""
    match = re.fullmatch(_DATE_TIME, text)
    if match is None:
        return datetime.fromisoformat(text)
    normal = match["base"]
    if match["fraction"]:
        normal += "." + match["fraction"][:6].ljust(6, "0")
    zone = match["zone"]
    if zone in ("Z", "z"):
        normal += "+00:00"
    elif zone:
        digits = zone[1:].replace(":", "")
        normal += f"{zone[0]}{digits[:2]}:{digits[2:] or '00'}"
    return datetime.fromisoformat(normal)
