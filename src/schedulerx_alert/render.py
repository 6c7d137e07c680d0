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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .model import InstanceStatus, TriggerType
from .state import Alert

if TYPE_CHECKING:
    from jinja2 import Template
    from jinja2.sandbox import SandboxedEnvironment

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


def md_escape(value: Any, cap: int = SINGLE_LINE_CAP) -> str:
    """The `md` filter: any value as one line of plain text, capped."""
    from .neutralise import line

    return line(value, cap)


def quote_block(value: Any, limit: int = RESULT_LIMIT) -> str:
    """The `quote` filter: multi-line text as a markdown quote of plain lines, capped.

    Each line is neutralised on its own, so none can open a heading, list or
    nested quote; if a client shows no quotes, the reader sees "> " and text.
    """
    from .neutralise import block

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
    ) -> None:
        self.language = language
        self.region = region
        self._files = (alert_template, summary_template)
        self._compiled: tuple[Template, Template] | None = None

    def compile(self) -> Renderer:
        """Load and compile both templates now; raises RenderError naming a broken one."""
        self._templates()
        return self

    def _templates(self) -> tuple[Template, Template]:
        if self._compiled is None:
            env = _environment(self.language)
            alert_file, summary_file = self._files
            self._compiled = (
                _load(env, alert_file, "alert.md.j2"),
                _load(env, summary_file, "summary.md.j2"),
            )
        return self._compiled

    def context(self, alert: Alert, result_limit: int = RESULT_LIMIT) -> dict[str, Any]:
        inst = alert.instance
        status = inst.status
        words = STATUS_WORDS[self.language]
        status_words = words[status] if status is not None else f"{inst.status_code}"
        trigger = None
        if inst.trigger_type is not None:
            try:
                trigger = TRIGGER_WORDS[self.language][TriggerType(inst.trigger_type)]
            except ValueError:
                trigger = str(inst.trigger_type)
        duration = None
        if inst.start_time and inst.end_time and inst.end_time >= inst.start_time:
            duration = _duration(inst.end_time - inst.start_time)
        text = _neutral(
            alert.job_name,
            inst.job.namespace,
            inst.job.group,
            inst.work_addr,
            inst.executor,
            inst.result,
            result_limit,
        )
        name = text.job_name
        return {
            "kind": alert.kind,
            "job_id": inst.job.job_id,
            "job_name": name,
            "job_label": f"{name} ({inst.job.job_id})" if name else str(inst.job.job_id),
            "namespace": text.namespace,
            "group": text.group,
            "instance_id": inst.instance_id,
            "status": status_words,
            "status_code": inst.status_code,
            "trigger": trigger,
            "schedule_time": _fmt(inst.schedule_time),
            "start_time": _fmt(inst.start_time),
            "end_time": _fmt(inst.end_time),
            "duration": duration,
            "worker": text.worker,
            "executor": text.executor,
            # Pre-rendered quote; `result_lines` for templates that format it their own way.
            "result": _quote(text.result_lines),
            "result_lines": list(text.result_lines),
            "result_text": text.result_text,
            "attempts": alert.attempts,
            "console_url": CONSOLE_URL.format(
                region=quote(self.region, safe=""),
                namespace=quote(inst.job.namespace, safe="", errors="replace"),
            ),
        }

    def alert(
        self, alert: Alert, at_mobiles: Sequence[str] = (), result_limit: int = RESULT_LIMIT
    ) -> Message:
        ctx = self.context(alert, result_limit)
        ctx["at_mobiles"] = list(at_mobiles)
        return self._render(self._templates()[0], ctx, at_mobiles)

    def summary(
        self,
        alerts: Sequence[Alert],
        at_mobiles: Sequence[str] = (),
        more: int = 0,
        expired: int = 0,
    ) -> Message:
        items = [self.context(a, result_limit=SUMMARY_RESULT_LIMIT) for a in alerts]
        ctx = {
            "items": items,
            "count": len(items),
            "more": more,
            # Earlier alerts to this receiver dropped undelivered for their age.
            "expired": expired,
            "at_mobiles": list(at_mobiles),
            "console_url": items[0]["console_url"] if items else "",
        }
        return self._render(self._templates()[1], ctx, at_mobiles)

    def _render(
        self, template: Template, ctx: dict[str, Any], at_mobiles: Sequence[str]
    ) -> Message:
        try:
            text = template.render(ctx)
        except _template_error() as exc:
            raise RenderError(f"template {template.name or '(user)'}: {exc}") from None
        title = text.strip().partition("\n")[0].lstrip("#").strip() or "SchedulerX"
        return Message(title=title, text=text.strip(), at_mobiles=tuple(at_mobiles))


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
    from .neutralise import block, line

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
