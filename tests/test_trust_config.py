"""Issue 19, the config writer's boundary: someone who can write the config object
(`config push`) but knows no secret must not be able to make the function post one.

Template paths stay inside the config's folder; `${VAR}` is read only in secret and
endpoint fields, never for the credentials; a body that would carry a secret the
function holds is not sent; every duration is bounded.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedulerx_alert.cli.main import main
from schedulerx_alert.config import ConfigError, parse_config, show
from tests.world import AK, ROBOT, ROBOT_SECRET, SK, STS, World

BUCKET = "alert-bucket"


def problems_of(world: World, **changes: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        world.config(**changes)
    return caught.value.problems


# -- item 1: template paths resolve inside the config's folder ------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "/proc/self/environ",
        "../../../proc/self/environ",
        "../../../../../../../../proc/self/environ",
        "templates/../../outside.md.j2",
        "~/.bashrc",
    ],
)
def test_a_template_path_out_of_the_config_folder_is_refused(world: World, name: str) -> None:
    (world.root.parent / "outside.md.j2").write_text("{{ status }}", encoding="utf-8")
    found = problems_of(world, templates={"alert": name})
    assert any(
        p.startswith(f"templates.alert: {name!r} is refused: a template is a file in the config's")
        and "absolute paths and '..' are refused" in p
        for p in found
    ), found


def test_a_link_in_the_config_folder_that_points_out_of_it_is_refused(world: World) -> None:
    (world.root / "env.md.j2").symlink_to("/proc/self/environ")
    assert problems_of(world, templates={"summary": "env.md.j2"}) == [
        "templates.summary: 'env.md.j2' is refused: resolves outside the config's folder; "
        "a template is a file in the config's folder (for a config in OSS, the code "
        "package's), named relative to it; absolute paths and '..' are refused"
    ]


def test_a_template_inside_the_config_folder_still_works(world: World) -> None:
    (world.root / "mine").mkdir()
    (world.root / "mine" / "alert.md.j2").write_text("### {{ job_label }} {{ status }}\n")
    world.raw["templates"] = {"language": "en", "alert": "mine/./alert.md.j2"}
    world.sx.add_instance(92583, status=5)
    world.tick()
    assert world.texts() == ["### 92583 failed"]


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator's shell: their OSS keys, the robot's secrets for the check only."""
    for name, value in (
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", AK),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SK),
        ("ALIBABA_CLOUD_SECURITY_TOKEN", STS),
        ("DT_TOKEN", ROBOT),
        ("DT_SECRET", ROBOT_SECRET),
    ):
        monkeypatch.setenv(name, value)


@pytest.fixture
def oss_world(tmp_path: Path, shell: None) -> Iterator[World]:
    with World(tmp_path, state="oss", real_time=True) as world:
        yield world


