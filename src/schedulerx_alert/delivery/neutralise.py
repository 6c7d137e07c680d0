"""Text we do not control, made plain: nothing a job, SchedulerX or DingTalk says becomes markup.

DingTalk's markdown is not CommonMark and documents no backslash escapes, so escaping
would rely on a renderer we cannot see. Instead the characters markdown, HTML and
@-mentions are built from are swapped for their full-width lookalikes
(［］＜＞＊＿｀～｜＃＠＼＆), which no renderer treats as syntax and every reader
still reads (an underscore inside a word stays, so identifiers stay searchable).
What a chat client opens is defanged (``hxxps://evil［.］example``): anything with a
scheme, a ``www.`` host, a host followed by a path (``evil.example/x``) and the host
of an e-mail address. A bare dotted name stays as written, although ``.prod`` or
``.java`` is a TLD: a client links none of them, and the on-call engineer must be able
to copy and search group names, class names, ``host:port`` and file names.
Line breaks, control, zero-width and bidi characters cannot smuggle a line of
their own into a single-line field. Every value is capped, marking the cut with
"…", so one field can never make a message undeliverable.

All three functions are pure and idempotent: neutral text passes through unchanged,
so a template may apply them again to a value that already went through them.
"""

from __future__ import annotations

import re

from schedulerx_alert.delivery.tlds import TLDS

SINGLE_LINE_CAP = 200
BLOCK_CAP = 1500
BLOCK_LINES = 40
CUT = "…"

