"""Where messages go: routing findings to receivers, rendering, the outbox, the channels."""
