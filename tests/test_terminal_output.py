"""Every command prints a job author's text through the terminal's escaping.

A job name, an error text or a silence comment can carry ESC and OSC sequences (move the
cursor, clear the screen, retitle the window), BEL, CR (overwrite the line's start), bidi
overrides and lone surrogates. `state show` always printed them escaped; `routes`,
`jobs`, `silence list` and every command's JSON now do too, and the JSON reads back unchanged.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import yaml

from schedulerx_alert.cli.main import main
from schedulerx_alert.cli.terminal import block, json_text, line
from schedulerx_alert.core.state import dump_state, load_state
from tests.world import GROUP, NS, SECRETS, World

HOSTILE = "etl-\x1b]0;pwned\x07\r\x1b[2J\u202eevil\x9b31m"


def unsafe(text: str) -> list[str]:
    """Characters a terminal obeys or reorders by, other than the line breaks printed."""
    return [
        f"U+{ord(c):04X}"
        for c in text
        if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp")
    ]


def run(capsys: pytest.CaptureFixture[str], world: World, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()  # what the ticks logged
    path = world.root / "config.yaml"
    path.write_text(yaml.safe_dump(world.raw, allow_unicode=True), encoding="utf-8")
    code = main([*argv, "--config", str(path)], clock=world.clock)
    out, err = capsys.readouterr()
    for secret in SECRETS:
        assert secret not in out + err
    return code, out, err


def a_hostile_name_in_the_job_list(world: World) -> None:
    world.sx.add_job(NS, GROUP, 51001, name=HOSTILE)
    world.raw["watch"] = [
        {"namespace": NS, "group": GROUP, "job_names": ["etl-*"], "receivers": ["ops"]}
    ]
    assert world.tick().status == "ok"  # the job list, with the name, into the state


def test_routes_prints_a_job_authors_name_escaped_and_its_json_reads_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with World(tmp_path, jobs=()) as world:
        a_hostile_name_in_the_job_list(world)

        code, out, _ = run(capsys, world, "routes", "--job", "51001", "--kind", "failed")
        assert code == 0 and unsafe(out) == []
        assert "etl-\\u001b]0;pwned\\u0007 \\u001b[2J\\u202eevil\\u009b31m" in out
        code, out, _ = run(capsys, world, "routes", "--job", "51001", "--json")
        assert code == 0 and unsafe(out) == []
        (entry,) = json.loads(out)["entries"]
        assert entry["name"] == HOSTILE


def test_jobs_prints_a_job_authors_name_escaped_and_its_json_reads_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with World(tmp_path, jobs=()) as world:
        a_hostile_name_in_the_job_list(world)
        for argv in (("jobs",), ("jobs", "--json")):
            code, out, err = run(capsys, world, *argv)
            assert code == 0 and unsafe(out + err) == [], argv
        [entry] = json.loads(out)["entries"]
        assert [job["name"] for job in entry["jobs"]] == [HOSTILE]


def test_silence_list_prints_the_books_text_escaped(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USER", "mallory\x1b[8m")
    code, _, _ = run(
        capsys, world, "silence", "add", "--group", HOSTILE, "--for", "2h", "--why", HOSTILE
    )
    assert code == 0
    for argv in (("silence", "list"), ("silence", "list", "--json")):
        code, out, err = run(capsys, world, *argv)
        assert code == 0 and unsafe(out + err) == [], argv
    [row] = json.loads(out)
    assert (row["comment"], row["created_by"], row["match"]["group"]) == (
        HOSTILE,
        "mallory\x1b[8m",
        HOSTILE,
    )


def test_state_show_json_escapes_what_json_leaves_raw(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.tick()
    state = load_state(world.state_path.read_bytes())
    doc = json.loads(dump_state(state))
    doc["robots"] = {"ops\u202e\ud800\x85": {"sent": [world.clock() - 5]}}
    world.state_path.write_bytes(json.dumps(doc).encode())
    for argv in (("state", "show"), ("state", "show", "--json")):
        code, out, err = run(capsys, world, *argv)
        assert code == 0 and unsafe(out + err) == [], argv
    assert [r["robot"] for r in json.loads(out)["robots"]] == ["ops\u202e\ud800\x85"]


def test_one_escaping_for_a_line_a_block_and_json() -> None:
    assert line(HOSTILE) == "etl-\\u001b]0;pwned\\u0007 \\u001b[2J\\u202eevil\\u009b31m"
    assert block("one\r\ntwo\rthree\nfour\x1b") == "one\ntwo\\u000dthree\nfour\\u001b"
    value: dict[str, Any] = {"name": HOSTILE + "\ud800\u2028", "n": [1, 2]}
    text = json_text(value)
    assert unsafe(text) == [] and json.loads(text) == value
