"""A small world for stories: SchedulerX, DingTalk and OSS on loopback, and the
real product wired to them with nothing but endpoints changed.

Used by the scenario tests and by `make demo`.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from schedulerx_alert.config import Config, parse_config
from schedulerx_alert.core.catalog import JobInfo
from schedulerx_alert.core.model import JobKey
from schedulerx_alert.handler import build_edges
from schedulerx_alert.support.credentials import Credentials
from schedulerx_alert.tick import TickSummary, run_tick
from tests.fakes.base import ManualClock
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.oss import FakeOss
from tests.fakes.schedulerx import FakeSchedulerX

AK = "LTAI5tTestAccessKeyId"
SK = "test-access-key-secret-0123456789"
STS = "CAIS-test-sts-token-0123456789abcdef"
ROBOT = "ops-robot-access-token-0123456789"
ROBOT_SECRET = "SEC0123456789abcdef0123456789abcdef"
NS = "adcfc35d-e2fe-4fe9-bbaa-20e90ffc1234"
GROUP = "testSchedulerx.defaultGroup"
# 2026-11-25 10:00:00 Asia/Shanghai
START = 1795572000.0
SECRETS = (AK, SK, STS, ROBOT, ROBOT_SECRET)


class World:
    def __init__(
        self,
        root: Path,
        *,
        jobs: tuple[int, ...] = (92583, 92584),
        state: str = "file",
        clock: Callable[[], float] | None = None,
        real_time: bool = False,
    ) -> None:
        self.root = root
        self.clock: Any = clock or (time.time if real_time else ManualClock(START))
        self.credentials = Credentials(AK, SK, STS)
        self.sx = FakeSchedulerX(
            access_key_id=AK, access_key_secret=SK, security_token=STS, clock=self.clock
        ).start()
        self.dt = FakeDingTalk(clock=self.clock).start()
        self.oss: FakeOss | None = None
        if state == "oss":
            # OSS signatures carry the real date (the OSS client reads time.time).
            self.oss = FakeOss(AK, SK, STS, buckets=("alert-bucket",)).start()
        self.dt.add_robot(ROBOT, secret=ROBOT_SECRET)
        # What SchedulerX says about the jobs themselves (schedule, timeout), handed to
        # the tick as discovery will (tick.catalog_of); empty: no job has a schedule.
        self.catalog: dict[JobKey, JobInfo] = {}
        # The function's environment variables the config reads (`${VAR}`, actions' keys).
        self.env: dict[str, str] = {}
        for job_id in jobs:
            self.sx.add_job(NS, GROUP, job_id, name=f"job-{job_id}")
        self.raw: dict[str, Any] = {
            "region": "cn-hangzhou",
            # The fakes speak http on 127.0.0.1, which a config must allow in so many words.
            "allow_loopback_http": True,
            "schedulerx": {"endpoint": self.sx.url},
            "state": self._state_section(state),
            "dingtalk": {"allowed_hosts": ["127.0.0.1"]},
            "receivers": [
                {
                    "name": "ops",
                    "webhook": self.dt.webhook(ROBOT),
                    "secret": ROBOT_SECRET,
                }
            ],
            "watch": [{"namespace": NS, "group": GROUP, "jobs": list(jobs), "receivers": ["ops"]}],
        }

    def _state_section(self, state: str) -> dict[str, str]:
        if self.oss is not None:
            return {
                "url": "oss://alert-bucket/schedulerx-alert/state.json",
                "endpoint": self.oss.url,
            }
        return {"url": f"file://{self.root / 'state' / 'state.json'}"}

    @property
    def state_path(self) -> Path:
        return self.root / "state" / "state.json"

    def config(self, **changes: Any) -> Config:
        raw = copy.deepcopy(self.raw)
        raw.update(changes)
        return parse_config(raw, self.env, "world", self.root)

    def tick(
        self, *, dry_run: bool = False, timeout: float = 60.0, owner: str = "tick", **changes: Any
    ) -> TickSummary:
        config = self.config(**changes)
        sleep = self.clock.advance if isinstance(self.clock, ManualClock) else time.sleep
        edges = build_edges(
            config, self.credentials, timeout, owner, self.clock, sleep, self.root / "local"
        )
        if self.catalog:
            catalog = dict(self.catalog)
            edges.catalog = lambda _state: catalog
        return run_tick(config, edges, dry_run=dry_run)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def texts(self, token: str = ROBOT) -> list[str]:
        return self.dt.texts(token)

    def close(self) -> None:
        for fake in (self.sx, self.dt, self.oss):
            if fake is not None:
                fake.stop()

    def __enter__(self) -> World:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
