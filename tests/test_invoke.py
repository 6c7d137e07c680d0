"""`schedulerx-alert invoke`: one synchronous call of the deployed function through the FC API.

The loopback FC server checks both signatures the real API accepts: FC 3.0's V3
(ACS3-HMAC-SHA256, proven here with the official alibabacloud-fc20230330 SDK) and
FC 2.0's own `FC AK:signature` scheme (proven with aliyun-fc2's real client). The
function it runs is the real `index.handler`, wired to loopback SchedulerX, DingTalk
and state, so the summary the command prints is the one FC would return.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import fc2
import pytest
import yaml
from alibabacloud_fc20230330 import models as fc3_models
from alibabacloud_fc20230330.client import Client as Fc3Client
from alibabacloud_tea_openapi import models as openapi_models
from alibabacloud_tea_openapi.exceptions import ClientException

import index
from schedulerx_alert.cli.invoke import (
    InvokeError,
    default_endpoint,
    invoke,
    invoke_fc3,
    sign_fc3,
)
from schedulerx_alert.cli.main import main
from schedulerx_alert.support.credentials import Credentials
from tests.fakes.fc import FakeFc, FunctionError
from tests.world import AK, ROBOT, SECRETS, SK, STS, World

FUNCTION = "schedulerx-alert"


def echo(payload: bytes) -> bytes:
    return b"echo:" + payload


@pytest.fixture
def fc() -> Iterator[FakeFc]:
    with FakeFc(AK, SK, STS) as fake:
        fake.deploy("echo", echo)
        fake.deploy("echo", echo, service="legacy")
        yield fake


# -- the fake speaks the real protocols ------------------------------------------------------


def test_fake_accepts_the_official_fc3_sdk_and_rejects_a_wrong_secret(fc: FakeFc) -> None:
    def sdk(secret: str) -> Fc3Client:
        config = openapi_models.Config(
            access_key_id=AK,
            access_key_secret=secret,
            security_token=STS,
            endpoint=fc.endpoint,
            protocol="http",
            region_id="cn-hangzhou",
        )
        return Fc3Client(config)

    request = fc3_models.InvokeFunctionRequest(body=io.BytesIO(b'{"x": 1}'))
    answer = sdk(SK).invoke_function("echo", request)
    assert (answer.status_code, answer.body.read()) == (200, b'echo:{"x": 1}')
    with pytest.raises(ClientException) as caught:
        sdk("not-the-secret").invoke_function(
            "echo", fc3_models.InvokeFunctionRequest(body=io.BytesIO(b"{}"))
        )
    assert caught.value.code == "SignatureDoesNotMatch"
    assert [i.signature for i in fc.invocations] == ["ACS3"]


def test_fake_accepts_aliyun_fc2_and_rejects_a_wrong_secret_or_token(fc: FakeFc) -> None:
    def client(secret: str = SK, token: str = STS) -> fc2.Client:
        return fc2.Client(
            endpoint=fc.url, accessKeyID=AK, accessKeySecret=secret, securityToken=token
        )

    assert client().invoke_function("legacy", "echo", payload=b"hi").data == b"echo:hi"
    for bad, code in ((client(secret="wrong"), "SignatureNotMatch"), (client(token="x"), None)):
        with pytest.raises(fc2.fc_exceptions.FcError) as caught:
            bad.invoke_function("legacy", "echo", payload=b"hi")
        assert caught.value.status_code == 403
        if code:
            assert code in caught.value.message
    assert [(i.api, i.function, i.signature) for i in fc.invocations] == [
        ("2016-08-15", "legacy/echo", "FC")
    ]


def test_our_v3_signer_covers_path_query_body_and_every_fc_header(fc: FakeFc) -> None:
    creds = Credentials(AK, SK, STS)
    assert invoke_fc3(fc.url, "echo", b"{}", creds, qualifier="LATEST").body == b"echo:{}"
    headers = sign_fc3(
        method="POST",
        host="h",
        path="/p",
        query={},
        headers={"x-fc-invocation-type": "Sync"},
        body=b"",
        credentials=creds,
        action="InvokeFunction",
    )
    signed = headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "x-fc-invocation-type", "x-acs-security-token"} <= set(signed)
    # A token for another key fails: the server checks token and key together.
    with pytest.raises(InvokeError) as caught:
        invoke_fc3(fc.url, "echo", b"{}", Credentials(AK, SK, "other-token"))
    assert caught.value.status == 403


# -- the command against a deployed handler ------------------------------------------------


@pytest.fixture
def deployed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeFc, World]]:
    """FC runs the real index.handler, configured like a deployment (secrets from env)."""
    with World(tmp_path, real_time=True) as world, FakeFc(AK, SK, STS) as fake:
        raw = dict(world.raw)
        webhook = world.dt.webhook("TOKEN").replace("TOKEN", "${DT_TOKEN}")
        raw["receivers"] = [{"name": "ops", "webhook": webhook, "secret": "${DT_SECRET}"}]
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(raw), encoding="utf-8")
        monkeypatch.setenv("SCHEDULERX_ALERT_CONFIG", str(config))
        monkeypatch.setenv("DT_TOKEN", ROBOT)
        monkeypatch.setenv("DT_SECRET", world.raw["receivers"][0]["secret"])
        # The caller's own credentials, as a user's shell would have them.
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", AK)
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SK)
        monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", STS)
        context = SimpleNamespace(
            request_id="1-fc-request",
            function=SimpleNamespace(name=FUNCTION, timeout=60, memory=128),
            credentials=SimpleNamespace(access_key_id=AK, access_key_secret=SK, security_token=STS),
        )

        def handler(payload: bytes) -> bytes:
            return index.handler(payload, context).encode()

        fake.deploy(FUNCTION, handler)
        fake.deploy(FUNCTION, handler, service="schedulerx")
        world.sx.add_instance(92583, status=5, result="NullPointerException")
        yield fake, world


def test_invoke_dry_run_prints_the_summary_and_nothing_is_sent_or_saved(
    deployed: tuple[FakeFc, World], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, world = deployed
    code = main(["invoke", "--dry-run", "--region", "cn-hangzhou", "--endpoint", fake.url])
    out = capsys.readouterr().out
    summary = json.loads(out)
    assert code == 0
    assert summary["dry_run"] is True and summary["status"] == "ok"
    assert len(summary["preview"]) == 1 and "92583" in json.dumps(summary["preview"])
    assert world.texts() == [] and not world.state_path.exists()
    (call,) = fake.invocations
    assert (call.api, call.function, call.signature) == ("2023-03-30", FUNCTION, "ACS3")
    assert json.loads(call.payload) == {"dry_run": True} and call.invocation_type == "Sync"


def test_invoke_for_real_sends_the_alert_once(
    deployed: tuple[FakeFc, World], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, world = deployed
    args = ["invoke", "--region", "cn-hangzhou", "--endpoint", fake.url]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["alerts_sent"] == 1
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["alerts_sent"] == 0
    assert len(world.texts()) == 1


def test_invoke_a_function_in_an_fc2_service_goes_through_aliyun_fc2(
    deployed: tuple[FakeFc, World], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, _ = deployed
    args = ["invoke", "--dry-run", "--endpoint", fake.url, "--service", "schedulerx"]
    assert main([*args, "--region", "cn-hangzhou"]) == 0
    assert json.loads(capsys.readouterr().out)["dry_run"] is True
    (call,) = fake.invocations
    assert (call.api, call.function, call.signature) == (
        "2016-08-15",
        f"schedulerx/{FUNCTION}",
        "FC",
    )


def test_a_function_that_raises_exits_1_with_its_error(
    fc: FakeFc, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(payload: bytes) -> bytes:
        raise FunctionError("config.yaml: 1 problem(s)", "ConfigError")

    fc.deploy(FUNCTION, broken)
    fc.deploy(FUNCTION, broken, service="legacy")
    _caller_env(monkeypatch)
    for extra in ([], ["--service", "legacy"]):
        assert main(["invoke", "--endpoint", fc.url, "--region", "cn-hangzhou", *extra]) == 1
        err = capsys.readouterr().err
        assert "the function raised" in err and "config.yaml: 1 problem(s)" in err


def test_api_errors_exit_2_with_fc_error_code_and_no_secret_anywhere(
    fc: FakeFc,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    _caller_env(monkeypatch)
    base = ["invoke", "--endpoint", fc.url, "--region", "cn-hangzhou"]
    assert main([*base, "--function-name", "nope"]) == 2
    assert "FunctionNotFound" in capsys.readouterr().err
    # A wrong secret, through both APIs; aliyun-fc2 would log the request headers.
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "wrong-secret-0123456789")
    assert main([*base, "--function-name", "echo"]) == 2
    assert "SignatureDoesNotMatch" in capsys.readouterr().err
    assert main([*base, "--function-name", "echo", "--service", "legacy"]) == 2
    captured = capsys.readouterr()
    assert "SignatureNotMatch" in captured.err
    everything = captured.out + captured.err + "\n".join(r.getMessage() for r in caplog.records)
    for secret in (*SECRETS, "wrong-secret-0123456789"):
        assert secret not in everything


def test_missing_credentials_or_region_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"):
        monkeypatch.delenv(name, raising=False)
    assert main(["invoke", "--region", "cn-hangzhou"]) == 2
    assert "no credentials" in capsys.readouterr().err
    _caller_env(monkeypatch)
    for name in ("ALIBABA_CLOUD_REGION_ID", "FC_REGION"):
        monkeypatch.delenv(name, raising=False)
    assert main(["invoke"]) == 2
    assert "no region" in capsys.readouterr().err


def test_endpoints() -> None:
    assert default_endpoint("cn-hangzhou", "1234") == "https://1234.cn-hangzhou.fc.aliyuncs.com"
    assert default_endpoint("cn-shanghai", None) == "https://fcv3.cn-shanghai.aliyuncs.com"
    with pytest.raises(InvokeError, match="account"):
        invoke(
            function_name=FUNCTION,
            region="cn-hangzhou",
            credentials=Credentials(AK, SK),
            service="legacy",
        )


def _caller_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", AK)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SK)
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", STS)
