"""A reader's check of a DingTalk markdown message: did text we do not control become markup?

DingTalk documents no backslash escapes, so this reads a backslash as a plain character:
``\\[x\\](y)`` counts as a link. It knows the shape of our own templates (a heading on
the first line, ``- **Label**:`` list items, ``**bold**`` labels, ``> `` quote lines, the
console link, ``@mobile`` mentions of configured numbers) and reports every other
construct: links, images, autolinks and bare URLs, headings, list items, setext
underlines, nested quotes, emphasis, code, HTML and entities, tables, @-mentions, and
line breaks or invisible characters that a renderer could read as structure.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from schedulerx_alert.delivery.tlds import TLDS

CONSOLE_LINK = re.compile(
    r"\[(?:Open in console|在控制台查看)\]\(https://schedulerx2\.console\.aliyun\.com/[^)\s]*\)"
)
BOLD = re.compile(r"\*\*([^*\n]+)\*\*")
MARKUP_CHARS = "[]<>*`~|#@\\"
# "_" opens emphasis unless it sits between two letters or digits (CommonMark, GFM).
LOOSE_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
BARE_URL = re.compile(
    r"(?i)(?:\b(?:https?|ftps?|javascript|vbscript|data|mailto|tel|sms|file|dingtalk):(?=[^\s…])"
    r"|(?<!hxxp)(?<!hxxps)(?<!fxp)(?<!fxps)://|\bwww\.)"
)
DOTS = ".\u3002\uff0e\uff61"
HOST = re.compile(rf"[\w-]+(?:[{DOTS}][\w-]+)+")
# A host name a client opens: followed by a path, query or fragment (after a port or a
# root dot; a backslash is read as "/"), or the host of an e-mail address.
PATH_AFTER = re.compile(rf"[{DOTS}]?(?::\d+)?(?:[/\\／＼]|[?#？＃](?=\S))")
IPV4 = re.compile(rf"\d{{1,3}}(?:[{DOTS}]\d{{1,3}}){{3}}")
ENTITY = re.compile(r"&#?\w+;")
HEADING = re.compile(r"^[ \t>\\]*#")
LIST_ITEM = re.compile(r"^[ \t]*(?:[-+*]|\d{1,9}[.)])(?:[ \t]|$)")
SETEXT = re.compile(r"^[ \t]*(?:=+|-+)[ \t]*$")
TEMPLATE_ITEM = re.compile(r"^- \*\*[^*\n]+\*\*")


def violations(text: str, mobiles: Iterable[str] = (), forbidden: Iterable[str] = ()) -> list[str]:
    """Every construct in `text` that our templates do not make; empty when clean.

    `forbidden`: strings that must not appear at all (a hostile host name, say).
    """
    found: list[str] = []
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if char != "\n" and category in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            found.append(f"invisible or line-breaking U+{ord(char):04X} at {index}")
    found += [f"forbidden text {word!r}" for word in forbidden if word in text]
    lines = text.split("\n")
    for number, raw in enumerate(lines):
        quoted = raw.startswith("> ")
        body = raw[2:] if quoted else raw
        if number == 0:
            if not raw.startswith("### "):
                found.append("the first line is not our heading")
            body = raw[4:]
        if HEADING.match(body):
            found.append(f"heading on line {number}: {raw!r}")
        if quoted and body.lstrip(" \t").startswith(">"):
            found.append(f"nested quote on line {number}: {raw!r}")
        if SETEXT.match(body) and number > 0 and lines[number - 1].strip():
            found.append(f"setext underline on line {number}: {raw!r}")
        if LIST_ITEM.match(body) and (quoted or not TEMPLATE_ITEM.match(raw)):
            found.append(f"list item on line {number}: {raw!r}")
        if not quoted and number > 0 and body.startswith("    ") and body.strip():
            found.append(f"indented code on line {number}: {raw!r}")
    rest = CONSOLE_LINK.sub(" ", text)
    rest = BOLD.sub(r" \1 ", rest)
    rest = re.sub(r"^### ", "", rest)
    rest = re.sub(r"(?m)^> ", "", rest)
    rest = re.sub(r"(?m)^- ", "", rest)
    for mobile in mobiles:
        rest = rest.replace(f"@{mobile}", " ")
    found += [f"markup character {c!r}" for c in MARKUP_CHARS if c in rest]
    found += [f"emphasis underscore at {m.start()}" for m in LOOSE_UNDERSCORE.finditer(rest)]
    found += [f"URL or scheme {m.group(0)!r}" for m in BARE_URL.finditer(rest)]
    for run in HOST.finditer(rest):
        labels = re.split(f"[{DOTS}]", run.group(0))
        before = rest[run.start() - 1 : run.start()]
        opened = PATH_AFTER.match(rest, run.end()) or before in ("@", "＠")
        host = any(_tld(label) for label in labels[1:]) or IPV4.fullmatch(run.group(0))
        if labels[0].casefold() == "www" or (opened and host):
            found.append(f"host name {run.group(0)!r}")
    found += [f"HTML entity {m.group(0)!r}" for m in ENTITY.finditer(rest)]
    return found


def _tld(label: str) -> bool:
    folded = label.casefold()
    return folded in TLDS or folded.startswith("xn--")
