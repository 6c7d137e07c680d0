"""Delivery: turn owed alerts into messages within each robot's budgets, send, account.

Separate from the diff (which decides what is owed) and from the commit
(which records what was delivered), as in Alertmanager's pipeline. Nothing
here forgets an alert: whatever is not confirmed delivered comes back pending.

Budgets belong to robots, not receivers: DingTalk counts a robot's messages
however many receivers point at it, and mutes the robot, not the receiver.
Every message, alert or notice about the monitor itself, spends the same one.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from schedulerx_alert.core.state import Alert, RobotRecord
from schedulerx_alert.delivery.channels.dingtalk import Failure, Receiver, TransportError
from schedulerx_alert.delivery.render import Message, Renderer

if TYPE_CHECKING:
    from schedulerx_alert.delivery.links import ActionLinks
    from schedulerx_alert.delivery.mentions import Mentions

WINDOW_SECONDS = 60.0
# Result excerpts tried, longest first, when one alert will not fit a message.
RESULT_LIMITS = (1500, 400, 0)
# Alerts waiting only for the robot's rate budget are normal after a burst and
# drain by themselves (18 messages a minute carry thousands of runs in
# summaries); a backlog older than this is not draining and is a problem.
BACKLOG_SECONDS = 600.0
# Pause before the one quick retry of a message that failed transiently.
RETRY_PAUSE = 1.0
# Why a message waits for the next minute (the end of a notice's `unannounced` reason).
BUDGET_USED = "rate budget for this minute used up"


@dataclass(frozen=True)
class Batch:
    alerts: tuple[Alert, ...]
    message: Message
    # How far this batch has been shrunk after DingTalk refused it as too large.
    shrink: int = 0
    # Expired alerts the message counts (the first summary to a receiver says so).
    expired: int = 0


@dataclass(frozen=True)
class Notice:
    """A message about the monitor itself, with no run behind it.

    It goes to the first of `receivers` whose robot takes it this tick, within
    the same per-robot budget as alerts. It is not kept pending: whoever asked
    for it asks again next tick."""

    message: Message
    receivers: tuple[str, ...]


@dataclass
class DeliveryReport:
    delivered: list[Alert] = field(default_factory=list)
    pending: list[Alert] = field(default_factory=list)
    # Send history by robot (Receiver.robot), for the state.
    robots: dict[str, RobotRecord] = field(default_factory=dict)
    messages: int = 0
    # One line per receiver whose alerts could not all go this tick (robot
    # down, muted, misconfigured, out of time, a backlog that does not drain).
    problems: list[str] = field(default_factory=list)
    # Alerts that merely wait for the next minute's rate budget.
    notes: list[str] = field(default_factory=list)
    # Notices sent, with the receiver that took each; and those no one took, with why.
    announced: list[tuple[Notice, str]] = field(default_factory=list)
    unannounced: list[tuple[Notice, str]] = field(default_factory=list)
    # Per receiver: expired alerts a delivered message counted.
    mentioned: dict[str, int] = field(default_factory=dict)


class _Robot:
    """One robot during this tick: its sends in the last minute, its mute, its outage."""

    def __init__(self, record: RobotRecord, now: float) -> None:
        self.sent = [t for t in record.sent if now - t < WINDOW_SECONDS]
        self.blocked_until = record.blocked_until if (record.blocked_until or 0) > now else None
        # Why the robot failed this tick (DingTalk down, timed out): not tried again.
        self.down: str | None = None

    def merge(self, record: RobotRecord, now: float) -> None:
        other = _Robot(record, now)
        self.sent = sorted({*self.sent, *other.sent})
        if other.blocked_until is not None:
            self.blocked_until = max(self.blocked_until or 0.0, other.blocked_until)

    def room(self, limit: int, now: float) -> int:
        self.sent = [t for t in self.sent if now - t < WINDOW_SECONDS]
        return limit - len(self.sent)

    def active(self, now: float) -> bool:
        return self.room(0, now) < 0 or self.muted(now)

    def muted(self, now: float) -> bool:
        return self.blocked_until is not None and self.blocked_until > now

    def record(self) -> RobotRecord:
        return RobotRecord(tuple(self.sent), self.blocked_until)


class _Ledger:
    """Every robot's budget this tick, shared by all the receivers on it."""

    def __init__(
        self,
        records: Mapping[str, RobotRecord],
        receivers: Mapping[str, Receiver],
        clock: Callable[[], float],
    ) -> None:
        self.clock = clock
        now = clock()
        self.robots: dict[str, _Robot] = {}
        legacy = {r.name: r.robot for r in receivers.values() if r.name != r.robot}
        for key, record in records.items():
            # States from before robots were keyed by robot kept them by receiver name.
            key = legacy.get(key, key)
            if key in self.robots:
                self.robots[key].merge(record, now)
            else:
                self.robots[key] = _Robot(record, now)
        # Receivers whose own settings (secret, keyword) DingTalk refused, and why.
        self.refused: dict[str, str] = {}

    def of(self, receiver: Receiver) -> _Robot:
        robot = self.robots.get(receiver.robot)
        if robot is None:
            robot = self.robots[receiver.robot] = _Robot(RobotRecord(), self.clock())
        return robot

    def records(self) -> dict[str, RobotRecord]:
        """The records still worth keeping: sends inside the window, mutes not over."""
        now = self.clock()
        return {
            key: robot.record() for key, robot in sorted(self.robots.items()) if robot.active(now)
        }


