"""The config's sections as described records (config/schema.py reads them): the top
level's own options, `schedulerx:`, `state:`, `dingtalk:`, `receivers:`, `templates:`
and `health:`. Each default is the field's own, and each option's line in
docs/config-reference.md is its `doc`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any, ClassVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schedulerx_alert.config.schema import (
    Invalid,
    Missing,
    Reader,
    Walker,
    boolean,
    count,
    declared_receiver,
    join,
    listed,
    number,
    one_of,
    option,
    optional_text,
    show,
    small,
    span,
    text,
)
from schedulerx_alert.core.group import DEFAULT_MIN_JOBS
from schedulerx_alert.support.urls import HttpUrl, UrlError, normalise_host, parse_http_url

DEFAULT_SCHEDULERX_ENDPOINT = "https://schedulerx.aliyuncs.com"
LANGUAGES = ("zh-CN", "en")
# How runs are found: "auto" asks each group for the runs that need attention (falling back
# per group to per-job polls where the server cannot), "per_job" polls each job after its fire
# times, "every_job" polls every job every tick (the loop of old, for comparisons).
QUERY_MODES = ("auto", "per_job", "every_job")
CLOUD_DOMAIN = "aliyuncs.com"
# The region is spliced into the default OSS host name: cn-hangzhou, ap-southeast-1.
# A pattern for re's own cache, compiled on first use, not at every cold start.
_REGION = r"[a-z]{2,}(?:-[a-z0-9]+)+"
MAX_SHARED_CAUSE_JOBS = 1000
# These serve only some configs (mentions) and error messages: patterns for re's own
# cache, compiled on first use, not at every cold start.
_MOBILE = r"\+?[0-9][0-9-]{2,19}"
# A DingTalk user id (userid/staffId): one short word of letters, digits and a few signs.
_USER_ID = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
# OSS bucket naming rules.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
_DURATION = r"([0-9]{1,7}(?:\.[0-9]{1,3})?)\s*([smh]?)"
_UNITS = {"s": 1, "m": 60, "h": 3600}
_NO_FILE = "no such file"


def endpoint(required: bool) -> Reader:
    """An Alibaba Cloud API endpoint: scheme://host[:port], nothing after it; `${VAR}`
    read. Not `required`: null or empty is none."""

    def read(walker: Walker, value: Any, path: str) -> str | None:
        given = (text if required else optional_text)(walker, value, path, from_env=True)
        if given is None:
            raise Missing
        try:
            url = parse_http_url(given, allow_loopback_http=walker.allow_loopback_http)
        except UrlError as exc:
            raise Invalid(str(exc)) from None
        if url.path not in ("", "/") or url.query:
            raise Invalid("must be just https://HOST[:PORT], no path or query")
        host = url.host
        cloud = host == CLOUD_DOMAIN or host.endswith("." + CLOUD_DOMAIN)
        if not (cloud or (walker.allow_loopback_http and url.is_loopback)):
            # Every call to it is signed and carries the function's STS token.
            raise Invalid(
                f"must be an Alibaba Cloud endpoint (a host under {CLOUD_DOMAIN}): calls to "
                "it carry the function's credentials"
            )
        return url.origin

    return read


def interval(low: timedelta, high: timedelta) -> Reader:
    """`90s`, `10m`, `1h`, or a number of seconds, from `low` to `high`."""

    def read(walker: Walker, value: Any, path: str) -> timedelta:
        if value is None:
            raise Missing
        seconds: float | None = None
        if isinstance(value, str):
            match = re.fullmatch(_DURATION, walker.substituted(value).strip())
            if match:
                seconds = float(match[1]) * _UNITS[match[2] or "s"]
        elif isinstance(value, int | float) and not isinstance(value, bool) and small(value):
            seconds = float(value)
        if seconds is None:
            raise Invalid(f"must be a duration such as 90s, 10m or 1h, not {show(value)}")
        if not low.total_seconds() <= seconds <= high.total_seconds():
            raise Invalid(f"must be between {span(low)} and {span(high)}, not {show(value)}")
        return timedelta(seconds=seconds)

    return read


_MINUTE, _DAY = timedelta(minutes=1), timedelta(days=1)
_DISCOVERY, _SWEEP = timedelta(minutes=10), timedelta(minutes=15)


@dataclass(frozen=True)
class SchedulerXConfig:
    endpoint: str = option(
        DEFAULT_SCHEDULERX_ENDPOINT, read=endpoint(True), doc="the SchedulerX OpenAPI; ${VAR} read"
    )
    query: str = option(
        "auto",
        read=one_of(*QUERY_MODES),
        doc="auto: group queries, per job where a server cannot; "
        "per_job: each job after its fire times; every_job: the old loop",
    )
    # SchedulerX allows 100 calls a minute per API for the whole account;
    # leave room for the console and other tools using the same account.
    # An account whose quota was raised can give the function more (issue 22).
    max_calls_per_minute: int = option(
        90,
        read=number(1, 1000, whole=True),
        doc="of SchedulerX's 100/minute/API quota (more where the account's was raised)",
    )
    concurrency: int = option(4, read=number(1, 16, whole=True), doc="parallel calls")
    timeout_seconds: float = option(5.0, read=number(0.1, 60), doc="per call")
    # How often each group's job list is read again (ListJobs).
    discovery_interval: timedelta = option(  # noqa: RUF009 (a field, as field() is)
        _DISCOVERY,
        read=interval(_MINUTE, _DAY),
        doc="how often each group's job list is read again (ListJobs)",
    )
    # Per-job polling: every job at least this often, for runs started by hand or by API.
    sweep_interval: timedelta = option(  # noqa: RUF009
        _SWEEP,
        read=interval(_MINUTE, _DAY),
        doc="per-job polling: every job at least this often",
    )


def state_url(walker: Walker, value: Any, path: str) -> str:
    url = text(walker, value, path)
    problem = _state_url_problem(url) if url else None
    if problem:
        raise Invalid(problem)
    return url


@dataclass(frozen=True)
class StateConfig:
    url: str = option(
        read=state_url,
        doc="or file:///abs/path/state.json",
        example="oss://my-bucket/schedulerx-alert/state.json",
    )
    endpoint: str | None = option(
        None,
        read=endpoint(False),
        doc="the OSS endpoint; ${VAR} read; default: the region's internal endpoint",
        example="https://oss-cn-hangzhou-internal.aliyuncs.com",
    )
    timeout_seconds: float = option(5.0, read=number(0.1, 30), doc="per OSS call")


def hosts(walker: Walker, value: Any, path: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise Invalid("must be a non-empty list of host names")
    allowed: list[str] = []
    for index, host in enumerate(value):
        try:
            if not isinstance(host, str):
                raise UrlError(f"must be a host name, not {show(host)}")
            allowed.append(normalise_host(host))
        except UrlError as exc:
            walker.fail(f"{path}[{index}]", str(exc))
    if not allowed:
        raise Missing
    return tuple(allowed)


@dataclass(frozen=True)
class DingTalkConfig:
    allowed_hosts: tuple[str, ...] = option(
        ("oapi.dingtalk.com",), read=hosts, doc="webhooks to any other host are refused"
    )
    # DingTalk blocks a robot for ten minutes past 20 messages a minute, as
    # counted by its clock; two below that absorbs skew between ours and its.
    max_per_minute: int = option(
        18, read=number(1, 20, whole=True), doc="messages a minute per robot (DingTalk's: 20)"
    )
    # More alerts than this for one receiver in one tick go out as summaries.
    summary_threshold: int = option(
        3,
        read=number(1, 20, whole=True),
        doc="more alerts than this for a receiver in a tick go out as summaries",
    )
    timeout_seconds: float = option(5.0, read=number(0.1, 30), doc="per webhook call")


def webhook(walker: Walker, value: Any, path: str) -> HttpUrl:
    """A robot's URL, checked and rebuilt from its parts (urls.py): what is posted to is
    what was checked. It carries the access token: described, never printed."""
    given = text(walker, value, path, from_env=True)
    if not given:
        raise Missing
    try:
        url = parse_http_url(given, allow_loopback_http=walker.allow_loopback_http)
    except UrlError as exc:
        raise Invalid(str(exc)) from None
    problems: list[str] = []
    allowed = walker.allowed_hosts
    if url.host not in allowed:
        # A host that came from the environment is not repeated.
        host = repr(url.host) if "$" not in str(value).split("?")[0] else "(from the environment)"
        problems.append(f"host {host} is not in dingtalk.allowed_hosts ({', '.join(allowed)})")
    names = [name for name, _ in url.params()]
    tokens = [value for name, value in url.params() if name == "access_token"]
    if len(tokens) != 1 or not tokens[0]:
        problems.append("must have exactly one non-empty access_token query parameter")
    for added in ("timestamp", "sign"):
        if added in names:
            problems.append(f"must not carry {added}: it is added when each message is signed")
    for problem in problems[:-1]:
        walker.fail(path, problem)
    if problems:
        raise Invalid(problems[-1])
    return url


def robot_secret(walker: Walker, value: Any, path: str) -> str:
    given = optional_text(walker, value, path, from_env=True)
    if given is None:
        raise Missing
    if not given.startswith("SEC"):
        raise Invalid("a DingTalk robot secret starts with 'SEC'")
    return given


def robot_keyword(walker: Walker, value: Any, path: str) -> str:
    given = optional_text(walker, value, path)
    if given is None:
        raise Missing
    return given


def mobiles(walker: Walker, value: Any, path: str) -> tuple[str, ...]:
    value = listed(value, "must be a list of phone numbers", empty=True)
    found: list[str] = []
    for index, item in enumerate(value):
        number = str(item) if isinstance(item, str | int) and small(item) else ""
        if isinstance(item, bool) or not re.fullmatch(_MOBILE, number):
            walker.fail(f"{path}[{index}]", f"must be a phone number, not {show(item)}")
        else:
            found.append(number)
    return tuple(found)


def user_ids(walker: Walker, value: Any, path: str) -> tuple[str, ...]:
    value = listed(value, "must be a list of DingTalk user ids", empty=True)
    found: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not re.fullmatch(_USER_ID, item):
            walker.fail(
                f"{path}[{index}]",
                f"must be a DingTalk user id (letters, digits, _ . -), not {show(item)}",
            )
        elif item not in found:
            found.append(item)
    return tuple(found)


@dataclass(frozen=True)
class ReceiverConfig:
    # Read by config/sections.py.
    OTHER_KEYS: ClassVar[tuple[str, ...]] = ("quiet_hours",)

    name: str = option(
        read=text, doc="how watch entries, routes and silences name it", example="ops"
    )
    url: HttpUrl = option(  # noqa: RUF009
        read=webhook,
        key="webhook",
        repr=False,
        doc="the robot's webhook; ${VAR} read (then it must be oapi.dingtalk.com's)",
        example="https://oapi.dingtalk.com/robot/send?access_token=${DT_TOKEN}",
    )
    secret: str | None = option(
        None,
        read=robot_secret,
        repr=False,
        doc="the robot's 加签 secret (SEC...); ${VAR} read; optional",
        example="${DT_SECRET}",
    )
    at_mobiles: tuple[str, ...] = option(
        (), read=mobiles, doc="@-mentioned in every message", example='["13800000000"]'
    )
    keyword: str | None = option(
        None, read=robot_keyword, doc="for robots in keyword mode; optional", example="SchedulerX"
    )
    at_user_ids: tuple[str, ...] = option(
        (),
        read=user_ids,
        doc="DingTalk user ids, @-mentioned in every message",
        example='["manager01"]',
    )

    @property
    def webhook(self) -> str:
        """The robot's URL in its one normalised spelling: one robot, one string."""
        return str(self.url)

    @property
    def access_token(self) -> str:
        return next((v for k, v in self.url.params() if k == "access_token"), "")


