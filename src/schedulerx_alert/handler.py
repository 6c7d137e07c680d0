"""Wiring: config + credentials + FC context -> edges -> one tick -> JSON summary."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from schedulerx_alert.config import Config, ConfigError, load_config, show
from schedulerx_alert.config.source import CONFIG_ENV, Loaded, OssLocation, config_location
from schedulerx_alert.config.timing import CALL_SHARE, DEPLOYED_TIMEOUT, MIN_CALL_SECONDS, Timing
from schedulerx_alert.delivery.channels.dingtalk import DingTalkReceiver, Receiver
from schedulerx_alert.delivery.render import Renderer
from schedulerx_alert.sources.schedulerx import SchedulerXClient
from schedulerx_alert.storage.fallback import LocalHealthFile
from schedulerx_alert.storage.store import StateStore, StoreError, open_state_store
from schedulerx_alert.support import process_log as logs
from schedulerx_alert.support.credentials import Credentials, resolve_credentials
from schedulerx_alert.support.redact import Redactor, Screen
from schedulerx_alert.tick import Edges, TickSummary, run_tick

if TYPE_CHECKING:
    from schedulerx_alert.storage.config_object import ConfigCache

log = logging.getLogger("schedulerx_alert")
__all__ = ["CONFIG_ENV", "Instance", "build_edges", "handle", "run"]


@dataclass
class Instance:
    """What an FC instance keeps between invocations: its temp dir (FC keeps /tmp
    while the instance lives) and the OSS configs it has read, by URL."""

    local_dir: Path | None = None
    configs: dict[str, ConfigCache] = field(default_factory=dict)  # by URL

    @property
    def directory(self) -> Path:
        return self.local_dir or Path(tempfile.gettempdir())

    def load_config(
        self, default_dir: Path, credentials: Credentials | None, timeout: float
    ) -> Loaded:
        """The config to run this tick with; raises ConfigError when there is none."""
        location = config_location(default_dir)
        if not isinstance(location, OssLocation):
            return Loaded(load_config(location))
        from schedulerx_alert.storage.config_object import ConfigCache, OssConfigObject

        cache = self.configs.get(location.url)
        if cache is None:
            cache = self.configs[location.url] = ConfigCache(location, default_dir, self.directory)
        # No config yet to say how long a call may take: the timing's rule for a 5 s call.
        call = min(5.0, max(MIN_CALL_SECONDS, timeout * CALL_SHARE))
        return cache.load(
            lambda: OssConfigObject.connect(location, credentials, os.environ, call), os.environ
        )


# This process's instance; the handler's default.
INSTANCE = Instance()


def secrets_of(config: Config | None, credentials: Credentials | None) -> list[str | None]:
    secrets: list[str | None] = []
    if credentials is not None:
        secrets += [
            credentials.access_key_id,
            credentials.access_key_secret,
            credentials.security_token,
        ]
    if config is not None:
        for receiver in config.receivers.values():
            secrets.append(receiver.secret)
            secrets += parse_qs(urlsplit(receiver.webhook).query).get("access_token", [])
        if config.actions is not None:
            secrets += config.actions.keys
    return secrets


def screen_of(config: Config, credentials: Credentials | None) -> Screen:
    """What no message may carry: every robot's token and secret, the action signing
    keys, the AccessKey secret and the STS token (the key id is no secret)."""
    secrets: list[tuple[str, str | None]] = []
    for receiver in config.receivers.values():
        secrets += [("a robot access token", receiver.access_token)]
        secrets += [("a robot secret", receiver.secret)]
    if config.actions is not None:
        secrets += [("an action signing key", key) for key in config.actions.keys]
    if credentials is not None:
        secrets += [("the AccessKey secret", credentials.access_key_secret)]
        secrets += [("the STS token", credentials.security_token)]
    return Screen(secrets)


def build_edges(
    config: Config,
    credentials: Credentials | None,
    timeout: float = DEPLOYED_TIMEOUT,
    owner: str = "local",
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    local_dir: Path | None = None,
    config_problem: str | None = None,
) -> Edges:
    """The tick's edges; never raises for a missing credential (the tick reports it).

    `local_dir` keeps the per-instance health record (default: the system's
    temp dir, which FC keeps across warm invocations)."""
    timing = Timing.of(config, timeout)
    store: StateStore | None = None
    key = ""
    store_problem = None
    try:
        store, key = open_state_store(config, credentials, timing.store_call)
    except StoreError as exc:
        store_problem = str(exc)
    client = None
    problem = None
    if credentials is None:
        problem = (
            "no credentials: give the function a role (FC passes STS credentials) "
            "or set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET"
        )
    else:
        client = SchedulerXClient(
            config.schedulerx.endpoint,
            config.region,
            credentials,
            config.zone,
            timing.schedulerx_call,
            clock=clock,
        )
    screen = screen_of(config, credentials)
    receivers: dict[str, Receiver] = {
        name: DingTalkReceiver(
            rc,
            timing.dingtalk_call,
            clock=clock,
            max_per_minute=config.dingtalk.max_per_minute,
            screen=screen,
        )
        for name, rc in config.receivers.items()
    }
    renderer = Renderer.of(config)
    local = LocalHealthFile(
        local_dir or Path(tempfile.gettempdir()),
        f"{config.state.url} {config.state.endpoint or ''}",
    )
    return Edges(
        store=store,
        state_key=key,
        schedulerx=client,
        receivers=receivers,
        renderer=renderer,
        owner=owner,
        timeout=timeout,
        clock=clock,
        sleep=sleep,
        credentials_problem=problem,
        config_problem=config_problem,
        store_problem=store_problem,
        timing=timing,
        local_health=local,
    )


class EventError(ValueError):
    """An invocation payload asking for something unclear; nothing is run."""


def parse_event(event: Any) -> dict[str, Any]:
    """Options from an invocation payload; a timer event nests its payload as a string.

    `dry_run` must be a JSON boolean: `"false"` is truthy in Python, and
    guessing wrong either sends for real or silently stops every alert.
    """
    options = _event_object(event)
    dry_run = options.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise EventError(f"event.dry_run: must be true or false (JSON), not {show(dry_run)}")
    return options


def _event_object(event: Any) -> dict[str, Any]:
    if isinstance(event, bytes | bytearray):
        event = event.decode("utf-8", "replace")
    if isinstance(event, str):
        try:
            event = json.loads(event) if event.strip() else {}
        except ValueError:
            return {}
    if not isinstance(event, dict):
        return {}
    payload = event.get("payload")
    if isinstance(payload, str) and "triggerTime" in event:
        return _event_object(payload)
    return event


def run(
    config: Config,
    credentials: Credentials | None,
    *,
    dry_run: bool = False,
    timeout: float = DEPLOYED_TIMEOUT,
    owner: str = "local",
    config_problem: str | None = None,
    local_dir: Path | None = None,
) -> tuple[TickSummary, Redactor]:
    redactor = Redactor(secrets_of(config, credentials))
    _install(redactor)
    edges = build_edges(
        config,
        credentials,
        timeout,
        owner,
        local_dir=local_dir,
        config_problem=config_problem,
    )
    summary = run_tick(config, edges, dry_run=dry_run)
    return summary, redactor


def handle(event: Any, context: Any, default_dir: Path, instance: Instance | None = None) -> str:
    """The FC handler's body. Raises only for a config or an event that cannot work."""
    instance = instance or INSTANCE
    credentials = resolve_credentials(context)
    # Scrub credentials even from config errors' log lines.
    _install(Redactor(secrets_of(None, credentials)))
    try:
        options = parse_event(event)
    except EventError as exc:
        log.error("event refused: %s", exc)
        raise
    function = getattr(context, "function", None)
    timeout = float(getattr(function, "timeout", 0) or DEPLOYED_TIMEOUT)
    try:
        loaded = instance.load_config(default_dir, credentials, timeout)
    except ConfigError as exc:
        log.error("config rejected: %s", exc)
        raise
    owner = str(getattr(context, "request_id", "") or "local")
    summary, redactor = run(
        loaded.config,
        credentials,
        dry_run=options.get("dry_run", False),
        timeout=timeout,
        owner=owner,
        config_problem=loaded.problem,
        local_dir=instance.local_dir,
    )
    line = redactor(json.dumps(summary.as_dict(), ensure_ascii=False))
    log.info("tick", extra=logs.fields(summary.as_dict()))
    return line


def _install(redactor: Redactor) -> None:
    """Scrub secrets from every line that leaves the process, in the chosen format."""
    logs.install(redactor)
