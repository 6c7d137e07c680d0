"""Loopback fakes of SchedulerX, OSS and DingTalk speaking the real wire protocols."""
