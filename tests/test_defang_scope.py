"""Only what a chat client opens is defanged; names the on-call engineer copies stay as written.

DingTalk links text with a scheme, a `www.` host and a host followed by a path. Group
names, class names, stack frames, `host:port` and file names are none of these, even
when a label is a TLD (`.prod`, `.java`, `.py`, `.io`): they must reach the group so
that a search for them finds the job, the class and the line.
"""

from __future__ import annotations

from schedulerx_alert.delivery.neutralise import block, line
from tests.markup import violations
from tests.world import NS, World

TRACE = (
    "java.io.IOException: disk full\n"
    "\tat com.example.etl.NightlyJob.process(NightlyJob.java:88)\n"
    "\tat java.base/java.lang.Thread.run(Thread.java:833)\n"
    'File "/opt/etl/etl.py", line 3, worker 10.0.0.1:8080, config core.prod.yaml'
)


def test_a_failure_in_group_core_prod_shows_its_group_and_stack_frames_as_written(
    world: World,
) -> None:
    world.sx.add_job(NS, "core.prod", 92590, name="nightly.io")
    world.raw["watch"].append(
        {
            "namespace": NS,
            "group": "core.prod",
            "jobs": [{"id": 92590, "name": "nightly.io"}],
            "receivers": ["ops"],
        }
    )
    world.sx.add_instance(92590, status=5, result=TRACE, work_addr="10.0.0.1:8080")
    world.tick()
    [text] = world.texts()
    assert violations(text) == []
    for written in (
        "core.prod",
        "nightly.io",
        "java.io.IOException: disk full",
        "at com.example.etl.NightlyJob.process(NightlyJob.java:88)",
        "at java.base/java.lang.Thread.run(Thread.java:833)",
        "/opt/etl/etl.py",
        "10.0.0.1:8080",
        "core.prod.yaml",
    ):
        assert written in text, written


def test_what_a_client_opens_is_still_defanged() -> None:
    cases = {
        "see https://evil.example/x": "see hxxps://evil［.］example/x",
        "www.evil.example": "www［.］evil［.］example",
        "evil.example/p.png": "evil［.］example/p.png",
        "evil.com:8443/login": "evil［.］com:8443/login",
        "docs.google.com?q=1": "docs［.］google［.］com?q=1",
        "is it evil.com?": "is it evil［.］com?",  # a template's text may follow
        "evil.com#top": "evil［.］com＃top",
        "evil.com\\x": "evil［.］com＼x",
        "evil.com./x": "evil［.］com./x",
        "10.0.0.1/admin": "10.0.0［.］1/admin",
        "boss@evil.com": "boss＠evil［.］com",
    }
    for raw, shown in cases.items():
        assert line(raw) == shown, raw
        assert violations(f"### t\n{line(raw)}") == [], raw
        assert block(raw) == (shown,), raw


def test_identifiers_file_names_and_host_port_stay_as_written() -> None:
    for raw in (
        "core.prod",
        "com.example.etl.NightlyJob.process(NightlyJob.java:88)",
        "NightlyJob.java:88",
        "10.0.0.1:8080",
        "etl.py",
        "evil.com",
        "is core.prod? see the log",
        "/usr/lib/python3.11/site-packages/requests/api.py",
    ):
        assert line(raw) == raw, raw
