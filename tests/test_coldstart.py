"""What a cold start loads: no Jinja2 until a message is rendered, never a YAML parser
for the config `make package` ships (config.json), no croniter until a cron is read, none
of the silence links' modules on a timer tick, none of an optional feature's (heartbeat,
silences and quiet hours and routes, owners and log lines) unless the config or the state
uses it. Which modules load is a behaviour; how long they take is bench/coldstart.py's
business."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from schedulerx_alert.cli.config_cmd import packaged_json
from schedulerx_alert.config import ConfigError, load_config, read_json
from tests.world import AK, ROBOT, ROBOT_SECRET, SK, STS, World

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
HEAVY = ("jinja2", "yaml", "oss2", "croniter", "dateutil")
# Ours, each deferred to where it is first needed (see the comment at each import).
DEFERRED = (
    "schedulerx_alert.links.http",  # an HTTP trigger's event (silence links)
    "schedulerx_alert.links.serve",
    "schedulerx_alert.delivery.links",
    "schedulerx_alert.config.yaml_reader",  # a config.yaml, never the shipped config.json
    "schedulerx_alert.storage.config_object",  # a config in OSS
    "schedulerx_alert.storage.oss_client",  # a state or a config in OSS
    "schedulerx_alert.storage.config_text",  # the commands' and the silence links' config
    "schedulerx_alert.config.sections",
    "schedulerx_alert.delivery.neutralise",  # job text, in a message or an error
    "schedulerx_alert.cli",  # the command line
    "schedulerx_alert.cli.main",
)

# Optional features' modules: each loads only when the config or the state uses it.
HEARTBEAT = (
    "schedulerx_alert.delivery.heartbeat",
    "schedulerx_alert.core.heartbeat",
    "schedulerx_alert.core.heartbeat_codec",
    "schedulerx_alert.config.heartbeat",
)
SILENCES = (
    "schedulerx_alert.core.silence",
    "schedulerx_alert.core.silence_hold",
    "schedulerx_alert.core.routing",
    "schedulerx_alert.core.route",
    "schedulerx_alert.delivery.digest",
)
EVIDENCE = ("schedulerx_alert.sources.evidence",)
# What SchedulerX says of the jobs themselves (the catalog: discovery, GetJobInfo), and a
# job's schedule, computed only from that: jobs named by id need the catalog only when their
# entry reads the job's own timeout (stuck_after: job_timeout, the default) or its schedule
# (missed_grace), and the schedule only for missed_grace.
SCHEDULES = (
    "schedulerx_alert.core.catalog",
    "schedulerx_alert.core.catalog_codec",
    "schedulerx_alert.core.schedule",
)
# Needed by the first message sent, whatever the config.
MESSAGE = ("schedulerx_alert.delivery.mentions", "schedulerx_alert.delivery.evidence_text")
OPTIONAL = HEARTBEAT + SILENCES + EVIDENCE + SCHEDULES + MESSAGE


def loaded_after(script: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `script` in a fresh interpreter from src/; its last line as JSON."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=SRC,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def test_importing_the_handler_loads_none_of_what_a_quiet_tick_does_not_need() -> None:
    watched = HEAVY + DEFERRED + OPTIONAL
    report = loaded_after(
        f"""
        import json, sys
        import index
        print(json.dumps({{"heavy": [m for m in {watched!r} if m in sys.modules]}}))
        """
    )
    assert report["heavy"] == []


def test_the_handler_pauses_the_collector_for_its_import_only() -> None:
    """index.py pauses the cyclic collector while it imports and leaves it as it found it."""
    report = loaded_after(
        """
        import gc, json
        import index
        enabled = gc.isenabled()
        gc.disable()
        import importlib
        importlib.reload(index)
        print(json.dumps({"enabled": enabled, "then": gc.isenabled()}))
        """
    )
    # A runtime that collects keeps collecting; one that had paused it stays paused.
    assert report == {"enabled": True, "then": False}
    failed = loaded_after(
        """
        import gc, json, sys
        sys.modules["schedulerx_alert.handler"] = None  # the import fails half-way
        try:
            import index
        except ImportError:
            print(json.dumps({"enabled": gc.isenabled()}))
        """
    )
    assert failed == {"enabled": True}


def test_croniter_loads_with_the_first_cron_read() -> None:
    # The other side of the check above: the name watched is the module that loads.
    report = loaded_after(
        """
        import json, sys
        from schedulerx_alert.core.schedule import Schedule
        before = "croniter" in sys.modules
        Schedule.from_time_config(1, "0 0/5 * * * ?", "Asia/Shanghai").next_fire(0.0)
        print(json.dumps({"before": before, "after": "croniter" in sys.modules}))
        """
    )
    assert report == {"before": False, "after": True}


def test_an_http_event_loads_the_silence_link_modules(tmp_path: Path) -> None:
    report = loaded_after(
        """
        import json, sys
        from types import SimpleNamespace as NS
        import index
        event = {"version": "v1", "rawPath": "/", "body": "", "isBase64Encoded": False,
                 "headers": {}, "queryParameters": {},
                 "requestContext": {"http": {"method": "GET", "path": "/"}}}
        index.handler(json.dumps(event).encode(), NS(request_id="r", function=NS(timeout=5)))
        print(json.dumps({"loaded": "schedulerx_alert.links.serve" in sys.modules}))
        """,
        {"SCHEDULERX_ALERT_CONFIG": str(tmp_path / "missing.json"), "TMPDIR": str(tmp_path)},
    )
    assert report == {"loaded": True}


TICK = """
import json, sys
from types import SimpleNamespace as NS
import index
context = NS(request_id="cold", function=NS(timeout=60),
             credentials=NS(access_key_id={ak!r}, access_key_secret={sk!r}, security_token={sts!r}))
