"""Messages: the languages, user templates, and what a template may not do."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from schedulerx_alert.cli.main import main
from schedulerx_alert.core.state import run_alert
from schedulerx_alert.delivery.neutralise import SINGLE_LINE_CAP
from schedulerx_alert.delivery.render import FIELD_CAP, RESULT_LIMIT, Renderer, RenderError
from tests.builders import T0, alert
from tests.world import World


def test_english_messages_carry_everything_needed_to_act() -> None:
    message = Renderer("en").alert(alert(11, result="OOM *killed*"), at_mobiles=["13800000000"])
    assert message.title == "SchedulerX job failed: 92583"
    for part in (
        "Instance**: 11 (failed, scheduled)",
        "took 20s",
        "10.0.0.5:16888",
        "OOM ＊killed＊",
        "Open in console",
        "@13800000000",
    ):
        assert part in message.text


def test_a_user_template_is_used_for_alerts(world: World, tmp_path: Path) -> None:
    template = tmp_path / "mine.md.j2"
    template.write_text(
        "### {{ job_label }} is {{ status }}\nrun {{ instance_id }} on {{ worker }}\n"
    )
    world.raw["templates"] = {"language": "en", "alert": template.name}
    run = world.sx.add_instance(92583, status=5)
    world.tick()
    assert world.texts() == [f"### 92583 is failed\nrun {run} on 10.0.0.5:16888"]


def test_templates_run_in_a_sandbox(tmp_path: Path) -> None:
    template = tmp_path / "evil.md.j2"
    template.write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    renderer = Renderer("en", alert_template=str(template))
    with pytest.raises(RenderError, match="unsafe"):
        renderer.alert(alert(1))


def test_validate_compiles_user_templates(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    broken = tmp_path / "broken.md.j2"
    broken.write_text("{% if %}")
    world.raw["templates"] = {"alert": broken.name}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(world.raw))
    assert main(["validate", "--config", str(config)]) == 2
    assert "broken.md.j2" in capsys.readouterr().err


def test_links_and_host_names_are_defanged_and_class_names_stay_as_written() -> None:
    text = (
        Renderer("en")
        .alert(
            alert(
                1,
                result="see https://evil.example/path, www.evil.example and mailto:a@evil.com\n"
                "java.lang.NullPointerException at com.acme.Job.run(Job.java:42)",
            )
        )
        .text
    )
    for part in (
        "hxxps://evil［.］example/path",
        "www［.］evil［.］example",
        "mailto［:］a＠evil［.］com",
        "java.lang.NullPointerException at com.acme.Job.run(Job.java:42)",
        "**Group**: testSchedulerx.defaultGroup",
        "**Worker**: 10.0.0.5:16888",
    ):
        assert part in text


def test_every_field_is_capped_and_the_cut_is_marked() -> None:
    [base] = alert(1, result="E" * 10_000).instances
    inst = replace(
        base,
        work_addr="10.0.0.5:16888," * 2000,
        job=base.job._replace(group="g" * 5000, namespace="n" * 5000),
    )
    context = Renderer("en").context(run_alert("failed", "ops", inst, "j" * 5000, T0))
    assert len(context["worker"]) == FIELD_CAP and context["worker"].endswith("…")
    for name in ("job_name", "group", "namespace"):
        assert len(context[name]) == SINGLE_LINE_CAP and context[name].endswith("…")
    assert sum(len(line) for line in context["result_lines"]) <= RESULT_LIMIT
    assert context["result_lines"][-1].endswith("…")
    assert (
        len(Renderer("en").alert(run_alert("failed", "ops", inst, None, T0)).text.encode()) < 8000
    )


def test_md_and_quote_filters_change_nothing_in_neutral_values(tmp_path: Path) -> None:
    raw = tmp_path / "raw.md.j2"
    raw.write_text("### {{ job_label }}\n{{ worker }} {{ result_text }}\n\n{{ result }}")
    filtered = tmp_path / "filtered.md.j2"
    filtered.write_text(
        "### {{ job_label | md }}\n{{ worker | md }} {{ result_text | md }}\n\n"
        "{{ result_lines | join('\\n') | quote }}"
    )
    hostile = alert(1, result="OOM *killed* [x](https://evil.example)\n# Resolved\n@all")
    rendered = {
        str(path): Renderer("en", alert_template=str(path)).alert(hostile).text
        for path in (raw, filtered)
    }
    assert rendered[str(raw)] == rendered[str(filtered)]
    assert "OOM ＊killed＊ ［x］(hxxps://evil［.］example)" in rendered[str(raw)]
    assert "> ＃ Resolved  \n> ＠all" in rendered[str(raw)]


def test_a_user_template_may_format_the_result_lines_itself(tmp_path: Path) -> None:
    template = tmp_path / "lines.md.j2"
    template.write_text(
        "### {{ job_label }}\n{% for line in result_lines %}{{ loop.index }}: {{ line }}\n"
        "{% endfor %}"
    )
    message = Renderer("en", alert_template=str(template)).alert(
        alert(1, result="first\n\n- second\n")
    )
    assert message.text == "### 92583\n1: first\n2: － second"


def test_the_renderers_caps_are_the_neutralisers() -> None:
    # delivery/render.py states them itself, so that neutralise loads with the first message.
    from schedulerx_alert.delivery import neutralise, render

    assert (render.RESULT_LIMIT, render.SINGLE_LINE_CAP) == (
        neutralise.BLOCK_CAP,
        neutralise.SINGLE_LINE_CAP,
    )
