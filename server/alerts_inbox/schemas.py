"""What the alerts API reads and writes. Alert bodies carry labels, counts and the coverage
sentence only: never a narrative, a name or an exact point (SECURITY.md rule 6)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class AlertEventRead(BaseModel):
    at: datetime
    kind: str
    unit_id: int | None
    user_id: int | None
    detail: dict[str, Any]


class AlertRead(BaseModel):
    id: int
    cap_identifier: str
    rule_id: str
    kind: str
    severity: str
    urgency: str
    cap_severity: str
    certainty: str
    state: str
    title: str
    summary: str
    coverage: str
    cell: str = Field(description="H3 cell (hex); a res-6 cell for sensitive categories")
    category: str | None
    labels: dict[str, str]
    sensitive: bool
    count: int
    responsible_unit_id: int
    responsible_unit: str
    level: int
    current_unit: str = Field(description="The unit the alert has escalated to")
    chain: list[str]
    also: list[str]
    route_reason: str
    escalate_at: datetime | None
    silenced_by: str | None
    inhibited_by_alert_id: int | None
    first_seen_at: datetime
    last_seen_at: datetime
    created_at: datetime
    first_delivered_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by_user_id: int | None
    ack_note: str | None
    resolved_at: datetime | None
    resolve_reason: str | None


class AlertDetail(AlertRead):
    timeline: list[AlertEventRead]


class AlertPage(BaseModel):
    items: list[AlertRead]
    next_cursor: str | None


class AcknowledgementCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=1000)


class ResolutionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=300)


class SilenceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    matchers: list[str] = Field(min_length=1, max_length=20, examples=[['cell="861e..."']])
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = Field(
        default=None, description="Required: open-ended silences are refused"
    )
    comment: str = Field(min_length=1, max_length=1000)


class SilenceRead(BaseModel):
    id: int
    matchers: list[str]
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str
    created_at: datetime
    active: bool


class RuleRead(BaseModel):
    id: str
    version: int
    definition: dict[str, Any]
    updated_at: datetime


class ChannelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit_id: int
    kind: str = Field(pattern="^(webhook|email)$")
    address: str = Field(min_length=3, max_length=500)
    secret: str | None = Field(default=None, min_length=16, max_length=200)


class ChannelRead(BaseModel):
    id: int
    unit_id: int
    kind: str
    address: str
    enabled: bool
    created_at: datetime


class KpiRead(BaseModel):
    unit: str
    severity: str
    alerts: int
    delivered: int
    acknowledged: int
    resolved: int
    waiting_ack: int
    delivery_p50_s: float | None
    delivery_p90_s: float | None
    ack_p50_s: float | None
    ack_p90_s: float | None
    resolve_p50_s: float | None
    resolve_p90_s: float | None
    oldest_waiting_ack_s: float | None