def config_file(world: World, path: Path, **changes: Any) -> Path:
    raw = copy.deepcopy(world.raw)
    raw["receivers"][0]["webhook"] = world.dt.webhook("TOKEN").replace("TOKEN", "${DT_TOKEN}")
    raw["receivers"][0]["secret"] = "${DT_SECRET}"
    raw.update(changes)
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_validate_and_config_push_refuse_a_template_out_of_the_folder(
    oss_world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert oss_world.oss is not None
    path = config_file(
        oss_world, tmp_path / "config.yaml", templates={"alert": "/proc/self/environ"}
    )
    assert main(["validate", "--config", str(path)]) == 2
    assert "templates.alert: '/proc/self/environ' is refused" in capsys.readouterr().err
    to = f"oss://{BUCKET}/cfg/config.yaml"
    assert main(["config", "push", str(path), "--to", to, "--endpoint", oss_world.oss.url]) == 2
    err = capsys.readouterr().err
    assert "templates.alert: '/proc/self/environ' is refused" in err
    assert "nothing was uploaded" in err
    assert oss_world.oss.objects_in(BUCKET) == {}
    assert ROBOT_SECRET not in err and os.environ["DT_SECRET"] not in err


# -- item 2: ${VAR} only where a secret or an endpoint is, never the credentials ----------------

HELD = {
    "DT_TOKEN": ROBOT,
    "DT_SECRET": ROBOT_SECRET,
    "ALIBABA_CLOUD_ACCESS_KEY_ID": AK,
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SK,
    "ALIBABA_CLOUD_SECURITY_TOKEN": STS,
    "accessKeySecret": SK,
    "SCHEDULERX_ALERT_ACTION_KEYS": "k" * 40,
    "MY_LINK_KEYS": "m" * 40,
}


def parse(world: World, raw: dict[str, Any]) -> list[str]:
    """The problems of `raw` read with the function's environment (HELD); [] when none.
    The `actions:` section's own count too: `validate` refuses them, a tick sends without
    buttons while they last."""
    try:
        config = parse_config(raw, HELD, "world", world.root)
    except ConfigError as exc:
        problems = exc.problems
    else:
        problems = list(config.actions.problems) if config.actions else []
    assert not any(v in p for p in problems for v in HELD.values()), problems
    return problems


ONLY_THERE = (
    "${VAR} is read from the environment only in receivers[*].webhook, receivers[*].secret, "
    "schedulerx.endpoint, state.endpoint; write this value in the file"
)


def test_a_keyword_from_the_environment_is_refused_and_no_message_carries_it(
    world: World,
) -> None:
    raw = copy.deepcopy(world.raw)
    raw["receivers"][0]["keyword"] = "${DT_SECRET}"
    assert parse(world, raw) == [f"receivers[0].keyword: {ONLY_THERE}"]


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("watch", 0, "namespace"), "${DT_SECRET}"),
        (("watch", 0, "group"), "x-${DT_TOKEN}"),
        (("receivers", 0, "name"), "${DT_SECRET}"),
        (("timezone",), "${DT_SECRET}"),
        (("region",), "${DT_SECRET}"),
        (("watch", 0, "stuck_after"), "${DT_SECRET}"),
        (("schedulerx", "discovery_interval"), "${DT_SECRET}"),
        (("schedulerx", "max_calls_per_minute"), "${DT_SECRET}"),
        (("templates", "alert"), "${DT_SECRET}"),
        (("health", "receiver"), "${DT_SECRET}"),
    ],
)
def test_text_that_can_reach_a_message_never_reads_the_environment(
    world: World, where: tuple[Any, ...], value: str
) -> None:
    raw = copy.deepcopy(world.raw)
    target: Any = raw
    for key in where[:-1]:
        target = target.setdefault(key, {}) if isinstance(key, str) else target[key]
    target[where[-1]] = value
    path = ".".join(str(k) for k in where).replace(".0", "[0]")
    assert f"{path}: {ONLY_THERE}" in parse(world, raw)


@pytest.mark.parametrize(
    "name",
    [
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "ALIBABA_CLOUD_SECURITY_TOKEN",
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "accessKeySecret",
        "SCHEDULERX_ALERT_ACTION_KEYS",
    ],
)
@pytest.mark.parametrize("field", ["webhook", "secret", "endpoint"])
def test_the_credentials_and_action_keys_are_never_substituted(
    world: World, name: str, field: str
) -> None:
    raw = copy.deepcopy(world.raw)
    if field == "webhook":
        raw["receivers"][0]["webhook"] = world.dt.webhook("T").replace("=T", "=${" + name + "}")
        path = "receivers[0].webhook"
    elif field == "secret":
        raw["receivers"][0]["secret"] = "SEC${" + name + "}"
        path = "receivers[0].secret"
    else:
        raw["state"]["endpoint"] = "https://${" + name + "}.example.com"
        path = "state.endpoint"
    assert parse(world, raw) == [
        f"{path}: {name} is never read into the config: it holds the function's credentials "
        "or its action signing keys"
    ]


