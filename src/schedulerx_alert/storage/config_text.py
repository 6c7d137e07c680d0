"""A config's text for the commands (`check`, `state`) and the silence links: from a
file, or from OSS (`oss://BUCKET/KEY`) as the function reads it.

A tick reads its config through config/source.py and config/oss.py: cached per instance
by ETag, a bad version never replacing the last good one. A command or a click wants the
current version or its problems, so it reads the object once, with no cache. A tick never
imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from schedulerx_alert.config import Config, ConfigError, parse_config, read_config_data
from schedulerx_alert.config.source import CONFIG_ENV, OssLocation, parse_oss_url
from schedulerx_alert.support.credentials import Credentials

# A command's one read of an OSS config: no tick's budget to share, a person waiting.
OSS_READ_SECONDS = 10.0


@dataclass(frozen=True)
class ConfigText:
    data: bytes
    source: str  # the file's path or the object's oss:// URL: every problem names it
    base_dir: Path  # where the template files it names are

    @classmethod
    def of_file(cls, path: str | Path) -> ConfigText:
        path = Path(path)
        try:
            return cls(path.read_bytes(), str(path), path.parent)
        except OSError as exc:
            raise ConfigError([f"cannot read: {exc.strerror or exc}"], str(path)) from None

    def parse(self, env: Mapping[str, str]) -> Config:
        """Its Config (JSON for a .json name, else YAML); ConfigError with every problem."""
        return parse_config(
            read_config_data(self.data, self.source), env, self.source, self.base_dir
        )


def command_location(value: str | None, env: Mapping[str, str]) -> Path | OssLocation:
    """A command's --config, else SCHEDULERX_ALERT_CONFIG: a file or an OSS object."""
    value = value or env.get(CONFIG_ENV)
    if not value:
        raise ConfigError(
            [f"name the config: --config FILE or oss://BUCKET/KEY, or set {CONFIG_ENV}"],
            "--config",
        )
    if value.startswith("oss://"):
        return parse_oss_url(value, "--config" if value != env.get(CONFIG_ENV) else CONFIG_ENV)
    return Path(value)


def read_config_text(
    location: Path | OssLocation,
    credentials: Credentials | None,
    env: Mapping[str, str],
    timeout: float,
    *,
    base_dir: Path,
    public: bool,
) -> ConfigText:
    """The config's current text; ConfigError naming the file or object when it cannot be
    read. `base_dir` holds an OSS config's template files (a file's are beside it);
    `public`: reach OSS by the region's public endpoint (a command off Alibaba Cloud)."""
    if not isinstance(location, OssLocation):
        return ConfigText.of_file(location)
    # The OSS client loads only for a config in OSS.
    from schedulerx_alert.storage.config_object import ConfigReadError, OssConfigObject

    try:
        target = OssConfigObject.connect(location, credentials, env, timeout, public=public)
        fetched = target.fetch(None)
    except ConfigReadError as exc:
        raise ConfigError([f"cannot be read: {exc}"], location.url) from None
    assert fetched is not None, "an unconditional read has a body"
    return ConfigText(fetched.data, location.url, base_dir)


def load_command_config(
    value: str | None, env: Mapping[str, str], credentials: Credentials | None, timeout: float
) -> ConfigText:
    """What `check` and `state` read: --config or SCHEDULERX_ALERT_CONFIG, a file or OSS
    (credentials from ALIBABA_CLOUD_*, the region from ALIBABA_CLOUD_REGION_ID; template
    files of an OSS config from the current directory)."""
    location = command_location(value, env)
    return read_config_text(location, credentials, env, timeout, base_dir=Path.cwd(), public=True)