summary = json.loads(index.handler(b"{{}}", context))
print(json.dumps({{"sent": summary["alerts_sent"], "status": summary["status"],
                  "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def test_jinja2_loads_with_the_first_message_and_yaml_never(tmp_path: Path) -> None:
    with World(tmp_path, real_time=True) as world:
        raw = dict(world.raw)
        raw["receivers"] = [
            {
                "name": "ops",
                "webhook": world.dt.webhook("TOKEN").replace("TOKEN", "${DT_TOKEN}"),
                "secret": "${DT_SECRET}",
            }
        ]
        source = tmp_path / "config.yaml"
        source.write_text(yaml.safe_dump(raw), encoding="utf-8")
        env = {"DT_TOKEN": ROBOT, "DT_SECRET": ROBOT_SECRET}
        shipped = tmp_path / "config.json"
        shipped.write_text(packaged_json(source, env), encoding="utf-8")
        child_env = {"SCHEDULERX_ALERT_CONFIG": str(shipped), "TMPDIR": str(tmp_path), **env}
        script = TICK.format(ak=AK, sk=SK, sts=STS, heavy=HEAVY)

        quiet = loaded_after(script, child_env)
        assert (quiet["status"], quiet["sent"], quiet["heavy"]) == ("ok", 0, [])
        world.sx.add_instance(92583, status=5, result="NullPointerException")
        sending = loaded_after(script, child_env)
        assert (sending["status"], sending["sent"], sending["heavy"]) == ("ok", 1, ["jinja2"])
        assert len(world.texts()) == 1


def test_the_shipped_json_means_what_the_yaml_meant_and_keeps_every_var(
    tmp_path: Path,
) -> None:
    env = {"DT_TOKEN": "tok-0123456789", "DT_SECRET": "SEC0123456789"}
    example = ROOT / "config.example.yaml"
    text = packaged_json(example, env)
    assert "tok-0123456789" not in text and "SEC0123456789" not in text
    assert "${DT_TOKEN}" in text and "${DT_SECRET}" in text
    assert json.loads(text) == yaml.safe_load(example.read_text(encoding="utf-8"))
    shipped = tmp_path / "config.json"
    shipped.write_text(text, encoding="utf-8")
    assert load_config(shipped, env) == replace(load_config(example, env), base_dir=tmp_path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            '{"region": "cn-hangzhou",\n "watch": [1, 2',
            "line 2, column 16: Expecting ',' delimiter",
        ),
        ('{"a": NaN}', "(top level): NaN is not a JSON value"),
        ("[" * 100 + "]" * 100, "(top level): values are nested more than 64 deep"),
        (b'{"a": "\xff"}', "line 1: not UTF-8 text"),
    ],
)
def test_a_json_config_that_cannot_be_read_is_named_by_line(
    text: str | bytes, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        read_json(text, "config.json")
    assert caught.value.problems == [problem]


FEATURE_TICK = """
import json, sys
from types import SimpleNamespace as NS
import index
context = NS(request_id="cold", function=NS(timeout=60),
             credentials=NS(access_key_id={ak!r}, access_key_secret={sk!r}, security_token={sts!r}))
summary = json.loads(index.handler(b"{{}}", context))
print(json.dumps({{"sent": summary["alerts_sent"], "status": summary["status"],
                  "held": summary["alerts_silenced"],
                  "loaded": [m for m in {optional!r} if m in sys.modules]}}))
"""


def cold_tick(world: World, tmp_path: Path) -> dict[str, Any]:
    """One tick in a fresh interpreter with the world's config as `make package` ships it."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps(world.raw), encoding="utf-8")
    env = {"SCHEDULERX_ALERT_CONFIG": str(config), "TMPDIR": str(tmp_path)}
    return loaded_after(FEATURE_TICK.format(ak=AK, sk=SK, sts=STS, optional=OPTIONAL), env)


def test_a_tick_with_its_state_in_oss_loads_our_oss_client_and_never_oss2(
    tmp_path: Path,
) -> None:
    watched = (*HEAVY, "schedulerx_alert.storage.oss_client")
    with World(tmp_path, state="oss", real_time=True) as world:
        assert world.oss is not None
        config = tmp_path / "config.json"
        config.write_text(json.dumps(world.raw), encoding="utf-8")
        env = {"SCHEDULERX_ALERT_CONFIG": str(config), "TMPDIR": str(tmp_path)}
        script = TICK.format(ak=AK, sk=SK, sts=STS, heavy=watched)
        world.sx.add_instance(92583, status=5, result="NullPointerException")
        sending = loaded_after(script, env)
        assert (sending["status"], sending["sent"]) == ("ok", 1)
        assert sending["heavy"] == ["jinja2", "schedulerx_alert.storage.oss_client"]
        quiet = loaded_after(script, env)
        assert (quiet["status"], quiet["sent"]) == ("ok", 0)
        assert quiet["heavy"] == ["schedulerx_alert.storage.oss_client"]
        assert "schedulerx-alert/state.json" in world.oss.objects_in("alert-bucket")


def state_doc(world: World) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(world.state_path.read_text(encoding="utf-8"))
    return doc


def test_a_quiet_tick_without_optional_features_loads_none_of_them(tmp_path: Path) -> None:
    with World(tmp_path, real_time=True) as world:
        world.raw["watch"][0]["stuck_after"] = "2h"  # nothing read of the jobs themselves
        first = cold_tick(world, tmp_path)  # records the jobs' history
        quiet = cold_tick(world, tmp_path)
        assert (first["status"], first["loaded"]) == ("ok", [])
        assert (quiet["status"], quiet["sent"], quiet["loaded"]) == ("ok", 0, [])
        assert "heartbeat" not in state_doc(world) and "silenced" not in state_doc(world)
        # The first message loads what every message needs, and no optional feature.
        world.sx.add_instance(92583, status=5, result="NullPointerException")
        sending = cold_tick(world, tmp_path)
        assert (sending["status"], sending["sent"]) == ("ok", 1)
        assert sending["loaded"] == list(MESSAGE)


@pytest.mark.parametrize(
    ("entry", "loaded"),
    [
        ({}, SCHEDULES[:2]),  # stuck_after: job_timeout: the jobs' own timeouts
        ({"missed_grace": "10m"}, SCHEDULES),  # and their fire times
    ],
)
def test_jobs_named_by_id_load_the_catalog_only_for_what_their_rules_read(
    tmp_path: Path, entry: dict[str, str], loaded: tuple[str, ...]
) -> None:
    with World(tmp_path, real_time=True) as world:
        world.raw["watch"][0].update(entry)
        cold_tick(world, tmp_path)
        quiet = cold_tick(world, tmp_path)
        assert (quiet["status"], quiet["loaded"]) == ("ok", list(loaded))


def test_a_configured_heartbeat_loads_and_counts_and_its_counters_alone_load_the_codec(
    tmp_path: Path,
) -> None:
    with World(tmp_path, real_time=True) as world:
        world.raw["heartbeat"] = {"receiver": "ops", "at": "09:00"}
        cold_tick(world, tmp_path)
        counted = cold_tick(world, tmp_path)
        assert counted["status"] == "ok"
        assert set(HEARTBEAT) <= set(counted["loaded"])
        assert state_doc(world)["heartbeat"]["hours"]
        # Without `heartbeat:` the counters left in the state are read (the codec loads)
        # and dropped, as they always were; the counting and the digest stay unloaded.
        del world.raw["heartbeat"]
        dropped = cold_tick(world, tmp_path)
        assert dropped["status"] == "ok"
        assert "schedulerx_alert.core.heartbeat_codec" in dropped["loaded"]
        assert "schedulerx_alert.delivery.heartbeat" not in dropped["loaded"]
        assert "heartbeat" not in state_doc(world)
        after = cold_tick(world, tmp_path)
        assert not set(HEARTBEAT) & set(after["loaded"])


def test_a_silence_loads_what_holds_alerts_back_and_the_held_book_keeps_it_loaded(
    tmp_path: Path,
) -> None:
    def local(epoch: float) -> str:
        return datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M%z")

    with World(tmp_path, real_time=True) as world:
        cold_tick(world, tmp_path)
        world.raw["silences"] = [
            {
                "match": {"jobs": [92583]},
                "start": local(time.time() - 3600),
                "end": local(time.time() + 3600),
                "comment": "disk swap",
            }
        ]
        world.sx.add_instance(92583, status=5, result="NullPointerException")
        held = cold_tick(world, tmp_path)
        assert (held["status"], held["sent"], held["held"]) == ("ok", 0, 1)
        assert set(SILENCES) - {"schedulerx_alert.delivery.digest"} <= set(held["loaded"])
        assert state_doc(world)["silenced"]
        # The silence goes from the config: what it held is read back and digested.
        del world.raw["silences"]
        digested = cold_tick(world, tmp_path)
        assert digested["status"] == "ok"
        assert "schedulerx_alert.delivery.digest" in digested["loaded"]
        assert "silenced" not in state_doc(world)
        assert len(world.texts()) == 1


def test_mention_owners_loads_the_evidence_gatherer_with_an_alert(tmp_path: Path) -> None:
    with World(tmp_path, real_time=True) as world:
        world.raw["mention_owners"] = True
        cold_tick(world, tmp_path)
        quiet = cold_tick(world, tmp_path)
        assert "schedulerx_alert.sources.evidence" not in quiet["loaded"]  # nothing to gather
        world.sx.add_instance(92583, status=5, result="NullPointerException")
        sending = cold_tick(world, tmp_path)
        assert (sending["status"], sending["sent"]) == ("ok", 1)
        assert "schedulerx_alert.sources.evidence" in sending["loaded"]
