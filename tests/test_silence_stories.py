"""Silences, quiet hours, routes and the chat's silence buttons, in the tick: stories over
several ticks against the loopback SchedulerX, DingTalk robots and OSS.

A held alert is never sent and never lost: the tick counts it (`alerts_silenced`), the
state keeps it per receiver (`state show`), and when the silence or the quiet hours are
over one digest per receiver lists it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from schedulerx_alert.cli.main import main
from schedulerx_alert.config import Config, parse_config
from schedulerx_alert.core.model import JobKey
from schedulerx_alert.core.silence_hold import Held, hold
from schedulerx_alert.core.silence_hold import HeldAlert as HeldNow
from schedulerx_alert.core.state import State, dump_state, load_state
from schedulerx_alert.handler import build_edges
from schedulerx_alert.links.serve import serve
from schedulerx_alert.storage.store import StateStore, StoreError
from schedulerx_alert.tick import TickSummary, run_tick
from tests.fakes.base import ManualClock
from tests.test_actions import answer, context, fc_http_event, form_of
from tests.world import AK, GROUP, NS, ROBOT, SECRETS, SK, STS, World

MINUTE = 60.0
HOUR = 3600.0
KEYS = "s" * 40 + "-signing-key-for-the-silence-links"
ROBOTS = {"dba": "dba-robot-token-0123456789", "finance": "finance-robot-token-012345"}
ROBOTS["audit"] = "audit-robot-token-0123456789"


def local(epoch: float) -> str:
    """A time as a config writes it, in the config's zone (Asia/Shanghai)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.fromtimestamp(epoch, ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")


def fail(world: World, job_id: int = 92583, status: int = 5, **fields: Any) -> int:
    run: int = world.sx.add_instance(
        job_id, status=status, end_time=world.clock() - 5, result="boom", **fields
    )
    return run


def tick(world: World, env: dict[str, str] | None = None, store: Any = None) -> TickSummary:
    """A tick with the world's raw config read with `env` (the action keys), and
    optionally its state store wrapped."""
    config: Config = parse_config(world.raw, env or {}, "world", world.root)
    edges = build_edges(
        config,
        world.credentials,
        60.0,
        "tick",
        world.clock,
        world.clock.advance,
        world.root / "local",
    )
    if store is not None:
        edges.store = store(edges.store)
    return run_tick(config, edges)


def write_config(world: World, path: Path) -> str:
    path.write_text(yaml.safe_dump(world.raw), encoding="utf-8")
    return str(path)


def cli(capsys: pytest.CaptureFixture[str], *argv: str, clock: Any = None) -> tuple[int, str, str]:
    code = main(list(argv), clock=clock)
    out, err = capsys.readouterr()
    for secret in (*SECRETS, KEYS):
        assert secret not in out + err
    return code, out, err


@pytest.fixture
def oss_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "alice")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", AK)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SK)
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", STS)


# -- a silence in the config -------------------------------------------------------------------


