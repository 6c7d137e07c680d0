"""FC 3.0's HTTP trigger, as a built-in Python runtime sees it.

FC calls the same `handler(event, context)` as for the timer, with the request as a
JSON event: `{"version": "v1", "rawPath", "body", "isBase64Encoded", "headers",
"queryParameters", "requestContext": {"http": {"method", "path", ...}, "requestId",
...}}`; several values of one header or parameter arrive joined by commas. The handler
answers `{"statusCode", "headers", "body", "isBase64Encoded"}`, which FC turns into
the HTTP response. (FC 3.0 docs, "Use an HTTP trigger to invoke a function".)

This module only reads and writes those shapes, with the standard library. Telling the
two events apart (`http_event`) lives in the package's __init__, so a timer tick does
not load this module.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from schedulerx_alert.links import (
    http_event as http_event,  # where serve.py and the tests look for it
)

MAX_BODY_BYTES = 16 * 1024  # the only form posted here holds one token


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str = "/"
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # names in lower case
    body: bytes = b""
    request_id: str = ""
    source_ip: str = ""  # as FC's gateway saw it; recorded with an operation

    def form(self) -> dict[str, str]:
        """An urlencoded body's fields (the first of repeated ones)."""
        kind = self.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            return {}
        try:
            text = self.body.decode("ascii")
        except UnicodeDecodeError:
            return {}
        fields: dict[str, str] = {}
        for name, value in parse_qsl(text, keep_blank_values=True):
            fields.setdefault(name, value)
        return fields


def parse_request(event: Mapping[str, Any]) -> HttpRequest:
    """An HTTP trigger event as a request; ValueError for one that cannot be read."""
    context = event.get("requestContext") or {}
    http = context.get("http") or {}
    method = str(http.get("method", "")).upper()
    query = _strings(event.get("queryParameters"))
    headers = {k.lower(): v for k, v in _strings(event.get("headers")).items()}
    raw = event.get("body") or ""
    if not isinstance(raw, str):
        raise ValueError("the body is not a string")
    if event.get("isBase64Encoded") is True:
        try:
            body = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the body is not base64") from None
    else:
        body = raw.encode("utf-8", "replace")
    if len(body) > MAX_BODY_BYTES:
        raise ValueError(f"the body is {len(body)} bytes; at most {MAX_BODY_BYTES}")
    return HttpRequest(
        method=method,
        path=str(http.get("path") or event.get("rawPath") or "/"),
        query=query,
        headers=headers,
        body=body,
        request_id=str(context.get("requestId") or ""),
        source_ip=str(http.get("sourceIp") or "")[:64],
    )


def _strings(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)

    def to_event(self) -> dict[str, Any]:
        return {
            "statusCode": self.status,
            "headers": dict(self.headers),
            "body": self.body,
            "isBase64Encoded": False,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_event(), ensure_ascii=False)
