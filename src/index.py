"""Function Compute entry points; everything else lives in schedulerx_alert.

`handler` runs a tick on the timer's events (and answers silence links for a function
that still has both triggers); `links` answers the HTTP trigger of silence links only,
in a function of its own, so a flood of link requests never holds up a tick.
"""

import gc
import os
from pathlib import Path
from typing import Any

# A cold start makes some hundred thousand objects that live as long as the instance
# (modules, classes, functions, constants), and the cyclic collector, walking them again
# and again while they are made, finds nothing to free: 8% of the import's time. It is
# paused for the import only, and left as the runtime had it.
_collecting = gc.isenabled()
gc.disable()
try:
    from schedulerx_alert.config import ConfigError
    from schedulerx_alert.handler import handle, log
    from schedulerx_alert.links import http_event
    from schedulerx_alert.support import deploy_secrets
    from schedulerx_alert.support.process_log import invocation
finally:
    if _collecting:
        gc.enable()

HERE = Path(__file__).resolve().parent


def handler(event: Any, context: Any) -> str:
    # JSON log lines tagged with the request id; no secret in an escaping exception.
    with invocation(context):
        # The robots' secrets, as the deploy files pass them, before the config is read.
        deploy_secrets.apply(os.environ)
        if http_event(event) is not None:
            # A silence link opened from the chat (FC's HTTP trigger); ticks never load it.
            return _serve(event, context)
        try:
            return handle(event, context, HERE)
        except ConfigError as exc:
            hint = deploy_secrets.missing_hint(str(exc), os.environ)
            if hint:
                log.error("%s", hint)
            raise


def links(event: Any, context: Any) -> str:
    """The links function's handler: whatever comes in is answered as a link request
    (anything but an HTTP trigger event gets a 400 page), never run as a tick."""
    with invocation(context):
        deploy_secrets.apply(os.environ)
        return _serve(event, context)


def _serve(event: Any, context: Any) -> str:
    from schedulerx_alert.links.serve import serve

    return serve(event, context, HERE)