def test_the_variable_actions_key_env_names_is_never_substituted(world: World) -> None:
    raw = copy.deepcopy(world.raw)
    raw["actions"] = {"key_env": "MY_LINK_KEYS"}
    raw["receivers"][0]["secret"] = "SEC${MY_LINK_KEYS}"
    problems = parse(world, raw)
    assert problems[0] == (
        "receivers[0].secret: MY_LINK_KEYS is never read into the config: it holds the "
        "function's credentials or its action signing keys"
    )
    # And the section itself is refused: the keys live in the default variable only.
    assert problems[1].startswith("actions.key_env: the link function checks each link")
    assert len(problems) == 2


def test_the_silence_links_address_is_sent_so_it_never_reads_the_environment(
    world: World,
) -> None:
    raw = copy.deepcopy(world.raw)
    raw["actions"] = {"enabled": False, "base_url": "https://${DT_SECRET}.example.com/s"}
    assert parse(world, raw) == [
        "actions.base_url: ${VAR} is not read here: the link is sent in messages"
    ]


def test_secrets_and_endpoints_still_come_from_the_environment(world: World) -> None:
    raw = copy.deepcopy(world.raw)
    raw["receivers"][0]["webhook"] = world.dt.webhook("T").replace("=T", "=${DT_TOKEN}")
    raw["receivers"][0]["secret"] = "${DT_SECRET}"
    raw["schedulerx"]["endpoint"] = "${SX_ENDPOINT}"
    config = parse_config(raw, {**HELD, "SX_ENDPOINT": world.sx.url}, "world", world.root)
    ops = config.receivers["ops"]
    assert (ops.access_token, ops.secret) == (ROBOT, ROBOT_SECRET)
    assert config.schedulerx.endpoint == world.sx.url


# -- item 12: every duration is bounded, the refusal naming the field and the bound --------------


def digits(low: int, high: int) -> st.SearchStrategy[str]:
    """Whole numbers of `low` to `high` digits, as text (str() stops at 4300 digits)."""
    return st.builds(
        str.__add__,
        st.sampled_from("123456789"),
        st.text("0123456789", min_size=low - 1, max_size=high - 1),
    )


@settings(max_examples=60, deadline=None)
@given(
    digits=digits(9, 600),
    unit=st.sampled_from(["s", "m", "h", "d", ".5m"]),
    key=st.sampled_from(["stuck_after", "flap_window", "missed_grace"]),
)
def test_a_rule_duration_of_any_size_is_refused_past_a_year_and_a_day(
    tmp_path_factory: pytest.TempPathFactory, digits: str, unit: str, key: str
) -> None:
    with World(tmp_path_factory.mktemp("w")) as world:
        world.raw["watch"][0][key] = digits + unit
        assert problems_of(world) == [
            f"watch[0].{key}: must be at most 366d, not {show(digits + unit)}"
        ]


def test_the_longest_rule_duration_is_still_taken(world: World) -> None:
    world.raw["watch"][0]["stuck_after"] = "366d"
    assert world.config().watch[0].rules.stuck_after == 366 * 86400


@pytest.mark.parametrize("size", [8, 400, 4300, 4301, 6000])
def test_a_button_duration_of_any_size_is_refused(world: World, size: int) -> None:
    world.raw["actions"] = {"durations": ["9" * size + "d"]}
    [problem] = parse(world, world.raw)
    assert problem.startswith("actions.durations[0]: ") and "(from 5m to 7d)" in problem


