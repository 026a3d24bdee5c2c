"""Identifiers the device mints: UUIDv7 op ids (RFC 9562), random report and attachment ids."""

from __future__ import annotations

import os
import time
import uuid

__all__ = ["new_attachment_id", "new_op_id", "new_report_id", "uuid7"]


def uuid7(unix_ms: int | None = None) -> uuid.UUID:
    """A UUIDv7: 48-bit Unix milliseconds, then 74 random bits (RFC 9562 §5.7).

    Python 3.11 has no ``uuid.uuid7``. The embedded time only gives B-tree locality on the
    server; nothing orders by it (device clocks lie)."""
    ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    rand = int.from_bytes(os.urandom(10), "big")
    rand_a = rand >> 62 & 0xFFF
    rand_b = rand & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return uuid.UUID(int=value)


def new_op_id() -> uuid.UUID:
    return uuid7()


def new_report_id() -> uuid.UUID:
    # v4, not v7: a report id is seen by many readers and must not leak when it was written
    # (SYNC.md §4.1, the sealed-report caveat).
    return uuid.uuid4()


def new_attachment_id() -> uuid.UUID:
    return uuid.uuid4()
