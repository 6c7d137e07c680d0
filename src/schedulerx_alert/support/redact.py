"""Keep secrets out of every line we log or return."""

from __future__ import annotations

import json
import logging
import re
import traceback
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

_TOKEN_PARAMS = re.compile(r"(access_token|sign|SecurityToken|Signature)=([^&\s\"'(),;]+)")
# A DingTalk robot secret ("SEC" + 64 hex digits), caught even before the config that
# names it has been read: a config error or a traceback can come first.
_ROBOT_SECRET = re.compile(r"\bSEC[0-9a-fA-F]{32,}\b")


class Redactor(logging.Filter):
    """Replaces known secret values, and token-like URL parameters, with ***.

    As a logging filter it rewrites every text a record carries (message, traceback,
    stack), so that handlers it does not own, such as the FC runtime's or a test
    harness's, never see a secret either.
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        # Longest first, so a secret containing another is replaced whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        text = _ROBOT_SECRET.sub("SEC***", text)
        return _TOKEN_PARAMS.sub(r"\1=***", text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception as exc:
            # A log call whose arguments do not fit its format must not crash the
            # tick, nor reach logging's error printer with its arguments unredacted.
            message = f"{record.msg!s} (unformattable log arguments: {type(exc).__name__})"
        record.msg = self(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = self(record.exc_text)
            # Formatters render exc_text when it is set; without exc_info none re-renders it.
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self(record.stack_info)
        return True


# Shorter values are too common in text to tell a secret from a word; none the function
# holds is this short (a robot secret is 67 characters, an AccessKey secret 30).
SCREEN_MIN_CHARS = 8


class Screen:
    """The last check before a body leaves: the secrets the function holds, by kind.

    Whoever can shape a message's text (a job's error output, a config's template) may
    know where a secret is without knowing it; the body that would carry one is not sent.
    """

    def __init__(self, secrets: Iterable[tuple[str, str | None]] = ()) -> None:
        forms: dict[str, str] = {}
        for kind, secret in secrets:
            if not secret or len(secret) < SCREEN_MIN_CHARS:
                continue
            # As a JSON body escapes it, and as a link's query would carry it.
            for form in (
                secret,
                json.dumps(secret, ensure_ascii=False)[1:-1],
                json.dumps(secret)[1:-1],
                quote(secret, safe=""),
                quote_plus(secret),
            ):
                forms.setdefault(form, kind)
        # Longest first: a secret containing another is named as itself.
        self.forms = sorted(forms.items(), key=lambda item: len(item[0]), reverse=True)

    def find(self, text: str) -> str | None:
        """The kind of the first secret `text` carries, or None; never the secret."""
        return next((kind for form, kind in self.forms if form in text), None)
