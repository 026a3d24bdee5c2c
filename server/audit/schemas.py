"""Bodies of the audit endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditEventRead(BaseModel):
    seq: int
    occurred_at: datetime
    actor_user_id: int | None
    actor_username: str | None
    action: str
    object_type: str | None
    object_id: str | None
    request_id: str | None
    reason: str | None
    details: dict[str, Any]
    hash: str


class ChainStatus(BaseModel):
    intact: bool
    events: int
    first_break_seq: int | None
    problem: str | None
