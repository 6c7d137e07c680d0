"""When the monitor itself cannot work, it says so: in every summary, and once to ops."""

from __future__ import annotations

from schedulerx_alert.support.credentials import Credentials
from tests.world import AK, STS, World


def test_rejected_credentials_are_announced_once_then_the_recovery(world: World) -> None:
    good = world.credentials
    world.credentials = Credentials(AK, "not-the-secret", STS)
    world.sx.add_instance(92583, status=5)
    for tick in range(1, 5):
        summary = world.tick()
        assert summary.status == "failed" and summary.alerts_new == 0
        assert any("rejects the function's credentials" in p for p in summary.problems)
        assert len(world.texts()) == (0 if tick < 3 else 1), f"tick {tick}"
        world.advance(60)
    assert "告警功能异常" in world.texts()[0] and "SignatureDoesNotMatch" in world.texts()[0]
    world.credentials = good
    healed = world.tick()
    assert healed.status == "ok" and healed.alerts_sent == 1
    texts = world.texts()
    assert len(texts) == 3 and any("告警功能已恢复" in t for t in texts[1:])


def test_every_job_failing_counts_as_broken_after_the_configured_ticks(world: World) -> None:
    world.raw["health"] = {"receiver": "ops", "impaired_after": 2}
    world.sx.fail_next("5xx", times=100)
    world.tick()
    world.advance(60)
    second = world.tick()
    assert any("every job's listing failed (2)" in p for p in second.problems)
    [text] = world.texts()
    assert "已连续 2 次" in text


def test_one_job_that_cannot_be_listed_is_a_monitor_deaf_to_it(world: World) -> None:
    # Its failures go unannounced as surely as if every job failed: it counts.
    world.raw["health"] = {"receiver": "ops", "impaired_after": 2}
    world.sx.fail_next("5xx", times=100, job_id=92584)
    first = world.tick()
    assert first.status == "degraded" and world.texts() == []
    world.advance(60)
    second = world.tick()
    assert second.status == "degraded" and second.broken_ticks == 2
    [text] = world.texts()
    assert "1 of 2 job(s) could not be listed" in text and "92584" in text


def test_no_credentials_at_all_is_explained(world: World) -> None:
    world.credentials = None  # type: ignore[assignment]
    summary = world.tick()
    assert summary.status == "failed"
    assert any("no credentials" in p for p in summary.problems)
