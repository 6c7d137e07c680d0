"""Function Compute entry point; everything else lives in schedulerx_alert."""

from pathlib import Path
from typing import Any

from schedulerx_alert.app import handle

HERE = Path(__file__).resolve().parent


def handler(event: Any, context: Any) -> str:
    return handle(event, context, HERE)