class Planner:
    """Packs a receiver's alerts into as few messages as its limits allow."""

    def __init__(
        self,
        renderer: Renderer,
        receiver: Receiver,
        threshold: int,
        expired: int = 0,
        links: ActionLinks | None = None,
        riders: Mapping[str, Sequence[Receiver]] | None = None,
    ) -> None:
        """`links`: the silence buttons (`actions:`) a single alert's message carries.
        `riders`: by alert key, the other receivers on this robot its message also
        stands for (see `Delivery.alerts`), whose mentions it carries too."""
        self.renderer = renderer
        self.receiver = receiver
        self.threshold = threshold
        self.expired = expired
        self.links = links
        self.riders = riders or {}

    def _mentions(self, alerts: Sequence[Alert]) -> Mentions:
        from schedulerx_alert.delivery.mentions import (
            mentions,  # with the first message, not every start
        )

        mobiles = list(self.receiver.at_mobiles)
        user_ids = list(self.receiver.at_user_ids)
        for alert in alerts:
            for rider in self.riders.get(alert.key, ()):
                mobiles += [m for m in rider.at_mobiles if m not in mobiles]
                user_ids += [u for u in rider.at_user_ids if u not in user_ids]
        return mentions(mobiles, user_ids, alerts)

    def fits(self, message: Message) -> bool:
        return self.receiver.size(message) <= self.receiver.max_bytes

    def single(self, alert: Alert, shrink: int = 0) -> Batch:
        for level in range(shrink, len(RESULT_LIMITS)):
            at = self._mentions((alert,))
            message = self.renderer.alert(alert, at.mobiles, RESULT_LIMITS[level], at.user_ids)
            if self.links is not None:
                message = self.links.attach(message, alert)
            if self.fits(message) or level == len(RESULT_LIMITS) - 1:
                return Batch((alert,), message, level)
        raise AssertionError("unreachable")

    def summary(self, alerts: Sequence[Alert], more: int = 0, expired: int = 0) -> Message:
        at = self._mentions(alerts)
        return self.renderer.summary(alerts, at.mobiles, more, expired, at.user_ids)

    def plan(self, alerts: Sequence[Alert], budget: int) -> list[Batch]:
        if budget <= 0 or not alerts:
            return []
        # Expired alerts are counted in a summary, so their receiver gets one.
        if len(alerts) <= self.threshold and not self.expired:
            return [self.single(a) for a in alerts[:budget]]
        batches: list[Batch] = []
        start = 0
        while start < len(alerts) and len(batches) < budget:
            note = 0 if batches else self.expired
            end = self._largest_fit(alerts, start, note)
            part = tuple(alerts[start:end])
            batches.append(Batch(part, self.summary(part, expired=note), expired=note))
            start = end
        if start < len(alerts):
            # Out of messages for this minute: say how many follow, making
            # room for that line by moving items out of the last message.
            popped = batches.pop()
            last, note = list(popped.alerts), popped.expired
            message = self.summary(last, len(alerts) - start, note)
            while not self.fits(message) and len(last) > 1:
                last.pop()
                start -= 1
                message = self.summary(last, len(alerts) - start, note)
            batches.append(Batch(tuple(last), message, expired=note))
        return batches

    def _largest_fit(self, alerts: Sequence[Alert], start: int, expired: int = 0) -> int:
        """The largest end such that alerts[start:end] fit one summary (at least one)."""

        def ok(end: int) -> bool:
            return self.fits(self.summary(alerts[start:end], expired=expired))

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


