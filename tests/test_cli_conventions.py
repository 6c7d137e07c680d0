"""One CLI convention, held over every command the argparse tree holds (a new command is
covered, or this test names it): `--config/-c` with SCHEDULERX_ALERT_CONFIG as the
fallback, `--json` whose stdout parses (diagnostics on stderr only), `--version`, and
the exit codes of `--help` (0 ok, 1 problems found, 2 usage). Run against the loopback
world with its state in the loopback OSS, and a deployed function on the loopback FC.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
import yaml

import index
from schedulerx_alert.cli.conventions import EXIT_CODES, oss_endpoint
from schedulerx_alert.cli.main import build_parser, main
from schedulerx_alert.core.silence import parse_matcher
from schedulerx_alert.storage.silence_book import SilenceBook
from schedulerx_alert.storage.store import open_state_store
from tests.fakes.fc import FakeFc
from tests.world import AK, ROBOT, ROBOT_SECRET, SECRETS, SK, STS, World

Command = tuple[str, ...]


def leaves(
    parser: argparse.ArgumentParser, path: Command = ()
) -> dict[Command, argparse.ArgumentParser]:
    """Every command that runs (`silence add`, not `silence`), from the parser itself."""
    found: dict[Command, argparse.ArgumentParser] = {}
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return {path: parser}
    for action in subs:
        for name, sub in action.choices.items():
            found |= leaves(sub, (*path, name))
    return found


LEAVES = leaves(build_parser())


@dataclass
class Ctx:
    world: World
    fc: FakeFc
    config: Path


# Each command's other arguments in the loopback world, in the order they run, with the
# exit code expected. A command missing here fails test_every_command_is_held.
RUNS: dict[Command, tuple[Callable[[Ctx], list[str]], int]] = {
    ("validate",): (lambda c: [], 0),
    ("check",): (lambda c: ["--dry-run"], 0),
    ("invoke",): (lambda c: ["--dry-run", "--endpoint", c.fc.url], 0),
    ("config", "push"): (
        lambda c: ["--to", "oss://alert-bucket/cfg/config.yaml", "--endpoint", oss_url(c)],
        0,
    ),
    ("render",): (lambda c: ["--kind", "failed"], 0),
    ("routes",): (lambda c: ["--job", "92583"], 0),
    ("jobs",): (lambda c: [], 0),
    ("state", "show"): (lambda c: [], 0),
    ("silence", "add"): (lambda c: ["--job", "92583", "--for", "1h", "--why", "deploy"], 0),
    ("silence", "list"): (lambda c: [], 0),
    ("silence", "expire"): (lambda c: [a_silence(c)], 0),
    # A tick in between gives the job a history again.
    ("state", "forget"): (lambda c: [*c.world.tick().problems, "--job", "92584"], 0),
    ("send-test",): (lambda c: ["ops"], 0),
    ("heartbeat",): (lambda c: ["--now"], 0),
}
# These work without a config (render draws the defaults; invoke needs only a region).
CONFIG_OPTIONAL = {("render",), ("invoke",)}


def a_silence(ctx: Ctx) -> str:
    """A new silence in the book, for `expire` to end."""
    problems: list[str] = []
    matcher = parse_matcher({"jobs": [92583]}, "", problems)
    store, key = open_state_store(ctx.world.config(), ctx.world.credentials)
    now = time.time()
    return SilenceBook(store, key).add(matcher, now, now + 3600, "deploy", "bob", now).id


def oss_url(ctx: Ctx) -> str:
    assert ctx.world.oss is not None
    return ctx.world.oss.url


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ctx]:
    with World(tmp_path, state="oss", real_time=True) as world, FakeFc(AK, SK, STS) as fc:
        raw = dict(world.raw)
        webhook = world.dt.webhook("TOKEN").replace("TOKEN", "${DT_TOKEN}")
        raw["receivers"] = [{"name": "ops", "webhook": webhook, "secret": "${DT_SECRET}"}]
        raw["heartbeat"] = {"receiver": "ops", "at": "09:00"}
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(raw), encoding="utf-8")
        for name, value in {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": AK,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SK,
            "ALIBABA_CLOUD_SECURITY_TOKEN": STS,
            "ALIBABA_CLOUD_REGION_ID": "cn-hangzhou",
            "DT_TOKEN": ROBOT,
            "DT_SECRET": ROBOT_SECRET,
            "USER": "alice",
        }.items():
            monkeypatch.setenv(name, value)
        for name in (
            "SCHEDULERX_ALERT_CONFIG",
            "SCHEDULERX_ALERT_CONFIG_ENDPOINT",
            "FC_FUNCTION_NAME",
        ):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.chdir(tmp_path)
        context = SimpleNamespace(
            request_id="1-fc-request",
            function=SimpleNamespace(name="schedulerx-alert", timeout=60, memory=128),
            credentials=SimpleNamespace(access_key_id=AK, access_key_secret=SK, security_token=STS),
        )

        def handler(payload: bytes) -> bytes:
            # The function's own environment names its config, whatever the caller's says.
            with mock.patch.dict(os.environ, {"SCHEDULERX_ALERT_CONFIG": str(config)}):
                return str(index.handler(payload, context)).encode()

        fc.deploy("schedulerx-alert", handler)
        world.tick()  # a state to read
        yield Ctx(world, fc, config)


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    for secret in SECRETS:
        assert secret not in out and secret not in err, argv
    return code, out, err


def test_every_command_is_held() -> None:
    assert set(LEAVES) == set(RUNS), "add the new command's arguments to RUNS"


@pytest.mark.parametrize("command", sorted(LEAVES), ids=" ".join)
def test_every_command_has_the_flags_and_says_its_exit_codes(
    command: Command, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = LEAVES[command]
    options = {o for action in parser._actions for o in action.option_strings}
    assert {"--config", "-c", "--json"} <= options, command
    code, out, _ = run(capsys, [*command, "--help"])
    assert code == 0 and " ".join(EXIT_CODES.split()) in " ".join(out.split())
    # A usage error is argparse's 2.
    code, _, err = run(capsys, [*command, "--no-such-flag"])
    assert (code == 2 and ": error: " in err and "--no-such-flag" in err) or "required" in err


def test_version_and_the_top_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, ["--version"])
    assert code == 0 and out.startswith("schedulerx-alert 0.")
    code, out, _ = run(capsys, ["--help"])
    assert code == 0 and "0 ok; 1 problems found" in " ".join(out.split())


def test_every_command_with_json_prints_json_alone_by_env_and_by_flag(
    ctx: Ctx, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for command, (extra, expected) in RUNS.items():
        # The fallback: the config named by the environment, as the function reads it.
        monkeypatch.setenv("SCHEDULERX_ALERT_CONFIG", str(ctx.config))
        code, out, err = run(capsys, [*command, *extra(ctx), "--json"])
        assert code == expected, (command, err)
        json.loads(out)  # stdout is one JSON document, nothing else
        monkeypatch.delenv("SCHEDULERX_ALERT_CONFIG")
        for flag in ("-c", "--config"):
            code, out, err = run(capsys, [*command, *extra(ctx), flag, str(ctx.config), "--json"])
            assert code == expected, (command, flag, err)
            json.loads(out)
    assert sum("schedulerx-alert send-test" in t for t in ctx.world.texts()) == 3
    assert sum("每日心跳" in t for t in ctx.world.texts()) == 3


def test_without_a_config_a_command_exits_2_and_says_how_to_name_one(
    ctx: Ctx, capsys: pytest.CaptureFixture[str]
) -> None:
    for command, (extra, _) in RUNS.items():
        if command in CONFIG_OPTIONAL:
            continue
        code, out, err = run(capsys, [*command, *extra(ctx)])
        assert code == 2, (command, out, err)
        assert "SCHEDULERX_ALERT_CONFIG" in err, (command, err)


def test_problems_exit_1(ctx: Ctx, capsys: pytest.CaptureFixture[str]) -> None:
    config = ["-c", str(ctx.config)]
    ctx.world.dt.add_robot(ROBOT, secret="SECnot-the-robots-secret-0123456789")
    code, out, err = run(capsys, ["send-test", "ops", *config])
    assert code == 1, err
    assert "the signature, keyword or IP allowlist is wrong" in out
    assert "DingTalk errcode 310000" in out
    code, out, _ = run(capsys, ["send-test", "ops", *config, "--json"])
    assert code == 1 and json.loads(out)["errcode"] == 310000


def test_a_command_reading_oss_says_which_endpoint_it_tried(
    ctx: Ctx, capsys: pytest.CaptureFixture[str]
) -> None:
    nowhere = "http://127.0.0.1:9"  # the discard port: nothing listens
    # Commands that do not read the state here: render and send-test never do, routes
    # only for a job found in a group's job list.
    stateless = {("render",), ("send-test",), ("routes",)}
    for command, (extra, _) in RUNS.items():
        if "--endpoint" not in {o for a in LEAVES[command]._actions for o in a.option_strings}:
            continue
        if command in (("invoke",), ("config", "push")):
            continue  # invoke's --endpoint is FC's API; push names its own (test_config_push)
        # A config in OSS that cannot be read: refused (2), the endpoint tried named.
        argv = [*command, *extra(ctx), "-c", "oss://alert-bucket/cfg/none.json"]
        code, _, err = run(capsys, [*argv, "--endpoint", nowhere])
        assert code == 2 and f"OSS endpoint tried: {nowhere}" in err, (command, err)
        if command in stateless:
            continue
        # The state in OSS that cannot be read: a problem (1), the endpoint tried named.
        argv = [*command, *extra(ctx), "-c", str(ctx.config), "--endpoint", nowhere]
        code, out, err = run(capsys, argv)
        if command == ("check",):
            assert code == 1 and json.loads(out)["status"] == "failed", err
        else:
            assert code == 1, (command, out, err)
        assert f"OSS endpoint tried: {nowhere}" in err, (command, err)
    # routes reads the state's job lists for a job no entry names by id.
    raw = yaml.safe_load(ctx.config.read_text(encoding="utf-8"))
    raw["watch"].append({**raw["watch"][0], "jobs": None, "job_names": ["etl-*"]})
    del raw["watch"][-1]["jobs"]
    found = ctx.config.with_name("discovers.yaml")
    found.write_text(yaml.safe_dump(raw), encoding="utf-8")
    argv = ["routes", "--job", "777", "-c", str(found), "--endpoint", nowhere]
    code, _, err = run(capsys, argv)
    assert code == 1 and f"OSS endpoint tried: {nowhere}" in err, err


def test_off_fc_an_internal_endpoint_becomes_the_public_one() -> None:
    internal = "https://oss-cn-hangzhou-internal.aliyuncs.com"
    public = "https://oss-cn-hangzhou.aliyuncs.com"
    laptop: dict[str, str] = {}
    fc = {"FC_FUNCTION_NAME": "schedulerx-alert"}
    assert oss_endpoint(internal, "cn-hangzhou", None, laptop) == public
    assert oss_endpoint(None, "cn-shanghai", None, laptop) == "https://oss-cn-shanghai.aliyuncs.com"
    assert (
        oss_endpoint("http://127.0.0.1:8080", "cn-hangzhou", None, laptop)
        == "http://127.0.0.1:8080"
    )
    assert oss_endpoint(internal, "cn-hangzhou", "http://x:1", laptop) == "http://x:1"
    # The function itself keeps the internal endpoint (the default, or the configured one).
    assert oss_endpoint(internal, "cn-hangzhou", None, fc) == internal
    assert oss_endpoint(None, "cn-hangzhou", None, fc) is None


def test_the_example_configs_state_is_read_through_the_public_endpoint_from_a_laptop(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example config names FC's internal endpoint; a laptop's command goes to the
    public one instead (here it cannot connect either: no network in tests, and says so)."""
    example = Path(__file__).parent.parent / "config.example.yaml"
    monkeypatch.delenv("FC_FUNCTION_NAME", raising=False)
    for name, value in {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": AK,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SK,
        "DT_TOKEN": ROBOT,
        "DT_SECRET": ROBOT_SECRET,
    }.items():
        monkeypatch.setenv(name, value)
    # A proxy that refuses at once keeps the attempt off the network.
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    code, _, err = run(capsys, ["state", "show", "-c", str(example)])
    assert code == 1, err
    assert "OSS endpoint tried: https://oss-cn-hangzhou.aliyuncs.com;" in err
    assert "internal" not in err
    assert os.environ.get("FC_FUNCTION_NAME") is None


