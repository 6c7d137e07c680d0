"""The planner when the quota cannot pay for every group's newest window each tick and the
scans every ten minutes (issue 22, 100 groups at 90 calls a minute): no window waits two
ticks running, the scans are stretched and the tick says so, and once the quota is enough
again the scans come back to ten minutes."""

from __future__ import annotations

from dataclasses import replace

from schedulerx_alert.config import Config, parse_config
from schedulerx_alert.core.polling import GroupCursor, GroupKey, ServerFacts, SourceState
from schedulerx_alert.sources.plan import (
    DUE,
    SCAN_INTERVAL,
    SCAN_STRETCH_LIMIT,
    Budget,
    GroupRead,
    Plan,
    make_plan,
)
from tests.world import START

NS = "ns"
GROUPS = [f"g{n:03d}" for n in range(100)]
END = ServerFacts(fields=("end",))


def many() -> Config:
    return parse_config(
        {
            "region": "cn-hangzhou",
            "state": {"url": "file:///tmp/state.json"},
            "receivers": [
                {"name": "ops", "webhook": "https://oapi.dingtalk.com/robot/send?access_token=t"}
            ],
            "watch": [
                # A rule that reads runs not ended yet: the scans are wanted.
                {
                    "namespace": NS,
                    "group": g,
                    "jobs": "all",
                    "receivers": ["ops"],
                    "stuck_after": "5m",
                }
                for g in GROUPS
            ],
        },
        {},
    )


def run_as_planned(plan: Plan) -> dict[GroupKey, GroupCursor]:
    """What the executor leaves when every call the plan chose is made and each window
    fits its calls: windows chosen are read to the end, scans chosen are made."""
    cursors = dict(plan.cursors)
    for task in plan.tasks(DUE):
        if isinstance(task, GroupRead):
            cursor = cursors[task.group]
            if task.spans:
                cursor = replace(cursor, spans=())
            if task.scan:
                cursor = replace(cursor, scanned_at=plan.now)
            cursors[task.group] = cursor
    return cursors


def test_a_short_quota_reads_every_window_every_second_tick_and_stretches_the_scans() -> None:
    config = many()
    now = START + 3600.0
    # The steady state of a quota that was enough: read last tick, scans spread over ten
    # minutes.
    cursors = {
        (NS, g): GroupCursor(
            covered=now - 60, scanned_at=now - 60 * (1 + n % 10), since=START, floor=None
        )
        for n, g in enumerate(GROUPS)
    }
    waited: dict[GroupKey, int] = {}
    last_scan = {g: c.scanned_at or 0.0 for g, c in cursors.items()}
    longest_unscanned = 0.0
    for tick in range(60):
        # What the sliding minute has left when a tick starts varies with the last tick's
        # calls (sources/fetch.py paces them).
        calls = (90, 80, 85, 75)[tick % 4]
        plan = make_plan(
            config, SourceState(server=END, groups=cursors), {}, {}, (), now, Budget(calls, 90)
        )
        chosen = [t for t in plan.tasks(DUE) if isinstance(t, GroupRead)]
        # (A read is planned if its first call fits: it may stop after any call.)
        assert sum(t.cost for t in chosen) <= calls + 2
        read = {t.group for t in chosen if t.spans}
        for group in cursors:
            waited[group] = 0 if group in read else waited.get(group, 0) + 1
            # A window may wait a tick, never two running.
            assert waited[group] <= 1, (tick, group)
        for t in chosen:
            if t.scan:
                last_scan[t.group] = now
        longest_unscanned = max(longest_unscanned, max(now - at for at in last_scan.values()))
        if tick >= 10:
            # Scans due under ten minutes wait: said, with what it costs.
            [problem] = plan.problems
            assert "stretched from every 10 min to about every 25 min" in problem
            assert "stuck, long and waiting runs may be seen up to 15 min later" in problem
            assert f"{NS}/g" in problem
        cursors = run_as_planned(plan)
        now += 60
    # Stretched, never dropped: every group is still scanned, within the stretch's bound.
    assert SCAN_INTERVAL < longest_unscanned <= SCAN_STRETCH_LIMIT

    # The quota raised: scans come back to ten minutes (spread), and nothing is said.
    last_scan = {g: c.scanned_at or 0.0 for g, c in cursors.items()}
    for tick in range(40):
        plan = make_plan(
            config, SourceState(server=END, groups=cursors), {}, {}, (), now, Budget(200, 90)
        )
        assert not plan.problems
        assert {t.group for t in plan.tasks(DUE) if isinstance(t, GroupRead) and t.spans} == set(
            cursors
        )
        for task in plan.tasks(DUE):
            if isinstance(task, GroupRead) and task.scan:
                last_scan[task.group] = now
        if tick >= 30:  # the stretched backlog spread out
            assert max(now - at for at in last_scan.values()) <= SCAN_INTERVAL + 60
        cursors = run_as_planned(plan)
        now += 60


def test_where_the_window_may_be_on_the_start_time_the_scans_are_not_stretched() -> None:
    # There the scan is how far a window reaches back: ten minutes however short the quota.
    config = many()
    now = START + 3600.0
    cursors = {
        (NS, g): GroupCursor(covered=now - 60, scanned_at=now - 60 * (1 + n % 10), since=START)
        for n, g in enumerate(GROUPS)
    }
    server = ServerFacts(fields=("start", "end"))
    plan = make_plan(
        config, SourceState(server=server, groups=cursors), {}, {}, (), now, Budget(90, 90)
    )
    assert not plan.problems
    scanning = {t.group for t in plan.tasks(DUE) if isinstance(t, GroupRead) and t.scan}
    assert (NS, GROUPS[9]) in scanning  # scanned ten minutes ago


def test_first_scans_wait_their_turn_when_the_quota_is_short() -> None:
    # A first tick on a server known to filter on the end time (a new deploy, the state
    # kept): each group's first scan with its first window would take three calls, and
    # the windows of the last groups would wait three ticks for them.
    config = many()
    now = START + 3600.0
    plan = make_plan(config, SourceState(server=END), {}, {}, (), now, Budget(90, 90))
    chosen = [t for t in plan.tasks(DUE) if isinstance(t, GroupRead)]
    scans = [t for t in chosen if t.scan]
    windows = [t for t in chosen if t.spans]
    assert all(not t.spans and t.first for t in scans)
    assert len(scans) == 4 and len(windows) == 90 - 2 * 4
    # Paid for first, made after the windows that waited (a first window reads the past).
    assert chosen == [*windows, *scans]
    [problem] = plan.problems
    assert "96 group(s) wait for their scan" in problem and "never scanned" in problem