class Delivery:
    """One tick's sending: alerts, then notices, all spending one ledger of robot budgets.

    A robot that failed, was muted or refused a receiver's settings earlier in
    the tick is not tried again for a later message."""

    def __init__(
        self,
        receivers: Mapping[str, Receiver],
        renderer: Renderer,
        robots: Mapping[str, RobotRecord],
        deadline: float,
        threshold: int = 3,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        settle: float = 0.0,
        links: ActionLinks | None = None,
    ) -> None:
        """`settle`: how long recording an accepted message takes (the caller's
        checkpoint), so that it too fits before `deadline`. `links`: see Planner."""
        self.receivers = receivers
        self.links = links
        self.renderer = renderer
        self.threshold = threshold
        self.report = DeliveryReport()
        self.ledger = _Ledger(robots, receivers, clock)
        self.report.robots = self.ledger.records()
        self._sender = _Sender(self.ledger, deadline, settle, clock, sleep, self.report)

    def alerts(
        self,
        outbox: Sequence[Alert],
        on_delivered: Callable[[DeliveryReport], None] | None = None,
        expired: Mapping[str, int] | None = None,
    ) -> DeliveryReport:
        """Send what is owed. `on_delivered` is called after every accepted
        message, so the caller can record it before sending the next one.
        `expired` counts, per receiver, alerts dropped for their age: the first
        summary to that receiver says how many."""
        report = self.report
        expired = expired or {}
        riding = _riding(outbox, self.receivers)
        by_receiver: dict[str, list[Alert]] = {}
        for alert in outbox:
            if alert.key not in riding.rides:
                by_receiver.setdefault(alert.receiver, []).append(alert)
        for name, alerts in by_receiver.items():
            receiver = self.receivers.get(name)
            if receiver is None:
                report.pending.extend(alerts)
                report.problems.append(
                    f"{len(alerts)} alert(s) for receiver {name!r}, which is not configured, "
                    "stay pending"
                )
                continue
            planner = Planner(
                self.renderer,
                receiver,
                self.threshold,
                expired.get(name, 0),
                self.links,
                riding.receivers,
            )
            _deliver_to(receiver, alerts, planner, self._sender, on_delivered, riding.alerts)
        report.robots = self.ledger.records()
        return report

    def notice(self, notice: Notice) -> str | None:
        """Send a notice; the receiver that took it, or None (why: report.unannounced)."""
        taken = _announce(notice, self.receivers, self._sender)
        self.report.robots = self.ledger.records()
        return taken


@dataclass
class _Riding:
    """Alerts that go in another receiver's message: one finding, one robot, one message."""

    # By the key of the alert whose message carries them: the riders' alerts and receivers.
    alerts: dict[str, list[Alert]] = field(default_factory=dict)
    receivers: dict[str, list[Receiver]] = field(default_factory=dict)
    # Keys of the alerts that ride.
    rides: set[str] = field(default_factory=set)


def _riding(outbox: Sequence[Alert], receivers: Mapping[str, Receiver]) -> _Riding:
    """Which alerts ride with another: receivers on one robot (one webhook) that one
    finding was routed to get one message between them, not one each.

    The receiver listed first in the config carries it, with its own options (keyword,
    secret): those belong to the robot, so receivers on it agree on them, and the first
    one listed is a choice the user can see and change. Templates are the config's, the
    same for every receiver. Who is @-mentioned is the one thing receivers on a robot
    differ in (`ops` and `ops-critical` mention different people), so the message
    mentions everyone each of them would have. Each alert keeps its own key, delivered,
    pending and checkpointed with the one that carries it."""
    order = {name: index for index, name in enumerate(receivers)}
    carriers: dict[tuple[str, str], Alert] = {}
    riding = _Riding()
    ranked = sorted((a for a in outbox if a.receiver in receivers), key=lambda a: order[a.receiver])
    for alert in ranked:
        receiver = receivers[alert.receiver]
        carrier = carriers.setdefault((receiver.robot, alert.fingerprint), alert)
        if carrier is alert or carrier.receiver == alert.receiver:
            continue
        riding.alerts.setdefault(carrier.key, []).append(alert)
        riding.receivers.setdefault(carrier.key, []).append(receiver)
        riding.rides.add(alert.key)
    return riding


