"""Sync protocol v1 messages (../shared/SYNC.md §4): what a device and the server exchange.

Plain pydantic models, no I/O. The server validates requests with them; the reference client
builds requests and reads responses with them, so the two can never drift apart.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "PROTOCOL_VERSION",
    "Change",
    "ChangeKind",
    "ClockProbe",
    "Hello",
    "Op",
    "OpError",
    "OpHeader",
    "OpKind",
    "OpResult",
    "OpStatus",
    "PullResponse",
    "PushRequest",
    "PushResponse",
    "UploadBlocks",
    "payload_sha256",
]

PROTOCOL_VERSION = 1
#: Header every sync response carries; a response without it (a captive portal's 200 HTML)
#: is not an answer from Vigil, and the client treats the exchange as indeterminate.
PROTOCOL_HEADER = "X-Sync-Protocol"


def canonical_json(payload: Any) -> bytes:
    """The one byte form of a payload that both sides hash (sorted keys, no spaces, UTF-8)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def payload_sha256(payload: Any) -> str:
    """Base64url sha256 of the canonical payload: the op's idempotency fingerprint."""
    digest = hashlib.sha256(canonical_json(payload)).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class OpKind(StrEnum):
    CREATE = "create"
    SET_FIELDS = "set_fields"
    TRANSITION_STATUS = "transition_status"
    ADD_NOTE = "add_note"
    ADD_VERIFICATION = "add_verification"
    ATTACH = "attach"
    WITHDRAW = "withdraw"
    SEAL_UPDATE = "seal_update"
    TRACK_APPEND = "track_append"


class Op(BaseModel):
    """One operation, immutable once created on the device (SYNC.md §4.1)."""

    model_config = ConfigDict(extra="forbid")

    op_id: uuid.UUID
    device_id: uuid.UUID
    device_seq: int = Field(ge=1)
    report_id: uuid.UUID
    kind: OpKind
    base_version: int = Field(ge=0)
    schema_version: int = Field(ge=1)
    device_time_ms: int
    device_uptime_ms: int = Field(ge=0)
    boot_id: uuid.UUID
    payload: dict[str, Any]
    payload_sha256: str = Field(min_length=43, max_length=44)


class OpHeader(BaseModel):
    """The part of an op the server needs to answer for it even when the rest does not
    validate (an unknown kind from a newer app, a malformed payload): it is then recorded as
    ``rejected`` under its own id and device_seq, so the device's later ops are not blocked."""

    model_config = ConfigDict(extra="allow")

    op_id: uuid.UUID
    device_id: uuid.UUID
    device_seq: int = Field(ge=1)
    report_id: uuid.UUID
    payload_sha256: str = Field(min_length=43, max_length=44)


class ClockProbe(BaseModel):
    """The device's view of its previous exchange, for an NTP-style offset (SYNC.md §4.8):
    it sent at ``t0_ms`` and received the answer (stamped ``t1_ms``/``t2_ms`` by the server)
    at ``t3_ms``, all by its own wall clock except the server's two."""

    model_config = ConfigDict(extra="forbid")

    t0_ms: int
    t1_ms: int
    t2_ms: int
    t3_ms: int


class PushRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch_id: uuid.UUID
    device_id: uuid.UUID
    device_time_ms: int
    device_uptime_ms: int = Field(ge=0)
    boot_id: uuid.UUID
    client_version: str = Field(default="0", max_length=32)
    previous_exchange: ClockProbe | None = None
    #: Each a serialised :class:`Op`; validated one by one, so one bad op fails alone.
    ops: list[dict[str, Any]] = Field(min_length=1)


class OpStatus(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    CONFLICT_FLAGGED = "conflict_flagged"
    REJECTED = "rejected"
    DEFERRED = "deferred"
    GONE = "gone"


class OpError(BaseModel):
    code: str
    detail: str


class OpResult(BaseModel):
    """Exactly one per op of a push (SYNC.md §4.2)."""

    op_id: uuid.UUID
    device_seq: int
    status: OpStatus
    report_id: uuid.UUID
    version: int | None = None
    seq: int | None = None
    server_received_at: str | None = None
    quarantined: bool = False
    error: OpError | None = None
    expected_device_seq: int | None = None
    #: On a ``duplicate``: what the op got when it was first applied (``applied`` or
    #: ``conflict_flagged``), so a device whose first answer was lost still learns of a conflict.
    original_status: OpStatus | None = None


class PushResponse(BaseModel):
    batch_id: uuid.UUID
    results: list[OpResult]
    server_time_ms: int


class ChangeKind(StrEnum):
    UPSERT = "upsert"
    TOMBSTONE = "tombstone"
    REVOKE = "revoke"


class Change(BaseModel):
    seq: int
    kind: ChangeKind
    report_id: uuid.UUID
    version: int
    record: dict[str, Any] | None = None


class PullResponse(BaseModel):
    changes: list[Change]
    next_cursor: str
    has_more: bool
    server_time_ms: int


class UploadBlocks(BaseModel):
    """The server keeps the verified prefix of a PATCH cut mid-body when it carries block
    checksums (``Upload-Block-Size``, ``Upload-Block-Checksums``; mobile_sync/client/README.md)."""

    #: ``sha256`` (32-byte digests) and its truncations ``sha256-128``, ``sha256-64``.
    algorithms: list[str]
    min_block_bytes: int
    #: Digests one PATCH may carry (so the headers stay small).
    max_blocks: int


class Hello(BaseModel):
    """What the server can do and its limits; also the clock probe that opens every sync."""

    protocol_versions: list[int]
    min_client_version: str
    max_batch_bytes: int
    max_batch_ops: int
    max_chunk_bytes: int
    max_attachment_bytes: int
    upload_expiry_s: int
    key_bundle_version: int
    server_time_ms: int
    tombstone_horizon_s: int
    epoch: str
    device_status: Literal["active", "revoked"] = "active"
    request_encodings: list[str] = Field(
        default_factory=list,
        description=(
            "Content codings the server decodes in a push body (`Content-Encoding`), e.g. "
            '`["gzip"]`. The decoded body is held to `max_batch_bytes` and is the batch '
            "(the Idempotency-Key fingerprint is over it, so a batch resent in another coding "
            "is the same batch). Empty, or absent (servers before it): send bodies "
            "uncompressed. Answers are compressed independently, on `Accept-Encoding`."
        ),
    )
    upload_blocks: UploadBlocks | None = Field(
        default=None,
        description=(
            "Set when the server keeps the complete, matching blocks of a PATCH whose body was "
            "cut (block checksums). Absent (servers before it): a cut PATCH stores nothing."
        ),
    )
