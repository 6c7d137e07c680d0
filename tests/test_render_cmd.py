"""`schedulerx-alert render`: what the group would receive, offline, and a picture of it.

The sample is the example instance of SchedulerX's GetJobInstanceList page, failed or
rejected. The strongest claim is checked as a story: when SchedulerX really lists that
run failing, the message a tick posts to the robot is the body `render` printed.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from schedulerx_alert.cli import preview, samples
from schedulerx_alert.cli.main import main
from schedulerx_alert.cli.samples import KINDS
from schedulerx_alert.config import LANGUAGES
from tests.fakes.base import ManualClock
from tests.world import ROBOT, ROBOT_SECRET, World

ROOT = Path(__file__).resolve().parents[1]
KEYWORD = "SchedulerX-oncall"
USER_ID = "manager01"
MOBILE = "13800000000"

# What each kind must show a reader, per language. A new kind gets its line here.
MUST_SHOW: dict[str, dict[str, tuple[str, ...]]] = {
    "failed": {
        "zh-CN": ("任务失败", "92583", "11111111", "2020-07-27 11:52:13", "IllegalStateException"),
        "en": ("job failed", "92583", "11111111", "2020-07-27 11:52:13", "IllegalStateException"),
    },
    "rejected": {
        "zh-CN": ("任务被拒绝", "92583", "11111111", "max concurrency 1"),
        "en": ("job rejected", "92583", "11111111", "max concurrency 1"),
    },
    "summary": {
        "zh-CN": (
            "4 个任务实例异常",
            "11111111",
            "11111150",
            "nightly-etl",
            "11111162",
            "11111170",
        ),
        "en": ("4 job runs need attention", "11111111", "11111150", "nightly-etl", "11111170"),
    },
    "heartbeat": {
        "zh-CN": (
            "每日心跳 2020-07-28：监控运行正常",
            "nightly-etl (92584)**：失败 3 次",
            "哪天没有收到",
        ),
        "en": ("heartbeat 2020-07-28: the monitor is working", "1873 (6 failed, 1 recovered)"),
    },
    "heartbeat-impaired": {
        "zh-CN": ("监控本身有异常", "安静不代表任务正常", "**2 次检查失败**", "HTTP 503"),
        "en": ("the monitor itself had problems", "**1 hour(s)** without", "7 check(s) degraded"),
    },
    "health": {
        "zh-CN": ("告警功能异常", "连续 3 次", "InvalidAccessKeyId.NotFound"),
        "en": ("alerting is impaired", "3 ticks", "InvalidAccessKeyId.NotFound"),
    },
    "health-recovered": {
        "zh-CN": ("告警功能已恢复",),
        "en": ("alerting works again",),
    },
    "operation": {
        "zh-CN": ("已重跑（12:04）", "运行 11111111 正在重新运行", "orders-sync (92583)"),
        "en": ("Retried at 12:04, run 11111111 is running again", "orders-sync (92583)"),
    },
    "operation-refused": {
        "zh-CN": ("没有重跑（12:04）", "SchedulerX 拒绝重跑", "professional edition"),
        "en": ("Not retried at 12:04", "SchedulerX refused to retry run 11111111", "unchanged"),
    },
    "workflow_failed": {
        "zh-CN": (
            "工作流失败：nightly-etl（301）",
            "工作流实例**：18000001",
            "失败节点**：extract-orders (92583)，实例 11111301",
            "因此未运行**（2 个）：load-warehouse (92584)，daily-report (92585)",
            "IllegalStateException",
        ),
        "en": (
            "workflow failed: nightly-etl (301)",
            "Workflow instance**: 18000001",
            "Failed node**: extract-orders (92583), instance 11111301",
            "Did not run because of it** (2): load-warehouse (92584), daily-report (92585)",
            "IllegalStateException",
        ),
    },
    "workflow_recovered": {
        "zh-CN": ("工作流已恢复：nightly-etl（301）", "18000002（成功）", "失败实例数**：1"),
        "en": (
            "workflow recovered: nightly-etl (301)",
            "18000002 (success)",
            "Failed instances**: 1",
        ),
    },
    "summary-kinds": {
        "zh-CN": (
            "11 条告警",
            "实例 11111111 失败",
            "（连续 3 次）",
            "被拒绝",
            "已恢复：实例 11111180 成功",
            "故障持续 18 分钟，失败 2 次",
            "卡住：运行中已 47 分钟",
            "nightly-etl (92584)** 未按时运行：应运行于 2020-07-27 02:00",
            "状态反复：1 小时内切换 4 次",
            "已稳定：恢复正常",
            "12 个任务**因同一错误失败",
            "工作流 nightly-etl** 实例 18000001 失败，失败节点 extract-orders (92583)",
            "工作流 nightly-etl** 已恢复：实例 18000002 成功",
        ),
        "en": (
            "11 alerts",
            "instance 11111111 failed",
            "(3 in a row)",
            "rejected",
            "recovered: instance 11111180 success",
            "broken for 18 min, 2 failed runs",
            "stuck: running for 47 min",
            "nightly-etl (92584)** missed its run at 2020-07-27 02:00",
            "flapping: 4 changes within 1 h",
            "settled: works again",
            "12 jobs** failed with the same error",
            "workflow nightly-etl** instance 18000001 failed at extract-orders (92583), 2 nodes",
            "workflow nightly-etl** recovered: instance 18000002 success",
        ),
    },
    "failed-in-a-row": {
        "zh-CN": ("任务失败", "11111190", "连续失败**：3 次（自 2020-07-27 11:52:13 起）"),
        "en": ("job failed", "11111190", "In a row**: 3 runs failed since 2020-07-27 11:52:13"),
    },
    "recovered": {
        "zh-CN": (
            "任务已恢复：92583",
            "11111180（成功，定时调度），2020-07-27 12:10:13",
            "故障持续**：18 分钟（自 2020-07-27 11:52:13 起）",
            "失败次数**：2",
        ),
        "en": (
            "job recovered: 92583",
            "11111180 (success, scheduled) at 2020-07-27 12:10:13",
            "Broken for**: 18 min, since 2020-07-27 11:52:13",
            "Failed runs**: 2",
        ),
    },
    "stuck": {
        "zh-CN": ("任务卡住：92583", "11111111（运行中", "已运行**：47 分钟，超过 30 分钟"),
        "en": (
            "job stuck: 92583",
            "11111111 (running",
            "Running for**: 47 min, longer than 30 min",
        ),
    },
    "missed": {
        "zh-CN": (
            "任务未按时运行：nightly-etl (92584)",
            "应运行于**：2020-07-27 02:00（Asia/Shanghai），10 分钟内没有运行",
        ),
        "en": (
            "job missed its run: nightly-etl (92584)",
            "Expected at**: 2020-07-27 02:00 (Asia/Shanghai), nothing ran within 10 min",
        ),
    },
    "flapping": {
        "zh-CN": ("任务状态反复：92583", "1 小时内在失败与成功之间切换 4 次"),
        "en": ("job flapping: 92583", "4 between failure and success within 1 h"),
    },
    "settled": {
        "zh-CN": ("任务已稳定：92583，恢复正常", "自 2020-07-27 11:52:13 起"),
        "en": ("job settled: 92583 works again", "from 2020-07-27 11:52:13"),
    },
    "shared_cause": {
        "zh-CN": (
            "12 个任务因同一错误失败",
            "nightly-etl (92584)",
            "92594",
            "Connection refused 10.0.0.5:3306",
        ),
        "en": (
            "12 jobs failed with the same error",
            "nightly-etl (92584)",
            "92594",
            "Connection refused 10.0.0.5:3306",
        ),
    },
}


def render(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["render", *args])
    out, err = capsys.readouterr()
    return code, out, err


def body_of(out: str) -> dict[str, Any]:
    assert out.endswith("\n") and out.count("\n") == 1, "one JSON body, one line"
    parsed: dict[str, Any] = json.loads(out)
    return parsed


def write_config(path: Path, raw: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


# -- every kind, both languages ------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_prints_one_dingtalk_markdown_body(
    capsys: pytest.CaptureFixture[str], kind: str, language: str
) -> None:
    code, out, err = render(capsys, "--kind", kind, "--lang", language)
    assert (code, err) == (0, "")
    body = body_of(out)
    assert set(body) == {"msgtype", "markdown", "at"}
    assert body["msgtype"] == "markdown"
    title, text = body["markdown"]["title"], body["markdown"]["text"]
    # The title is what the notification shows: the message's heading.
    assert text.startswith(f"### {title}\n")
    assert body["at"] == {"atMobiles": [], "isAtAll": False}
    for phrase in MUST_SHOW[kind][language]:
        assert phrase in text, phrase
    if kind != "health-recovered":
        assert (language == "zh-CN") == any("\u4e00" <= c <= "\u9fff" for c in text)


def test_every_kind_has_what_it_must_show() -> None:
    assert set(MUST_SHOW) == set(KINDS)


# -- what render prints is what the group receives ---------------------------------------


def sample_world(tmp_path: Path) -> World:
    """SchedulerX lists the sample runs at 11:56:30 on the day of the API page's example."""
    world = World(
        tmp_path,
        jobs=(),
        clock=ManualClock(datetime(2020, 7, 27, 11, 56, 30, tzinfo=samples.ZONE).timestamp()),
    )
    world.dt.add_robot(ROBOT, secret=ROBOT_SECRET, keywords=(KEYWORD,))
    world.raw["receivers"][0].update(keyword=KEYWORD, at_mobiles=[MOBILE], at_user_ids=[USER_ID])
    world.raw["watch"] = [
        {
            "namespace": samples.NAMESPACE,
            "group": samples.GROUP,
            "jobs": [92583, {"id": 92584, "name": "nightly-etl"}, 92585],
            "receivers": ["ops"],
        }
    ]
    for job_id in (92583, 92584, 92585):
        world.sx.add_job(samples.NAMESPACE, samples.GROUP, job_id)
    return world


