"""A value from a file or a command, fit for a message: one short line, whatever its size.

The config's checks (config/schema.py) and the silences' (core/silence.py) both quote
what they refuse; core holds it because core imports nothing above it."""

from __future__ import annotations

SHOW_CHARS = 60


def show(value: object) -> str:
    if isinstance(value, str):
        cut = value[:SHOW_CHARS]
        return repr(cut) + ("…" if len(value) > SHOW_CHARS else "")
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value) if value.bit_length() <= 64 else "a very large integer"
    if isinstance(value, list):
        return f"a list of {len(value)} item(s)"
    if isinstance(value, dict):
        return f"a mapping of {len(value)} key(s)"
    return f"a {type(value).__name__}"
