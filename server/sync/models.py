"""Sync bookkeeping: the op ledger, per-device order, the commit-ordered change log, clock
samples, the epoch, append-only notes, sealed blobs and quarantined operations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UtcDateTime, utcnow
from server.db.columns import JsonColumn


class SyncOp(Base):
    """The idempotency and ordering ledger: one row per applied or terminally rejected op.

    ``UNIQUE(device_id, device_seq)`` and the primary key on ``op_id`` make a second delivery of
    an op, from any connection, find the first one's stored result (SYNC.md §4.3)."""

    __tablename__ = "sync_ops"
    __table_args__ = (UniqueConstraint("device_id", "device_seq"),)

    op_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    device_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    device_seq: Mapped[int] = mapped_column(BigInteger)
    report_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    payload_sha256: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class DeviceCursor(Base):
    """The last device_seq applied per device; its row lock serialises one device's ops."""

    __tablename__ = "device_cursors"

    device_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class SyncBatch(Base):
    """A push batch by its Idempotency-Key. The same key with another body is refused (422);
    the same key and body are simply processed again, and the op ledger answers ``duplicate``
    for every op that was already applied."""

    __tablename__ = "sync_batches"

    batch_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    device_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    body_sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Change(Base):
    """One entry of the pull log. ``seq`` is allocated in commit order (see
    ``server.sync.changes``), so a reader never sees seq N+1 while N is still in flight."""

    __tablename__ = "changes"
    __table_args__ = (Index("ix_changes_report_id", "report_id"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    report_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    committed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)


class SyncState(Base):
    """One row: the server epoch. A restore from backup gets a new epoch (``vigil sync
    new-epoch``), and every older cursor then answers 410 with a replacement sync."""

    __tablename__ = "sync_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    epoch: Mapped[uuid.UUID] = mapped_column(Uuid)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    #: The last change seq handed out on SQLite (PostgreSQL uses the ``change_seq`` sequence):
    #: a counter, never ``max(seq)``, so compaction or pruning can never make a seq reappear.
    last_change_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Tombstones up to this seq were pruned after the horizon: an older cursor gets 410.
    pruned_through_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class DeviceReportView(Base):
    """What each device was last sent of each report (``full``, ``redacted``, or the report's
    removal: ``hidden`` after a revoke, ``gone`` after a tombstone), so that a report leaving the
    device's view can be revoked without telling anyone else it exists.

    ``revoked_seq`` is the change seq at which the device was last told to drop (or downgrade)
    its copy. That message is sent again to any pull whose cursor does not yet cover it: a pull
    answer can be lost, and the device must still hear of the removal (I5, I9)."""

    __tablename__ = "device_report_views"

    device_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    report_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(String(16))
    revoked_seq: Mapped[int | None] = mapped_column(BigInteger)


class ClockSample(Base):
    """One NTP-style offset measurement of a device clock (SYNC.md §4.8)."""

    __tablename__ = "clock_samples"
    __table_args__ = (Index("ix_clock_samples_device_boot", "device_id", "boot_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    boot_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    offset_ms: Mapped[int] = mapped_column(BigInteger)
    rtt_ms: Mapped[int] = mapped_column(BigInteger)
    server_rx_ms: Mapped[int] = mapped_column(BigInteger)
    device_tx_ms: Mapped[int] = mapped_column(BigInteger)
    device_uptime_ms: Mapped[int] = mapped_column(BigInteger)


class ReportNote(Base):
    """An append-only note or verification remark on a report: a grow-only set keyed by the
    client's id, so concurrent notes from several devices all survive."""

    __tablename__ = "report_notes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    device_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SealedBlob(Base):
    """An encrypted payload version the server stores but cannot read. Two blobs with the same
    parent are a fork, kept both, for an authorised HQ client to resolve (SYNC.md §4.6)."""

    __tablename__ = "sealed_blobs"
    __table_args__ = (UniqueConstraint("report_id", "payload_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), index=True
    )
    payload_version: Mapped[int] = mapped_column(Integer)
    parent_version: Mapped[int | None] = mapped_column(Integer)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    #: key ids, algorithm, AAD parts — never the plaintext.
    manifest: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    op_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class QuarantinedOp(Base):
    """An op the server accepted but could not apply as sent (an old schema, a field that no
    longer validates, a date years in the future): kept for HQ to fix, never rejected."""

    __tablename__ = "quarantined_ops"

    op_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    device_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    report_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    schema_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
