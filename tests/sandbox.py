"""`make sandbox CONFIG=my.yaml`: your own config against loopback SchedulerX, OSS, DingTalk
and Function Compute, with controls that make a job's run fail, hang or miss.

    python -m tests.sandbox --config my.yaml          # runs until Ctrl-C
    python -m tests.sandbox fail 92583                # from another terminal
    python -m tests.sandbox tick                      # one tick of the real function

It seeds the loopback SchedulerX with every namespace, group and job the config names (for
`jobs: all` and `job_names` a handful of jobs whose names match), registers a robot for
every receiver, writes a copy of the config with every endpoint on 127.0.0.1, and prints
the `export` lines that point your own shell's `schedulerx-alert check`, `state`,
`silence`, `routes`, `render` and `invoke --dry-run` at it. The secrets it prints are
made up here, for the loopback servers only: your config's `${VAR}`s are filled with them.

Every seeded job fires every minute, and each fire makes a successful run, so that the
rules see a healthy estate until a control says otherwise for a job's next fire:

    fail JOB      its next run fails             reject JOB   its next run is rejected
    hang JOB      its next run stays RUNNING     succeed JOB  its next run succeeds
    skip JOB      its next fire makes no run (a missed run, with missed_grace set)
    fail-workflow WF     an instance of workflow WF fails at its first node (`workflows:`)
    succeed-workflow WF  an instance of workflow WF succeeds
    tick          one tick of the function (add --dry-run to send and save nothing)
    advance SECS  move the sandbox's clock on, making the fires in between (ticks run in
                  the sandbox see it; your shell's commands keep the real time)

Messages the robots accept are printed as `make demo` prints them. A development tool
built on tests/fakes: never part of the function's package.
"""

from __future__ import annotations

import argparse
import copy
import hmac
import json
import math
import os
import re
import secrets
import shlex
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from schedulerx_alert.config import Config, ConfigError, load_config, read_config_data
from schedulerx_alert.config.actions import DEFAULT_KEY_ENV
from schedulerx_alert.core.model import InstanceStatus
from schedulerx_alert.handler import build_edges, parse_event, secrets_of
from schedulerx_alert.support.credentials import Credentials
from schedulerx_alert.support.redact import Redactor
from schedulerx_alert.tick import TickSummary, run_tick
from tests.demo import TRACE, show_message
from tests.fakes.base import ManualClock
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.fc import FakeFc
from tests.fakes.oss import FakeOss
from tests.fakes.schedulerx import FakeSchedulerX
from tests.world import AK, SK, STS

#: Every seeded job's cron (SchedulerX's seconds-first syntax): a fire a minute, so a
#: `skip` shows as a missed run within minutes, not hours.
CRON = "0 * * * * ?"
FIRE_EVERY = 60.0
#: Fires before the start that get their runs: SchedulerX lists a job's last 10.
HISTORY_FIRES = 10
#: Jobs a `jobs: all` entry finds in its group, as a team's group might hold them.
SAMPLE_NAMES = ("nightly-etl", "report-export", "hourly-sync", "billing-reconcile")
#: A job of a `job_names` group that its patterns (most likely) do not match.
UNMATCHED_NAME = "adhoc-cleanup"
#: Words a `job_names` pattern's `*` becomes: two jobs per pattern.
SAMPLE_WORDS = ("orders", "users")
#: Ids for jobs the config does not name: well away from ids a config lists.
FIRST_SAMPLE_ID = 990_001
FUNCTION = "schedulerx-alert"
CONTROL_FILE = "control.json"
JOB_CONTROLS = ("fail", "reject", "hang", "succeed", "skip")
#: A workflow's next instance, made at once: its first node fails (the others never run),
#: or every node succeeds.
WORKFLOW_CONTROLS = ("fail-workflow", "succeed-workflow")
CONTROLS = (*JOB_CONTROLS, *WORKFLOW_CONTROLS, "tick", "advance")
#: The workflow a `workflows: all` entry finds in its group.
SAMPLE_WORKFLOW = 301
DEFAULT_DIR = Path(tempfile.gettempdir()) / "schedulerx-alert-sandbox"
_VAR = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


class SandboxError(Exception):
    """A config the sandbox cannot stand up, or a control it cannot carry out."""


