"""The code package, as FC runs it: `make package` (scripts/build_package.py).

FC unpacks the zip into /code, puts /code first on sys.path and calls
index.handler; everything else on sys.path is the runtime's own (the standard
library and the modules FC ships, oss2 among them, which the package never needs:
it speaks OSS through storage/oss_client.py). The tests rebuild exactly that: a
package for this machine's Python, unzipped into a fresh directory and run by
`python -I -S` with nothing but the standard library and the package on sys.path,
against the loopback servers.

Wheels are cached in build/wheels/py<version>/ (shared with `make package`), so
only the first run downloads anything.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.world import AK, ROBOT, SK, STS, World

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "scripts" / "build_package.py"
CACHE = ROOT / "build" / "wheels"
LOCAL = f"{sys.version_info.major}.{sys.version_info.minor}"


def _load_build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_package", BUILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_package = _load_build_script()


# `make package` checks the config with the build shell's ${VAR}s (and never ships them).
BUILD_ENV = {**os.environ, "DT_TOKEN": "build-token", "DT_SECRET": "SECbuild"}


def build(
    tmp: Path,
    python_version: str,
    config: Path = ROOT / "config.example.yaml",
    bytecode: str = "auto",
) -> tuple[Path, Path]:
    out, archive = tmp / "code", tmp / "schedulerx-alert.zip"
    subprocess.run(
        [
            sys.executable,
            str(BUILD),
            "--python-version",
            python_version,
            "--out",
            str(out),
            "--zip",
            str(archive),
            "--cache",
            str(CACHE),
            "--config",
            str(config),
            "--bytecode",
            bytecode,
        ],
        check=True,
        capture_output=True,
        text=True,
        env=BUILD_ENV,
    )
    return out, archive


Built = Callable[[str], tuple[Path, Path]]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The example config's package for a Python version, built once for this file: a
    build costs seconds of CPU, and the tests only read what it made."""
    made: dict[str, tuple[Path, Path]] = {}

    def package(version: str) -> tuple[Path, Path]:
        if version not in made:
            made[version] = build(tmp_path_factory.mktemp(f"py{version}"), version)
        return made[version]

    return package