def template_file(walker: Walker, value: Any, path: str) -> str | None:
    name = optional_text(walker, value, path)
    if name is None:
        return None
    file, problem = _template_file(walker, name)
    if problem is not None:
        raise Invalid(
            f"no such template file {show(value)}"
            if problem == _NO_FILE
            else f"{show(value)} is refused: {problem}"
        )
    return str(file)


@dataclass(frozen=True)
class TemplateConfig:
    language: str = option(
        "zh-CN", read=one_of(*LANGUAGES), doc="the messages' language: zh-CN or en"
    )
    alert: str | None = option(
        None,
        read=template_file,
        doc="your own alert template, in this file's folder (no '..')",
        example="my-alert.md.j2",
    )
    summary: str | None = option(
        None,
        read=template_file,
        doc="your own summary template, likewise",
        example="my-summary.md.j2",
    )


@dataclass(frozen=True)
class HealthConfig:
    receiver: str | None = option(
        None,
        read=declared_receiver,
        doc='told when the monitor itself is broken; default: "ops" if it exists',
        example="ops",
    )
    impaired_after: int = option(
        3, read=number(1, 1000, whole=True), doc="consecutive broken ticks before saying so"
    )


def _template_file(walker: Walker, name: str) -> tuple[Any, str | None]:
    """The template file `name` names, or why it is refused.

    Whoever writes the config need not be able to read the function's files: a template
    is rendered into a chat, so a path out of the config's folder (/proc/self/environ,
    `..`, a link pointing elsewhere) would post whatever it reads there.
    """
    inside = (
        "a template is a file in the config's folder (for a config in OSS, the code "
        "package's), named relative to it; absolute paths and '..' are refused"
    )
    if not name.isprintable() or "\\" in name:
        return None, inside
    given = PurePosixPath(name)
    if given.is_absolute() or ".." in given.parts or name.startswith("~"):
        return None, inside
    try:
        root = walker.base_dir.resolve()
        file = (root / given).resolve()
        if not file.is_relative_to(root):
            return None, f"resolves outside the config's folder; {inside}"
        return (file, None) if file.is_file() else (None, _NO_FILE)
    except (OSError, ValueError, RuntimeError):
        return None, _NO_FILE