class SandboxClock:
    """Real time plus whatever `advance` added: minutes pass on request, and the sandbox
    otherwise keeps the time your shell's commands sign their requests with."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds


@dataclass(frozen=True)
class SeededJob:
    namespace: str
    group: str
    job_id: int
    name: str
    listed: bool  # named by id in the config (else found by jobs: all / job_names)
    watched: bool = True


@dataclass(frozen=True)
class Robot:
    receiver: str
    token: str


class Sandbox:
    """The loopback servers, seeded from one config; `start()` writes the config's copy."""

    def __init__(
        self,
        config: Path,
        directory: Path,
        *,
        clock: SandboxClock | ManualClock | None = None,
        out: Callable[[str], None] = print,
    ) -> None:
        self.source = config.resolve()
        self.directory = directory.resolve()
        self.clock: SandboxClock | ManualClock = clock or SandboxClock()
        self.out = out
        self.credentials = Credentials(AK, SK, STS)
        self.env: dict[str, str] = {}
        self.jobs: list[SeededJob] = []
        # Workflow id -> its first node's job (`workflows:`; fail-workflow fails that node).
        self.workflows: dict[int, int] = {}
        self.robots: list[Robot] = []
        self.config_path = self.directory / f"sandbox.{self.source.stem}.yaml"
        self._next: dict[int, str] = {}  # job id -> what its next fire does
        self._fired_until = 0.0
        self._shown: dict[str, int] = {}
        self._lock = threading.RLock()
        self._printing = threading.Lock()
        # Signatures are checked, the signing time is not: `advance` moves the sandbox's
        # clock while your shell's commands sign with the real one.
        self.sx = FakeSchedulerX(AK, SK, STS, clock=self.clock, max_skew=None)
        self.dt = FakeDingTalk(clock=self.clock, max_skew_ms=None)
        self.oss: FakeOss | None = None
        self.fc = FakeFc(AK, SK, STS)
        self.links: LinkServer | None = None  # when the config's actions are enabled

    # -- standing up -----------------------------------------------------------------------

    def start(self) -> Sandbox:
        raw = read_config_data(self.source.read_bytes(), str(self.source))
        if not isinstance(raw, dict):
            raise SandboxError(f"{self.source}: not a config (a mapping at the top level)")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.sx.start()
        self.dt.start()
        self.fc.start()
        try:
            copy_ = self._rewrite(raw)
            self._seed(raw)
            self.config_path.write_text(
                "# Written by `python -m tests.sandbox` from "
                f"{self.source}: every endpoint on loopback.\n"
                + yaml.safe_dump(copy_, allow_unicode=True, sort_keys=False),
                encoding="utf-8",
            )
            self.config()  # refuses a config the function would refuse, before any tick
        except BaseException:
            self.close()
            raise
        self.fc.deploy(FUNCTION, self._invoked)
        # The last fires' runs, as a group that has been running a while shows them: a
        # fire with no run before the sandbox started is not a missed run.
        self._fired_until = self._next_fire(self.clock()) - HISTORY_FIRES * FIRE_EVERY
        self.fire()
        return self

    def _rewrite(self, raw: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(raw)
        out["allow_loopback_http"] = True
        region = str(out.get("region") or "cn-hangzhou")
        schedulerx = _section(out, "schedulerx")
        schedulerx["endpoint"] = self.sx.url
        state = _section(out, "state")
        url = state.get("url")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is not None and parts.scheme == "oss" and parts.netloc:
            # The same bucket and key, on the loopback OSS.
            self.oss = FakeOss(AK, SK, STS, buckets=(parts.netloc,), region=region).start()
            state["endpoint"] = self.oss.url
        else:
            state["url"] = f"file://{self.directory / 'state' / 'state.json'}"
            state.pop("endpoint", None)
        dingtalk = _section(out, "dingtalk")
        hosts = dingtalk.get("allowed_hosts")
        hosts = list(hosts) if isinstance(hosts, list) else []
        dingtalk["allowed_hosts"] = [*hosts, "127.0.0.1"]
        receivers = out.get("receivers")
        for receiver in receivers if isinstance(receivers, list) else []:
            if isinstance(receiver, dict):
                self._robot(receiver)
        actions = out.get("actions")
        if isinstance(actions, dict) and actions.get("enabled") is True:
            self._links(actions)
        templates = out.get("templates")
        if isinstance(templates, dict):
            # The copy lives elsewhere: template files stay where the config names them.
            for key in ("alert", "summary"):
                value = templates.get(key)
                if isinstance(value, str) and "${" not in value:
                    templates[key] = str(self.source.parent / value)
        for name in sorted(set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", json.dumps(out)))):
            # Whatever else the config reads from the environment: a placeholder, unless
            # the shell that started the sandbox has it.
            self.env.setdefault(name, os.environ.get(name, f"sandbox-{name.lower()}"))
        self.env.update(
            {
                "SCHEDULERX_ALERT_CONFIG": str(self.config_path),
                "ALIBABA_CLOUD_ACCESS_KEY_ID": AK,
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SK,
                "ALIBABA_CLOUD_SECURITY_TOKEN": STS,
                "ALIBABA_CLOUD_REGION_ID": region,
            }
        )
        return out

    def _robot(self, receiver: dict[str, Any]) -> None:
        """A robot for the receiver, signed if it is, with its keyword if it has one; the
        copy's webhook points at it, by the same `${VAR}` when the config used one."""
        name = str(receiver.get("name", f"receiver-{len(self.robots) + 1}"))
        webhook = str(receiver.get("webhook", ""))
        query = urlsplit(webhook).query
        token_expr = next(
            (v for k, _, v in (p.partition("=") for p in query.split("&")) if k == "access_token"),
            "",
        )
        token = f"sandbox-{_slug(name)}-{secrets.token_hex(8)}"
        if match := _VAR.match(token_expr):
            self.env[match[1]] = token
        else:
            token_expr = token
        receiver["webhook"] = f"{self.dt.url}/robot/send?access_token={token_expr}"
        secret: str | None = None
        if receiver.get("secret") is not None:
            secret = "SEC" + secrets.token_hex(32)
            match = _VAR.match(str(receiver["secret"]))
            if match:
                self.env[match[1]] = secret
            else:
                receiver["secret"] = secret
        keyword = receiver.get("keyword")
        keywords = (str(keyword),) if isinstance(keyword, str) and keyword else ()
        self.dt.add_robot(token, secret=secret, keywords=keywords)
        self.robots.append(Robot(name, token))

    def _links(self, actions: dict[str, Any]) -> None:
        """The buttons' links point at a loopback server that hands each request to the
        function's link handler as FC's HTTP trigger would; a signing key is made up."""
        self.links = LinkServer(self)
        base = actions.get("base_url")
        path = urlsplit(base).path if isinstance(base, str) and "${" not in base else ""
        actions["base_url"] = self.links.url + (path.lstrip("/") or "silence")
        key_env = actions.get("key_env", DEFAULT_KEY_ENV)
        if isinstance(key_env, str):
            self.env[key_env] = "sandbox-link-key-" + secrets.token_hex(24)

    def _seed(self, raw: Mapping[str, Any]) -> None:
        watch = raw.get("watch")
        entries = [e for e in watch if isinstance(e, dict)] if isinstance(watch, list) else []
        listed = {
            _job_id(item)
            for entry in entries
            if isinstance(entry.get("jobs"), list)
            for item in entry["jobs"]
        }
        ids = (i for i in range(FIRST_SAMPLE_ID, FIRST_SAMPLE_ID + 10**6) if i not in listed)
        for entry in entries:
            namespace, group = entry.get("namespace"), entry.get("group")
            if not isinstance(namespace, str) or not isinstance(group, str):
                continue
            jobs = entry.get("jobs")
            for item in jobs if isinstance(jobs, list) else []:
                job_id = _job_id(item)
                if job_id is not None:
                    name = item.get("name") if isinstance(item, dict) else None
                    self._add(namespace, group, job_id, str(name or f"job-{job_id}"), True)
            names: list[str] = []
            if jobs == "all":
                names = list(SAMPLE_NAMES)
            patterns = entry.get("job_names")
            for pattern in patterns if isinstance(patterns, list) else []:
                names += [n for n in _names_for(str(pattern)) if n not in names]
            for name in names:
                self._add(namespace, group, next(ids), name, False)
            if isinstance(patterns, list) and not any(
                fnmatchcase(UNMATCHED_NAME, str(p)) for p in patterns
            ):
                # A job of the group no pattern names, as groups hold: it is not watched.
                self._add(namespace, group, next(ids), UNMATCHED_NAME, False, watched=False)
        self._seed_workflows(raw, ids)

    def _seed_workflows(self, raw: Mapping[str, Any], ids: Iterator[int]) -> None:
        """A workflow per id of each `workflows:` entry (SAMPLE_WORKFLOW for `all`), of the
        group's seeded jobs: the first feeds the others, so when it fails they never run."""
        entries = raw.get("workflows")
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            namespace, group = entry.get("namespace"), entry.get("group")
            if not isinstance(namespace, str) or not isinstance(group, str):
                continue
            chosen = entry.get("workflows")
            wf_ids = [i for i in chosen if type(i) is int] if isinstance(chosen, list) else []
            nodes = [j.job_id for j in self.jobs if (j.namespace, j.group) == (namespace, group)]
            for name in ("wf-extract", "wf-load", "wf-report")[len(nodes[:3]) :]:
                job_id = next(ids)
                self._add(namespace, group, job_id, name, False, watched=False)
                nodes.append(job_id)
            first, *rest = nodes[:3]
            for wf_id in wf_ids or [SAMPLE_WORKFLOW]:
                self.sx.workflows.add(
                    namespace, group, wf_id, f"workflow-{wf_id}", (first, *rest),
                    tuple((first, other) for other in rest),
                )  # fmt: skip
                self.workflows[wf_id] = first

    def _add(
        self,
        namespace: str,
        group: str,
        job_id: int,
        name: str,
        listed: bool,
        *,
        watched: bool = True,
    ) -> None:
        # A timeout alarm of 10 minutes, as many teams set it: a `hang` is stuck after
        # that when the watch entry leaves stuck_after to the job.
        self.sx.add_job(
            namespace,
            group,
            job_id,
            name,
            time_expression=CRON,
            monitor={"TimeoutEnable": True, "Timeout": 600},
        )
        self.jobs = [j for j in self.jobs if j.job_id != job_id]
        self.jobs.append(SeededJob(namespace, group, job_id, name, listed, watched))

    # -- what the user sees ----------------------------------------------------------------

    def exports(self) -> list[str]:
        return [f"export {name}={shlex.quote(value)}" for name, value in self.env.items()]

    def banner(self) -> str:
        job = self.jobs[0].job_id if self.jobs else "JOB"
        where = "" if self.directory == DEFAULT_DIR.resolve() else f" --dir {self.directory}"
        lines = [
            f"schedulerx-alert sandbox for {self.source}",
            f"  SchedulerX {self.sx.url}, DingTalk {self.dt.url}, FC {self.fc.url}"
            + (f", OSS {self.oss.url}" if self.oss else "")
            + (f", silence links {self.links.url}" if self.links else ""),
            f"  config copy: {self.config_path}",
            "",
            "Jobs (each fires every minute and succeeds unless a control says otherwise):",
        ]
        for seeded in self.jobs:
            how = (
                "listed"
                if seeded.listed
                else "found in the group's job list"
                if seeded.watched
                else "in the group, matching no pattern: not watched"
            )
            where_ = f"{seeded.namespace} / {seeded.group}"
            lines.append(f"  {seeded.job_id:>8}  {seeded.name:<24} {where_} ({how})")
        lines += [
            "",
            "Paste into another shell (the secrets are made up, for these loopback servers):",
            *(f"  {line}" for line in self.exports()),
            "",
            "Then, for example:",
            "  schedulerx-alert check --dry-run",
            f"  schedulerx-alert routes -c $SCHEDULERX_ALERT_CONFIG --job {job}",
            f"  schedulerx-alert silence add -c $SCHEDULERX_ALERT_CONFIG --job {job} "
            "--for 1h --why test",
            "  schedulerx-alert state show -c $SCHEDULERX_ALERT_CONFIG",
            f"  schedulerx-alert invoke --dry-run --endpoint {self.fc.url}",
            "",
            "Make runs fail, hang or miss, and tick, from another shell:",
            f"  python -m tests.sandbox fail {job}{where}    (its next run; or reject, hang, "
            "succeed, skip)",
            f"  python -m tests.sandbox tick{where}",
            *(
                [
                    f"  python -m tests.sandbox fail-workflow {next(iter(self.workflows))}{where}"
                    "    (or succeed-workflow)"
                ]
                if self.workflows
                else []
            ),
            f"  python -m tests.sandbox advance 120{where}    (the sandbox's clock only)",
        ]
        return "\n".join(lines)

    def show_messages(self) -> int:
        """Print what each robot accepted since the last call; how many."""
        shown = 0
        with self._printing:
            for robot in self.robots:
                texts = self.dt.texts(robot.token)
                for text in texts[self._shown.get(robot.token, 0) :]:
                    show_message(text, f"{robot.receiver} (DingTalk)")
                    shown += 1
                self._shown[robot.token] = len(texts)
        return shown

    # -- running -----------------------------------------------------------------------------

    def config(self) -> Config:
        """The copy as the function reads it, `${VAR}`s from the sandbox's environment."""
        try:
            return load_config(self.config_path, {**os.environ, **self.env})
        except ConfigError as exc:
            raise SandboxError(str(exc)) from None

    def tick(self, *, dry_run: bool = False, owner: str = "sandbox") -> TickSummary:
        """One tick of the real function, on the sandbox's clock."""
        with self._lock:
            self.fire()
            config = self.config()
            sleep = self.clock.advance if isinstance(self.clock, ManualClock) else time.sleep
            edges = build_edges(
                config, self.credentials, 60.0, owner, self.clock, sleep, self.directory / "local"
            )
            return run_tick(config, edges, dry_run=dry_run)

    def fire(self) -> None:
        """The runs SchedulerX would have made since the last call: one per job per fire,
        a success unless a control said otherwise for that job's next fire."""
        with self._lock:
            now = self.clock()
            at = self._fired_until
            while at <= now:
                for job in self.jobs:
                    self._run(job.job_id, self._next.pop(job.job_id, "succeed"), at, now)
                at += FIRE_EVERY
            self._fired_until = at

    def _run(self, job_id: int, outcome: str, at: float, now: float) -> None:
        ended = min(at + 2, now)
        if outcome == "fail":
            self.sx.add_instance(
                job_id, status=InstanceStatus.FAILED, result=TRACE, schedule_time=at, end_time=ended
            )
        elif outcome == "reject":
            self.sx.add_instance(
                job_id,
                status=InstanceStatus.REJECTED,
                result="no available worker in group",
                schedule_time=at,
                end_time=at,
                started=False,
            )
        elif outcome == "hang":
            self.sx.add_instance(job_id, status=InstanceStatus.RUNNING, schedule_time=at)
        elif outcome == "succeed":
            self.sx.add_instance(
                job_id, status=InstanceStatus.SUCCESS, schedule_time=at, end_time=ended
            )
        # "skip": the fire makes no run at all.

    def control(self, command: str, argument: str = "", dry_run: bool = False) -> dict[str, Any]:
        """Carry out one control; what happened, as JSON for the client to print.

        A job's control acts on its next fire, not at once: a run is dated at a fire, as
        SchedulerX dates it, so each query mode (per-job polls after the fire times, group
        queries) finds it where it would find a real one."""
        with self._lock:
            if command == "tick":
                summary = self.tick(dry_run=dry_run)
                return {"summary": json.loads(self.redact(json.dumps(summary.as_dict())))}
            if command == "advance":
                try:
                    seconds = float(argument)
                except ValueError:
                    raise SandboxError(f"advance SECONDS, not {argument!r}") from None
                if not 0 < seconds <= 7 * 86400:
                    raise SandboxError("advance: between 0 and 7 days of seconds")
                self.clock.advance(seconds)
                self.fire()
                return {"now": _local(self.clock())}
            if command in WORKFLOW_CONTROLS:
                return self._workflow(command, argument)
            if command not in JOB_CONTROLS:
                raise SandboxError(f"unknown control {command!r}: one of {', '.join(CONTROLS)}")
            job = self._job(argument)
            self.fire()
            self._next[job.job_id] = command
            return {"job": job.job_id, "next_fire": _local(self._fired_until), "will": command}

    def _workflow(self, command: str, argument: str) -> dict[str, Any]:
        try:
            wf_id = int(argument)
            first = self.workflows[wf_id]
        except (ValueError, KeyError):
            known = ", ".join(map(str, self.workflows)) or "none: the config has no workflows:"
            raise SandboxError(f"no workflow {argument!r} in the sandbox ({known})") from None
        if command == "fail-workflow":
            run = self.sx.workflows.run(wf_id, status=5, nodes={first: (5, TRACE)})
        else:
            run = self.sx.workflows.run(wf_id, status=4)
        return {"workflow": wf_id, "instance": run, "status": command.split("-")[0] + "ed"}

    def _job(self, argument: str) -> SeededJob:
        for job in self.jobs:
            if argument in (str(job.job_id), job.name):
                return job
        known = ", ".join(str(j.job_id) for j in self.jobs)
        raise SandboxError(f"no job {argument!r} in the sandbox (jobs: {known})")

    def _invoked(self, payload: bytes) -> bytes:
        """The function deployed on the loopback FC: a tick, as the handler runs one."""
        options = parse_event(payload)
        summary = self.tick(dry_run=bool(options.get("dry_run")), owner="fc")
        return self.redact(json.dumps(summary.as_dict(), ensure_ascii=False)).encode()

    def redact(self, text: str) -> str:
        """Text without the robots' tokens and secrets or the credentials, as the function
        writes its summaries: made up as they are, the habit is kept."""
        config = self.config()
        return Redactor(secrets_of(config, self.credentials))(text)

    def link(self, method: str, target: str, headers: Mapping[str, str], body: str) -> str:
        """A silence link opened in a browser, through the function's link handler."""
        from schedulerx_alert.links.serve import serve

        parts = urlsplit(target)
        query = {k: ",".join(v) for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        now = self.clock()
        request_id = f"sandbox-{secrets.token_hex(4)}"
        event = {
            "version": "v1",
            "rawPath": parts.path or "/",
            "body": body,
            "isBase64Encoded": False,
            "headers": dict(headers),
            "queryParameters": query,
            "requestContext": {
                "accountId": "1234567890123456",
                "domainName": headers.get("Host", "127.0.0.1"),
                "domainPrefix": "sandbox",
                "http": {
                    "method": method,
                    "path": unquote(parts.path) or "/",
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": headers.get("User-Agent", ""),
                },
                "requestId": request_id,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
                "timeEpoch": str(int(now * 1000)),
            },
        }
        context = SimpleNamespace(
            request_id=request_id,
            function=SimpleNamespace(name=FUNCTION, timeout=60, memory=128),
            credentials=SimpleNamespace(access_key_id=AK, access_key_secret=SK, security_token=STS),
        )
        return serve(event, context, self.directory, self.clock, {**os.environ, **self.env})

    @staticmethod
    def _next_fire(now: float) -> float:
        return math.floor(now / FIRE_EVERY) * FIRE_EVERY + FIRE_EVERY

    def close(self) -> None:
        for fake in (self.sx, self.dt, self.oss, self.fc):
            if fake is not None:
                fake.stop()
        if self.links is not None:
            self.links.stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the silence links -------------------------------------------------------------------------


class LinkServer:
    """The function's HTTP trigger on 127.0.0.1: each request becomes the event FC 3.0 hands
    the handler (actions/http.py reads it), answered with the handler's response."""

    def __init__(self, sandbox: Sandbox) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._pass()

            def do_HEAD(self) -> None:
                self._pass()

            def do_POST(self) -> None:
                self._pass()

            def _pass(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), 65536)
                body = self.rfile.read(length).decode("utf-8", "replace")
                response = json.loads(
                    sandbox.link(self.command, self.path, dict(self.headers), body)
                )
                data = str(response.get("body", "")).encode()
                self.send_response(int(response.get("statusCode", 500)))
                for name, value in (response.get("headers") or {}).items():
                    self.send_header(name, str(value))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the control channel ---------------------------------------------------------------------


class ControlServer:
    """POST / {"token", "command", "argument", "dry_run"} on 127.0.0.1, answered in JSON.
    The token (in the control file, readable by its owner only) keeps other local users'
    processes from driving your sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.token = secrets.token_hex(16)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    request = json.loads(self.rfile.read(min(length, 65536)) or b"{}")
                    if not isinstance(request, dict) or not hmac.compare_digest(
                        str(request.get("token", "")), outer.token
                    ):
                        self._answer(403, {"error": "wrong control token"})
                        return
                    result = sandbox.control(
                        str(request.get("command", "")),
                        str(request.get("argument", "")),
                        bool(request.get("dry_run", False)),
                    )
                except (SandboxError, ValueError) as exc:
                    self._answer(400, {"error": str(exc)})
                    return
                sandbox.show_messages()
                self._answer(200, result)

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self, directory: Path) -> ControlServer:
        self._thread.start()
        path = directory / CONTROL_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump({"url": self.url, "token": self.token}, file)
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def send_control(
    directory: Path, command: str, argument: str = "", dry_run: bool = False
) -> tuple[int, dict[str, Any]]:
    """Drive a running sandbox; (HTTP status, answer)."""
    try:
        control = json.loads((directory / CONTROL_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise SandboxError(f"no sandbox running with --dir {directory}") from None
    body = json.dumps(
        {"token": control["token"], "command": command, "argument": argument, "dry_run": dry_run}
    ).encode()
    request = urllib.request.Request(
        control["url"], data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except OSError as exc:
        raise SandboxError(f"the sandbox at {control['url']} does not answer: {exc}") from None


# -- the command -------------------------------------------------------------------------------


def serve(args: argparse.Namespace) -> int:
    try:
        sandbox = Sandbox(Path(args.config), Path(args.dir)).start()
    except (SandboxError, OSError) as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
    control = ControlServer(sandbox).start(sandbox.directory)
    print(sandbox.banner(), flush=True)
    ends = time.monotonic() + args.seconds if args.seconds is not None else math.inf
    next_tick = time.monotonic() + args.tick_every if args.tick_every else math.inf
    try:
        while time.monotonic() < ends:
            time.sleep(min(0.5, max(0.0, ends - time.monotonic())))
            sandbox.fire()
            if time.monotonic() >= next_tick:
                next_tick += args.tick_every
                summary = sandbox.tick()
                print(f"\n=== tick: {summary.status}, {summary.alerts_new} new alert(s)")
            # Messages sent by your shell's `check` and `invoke` too.
            sandbox.show_messages()
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    finally:
        control.stop()
        (sandbox.directory / CONTROL_FILE).unlink(missing_ok=True)
        sandbox.close()
    return 0


def drive(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sandbox")
    parser.add_argument("command", choices=CONTROLS)
    parser.add_argument("argument", nargs="?", default="", help="JOB (id or name), or SECONDS")
    parser.add_argument("--dir", default=str(DEFAULT_DIR))
    parser.add_argument("--dry-run", action="store_true", help="tick: send and save nothing")
    args = parser.parse_args(argv)
    if args.command in (*JOB_CONTROLS, *WORKFLOW_CONTROLS, "advance") and not args.argument:
        needs = {"advance": "SECONDS", **dict.fromkeys(WORKFLOW_CONTROLS, "WF")}
        parser.error(f"{args.command} needs {needs.get(args.command, 'JOB')}")
    try:
        status, answer = send_control(Path(args.dir), args.command, args.argument, args.dry_run)
    except SandboxError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(answer, ensure_ascii=False, indent=2))
    return 0 if status == 200 else 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in CONTROLS:
        return drive(argv)
    parser = argparse.ArgumentParser(
        prog="python -m tests.sandbox",
        description="Your config against loopback SchedulerX, OSS, DingTalk and FC.",
        epilog=f"Controls, from another shell: python -m tests.sandbox {{{','.join(CONTROLS)}}}",
    )
    parser.add_argument("--config", "-c", required=True)
    parser.add_argument(
        "--dir", default=str(DEFAULT_DIR), help=f"config copy, state, control file ({DEFAULT_DIR})"
    )
    parser.add_argument(
        "--for", dest="seconds", type=float, help="stop after this many seconds (default: Ctrl-C)"
    )
    parser.add_argument(
        "--tick-every",
        type=float,
        default=0.0,
        help="run a tick every this many seconds, as FC's timer does (60); default: only on "
        "`python -m tests.sandbox tick`",
    )
    return serve(parser.parse_args(argv))


def _section(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    if not isinstance(value, dict):
        value = raw[key] = {}
    return value


def _job_id(item: object) -> int | None:
    value = item.get("id") if isinstance(item, dict) else item
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _names_for(pattern: str) -> list[str]:
    """Job names a shell-style pattern matches: `etl-*` gives etl-orders and etl-users."""
    names = []
    for word in SAMPLE_WORDS:
        name = re.sub(r"\[!?([^]]*)\]", lambda m: m[1][:1] or "x", pattern)
        name = name.replace("*", word).replace("?", "1")
        if fnmatchcase(name, pattern) and name not in names:
            names.append(name)
    return names


def _local(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(epoch))


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "robot"


if __name__ == "__main__":
    sys.exit(main())