def test_check_dry_run_json_holds_the_messages_it_would_send(
    ctx: Ctx, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx.world.sx.add_instance(92583, status=5, result="NullPointerException")
    code, out, err = run(capsys, ["check", "--dry-run", "--json", "-c", str(ctx.config)])
    assert code == 0, err
    summary = json.loads(out)
    [message] = summary["preview"]
    assert message["receiver"] == "ops" and "NullPointerException" in message["text"]
    assert ctx.world.texts() == [], "a dry run sends nothing"
    # Without --json the messages are printed as text before the summary, as before.
    code, out, _ = run(capsys, ["check", "--dry-run", "-c", str(ctx.config)])
    assert code == 0 and out.startswith("--- to ops: ")


def test_silence_expire_takes_several_ids(ctx: Ctx, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = a_silence(ctx), a_silence(ctx)
    config = ["-c", str(ctx.config)]
    code, out, err = run(capsys, ["silence", "expire", first, second, *config, "--json"])
    assert code == 0, err
    assert [(row["id"], row["state"]) for row in json.loads(out)] == [
        (first, "expired"),
        (second, "expired"),
    ]
    # One the book does not hold: those before it are ended and said so, then exit 2.
    third = a_silence(ctx)
    code, out, err = run(capsys, ["silence", "expire", third, "404", *config])
    assert code == 2 and "holds no silence '404'" in err
    assert out.startswith(f"silence {third} expired by alice")


def test_without_credentials_each_command_says_so_in_its_own_words(
    ctx: Ctx, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"):
        monkeypatch.delenv(name)
    config = ["-c", str(ctx.config)]
    needs = "no credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET"
    oss = "OSS state needs credentials, and none were found"
    to = ["--to", "oss://alert-bucket/cfg/config.yaml"]
    for argv, code, said in [
        (["jobs", "--live", *config], 2, f"jobs --live: {needs}"),
        (["invoke", "--endpoint", ctx.fc.url], 2, needs),
        (["config", "push", str(ctx.config), *to], 2, needs),
        (["state", "show", *config], 2, f"state show: {oss}"),
        (["state", "forget", "--job", "92583", *config], 2, f"state forget: {oss}"),
        (["silence", "list", *config], 1, f"silence list: {oss}"),
        (["jobs", *config], 1, f"jobs: the job lists the state keeps could not be read: {oss}"),
        (["heartbeat", "--now", *config], 1, f"heartbeat: the state could not be read: {oss}"),
    ]:
        got, out, err = run(capsys, argv)
        assert (got, err.splitlines()[0].startswith(said)) == (code, True), (argv, out, err)
    # A command that never reads the state or calls SchedulerX needs none.
    code, out, err = run(capsys, ["send-test", "ops", *config])
    assert code == 0, err