def list_in_schedulerx(world: World, alert: Any) -> None:
    inst = alert.instance
    world.sx.add_instance(
        inst.job.job_id,
        inst.instance_id,
        status=inst.status_code,
        result=inst.result,
        schedule_time=inst.schedule_time,
        start_time=inst.start_time,
        end_time=inst.end_time,
        trigger_type=inst.trigger_type,
        time_type=inst.time_type,
        work_addr=inst.work_addr,
        executor=inst.executor,
        data_time=inst.data_time,
        progress=inst.progress,
    )


@pytest.mark.parametrize(
    ("kind", "alerts"),
    [
        ("failed", lambda: [samples.alert(samples.FAILED)]),
        ("rejected", lambda: [samples.alert(samples.REJECTED)]),
        ("summary", samples.summary_alerts),
    ],
)
def test_render_prints_the_body_a_tick_posts_when_schedulerx_lists_the_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, alerts: Any
) -> None:
    with sample_world(tmp_path) as world:
        config = write_config(tmp_path / "config.yaml", world.raw)
        code, out, err = render(capsys, "--kind", kind, "--config", str(config))
        assert (code, err) == (0, "")

        for alert in alerts():
            list_in_schedulerx(world, alert)
        summary = world.tick()
        assert summary.status == "ok", summary.as_dict()

        assert world.dt.messages(ROBOT) == [body_of(out)]
    # The receiver's options shaped it: its keyword and its @-mention.
    text = body_of(out)["markdown"]["text"]
    assert KEYWORD in text and f"@{MOBILE}" in text and f"@{USER_ID}" in text
    assert body_of(out)["at"] == {"atMobiles": [MOBILE], "isAtAll": False, "atUserIds": [USER_ID]}
    # And none of its secrets: not the webhook's token, not the signing secret.
    assert ROBOT not in out + err and ROBOT_SECRET not in out + err


