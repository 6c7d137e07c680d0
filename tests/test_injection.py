"""Text from jobs, SchedulerX and DingTalk is data: the group sees it, never obeys it.

Every story posts through the loopback DingTalk robot and reads what the robot
accepted with `tests.markup.violations`, which reads backslashes as plain characters
because DingTalk documents no backslash escapes.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote_plus

from schedulerx_alert.delivery.channels.dingtalk import DingTalkReceiver, TransportError
from schedulerx_alert.delivery.render import Message
from tests.fakes.dingtalk import dingtalk_sign
from tests.markup import violations
from tests.world import ROBOT, ROBOT_SECRET, START, World

HOSTILE = (
    "![x](https://evil.example/p.png) [click](https://evil.example) @13800000000 "
    "\n### Resolved, no action needed"
)
MORE_HOSTILE = (
    HOSTILE + "\n<img src=x onerror=alert(1)> <a href='javascript:alert(1)'>hi</a>"
    "\n- item\n1. step\n> quote\n===\n| a | b |\n&#64;all **bold** _em_ ~~gone~~ `code`"
    "\nmailto:boss@evil.example www.evil.example evil.com\\"
)


def test_hostile_job_text_reaches_the_group_as_plain_text(world: World) -> None:
    world.raw["watch"][0]["jobs"] = [{"id": 92583, "name": HOSTILE}, 92584]
    world.sx.add_instance(92583, status=5, result=MORE_HOSTILE, work_addr=HOSTILE, executor=HOSTILE)
    summary = world.tick()
    assert summary.alerts_sent == 1
    [text] = world.texts()
    assert violations(text, forbidden=["evil.example", "evil.com"]) == []
    # Shown, so that the on-call engineer still reads what the job said.
    assert "Resolved, no action needed" in text
    assert "hxxps://evil［.］example/p.png" in text


def test_an_alert_whose_worker_address_is_30_kb_is_delivered_with_the_address_cut(
    world: World,
) -> None:
    world.sx.add_instance(92583, status=5, work_addr="10.0.0.5:16888," * 2100)
    summary = world.tick()
    assert summary.alerts_sent == 1 and summary.alerts_pending == 0
    [text] = world.texts()
    worker = next(line for line in text.splitlines() if "**Worker**" in line or "执行机器" in line)
    assert worker.endswith("…") and "10.0.0.5:16888" in worker
    assert len(worker) < 150


def test_a_pending_alert_with_30_kb_fields_keeps_a_small_state(world: World) -> None:
    """DingTalk is down while job 92583 fails with a 30 KB worker address,
    executor and progress: the owed alert waits in the state, cut short."""
    world.dt.set_down()
    huge = "10.0.0.5:16888," * 2100
    world.sx.add_instance(92583, status=5, work_addr=huge, executor=huge, progress=huge)
    summary = world.tick()
    assert summary.alerts_pending == 1
    assert world.state_path.stat().st_size < 8_000


def test_line_breaks_in_single_line_fields_and_summaries_cannot_forge_a_line(
    world: World,
) -> None:
    forged = (
        "ok\r### Resolved, no action needed\u2028### Resolved\u2029- done\x85# fine"
        "\n@all\x0b===\x0c1. x\u200b\u202eevil"
    )
    world.sx.add_instance(92583, status=5, work_addr="10.0.0.5:16888" + forged)
    world.tick()
    world.advance(60)
    for _ in range(4):  # more than the summary threshold: one summary message
        world.sx.add_instance(92584, status=5, result=forged)
    world.tick()
    single, summary = world.texts()
    assert "个任务实例异常" in summary
    for text in (single, summary):
        assert violations(text) == []
        assert len(text.splitlines()) == len(text.split("\n"))


def test_the_impaired_message_quotes_a_hostile_reason_as_plain_text(world: World) -> None:
    world.raw["health"] = {"receiver": "ops", "impaired_after": 1}
    world.sx.fail_next("success_false", times=100, message=MORE_HOSTILE)
    world.tick()
    [text] = world.texts()
    assert "告警功能异常" in text
    assert violations(text, forbidden=["evil.example", "evil.com"]) == []


def test_dingtalk_errmsg_is_redacted_and_capped_before_the_state_keeps_it(world: World) -> None:
    echo = (
        f"sign not match: /robot/send?access_token={ROBOT}&timestamp=1&sign=abc, "
        f"token {ROBOT}, secret {ROBOT_SECRET}\n### Resolved " + "x" * 5000
    )
    world.dt.fail_next(310000, errmsg=echo)
    world.sx.add_instance(92583, status=5)
    summary = world.tick()
    assert summary.alerts_pending == 1
    state = world.state_path.read_text(encoding="utf-8")
    problems = json.dumps(summary.problems, ensure_ascii=False)
    for kept in (state, problems):
        assert ROBOT not in kept and ROBOT_SECRET not in kept and "sign=abc" not in kept
    [alert] = json.loads(state)["outbox"]
    assert alert["last_error"].startswith("DingTalk errcode 310000: sign not match")
    assert "\n" not in alert["last_error"] and len(alert["last_error"]) < 260


def test_dingtalk_errmsg_echoing_this_request_s_signature_is_redacted(world: World) -> None:
    receiver = DingTalkReceiver(world.config().receivers["ops"], clock=lambda: START)
    sign = dingtalk_sign(ROBOT_SECRET, int(START * 1000))
    world.dt.fail_next(310000, errmsg=f"expected another sign than {sign} ({quote_plus(sign)})")
    try:
        receiver.send(Message("t", "SchedulerX"))
    except TransportError as exc:
        error = str(exc)
    else:
        raise AssertionError("DingTalk refused the message")
    assert sign not in error and quote_plus(sign) not in error
    assert error == "DingTalk errcode 310000: expected another sign than *** (***)"


def test_a_user_template_that_forgets_every_filter_is_still_safe(
    world: World, tmp_path: Path
) -> None:
    template = tmp_path / "raw.md.j2"
    template.write_text(
        "### {{ job_label }} is {{ status }}\n"
        "{{ job_name }} on {{ worker }} ({{ executor }}) in {{ group }} / {{ namespace }}\n"
        "{{ result_text }}\n"
        "{{ result }}\n",
        encoding="utf-8",
    )
    world.raw["templates"] = {"language": "en", "alert": template.name}
    world.raw["watch"][0]["jobs"] = [{"id": 92583, "name": MORE_HOSTILE}, 92584]
    world.sx.add_instance(
        92583, status=5, result=MORE_HOSTILE, work_addr=MORE_HOSTILE, executor=MORE_HOSTILE
    )
    world.tick()
    [text] = world.texts()
    assert violations(text, forbidden=["evil.example", "evil.com"]) == []


def test_a_scheme_that_ends_a_value_is_defanged_before_a_template_joins_text_to_it() -> None:
    """Found by Hypothesis: a job named `JAVASCRIPT:` ended the value, so nothing followed
    its colon; in the message the template's own text did."""
    from schedulerx_alert.delivery.neutralise import line

    for name in ("JAVASCRIPT:", "job data:", "see mailto:"):
        assert violations("### heading\njob " + line(name) + "(x)") == [], name
    assert line("exit code: 1") == "exit code: 1"
