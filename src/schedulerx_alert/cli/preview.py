"""Draw a DingTalk markdown message roughly as a group chat shows it: HTML, or PNG via Chromium.

Only `schedulerx-alert render --preview` uses this. Its markdown library is the optional
extra `[preview]` and Chromium comes from the system; the function never imports either.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# CSS pixels; DingTalk's desktop client draws markdown cards about this wide.
PAGE_WIDTH = 520
# The PNG is drawn at twice the CSS size so that it stays sharp on high-density screens.
SCALE = 2
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_TIMEOUT = 90.0

SENDER = {"zh-CN": "SchedulerX 告警机器人", "en": "SchedulerX alert robot"}
CAPTION = {"zh-CN": "通知栏标题：", "en": "Notification title: "}

_MENTION = re.compile(r"(?<![\w/=&;])@(\d{5,15})\b")
_HEIGHT = re.compile(r'data-height="(\d+)"')

# Fonts from Debian's fonts-noto-cjk first: the page must not fetch anything.
_CSS = """
html, body { margin: 0; background: #f2f3f5; }
body {
  font-family: "Noto Sans CJK SC", "Noto Sans SC", "PingFang SC", "Microsoft YaHei",
    "Source Han Sans SC", "WenQuanYi Micro Hei", sans-serif;
  color: #171a1d; font-size: 14px; line-height: 1.6;
  -webkit-font-smoothing: antialiased;
}
#page { width: %(width)dpx; box-sizing: border-box; padding: 16px 16px 12px; }
.row { display: flex; align-items: flex-start; gap: 10px; }
.avatar { flex: none; width: 36px; height: 36px; border-radius: 50%%;
  background: linear-gradient(135deg, #3296fa, #0066ff); display: flex;
  align-items: center; justify-content: center; }
.avatar svg { width: 22px; height: 22px; }
.col { min-width: 0; flex: 1; }
.sender { font-size: 12px; color: #858a99; margin: 0 0 4px 2px; line-height: 1.3; }
.bubble { background: #fff; border-radius: 8px; padding: 10px 14px 12px;
  box-shadow: 0 1px 2px rgba(0, 0, 0, .06); overflow-wrap: anywhere; }
.bubble h1, .bubble h2, .bubble h3, .bubble h4, .bubble h5, .bubble h6 {
  margin: 2px 0 8px; line-height: 1.45; font-weight: 600; }
.bubble h1 { font-size: 20px; } .bubble h2 { font-size: 18px; }
.bubble h3 { font-size: 16px; } .bubble h4, .bubble h5, .bubble h6 { font-size: 14px; }
.bubble p { margin: 0 0 8px; }
.bubble ul, .bubble ol { margin: 0 0 8px; padding-left: 20px; }
.bubble li { margin: 1px 0; }
.bubble strong { font-weight: 600; }
.bubble blockquote { margin: 0 0 8px; padding: 2px 0 2px 10px; color: #5f6470;
  border-left: 3px solid #d5d8de; font-size: 13px; }
.bubble blockquote p { margin: 0; }
.bubble a { color: #0089ff; text-decoration: none; }
.bubble code { font-family: "Noto Sans Mono CJK SC", "DejaVu Sans Mono", monospace;
  background: #f2f3f5; border-radius: 3px; padding: 0 3px; font-size: 13px; }
.bubble pre { background: #f2f3f5; padding: 6px 8px; border-radius: 4px;
  white-space: pre-wrap; }
.bubble hr { border: 0; border-top: 1px solid #e5e6eb; }
.bubble > :last-child { margin-bottom: 0; }
.mention { color: #0089ff; }
.caption { font-size: 12px; color: #a2a6b0; margin: 6px 0 0 2px; line-height: 1.3; }
"""

_ROBOT = (
    '<svg viewBox="0 0 24 24" fill="none" stroke="#fff" stroke-width="1.8" '
    'stroke-linecap="round"><rect x="4" y="8" width="16" height="12" rx="3"/>'
    '<path d="M12 4v4M2 13v3M22 13v3"/><circle cx="9" cy="14" r="1.2" fill="#fff"/>'
    '<circle cx="15" cy="14" r="1.2" fill="#fff"/></svg>'
)

# Measures the page for the screenshot; Chromium's --dump-dom prints the result.
_MEASURE = (
    "<script>document.body.setAttribute('data-height', "
    "Math.ceil(document.getElementById('page').getBoundingClientRect().height));</script>"
)


class PreviewError(Exception):
    """A preview that cannot be made, with what to do about it."""


def markdown_html(text: str) -> str:
    """DingTalk markdown as HTML: CommonMark without raw HTML, as DingTalk shows none."""
    try:
        from markdown_it import MarkdownIt
    except ImportError:
        raise PreviewError(
            "--preview needs the markdown-it-py package: pip install 'schedulerx-alert[preview]'"
        ) from None
    rendered = MarkdownIt("commonmark", {"html": False}).render(text)
    # DingTalk shows an @-mentioned mobile as a highlighted name.
    return _MENTION.sub(r'<span class="mention">@\1</span>', rendered)


def page(payload: Mapping[str, Any], language: str = "zh-CN") -> str:
    """A self-contained HTML page showing the markdown message of a DingTalk robot body."""
    markdown = payload.get("markdown")
    if payload.get("msgtype") != "markdown" or not isinstance(markdown, Mapping):
        raise PreviewError(f"can only preview markdown messages, not {payload.get('msgtype')!r}")
    title = str(markdown.get("title", ""))
    body = markdown_html(str(markdown.get("text", "")))
    lang = "en" if language == "en" else "zh-CN"
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        f"<style>{_CSS % {'width': PAGE_WIDTH}}</style></head>\n"
        f'<body><div id="page"><div class="row"><div class="avatar">{_ROBOT}</div>'
        f'<div class="col"><div class="sender">{SENDER[lang]}</div>\n'
        f'<div class="bubble">\n{body}</div>\n'
        f'<div class="caption">{CAPTION[lang]}{html.escape(title)}</div>'
        f"</div></div></div></body></html>\n"
    )


def find_chromium() -> str | None:
    """SCHEDULERX_ALERT_CHROMIUM, else the first Chromium or Chrome on PATH."""
    override = os.environ.get("SCHEDULERX_ALERT_CHROMIUM")
    if override:
        return shutil.which(override)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def write(payload: Mapping[str, Any], out: Path, language: str = "zh-CN") -> None:
    """Write the preview to out: .html as is, .png through headless Chromium."""
    suffix = out.suffix.lower()
    if suffix not in (".html", ".htm", ".png"):
        raise PreviewError(f"{out}: the preview is written as .png or .html, not {suffix!r}")
    document = page(payload, language)
    if suffix != ".png":
        out.write_text(document, encoding="utf-8")
        return
    chromium = find_chromium()
    if chromium is None:
        raise PreviewError(
            "a PNG preview needs Chromium (`make preview-tools`, or apt-get install chromium "
            "fonts-noto-cjk; SCHEDULERX_ALERT_CHROMIUM names another binary); "
            "an .html preview does not"
        )
    screenshot(chromium, document, out)


def screenshot(chromium: str, document: str, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="schedulerx-alert-preview-") as temp:
        folder = Path(temp)
        source = folder / "message.html"
        source.write_text(document.replace("</body>", _MEASURE + "</body>"), encoding="utf-8")
        # Headless screenshots cover the window only: measure the page, then size the window.
        dom = _run(chromium, folder, ["--dump-dom", f"--window-size={PAGE_WIDTH},600"], source)
        match = _HEIGHT.search(dom)
        if not match:
            raise PreviewError("Chromium did not lay out the preview page")
        height = int(match.group(1))
        target = out.resolve()
        _run(
            chromium,
            folder,
            [
                f"--screenshot={target}",
                f"--window-size={PAGE_WIDTH},{height}",
                f"--force-device-scale-factor={SCALE}",
                "--hide-scrollbars",
            ],
            source,
        )
        if not target.is_file():
            raise PreviewError(f"Chromium wrote no screenshot to {target}")


def _run(chromium: str, folder: Path, flags: list[str], source: Path) -> str:
    command = [
        chromium,
        "--headless",
        # Chromium's sandbox refuses to start as root (containers, CI); the page is our own
        # local file and the network is never used.
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={folder / 'profile'}",
        *flags,
        source.as_uri(),
    ]
    try:
        done = subprocess.run(  # noqa: S603 - a fixed argument list, no shell
            command,
            capture_output=True,
            text=True,
            timeout=CHROMIUM_TIMEOUT,
            check=False,
            cwd=folder,
        )
    except subprocess.TimeoutExpired:
        raise PreviewError(f"{chromium} took over {CHROMIUM_TIMEOUT:.0f} s") from None
    except OSError as exc:
        raise PreviewError(f"cannot run {chromium}: {exc}") from None
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise PreviewError(f"{chromium} failed (exit {done.returncode}):\n{tail}")
    return done.stdout