def _state_url_problem(url: str) -> str | None:
    """What is wrong with a state.url, without repeating it; None when fine."""
    if not url.isprintable() or any(c in url for c in "?#\\"):
        return "must not contain '?', '#', a backslash or control characters"
    try:
        parts = urlsplit(url)
    except ValueError:  # brackets that do not make an IPv6 literal
        return "must be oss://BUCKET/KEY or file:///ABSOLUTE/PATH"
    if parts.scheme == "oss":
        key = parts.path[1:]
        if not _BUCKET.fullmatch(parts.netloc):
            return (
                "must be oss://BUCKET/KEY; a bucket name is 3-63 lowercase letters, digits "
                "and hyphens, starting and ending with a letter or digit"
            )
        if not key or key.startswith("/") or key.endswith("/") or len(key.encode()) > 1023:
            return "must be oss://BUCKET/KEY, with KEY an object name (not a folder)"
        return None
    if parts.scheme == "file":
        if parts.netloc or not parts.path.startswith("/") or parts.path.endswith("/"):
            return "must be file:///ABSOLUTE/PATH/state.json"
        return None
    return "must start with oss:// or file://"


def region(walker: Walker, value: Any, path: str) -> str:
    given = text(walker, value, path)
    if not re.fullmatch(_REGION, given):
        raise Invalid(f"must be a region id such as cn-hangzhou, not {show(value)}")
    return given


