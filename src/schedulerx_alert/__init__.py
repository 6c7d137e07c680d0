"""Announce failed and rejected SchedulerX job runs in DingTalk groups, once."""

__version__ = "0.1.0"
