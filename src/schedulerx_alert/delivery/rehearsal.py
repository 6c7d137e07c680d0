"""A dry run's sending: the tick's own delivery, with receivers that record instead of post.

The preview is made by the very code a tick sends with (delivery/outbox.py: the robots'
budgets, one message per finding and robot, mentions, buttons; the channel's payload:
keyword and @-mentions in the text), so it cannot show other than what would be sent.
"""

from __future__ import annotations

from collections.abc import Mapping

from schedulerx_alert.delivery.channels.dingtalk import Failure, Receiver, TransportError
from schedulerx_alert.delivery.render import Message


class Rehearsal(Receiver):
    """Stands in for a receiver: the same limits and robot, and `send` records the
    message as the group would read it."""

    def __init__(self, receiver: Receiver, shown: list[dict[str, str]]) -> None:
        self.receiver = receiver
        self.shown = shown
        self.name = receiver.name
        self.max_bytes = receiver.max_bytes
        self.max_per_minute = receiver.max_per_minute
        self.timeout = receiver.timeout
        self.block_seconds = receiver.block_seconds
        self.at_mobiles = receiver.at_mobiles
        self.at_user_ids = receiver.at_user_ids

    @property
    def robot(self) -> str:
        return self.receiver.robot

    @property
    def redacted_url(self) -> str:
        return self.receiver.redacted_url

    def size(self, message: Message) -> int:
        return self.receiver.size(message)

    def send(self, message: Message) -> None:
        size = self.receiver.size(message)
        if size > self.max_bytes:
            # What a real send refuses before posting: delivery shrinks or splits it.
            too_large = f"message is {size} bytes, over {self.max_bytes}"
            raise TransportError(too_large, Failure.TOO_LARGE)
        self.shown.append({"receiver": self.name, **self.receiver.as_sent(message)})

    def as_sent(self, message: Message) -> dict[str, str]:
        return self.receiver.as_sent(message)


def rehearsals(
    receivers: Mapping[str, Receiver], shown: list[dict[str, str]]
) -> dict[str, Receiver]:
    """Every receiver replaced by one that records into `shown`, in the config's order."""
    return {name: Rehearsal(receiver, shown) for name, receiver in receivers.items()}
