#!/usr/bin/env python3
"""Build the code package Function Compute runs: dist/code/ and a zip of it.

    python scripts/build_package.py [--python-version 3.10] [--config config.yaml]

What goes in:
  * src/index.py (the handler, `index.handler`) and the schedulerx_alert package with
    its default templates;
  * the runtime dependencies at exactly the versions of the lock (requirements/package.txt,
    exported from uv.lock by `make lock`), each wheel checked against the lock's sha256
    hashes, as manylinux wheels for the target Python (pip --require-hashes --platform
    manylinux2014_x86_64 --only-binary=:all: --target), so that every compiled module
    matches the runtime's ABI and what ships is what the tests ran;
  * the config, when --config is given, as config.json: checked first exactly as
    `schedulerx-alert validate` checks it (its ${VAR}s must be set in the build's
    environment, for the check only), then written as JSON with its ${VAR} references
    kept, never their values (those come from the function's environment), so the
    function reads it without a YAML parser; template files it names go beside it;
  * bytecode (__pycache__/*.cpython-3XX.pyc) compiled by an interpreter of the target
    version when one is found (--bytecode auto, the default) or given: FC's /code is
    read-only, so without it every cold start compiles every module from source
    (about twice the import time). The .pyc files are "checked-hash": valid whatever
    the unzipped files' mtimes, and ignored for any source edited after the build.

What stays out, and why (see NOT_NEEDED):
  * aliyun-fc2: only the `schedulerx-alert invoke` command line uses it.
  * the development dependencies, oss2 among them: the function speaks OSS through its
    own client (storage/oss_client.py), and the tests use oss2 to check it.
  * tests, caches, __pycache__, console scripts.

Downloaded wheels are kept in build/wheels/py<version>/ and reused while the
locked list is unchanged, so a rebuild needs no network.

    python scripts/build_package.py --export-requirements

writes requirements/package.txt and requirements/dev.txt (the development venv's, for
`make install`) from uv.lock; `make lock` runs it after `uv lock`.
"""

from __future__ import annotations

import argparse
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MACHINE = "x86_64"
PLATFORM = f"manylinux2014_{MACHINE}"
# Declared for the command line, never imported by the function.
NOT_NEEDED = frozenset({"aliyun-fc2"})
REQUIREMENTS = ROOT / "requirements"
# requirements/<file>: what `uv export` writes there from uv.lock.
EXPORT_FORMAT = ("--format", "requirements-txt", "--no-emit-project")
EXPORTS = {
    # The code package: the runtime dependencies, less what only the CLI
    # uses, and whatever only those need (--prune).
    "package.txt": (
        "--no-dev",
        *(f"--prune={name}" for name in sorted(NOT_NEEDED)),
    ),
    # The development venv (`make install`): the product and every tool the tests use.
    "dev.txt": ("--all-extras",),
}
EXPORT_HEADER = "# Exported from uv.lock by `make lock`; do not edit.\n"
# 1980-01-01, the earliest time a zip entry can carry: the zip is reproducible.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def uv(*args: str) -> str:
    """Run the uv that `make install` put beside this Python; its output."""
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_PYTHON": sys.executable}
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "uv", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"uv {args[0]} failed (exit {result.returncode})")
    return result.stdout


def exported_requirements(name: str) -> str:
    """requirements/<name> as `uv export` derives it from uv.lock now (offline)."""
    options = EXPORTS[name]
    body = uv("export", "--frozen", "--offline", "--no-header", *EXPORT_FORMAT, *options)
    return EXPORT_HEADER + body


def write_exported_requirements() -> None:
    REQUIREMENTS.mkdir(exist_ok=True)
    for name in EXPORTS:
        (REQUIREMENTS / name).write_text(exported_requirements(name), encoding="utf-8")


def target_requirements(locked: str, python_version: str) -> str:
    """The locked entries that apply to FC's platform and Python, markers dropped.

    pip judges a requirement's marker by the interpreter running it, not by
    --python-version, so the build resolves markers for the target itself.
    """
    kept = []
    for entry in re.split(r"\n(?=\S)", locked.strip()):
        first, _, rest = entry.partition("\n")
        if first.startswith("#"):
            continue
        requirement, _, marker = first.rstrip(" \\").partition(";")
        if marker.strip() and not _marker_holds(marker.strip(), python_version):
            continue
        if "--hash=sha256:" not in rest:
            raise SystemExit(f"{requirement.strip()}: no hash in the lock; run `make lock`")
        kept.append(f"{requirement.strip()} \\\n{rest}")
    return "\n".join(kept) + "\n"