# -- options -------------------------------------------------------------------------------


def test_a_template_replaces_the_default_for_its_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = tmp_path / "mine.md.j2"
    template.write_text("#### {{ job_label }} 挂了：{{ status }}\n{{ result }}\n", encoding="utf-8")
    code, out, _ = render(capsys, "--kind", "failed", "--template", str(template))
    assert code == 0
    body = body_of(out)
    assert body["markdown"]["title"] == "92583 挂了：失败"
    assert "> java.lang.IllegalStateException" in body["markdown"]["text"]

    summary = tmp_path / "summary.md.j2"
    summary.write_text("{{ count }} runs: {% for a in items %}{{ a.instance_id }} {% endfor %}")
    code, out, _ = render(capsys, "--kind", "summary", "--template", str(summary))
    assert code == 0
    assert body_of(out)["markdown"]["text"] == "4 runs: 11111111 11111170 11111150 11111162"


def test_the_configs_language_and_templates_apply_and_lang_overrides_the_language(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DT_TOKEN", "tok-render-0123456789")
    monkeypatch.setenv("DT_SECRET", "SEC-render-0123456789")
    (tmp_path / "alert.md.j2").write_text("### Ours: {{ instance_id }} {{ status }}\n")
    raw = yaml.safe_load((ROOT / "config.example.yaml").read_text(encoding="utf-8"))
    raw["templates"] = {"language": "en", "alert": "alert.md.j2"}
    config = str(write_config(tmp_path / "config.yaml", raw))

    code, out, _ = render(capsys, "--kind", "failed", "--config", config)
    assert code == 0 and body_of(out)["markdown"]["text"] == "### Ours: 11111111 failed"
    code, out, _ = render(capsys, "--kind", "summary", "--config", config)
    assert code == 0 and "4 job runs need attention" in body_of(out)["markdown"]["text"]
    code, out, _ = render(capsys, "--kind", "failed", "--config", config, "--lang", "zh-CN")
    assert code == 0 and body_of(out)["markdown"]["text"] == "### Ours: 11111111 失败"
    code, out, _ = render(capsys, "--kind", "health", "--config", config, "--lang", "zh-CN")
    assert code == 0 and "告警功能异常" in body_of(out)["markdown"]["title"]
    # --template beats the config's template.
    (tmp_path / "other.md.j2").write_text("### Other {{ instance_id }}")
    code, out, _ = render(
        capsys, "--kind", "failed", "--config", config, "--template", str(tmp_path / "other.md.j2")
    )
    assert code == 0 and body_of(out)["markdown"]["text"] == "### Other 11111111"


def test_a_named_receivers_options_shape_the_body(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with World(tmp_path) as world:
        world.raw["receivers"].append(
            {"name": "dba", "webhook": world.dt.webhook("dba-token"), "at_mobiles": [MOBILE]}
        )
        config = str(write_config(tmp_path / "config.yaml", world.raw))
    code, out, _ = render(capsys, "--kind", "failed", "--config", config)
    assert code == 0 and body_of(out)["at"]["atMobiles"] == []
    code, out, _ = render(capsys, "--kind", "failed", "--config", config, "--receiver", "dba")
    assert code == 0 and body_of(out)["at"]["atMobiles"] == [MOBILE]
    code, out, err = render(capsys, "--kind", "failed", "--config", config, "--receiver", "x")
    assert (code, out) == (2, "")
    assert "no receiver 'x'" in err and "(ops, dba)" in err


# -- clear errors, exit code 2 -------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "complaint"),
    [
        ("{% if %}oops", "Expected an expression"),
        ("### {{ no_such_field }}", "'no_such_field' is undefined"),
        ("{{ ''.__class__.__mro__ }}", "unsafe"),
    ],
)
def test_a_bad_template_is_named_with_its_problem_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], template: str, complaint: str
) -> None:
    path = tmp_path / "bad.md.j2"
    path.write_text(template)
    code, out, err = render(capsys, "--kind", "failed", "--template", str(path))
    assert (code, out) == (2, "")
    assert err.startswith("render: template ") and complaint in err
    assert err.count("\n") == 1


