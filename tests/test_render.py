"""Messages: the languages, user templates, and what a template may not do."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedulerx_alert.cli import main
from schedulerx_alert.render import Renderer, RenderError
from tests.builders import alert
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
    world.raw["templates"] = {"language": "en", "alert": str(template)}
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
    world.raw["templates"] = {"alert": str(broken)}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(world.raw))
    assert main(["validate", "--config", str(config)]) == 2
    assert "broken.md.j2" in capsys.readouterr().err
