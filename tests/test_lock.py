"""What ships is what was tested: one lock, with hashes, for the venv and the package.

uv.lock is resolved from pyproject.toml (`make lock`); requirements/dev.txt (what
`make install` puts in the venv the tests run in) and requirements/package.txt (what
`make package` ships) are exported from it. pip installs both with --require-hashes.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "build" / "wheels"
REGENERATE = (
    "run `make lock` (it resolves pyproject.toml's dependencies again from PyPI, "
    "exports requirements/dev.txt and requirements/package.txt, and reinstalls the venv), "
    "then commit uv.lock and requirements/*.txt"
)


def _load_build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_package", ROOT / "scripts" / "build_package.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_package = _load_build_script()


def lock_check(project: Path) -> subprocess.CompletedProcess[str]:
    """`uv lock --check`, offline: does uv.lock still satisfy pyproject.toml?"""
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_PYTHON": sys.executable}
    return subprocess.run(
        [sys.executable, "-m", "uv", "lock", "--check", "--offline"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_lock_agrees_with_pyproject() -> None:
    result = lock_check(ROOT)
    assert result.returncode == 0, (
        f"pyproject.toml and uv.lock disagree (a dependency added, removed or changed?): "
        f"{REGENERATE}.\nuv said:\n{result.stderr}"
    )


def test_the_check_catches_a_dependency_the_lock_does_not_have(tmp_path: Path) -> None:
    """As when a change adds a dependency to pyproject.toml and forgets `make lock`."""
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy2(ROOT / name, tmp_path / name)
    pyproject = tmp_path / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    changed = re.sub(r'"jinja2>=[^"]*"', '"jinja2>=3.1",\n    "cronsim>=2.0"', text, count=1)
    assert changed != text
    pyproject.write_text(changed, encoding="utf-8")
    assert lock_check(tmp_path).returncode != 0


@pytest.mark.parametrize("name", sorted(build_package.EXPORTS))
def test_the_exported_requirements_are_the_lock(name: str) -> None:
    committed = (ROOT / "requirements" / name).read_text(encoding="utf-8")
    assert committed == build_package.exported_requirements(name), (
        f"requirements/{name} is not what uv.lock exports: {REGENERATE}."
    )


def entries(text: str) -> list[tuple[str, list[str]]]:
    """(requirement line, hashes) for each requirement of an exported file."""
    out = []
    for entry in re.split(r"\n(?=\S)", text.strip()):
        first = entry.partition("\n")[0]
        if not first.startswith("#"):
            out.append((first.rstrip(" \\"), re.findall(r"--hash=sha256:([0-9a-f]{64})", entry)))
    return out


@pytest.mark.parametrize("name", sorted(build_package.EXPORTS))
def test_every_locked_requirement_is_one_version_with_its_hashes(name: str) -> None:
    locked = entries((ROOT / "requirements" / name).read_text(encoding="utf-8"))
    assert locked
    for requirement, hashes in locked:
        assert re.match(r"^[A-Za-z0-9._-]+==[^\s;]+", requirement), requirement
        assert hashes, f"{requirement}: no hash"


def test_the_package_ships_the_runtime_dependencies_and_not_what_fc_provides() -> None:
    locked = (ROOT / "requirements" / "package.txt").read_text(encoding="utf-8")
    names = {req.split("==")[0].lower() for req, _ in entries(locked)}
    assert {"requests", "urllib3", "jinja2", "markupsafe", "pyyaml", "tzdata"} <= names
    assert not names & {"oss2", "aliyun-fc2", "crcmod", "pycryptodome", "aliyun-python-sdk-core"}


def test_a_wheel_that_does_not_match_its_locked_hash_is_refused(tmp_path: Path) -> None:
    """The package build installs nothing whose file differs from what the lock hashed."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    locked = (ROOT / "requirements" / "package.txt").read_text(encoding="utf-8")
    wanted = build_package.target_requirements(locked, version)
    wheels = build_package.fetch_wheels(wanted, version, CACHE)  # shared with test_package
    tampered = tmp_path / "wheels"
    shutil.copytree(wheels, tampered)
    [jinja] = tampered.glob("jinja2-*.whl")
    jinja.write_bytes(jinja.read_bytes() + b"\0")
    with pytest.raises(SystemExit, match="pip failed: install"):
        build_package.install_wheels(
            tampered / "requirements.txt", version, tampered, tmp_path / "code"
        )
    # The same list from the untouched wheels installs.
    build_package.install_wheels(wheels / "requirements.txt", version, wheels, tmp_path / "ok")
    assert (tmp_path / "ok" / "jinja2" / "__init__.py").is_file()


def test_markers_are_judged_for_fc_s_python_not_the_builder_s() -> None:
    locked = (
        "exceptiongroup==1.2.2 ; python_full_version < '3.11' \\\n"
        "    --hash=sha256:" + "a" * 64 + "\n"
        "tomli==2.2.1 ; sys_platform == 'win32' \\\n"
        "    --hash=sha256:" + "b" * 64 + "\n"
        "idna==3.10 \\\n"
        "    --hash=sha256:" + "c" * 64 + "\n"
    )

    def names(text: str) -> list[str]:
        return [requirement.split("==")[0] for requirement, _ in entries(text)]

    assert names(build_package.target_requirements(locked, "3.10")) == ["exceptiongroup", "idna"]
    assert names(build_package.target_requirements(locked, "3.12")) == ["idna"]