@pytest.fixture(scope="module")
def local_package(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A package for this machine's Python, unpacked from its zip like FC does."""
    _, archive = built(LOCAL)
    code = tmp_path_factory.mktemp("unzipped")
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(code)
    return code


@pytest.fixture(scope="module")
def target_package(built: Built) -> Path:
    """A package for the runtime s.yaml deploys."""
    out, _ = built(runtime_python())
    return out


def runtime_python() -> str:
    result = subprocess.run(
        [sys.executable, str(BUILD), "--print-python-version"],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


def files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def in_package(package: Path, script: str) -> Any:
    """What `script` prints as JSON, run as FC runs the package: it and the stdlib only."""
    prelude = f"import sys; sys.path.insert(0, {str(package)!r})\n"
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", prelude + script],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout)


# -- contents ---------------------------------------------------------------------------------


def test_the_package_holds_the_handler_templates_config_and_dependencies(
    local_package: Path,
) -> None:
    names = files(local_package)
    assert {"index.py", "config.json", "schedulerx_alert/handler.py"} <= names
    assert "config.yaml" not in names
    shipped = (local_package / "config.json").read_text(encoding="utf-8")
    assert "${DT_TOKEN}" in shipped and "build-token" not in shipped and "SECbuild" not in shipped
    for language in ("zh-CN", "en"):
        for template in ("alert", "summary"):
            assert f"schedulerx_alert/delivery/templates/{language}/{template}.md.j2" in names
    tops = {name.split("/")[0] for name in names}
    assert {"requests", "urllib3", "jinja2", "markupsafe", "yaml", "tzdata"} <= tops


def test_the_package_leaves_out_the_runtimes_modules_the_cli_and_stray_files(
    local_package: Path,
) -> None:
    names = files(local_package)
    tops = {name.split("/")[0].split("-")[0].lower() for name in names}
    assert not tops & {"oss2", "fc2", "aliyun_fc2", "websocket", "cryptography", "crypto"}
    assert not [n for n in names if "/tests/" in n or n.startswith(("tests/", "bin/"))]
    assert "schedulerx_alert/py.typed" not in names
    # Bytecode only for the target Python, next to a source file, and hash-checked:
    # valid whatever the unzipped files' mtimes, never trusted for an edited source.
    tag = f"cpython-{LOCAL.replace('.', '')}"
    bytecode = [n for n in names if n.endswith((".pyc", ".pyo"))]
    assert bytecode and all("__pycache__/" in n and f".{tag}." in n for n in bytecode)
    for name in bytecode:
        header = (local_package / name).read_bytes()[:8]
        assert int.from_bytes(header[4:8], "little") == 0b11, name  # checked-hash
        folder, _, file = name.rpartition("__pycache__/")
        assert f"{folder}{file.split('.')[0]}.py" in names


def test_every_compiled_module_carries_the_target_runtimes_abi(target_package: Path) -> None:
    version = runtime_python().replace(".", "")
    compiled = [p for p in target_package.rglob("*") if p.suffix == ".so" or ".so." in p.name]
    assert compiled, "expected compiled modules (PyYAML, MarkupSafe, charset-normalizer)"
    wrong = [
        p.relative_to(target_package).as_posix()
        for p in compiled
        if f".cpython-{version}-x86_64-linux-gnu." not in p.name and ".abi3." not in p.name
    ]
    assert wrong == []


def test_the_zip_holds_exactly_the_directory(built: Built) -> None:
    out, archive = built(LOCAL)
    with zipfile.ZipFile(archive) as zf:
        assert set(zf.namelist()) == files(out)
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


# -- what FC does with it ---------------------------------------------------------------------


def run_isolated(python: str, script: str, env: dict[str, str], *flags: str) -> dict[str, Any]:
    """Run a script as FC runs the handler: no site-packages, only `env`; its last line as JSON."""
    result = subprocess.run(
        [python, "-I", "-S", *flags, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


def test_index_imports_with_nothing_but_the_stdlib_and_the_package(local_package: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, json
        import index, requests, jinja2, yaml
        print(json.dumps({
            "path": sys.path,
            "modules": {m.__name__: m.__file__ for m in (index, requests, jinja2, yaml)},
            "oss2_loaded": "oss2" in sys.modules,
        }))
        """
    )
    report = in_package(local_package, script)
    assert all(str(local_package) in file for file in report["modules"].values())
    assert not [p for p in report["path"] if "site-packages" in p]
    assert report["oss2_loaded"] is False


def test_one_tick_from_the_unzipped_package_against_loopback_servers(
    local_package: Path, tmp_path: Path
) -> None:
    """State in OSS, with nothing on sys.path but the package: no oss2 anywhere."""
    with World(tmp_path, state="oss", real_time=True) as world:
        assert world.oss is not None
        raw = dict(world.raw)
        webhook = world.dt.webhook("TOKEN").replace("TOKEN", "${DT_TOKEN}")
        raw["receivers"] = [{"name": "ops", "webhook": webhook, "secret": "${DT_SECRET}"}]
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(raw), encoding="utf-8")
        env = {
            "SCHEDULERX_ALERT_CONFIG": str(config),
            "DT_TOKEN": ROBOT,
            "DT_SECRET": world.raw["receivers"][0]["secret"],
            "PATH": "/usr/bin:/bin",
        }
        # python3.10's FC context: STS credentials on context.credentials.
        script = textwrap.dedent(
            f"""
            import importlib.util, sys
            sys.path.insert(0, {str(local_package)!r})
            from types import SimpleNamespace as NS
            import index
            context = NS(
                request_id="1-local",
                function=NS(name="schedulerx-alert", timeout=60, memory=128),
                credentials=NS(access_key_id={AK!r}, access_key_secret={SK!r},
                               security_token={STS!r}),
            )
            event = b'{{"triggerTime": "2026-11-25T02:00:00Z", "triggerName": "every-minute",'
            event += b' "payload": ""}}'
            print(index.handler(event, context))
            assert importlib.util.find_spec("oss2") is None
            """
        )
        world.sx.add_instance(92583, status=5, result="NullPointerException")

        def tick() -> dict[str, Any]:
            return run_isolated(sys.executable, script, env)

        first = tick()
        assert (first["status"], first["alerts_sent"]) == ("ok", 1)
        assert "schedulerx-alert/state.json" in world.oss.objects
        assert tick()["alerts_sent"] == 0  # the state in OSS remembers the announcement
        assert len(world.texts()) == 1


def test_the_package_ships_its_config_as_json_and_a_quiet_tick_loads_no_yaml_or_jinja2(
    tmp_path: Path,
) -> None:
    with World(tmp_path / "world", real_time=True) as world:
        raw = dict(world.raw)
        webhook = world.dt.webhook("TOKEN").replace("TOKEN", "${DT_TOKEN}")
        raw["receivers"] = [{"name": "ops", "webhook": webhook, "secret": "${DT_SECRET}"}]
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(raw), encoding="utf-8")
        code, _ = build(tmp_path / "build", LOCAL, config)
        # FC's environment as s.yaml sets it: the secrets, and /code/config.json by default.
        env = {
            "DT_TOKEN": ROBOT,
            "DT_SECRET": world.raw["receivers"][0]["secret"],
            "TMPDIR": str(tmp_path),
            "PATH": os.defpath,
        }
        script = textwrap.dedent(
            f"""
            import sys, json
            sys.path.insert(0, {str(code)!r})
            from types import SimpleNamespace as NS
            import index
            context = NS(request_id="1-json", function=NS(timeout=60),
                         credentials=NS(access_key_id={AK!r}, access_key_secret={SK!r},
                                        security_token={STS!r}))
            summary = json.loads(index.handler(b'{{}}', context))
            summary["loaded"] = [m for m in ("yaml", "jinja2") if m in sys.modules]
            print(json.dumps(summary))
            """
        )
        quiet = run_isolated(sys.executable, script, env)
        assert (quiet["status"], quiet["alerts_sent"], quiet["loaded"]) == ("ok", 0, [])
        world.sx.add_instance(92583, status=5, result="NullPointerException")
        sent = run_isolated(sys.executable, script, env)
        assert (sent["status"], sent["alerts_sent"], sent["loaded"]) == ("ok", 1, ["jinja2"])


def test_a_config_that_fails_its_checks_stops_the_build(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("region: cn-hangzhou\nwatch: []\n", encoding="utf-8")
    result = subprocess.run(
        [
            *(sys.executable, str(BUILD), "--python-version", LOCAL),
            *("--out", str(tmp_path / "code"), "--no-zip", "--cache", str(CACHE)),
            *("--config", str(config)),
        ],
        capture_output=True,
        text=True,
        env=BUILD_ENV,
        check=False,
    )
    assert result.returncode != 0
    assert "watch: must be a non-empty list" in result.stderr
    assert "is not fit to ship" in result.stderr
    assert not (tmp_path / "code").exists()


@pytest.mark.parametrize("version", ["3.10", "3.12"])
def test_the_real_target_interpreter_imports_index_and_runs_a_tick(
    version: str, tmp_path: Path, built: Built
) -> None:
    """With the runtime's own Python (when this machine has it): compiled modules load,
    and the state goes to OSS through the package's own requests."""
    python = build_package.find_interpreter(version)
    # This machine image ships both runtimes' Pythons (pyenv); a machine that
    # lacks one cannot vouch for the package, so this fails rather than skips.
    assert python is not None, f"python{version} is needed to test the package for FC"
    code, _ = built(version)
    with World(tmp_path / "world", state="oss", real_time=True) as world:
        assert world.oss is not None
        raw = dict(world.raw)
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(raw), encoding="utf-8")
        world.sx.add_instance(92583, status=5, result="NullPointerException")
        # python3.12's FC context has no credentials: they come from the environment.
        script = textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(code)!r})
            from types import SimpleNamespace as NS
            import index, yaml, markupsafe, charset_normalizer, requests
            assert yaml.__with_libyaml__ and markupsafe._speedups
            assert requests.__file__.startswith({str(code)!r}), requests.__file__
            print(index.handler(b'{{}}', NS(request_id="1-target", function=NS(timeout=60))))
            """
        )
        env = {
            "SCHEDULERX_ALERT_CONFIG": str(config),
            "ALIBABA_CLOUD_ACCESS_KEY_ID": AK,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SK,
            "ALIBABA_CLOUD_SECURITY_TOKEN": STS,
            "PATH": os.defpath,
        }
        summary = run_isolated(python, script, env, "-B")
        assert (summary["status"], summary["alerts_sent"]) == ("ok", 1)
        assert len(world.texts()) == 1
        assert "schedulerx-alert/state.json" in world.oss.objects_in("alert-bucket")
