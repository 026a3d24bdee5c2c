"""Alerts, their timelines and deliveries, rules, silences, channels, and the outbox.

The outbox (``alert_outbox``) is written in the same transaction as the report, hotspot
snapshot or gap change it describes; the drain job turns its rows into alerts and marks them
processed in one transaction, so a killed worker leaves them to the next run. Deliveries are
unique per (alert, recipient, step) and notifications per idempotency key: a job that runs twice
finds its work done.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UtcDateTime, utcnow
from server.db.columns import JsonColumn


class AlertRule(Base):
    """A rule's stored definition (the JSON :func:`alerts.rules.parse_rule` reads)."""

    __tablename__ = "alert_rules"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class Alert(Base):
    """One alert: what, where, who must act, and where it stands.

    ``open_key`` is the fingerprint while the alert is not resolved, NULL after: a unique index
    on it keeps one unresolved alert per fingerprint on both backends.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_state_escalate_at", "state", "escalate_at"),
        Index("ix_alerts_unit_state", "responsible_unit_id", "state"),
        Index("ix_alerts_group_key", "group_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(300), index=True)
    open_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    cap_identifier: Mapped[str] = mapped_column(String(100), unique=True)
    rule_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    urgency: Mapped[str] = mapped_column(String(16))
    cap_severity: Mapped[str] = mapped_column(String(16))
    certainty: Mapped[str] = mapped_column(String(16))
    labels: Mapped[dict[str, str]] = mapped_column(JsonColumn)
    group_key: Mapped[str] = mapped_column(String(300))
    cell: Mapped[int] = mapped_column(BigInteger)
    category: Mapped[str | None] = mapped_column(String(64))
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16), default="open")
    responsible_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"))
    #: The escalation ladder (unit ids, responsible first) and the component units also told.
    chain: Mapped[list[int]] = mapped_column(JsonColumn)
    also_unit_ids: Mapped[list[int]] = mapped_column(JsonColumn)
    route_reason: Mapped[str] = mapped_column(String(500))
    level: Mapped[int] = mapped_column(SmallInteger, default=0)
    level_started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    escalate_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text)
    coverage: Mapped[str] = mapped_column(Text)
    count: Mapped[int] = mapped_column(Integer, default=1)
    killed: Mapped[int] = mapped_column(Integer, default=0)
    abducted: Mapped[int] = mapped_column(Integer, default=0)
    silenced_by: Mapped[str | None] = mapped_column(String(64))
    inhibited_by_alert_id: Mapped[int | None] = mapped_column(Integer)
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    first_delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    acknowledged_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    acknowledged_by_unit_id: Mapped[int | None] = mapped_column(Integer)
    ack_note: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    resolve_reason: Mapped[str | None] = mapped_column(String(300))


class AlertSubject(Base):
    """A report or incident that raised or refreshed an alert (counted once, however often the
    outbox row is processed)."""

    __tablename__ = "alert_subjects"

    alert_id: Mapped[int] = mapped_column(
        ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True
    )
    subject: Mapped[str] = mapped_column(String(80), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class AlertEvent(Base):
    """The alert's timeline: created, refreshed, delivered, acknowledged, escalated, resolved,
    silenced, inhibited. Append-only."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    kind: Mapped[str] = mapped_column(String(32))
    unit_id: Mapped[int | None] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any]] = mapped_column(JsonColumn)


class AlertSilence(Base):
    __tablename__ = "alert_silences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    matchers: Mapped[list[str]] = mapped_column(JsonColumn)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    comment: Mapped[str] = mapped_column(Text)
    created_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class AlertChannel(Base):
    """Where a unit's alerts go besides the in-app inbox: a signed webhook or an e-mail address."""

    __tablename__ = "alert_channels"
    __table_args__ = (UniqueConstraint("unit_id", "kind", "address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str | None] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class AlertOutbox(Base):
    """A fact waiting for the rules: written with the change, drained by the worker."""

    __tablename__ = "alert_outbox"
    __table_args__ = (Index("ix_alert_outbox_pending", "processed_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AlertGroupState(Base):
    """Per (group, unit): when its first alert came, when it was last notified, with what."""

    __tablename__ = "alert_group_states"
    __table_args__ = (Index("ix_alert_group_states_due", "next_due_at"),)

    group_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    unit_id: Mapped[int] = mapped_column(
        ForeignKey("units.id", ondelete="CASCADE"), primary_key=True
    )
    rule_id: Mapped[str] = mapped_column(String(64))
    first_alert_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    notified_hash: Mapped[str | None] = mapped_column(String(64))
    next_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sequence: Mapped[int] = mapped_column(Integer, default=0)


class AlertNotification(Base):
    """One message to one recipient channel (the inbox, a webhook, an address) about one group.

    ``idempotency_key`` goes to the sink (webhook header, e-mail Message-ID) so a message sent
    again after a crash is recognised there as the same one.
    """

    __tablename__ = "alert_notifications"
    __table_args__ = (Index("ix_alert_notifications_state", "state", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    group_key: Mapped[str] = mapped_column(String(300))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    channel_id: Mapped[int | None] = mapped_column(
        ForeignKey("alert_channels.id", ondelete="SET NULL")
    )
    channel_kind: Mapped[str] = mapped_column(String(16))
    msg_type: Mapped[str] = mapped_column(String(16))
    alert_ids: Mapped[list[int]] = mapped_column(JsonColumn)
    subject: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AlertDelivery(Base):
    """The delivery log: alert × recipient × step, unique, whatever the jobs do twice."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (UniqueConstraint("alert_id", "recipient", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    recipient: Mapped[str] = mapped_column(String(200))
    step: Mapped[str] = mapped_column(String(64))
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("alert_notifications.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
