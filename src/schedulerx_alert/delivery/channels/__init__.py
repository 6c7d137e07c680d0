"""Channels: one module per chat service, each declaring its limits (DingTalk today)."""