def _marker_holds(marker: str, python_version: str) -> bool:
    from packaging.markers import Marker  # only a lock with markers needs it

    return Marker(marker).evaluate(
        {
            "python_version": python_version,
            "python_full_version": f"{python_version}.0",
            "sys_platform": "linux",
            "platform_system": "Linux",
            "platform_machine": MACHINE,
            "os_name": "posix",
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
        }
    )


def runtime_python_version(s_yaml: Path = ROOT / "s.yaml") -> str:
    """The Python version of the runtime s.yaml deploys (vars.runtime or props.runtime)."""
    text = s_yaml.read_text(encoding="utf-8")
    found: list[str] = re.findall(r"^\s*runtime:\s*['\"]?python(3\.\d+)", text, re.M)
    if not found:
        raise SystemExit(f"{s_yaml}: no `runtime: python3.X` found")
    return found[0]


def _pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"pip failed: {' '.join(args[:2])} ... (exit {result.returncode})")


def _target_flags(python_version: str) -> list[str]:
    """pip options that pick wheels for FC's platform and Python, not this machine's."""
    return [
        "--platform",
        PLATFORM,
        "--python-version",
        python_version,
        "--implementation",
        "cp",
        "--only-binary=:all:",
    ]


def fetch_wheels(requirements: str, python_version: str, cache: Path) -> Path:
    """Wheels for the target Python in cache/py<version>/, downloaded once per locked list,
    each checked against its locked hash; the list is kept there as requirements.txt."""
    wheels = cache / f"py{python_version}"
    cache.mkdir(parents=True, exist_ok=True)
    # Two builds at once (the test suite's workers) share the cache: one downloads, the
    # other waits and then finds the stamp.
    with (cache / f".py{python_version}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _fetch_wheels(wheels, requirements, python_version)


def _fetch_wheels(wheels: Path, requirements: str, python_version: str) -> Path:
    key = hashlib.sha256("\n".join([PLATFORM, python_version, requirements]).encode())
    stamp = wheels / ".requirements"
    if stamp.is_file() and stamp.read_text() == key.hexdigest():
        return wheels
    shutil.rmtree(wheels, ignore_errors=True)
    wheels.mkdir(parents=True)
    (wheels / "requirements.txt").write_text(requirements, encoding="utf-8")
    _pip(
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--dest",
        str(wheels),
        *_target_flags(python_version),
        *_locked(wheels / "requirements.txt"),
    )
    stamp.write_text(key.hexdigest())
    return wheels


def install_wheels(requirements: Path, python_version: str, wheels: Path, target: Path) -> None:
    _pip(
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-index",
        "--find-links",
        str(wheels),
        "--target",
        str(target),
        *_target_flags(python_version),
        "--no-compile",
        *_locked(requirements),
    )


def _locked(requirements: Path) -> list[str]:
    """pip options that take exactly the listed versions, each file matching its hash."""
    return ["--require-hashes", "--no-deps", "--requirement", str(requirements)]


def _interpreter_version(python: str) -> str | None:
    try:
        result = subprocess.run(  # noqa: S603
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def find_interpreter(python_version: str) -> str | None:
    """An interpreter of the target version: this one, pythonX.Y on PATH, or pyenv's."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == python_version:
        return sys.executable
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = [shutil.which(f"python{python_version}")]
    candidates += sorted(
        glob.glob(f"{pyenv}/versions/{python_version}.*/bin/python{python_version}")
    )
    for candidate in candidates:
        if candidate and _interpreter_version(candidate) == python_version:
            return candidate
    return None


def compile_bytecode(target: Path, python: str) -> None:
    result = subprocess.run(  # noqa: S603
        [
            python,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "checked-hash",
            str(target),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"compileall with {python} failed")


def copy_sources(target: Path) -> None:
    src = ROOT / "src"
    shutil.copy2(src / "index.py", target / "index.py")
    shutil.copytree(
        src / "schedulerx_alert",
        target / "schedulerx_alert",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "py.typed"),
    )


def prune(target: Path) -> None:
    """Drop what FC never runs: console scripts, bytecode caches, bundled tests."""
    shutil.rmtree(target / "bin", ignore_errors=True)
    for path in sorted(target.rglob("*"), reverse=True):
        if path.is_dir() and path.name in ("__pycache__", "tests", "testing"):
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.suffix in (".pyc", ".pyo"):
            path.unlink()


def this_tree() -> None:
    """This tree's package first on the path (its checks and its names), whatever else is
    installed; only a build with --config needs it, and its dependencies."""
    if sys.path[0] != str(ROOT / "src"):
        sys.path.insert(0, str(ROOT / "src"))


def checked_config(config: Path) -> str:
    """The config as config.json, once it passed every check of `validate`; exits if not."""
    this_tree()
    from schedulerx_alert.cli.config_cmd import packaged_json
    from schedulerx_alert.config import ConfigError

    try:
        text = packaged_json(config, os.environ)
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        raise SystemExit(
            f"{config} is not fit to ship. Its ${{VAR}}s are checked with this shell's values "
            "and never written into the package: set them (any value of the right shape "
            "will do), e.g. DT_TOKEN=x DT_SECRET=SECx make package"
        ) from None
    return text


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# FC's limit on a function's environment, names and values together (FACTS.md), and the
# length of a DingTalk robot's access_token (64) or SEC... secret (67), rounded up.
ENV_LIMIT = 4096
SECRET_LENGTH = 70


def deploy_variables(text: str) -> dict[str, list[str]]:
    """The variables the function reads from its environment for this config (config.json's
    text): each ${VAR} with where the config names it, and the silence links' keys."""
    this_tree()
    from schedulerx_alert.config.actions import DEFAULT_KEY_ENV

    found: dict[str, list[str]] = {}

    def walk(value: object, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")
        elif isinstance(value, str):
            for name in _VAR.findall(value):
                found.setdefault(name, []).append(path)

    config = json.loads(text)
    walk(config, "")
    actions = config.get("actions") or {}
    if isinstance(actions, dict) and actions.get("enabled") is True:
        found.setdefault(str(actions.get("key_env") or DEFAULT_KEY_ENV), []).append(
            "actions.key_env"
        )
    return found


def variables_report(text: str) -> str:
    """What `make package` tells the deployer to provide, by name; never a value."""
    this_tree()
    # What the deploy files pass the function.
    from schedulerx_alert.config.actions import DEFAULT_KEY_ENV
    from schedulerx_alert.support.deploy_secrets import SECRETS_ENV

    found = deploy_variables(text)
    keys = DEFAULT_KEY_ENV if DEFAULT_KEY_ENV in found else None
    secrets = [name for name in found if name != keys]
    reserved = [name for name in found if name.startswith("FC_")]
    if reserved:
        raise SystemExit(
            f"the config names {', '.join(reserved)}: FC reserves variables starting with "
            "FC_, so no deploy can set them; rename them"
        )
    lines = []
    if secrets:
        width = max(len(name) for name in secrets)
        lines.append(
            f"The deploy must provide {len(secrets)} variable(s), all in {SECRETS_ENV} "
            "(one JSON object of names to values):"
        )
        lines += [f"  {name:<{width}}  {', '.join(found[name])}" for name in secrets]
        names = " ".join(secrets)
        lines.append(
            f"  s deploy: export {SECRETS_ENV}=\"$(python3 -c 'import json, os; "
            f'print(json.dumps({{n: os.environ[n] for n in "{names}".split()}}))\')" '
            "with those variables set in your shell"
        )
        lines.append("  template.yml: the same JSON object as the RobotSecrets parameter")
    else:
        lines.append(f"The config names no ${{VAR}}: {SECRETS_ENV} may be {{}}.")
    if keys is not None:
        lines.append(
            f"The silence links' keys: {keys} (s.actions.yaml reads it from your shell; "
            "template.yml: the ActionKeys parameter)"
        )
    size = sum(len(name) + SECRET_LENGTH + 6 for name in secrets) + len(SECRETS_ENV) + 64
    if size > ENV_LIMIT * 3 // 4:
        lines.append(
            f"Warning: with robot-sized values {SECRETS_ENV} takes about {size} bytes of the "
            f"{ENV_LIMIT} FC allows for all of a function's variables."
        )
    return "\n".join(lines)


def write_config(config: Path, text: str, out: Path) -> None:
    """out/config.json, and the template files it names beside it."""
    (out / "config.json").write_text(text, encoding="utf-8")
    # The function looks for template files beside its config, as the check did here.
    templates = json.loads(text).get("templates") or {}
    for key in ("alert", "summary"):
        name = templates.get(key)
        if not name:
            continue
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise SystemExit(
                f"{config}: templates.{key} {name!r} must be a path inside the config's "
                "folder: the package ships it beside config.json"
            )
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(config.parent / name, out / name)


def write_zip(source: Path, archive: Path) -> None:
    archive.parent.mkdir(parents=True, exist_ok=True)
    temp = archive.with_suffix(".tmp")
    with zipfile.ZipFile(temp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(path.relative_to(source).as_posix(), ZIP_TIME)
                info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, path.read_bytes())
    temp.replace(archive)


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def build(
    python_version: str,
    out: Path,
    archive: Path | None,
    config: Path | None,
    cache: Path,
    bytecode_python: str | None = None,
) -> None:
    # A config that would fail the function stops the build before anything is built.
    config_text = checked_config(config) if config is not None else None
    locked = (REQUIREMENTS / "package.txt").read_text(encoding="utf-8")
    wheels = fetch_wheels(target_requirements(locked, python_version), python_version, cache)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    install_wheels(wheels / "requirements.txt", python_version, wheels, out)
    copy_sources(out)
    if config is not None and config_text is not None:
        write_config(config, config_text, out)
    prune(out)
    if bytecode_python is not None:
        compile_bytecode(out, bytecode_python)
    if archive is not None:
        write_zip(out, archive)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--python-version", help="target Python, e.g. 3.10 (default: the runtime in s.yaml)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "code")
    parser.add_argument("--zip", type=Path, default=ROOT / "dist" / "schedulerx-alert.zip")
    parser.add_argument("--no-zip", action="store_true")
    parser.add_argument("--config", type=Path, help="config file to check and ship as config.json")
    parser.add_argument("--cache", type=Path, default=ROOT / "build" / "wheels")
    parser.add_argument(
        "--bytecode",
        default="auto",
        help="auto (default: compile .pyc if an interpreter of the target version is found), "
        "none, or the path of such an interpreter",
    )
    parser.add_argument(
        "--export-requirements",
        action="store_true",
        help="write requirements/*.txt from uv.lock and exit (`make lock`)",
    )
    parser.add_argument(
        "--print-python-version",
        action="store_true",
        help="print the runtime's Python version from s.yaml and exit",
    )
    args = parser.parse_args(argv)
    if args.export_requirements:
        write_exported_requirements()
        return 0
    if args.print_python_version:
        print(runtime_python_version())
        return 0
    version = args.python_version or runtime_python_version()
    if not re.fullmatch(r"3\.\d+", version):
        parser.error(f"--python-version must look like 3.10, not {version!r}")
    if args.config is not None and not args.config.is_file():
        parser.error(
            f"no config file {str(args.config)!r}: copy config.example.yaml to config.yaml "
            "and edit it, or pass CONFIG=path"
        )
    archive = None if args.no_zip else args.zip
    bytecode: str | None = None
    if args.bytecode == "auto":
        bytecode = find_interpreter(version)
        if bytecode is None:
            print(f"no python{version} found: no bytecode (slower cold starts)", file=sys.stderr)
    elif args.bytecode != "none":
        if _interpreter_version(args.bytecode) != version:
            parser.error(f"--bytecode {args.bytecode} is not a python{version}")
        bytecode = args.bytecode
    build(version, args.out, archive, args.config, args.cache, bytecode)
    line = f"{args.out}: python{version}, {tree_size(args.out) / 1e6:.1f} MB unpacked"
    line += ", with bytecode" if bytecode else ", no bytecode"
    if archive is not None:
        line += f"; {archive}: {archive.stat().st_size / 1e6:.1f} MB"
    print(line)
    if args.config is not None:
        print(variables_report((args.out / "config.json").read_text(encoding="utf-8")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