@pytest.fixture
def silence_config(world: World, tmp_path: Path) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(world.raw), encoding="utf-8")
    return str(path)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    digits=digits(8, 6000),
    unit=st.sampled_from(["d", "h", "m", "1d", "d1h"]),
)
def test_silence_add_for_any_number_is_refused_with_the_bound(
    silence_config: str, capsys: pytest.CaptureFixture[str], digits: str, unit: str
) -> None:
    text = {"1d": "1d" + digits + "h", "d1h": digits + "d1h"}.get(unit, digits + unit)
    argv = ["silence", "add", "-c", silence_config, "--job", "92583", "--why", "x"]
    code = main([*argv, "--for", text, "--who", "alice"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"silence add: --for: {text[:40]!r} is too long: at most 31 days"), err
    assert "Traceback" not in err


def test_silence_add_for_the_longest_span_is_taken(
    silence_config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["silence", "add", "-c", silence_config, "--job", "92583", "--why", "x"]
    assert main([*argv, "--for", "31d", "--who", "alice"]) == 0
    assert main([*argv, "--for", "30d24h1m", "--who", "alice"]) == 2
    assert "--for: '30d24h1m' is too long: at most 31 days" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["1e400", "inf", "nan", "0", "-5", "86401", "1" + "0" * 400])
@pytest.mark.parametrize("command", ["validate", "check"])
def test_a_timeout_out_of_fcs_range_is_refused_by_its_flag(
    silence_config: str, capsys: pytest.CaptureFixture[str], value: str, command: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--config", silence_config, "--timeout", value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --timeout: must be a number of seconds above 0 and at most 86400" in err


# -- item 3: no body that carries a secret the function holds is sent ----------------------------


def posted(world: World) -> bytes:
    """Every body the robot server received, accepted or not."""
    return b"\n".join(r.body for r in world.dt.requests)


def test_a_job_whose_error_output_carries_the_robot_secret_gets_no_message(
    world: World,
) -> None:
    # A job author can shape the error text; the robot secret is no secret to some.
    world.sx.add_instance(92583, status=5, result=f"login failed with key {ROBOT_SECRET}")
    world.sx.add_instance(92584, status=5, result="NullPointerException")
    summary = world.tick()
    assert ROBOT_SECRET.encode() not in posted(world)
    [text] = world.texts()
    assert "92584" in text and "92583" not in text
    assert summary.alerts_sent == 1 and summary.alerts_pending == 0
    assert summary.status == "degraded"
    [problem] = summary.problems
    assert problem.startswith("receiver ops: the failed alert ")
    assert problem.endswith("is dropped: the message would carry a robot secret; it is not sent")
    # Dropped for good: never owed again, never sent on a later tick.
    world.advance(60)
    summary = world.tick()
    assert (summary.status, summary.problems, summary.alerts_pending) == ("ok", [], 0)
    assert len(world.texts()) == 1
    assert ROBOT_SECRET.encode() not in posted(world)


def test_in_a_summary_only_the_alert_that_carries_a_secret_is_dropped(tmp_path: Path) -> None:
    errors = {
        1: "NullPointerException",
        2: "OutOfMemoryError",
        3: f"AuthError: robot {ROBOT} refused",
        4: "SocketTimeoutException",
        5: "ConnectException",
    }
    with World(tmp_path, jobs=tuple(errors)) as world:
        for job, error in errors.items():
            world.sx.add_instance(job, status=5, result=error)
        summary = world.tick()
        assert ROBOT.encode() not in posted(world)
        assert summary.alerts_sent == 4 and summary.alerts_pending == 0
        sent = "\n".join(world.texts())
        assert all(errors[job] in sent for job in (1, 2, 4, 5)), sent
        assert "AuthError" not in sent
        [problem] = summary.problems
        assert problem.endswith("the message would carry a robot access token; it is not sent")


def test_a_template_that_prints_a_credential_sends_nothing(world: World) -> None:
    # As if it printed the environment: the AccessKey secret in the template's text.
    (world.root / "leaky.md.j2").write_text(f"### {{{{ job_label }}}} failed ({SK})\n")
    world.raw["templates"] = {"language": "en", "alert": "leaky.md.j2"}
    world.sx.add_instance(92583, status=5)
    summary = world.tick()
    assert world.dt.requests == [] and world.texts() == []
    assert summary.messages == 0 and summary.alerts_pending == 0
    assert any(
        "the message would carry the AccessKey secret; it is not sent" in p
        for p in summary.problems
    )
    assert not any(SK in p for p in summary.problems)


def test_a_notice_that_would_carry_the_sts_token_goes_to_no_receiver(world: World) -> None:
    from schedulerx_alert.delivery.outbox import Delivery, Notice
    from schedulerx_alert.delivery.render import Message
    from schedulerx_alert.handler import build_edges

    world.raw["receivers"].append({**world.raw["receivers"][0], "name": "dba"})
    world.raw["watch"][0]["receivers"] = ["ops"]
    config = world.config()
    edges = build_edges(config, world.credentials, clock=world.clock)
    delivery = Delivery(edges.receivers, edges.renderer, {}, world.clock() + 30, clock=world.clock)
    message = Message("monitor", f"the state said: token {STS} expired")
    assert delivery.notice(Notice(message, ("ops", "dba"))) is None
    [(_, why)] = delivery.report.unannounced
    assert why == "ops: the message would carry the STS token; it is not sent"
    assert world.dt.requests == []
    # Refused before any request: the robot's budget is untouched.
    assert delivery.report.messages == 0 and delivery.report.robots == {}


@settings(max_examples=200, deadline=None)
@given(
    secret=st.text(min_size=8, max_size=80),
    before=st.text(max_size=40),
    after=st.text(max_size=40),
    where=st.sampled_from(["text", "link"]),
)
def test_the_screen_finds_a_secret_however_a_body_spells_it(
    secret: str, before: str, after: str, where: str
) -> None:
    from urllib.parse import quote

    from schedulerx_alert.support.redact import Screen

    value = before + secret + after
    if where == "link":
        value = "https://alert.example.com/s?t=" + quote(value, safe="")
    body = json.dumps({"markdown": {"text": value}}, ensure_ascii=False)
    assert Screen([("a robot secret", secret)]).find(body) == "a robot secret"


def test_the_screen_ignores_values_too_short_to_be_secrets() -> None:
    from schedulerx_alert.support.redact import Screen

    screen = Screen([("a robot secret", "SEC1"), ("the STS token", None), ("the STS token", "")])
    assert screen.find('{"text": "SEC1 is fine"}') is None


# -- where secrets go, whatever the config says ---------------------------------------------------


@pytest.mark.parametrize("section", ["schedulerx", "state"])
def test_signed_calls_go_only_to_alibaba_cloud_hosts(world: World, section: str) -> None:
    # Every SchedulerX and OSS call carries the STS token: an endpoint is no way out.
    raw = copy.deepcopy(world.raw)
    raw[section]["endpoint"] = "https://collector.example.com"
    assert parse(world, raw) == [
        f"{section}.endpoint: must be an Alibaba Cloud endpoint (a host under aliyuncs.com): "
        "calls to it carry the function's credentials"
    ]
    raw[section]["endpoint"] = "https://notaliyuncs.com"
    assert len(parse(world, raw)) == 1
    raw[section]["endpoint"] = "https://oss-cn-hangzhou-internal.aliyuncs.com"
    assert parse(world, raw) == []


def test_a_robots_token_from_the_environment_goes_only_to_dingtalk(world: World) -> None:
    raw = copy.deepcopy(world.raw)
    raw["dingtalk"]["allowed_hosts"] = ["127.0.0.1", "collector.example.com"]
    receiver = raw["receivers"][0]
    receiver["webhook"] = "https://collector.example.com/robot/send?access_token=${DT_TOKEN}"
    receiver["secret"] = "SECliteral0123456789"
    assert parse(world, raw) == [
        "receivers[0].webhook: a token or secret read from the environment is sent only to "
        "oapi.dingtalk.com; for another host, write this robot's token and secret in the file"
    ]
    receiver["webhook"] = "https://collector.example.com/robot/send?access_token=literal"
    receiver["secret"] = "${DT_SECRET}"
    assert len(parse(world, raw)) == 1
    receiver["secret"] = "SECliteral0123456789"
    assert parse(world, raw) == []
    receiver["webhook"] = "https://oapi.dingtalk.com/robot/send?access_token=${DT_TOKEN}"
    receiver["secret"] = "${DT_SECRET}"
    raw["dingtalk"]["allowed_hosts"] = ["oapi.dingtalk.com"]
    assert parse(world, raw) == []
