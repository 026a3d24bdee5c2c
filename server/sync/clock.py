"""Device clocks (SYNC.md §4.8): NTP-style offsets measured from each exchange, and capture
times corrected by the offset of the same boot. Display only: nothing is ordered by them (I10)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from mobile_sync.protocol.models import ClockProbe, Op
from server.db.base import utcnow
from server.sync.context import DeviceContext
from server.sync.models import ClockSample

__all__ = [
    "CLOCK_FLAG_MS",
    "CaptureTime",
    "corrected_captures",
    "nearest_sample",
    "record_clock",
]

#: Clock offsets beyond this make a capture time doubtful (SYNC.md §4.8).
CLOCK_FLAG_MS = 5 * 60 * 1000


def record_clock(session: Session, ctx: DeviceContext, probe: ClockProbe | None) -> None:
    """Store an NTP-style offset from the device's previous exchange (offset = server − device,
    so device time + offset = server time)."""
    if probe is None:
        return
    rtt = (probe.t3_ms - probe.t0_ms) - (probe.t2_ms - probe.t1_ms)
    if rtt < 0 or rtt > 10 * 60 * 1000:
        return  # a clock that jumped mid-exchange says nothing reliable
    offset = ((probe.t1_ms - probe.t0_ms) + (probe.t2_ms - probe.t3_ms)) // 2
    session.add(
        ClockSample(
            device_id=ctx.device.id,
            boot_id=ctx.boot_id,
            offset_ms=offset,
            rtt_ms=rtt,
            server_rx_ms=ctx.server_received_ms,
            device_tx_ms=ctx.device_time_ms,
            device_uptime_ms=ctx.device_uptime_ms,
        )
    )
    ctx.device.clock_offset_ms = offset
    ctx.device.clock_boot_id = ctx.boot_id
    ctx.device.clock_sampled_at = utcnow()


@dataclass(frozen=True)
class CaptureTime:
    device: datetime
    corrected: datetime | None
    uncertainty_ms: int | None
    flag: str | None


def _nearest_samples(
    session: Session, ctx: DeviceContext, ops: Sequence[Op]
) -> list[Row[Any] | None]:
    """For each op, the device's clock sample of the op's boot nearest to it in uptime (ties:
    the older sample): the wall clock may have been changed in between, the uptime cannot have
    been. Per boot, the nearest sample lies within the ops' uptime span or is the last one
    before it or the first after it, so three small queries answer a whole batch."""
    by_boot: dict[uuid.UUID, list[Op]] = {}
    for op in ops:
        by_boot.setdefault(op.boot_id, []).append(op)
    samples: dict[uuid.UUID, list[Any]] = {}
    # Core rows, not ORM objects (three lookups per boot and batch, on the push path), after
    # writing the sample this request may have just recorded, as autoflush would have.
    session.flush()
    connection = session.connection()
    columns = (
        ClockSample.id,
        ClockSample.device_uptime_ms,
        ClockSample.offset_ms,
        ClockSample.rtt_ms,
    )
    for boot_id, boot_ops in by_boot.items():
        low = min(op.device_uptime_ms for op in boot_ops)
        high = max(op.device_uptime_ms for op in boot_ops)
        of_boot = (ClockSample.device_id == ctx.device.id, ClockSample.boot_id == boot_id)
        uptime = ClockSample.device_uptime_ms
        found = list(
            connection.execute(select(*columns).where(*of_boot, uptime.between(low, high)))
        )
        before = connection.execute(
            select(*columns)
            .where(*of_boot, uptime < low)
            .order_by(uptime.desc(), ClockSample.id)
            .limit(1)
        ).one_or_none()
        after = connection.execute(
            select(*columns)
            .where(*of_boot, uptime > high)
            .order_by(uptime, ClockSample.id)
            .limit(1)
        ).one_or_none()
        samples[boot_id] = found + [s for s in (before, after) if s is not None]
    return [
        min(
            samples[op.boot_id],
            key=lambda s: (abs(s.device_uptime_ms - op.device_uptime_ms), s.id),
            default=None,
        )
        for op in ops
    ]


def nearest_sample(session: Session, ctx: DeviceContext, op: Op) -> Row[Any] | None:
    return _nearest_samples(session, ctx, [op])[0]


def corrected_captures(
    session: Session, ctx: DeviceContext, ops: Sequence[Op]
) -> list[CaptureTime]:
    """Each op's capture time: as the device clock said, and corrected by the offset measured
    in the same boot. Without such a sample (the phone restarted before it synced) it stays
    uncorrected and flagged. Display only: never used for ordering (I10)."""
    out = []
    for op, sample in zip(ops, _nearest_samples(session, ctx, ops), strict=True):
        device_time = datetime.fromtimestamp(op.device_time_ms / 1000, UTC)
        if sample is None:
            out.append(CaptureTime(device_time, None, None, "no_clock_sample"))
            continue
        corrected = datetime.fromtimestamp((op.device_time_ms + sample.offset_ms) / 1000, UTC)
        flag = "clock_offset" if abs(sample.offset_ms) > CLOCK_FLAG_MS else None
        out.append(CaptureTime(device_time, corrected, (sample.rtt_ms + 1) // 2, flag))
    return out
