"""Groups watched whole on the loopback SchedulerX, for the planner's stories: one call at
a time (which group a thread reaches first must not decide a story), on a server whose
window is on the end time, each group's newest window its own."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tests.world import NS, START, World

# Two days before the first tick: history no window reaches.
OLD = START - 2 * 86400
SUCCESS = 4


def watch_groups(
    world: World,
    groups: Iterable[str],
    quota: int | None = None,
    history_of: int | None = None,
    **rules: Any,
) -> None:
    """Watch every job of `groups` with `rules`, and give `history_of`'s group a full page
    of old runs, so the largest page is learnt at once (as in any real group) and not by
    asking for a second page of every window."""
    world.raw["watch"] = [
        {"namespace": NS, "group": group, "jobs": "all", "receivers": ["ops"], **rules}
        for group in groups
    ]
    world.raw["shared_cause"] = False
    limit = {} if quota is None else {"max_calls_per_minute": quota}
    world.raw["schedulerx"] = {"endpoint": world.sx.url, "concurrency": 1, **limit}
    world.sx.configure(window_field="end")
    if history_of is None:
        return
    for _ in range(100):
        world.sx.add_instance(history_of, status=SUCCESS, schedule_time=OLD, end_time=OLD + 60)