def test_a_silence_holds_a_jobs_failures_counts_them_and_a_digest_follows_its_end(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = world.clock()
    world.raw["silences"] = [
        {
            "match": {"jobs": [92583]},
            "start": local(start + 2 * MINUTE),
            "end": local(start + 30 * MINUTE),
            "comment": "warehouse migration",
        }
    ]
    fail(world)
    before = tick(world)
    assert (before.alerts_sent, before.alerts_silenced) == (1, 0)

    world.advance(3 * MINUTE)  # the silence has started
    fail(world)
    fail(world, 92584)  # another job: not silenced
    held = tick(world)
    assert (held.alerts_new, held.alerts_sent, held.alerts_silenced) == (1, 1, 1)
    assert held.status == "ok"
    assert any("held back 1 alert(s) (ops: 1)" in note for note in held.notes)
    assert len(world.texts()) == 2 and "92584" in world.texts()[-1]
    world.advance(5 * MINUTE)
    fail(world)
    assert tick(world).alerts_silenced == 1
    assert len(world.texts()) == 2

    # `state show` counts what is held, and shows the silence in force.
    config = write_config(world, tmp_path / "config.yaml")
    code, out, _ = cli(capsys, "state", "show", "-c", config, "--json", clock=world.clock)
    shown = json.loads(out)["silenced"]
    assert code == 0 and shown["count"] == 2 and shown["receivers"] == {"ops": 2}
    assert [s["id"] for s in shown["in_force"]] == ["silences[0]"]
    code, out, _ = cli(capsys, "state", "show", "-c", config, clock=world.clock)
    assert "silenced   2 alert(s) held back; 1 silence(s) in force" in out

    world.advance(25 * MINUTE)  # past the end: one digest, once
    after = tick(world)
    assert after.alerts_sent == 0 and after.messages == 1
    digest = world.texts()[-1]
    assert "静默期间暂缓的 2 条告警" in digest
    assert "**92583** 失败 2 次" in digest and "静默 silences[0]: warehouse migration" in digest
    assert "92584" not in digest
    world.advance(MINUTE)
    assert tick(world).messages == 0
    assert len(world.texts()) == 3
    assert load_state(world.state_path.read_bytes()).silenced == {}
    fail(world)  # the silence is over: failures page again
    assert tick(world).alerts_sent == 1


def test_a_digest_the_robot_does_not_take_is_sent_next_tick(world: World) -> None:
    start = world.clock()
    world.raw["silences"] = [
        {"match": {"jobs": [92583]}, "start": local(start - HOUR), "end": local(start + MINUTE)}
    ]
    fail(world)
    assert tick(world).alerts_silenced == 1
    world.advance(2 * MINUTE)
    world.dt.set_down(True)
    down = tick(world)
    assert any("digest of 1 held alert(s) for ops waits" in n for n in down.notes)
    assert load_state(world.state_path.read_bytes()).silenced != {}
    world.dt.set_down(False)
    world.advance(MINUTE)
    assert tick(world).messages == 1
    assert "**92583** 失败 1 次" in world.texts()[-1]
    assert load_state(world.state_path.read_bytes()).silenced == {}


def test_a_tick_that_dies_after_the_digest_was_taken_does_not_make_the_next_send_it_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from schedulerx_alert.storage.session import StateSession

    start = world.clock()
    world.raw["silences"] = [
        {"match": {"jobs": [92583]}, "start": local(start - HOUR), "end": local(start + MINUTE)}
    ]
    fail(world)
    fail(world, 92584)
    assert tick(world).alerts_silenced == 1
    world.advance(2 * MINUTE)  # the silence is over: its digest is owed

    def killed(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed before the commit")

    with monkeypatch.context() as patch:
        patch.setattr(StateSession, "commit", killed)
        with pytest.raises(RuntimeError, match="killed"):
            tick(world)
    digests = [t for t in world.texts() if "静默期间暂缓" in t]
    assert len(digests) == 1 and "**92583** 失败 1 次" in digests[0]
    # The dead tick committed nothing: the state still holds what the digest listed.
    assert load_state(world.state_path.read_bytes()).silenced != {}

    world.advance(MINUTE)
    fail(world, 92584)  # a new failure on the takeover tick goes out as usual
    takeover = tick(world)
    assert "digest of 1 held alert(s) for ops was sent by a tick that did not commit" in (
        takeover.notes
    )
    assert (takeover.alerts_sent, takeover.messages) == (1, 1)
    assert [t for t in world.texts() if "静默期间暂缓" in t] == digests
    after = load_state(world.state_path.read_bytes())
    assert after.silenced == {}
    assert not any(":held:" in key for key in after.delivered), "the checkpoint's keys are used"
    world.advance(MINUTE)
    assert tick(world).messages == 0


# -- a silence added from a laptop, in the book beside the state -------------------------------


def test_silence_add_between_ticks_holds_the_next_failure_until_it_is_expired(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], oss_env: None
) -> None:
    # `silence add` stamps the real time; so does this world's clock.
    with World(tmp_path, state="oss", clock=ManualClock(time.time())) as world:
        world.raw["templates"] = {"language": "en"}
        config = write_config(world, tmp_path / "config.yaml")
        fail(world)
        assert tick(world).alerts_sent == 1
        code, out, _ = cli(
            capsys, "silence", "add", "-c", config, "--job", "92583", "--for", "2h",
            "--why", "deploying the fix",
        )  # fmt: skip
        assert code == 0 and out.startswith("silence 1 added")

        world.advance(MINUTE)
        fail(world)
        held = tick(world)
        assert (held.alerts_sent, held.alerts_silenced) == (0, 1)
        assert len(world.texts()) == 1
        assert world.oss is not None
        # The tick compacted the book under its lease: the record is in the snapshot.
        assert "schedulerx-alert/state.json.silences" in world.oss.objects
        assert "schedulerx-alert/state.json.silence.000000000001" not in world.oss.objects

        code, _, _ = cli(capsys, "silence", "expire", "-c", config, "1", "--who", "bob")
        assert code == 0
        world.advance(MINUTE)
        after = tick(world)
        assert after.messages == 1
        digest = world.texts()[-1]
        assert "1 alert(s) held back while silenced" in digest
        assert "**92583** failed ×1" in digest and "silence 1: deploying the fix" in digest


class BookDown(StateStore):
    """The state store, with the silence book's objects failing to read."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def describe(self, key: str) -> str:
        return self.inner.describe(key)

    def read(self, key: str) -> bytes | None:
        if ".silence" in key:
            raise StoreError(f"OSS read {key}: HTTP 503 ServiceUnavailable")
        return self.inner.read(key)

    def write(self, key: str, data: bytes) -> None:
        self.inner.write(key, data)

    def create(self, key: str, data: bytes) -> bool:
        return self.inner.create(key, data)

    def delete(self, key: str) -> None:
        self.inner.delete(key)


def test_a_silence_book_that_cannot_be_read_drops_no_alert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], oss_env: None
) -> None:
    with World(tmp_path, state="oss", clock=ManualClock(time.time())) as world:
        config = write_config(world, tmp_path / "config.yaml")
        code, _, _ = cli(
            capsys, "silence", "add", "-c", config, "--job", "92583", "--for", "1h", "--why", "x"
        )
        assert code == 0
        world.advance(MINUTE)  # `silence add` stamped the real time, a moment after the clock's
        fail(world)
        assert tick(world).alerts_silenced == 1

        world.advance(MINUTE)
        fail(world)
        blind = tick(world, store=BookDown)
        # Sent, not held; said; and what the book's silence held waits for the book.
        assert (blind.alerts_sent, blind.alerts_silenced, blind.status) == (1, 0, "degraded")
        assert any(
            p.startswith("silence book unreadable: OSS read") and "is sent" in p
            for p in blind.problems
        )
        assert len(world.texts()) == 1 and world.oss is not None
        assert (
            sum(
                e.count
                for e in load_state(world.oss.objects["schedulerx-alert/state.json"]).silenced[
                    "ops"
                ]
            )
            == 1
        )


# -- quiet hours -------------------------------------------------------------------------------


def test_quiet_hours_hold_pages_but_an_except_kind_still_pages(world: World) -> None:
    # The world starts on Wednesday 2026-11-25 10:00 in Shanghai.
    world.raw["receivers"][0]["quiet_hours"] = {
        "windows": [{"days": "weekdays", "time": "09:30-11:00"}],
        "except_kinds": ["rejected"],
    }
    fail(world, 92583)
    fail(world, 92584, status=9)
    quiet = tick(world)
    assert (quiet.alerts_sent, quiet.alerts_silenced) == (1, 1)
    (text,) = world.texts()
    assert "被拒绝" in text and "92584" in text
    world.advance(30 * MINUTE)
    assert tick(world).messages == 0  # still quiet: the digest waits too
    world.advance(31 * MINUTE)  # 11:01
    assert tick(world).messages == 1
    digest = world.texts()[-1]
    assert "**92583** 失败 1 次" in digest and "免打扰时段" in digest


# -- routes ------------------------------------------------------------------------------------


def test_two_routes_with_continue_and_routes_agrees_with_the_tick(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, token in ROBOTS.items():
        world.dt.add_robot(token)
        world.raw["receivers"].append({"name": name, "webhook": world.dt.webhook(token)})
    world.raw["watch"][0]["jobs"] = [{"id": 92583, "name": "etl-nightly"}, 92584]
    world.raw["routes"] = [
        {"match": {"kinds": ["failed"]}, "receivers": ["dba"], "continue": True},
        {"match": {"job_names": ["etl-*"]}, "receivers": ["finance"]},
        {"match": {"group": GROUP, "trigger_types": ["manual_rerun"]}, "receivers": ["audit"]},
    ]
    fail(world, 92583)  # failed, etl-*: ops, dba (continues), finance (stops)
    fail(world, 92584, status=9, trigger_type=4)  # rejected by hand: ops, audit
    summary = tick(world)
    assert summary.alerts_sent == 4 and summary.status == "ok"
    tokens = {"ops": ROBOT, **ROBOTS}
    heard = {name: world.dt.texts(token) for name, token in tokens.items()}
    got = {name: sorted(j for j in ("92583", "92584") if any(j in t for t in texts))
           for name, texts in heard.items()}  # fmt: skip
    assert got == {
        "ops": ["92583", "92584"],
        "dba": ["92583"],
        "finance": ["92583"],
        "audit": ["92584"],
    }

    # `routes --job` says the same, with its reasons.
    config = write_config(world, tmp_path / "config.yaml")
    for job, kind, trigger in (
        ("92583", "failed", "scheduled"),
        ("92584", "rejected", "manual_rerun"),
    ):
        code, out, _ = cli(
            capsys, "routes", "-c", config, "--job", job, "--kind", kind, "--trigger", trigger,
            "--json",
        )  # fmt: skip
        (entry,) = json.loads(out)["entries"]
        (decision,) = entry["kinds"]
        said = [r["receiver"] for r in decision["receivers"]]
        assert code == 0 and sorted(said) == sorted(n for n, jobs in got.items() if job in jobs)
    code, out, _ = cli(capsys, "routes", "-c", config, "--job", "92583", "--kind", "failed")
    assert "-> finance  because routes[1] (name=etl-*)" in out


def test_routes_answers_for_a_job_found_by_name_in_the_job_list_the_state_keeps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with World(tmp_path, jobs=(92583,)) as world:
        world.dt.add_robot(ROBOTS["dba"])
        world.raw["receivers"].append({"name": "dba", "webhook": world.dt.webhook(ROBOTS["dba"])})
        world.sx.add_job(NS, GROUP, 51001, name="etl-orders")
        world.sx.add_job(NS, GROUP, 51002, name="report-daily")
        world.raw["watch"].append(
            {"namespace": NS, "group": GROUP, "job_names": ["etl-*"], "receivers": ["ops"]}
        )
        world.raw["routes"] = [{"match": {"job_names": ["etl-*"]}, "receivers": ["dba"]}]
        config = write_config(world, tmp_path / "config.yaml")

        # Before any tick the state keeps no job list: the job is unknown to both.
        code, _, err = cli(capsys, "routes", "-c", config, "--job", "51001")
        assert code == 2 and "job 51001 is unknown" in err and "job lists in the state" in err

        assert tick(world).status == "ok"  # reads the group's job list into the state
        fail(world, 51001)
        summary = tick(world)
        assert summary.alerts_sent == 2
        heard = {n: any("51001" in t for t in world.dt.texts(tok))
                 for n, tok in (("ops", ROBOT), ("dba", ROBOTS["dba"]))}  # fmt: skip
        assert heard == {"ops": True, "dba": True}

        code, out, _ = cli(capsys, "routes", "-c", config, "--job", "51001", "--kind", "failed")
        assert code == 0
        assert "job 51001 (etl-orders) in watch[1]" in out
        assert "-> dba  because routes[0] (name=etl-*)" in out
        assert "found in its group's job list" in out
        code, out, _ = cli(capsys, "routes", "-c", config, "--job", "51001", "--json")
        (entry,) = json.loads(out)["entries"]
        assert entry["discovered"] is True and entry["name"] == "etl-orders"
        said = {r["receiver"] for d in entry["kinds"] for r in d["receivers"]}
        assert said == set(heard)

        # In the job list but matched by no entry; and in neither.
        code, _, err = cli(capsys, "routes", "-c", config, "--job", "51002")
        assert code == 2 and "'report-daily'" in err and "no watch entry watches it" in err
        code, _, err = cli(capsys, "routes", "-c", config, "--job", "77777")
        assert code == 2 and "job 77777 is unknown" in err
        # A job named by id still needs no state.
        code, out, _ = cli(capsys, "routes", "-c", config, "--job", "92583")
        assert code == 0 and "watch[0]" in out and "job list" not in out


# -- silence from the chat ---------------------------------------------------------------------


def test_a_silence_button_clicked_holds_the_next_failure_and_the_digest_follows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"SCHEDULERX_ALERT_ACTION_KEYS": KEYS}
    with World(tmp_path, state="oss", clock=ManualClock(time.time())) as world:
        world.raw["templates"] = {"language": "en"}
        world.raw["actions"] = {"enabled": True, "base_url": "http://127.0.0.1:9/silence"}
        path = tmp_path / "config.yaml"
        write_config(world, path)
        monkeypatch.setenv("SCHEDULERX_ALERT_CONFIG", str(path))
        monkeypatch.setenv("SCHEDULERX_ALERT_ACTION_KEYS", KEYS)

        fail(world)
        assert tick(world, env).alerts_sent == 1
        (card,) = world.dt.messages(ROBOT)
        assert card["msgtype"] == "actionCard"
        buttons = card["actionCard"]["btns"]
        assert buttons[0]["title"] == "Silence 1 h"
        url = buttons[0]["actionURL"]

        # The click: open the link, confirm with the page's form (the HTTP trigger).
        opened = answer(serve(fc_http_event(url), context(), tmp_path, world.clock))
        assert opened["statusCode"] == 200
        fields = form_of(opened["body"]).fields
        posted = answer(serve(fc_http_event(url, "POST", fields), context(), tmp_path, world.clock))
        assert posted["statusCode"] == 200 and "silence #1" in posted["body"]

        world.advance(MINUTE)
        fail(world)
        held = tick(world, env)
        assert (held.alerts_sent, held.alerts_silenced) == (0, 1)
        assert len(world.dt.messages(ROBOT)) == 1

        world.advance(HOUR)  # the silence the button made is over
        after = tick(world, env)
        assert after.messages == 1
        digest = world.dt.messages(ROBOT)[-1]
        assert digest["msgtype"] == "markdown"  # a digest carries no buttons
        text = digest["markdown"]["text"]
        assert "**92583** failed ×1" in text and "silence 1: from a DingTalk alert" in text


def test_a_config_without_actions_sends_plain_markdown(world: World) -> None:
    fail(world)
    tick(world)
    assert world.dt.messages(ROBOT)[0]["msgtype"] == "markdown"


# -- the state ---------------------------------------------------------------------------------


def test_a_state_from_before_silences_loads_with_nothing_held_and_held_entries_round_trip() -> None:
    older = Path(__file__).parent / "data" / "state_v1.json"
    assert load_state(older.read_bytes()).silenced == {}
    plain = dump_state(State())
    assert b"silenced" not in plain and load_state(plain).silenced == {}
    job = JobKey(NS, GROUP, 92583)
    book = hold({}, [HeldNow("ops", "oss:3", job, "etl", "failed", 100.0)] * 3)
    assert book == {"ops": (Held("oss:3", job, "etl", "failed", 100.0, 100.0, 3),)}
    again = load_state(dump_state(State(silenced=book)))
    assert again.silenced == book


def test_held_entries_are_bounded_per_receiver_and_still_counted() -> None:
    from schedulerx_alert.core.silence_hold import MAX_ENTRIES, counts

    many = [
        HeldNow("ops", "config:silences[0]", JobKey(NS, GROUP, n), "", "failed", 1.0)
        for n in range(1, MAX_ENTRIES + 51)
    ]
    book = hold({}, many)
    assert len(book["ops"]) == MAX_ENTRIES + 1
    assert counts(book) == {"ops": MAX_ENTRIES + 50}
    folded = [e for e in book["ops"] if e.job is None]
    assert [(e.kind, e.count) for e in folded] == [("*", 50)]
    assert load_state(dump_state(State(silenced=book))).silenced == book


def test_the_readmes_routes_silences_and_quiet_hours_read_as_written(world: World) -> None:
    readme = (Path(__file__).parents[1] / "docs" / "config.md").read_text(encoding="utf-8")
    section = readme.split("## Who hears what", 1)[1]
    documented = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    for name, token in ROBOTS.items():
        world.dt.add_robot(token)
        world.raw["receivers"].append({"name": name, "webhook": world.dt.webhook(token)})
    world.raw["receivers"][0]["quiet_hours"] = documented["receivers"][0]["quiet_hours"]
    world.raw["routes"] = documented["routes"]
    world.raw["silences"] = documented["silences"]
    config = world.config()
    assert [r.receivers for r in config.routes] == [("dba",), ("finance",)]
    assert config.routes[0].continue_ and not config.routes[1].continue_
    assert config.quiet_hours["ops"].except_kinds == {"missed", "rejected"}
    assert config.silences[0].comment == "warehouse migration"
