"""Alert text: Jinja2 templates in a sandbox, DingTalk markdown out.

Every value in a template's context that comes from SchedulerX, a job or the
configuration (names, group, namespace, worker, executor, Result) has already
been through `neutralise`, so a template, ours or a user's, can print it raw and
still produce no link, image, heading, list, emphasis, HTML or @-mention. The
`md` and `quote` filters stay for user templates: they are the same neutraliser,
idempotent, so applying them to a context value changes nothing, and they make
any other text (a `replace`d or concatenated string) safe the same way.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from schedulerx_alert.core.findings import (
    FLAPPING,
    MISSED,
    RECOVERED,
    SETTLED,
    SHARED_CAUSE,
    STUCK,
    WORKFLOW_FAILED,
    WORKFLOW_RECOVERED,
    Fact,
)
from schedulerx_alert.core.model import InstanceStatus, JobInstance, JobKey, TriggerType
from schedulerx_alert.core.state import MAX_TIME as MAX_EPOCH
from schedulerx_alert.core.state import Alert

if TYPE_CHECKING:
    from jinja2 import Template
    from jinja2.sandbox import SandboxedEnvironment

    from schedulerx_alert.config import Config

TEMPLATE_DIR = Path(__file__).parent / "templates"
CONSOLE_URL = "https://schedulerx2.console.aliyun.com/{region}/InstanceList?namespace={namespace}&source=schedulerx"
# neutralise.BLOCK_CAP and SINGLE_LINE_CAP (a test holds them equal): neutralise and its
# dozen regexes load with the first message, not at every cold start.
RESULT_LIMIT = 1500
SINGLE_LINE_CAP = 200
# Host:port and executor class names are short; anything longer is not one.
FIELD_CAP = 100
# A summary lists many runs: one short line of each one's Result.
SUMMARY_RESULT_LIMIT = 80
DEFAULT_ZONE = "Asia/Shanghai"
# Kinds with no run status of their own, each with its template `<kind>.md.j2`; a run
# that failed (failed, rejected, killed, ...) is rendered by `alert.md.j2`.
KIND_TEMPLATES = (
    RECOVERED, STUCK, MISSED, FLAPPING, SETTLED, SHARED_CAUSE, WORKFLOW_FAILED, WORKFLOW_RECOVERED,
)  # fmt: skip
# Jobs a shared-cause message lists by name; the rest are counted.
SHARED_LISTED = 30
SPAN_UNITS = {
    "zh-CN": {"d": " 天", "h": " 小时", "min": " 分钟", "s": " 秒", "sep": " "},
    "en": {"d": " d", "h": " h", "min": " min", "s": " s", "sep": " "},
}
KIND_WORDS: dict[str, dict[str, str]] = {
    "zh-CN": {
        RECOVERED: "已恢复",
        STUCK: "卡住",
        MISSED: "未按时运行",
        FLAPPING: "状态反复",
        SETTLED: "已稳定",
        SHARED_CAUSE: "同因失败",
        WORKFLOW_FAILED: "工作流失败",
        WORKFLOW_RECOVERED: "工作流已恢复",
    },
    "en": {
        RECOVERED: "recovered",
        STUCK: "stuck",
        MISSED: "missed its run",
        FLAPPING: "flapping",
        SETTLED: "settled",
        SHARED_CAUSE: "same cause",
        WORKFLOW_FAILED: "workflow failed",
        WORKFLOW_RECOVERED: "workflow recovered",
    },
}

STATUS_WORDS = {
    "zh-CN": {
        InstanceStatus.UNKNOWN: "未知",
        InstanceStatus.WAITING: "等待",
        InstanceStatus.READY: "就绪",
        InstanceStatus.RUNNING: "运行中",
        InstanceStatus.SUCCESS: "成功",
        InstanceStatus.FAILED: "失败",
        InstanceStatus.KILLED: "已终止",
        InstanceStatus.PAUSED: "暂停",
        InstanceStatus.SUBMITTED: "已提交",
        InstanceStatus.REJECTED: "被拒绝",
        InstanceStatus.ACCEPTED: "已接收",
        InstanceStatus.PARTIAL_FAILED: "部分失败",
        InstanceStatus.SKIPPED: "已跳过",
        InstanceStatus.REMOVED: "已删除",
    },
    "en": {s: s.label.replace("_", " ") for s in InstanceStatus},
}
TRIGGER_WORDS = {
    "zh-CN": {
        TriggerType.SCHEDULED: "定时调度",
        TriggerType.DATA_RERUN: "数据重刷",
        TriggerType.API: "API 触发",
        TriggerType.MANUAL_RERUN: "手动重跑",
        TriggerType.SYSTEM_RETRY: "系统重试",
    },
    "en": {
        TriggerType.SCHEDULED: "scheduled",
        TriggerType.DATA_RERUN: "data re-run",
        TriggerType.API: "API call",
        TriggerType.MANUAL_RERUN: "manual re-run",
        TriggerType.SYSTEM_RETRY: "system retry",
    },
}


class RenderError(Exception):
    """A template that cannot be loaded or rendered; names the template."""


@dataclass(frozen=True)
class Action:
    """A button under a message: a title and the link it opens."""

    title: str
    url: str


@dataclass(frozen=True)
class Message:
    """A DingTalk markdown message, before any channel-specific framing."""

    title: str
    text: str
    at_mobiles: tuple[str, ...] = ()
    # Buttons (a DingTalk actionCard); none makes a plain markdown message.
    actions: tuple[Action, ...] = ()
    at_user_ids: tuple[str, ...] = ()


def md_escape(value: Any, cap: int = SINGLE_LINE_CAP) -> str:
    """The `md` filter: any value as one line of plain text, capped."""
    from schedulerx_alert.delivery.neutralise import line

    return line(value, cap)


def quote_block(value: Any, limit: int = RESULT_LIMIT) -> str:
    """The `quote` filter: multi-line text as a markdown quote of plain lines, capped.

    Each line is neutralised on its own, so none can open a heading, list or
    nested quote; if a client shows no quotes, the reader sees "> " and text.
    """
    from schedulerx_alert.delivery.neutralise import block

    return _quote(block(value, limit))


def _quote(lines: Sequence[str]) -> str:
    return "\n".join(f"> {text}  " for text in lines)


class Renderer:
    """Messages from the templates of one language (and the user's, if given).

    Jinja2 is imported and the templates compiled on the first message, not when
    the renderer is made: most ticks send nothing, and Jinja2 is a quarter of a
    cold start. `compile()` does it at once, to refuse a broken template early.
    """

    def __init__(
        self,
        language: str = "zh-CN",
        region: str = "cn-hangzhou",
        alert_template: str | None = None,
        summary_template: str | None = None,
        *,
        timezone: str = DEFAULT_ZONE,
        kind_templates: Mapping[str, str] | None = None,
    ) -> None:
        """`alert_template` renders a run's failure (failed, rejected, ...); each other
        kind has a template of its own (`KIND_TEMPLATES`), replaced by `kind_templates`.
        `timezone` is the zone times a finding carries are shown in."""
        self.language = language
        self.region = region
        self.zone = ZoneInfo(timezone)
        self._files: dict[str, str | None] = {
            **{f"{k}.md.j2": None for k in KIND_TEMPLATES},
            **{
                f"{k}.md.j2": path
                for k, path in (kind_templates or {}).items()
                if k in KIND_TEMPLATES
            },
            "alert.md.j2": alert_template,
            "summary.md.j2": summary_template,
            "heartbeat.md.j2": None,
        }
        self._env: SandboxedEnvironment | None = None
        self._compiled: dict[str, Template] = {}

    @classmethod
    def of(cls, config: Config) -> Renderer:
        """The renderer a config's messages are drawn with (the tick's, and the commands')."""
        return cls(
            config.templates.language,
            config.region,
            config.templates.alert,
            config.templates.summary,
            timezone=config.timezone,
        )

    def compile(self) -> Renderer:
        """Load and compile every template now; raises RenderError naming a broken one."""
        for name in self._files:
            self._template(name)
        return self

    def _template(self, name: str) -> Template:
        """One template, compiled when first needed (a tick sends one or two kinds)."""
        template = self._compiled.get(name)
        if template is None:
            if self._env is None:
                self._env = _environment(self.language)
            template = self._compiled[name] = _load(self._env, self._files[name], name)
        return template

    def template_for(self, kind: str) -> Template:
        """The template a single alert of `kind` is rendered with."""
        return self._template(f"{kind}.md.j2" if kind in KIND_TEMPLATES else "alert.md.j2")

    def context(self, alert: Alert, result_limit: int = RESULT_LIMIT) -> dict[str, Any]:
        """What a template may print: every text from SchedulerX, a job or the config
        already neutralised, times in the configured zone, spans in words."""
        inst = alert.instance
        job = alert.job
        text = _neutral(
            alert.job_name,
            job.namespace if job else "",
            job.group if job else "",
            inst.work_addr if inst else "",
            inst.executor if inst else "",
            inst.result if inst else "",
            result_limit,
        )
        name = text.job_name
        namespace = job.namespace if job else ""
        ctx: dict[str, Any] = {
            "kind": alert.kind,
            "kind_words": KIND_WORDS[self.language].get(alert.kind),
            "job_id": job.job_id if job else None,
            "job_name": name,
            "job_label": _label(name, job),
            "namespace": text.namespace,
            "group": text.group,
            "worker": text.worker,
            "executor": text.executor,
            # Pre-rendered quote; `result_lines` for templates that format it their own way.
            "result": _quote(text.result_lines),
            "result_lines": list(text.result_lines),
            "result_text": text.result_text,
            "attempts": alert.attempts,
            "console_url": CONSOLE_URL.format(
                region=quote(self.region, safe=""),
                namespace=quote(namespace, safe="", errors="replace"),
            ),
            # Every fact of the finding, texts neutralised, for templates of their own.
            "facts": {key: _neutral_fact(value) for key, value in alert.facts.items()},
            "is_run": alert.finding.is_run_failure,
        }
        ctx.update(self._run(inst))
        ctx.update(self._facts(alert, result_limit))
        from schedulerx_alert.delivery.evidence_text import (
            log_context,  # with the first alert rendered
        )

        ctx.update(log_context(alert.evidence, result_limit))
        return ctx

    def _run(self, inst: JobInstance | None) -> dict[str, Any]:
        status = inst.status if inst else None
        words = STATUS_WORDS[self.language]
        trigger = None
        if inst is not None and inst.trigger_type is not None:
            try:
                trigger = TRIGGER_WORDS[self.language][TriggerType(inst.trigger_type)]
            except ValueError:
                trigger = str(inst.trigger_type)
        duration = None
        if inst and inst.start_time and inst.end_time and inst.end_time >= inst.start_time:
            duration = _duration(inst.end_time - inst.start_time)
        return {
            "instance_id": inst.instance_id if inst else None,
            "status": (words[status] if status is not None else f"{inst.status_code}")
            if inst
            else None,
            "status_code": inst.status_code if inst else None,
            "trigger": trigger,
            "schedule_time": _fmt(inst.schedule_time) if inst else None,
            "start_time": _fmt(inst.start_time) if inst else None,
            "end_time": _fmt(inst.end_time) if inst else None,
            "duration": duration,
        }

    def _facts(self, alert: Alert, result_limit: int) -> dict[str, Any]:
        """The kind's own values, ready to print (None when the finding lacks them)."""
        facts = alert.facts
        span = functools.partial(_span, self.language)

        def number(name: str) -> float | None:
            value = facts.get(name)
            return float(value) if isinstance(value, (int, float)) else None

        def when(name: str, fire: bool = False) -> str | None:
            value = number(name)
            return None if value is None else _fmt_epoch(value, self.zone, fire)

        def seconds(name: str) -> str | None:
            value = number(name)
            return None if value is None else span(value)

        def count(name: str) -> int | None:
            value = number(name)
            return None if value is None else int(value)

        from schedulerx_alert.delivery.neutralise import line

        fires = facts.get("missed_fires")
        settled = facts.get("settled_as")
        return {
            "streak": count("streak"),
            "since": when("since"),
            # recovered
            "broken_for": seconds("broken_for_seconds"),
            "failed_runs": count("failed_runs"),
            # stuck
            "running_for": seconds("running_for_seconds"),
            "stuck_after": seconds("stuck_after_seconds"),
            # missed
            "expected_at": when("expected_at", fire=True),
            "last_expected_at": when("last_expected_at", fire=True),
            "missed_count": count("missed_count"),
            "missed_fires": [
                _fmt_epoch(float(t), self.zone, fire=True)
                for t in (fires if isinstance(fires, tuple) else ())
                if isinstance(t, (int, float))
            ],
            "grace": seconds("grace_seconds"),
            "zone": line(facts.get("zone") or "", FIELD_CAP) or None,
            # flapping, settled
            "changes": count("changes"),
            "window": seconds("window_seconds"),
            "settled_as": settled if settled in ("ok", "failing") else None,
            "flapping_since": when("flapping_since"),
            "stable_since": when("stable_since"),
            # shared_cause
            **self._shared(alert, result_limit),
        }

    def _shared(self, alert: Alert, result_limit: int) -> dict[str, Any]:
        from schedulerx_alert.delivery.neutralise import line

        if alert.kind != SHARED_CAUSE:
            return {"job_count": None, "instance_count": None, "jobs": [], "more_jobs": 0}
        runs = {inst.job: inst for inst in reversed(alert.instances)}
        jobs = [
            {
                "label": _label(line(alert.name_of(job)) if alert.name_of(job) else None, job),
                "instance_id": runs[job].instance_id if job in runs else None,
                "end_time": _fmt(runs[job].end_time) if job in runs else None,
                "status": STATUS_WORDS[self.language].get(runs[job].status)  # type: ignore[arg-type]
                if job in runs and runs[job].status is not None
                else None,
            }
            for job in alert.jobs[:SHARED_LISTED]
        ]
        job_count = alert.facts.get("job_count")
        total = job_count if isinstance(job_count, int) else len(alert.jobs)
        instance_count = alert.facts.get("instance_count")
        return {
            "job_count": total,
            "instance_count": instance_count
            if isinstance(instance_count, int)
            else len(alert.instances),
            "jobs": jobs,
            "more_jobs": max(0, total - len(jobs)),
        }

    def alert(
        self,
        alert: Alert,
        at_mobiles: Sequence[str] = (),
        result_limit: int = RESULT_LIMIT,
        at_user_ids: Sequence[str] = (),
    ) -> Message:
        ctx = self.context(alert, result_limit)
        ctx["at_mobiles"] = list(at_mobiles)
        message = self._render(self.template_for(alert.kind), ctx, at_mobiles)
        return replace(message, at_user_ids=tuple(at_user_ids))

    def summary(
        self,
        alerts: Sequence[Alert],
        at_mobiles: Sequence[str] = (),
        more: int = 0,
        expired: int = 0,
        at_user_ids: Sequence[str] = (),
    ) -> Message:
        items = [self.context(a, result_limit=SUMMARY_RESULT_LIMIT) for a in alerts]
        ctx = {
            "items": items,
            "count": len(items),
            # Whether every item is a run that failed (the heading then says so).
            "only_runs": all(item["is_run"] for item in items),
            "more": more,
            # Earlier alerts to this receiver dropped undelivered for their age.
            "expired": expired,
            "at_mobiles": list(at_mobiles),
            "console_url": items[0]["console_url"] if items else "",
        }
        message = self._render(self._template("summary.md.j2"), ctx, at_mobiles)
        return replace(message, at_user_ids=tuple(at_user_ids))

    def heartbeat(self, ctx: Mapping[str, Any]) -> Message:
        """The daily digest; `ctx` comes from heartbeat.context, its texts neutralised."""
        return self._render(self._template("heartbeat.md.j2"), dict(ctx), ())

    def _render(
        self, template: Template, ctx: dict[str, Any], at_mobiles: Sequence[str]
    ) -> Message:
        try:
            text = template.render(ctx)
        except _template_error() as exc:
            raise RenderError(f"template {template.name or '(user)'}: {exc}") from None
        title = text.strip().partition("\n")[0].lstrip("#").strip() or "SchedulerX"
        return Message(title=title, text=text.strip(), at_mobiles=tuple(at_mobiles))


def _label(name: str | None, job: JobKey | None) -> str | None:
    if job is None:
        return name
    return f"{name} ({job.job_id})" if name else str(job.job_id)


def _neutral_fact(value: Fact) -> Any:
    from schedulerx_alert.delivery.neutralise import line

    if isinstance(value, str):
        return line(value)
    if isinstance(value, tuple):
        return [line(v) if isinstance(v, str) else v for v in value]
    return value


def _fmt_epoch(value: float, zone: ZoneInfo, fire: bool = False) -> str:
    """As SchedulerX shows a run's times; a cron's fire on the minute as "02:00"."""
    # Times inside facts are plain numbers to the state's reader, which cannot know
    # which ones are times: a damaged one is shown as it is, never fails the message.
    if not (math.isfinite(value) and 0 <= value <= MAX_EPOCH):
        return f"{value!r}"
    moment = datetime.fromtimestamp(value, zone)
    short = fire and moment.second == 0
    return moment.strftime("%Y-%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S")


def _span(language: str, seconds: float) -> str:
    """A length of time as a reader says it: 30 s, 47 min, 2 h 05 min, 3 d 4 h."""
    total = max(0, round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    units = SPAN_UNITS[language]
    if days:
        parts = [(days, "d"), (hours, "h")]
    elif hours:
        parts = [(hours, "h"), (minutes, "min")]
    elif minutes:
        parts = [(minutes, "min"), (secs, "s")] if secs and minutes < 10 else [(minutes, "min")]
    else:
        parts = [(secs, "s")]
    shown = [(n, unit) for n, unit in parts if n] or [(0, parts[0][1])]
    return units["sep"].join(f"{n}{units[unit]}" for n, unit in shown)


def _environment(language: str) -> SandboxedEnvironment:
    from jinja2 import FileSystemLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(TEMPLATE_DIR / language)),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["md"] = md_escape
    env.filters["quote"] = quote_block
    return env


def _load(env: SandboxedEnvironment, path: str | None, default: str) -> Template:
    try:
        if path is None:
            return env.get_template(default)
        return env.from_string(Path(path).read_text(encoding="utf-8"))
    except (OSError, _template_error()) as exc:
        raise RenderError(f"template {path or default}: {exc}") from None


def _template_error() -> type[Exception]:
    from jinja2 import TemplateError

    return TemplateError


@dataclass(frozen=True)
class _Neutral:
    job_name: str | None
    namespace: str
    group: str
    worker: str | None
    executor: str | None
    result_lines: tuple[str, ...]
    result_text: str


@lru_cache(maxsize=512)
def _neutral(
    job_name: str | None,
    namespace: str,
    group: str,
    work_addr: str,
    executor: str,
    result: str,
    result_limit: int,
) -> _Neutral:
    """The job's text, neutralised once: packing a summary renders the same alerts many times."""
    from schedulerx_alert.delivery.neutralise import block, line

    return _Neutral(
        job_name=line(job_name) if job_name else None,
        namespace=line(namespace),
        group=line(group),
        worker=line(work_addr, FIELD_CAP) or None,
        executor=line(executor, FIELD_CAP) or None,
        result_lines=block(result, result_limit),
        result_text=line(result, result_limit),
    )


def _fmt(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else None


def _duration(delta: Any) -> str:
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{seconds:02d}s"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"
