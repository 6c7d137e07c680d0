"""Keep secrets out of every line we log or return."""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterable

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
