"""A click SchedulerX throttled can be made again (links/operate.py).

SchedulerX answering `Throttling.User` did not act, so the link is not spent: the
on-call presses the button again a minute later and the run is retried, once however
many press it at the same moment. Every other answer stays final, a "no clear answer"
first of all: the run may have been acted on. The stories run the link function
(`links/serve.py`) against the loopback SchedulerX, OSS and DingTalk robot, the clicks a
minute apart.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from schedulerx_alert.links.operate import MAX_TRIES
from tests.test_actions import form_of
from tests.test_actions_operations import JOB, Chat, failed_run, make_chat

MINUTE = 60.0
RETRY = "Retry this run"


@pytest.fixture
def chat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Chat]:
    yield from make_chat(tmp_path, monkeypatch, ["retry", "mark_success", "stop"])


def later(seconds: float) -> Callable[[], float]:
    """The link function's clock, `seconds` after now."""
    return lambda: time.time() + seconds


def body(answer: dict[str, object]) -> str:
    return html.unescape(str(answer["body"]))


def throttled_click(chat: Chat, url: str) -> None:
    """The first click: SchedulerX throttles the write, nothing is done, and the page and
    the group say the button can be pressed again."""
    sent = len(chat.world.texts())
    chat.world.sx.fail_next("throttle", action="RetryJobInstance")
    first = chat.confirm(url)
    assert first["statusCode"] == 409
    assert "throttling" in body(first) and "press the button again in a minute" in body(first)
    assert chat.world.sx.operations == []
    (follow,) = chat.world.texts()[sent:]
    assert "Not retried at" in follow and "press the button again" in follow


def test_a_click_schedulerx_throttled_is_made_again_a_minute_later_and_acts_once(
    chat: Chat,
) -> None:
    run = failed_run(chat)
    url = chat.buttons()[RETRY]
    throttled_click(chat, url)
    assert chat.world.tick().alerts_sent == 0

    # A minute later the page offers the button again and says what the last try met.
    opened = chat.open(url)
    assert opened["statusCode"] == 200 and form_of(str(opened["body"])).fields
    assert f"Retry run {run} of {JOB}?" in body(opened) and "throttling" in body(opened)

    # Pressed again: SchedulerX takes it this time (main: "This link was used before").
    sent = len(chat.world.texts())
    again = chat.post(url, clock=later(MINUTE))
    assert again["statusCode"] == 200, body(again)
    assert f"run {run} is running again" in body(again)
    assert chat.world.sx.operations == [("RetryJobInstance", run)]
    (follow,) = chat.world.texts()[sent:]
    assert "Retried at" in follow

    # Each try keeps its record: the throttled one as it was, then the one that acted.
    tries = sorted(chat.records().values(), key=lambda r: r.get("try", 1))
    assert [(r["outcome"], r.get("again"), r.get("try")) for r in tries] == [
        ("refused", True, None),
        ("done", None, 2),
    ]
    assert all(r["instance"] == run and r["announced"] is True for r in tries)

    # From now on the link is spent: a third click and the page say what was done.
    for used in (chat.post(url, clock=later(2 * MINUTE)), chat.open(url)):
        assert used["statusCode"] == 200
        assert "This link was used before" in body(used) and "Retried" in body(used)
    assert chat.world.sx.operations == [("RetryJobInstance", run)]
    assert len(chat.world.texts()) == sent + 1

    # The ticks follow the rerun; its success is the recovery.
    chat.world.tick()
    chat.world.sx.set_status(run, 4)
    chat.world.tick()
    assert len([t for t in chat.world.texts() if "recovered" in t]) == 1


def test_clicks_at_once_after_a_throttle_act_once(chat: Chat) -> None:
    run = failed_run(chat)
    url = chat.buttons()[RETRY]
    throttled_click(chat, url)

    # Four presses a minute later, while SchedulerX takes its time over the write.
    chat.world.sx.latency = lambda action: 0.3 if action == "RetryJobInstance" else 0.0
    with ThreadPoolExecutor(4) as pool:
        pages = list(pool.map(lambda _: chat.post(url, clock=later(MINUTE)), range(4)))
    assert chat.world.sx.operations == [("RetryJobInstance", run)]
    statuses = sorted(int(str(p["statusCode"])) for p in pages)
    assert statuses.count(200) >= 1 and set(statuses) <= {200, 409}, statuses
    assert sorted(r.get("try", 1) for r in chat.records().values()) == [1, 2]


def test_a_click_with_no_clear_answer_is_final(chat: Chat) -> None:
    """A 5xx may have acted: a second click never acts, it says to look at the run."""
    run = failed_run(chat)
    url = chat.buttons()[RETRY]
    chat.world.sx.fail_next("5xx", action="RetryJobInstance")
    first = chat.confirm(url)
    assert first["statusCode"] == 409 and "may or may not have been retried" in body(first)
    assert chat.world.sx.operations == []

    for again in (chat.post(url, clock=later(MINUTE)), chat.open(url)):
        assert "This link was used before" in body(again)
        assert "may or may not have been retried" in body(again)
        assert not form_of(str(again["body"])).fields
    assert chat.world.sx.operations == [] and len(chat.records()) == 1
    assert chat.world.sx.instance(run).status == 5


def test_a_link_throttled_on_every_try_sends_to_the_console_and_stays_bound_by_its_expiry(
    chat: Chat,
) -> None:
    run = failed_run(chat)
    url = chat.buttons()[RETRY]
    chat.world.sx.fail_next("throttle", MAX_TRIES + 1, action="RetryJobInstance")
    answers = [chat.post(url, clock=later(n * MINUTE)) for n in range(MAX_TRIES)]
    assert all("throttling" in body(a) for a in answers)
    assert all("press the button again" in body(a) for a in answers[:-1])
    assert f"The link was tried {MAX_TRIES} times and acts no more" in body(answers[-1])
    assert "retry it in the SchedulerX console" in body(answers[-1])

    spent = chat.post(url, clock=later(MAX_TRIES * MINUTE))
    assert "This link was used before" in body(spent)
    assert len(chat.records()) == MAX_TRIES
    assert chat.world.sx.operations == [] and chat.world.sx.instance(run).status == 5


def test_a_throttled_link_acts_never_once_expired(chat: Chat) -> None:
    failed_run(chat)
    url = chat.buttons()[RETRY]
    throttled_click(chat, url)
    expired = chat.post(url, clock=later(25 * 3600))
    assert expired["statusCode"] == 403 and "expired" in body(expired).lower()
    assert chat.world.sx.operations == [] and len(chat.records()) == 1