class _Stop:
    """Why a receiver's alerts stopped going out this tick."""

    BUDGET = "budget"
    TIME = "time"
    MUTED = "muted"
    DOWN = "down"
    CONFIG = "config"


@dataclass
class _Sender:
    """Sends one message within its robot's budget and the tick's time, and books it."""

    ledger: _Ledger
    deadline: float
    settle: float
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    report: DeliveryReport

    def blocked(self, receiver: Receiver) -> tuple[str, str] | None:
        """Why nothing may be sent to this receiver now (a _Stop and a reason), or None."""
        robot = self.ledger.of(receiver)
        now = self.clock()
        if robot.muted(now):
            until = _utc(robot.blocked_until or 0.0)
            return _Stop.MUTED, f"DingTalk mutes the robot (130101) until {until} UTC"
        if robot.down is not None:
            return _Stop.DOWN, robot.down
        if receiver.name in self.ledger.refused:
            return _Stop.CONFIG, self.ledger.refused[receiver.name]
        if robot.room(receiver.max_per_minute, now) <= 0:
            return _Stop.BUDGET, BUDGET_USED
        if now + receiver.timeout + self.settle > self.deadline:
            return _Stop.TIME, "no time left in this tick"
        return None

    def send(self, receiver: Receiver, message: Message) -> None:
        """Send, counting the attempt against the robot; raises TransportError.

        A 130101 answer mutes the robot in the ledger, whatever was sent."""
        robot = self.ledger.of(receiver)
        robot.sent.append(self.clock())
        self.report.messages += 1
        try:
            receiver.send(message)
        except TransportError as exc:
            if exc.failure is Failure.WITHHELD:
                # Refused before any request: nothing was spent.
                robot.sent.pop()
                self.report.messages -= 1
            if exc.failure is Failure.THROTTLED:
                robot.blocked_until = self.clock() + receiver.block_seconds
            elif exc.failure is Failure.CONFIG:
                self.ledger.refused[receiver.name] = str(exc)
            raise

    def mark_down(self, receiver: Receiver, reason: str) -> None:
        self.ledger.of(receiver).down = reason

    def can_retry(self, receiver: Receiver) -> bool:
        return self.clock() + RETRY_PAUSE + receiver.timeout + self.settle <= self.deadline


def _deliver_to(
    receiver: Receiver,
    alerts: list[Alert],
    planner: Planner,
    send: _Sender,
    on_delivered: Callable[[DeliveryReport], None] | None,
    riders: Mapping[str, Sequence[Alert]] | None = None,
) -> None:
    """Send a receiver's alerts; `riders`, by alert key, are other receivers' alerts of the
    same finding on the same robot, delivered or left pending with it."""
    report = send.report
    riders = riders or {}
    delivered: set[str] = set()
    attempted: set[str] = set()
    refused: set[str] = set()
    dropped: set[str] = set()
    error: str | None = None
    stop: str | None = None
    blocked = send.blocked(receiver)
    queue: deque[Batch] = deque()
    if blocked is not None:
        stop, error = blocked
    else:
        room = send.ledger.of(receiver).room(receiver.max_per_minute, send.clock())
        queue.extend(planner.plan(alerts, room))
    retried = False
    while queue and stop is None:
        blocked = send.blocked(receiver)
        if blocked is not None:
            stop = blocked[0]
            error = error or blocked[1]
            break
        batch = queue.popleft()
        attempted.update(a.key for a in batch.alerts)
        try:
            send.send(receiver, batch.message)
        except TransportError as exc:
            if exc.failure is Failure.WITHHELD:
                _withhold(receiver, batch, planner, queue, dropped, str(exc), report)
                continue
            error = str(exc)
            if exc.failure in (Failure.TOO_LARGE, Failure.BAD_MESSAGE):
                # Refused as such: smaller batches and shorter excerpts isolate
                # and strip whatever DingTalk objects to; the others still go.
                smaller = planner.split(batch)
                if not smaller:
                    refused.add(batch.alerts[0].key)
                    report.problems.append(
                        f"receiver {receiver.name}: DingTalk refuses even the shortest "
                        f"message for {batch.alerts[0].key} ({exc}); it stays pending"
                    )
                queue.extendleft(reversed(smaller))
                continue
            if exc.failure is Failure.THROTTLED:
                stop = _Stop.MUTED
            elif exc.failure is Failure.CONFIG:
                stop = _Stop.CONFIG
            elif not retried and send.can_retry(receiver):
                # Transient: one quick retry in this tick, then leave it for the next.
                retried = True
                send.sleep(RETRY_PAUSE)
                queue.appendleft(batch)
            else:
                stop = _Stop.DOWN
                send.mark_down(receiver, error)
            continue
        delivered.update(a.key for a in batch.alerts)
        report.delivered.extend(batch.alerts)
        report.delivered.extend(r for a in batch.alerts for r in riders.get(a.key, ()))
        if batch.expired:
            report.mentioned[receiver.name] = batch.expired
        if on_delivered is not None:
            report.robots = send.ledger.records()
            on_delivered(report)

    muted = stop == _Stop.MUTED
    left: list[Alert] = []
    for alert in alerts:
        if alert.key in delivered or alert.key in dropped:
            continue
        tried = alert.key in attempted or muted
        for one in (alert, *riders.get(alert.key, ())):
            left.append(replace(one, attempts=one.attempts + 1, last_error=error) if tried else one)
    report.pending.extend(left)
    refused |= {r.key for key in refused for r in riders.get(key, ())}
    waiting = [a for a in left if a.key not in refused]
    if waiting:
        _account(receiver, waiting, stop or _Stop.BUDGET, error, send, delivered)


