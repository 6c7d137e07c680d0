"""Function Compute entry point; everything else lives in schedulerx_alert."""

import gc
from pathlib import Path
from typing import Any

# A cold start makes some hundred thousand objects that live as long as the instance
# (modules, classes, functions, constants), and the cyclic collector, walking them again
# and again while they are made, finds nothing to free: 8% of the import's time. It is
# paused for the import only, and left as the runtime had it.
_collecting = gc.isenabled()
gc.disable()
try:
    from schedulerx_alert.actions import http_event
    from schedulerx_alert.app import handle
    from schedulerx_alert.logs import invocation
finally:
    if _collecting:
        gc.enable()

HERE = Path(__file__).resolve().parent


def handler(event: Any, context: Any) -> str:
    # JSON log lines tagged with the request id; no secret in an escaping exception.
    with invocation(context):
        if http_event(event) is not None:
            # A silence link opened from the chat (FC's HTTP trigger); ticks never load it.
            from schedulerx_alert.actions.serve import serve

            return serve(event, context, HERE)
        return handle(event, context, HERE)