def test_other_mistakes_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "missing.md.j2")
    code, out, err = render(capsys, "--kind", "failed", "--template", missing)
    assert (code, out) == (2, "") and "missing.md.j2" in err
    code, out, err = render(capsys, "--kind", "health", "--template", missing)
    assert (code, out) == (2, "")
    assert err == "render: --template: the health message is not made from a template\n"
    code, out, err = render(capsys, "--kind", "failed", "--receiver", "ops")
    assert (code, err) == (2, "render: --receiver needs --config\n")
    code, out, err = render(capsys, "--kind", "failed", "--config", str(tmp_path / "no.yaml"))
    assert code == 2 and "no.yaml" in err and "cannot read" in err


def test_a_config_with_an_unset_secret_is_refused_without_printing_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DT_TOKEN", "tok-never-printed-0123")
    monkeypatch.delenv("DT_SECRET", raising=False)
    code, out, err = render(
        capsys, "--kind", "failed", "--config", str(ROOT / "config.example.yaml")
    )
    assert (code, out) == (2, "")
    assert "DT_SECRET is not set" in err and "tok-never-printed-0123" not in err


# -- preview -------------------------------------------------------------------------------


def test_the_html_preview_shows_the_markdown_as_dingtalk_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "failed.html"
    code, out, err = render(capsys, "--kind", "failed", "--preview", str(out_file))
    assert code == 0 and err == f"render: preview written to {out_file}\n"
    page = out_file.read_text(encoding="utf-8")
    title = body_of(out)["markdown"]["title"]
    assert f"<title>{title}</title>" in page
    assert f"<h3>{title}</h3>" in page
    assert "<li><strong>实例</strong>：11111111" in page
    # Markup characters the job wrote come out as their full-width lookalikes.
    assert "adcfc35d-e2fe-4fe9-bbaa-20e90ffc＊＊＊＊" in page
    assert "<blockquote>\n<p>java.lang.IllegalStateException" in page
    assert '<a href="https://schedulerx2.console.aliyun.com/cn-hangzhou/InstanceList?' in page
    # Self-contained: nothing to fetch, nothing to run.
    assert "http" not in page.replace('href="https://schedulerx2.console.aliyun.com', "")
    assert "<script" not in page


