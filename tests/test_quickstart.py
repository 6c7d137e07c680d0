"""The README's Quick start, followed as written: its minimal config validates, and its
shell lines that need no cloud run, in order, in a copy of the repository's example
config, with the installed `schedulerx-alert` of the venv's bin on the PATH. Every
other line is named here with the test that holds it, so a new line is either run or
accounted for."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from schedulerx_alert.cli.main import main

ROOT = Path(__file__).parent.parent
BIN = Path(sys.executable).parent
# Lines run as written (a prefix each).
OFFLINE = (
    "cp ",
    "export ",
    "schedulerx-alert validate",
    "schedulerx-alert render",
    "schedulerx-alert --version",
)
# Lines not run here, and where they are held.
ELSEWHERE = {
    "make install && . .venv/bin/activate": "the venv this test runs from is the one it makes",
    "make demo": "tests/demo.py, the World the scenario tests use",
    "make sandbox CONFIG=config.yaml": "tests/test_sandbox.py",
    "schedulerx-alert send-test ops -c config.yaml": "tests/test_send_cmd.py (a real robot)",
    "schedulerx-alert check -c config.yaml --dry-run": "tests/test_cli_conventions.py (real APIs)",
    "schedulerx-alert heartbeat --now -c config.yaml": "tests/test_send_cmd.py (a real robot)",
}


def quick_start() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Quick start\n", 1)[1]
    return section.split("\n## ", 1)[0]


def blocks(kind: str) -> list[str]:
    return re.findall(rf"^```{kind}\n(.*?)^```", quick_start(), re.M | re.S)


def shell_lines() -> list[str]:
    lines = []
    for block in blocks("sh"):
        for raw in block.splitlines():
            # A comment starts after two spaces or more (a URL's # never does).
            line = re.split(r"\s{2,}#", raw, maxsplit=1)[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def test_the_quick_start_shows_a_preview_and_a_minimal_config_first() -> None:
    section = quick_start()
    picture = section.index('<img src="docs/previews/failed.png"')
    config = section.index("```yaml")
    assert picture < config < section.index("```sh")
    assert (ROOT / "docs/previews/failed.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_its_minimal_config_validates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    [config] = blocks("yaml")
    path = tmp_path / "config.yaml"
    path.write_text(config, encoding="utf-8")
    monkeypatch.setenv("DT_TOKEN", "x")
    monkeypatch.setenv("DT_SECRET", "SECx")
    assert main(["validate", "-c", str(path)]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.startswith(f"{path}: ok (")


def test_every_shell_line_is_run_or_accounted_for() -> None:
    lines = shell_lines()
    unknown = [line for line in lines if not line.startswith(OFFLINE) and line not in ELSEWHERE]
    assert unknown == [], "run it below, or say in ELSEWHERE which test holds it"
    assert set(ELSEWHERE) <= set(lines), "a line ELSEWHERE names is no longer in the README"


def test_its_offline_lines_run_as_written_from_the_venvs_bin(tmp_path: Path) -> None:
    script = [line for line in shell_lines() if line.startswith(OFFLINE)]
    assert any(line.startswith("schedulerx-alert validate") for line in script)
    (tmp_path / "config.example.yaml").write_bytes((ROOT / "config.example.yaml").read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DT_", "SCHEDULERX_ALERT"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-euc", "\n".join(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "config.yaml: ok (" in done.stdout
    assert re.search(r"^schedulerx-alert \d+\.\d+", done.stdout, re.M), done.stdout
    page = (tmp_path / "failed.html").read_text(encoding="utf-8")
    assert "NullPointerException" in page or "失败" in page


def test_version_from_the_venvs_bin() -> None:
    done = subprocess.run(
        [str(BIN / "schedulerx-alert"), "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.startswith("schedulerx-alert 0."), done.stderr
