"""Properties of the neutraliser and of every message built on it, over random and hostile text."""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from types import MappingProxyType

from hypothesis import example, given, settings
from hypothesis import strategies as st

from schedulerx_alert.cli import samples
from schedulerx_alert.core.findings import Fact
from schedulerx_alert.core.model import JobKey
from schedulerx_alert.core.state import Alert, HealthRecord, run_alert
from schedulerx_alert.delivery.health import IMPAIRED, health_message
from schedulerx_alert.delivery.neutralise import CUT, block, fold, line
from schedulerx_alert.delivery.render import Renderer
from tests.builders import T0, alert
from tests.markup import MARKUP_CHARS, violations

PIECES = [
    *"[]()!<>*_`~|#@\\&=+-.:/ \t\n\r\x0b\x0c\x1c\x85\u2028\u2029\u200b\u200d\u202e\u2066\ufeff",
    *"。．｡＠［",
    "\ud800",
    "](",
    "![x](",
    "http://",
    "HTTPS://",
    "hxxps://",
    "javascript:",
    "mailto:",
    "www.",
    "evil",
    "example",
    "com",
    "Job",
    "java",
    "xn--p1ai",
    "中国",
    "1.",
    "10)",
    "###",
    "---",
    "===",
    "> ",
    "    ",
    "&#64;",
    "&lt;",
    "<img src=x>",
    "@all",
    "@13800000000",
    "Resolved, no action needed",
]
hostile = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)
mixed = st.lists(hostile | st.text(), max_size=4).map("".join)
text = st.one_of(st.text(max_size=300), hostile, mixed)
caps = st.integers(min_value=0, max_value=400)
FAST = settings(deadline=None)
RENDERS = settings(deadline=None)


def _plain_chars(value: str) -> bool:
    return not any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in value)


@FAST
@given(text, caps)
# Cuts that make what was none a host name, a mailto: or a loose underscore.
@example("see evil.comX", 13)
@example("000.EXAMPLE00", 12)
@example("-MAILTO:0", 9)
@example("max_calls", 5)
def test_a_line_is_one_short_line_of_plain_text_and_a_fixed_point(value: str, cap: int) -> None:
    out = line(value, cap)
    assert len(out) <= cap
    assert _plain_chars(out) and out == out.strip()
    assert not any(c in out for c in MARKUP_CHARS)
    assert line(out, cap) == out
    assert violations(f"### t\n- **Field**: {out}\n\n> {out}  \n{out}") == []


@FAST
@given(text, caps, st.integers(min_value=0, max_value=50))
def test_a_block_is_capped_plain_lines_and_a_fixed_point(
    value: str, cap: int, max_lines: int
) -> None:
    lines = block(value, cap, max_lines)
    assert sum(map(len, lines)) <= cap and len(lines) <= max_lines
    for each in lines:
        assert each and each == each.rstrip() and _plain_chars(each)
        assert not any(c in each for c in MARKUP_CHARS)
    assert block("\n".join(lines), cap, max_lines) == lines
    quoted = "\n".join(f"> {each}  " for each in lines)
    assert violations("### t\n\n" + quoted) == []


@FAST
@given(text, st.integers(min_value=1, max_value=400))
def test_a_cut_is_marked(value: str, cap: int) -> None:
    # A cap of 0 asks for nothing at all (the shortest form of an alert).
    out = line(value, cap)
    whole = line(value, 10_000)
    assert out == whole or out.endswith(CUT)


@FAST
@given(text, caps)
def test_fold_keeps_markup_but_no_line_breaks(value: str, cap: int) -> None:
    out = fold(value, cap)
    assert len(out) <= cap and _plain_chars(out) and fold(out, cap) == out


def _hostile_alert(
    result: str, worker: str, executor: str, group: str, namespace: str, name: str
) -> Alert:
    [base] = alert(1, result=result).instances
    job = base.job._replace(group=group, namespace=namespace)
    inst = replace(base, job=job, work_addr=worker, executor=executor)
    return run_alert("failed", "ops", inst, name or None, T0)


fields = st.tuples(text, text, text, text, text, text)
languages = st.sampled_from(["en", "zh-CN"])


@RENDERS
@given(fields, languages)
def test_an_alert_shows_job_text_without_obeying_it(values: tuple[str, ...], language: str) -> None:
    message = Renderer(language).alert(_hostile_alert(*values), at_mobiles=["13800000000"])
    assert violations(message.text, mobiles=["13800000000"]) == []
    # Every field is capped: no job text can push a message past DingTalk's limit.
    assert len(message.text.encode()) < 12_000


@RENDERS
@given(st.lists(fields, min_size=1, max_size=6), languages, st.integers(0, 50))
def test_a_summary_shows_job_text_without_obeying_it(
    many: list[tuple[str, ...]], language: str, more: int
) -> None:
    alerts = [_hostile_alert(*values) for values in many]
    message = Renderer(language).summary(alerts, more=more)
    assert violations(message.text) == []


def _hostile_kind(base: Alert, values: tuple[str, ...]) -> Alert:
    """A sample of another kind with every text from a job, and every text fact, hostile."""
    result, worker, executor, group, namespace, name = values

    def hostile_job(key: JobKey) -> JobKey:
        return key._replace(group=group, namespace=namespace)

    def hostile_fact(value: Fact) -> Fact:
        if isinstance(value, str):
            return result
        if isinstance(value, tuple) and value and isinstance(value[0], str):
            return tuple(result for _ in value)
        return value

    found = replace(
        base.finding,
        subject=name,
        instances=tuple(
            replace(i, job=hostile_job(i.job), result=result, work_addr=worker, executor=executor)
            for i in base.instances
        ),
        jobs=tuple(hostile_job(job) for job in base.jobs),
        facts=MappingProxyType({k: hostile_fact(v) for k, v in base.facts.items()}),
    )
    return Alert(base.receiver, found, base.created_at, tuple(name for _ in base.jobs))


@RENDERS
@given(st.sampled_from(samples.every_kind()), fields, languages)
def test_every_kind_shows_job_text_and_facts_without_obeying_them(
    base: Alert, values: tuple[str, ...], language: str
) -> None:
    alert = _hostile_kind(base, values)
    message = Renderer(language).alert(alert, at_mobiles=["13800000000"])
    assert violations(message.text, mobiles=["13800000000"]) == []
    assert len(message.text.encode()) < 16_000
    summary = Renderer(language).summary([alert, _hostile_kind(base, values[::-1])])
    assert violations(summary.text) == []


@RENDERS
@given(text, languages)
def test_the_impaired_message_shows_its_reason_without_obeying_it(
    reason: str, language: str
) -> None:
    message = health_message(IMPAIRED, HealthRecord(3, True, reason), language)
    assert violations(message.text) == []
