"""The small HTML pages a silence link answers with: self-contained, in the config's language.

Every text on a page goes through the messages' neutraliser (`neutralise.fold`: no line
breaks, control, zero-width or bidi characters, so a job name cannot reorder what the
page says) and is then escaped (`html.escape`): text from jobs is data, never markup.
No page loads anything from elsewhere, and the headers forbid it
(Content-Security-Policy), forbid framing the confirmation button on another site,
and keep the link, a capability, out of caches and Referer headers.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from schedulerx_alert.delivery.neutralise import SINGLE_LINE_CAP, fold
from schedulerx_alert.links.http import HttpResponse

PARAGRAPH_CAP = 2000  # a config error page lists every problem, one paragraph each

HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
}

_STYLE = (
    "body{font-family:-apple-system,'PingFang SC','Noto Sans CJK SC',sans-serif;margin:0;"
    "background:#f5f6f7;color:#1f2329}main{max-width:32rem;margin:2rem auto;padding:1.5rem;"
    "background:#fff;border-radius:8px}h1{font-size:1.25rem}p{line-height:1.5}"
    "button{font-size:1rem;padding:.6rem 1.4rem;border:0;border-radius:6px;background:#3370ff;"
    "color:#fff}.note{color:#646a73;font-size:.9rem}code{word-break:break-all}"
)

WORDS = {
    "zh-CN": {
        "confirm_title": "静默任务 {job}？",
        "confirm_for": "静默后，这个任务的告警 {span}内不再发送（从点击确认时算起）。",
        "confirm_until": "静默后，这个任务的告警在 {until} 之前不再发送。",
        "held": "被静默的告警会被记录和计数，静默结束时汇总发送一条消息。",
        "button": "确认静默",
        "nothing_yet": "点击按钮之前什么都不会改变。",
        "silenced_title": "已静默 {job}",
        "silenced": "任务 {job} 的告警静默至 {until}（静默 #{id}）。",
        "expire_hint": "提前结束：schedulerx-alert silence expire {id}",
        "already_title": "已经静默过了",
        "already": (
            "这个链接已经用过：任务 {job} 的告警静默至 {until}（静默 #{id}）。没有新建静默。"
        ),
        "pending_title": "正在静默",
        "pending": "这个静默正在创建，请几秒后刷新页面。",
        "expired_title": "链接已过期",
        "expired": (
            "这个链接已过期（告警发出 {hours} 小时内有效），或者它要静默到的时间已经过去。"
            "没有做任何更改。"
        ),
        "invalid_title": "链接无效",
        "invalid": "这个链接无效：它被改动过，或者签名所用的密钥已不再被接受。没有做任何更改。",
        "failed_title": "静默没有创建",
        "failed": "静默没有创建：{reason}",
        "unavailable_title": "暂时无法静默",
        "unavailable": (
            "状态存储没有响应，静默可能没有保存。请稍后再次打开这个链接：同一个链接只会创建一次静默。"
        ),
        "method_title": "不支持的请求",
        "method": "请在钉钉中打开这个链接。",
        "job": "任务",
        "group": "应用分组",
        "namespace": "命名空间",
        "for": "{span}",
    },
    "en": {
        "confirm_title": "Silence {job}?",
        "confirm_for": "Its alerts will be held back for {span} from when you confirm.",
        "confirm_until": "Its alerts will be held back until {until}.",
        "held": (
            "Held-back alerts are recorded and counted; when the silence ends, one message "
            "lists them."
        ),
        "button": "Silence",
        "nothing_yet": "Nothing changes until you press the button.",
        "silenced_title": "Silenced {job}",
        "silenced": "Alerts of {job} are silenced until {until} (silence #{id}).",
        "expire_hint": "To end it early: schedulerx-alert silence expire {id}",
        "already_title": "Already silenced",
        "already": (
            "This link was used before: alerts of {job} are silenced until {until} "
            "(silence #{id}). No new silence was created."
        ),
        "pending_title": "Silencing",
        "pending": "This silence is being created; reload the page in a few seconds.",
        "expired_title": "Link expired",
        "expired": (
            "This link has expired (it works for {hours} h after the alert), or the time it "
            "silences until has passed. Nothing was changed."
        ),
        "invalid_title": "Link not valid",
        "invalid": (
            "This link is not valid: it was changed, or signed with a key this function no "
            "longer accepts. Nothing was changed."
        ),
        "failed_title": "Not silenced",
        "failed": "The silence was not created: {reason}",
        "unavailable_title": "Cannot silence right now",
        "unavailable": (
            "The state store did not answer, so the silence may not have been saved. Open this "
            "link again in a moment: one link never creates more than one silence."
        ),
        "method_title": "Not supported",
        "method": "Open this link from the DingTalk message.",
        "job": "Job",
        "group": "Group",
        "namespace": "Namespace",
        "for": "{span}",
    },
}


def words(language: str) -> dict[str, str]:
    return WORDS.get(language, WORDS["en"])


# What a silence link of a workflow's message says where a job's says "job".
WORKFLOW_WORDS = {
    "zh-CN": {
        "confirm_title": "静默工作流 {job}？",
        "confirm_for": "静默后，这个工作流的告警 {span}内不再发送（从点击确认时算起）。",
        "confirm_until": "静默后，这个工作流的告警在 {until} 之前不再发送。",
        "silenced_title": "已静默工作流 {job}",
        "silenced": "工作流 {job} 的告警静默至 {until}（静默 #{id}）。",
        "already": (
            "这个链接已经用过：工作流 {job} 的告警静默至 {until}（静默 #{id}）。没有新建静默。"
        ),
        "job": "工作流",
    },
    "en": {
        "confirm_title": "Silence workflow {job}?",
        "silenced_title": "Silenced workflow {job}",
        "silenced": "Alerts of workflow {job} are silenced until {until} (silence #{id}).",
        "already": (
            "This link was used before: alerts of workflow {job} are silenced until {until} "
            "(silence #{id}). No new silence was created."
        ),
        "job": "Workflow",
    },
}


def workflow_words(language: str) -> dict[str, str]:
    return {**words(language), **WORKFLOW_WORDS.get(language, WORKFLOW_WORDS["en"])}


def page(
    status: int,
    language: str,
    title: str,
    paragraphs: Sequence[str],
    *,
    facts: Sequence[tuple[str, str]] = (),
    token: str | None = None,
    notes: Sequence[str] = (),
    extra_headers: dict[str, str] | None = None,
    button: str | None = None,
) -> HttpResponse:
    """A page of plain text: every argument is text, neutralised and escaped here."""
    w = words(language)
    parts = [f"<h1>{_text(title)}</h1>"]
    parts += [f"<p>{_text(text, PARAGRAPH_CAP)}</p>" for text in paragraphs]
    if facts:
        rows = "".join(f"<dt>{_text(k)}</dt><dd>{_text(v)}</dd>" for k, v in facts)
        parts.append(f"<dl>{rows}</dl>")
    if token is not None:
        # No action: the form posts to the URL it was opened at, token and all.
        parts.append(
            '<form method="post">'
            f'<input type="hidden" name="t" value="{escape(token, quote=True)}">'
            f'<button type="submit">{escape(button or w["button"])}</button></form>'
        )
    parts += [f'<p class="note">{_text(text, PARAGRAPH_CAP)}</p>' for text in notes]
    lang = "zh-CN" if language == "zh-CN" else "en"
    body = (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_text(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{''.join(parts)}</main></body></html>"
    )
    return HttpResponse(status, body, {**HEADERS, **(extra_headers or {})})


def _text(value: str, cap: int = SINGLE_LINE_CAP) -> str:
    """One line of a page: what a message would show of it, as HTML text."""
    return escape(fold(value, cap))
