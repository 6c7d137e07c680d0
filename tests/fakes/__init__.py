"""Loopback fakes of SchedulerX, OSS and DingTalk speaking the real wire protocols.

Each fake runs an HTTP server on 127.0.0.1 (random port) in a daemon thread, records every
request in ``.requests`` and accepts injected faults via ``.fail_next(...)``.
"""

from tests.fakes.base import ManualClock, RecordedRequest
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.oss import FakeOss
from tests.fakes.schedulerx import FakeSchedulerX

__all__ = ["FakeDingTalk", "FakeOss", "FakeSchedulerX", "ManualClock", "RecordedRequest"]
