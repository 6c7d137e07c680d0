"""Two parts of DingTalk's robot contract that only a story shows being kept.

* 43004 means DingTalk refuses *this body*: sending the same bytes again cannot help,
  so the body is reshaped at once, and a body it never accepts does not hold up the
  other alerts of the tick.
* A robot in keyword mode refuses (310000) every message that lacks its keyword, so
  every kind of message carries it.
"""

from __future__ import annotations

import json
import re

from tests.test_delivery import failing_jobs
from tests.world import ROBOT, World

KEYWORD_TOKEN = "keyword-robot-access-token-0123"
# In none of the templates, so only the receiver's keyword setting can put it there.
KEYWORD = "值班提醒"


def instance_ids(body: bytes) -> set[int]:
    text = json.loads(body)["markdown"]["text"]
    return {int(m) for m in re.findall(r"(?:实例|instance)\D{0,3}(\d{10,})", text)}


def test_a_body_refused_as_malformed_is_never_sent_again_as_is(world: World) -> None:
    world.sx.add_instance(92583, status=5, result="at Foo.bar(Foo.java:42)\n" * 200)
    world.dt.fail_next(43004, errmsg="invalid message body")
    summary = world.tick()
    assert (summary.alerts_sent, summary.alerts_pending) == (1, 0)
    refused, accepted = world.dt.requests
    assert (refused.ok, accepted.ok) == (False, True)
    assert accepted.body != refused.body, "the refused body was sent again unchanged"


def test_a_body_never_accepted_does_not_hold_up_the_other_alerts(world: World) -> None:
    instances = failing_jobs(world, 3)
    # DingTalk refuses whatever it is sent as malformed, for the whole tick.
    world.dt.fail_next(43004, times=1000, errmsg="invalid message body")
    summary = world.tick()
    assert (summary.alerts_sent, summary.alerts_pending) == (0, 3)
    tried = set().union(*(instance_ids(r.body) for r in world.dt.requests))
    assert tried == instances, "an alert was never tried because another was refused"
    assert len(summary.problems) == 3
    assert all("refuses even the shortest message" in p for p in summary.problems)
    assert summary.status != "ok"


def use_keyword_robot(world: World) -> None:
    webhook = world.dt.add_robot(KEYWORD_TOKEN, keywords=(KEYWORD,))
    world.raw["receivers"] = [{"name": "ops", "webhook": webhook, "keyword": KEYWORD}]


def test_a_keyword_robot_receives_alerts_summaries_and_health_messages(world: World) -> None:
    use_keyword_robot(world)
    world.raw["health"] = {"receiver": "ops", "impaired_after": 1}
    world.sx.add_instance(92583, status=5)
    assert world.tick().alerts_sent == 1  # one alert: a message of its own
    world.advance(60)
    failing_jobs(world, 5)
    assert world.tick().alerts_sent == 5  # more than the threshold: a summary
    world.advance(60)
    world.sx.fail_next("5xx", times=100)
    world.tick()  # every listing fails: the monitor says it is broken
    texts = world.dt.texts(KEYWORD_TOKEN)
    assert len(texts) == 3 and "告警功能异常" in texts[2]
    assert all(KEYWORD in text for text in texts)
    assert all(r.ok for r in world.dt.requests), "the robot refused a message"
    assert world.dt.texts(ROBOT) == []
