"""Someone else's text on a terminal: what every command prints of a job's text.

Job names, error texts, group names, silence comments and robots' answers come from
people and servers the operator does not control. Printed raw, an ESC or OSC sequence
moves the cursor, rewrites the window title or hides what follows, a BEL rings, a CR
overwrites the start of a line, a bidi override reorders it, and a lone surrogate makes
`print` raise. Every such character is shown as its `\\uXXXX` escape instead, the one
spelling that JSON reads back as the same character, so the JSON output stays valid.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LINE_KEEP = 160
# Controls (C0, DEL, C1), line and paragraph separators, bidi marks, embeddings,
# overrides and isolates, and lone surrogates.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
# The same, less the line break of a multi-line text (and of indented JSON).
_UNSAFE_IN_BLOCK = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff]"
)


def escape(text: str, keep_lines: bool = False) -> str:
    """Every unsafe character as `\\uXXXX`; line breaks too unless `keep_lines`."""
    unsafe = _UNSAFE_IN_BLOCK if keep_lines else _UNSAFE
    return unsafe.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def line(text: object, limit: int = LINE_KEEP) -> str:
    """One line of someone else's text, safe for a terminal, at most `limit` characters
    before a " …" that marks a cut."""
    folded = " ".join(str(text).split())
    out = escape(folded)
    return out if len(out) <= limit else out[:limit] + " …"


def block(text: object) -> str:
    """Someone else's multi-line text, safe for a terminal: its lines kept."""
    return escape(str(text).replace("\r\n", "\n"), keep_lines=True)


@dataclass
class Output:
    """What a command prints: through the redactor (a state or an answer holds robot ids
    and error texts, not tokens, but an error text could quote one) and this escaping."""

    redact: Callable[[str], str]
    json: bool

    def document(self, doc: Any) -> None:
        print(self.redact(json_text(doc)))

    def text(self, text: str) -> None:
        sys.stdout.write(self.redact(block(text)))

    def error(self, text: str) -> None:
        print(self.redact(block(text)), file=sys.stderr)


def json_text(value: Any) -> str:
    """`value` as indented JSON, readable (no ASCII escapes) and safe for a terminal.

    `json.dumps` escapes C0 controls only; the rest of the unsafe set occurs only inside
    strings, where `\\uXXXX` reads back as the same character.
    """
    return escape(json.dumps(value, ensure_ascii=False, indent=2), keep_lines=True)
