"""Never "ok" while deaf: a tick that could not poll, send or remember says so,
logs it at ERROR, and counts toward the impaired alert, which itself spends the
robot's budget like any other message."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import index
from schedulerx_alert.cli.main import main as cli
from schedulerx_alert.core.state import load_state
from schedulerx_alert.support.credentials import Credentials
from tests.fakes.base import ManualClock, Request, Response
from tests.fakes.schedulerx import FakeSchedulerX
from tests.test_handler import TIMER_EVENT, context, write_config
from tests.world import AK, GROUP, NS, ROBOT, ROBOT_SECRET, STS, World

TEAM = "team-robot-access-token-9876543210"
IMPAIRED = "告警功能异常"
RECOVERED = "告警功能已恢复"


def failing_jobs(world: World, count: int, first: int = 5000) -> None:
    # Errors that differ in the job id only are a shared cause; these stories count
    # messages against the robot's budget, one per failure.
    world.raw["shared_cause"] = False
    rule = world.raw["watch"][0]
    ids = list(range(first, first + count))
    rule["jobs"] = rule["jobs"] + ids
    for job_id in ids:
        world.sx.add_job(NS, GROUP, job_id)
        world.sx.add_instance(job_id, status=5, result=f"job {job_id} broke")


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


# -- 1. the tick's time budget follows the function's timeout ------------------------------


@pytest.mark.parametrize("timeout", [3, 8, 10])
def test_a_short_function_timeout_still_polls_every_job_and_alerts(
    world: World, timeout: int
) -> None:
    world.sx.add_instance(92583, status=5)
    summary = world.tick(timeout=timeout)
    assert (summary.status, summary.polled, summary.deferred) == ("ok", 2, 0)
    assert summary.alerts_sent == 1 and len(world.texts()) == 1


def test_a_schedulerx_timeout_longer_than_the_tick_allows_is_scaled_down(world: World) -> None:
    world.raw["schedulerx"] = {"endpoint": world.sx.url, "timeout_seconds": 40}
    world.sx.add_instance(92583, status=5)
    summary = world.tick(timeout=60)
    assert (summary.status, summary.polled, summary.alerts_sent) == ("ok", 2, 1)


class SlowSchedulerX(FakeSchedulerX):
    """Each answer takes 0.2 s of (simulated) time."""

    def _handle(self, request: Request) -> Response:
        assert isinstance(self.clock, ManualClock)
        self.clock.advance(0.2)
        return super()._handle(request)


@pytest.fixture
def slow_world(tmp_path: Path) -> Iterator[World]:
    jobs = tuple(range(100, 112))
    with World(tmp_path, jobs=jobs) as world:
        world.sx.stop()
        world.sx = SlowSchedulerX(
            access_key_id=AK,
            access_key_secret=world.credentials.access_key_secret,
            security_token=STS,
            clock=world.clock,
        ).start()
        for job_id in jobs:
            world.sx.add_job(NS, GROUP, job_id)
        # Each job polled on its own (the loop group queries replace): deferral per job.
        world.raw["schedulerx"] = {
            "endpoint": world.sx.url,
            "concurrency": 1,
            "query": "every_job",
        }
        yield world


def test_a_3s_function_polls_a_handful_and_is_degraded_for_the_rest_until_ops_hears(
    slow_world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world = slow_world
    world.raw["health"] = {"receiver": "ops", "impaired_after": 2}
    world.sx.add_instance(100, status=5)
    first = world.tick(timeout=3)
    assert 3 <= first.polled < 12 and first.deferred == 12 - first.polled
    assert first.status == "degraded" and first.alerts_sent == 1 and first.broken_ticks == 1
    [line] = [e for e in errors_logged(caplog) if "not polled" in e]
    assert f"{first.deferred} of 12 job(s) not polled this tick (no time left" in line
    world.advance(60)
    second = world.tick(timeout=3)
    assert second.status == "degraded" and second.broken_ticks == 2
    # The deferred jobs went first; the group hears why some are not watched.
    assert second.polled >= 3
    alert, impaired = world.texts()
    assert "100" in alert and IMPAIRED in impaired and "not polled" in impaired


def test_jobs_left_unpolled_by_the_quota_make_the_tick_degraded(world: World) -> None:
    world.raw["schedulerx"] = {"endpoint": world.sx.url, "max_calls_per_minute": 1}
    summary = world.tick()
    assert (summary.polled, summary.deferred, summary.status) == (1, 1, "degraded")
    assert "schedulerx.max_calls_per_minute" in summary.problems[0]


def test_a_function_timeout_too_short_for_one_call_fails_the_tick_naming_the_settings(
    world: World,
) -> None:
    world.sx.add_instance(92583, status=5)
    summary = world.tick(timeout=1)
    assert (summary.status, summary.polled) == ("failed", 0)
    problem = summary.problems[0]
    assert problem.startswith("nothing can be polled in a 1s function timeout")
    assert "schedulerx.timeout_seconds" in problem and "dingtalk.timeout_seconds" in problem


def test_validate_refuses_a_function_timeout_in_which_nothing_can_be_polled(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(world.raw), encoding="utf-8")
    assert cli(["validate", "--config", str(path), "--timeout", "1"]) == 2
    err = capsys.readouterr().err
    assert "nothing can be polled in a 1s function timeout" in err
    assert "schedulerx.timeout_seconds" in err
    assert cli(["validate", "--config", str(path), "--timeout", "3"]) == 0
    assert cli(["validate", "--config", str(path)]) == 0
    # Shorter calls fit a shorter function.
    world.raw["schedulerx"] = {"endpoint": world.sx.url, "timeout_seconds": 0.2}
    world.raw["dingtalk"] = {"allowed_hosts": ["127.0.0.1"], "timeout_seconds": 0.2}
    world.raw["state"]["timeout_seconds"] = 0.2
    path.write_text(yaml.safe_dump(world.raw), encoding="utf-8")
    assert cli(["validate", "--config", str(path), "--timeout", "1"]) == 0


# -- 2. alerts that cannot be delivered ---------------------------------------------------


@pytest.mark.parametrize("outage", ["503", "timeout", "refused", "muted"])
def test_a_robot_that_cannot_take_alerts_makes_every_tick_degraded_and_counts(
    world: World, outage: str, caplog: pytest.LogCaptureFixture
) -> None:
    world.raw["dingtalk"] = {"allowed_hosts": ["127.0.0.1"], "timeout_seconds": 0.3}
    world.sx.add_instance(92583, status=5)
    words = {
        "503": "HTTP 503",
        "timeout": "timed out",
        "refused": "network error",
        "muted": "130101",
    }[outage]
    if outage == "503":
        world.dt.set_down(True)
    elif outage == "timeout":
        world.dt.fail_next("timeout", times=100, seconds=0.6)
    elif outage == "refused":
        world.dt.refuse()
    else:
        world.dt.mute(ROBOT)
    for tick in range(1, 5):
        caplog.clear()
        summary = world.tick()
        assert (summary.status, summary.alerts_pending) == ("degraded", 1), tick
        assert summary.broken_ticks == tick
        [line] = [e for e in errors_logged(caplog) if e.startswith("receiver ops")]
        assert words in line and "1 alert(s)" in line and "access_token=***" in line
        world.advance(60)
    assert load_state(world.state_path.read_bytes()).health.broken_ticks == 4


def test_when_the_ops_robot_is_down_another_receiver_hears_that_alerting_is_impaired(
    world: World,
) -> None:
    world.dt.add_robot(TEAM)
    world.raw["receivers"].append({"name": "team", "webhook": world.dt.webhook(TEAM)})
    world.raw["health"] = {"receiver": "ops", "impaired_after": 2}
    world.sx.add_instance(92583, status=5)
    world.dt.fail_next("5xx", times=100, token=ROBOT)
    world.tick()
    world.advance(60)
    second = world.tick()
    assert second.status == "degraded" and "told team that alerting is impaired" in second.notes
    [told] = world.texts(TEAM)
    assert IMPAIRED in told and "HTTP 502" in told
    world.dt.faults.clear()
    world.advance(60)
    healed = world.tick()
    assert (healed.status, healed.alerts_sent) == ("ok", 1)
    alert, recovered = world.texts()
    assert "92583" in alert and RECOVERED in recovered


def test_a_rate_limit_backlog_is_a_note_while_it_drains_and_a_problem_after_ten_minutes(
    world: World,
) -> None:
    world.raw["dingtalk"] = {
        "allowed_hosts": ["127.0.0.1"],
        "max_per_minute": 1,
        "summary_threshold": 20,
    }
    failing_jobs(world, 13)
    for minute in range(11):
        summary = world.tick()
        assert (summary.status, summary.alerts_sent) == ("ok", 1), minute
        assert any("wait for the robot's rate budget (1 a minute)" in n for n in summary.notes)
        world.advance(60)
    late = world.tick()
    assert (late.status, late.alerts_sent, late.alerts_pending) == ("degraded", 1, 1)
    assert "1 alert(s) have waited 11 min" in late.problems[0]
    assert "not draining" in late.problems[0]


# -- 3. the health notice spends the robot's budget ---------------------------------------


def test_the_health_notice_waits_for_room_in_the_robots_minute_instead_of_a_mute(
    world: World,
) -> None:
    # Twenty alerts, one message each, fill ops' minute; a second receiver's wrong
    # secret makes the monitor impaired in the same tick.
    world.dt.add_robot(TEAM, secret="SECthe-right-one")
    world.raw["receivers"].append(
        {"name": "team", "webhook": world.dt.webhook(TEAM), "secret": "SECa-wrong-one"}
    )
    world.raw["watch"].append(
        {"namespace": NS, "group": GROUP, "jobs": [92584], "receivers": ["team"]}
    )
    world.raw["watch"][0]["jobs"] = [92583]
    world.raw["dingtalk"] = {
        "allowed_hosts": ["127.0.0.1"],
        "max_per_minute": 20,
        "summary_threshold": 20,
    }
    world.raw["health"] = {"receiver": "ops", "impaired_after": 1}
    failing_jobs(world, 20)
    world.sx.add_instance(92584, status=5)
    first = world.tick()
    assert first.alerts_sent == 20 and len(world.texts()) == 20
    assert world.dt.muted_until(ROBOT) == 0, "the health notice was the 21st message"
    [unsent] = [p for p in first.problems if p.startswith("could not tell anyone")]
    assert "ops: rate budget for this minute used up" in unsent and "team: " in unsent
    world.advance(60)
    second = world.tick()
    assert "told ops that alerting is impaired" in second.notes
    assert IMPAIRED in world.texts()[-1] and "310000" in world.texts()[-1]
    assert world.dt.muted_until(ROBOT) == 0


def test_a_130101_answer_to_the_health_notice_is_recorded_and_respected(world: World) -> None:
    world.raw["health"] = {"receiver": "ops", "impaired_after": 1}
    world.credentials = Credentials(AK, "not-the-secret", STS)
    world.dt.mute(ROBOT)
    first = world.tick()
    assert any("130101" in p for p in first.problems)
    [robot] = load_state(world.state_path.read_bytes()).robots.values()
    assert robot.blocked_until is not None and robot.blocked_until > world.clock()
    for _ in range(5):
        world.advance(60)
        world.tick()
    assert len(world.dt.requests) == 1, "sent to a robot DingTalk had muted"


# -- 11. one robot, one budget ------------------------------------------------------------


def test_two_receivers_on_one_robot_share_its_budget_and_its_record(world: World) -> None:
    world.raw["receivers"].append(
        {"name": "team", "webhook": world.dt.webhook(ROBOT), "secret": ROBOT_SECRET}
    )
    # In two rules: one rule naming both would post each alert twice, and is refused.
    world.raw["watch"].append({"namespace": NS, "group": GROUP, "jobs": [], "receivers": ["team"]})
    world.raw["dingtalk"] = {"allowed_hosts": ["127.0.0.1"], "summary_threshold": 20}
    failing_jobs(world, 24)
    world.raw["watch"][1]["jobs"] = world.raw["watch"][0]["jobs"][-12:]
    del world.raw["watch"][0]["jobs"][-12:]
    first = world.tick()
    # 24 single messages wanted, 18 a minute allowed for the one robot behind both.
    assert (first.messages, first.alerts_sent, first.alerts_pending) == (18, 18, 6)
    assert first.status == "ok" and any(
        "wait for the robot's rate budget" in n for n in first.notes
    )
    assert world.dt.muted_until(ROBOT) == 0
    stored = world.state_path.read_text(encoding="utf-8")
    assert ROBOT not in stored
    [key] = load_state(stored.encode()).robots
    assert key not in ("ops", "team")
    world.advance(60)
    assert world.tick().alerts_sent == 6
    assert world.dt.muted_until(ROBOT) == 0


def test_a_state_that_kept_robots_by_receiver_name_still_limits_the_robot(world: World) -> None:
    """Not a defect: states written before robots had their own key keep counting."""
    world.raw["dingtalk"] = {"allowed_hosts": ["127.0.0.1"], "summary_threshold": 20}
    failing_jobs(world, 18)
    assert world.tick().messages == 18
    doc = json.loads(world.state_path.read_bytes())
    doc["robots"] = {"ops": next(iter(doc["robots"].values()))}
    world.state_path.write_text(json.dumps(doc), encoding="utf-8")
    world.advance(10)
    failing_jobs(world, 2, first=6000)
    later = world.tick()
    assert (later.messages, later.alerts_pending) == (0, 2)
    assert world.dt.muted_until(ROBOT) == 0


# -- 20. a state that cannot be read ------------------------------------------------------


def test_oss_state_without_credentials_fails_clearly_and_counts_on_the_instance(
    oss_world: World,
) -> None:
    world = oss_world
    good = world.credentials
    world.credentials = None  # type: ignore[assignment]
    for tick in range(1, 4):
        summary = world.tick()
        assert summary.status == "failed" and summary.broken_ticks == tick
        assert summary.problems[0] == (
            "state unusable: OSS state needs credentials, and none were found"
        )
        assert any(p.startswith("no credentials") for p in summary.problems)
        world.advance(60)
    [impaired] = world.texts()
    assert IMPAIRED in impaired and "credentials" in impaired
    world.credentials = good
    world.sx.add_instance(92583, status=5)
    healed = world.tick()
    assert (healed.status, healed.alerts_sent) == ("ok", 1)
    assert RECOVERED in world.texts()[-1]
    assert not list((world.root / "local").iterdir()), "the local record outlived the outage"


def test_an_unreadable_oss_state_is_announced_after_the_configured_ticks(
    oss_world: World,
) -> None:
    world = oss_world
    assert world.oss is not None
    world.raw["state"]["timeout_seconds"] = 0.3
    world.oss.fail_next("403", times=1000, op="read")
    for _ in range(3):
        assert world.tick().status == "failed"
        world.advance(60)
    [impaired] = world.texts()
    assert IMPAIRED in impaired and "AccessDenied" in impaired


def test_the_handler_reports_oss_state_without_credentials_instead_of_raising(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with World(tmp_path, state="oss", real_time=True) as world:
        write_config(world, tmp_path, monkeypatch)
        for name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"):
            monkeypatch.delenv(name, raising=False)
        # The per-instance record goes to the system temp dir; keep this test's apart.
        monkeypatch.setenv("TMPDIR", str(tmp_path))
        monkeypatch.setattr(tempfile, "tempdir", None)
        summary = json.loads(index.handler(TIMER_EVENT, context(credentials=False)))
        assert summary["status"] == "failed" and summary["broken_ticks"] == 1
        assert "OSS state needs credentials" in summary["problems"][0]