# Unicode categories Cc, Zl and Zp: anything a renderer may take for a line break.
_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Category Cf as of Unicode 15.1 (a superset of older runtimes' tables).
_FORMAT = re.compile(
    "[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f]"
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_SWAP = str.maketrans(
    {
        "[": "［",
        "]": "］",
        "<": "＜",
        ">": "＞",
        "*": "＊",
        "`": "｀",
        "~": "～",
        "|": "｜",
        "#": "＃",
        "@": "＠",
        "\\": "＼",
        "&": "＆",
    }
)
# "_" between two letters or digits opens no emphasis in CommonMark or GFM, and
# identifiers (job, group and config names) must stay searchable and copyable;
# every other "_" could open or close emphasis.
_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
# Markers that open a list item or a setext heading only at the start of a line.
_LINE_START = str.maketrans({"-": "－", "+": "＋", "=": "＝"})
_ORDERED = re.compile(r"^(\d+)([.)])(?=\s|$)")
_DOT = "［.］"
# IDNA maps these to "." in host names, so a linkifier may too.
_DOTS = ".\u3002\uff0e\uff61"
_ANY_DOT = re.compile(f"[{_DOTS}]")
_HOST_RUN = re.compile(rf"(?<![\w-])[\w-]+(?:[{_DOTS}][\w-]+)+")
# What makes a host name something a client opens: a path, query or fragment after it
# (after a port, or a root dot); a backslash counts, as URL parsers read it as "/".
# "#" and "\\" are already swapped for their full-width forms when this is asked. A "?"
# ending a sentence is none, but one ending the value may meet a template's text.
_PATH_AFTER = re.compile(rf"[{_DOTS}]?(?::\d+)?(?:[/\\／＼]|[?#？＃](?=\S|\Z))")
_IPV4 = re.compile(rf"\d{{1,3}}(?:[{_DOTS}]\d{{1,3}}){{3}}")
_WWW = re.compile(rf"(?<![^\W_])(www)[{_DOTS}]", re.IGNORECASE)
_BARE_DOT = re.compile(rf"(?<!［)[{_DOTS}](?!］)")
_DOT_SPLIT = re.compile(rf"([{_DOTS}])")
# Schemes a client opens from a bare "scheme:thing", with or without "//".
_OPENABLE = (
    "https?|ftps?|javascript|vbscript|data|mailto|tel|sms|file|dingtalk|intent|market|weixin"
)
# Found from the "://" backwards: a regex that starts with the scheme backtracks
# through every word of the text and takes quadratic time.
_SEPARATOR = re.compile(r"://(?P<host>[^\s/?#:]*)")
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
# "mailto:" with nothing after it (or only our cut mark) opens nothing.
# Also at the very end: a template may put its own text right after the value.
_BARE_SCHEME = re.compile(rf"(?<![A-Za-z0-9])({_OPENABLE}):(?=[^\s…]|\Z)", re.IGNORECASE)
_DEFANGED = {"http": "hxxp", "https": "hxxps", "ftp": "fxp", "ftps": "fxps"}
_ALREADY_DEFANGED = frozenset(_DEFANGED.values())


def line(value: object, cap: int = SINGLE_LINE_CAP) -> str:
    """One line of plain text, at most `cap` characters: for names, addresses, reasons."""
    text, cut = _bounded(value, cap)
    out = _markup_free(_plain(text))
    return _cap_neutral(_mark(out) if cut else out, cap)


def block(value: object, cap: int = BLOCK_CAP, max_lines: int = BLOCK_LINES) -> tuple[str, ...]:
    """Lines of plain text for a multi-line value such as a run's Result.

    Blank lines are dropped (one would end a quote); indentation is kept as
    no-break spaces, which no markdown reads as a code block. At most `max_lines`
    lines and `cap` characters in all; a cut ends the last line with "…".
    """
    if cap <= 0 or max_lines <= 0:
        return ()
    text, cut = _bounded(value, cap + 64 * max_lines)
    out: list[str] = []
    room = cap
    for raw in text.splitlines():
        if len(out) == max_lines or room <= 0:
            if _plain(raw):
                cut = True
                break
            continue
        # Enough of a long line to fill the room; what is left of it is cut.
        long = len(raw) > 2 * room + 64
        body = _markup_free(_plain(raw[: 2 * room + 64] if long else raw))
        if not body:
            continue
        piece = "\u00a0" * min(8, _indent(raw)) + body
        if long or len(piece) > room:
            head = _fit(piece, room)
            if head:
                out.append(head)
                room -= len(head)
            cut = True
            break
        out.append(piece)
        room -= len(piece)
    if cut and out:
        last = out[-1]
        out[-1] = _mark(last) if room >= 2 else _cap_neutral(_mark(last), len(last))
    return tuple(out)


def fold(value: object, cap: int = SINGLE_LINE_CAP) -> str:
    """One line without control characters, at most `cap` characters; markup untouched.

    For text that goes to logs and error strings, which are no markdown; whatever
    of it reaches a message goes through `line` there.
    """
    text, cut = _bounded(value, cap)
    out = _plain(text)
    return _cap(_mark(out) if cut else out, cap)


def _bounded(value: object, cap: int) -> tuple[str, bool]:
    """The part of a value worth neutralising: enough for `cap`, not a megabyte of it."""
    text = "" if value is None else str(value)
    limit = 2 * max(cap, 0) + 64
    return (text[:limit], True) if len(text) > limit else (text, False)


def _plain(value: object) -> str:
    """Line breaks and controls as spaces, invisible format characters dropped, spaces folded."""
    text = "" if value is None else str(value)
    if not text.isprintable():
        text = _BREAKS.sub(" ", text)
        # Zero-width and bidi controls hide or reorder what the reader sees.
        text = _FORMAT.sub("", text)
        # A lone surrogate cannot be encoded as UTF-8: the body could not be sent.
        text = _SURROGATE.sub("\ufffd", text)
    return " ".join(text.split())


def _markup_free(text: str) -> str:
    """Swap markup characters, disarm what counts only at a line's start, defang links."""
    if not text:
        return text
    text = text.translate(_SWAP)
    if "_" in text:
        text = _UNDERSCORE.sub("＿", text)
    text = text[0].translate(_LINE_START) + text[1:]
    if text[0].isdigit():
        text = _ORDERED.sub(lambda m: m.group(1) + ("．" if m.group(2) == "." else "）"), text)
    # The checks before each pass only skip work: most lines have no URL or host name.
    if ":" in text:
        text = _defang_urls(text) if "://" in text else text
        text = _BARE_SCHEME.sub(_defang_scheme, text)
    if _ANY_DOT.search(text):
        text = _HOST_RUN.sub(_defang_host, text)
        text = _WWW.sub(rf"\1{_DOT}", text)
    return text


def _defang_scheme(match: re.Match[str]) -> str:
    scheme = match.group(1)
    lowered = scheme.lower()
    return _DEFANGED[lowered] + ":" if lowered in _DEFANGED else scheme + "［:］"


def _defang_urls(text: str) -> str:
    """Every "scheme://host": http(s) as hxxp(s), any other scheme's colon broken, host dots."""
    out: list[str] = []
    done = 0
    for match in _SEPARATOR.finditer(text):
        start = match.start()
        first = start
        while first > done and text[first - 1] in _SCHEME_CHARS:
            first -= 1
        # A scheme starts with a letter; digits and signs before it stay text.
        while first < start and not text[first].isalpha():
            first += 1
        scheme = text[first:start]
        host = _BARE_DOT.sub(_DOT, match.group("host"))
        lowered = scheme.lower()
        if lowered in _DEFANGED:
            url = f"{_DEFANGED[lowered]}://{host}"
        elif lowered in _ALREADY_DEFANGED:
            url = f"{scheme}://{host}"
        else:
            url = f"{scheme}［:］//{host}"
        out += [text[done:first], url]
        done = match.end()
    out.append(text[done:])
    return "".join(out)


def _defang_host(match: re.Match[str]) -> str:
    """A host name a client would open, with every dot it could end the host at broken.

    Opened: a www host, a host followed by a path, an e-mail address's host. The dots
    broken are those before a TLD, every one after www, the last of an IPv4 address.
    """
    run = match.group(0)
    parts = _DOT_SPLIT.split(run)
    labels = parts[0::2]
    everywhere = labels[0].casefold() == "www"
    if not everywhere and not _opened(match.string, match.start(), match.end()):
        return run
    if _IPV4.fullmatch(run):
        return "".join(parts[:-2]) + _DOT + labels[-1]
    out = [labels[0]]
    for dot, label in zip(parts[1::2], labels[1:], strict=True):
        folded = label.casefold()
        tld = folded in TLDS or folded.startswith("xn--")
        out.append(_DOT if everywhere or tld else dot)
        out.append(label)
    return "".join(out)


def _opened(text: str, start: int, end: int) -> bool:
    """Whether a client reads the dotted name at text[start:end] as part of a link."""
    # "＠" is "@" after the swap: the host of an e-mail address.
    return _PATH_AFTER.match(text, end) is not None or text[start - 1 : start] == "＠"


def _mark(text: str) -> str:
    return f"{text} {CUT}" if text else CUT


def _cap_neutral(text: str, cap: int) -> str:
    if cap <= 0:
        return ""
    return text if len(text) <= cap else _fit(text, cap - 1) + CUT


def _fit(text: str, room: int) -> str:
    """Neutral text cut to at most `room` characters, and still neutral.

    A cut can make what was none a host name ("a@evil.comX" -> "a@evil.com") or leave
    an underscore at the end of a word, so the head is neutralised again; that
    may lengthen it, so it is cut shorter until it fits.
    """
    size = room
    while True:
        head = _markup_free(text[:size].rstrip())
        if len(head) <= room:
            return head
        size -= len(head) - room


def _indent(raw: str) -> int:
    width = 0
    for char in raw:
        if char == "\t":
            width += 4
        elif char.isspace():
            width += 1
        else:
            break
    return width


def _cap(text: str, cap: int) -> str:
    if cap <= 0:
        return ""
    if len(text) <= cap:
        return text
    return text[: cap - 1].rstrip() + CUT
