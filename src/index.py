"""Function Compute entry point; everything else lives in schedulerx_alert."""

from pathlib import Path
from typing import Any

from schedulerx_alert.actions import http_event
from schedulerx_alert.app import handle
from schedulerx_alert.logs import invocation

HERE = Path(__file__).resolve().parent


def handler(event: Any, context: Any) -> str:
    # JSON log lines tagged with the request id; no secret in an escaping exception.
    with invocation(context):
        if http_event(event) is not None:
            # A silence link opened from the chat (FC's HTTP trigger); ticks never load it.
            from schedulerx_alert.actions.serve import serve

            return serve(event, context, HERE)
        return handle(event, context, HERE)
