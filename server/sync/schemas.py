"""What HQ sees of a report's sync history (``GET /sync/v1/reports/{id}/history``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from server.reports.enums import VerificationState

__all__ = [
    "NoteRead",
    "OpRecord",
    "QuarantineRead",
    "ReportHistory",
    "RevisionRead",
    "SealedBlobRead",
    "StatusStepRead",
]


class RevisionRead(BaseModel):
    version: int
    actor_user_id: int | None
    changed_fields: list[str]
    at: datetime


class StatusStepRead(BaseModel):
    version: int | None
    from_state: VerificationState
    to_state: VerificationState
    actor_user_id: int | None
    at: datetime


class NoteRead(BaseModel):
    id: uuid.UUID
    kind: str
    body: str
    actor_user_id: int | None
    device_id: uuid.UUID | None
    created_at: datetime


class SealedBlobRead(BaseModel):
    """A sealed payload version: its place in the fork tree and manifest, never its bytes."""

    payload_version: int
    parent_version: int | None
    size_bytes: int
    manifest: dict[str, Any]
    created_at: datetime


class OpRecord(BaseModel):
    op_id: uuid.UUID
    device_id: uuid.UUID
    device_seq: int
    kind: str
    status: str
    error_code: str | None
    quarantined: bool
    received_at: datetime


class QuarantineRead(BaseModel):
    op_id: uuid.UUID
    kind: str
    reason: str
    schema_version: int
    created_at: datetime
    resolved_at: datetime | None


class ReportHistory(BaseModel):
    report_id: uuid.UUID
    version: int
    conflict_state: str
    deleted_at: datetime | None
    revisions: list[RevisionRead]
    status_steps: list[StatusStepRead]
    notes: list[NoteRead]
    sealed_blobs: list[SealedBlobRead]
    ops: list[OpRecord]
    quarantined: list[QuarantineRead]