def timezone(walker: Walker, value: Any, path: str) -> str:
    given = text(walker, value, path)
    if not given:
        raise Missing
    try:
        ZoneInfo(given)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise Invalid(f"unknown time zone {show(value)}") from None
    return given


def shared_cause(walker: Walker, value: Any, path: str) -> int | None:
    """`true`, `false` (None: one message per failure), or `{min_jobs: N}`."""
    if isinstance(value, bool):
        return DEFAULT_MIN_JOBS if value else None
    if not isinstance(value, dict):
        raise Invalid(f"must be true, false or a mapping with min_jobs, not {show(value)}")
    for key in value:
        if key != "min_jobs":
            walker.fail(join(path, key), "unknown key")
    if "min_jobs" not in value:
        return DEFAULT_MIN_JOBS
    try:
        found: int = count(2, MAX_SHARED_CAUSE_JOBS)(walker, value["min_jobs"], path)
        return found
    except Invalid as exc:
        walker.fail(join(path, "min_jobs"), str(exc))
        return DEFAULT_MIN_JOBS


@dataclass(frozen=True)
class TopLevel:
    """The options at the config's top level (the sections are records of their own)."""

    region: str = option(read=region, doc="the SchedulerX region", example="cn-hangzhou")
    timezone: str = option(
        "Asia/Shanghai", read=timezone, doc="the zone of SchedulerX's time strings"
    )
    allow_loopback_http: bool = option(
        False,
        read=boolean,
        doc="true lets http:// reach 127.0.0.1/::1/localhost (test servers)",
    )
    mention_owners: bool = option(False, read=boolean, doc="the default of every watch entry's own")
    include_log: bool = option(False, read=boolean, doc="likewise")
    first_run_lookback_minutes: float = option(
        15, read=number(0, 7 * 24 * 60), doc="on a job's first poll, older failures are history"
    )
    pending_max_age_hours: float = option(
        24, read=number(1, 30 * 24), doc="an alert undelivered this long is dropped and counted"
    )
    shared_cause: int | None = option(
        DEFAULT_MIN_JOBS,
        read=shared_cause,
        shown=lambda _: "true",
        doc="false, or {min_jobs: 3}: one message for a shared error (true: 2 jobs)",
    )
