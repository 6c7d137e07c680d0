"""An OSS config as one instance sees it: read conditionally, the last good version kept.

Loaded only when `SCHEDULERX_ALERT_CONFIG` is `oss://...` (config/source.py says how
it behaves); a config in the package never needs it, nor the OSS client.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from schedulerx_alert.config import Config, ConfigError, parse_config, read_config_data
from schedulerx_alert.config.source import (
    ENDPOINT_ENV,
    REGION_ENVS,
    Loaded,
    OssLocation,
    region_endpoint,
)
from schedulerx_alert.support.credentials import Credentials

if TYPE_CHECKING:
    from schedulerx_alert.storage.oss_client import OssBucket

log = logging.getLogger("schedulerx_alert")


class ConfigReadError(Exception):
    """The config object could not be read (no credentials, no such object, OSS said no)."""


@dataclass(frozen=True)
class Fetched:
    etag: str
    data: bytes


class OssConfigObject:
    """One object, read conditionally on the ETag read last."""

    def __init__(self, bucket: OssBucket, key: str) -> None:
        from schedulerx_alert.storage.oss_client import OssError  # loaded with the bucket already

        self.bucket = bucket
        self.key = key
        self._oss_error = OssError

    @classmethod
    def connect(
        cls,
        location: OssLocation,
        credentials: Credentials | None,
        env: Mapping[str, str],
        timeout: float,
        *,
        public: bool = False,
    ) -> OssConfigObject:
        """The object, through the region's internal endpoint (the function's) or, for a
        command on a laptop, its `public` one; SCHEDULERX_ALERT_CONFIG_ENDPOINT overrides."""
        from schedulerx_alert.storage.store import connect_bucket

        if credentials is None:
            raise ConfigReadError(
                "reading the config from OSS needs credentials: give the function a role "
                "(or set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET)"
            )
        region = next((env[name] for name in REGION_ENVS if env.get(name)), "")
        if not region:
            raise ConfigReadError(
                f"cannot tell the region of bucket {location.bucket!r}: "
                f"set {' or '.join(REGION_ENVS)}"
            )
        endpoint = env.get(ENDPOINT_ENV) or region_endpoint(region, internal=not public)
        try:
            bucket = connect_bucket(location.bucket, endpoint, region, credentials, timeout)
        except ValueError as exc:
            raise ConfigReadError(str(exc)) from None
        return cls(bucket, location.key)

    def fetch(self, etag: str | None) -> Fetched | None:
        try:
            got = self.bucket.get(self.key, if_none_match=etag)
        except self._oss_error as exc:
            if exc.code == "NoSuchKey":
                raise ConfigReadError("no such object") from None
            raise ConfigReadError(exc.describe("read", self.key)) from None
        return None if got is None else Fetched(got.etag, got.data)


@dataclass(frozen=True)
class _Good:
    etag: str
    data: bytes
    config: Config
    read_at: float


class ConfigCache:
    """An instance's memory of one OSS config: the version read last and the last good one."""

    def __init__(
        self,
        location: OssLocation,
        base_dir: Path,
        local_dir: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.location = location
        # Template files named by an OSS config are the code package's.
        self.base_dir = base_dir
        digest = hashlib.sha256(location.url.encode("utf-8")).hexdigest()[:16]
        self.path = local_dir / f"schedulerx-alert-config-{digest}.json"
        self.clock = clock
        self.good: _Good | None = None
        # The ETag read last, and why it was refused (None: it is the good one).
        self.seen: str | None = None
        self.refused: str | None = None

    def load(self, open_object: Callable[[], OssConfigObject], env: Mapping[str, str]) -> Loaded:
        """The config to run with; raises ConfigError when there is no good one at all."""
        if self.good is None:
            self._recall(env)
        try:
            fetched = open_object().fetch(self.seen)
        except ConfigReadError as exc:
            return self._fallback(f"cannot be read: {exc}")
        if fetched is None:
            return self._fallback(self.refused) if self.refused else self._current()
        self.seen = fetched.etag
        try:
            config = self._parse(fetched.data, env)
        except ConfigError as exc:
            self.refused = (
                f"the version with ETag {fetched.etag} is refused, {len(exc.problems)} "
                f"problem(s): {'; '.join(exc.problems)}"
            )
            return self._fallback(self.refused)
        self.refused = None
        self.good = _Good(fetched.etag, fetched.data, config, self.clock())
        self._remember(self.good)
        return Loaded(config)

    def _current(self) -> Loaded:
        assert self.good is not None, "an unrefused ETag is the good one's"
        return Loaded(self.good.config)

    def _fallback(self, why: str) -> Loaded:
        if self.good is None:
            raise ConfigError([why], self.location.url)
        read_at = datetime.fromtimestamp(self.good.read_at, timezone.utc)
        return Loaded(
            self.good.config,
            f"config {self.location.url}: {why}; this tick runs with the last good version "
            f"(ETag {self.good.etag}, read {read_at:%Y-%m-%d %H:%M:%S} UTC)",
        )

    def _parse(self, data: bytes, env: Mapping[str, str]) -> Config:
        url = self.location.url
        return parse_config(read_config_data(data, url), env, url, self.base_dir)

    def _recall(self, env: Mapping[str, str]) -> None:
        """The last good version this instance wrote down before its process restarted."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if raw["url"] != self.location.url:
                return
            good = _Good(
                str(raw["etag"]),
                str(raw["data"]).encode("utf-8"),
                self._parse(str(raw["data"]).encode("utf-8"), env),
                float(raw["read_at"]),
            )
        except (OSError, ValueError, KeyError, TypeError, ConfigError):
            return
        self.good, self.seen, self.refused = good, good.etag, None

    def _remember(self, good: _Good) -> None:
        record = {
            "url": self.location.url,
            "etag": good.etag,
            "read_at": good.read_at,
            "data": good.data.decode("utf-8"),
        }
        temp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temp.write_text(json.dumps(record), encoding="utf-8")
            os.replace(temp, self.path)
        except OSError as exc:
            # Memory still holds it; only a restarted process would miss it.
            log.warning("cannot keep the config in %s: %s", self.path, exc.strerror)
