"""Silence from the chat: buttons under an alert whose signed links silence the job.

`settings` reads the config's `actions:` section, `links` signs and checks the links
and makes the buttons, `http` reads FC 3.0's HTTP trigger events, `serve` answers a
click (creating the silence once), `page` writes the small HTML pages it answers with.
A timer tick imports only this package's `http_event`, to tell its event from an HTTP
trigger's: the modules load when a link is opened.
"""

from __future__ import annotations

import json
from typing import Any


def http_event(event: Any) -> dict[str, Any] | None:
    """The event as a mapping when an HTTP trigger sent it, else None."""
    if isinstance(event, bytes | bytearray | str):
        try:
            event = json.loads(event)
        except (ValueError, RecursionError):
            return None
    if not isinstance(event, dict):
        return None
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, dict) else None
    if isinstance(http, dict) and isinstance(http.get("method"), str) and "rawPath" in event:
        return event
    return None
