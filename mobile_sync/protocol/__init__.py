"""The sync protocol's pure half: operation and result models, no I/O (see ../shared/SYNC.md)."""
