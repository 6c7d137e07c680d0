"""Function Compute entry point; everything else lives in schedulerx_alert."""

from pathlib import Path
from typing import Any

from schedulerx_alert.app import handle
from schedulerx_alert.logs import invocation

HERE = Path(__file__).resolve().parent


def handler(event: Any, context: Any) -> str:
    # JSON log lines tagged with the request id; no secret in an escaping exception.
    with invocation(context):
        return handle(event, context, HERE)
