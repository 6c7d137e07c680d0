"""Where the monitor keeps what outlives a tick: the state store, the lease, the silence book."""