def test_the_preview_shows_markup_in_the_text_as_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = tmp_path / "raw.md.j2"
    template.write_text(
        "### {{ job_id }}\n<img src=x onerror=alert(1)> [x](javascript:alert(1)) @13800000000"
    )
    out_file = tmp_path / "raw.html"
    args = ("--kind", "failed", "--template", str(template), "--preview", str(out_file))
    assert render(capsys, *args)[0] == 0
    page = out_file.read_text(encoding="utf-8")
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert 'href="javascript' not in page
    assert '<span class="mention">@13800000000</span>' in page


def test_a_preview_of_another_type_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = render(capsys, "--kind", "failed", "--preview", str(tmp_path / "x.pdf"))
    assert (code, out) == (2, "")
    assert "written as .png or .html, not '.pdf'" in err
    assert not (tmp_path / "x.pdf").exists()


def test_a_preview_without_its_tools_says_what_to_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEDULERX_ALERT_CHROMIUM", str(tmp_path / "no-such-chromium"))
    code, out, err = render(capsys, "--kind", "failed", "--preview", str(tmp_path / "a.png"))
    assert (code, out) == (2, "")
    assert "a PNG preview needs Chromium (`make preview-tools`" in err
    # Without the [preview] extra (None in sys.modules makes the import fail).
    monkeypatch.setitem(sys.modules, "markdown_it", None)
    code, out, err = render(capsys, "--kind", "failed", "--preview", str(tmp_path / "a.html"))
    assert (code, out) == (2, "")
    assert "pip install 'schedulerx-alert[preview]'" in err


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_png_preview_is_a_picture_of_the_whole_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], language: str
) -> None:
    # `make test` runs `make preview-tools` first; a machine without Chromium cannot vouch
    # for the previews, so this fails rather than skips.
    assert preview.find_chromium() is not None, "no Chromium: run `make preview-tools`"
    out_file = tmp_path / "summary.png"
    code, _, err = render(
        capsys, "--kind", "summary", "--lang", language, "--preview", str(out_file)
    )
    assert code == 0, err
    data = out_file.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width == preview.PAGE_WIDTH * preview.SCALE
    # Sized to the message: a heading, four items and a link, not a fixed window.
    assert 300 * preview.SCALE < height < 1200 * preview.SCALE
    assert len(data) > 20_000


# -- never part of the function ------------------------------------------------------------


def test_the_function_never_loads_the_preview_or_its_markdown_library() -> None:
    probe = (
        "import sys, index, schedulerx_alert.handler, schedulerx_alert.tick; "
        "print([m for m in sys.modules if m.startswith(('markdown_it', 'schedulerx_alert.cli'))])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT / "src",
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    runtime = pyproject.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert "markdown" not in runtime
