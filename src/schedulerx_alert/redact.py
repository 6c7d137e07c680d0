"""Keep secrets out of every line we log or return."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

_TOKEN_PARAMS = re.compile(r"(access_token|sign|SecurityToken|Signature)=([^&\s\"'(),;]+)")


class Redactor(logging.Filter):
    """Replaces known secret values, and token-like URL parameters, with ***."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        # Longest first, so a secret containing another is replaced whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return _TOKEN_PARAMS.sub(r"\1=***", text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self(record.getMessage())
        record.args = None
        return True
