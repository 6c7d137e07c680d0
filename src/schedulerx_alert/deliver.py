"""Delivery: turn owed alerts into messages within each robot's budgets, send, account.

Separate from the diff (which decides what is owed) and from the commit
(which records what was delivered), as in Alertmanager's pipeline. Nothing
here forgets an alert: whatever is not confirmed delivered comes back pending.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from .dingtalk import Failure, Receiver, TransportError
from .render import Message, Renderer
from .state import Alert, RobotRecord

WINDOW_SECONDS = 60.0
# Result excerpts tried, longest first, when one alert will not fit a message.
RESULT_LIMITS = (1500, 400, 0)


@dataclass(frozen=True)
class Batch:
    alerts: tuple[Alert, ...]
    message: Message
    # How far this batch has been shrunk after DingTalk refused it as too large.
    shrink: int = 0


@dataclass
class DeliveryReport:
    delivered: list[Alert] = field(default_factory=list)
    pending: list[Alert] = field(default_factory=list)
    robots: dict[str, RobotRecord] = field(default_factory=dict)
    messages: int = 0
    # One line per receiver that needs a human: wrong token, secret, keyword.
    problems: list[str] = field(default_factory=list)
    # Receivers that must not be sent anything more this tick.
    unusable: set[str] = field(default_factory=set)


class Planner:
    """Packs a receiver's alerts into as few messages as its limits allow."""

    def __init__(self, renderer: Renderer, receiver: Receiver, threshold: int) -> None:
        self.renderer = renderer
        self.receiver = receiver
        self.threshold = threshold
        self.mobiles = receiver.at_mobiles

    def fits(self, message: Message) -> bool:
        return self.receiver.size(message) <= self.receiver.max_bytes

    def single(self, alert: Alert, shrink: int = 0) -> Batch:
        for level in range(shrink, len(RESULT_LIMITS)):
            message = self.renderer.alert(alert, self.mobiles, RESULT_LIMITS[level])
            if self.fits(message) or level == len(RESULT_LIMITS) - 1:
                return Batch((alert,), message, level)
        raise AssertionError("unreachable")

    def summary(self, alerts: Sequence[Alert], more: int = 0) -> Message:
        return self.renderer.summary(alerts, self.mobiles, more)

    def plan(self, alerts: Sequence[Alert], budget: int) -> list[Batch]:
        if budget <= 0 or not alerts:
            return []
        if len(alerts) <= self.threshold:
            return [self.single(a) for a in alerts[:budget]]
        batches: list[Batch] = []
        start = 0
        while start < len(alerts) and len(batches) < budget:
            end = self._largest_fit(alerts, start)
            batches.append(Batch(tuple(alerts[start:end]), self.summary(alerts[start:end])))
            start = end
        if start < len(alerts):
            # Out of messages for this minute: say how many follow, making
            # room for that line by moving items out of the last message.
            last = list(batches.pop().alerts)
            message = self.summary(last, more=len(alerts) - start)
            while not self.fits(message) and len(last) > 1:
                last.pop()
                start -= 1
                message = self.summary(last, more=len(alerts) - start)
            batches.append(Batch(tuple(last), message))
        return batches

    def _largest_fit(self, alerts: Sequence[Alert], start: int) -> int:
        """The largest end such that alerts[start:end] fit one summary (at least one)."""

        def ok(end: int) -> bool:
            return self.fits(self.summary(alerts[start:end]))

        # Gallop, then bisect: O(log n) renders per message, not O(n).
        low, step, high = start + 1, 1, len(alerts) + 1
        while low < len(alerts):
            candidate = min(len(alerts), low + step)
            if not ok(candidate):
                high = candidate
                break
            low, step = candidate, step * 2
        while high - low > 1:
            mid = (low + high) // 2
            if ok(mid):
                low = mid
            else:
                high = mid
        return low

    def split(self, batch: Batch) -> list[Batch]:
        """Smaller batches after DingTalk refused one as too large."""
        if len(batch.alerts) > 1:
            half = len(batch.alerts) // 2
            parts = (batch.alerts[:half], batch.alerts[half:])
            return [self.single(p[0]) if len(p) == 1 else Batch(p, self.summary(p)) for p in parts]
        if batch.shrink + 1 < len(RESULT_LIMITS):
            return [self.single(batch.alerts[0], batch.shrink + 1)]
        return []


