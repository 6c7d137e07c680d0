"""Where the function's config comes from, and what it runs with when a new one is bad.

`SCHEDULERX_ALERT_CONFIG` names a file, or an OSS object `oss://BUCKET/KEY` read with
the function's own role; unset, it is `config.json` beside index.py (what `make
package` writes), else `config.yaml` there. A file is read on every tick, and a bad
one fails the tick, as it always did.

An OSS config is read with a conditional GET on every tick (`If-None-Match`: the ETag
read last), so an unchanged one costs one small request and is not parsed again. A
version that fails validation, or an object that cannot be read, never replaces a
working config: the tick runs with the instance's last good one and says why, as a
problem (one ERROR line, and a broken tick toward the impaired alert). The last good
version is kept in memory and in a file under the instance's temp dir, which FC keeps
across warm invocations. Only an instance that never had a good one fails outright.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from schedulerx_alert.config import Config, ConfigError, show

CONFIG_ENV = "SCHEDULERX_ALERT_CONFIG"
# The OSS endpoint of the config's bucket; default: the region's internal endpoint.
ENDPOINT_ENV = "SCHEDULERX_ALERT_CONFIG_ENDPOINT"
# Where the region comes from: FC sets FC_REGION; a laptop, ALIBABA_CLOUD_REGION_ID.
REGION_ENVS = ("FC_REGION", "ALIBABA_CLOUD_REGION_ID")


class ConfigSource(Protocol):
    """A config's text from somewhere other than a local file (storage/config_text.py)."""

    def parse(self, env: Mapping[str, str]) -> Config: ...


@dataclass(frozen=True)
class Loaded:
    """The config a tick runs with, and what is wrong with the one it should have had."""

    config: Config
    problem: str | None = None


@dataclass(frozen=True)
class OssLocation:
    bucket: str
    key: str

    @property
    def url(self) -> str:
        return f"oss://{self.bucket}/{self.key}"


def parse_oss_url(url: str, source: str = CONFIG_ENV) -> OssLocation:
    """`oss://BUCKET/KEY` -> its parts; ConfigError naming what is wrong."""
    parts = urlsplit(url)
    key = parts.path[1:]
    if (
        parts.scheme != "oss"
        or not parts.netloc
        or not key
        or key.endswith("/")
        or parts.query
        or parts.fragment
        or not url.isprintable()
    ):
        problem = f"must be oss://BUCKET/KEY (an object, not a folder), not {show(url)}"
        raise ConfigError([problem], source)
    return OssLocation(parts.netloc, key)


def config_location(default_dir: Path, env: Mapping[str, str] | None = None) -> Path | OssLocation:
    env = os.environ if env is None else env
    value = env.get(CONFIG_ENV)
    if value:
        return parse_oss_url(value) if value.startswith("oss://") else Path(value)
    packaged = default_dir / "config.json"
    return packaged if packaged.is_file() else default_dir / "config.yaml"


def region_endpoint(region: str, *, internal: bool = True) -> str:
    """OSS's endpoint for a region: the internal one FC reaches for free, or the public one
    a laptop can resolve."""
    return f"https://oss-{region}{'-internal' if internal else ''}.aliyuncs.com"
