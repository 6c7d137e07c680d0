"""Write docs/config-reference.md from the config's described records.

    python scripts/make_config_reference.py           # rewrite the file
    python scripts/make_config_reference.py --check   # exit 1 when it differs

Each option is a dataclass field declared with config/schema.py's `option()`: its
default, reader and `doc` are stated there once, and this page is written from them
(tests/test_config_reference.py fails when the checked-in page differs).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "config-reference.md"
COLUMN = 40
LISTS = ("receivers", "watch", "workflows", "silences", "routes")  # lists of entries

HEADER = """\
# Config reference (generated)

Written by `scripts/make_config_reference.py` from the config's described records
(`src/schedulerx_alert/config/records.py`, `watch.py`, `workflows.py`, `heartbeat.py`,
`sections.py`, `actions.py`): each line is an option's field, with its default or an
example, and its description. Do not edit by hand; change the field and run the script. A
test fails when this page and the fields differ.

Every section is read by one walker (`config/schema.py`): an unknown key is refused
with its path (`schedulerx.qurey: unknown key`), a bad value is named by its path and
the file's value (`schedulerx.query: must be one of auto, per_job, every_job, not
'fast'`), and every problem of the file is listed at once. [The configuration
guide](config.md) shows every section in one example and says how routes, silences and
quiet hours work together.
"""


def sections() -> list[tuple[str, type, str]]:
    """(key in the file, record, what the section is for), in the order of the page."""
    from schedulerx_alert.config.actions import ActionSettings
    from schedulerx_alert.config.heartbeat import HeartbeatConfig
    from schedulerx_alert.config.records import (
        DingTalkConfig,
        HealthConfig,
        ReceiverConfig,
        SchedulerXConfig,
        StateConfig,
        TemplateConfig,
        TopLevel,
    )
    from schedulerx_alert.config.sections import RouteEntry, SilenceEntry
    from schedulerx_alert.config.watch import WatchEntry
    from schedulerx_alert.config.workflows import WorkflowEntry

    return [
        ("", TopLevel, "The options at the top of the file (`region` is required)."),
        ("schedulerx", SchedulerXConfig, "How SchedulerX's OpenAPI is called."),
        ("state", StateConfig, "Where the state is kept (`state.url` is required)."),
        ("dingtalk", DingTalkConfig, "How the robots are posted to."),
        (
            "receivers",
            ReceiverConfig,
            "A list: the DingTalk group robots alerts go to, each by its name (`name` and "
            "`webhook` are required), with its optional `quiet_hours`: weekly windows in "
            "which what is not excepted is held back and sent later as one digest (see "
            "[Who hears what](config.md)).",
        ),
        (
            "watch",
            WatchEntry,
            "A list: which jobs are watched and who hears of them, with each entry's alert "
            "rules (see [Alert kinds](alerts.md)); `mention_owners` and `include_log` "
            "default to the top-level options of the same name.",
        ),
        (
            "workflows",
            WorkflowEntry,
            "Optional, a list: workflows watched as a whole, one message per failed instance "
            "(see [Workflows](workflows.md)); `mention_owners` defaults to the top-level "
            "option of the same name.",
        ),
        (
            "routes",
            RouteEntry,
            "A list, after each watch entry's own receivers: each finding goes to the "
            "receivers of the first route that matches it (and of the next ones while a "
            "matching route says `continue: true`).",
        ),
        (
            "silences",
            SilenceEntry,
            "A list: what matches is held back from `start` to `end`, counted, and sent as "
            "one digest when the silence is over (silences added from the command line or "
            "the chat live in OSS).",
        ),
        ("templates", TemplateConfig, "The messages' language and your own templates."),
        ("health", HealthConfig, "Who hears that the monitor itself is broken."),
        (
            "heartbeat",
            HeartbeatConfig,
            "Optional: a daily digest, the monitor's proof of life. Without the section, "
            "none; with it, `receiver` and `at` are required.",
        ),
        (
            "actions",
            ActionSettings,
            "Optional: buttons under each alert that silence its job (and, when listed, act "
            "on its run) through the function's HTTP trigger. The signing keys are read "
            "from the environment variable only, never from the file.",
        ),
    ]


def nested() -> dict[type, dict[str, tuple[type, bool, str]]]:
    """The records written inside a record's block: by the parent, each key's record,
    whether it is a list of them, and (for a key that is no option) its description."""
    from schedulerx_alert.config.records import ReceiverConfig
    from schedulerx_alert.config.sections import QuietHoursEntry, WindowEntry

    return {
        ReceiverConfig: {
            "quiet_hours": (QuietHoursEntry, False, "optional: what is held back, and when")
        },
        QuietHoursEntry: {"windows": (WindowEntry, True, "")},
    }


def block(record: type, first: str, rest: str) -> list[str]:
    """The lines of `record`'s options, the first indented by `first`, the others `rest`."""
    from schedulerx_alert.config.schema import describe, key_of, options

    inside = dict(nested().get(record, {}))
    lines: list[str] = []
    indent = first
    for spec in options(record):
        required = spec.default is dataclasses.MISSING
        example = spec.metadata["example"]
        shown = spec.metadata["shown"] or describe
        note = spec.metadata["doc"]
        if required:
            note += " (required)"
        elif example is not None and spec.default and "default" not in note:
            note += f" (default: {shown(spec.default)})"
        if key_of(spec) in inside:
            lines += within(key_of(spec), inside.pop(key_of(spec)), note, indent, rest)
        else:
            value = example if example is not None else shown(spec.default)
            lines.append(f"{f'{indent}{key_of(spec)}: {value}'.ljust(COLUMN - 1)} # {note}")
        indent = rest
    for key, child in inside.items():
        lines += within(key, child, child[2], indent, rest)
    return lines


def within(key: str, child: tuple[type, bool, str], note: str, indent: str, rest: str) -> list[str]:
    record, is_list, _ = child
    head = f"{f'{indent}{key}:'.ljust(COLUMN - 1)} # {note}"
    if is_list:
        return [head, *block(record, rest + "  - ", rest + "    ")]
    return [head, *block(record, rest + "  ", rest + "  ")]


def render() -> str:
    parts = [HEADER]
    for key, record, about in sections():
        lines = [f"{key}:"] if key else []
        if key in LISTS:
            lines += block(record, "  - ", "    ")
        else:
            lines += block(record, "  " if key else "", "  " if key else "")
        title = f"`{key}:`" if key else "Top level"
        parts.append(f"## {title}\n\n{about}\n\n```yaml\n" + "\n".join(lines) + "\n```\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the page differs")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} differs: run {__file__}", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    sys.exit(main())