def deliver(
    outbox: Sequence[Alert],
    receivers: Mapping[str, Receiver],
    renderer: Renderer,
    robots: Mapping[str, RobotRecord],
    deadline: float,
    threshold: int = 3,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    on_delivered: Callable[[DeliveryReport], None] | None = None,
) -> DeliveryReport:
    """Send what is owed. `on_delivered` is called after every accepted
    message, so the caller can record it before sending the next one."""
    report = DeliveryReport()
    by_receiver: dict[str, list[Alert]] = {}
    for alert in outbox:
        by_receiver.setdefault(alert.receiver, []).append(alert)
    now = clock()
    for name, record in robots.items():
        # Keep records of idle robots only while they still matter.
        if name not in by_receiver and (
            any(now - t < WINDOW_SECONDS for t in record.sent) or (record.blocked_until or 0) > now
        ):
            report.robots[name] = _trim(record, now)
    for name, alerts in by_receiver.items():
        receiver = receivers.get(name)
        record = robots.get(name, RobotRecord())
        if receiver is None:
            report.pending.extend(alerts)
            continue
        _deliver_to(
            receiver,
            alerts,
            renderer,
            record,
            deadline,
            threshold,
            clock,
            sleep,
            report,
            on_delivered,
        )
    return report


def _trim(record: RobotRecord, now: float) -> RobotRecord:
    sent = tuple(t for t in record.sent if now - t < WINDOW_SECONDS)
    blocked = record.blocked_until if (record.blocked_until or 0) > now else None
    return RobotRecord(sent, blocked)


def _deliver_to(
    receiver: Receiver,
    alerts: list[Alert],
    renderer: Renderer,
    record: RobotRecord,
    deadline: float,
    threshold: int,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    report: DeliveryReport,
    on_delivered: Callable[[DeliveryReport], None] | None = None,
) -> None:
    now = clock()
    record = _trim(record, now)
    sent = list(record.sent)
    blocked_until = record.blocked_until
    delivered: set[str] = set()
    error: str | None = None
    attempted: set[str] = set()

    if blocked_until is not None:
        report.unusable.add(receiver.name)
        until = time.strftime("%H:%M:%S", time.gmtime(blocked_until))
        error = f"robot throttled by DingTalk (130101) until {until} UTC"
        queue: deque[Batch] = deque()
    else:
        planner = Planner(renderer, receiver, threshold)
        queue = deque(planner.plan(alerts, receiver.max_per_minute - len(sent)))
    retried = False
    while queue:
        batch = queue.popleft()
        now = clock()
        sent = [t for t in sent if now - t < WINDOW_SECONDS]
        if len(sent) >= receiver.max_per_minute:
            error = error or "rate budget for this minute used up"
            break
        if now + receiver.timeout > deadline:
            error = error or "no time left in this tick"
            break
        sent.append(now)
        attempted.update(a.key for a in batch.alerts)
        report.messages += 1
        try:
            receiver.send(batch.message)
        except TransportError as exc:
            error = str(exc)
            if exc.failure in (Failure.TOO_LARGE, Failure.BAD_MESSAGE):
                # Refused as such: smaller batches and shorter excerpts isolate
                # and strip whatever DingTalk objects to; the others still go.
                smaller = planner.split(batch)
                if not smaller:
                    report.problems.append(
                        f"receiver {receiver.name}: DingTalk refuses even the shortest "
                        f"message for {batch.alerts[0].key} ({exc}); it stays pending"
                    )
                queue.extendleft(reversed(smaller))
                continue
            if exc.failure is Failure.THROTTLED:
                blocked_until = clock() + receiver.block_seconds
                report.unusable.add(receiver.name)
                break
            if exc.failure is Failure.CONFIG:
                report.unusable.add(receiver.name)
                report.problems.append(
                    f"receiver {receiver.name} ({receiver.redacted_url}): {exc}; "
                    "check the robot's token, secret and keyword; alerts stay pending"
                )
                break
            # Transient: one quick retry in this tick, then leave it for the next.
            if not retried and clock() + 1.0 + receiver.timeout < deadline:
                retried = True
                sleep(1.0)
                queue.appendleft(batch)
                continue
            break
        delivered.update(a.key for a in batch.alerts)
        report.delivered.extend(batch.alerts)
        report.robots[receiver.name] = RobotRecord(tuple(sent), blocked_until)
        if on_delivered is not None:
            on_delivered(report)

    for alert in alerts:
        if alert.key in delivered:
            continue
        if alert.key in attempted or blocked_until is not None:
            alert = replace(alert, attempts=alert.attempts + 1, last_error=error)
        report.pending.append(alert)
    report.robots[receiver.name] = RobotRecord(tuple(sent), blocked_until)
