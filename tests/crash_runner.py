"""One FC invocation of the real handler in a process of its own, for tests/test_crash.py.

    python -m tests.crash_runner

calls ``index.handler(timer_event, context)`` once, as FC's python3.10 runtime does,
and prints the handler's JSON summary line on stdout. The crash tests SIGKILL this
process at chosen steps of the tick.

Environment:

* ``SCHEDULERX_ALERT_CONFIG`` and every ``${VAR}`` the config names (the product reads them);
* ``CRASH_TIME_OFFSET``: seconds added to the wall clock. A dead tick's lease expires
  only after the function timeout, so the tests move time forward instead of waiting;
  the loopback servers in the parent use the same offset;
* ``CRASH_REQUEST_ID``, ``CRASH_TIMEOUT``: the context's ``request_id`` (the lease
  owner) and ``function.timeout``;
* ``CRASH_ACCESS_KEY_ID``, ``CRASH_ACCESS_KEY_SECRET``, ``CRASH_SECURITY_TOKEN``: the
  STS credentials FC hands over on ``context.credentials``.

Nothing here imports the tests' fakes: this process plays the FC runtime only.
"""

from __future__ import annotations

import json
import os
import sys
import time
from types import SimpleNamespace
from typing import Any


def shift_clock(offset: float) -> None:
    """Make every clock the product and its libraries read run ``offset`` seconds ahead.

    Must run before the product is imported: its edges (the OSS client's signer among
    them) take ``time.time`` as a default argument, bound once at import.
    """
    real = time.time

    def shifted() -> float:
        return real() + offset

    time.time = shifted


def fc_context(env: dict[str, str]) -> SimpleNamespace:
    return SimpleNamespace(
        request_id=env.get("CRASH_REQUEST_ID", "crash-runner"),
        function=SimpleNamespace(
            name="schedulerx-alert",
            handler="index.handler",
            timeout=int(env.get("CRASH_TIMEOUT", "60")),
            memory=128,
        ),
        credentials=SimpleNamespace(
            access_key_id=env["CRASH_ACCESS_KEY_ID"],
            access_key_secret=env["CRASH_ACCESS_KEY_SECRET"],
            security_token=env.get("CRASH_SECURITY_TOKEN") or None,
        ),
    )


def timer_event(now: float) -> bytes:
    trigger = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    event: dict[str, Any] = {"triggerTime": trigger, "triggerName": "every-minute", "payload": ""}
    return json.dumps(event).encode()


def main() -> int:
    env = dict(os.environ)
    shift_clock(float(env.get("CRASH_TIME_OFFSET", "0")))
    import index  # only now: the product must see the shifted clock

    line = index.handler(timer_event(time.time()), fc_context(env))
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
