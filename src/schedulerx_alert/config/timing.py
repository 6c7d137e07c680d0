"""The tick's time budget, derived from the function's timeout.

FC kills the function when its timeout is up, whatever it is doing. A tick
therefore stops polling early enough to send what it found, and stops sending
early enough to save the state. Fixed per-call timeouts and reserves that suit
a 60 s function leave nothing for polling in an 8 s one, and a call timeout
longer than the tick itself defers every job; so both scale with the timeout.
"""

from __future__ import annotations

from dataclasses import dataclass

from schedulerx_alert.config import Config

# The function's timeout as the deploy files set it (s.yaml, s.actions.yaml, template.yml):
# what a tick or a click is given when FC's context names none, and what validate, config
# push and check hold a config to unless told otherwise.
DEPLOYED_TIMEOUT = 60.0
# No single call may take more than this share of the function's time...
CALL_SHARE = 1 / 6
# ...but a call given less than this fails on a real network more often than
# not (DNS, TCP and TLS on a 0.1-vCPU instance take a few hundred ms), so the
# scaling stops here; a shorter configured timeout is still used as given.
MIN_CALL_SECONDS = 0.5
# Time kept for the final state write: a share of the function's time (as
# before: 9 s of 60 s), and never less than one write plus the lease margin.
COMMIT_SHARE = 0.15
# The lease's safety margin: a commit does not start this close to the lease's
# expiry (the write itself must land before another tick may take over).
MAX_COMMIT_MARGIN = 1.0
# Time kept for sending after polling stops: a quarter of the function's time,
# at most 15 s, and never less than one message and its checkpoint.
SEND_SHARE = 0.25
MAX_SEND_RESERVE = 15.0


@dataclass(frozen=True)
class Timing:
    """Seconds, counted from the start of the tick."""

    function_timeout: float
    schedulerx_call: float
    dingtalk_call: float
    store_call: float
    commit_margin: float
    commit_reserve: float
    send_reserve: float

    @classmethod
    def of(cls, config: Config, function_timeout: float) -> Timing:
        cap = max(MIN_CALL_SECONDS, function_timeout * CALL_SHARE)
        store = min(config.state.timeout_seconds, cap)
        dingtalk = min(config.dingtalk.timeout_seconds, cap)
        margin = min(MAX_COMMIT_MARGIN, function_timeout * 0.1)
        return cls(
            function_timeout=function_timeout,
            schedulerx_call=min(config.schedulerx.timeout_seconds, cap),
            dingtalk_call=dingtalk,
            store_call=store,
            commit_margin=margin,
            commit_reserve=max(function_timeout * COMMIT_SHARE, store + margin),
            # A message DingTalk accepted is checkpointed before the next is sent.
            send_reserve=max(
                min(MAX_SEND_RESERVE, function_timeout * SEND_SHARE), dingtalk + store
            ),
        )

    @property
    def send_until(self) -> float:
        """When the last message must have been answered."""
        return self.function_timeout - self.commit_reserve

    @property
    def poll_until(self) -> float:
        """When the last SchedulerX call must have been answered."""
        return self.send_until - self.send_reserve

    def problems(self) -> list[str]:
        """Why no job can be polled under these settings (empty when one can)."""
        if self.poll_until >= self.schedulerx_call:
            return []
        return [
            f"nothing can be polled in a {_s(self.function_timeout)} function timeout: "
            f"a SchedulerX call may take {_s(self.schedulerx_call)} "
            f"(schedulerx.timeout_seconds), {_s(self.send_reserve)} are kept for one "
            "message and its record (dingtalk.timeout_seconds, state.timeout_seconds) and "
            f"{_s(self.commit_reserve)} for the state write, which leaves "
            f"{_s(max(0.0, self.poll_until))}; lower those timeouts or raise the function's timeout"
        ]


def _s(seconds: float) -> str:
    return f"{seconds:.3g}s"
