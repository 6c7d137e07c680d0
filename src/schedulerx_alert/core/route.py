"""Which receivers an alert goes to, and why: the watch entry's receivers, then `routes:`.

Routes are tried in order; the first that matches adds its receivers and ends the
walk, unless it says `continue: true`. A receiver reached twice is listed once,
with the first reason. Pure: the caller supplies the subject and the config's parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from schedulerx_alert.core.silence import Matcher, Subject

Outcome = Literal["matched", "no match", "not reached"]


@dataclass(frozen=True)
class Route:
    matcher: Matcher
    receivers: tuple[str, ...]
    continue_: bool = False  # `continue: true` in the config; `continue` is a keyword here
    name: str | None = None  # `name:`, for quiet hours' `except_routes`


@dataclass(frozen=True)
class Step:
    """One route's part in a decision, for `schedulerx-alert routes`."""

    index: int
    route: Route
    outcome: Outcome
    why: str

    @property
    def label(self) -> str:
        return f"routes[{self.index}] ({self.route.matcher.describe()})"


def trace(subject: Subject, routes: Sequence[Route]) -> list[Step]:
    """Every route's outcome for this subject, in order."""
    steps: list[Step] = []
    stopped_by: int | None = None
    for index, route in enumerate(routes):
        if stopped_by is not None:
            why = f"routes[{stopped_by}] matched and does not continue"
            steps.append(Step(index, route, "not reached", why))
            continue
        mismatch = route.matcher.mismatch(subject)
        if mismatch is not None:
            steps.append(Step(index, route, "no match", mismatch))
            continue
        steps.append(Step(index, route, "matched", "continue: true" if route.continue_ else ""))
        if not route.continue_:
            stopped_by = index
    return steps


def routes_to(subject: Subject, receiver: str, routes: Sequence[Route]) -> frozenset[str]:
    """The names of the routes that send this subject's alerts to `receiver`."""
    return frozenset(
        step.route.name
        for step in trace(subject, routes)
        if step.outcome == "matched" and step.route.name and receiver in step.route.receivers
    )


def resolve(
    subject: Subject,
    watch_receivers: Sequence[tuple[int, Sequence[str]]],
    routes: Sequence[Route],
) -> list[tuple[str, str]]:
    """(receiver, reason) pairs, without duplicates.

    `watch_receivers` holds (index in `watch:`, receiver names) for each watch
    entry that holds the job: its receivers come first, as they always did.
    """
    result: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(receivers: Sequence[str], reason: str) -> None:
        for receiver in receivers:
            if receiver not in seen:
                seen.add(receiver)
                result.append((receiver, reason))

    for index, receivers in watch_receivers:
        add(receivers, f"watch[{index}]")
    for step in trace(subject, routes):
        if step.outcome == "matched":
            add(step.route.receivers, step.label)
    return result