def _withhold(
    receiver: Receiver,
    batch: Batch,
    planner: Planner,
    queue: deque[Batch],
    dropped: set[str],
    why: str,
    report: DeliveryReport,
) -> None:
    """A batch whose message would carry a secret: its alerts go one by one, and the one
    that carries it is dropped (it can never be sent safely), named by kind, never quoted."""
    if len(batch.alerts) > 1:
        queue.extendleft(reversed(planner.split(batch)))
        return
    alert = batch.alerts[0]
    dropped.add(alert.key)
    report.problems.append(
        f"receiver {receiver.name}: the {alert.kind} alert {alert.key} is dropped: {why}"
    )


def _account(
    receiver: Receiver,
    waiting: list[Alert],
    stop: str,
    error: str | None,
    send: _Sender,
    delivered: set[str],
) -> None:
    """One line on why a receiver's alerts wait: a problem, or a note for a draining backlog."""
    report = send.report
    where = f"receiver {receiver.name} ({receiver.redacted_url})"
    count = f"{len(waiting)} alert(s)"
    if stop == _Stop.CONFIG:
        report.problems.append(
            f"{where}: {error}; check the robot's token, secret and keyword; {count} stay pending"
        )
    elif stop == _Stop.MUTED:
        until = _utc(send.ledger.of(receiver).blocked_until or 0.0)
        report.problems.append(
            f"{where}: DingTalk mutes the robot (130101) until {until} UTC; {count} wait"
        )
    elif stop == _Stop.DOWN:
        report.problems.append(f"{where}: {error}; {count} stay pending for the next tick")
    elif stop == _Stop.TIME:
        report.problems.append(f"{where}: no time left in this tick; {count} stay pending")
    else:
        age = send.clock() - min(a.created_at for a in waiting)
        budget = f"the robot's rate budget ({receiver.max_per_minute} a minute)"
        if age > BACKLOG_SECONDS:
            report.problems.append(
                f"{where}: {count} have waited {age / 60:.0f} min for {budget}; "
                "the backlog is not draining"
            )
        else:
            sent = f" after {len(delivered)} sent" if delivered else ""
            report.notes.append(f"{where}: {count} wait for {budget}{sent}")


def _announce(notice: Notice, receivers: Mapping[str, Receiver], send: _Sender) -> str | None:
    why: list[str] = []
    for name in notice.receivers:
        receiver = receivers.get(name)
        if receiver is None:
            continue
        blocked = send.blocked(receiver)
        if blocked is not None:
            why.append(f"{name}: {blocked[1]}")
            continue
        try:
            send.send(receiver, notice.message)
        except TransportError as exc:
            if exc.failure is Failure.WITHHELD:
                # Whoever else would take it, it would carry the same secret.
                why.append(f"{name}: {exc}")
                break
            if exc.failure is Failure.RETRY:
                send.mark_down(receiver, str(exc))
            why.append(f"{name}: {exc}")
            continue
        send.report.announced.append((notice, name))
        return name
    send.report.unannounced.append((notice, "; ".join(why) or "no receiver to tell"))
    return None


def _utc(when: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(when))
