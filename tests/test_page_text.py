"""The silence link's pages show job text as the message does: the same neutraliser.

A job name with a right-to-left override (U+202E) reads backwards on a page that keeps it
("nightly\u202egpj.exe" shows as "nightlyexe.jpg"); the message strips such characters,
so the page the button opens must too, or the two would name different jobs.
"""

from __future__ import annotations

import unicodedata

import index
from schedulerx_alert.core.state import run_alert
from schedulerx_alert.delivery.channels.dingtalk import DingTalkReceiver
from schedulerx_alert.delivery.links import ActionLinks, attach_actions
from schedulerx_alert.delivery.neutralise import line
from schedulerx_alert.delivery.render import Renderer
from schedulerx_alert.links.page import page
from tests.builders import T0, instance
from tests.test_actions import Chat, answer, chat, context, fc_http_event, form_of
from tests.world import ROBOT

__all__ = ["chat"]  # the fixture, shared with test_actions
TRICK = "nightly\u202egpj.exe\u200b\u2066 & <b>x</b>\nline two\x1b[2J"
INVISIBLE = ("Cc", "Cf", "Cs", "Zl", "Zp")


def invisible(text: str) -> list[str]:
    return [f"U+{ord(c):04X}" for c in text if unicodedata.category(c) in INVISIBLE]


def test_the_confirmation_and_result_pages_drop_what_the_message_strips(chat: Chat) -> None:
    alert = run_alert("failed", "ops", instance(11111111), TRICK, T0)
    message = Renderer("en", "cn-hangzhou").alert(alert)
    message = attach_actions(message, alert, ActionLinks(chat.settings, "en", "Asia/Shanghai"))
    DingTalkReceiver(chat.config.receivers["ops"], timeout=5.0).send(message)
    card = chat.world.dt.messages(ROBOT)[-1]["actionCard"]
    shown = line(TRICK)
    assert shown in card["text"] and invisible(card["text"].replace("\n", "")) == []

    url = card["btns"][0]["actionURL"]
    opened = answer(index.handler(fc_http_event(url), context()))
    assert opened["statusCode"] == 200
    body = opened["body"].replace("\n", "")
    assert invisible(body) == []
    # The characters the message strips are gone; its markup is escaped as HTML instead.
    assert "nightlygpj.exe &amp; &lt;b&gt;x&lt;/b&gt; line two [2J" in body
    confirmed = answer(
        index.handler(fc_http_event(url, "POST", form_of(opened["body"]).fields), context())
    )
    assert confirmed["statusCode"] == 200 and "Silenced" in confirmed["body"]
    assert invisible(confirmed["body"].replace("\n", "")) == []


def test_every_text_of_a_page_is_neutralised_then_escaped() -> None:
    response = page(
        409,
        "en",
        TRICK,
        [TRICK + "\ud800", "x" * 5000],
        facts=[(TRICK, TRICK)],
        notes=[TRICK],
    )
    body = response.body
    assert invisible(body) == []
    # The title twice (<title> and <h1>), a paragraph, a fact's name and value, a note.
    assert "<b>" not in body and body.count("&lt;b&gt;x&lt;/b&gt;") == 6
    body.encode("utf-8")  # a lone surrogate would make the page unsendable
    # A paragraph is capped, like every value in a message.
    assert "x" * 2000 not in body and "x" * 1990 in body
