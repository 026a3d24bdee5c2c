"""Resumable attachment uploads: the tus 1.0 subset SYNC.md §4.7 asks for (creation idempotent
on the client's attachment id, HEAD for the offset, PATCH with a per-chunk sha256, expiry).

The report's manifest (pushed first, a few hundred bytes) announces each attachment's id,
length and sha256. An upload can only fill in an announced attachment, and it completes only if
the whole file hashes to the manifest's sha256; a complete attachment never changes again.

Bytes go to ``<attachments_dir>/partial/<id>`` while incomplete and are then moved to
``<attachments_dir>/<sha256>`` (content-addressed). The file is written and fsynced *before*
the database row moves its offset; if the commit is then lost, the row's offset is still the
truth and the next PATCH at that offset overwrites the extra bytes.

Block checksums (a Vigil extension, rules in ``mobile_sync/client/README.md``): a PATCH may also
carry ``Upload-Block-Size`` and ``Upload-Block-Checksums`` (a digest per block of the chunk). If
its body then stops early (the link dropped), :func:`write_prefix` keeps every complete block up
to the first that does not match, so a cut wastes the bytes in flight, not the whole chunk. The
whole file is still checked against the manifest at the end: integrity never rests on this.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.access.policy import Detail
from server.audit import service as audit
from server.db.base import utcnow
from server.errors import (
    AttachmentHashMismatchError,
    ChecksumMismatchError,
    ConflictError,
    MalformedRequestError,
    NotFoundError,
    PayloadTooLargeError,
    UploadExpiredError,
    UploadOffsetMismatchError,
)
from server.reports import service as reports
from server.reports.enums import AttachmentState
from server.reports.models import Attachment, Report
from server.settings import Settings
from server.sync import changes
from server.sync.service import DeviceContext

__all__ = [
    "BLOCK_ALGORITHMS",
    "MAX_BLOCKS",
    "MIN_BLOCK_BYTES",
    "BlockChecksums",
    "UploadCreate",
    "UploadStatus",
    "create",
    "discard_expired",
    "parse_block_checksums",
    "parse_metadata",
    "status",
    "write_chunk",
    "write_prefix",
]

#: ``Upload-Block-Checksums`` algorithms → digest bytes per block: the block's sha256, whole or
#: its first 16 or 8 bytes. Truncated digests only decide which received blocks to keep after a
#: cut (a false match costs a restart at the manifest check, never a wrong file), and on 2G
#: every header byte counts: 8 bytes per 2 KiB block is 0.4 %, 32 bytes would be 1.6 %.
BLOCK_ALGORITHMS = {"sha256": 32, "sha256-128": 16, "sha256-64": 8}
MIN_BLOCK_BYTES = 1024
#: Digests per PATCH: 256 full sha256 digests are 11 KB of base64, inside uvicorn's (h11's)
#: 16 KiB bound on a request's headers.
MAX_BLOCKS = 256


@dataclass(frozen=True)
class UploadCreate:
    attachment_id: uuid.UUID
    report_id: uuid.UUID
    sha256: str
    length: int


@dataclass(frozen=True)
class UploadStatus:
    attachment_id: uuid.UUID
    offset: int
    length: int
    expires_at: datetime | None
    complete: bool


def parse_metadata(header: str | None, length_header: str | None) -> UploadCreate:
    """``Upload-Metadata: key base64,key base64`` and ``Upload-Length`` → what to create."""
    if not header:
        raise MalformedRequestError.on("header:Upload-Metadata", "is required")
    values: dict[str, str] = {}
    for pair in header.split(","):
        key, _, encoded = pair.strip().partition(" ")
        try:
            values[key] = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise MalformedRequestError.on(
                "header:Upload-Metadata", f"the value of {key!r} is not base64 text"
            ) from None
    missing = [k for k in ("attachment_id", "report_id", "sha256") if k not in values]
    if missing:
        raise MalformedRequestError.on("header:Upload-Metadata", f"missing {', '.join(missing)}")
    try:
        attachment_id = uuid.UUID(values["attachment_id"])
        report_id = uuid.UUID(values["report_id"])
    except ValueError:
        raise MalformedRequestError.on(
            "header:Upload-Metadata", "attachment_id and report_id must be UUIDs"
        ) from None
    sha = values["sha256"].lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise MalformedRequestError.on("header:Upload-Metadata", "sha256 must be 64 hex digits")
    try:
        length = int(length_header or "")
    except ValueError:
        raise MalformedRequestError.on("header:Upload-Length", "must be a byte count") from None
    if length < 0:
        raise MalformedRequestError.on("header:Upload-Length", "must not be negative")
    return UploadCreate(attachment_id, report_id, sha, length)


def parse_checksum(header: str | None) -> bytes:
    """``Upload-Checksum: sha256 <base64 digest>`` → the digest."""
    if not header:
        raise MalformedRequestError.on("header:Upload-Checksum", "is required (sha256 <base64>)")
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm.lower() != "sha256":
        raise MalformedRequestError.on("header:Upload-Checksum", "only sha256 is supported")
    try:
        digest = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        digest = b""
    if len(digest) != 32:
        raise MalformedRequestError.on("header:Upload-Checksum", "is not a base64 sha256 digest")
    return digest


@dataclass(frozen=True)
class BlockChecksums:
    """``Upload-Block-Size`` and ``Upload-Block-Checksums`` of one PATCH: the chunk cut into
    blocks of ``block_bytes`` (the last may be shorter), a digest for each."""

    block_bytes: int
    digest_bytes: int
    digests: tuple[bytes, ...]

    def matches(self, index: int, block: bytes) -> bool:
        return hashlib.sha256(block).digest()[: self.digest_bytes] == self.digests[index]


def parse_block_checksums(
    size_header: str | None, checksums_header: str | None, *, content_length: int | None
) -> BlockChecksums | None:
    """The block checksums of a PATCH, or None when it has none (a client before them)."""
    if size_header is None and checksums_header is None:
        return None
    if size_header is None or checksums_header is None:
        missing = "Upload-Block-Size" if size_header is None else "Upload-Block-Checksums"
        raise MalformedRequestError.on(
            f"header:{missing}", "is required with Upload-Block-Size / Upload-Block-Checksums"
        )
    try:
        block_bytes = int(size_header)
    except ValueError:
        block_bytes = 0
    if block_bytes < MIN_BLOCK_BYTES:
        raise MalformedRequestError.on(
            "header:Upload-Block-Size", f"must be a byte count of at least {MIN_BLOCK_BYTES}"
        )
    algorithm, _, encoded = checksums_header.strip().partition(" ")
    digest_bytes = BLOCK_ALGORITHMS.get(algorithm.lower())
    if digest_bytes is None:
        raise MalformedRequestError.on(
            "header:Upload-Block-Checksums",
            f"the algorithm must be one of {', '.join(BLOCK_ALGORITHMS)}",
        )
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        raw = b""
    count, extra = divmod(len(raw), digest_bytes)
    if not raw or extra or count > MAX_BLOCKS:
        raise MalformedRequestError.on(
            "header:Upload-Block-Checksums",
            f"must be base64 of 1 to {MAX_BLOCKS} concatenated {digest_bytes}-byte digests",
        )
    if content_length is not None and count != max(1, -(-content_length // block_bytes)):
        # The body is not the one the digests were made for (a middlebox re-framed a cut
        # body): no prefix can be trusted, so it is a plain PATCH, and Upload-Checksum decides
        # (460 for a damaged chunk, which the client sends again).
        return None
    digests = tuple(raw[i : i + digest_bytes] for i in range(0, len(raw), digest_bytes))
    return BlockChecksums(block_bytes, digest_bytes, digests)


def _partial_path(settings: Settings, attachment_id: uuid.UUID) -> Path:
    return settings.attachments_dir / "partial" / attachment_id.hex


def _complete_path(settings: Settings, sha256: str) -> Path:
    return settings.attachments_dir / sha256[:2] / sha256


def _locked(session: Session, attachment_id: uuid.UUID) -> Attachment | None:
    return session.scalars(
        select(Attachment).where(Attachment.id == attachment_id).with_for_update()
    ).one_or_none()


def _visible(
    session: Session, ctx: DeviceContext, attachment: Attachment | None, attachment_id: uuid.UUID
) -> Attachment:
    """The attachment, if its report is one the device's user may read in full, or wrote: an
    officer's own sensitive report (shown to them redacted) must still get its photos out."""
    report = session.get(Report, attachment.report_id) if attachment is not None else None
    own = report is not None and report.created_by_user_id == ctx.actor.user_id
    if (
        attachment is None
        or report is None
        or not (own or reports.detail(ctx.actor, report) is Detail.FULL)
    ):
        raise NotFoundError(
            f"Attachment {attachment_id} is not in any report you sent: push the report (its "
            "attachment manifest) first."
        )
    return attachment


def _expire_if_due(session: Session, settings: Settings, attachment: Attachment) -> bool:
    """Discard an unfinished upload past its expiry; True if it was."""
    if (
        attachment.state is AttachmentState.PARTIAL
        and attachment.upload_expires_at is not None
        and attachment.upload_expires_at <= utcnow()
    ):
        _partial_path(settings, attachment.id).unlink(missing_ok=True)
        attachment.state = AttachmentState.EXPECTED
        attachment.received_bytes = 0
        attachment.upload_expires_at = None
        session.flush()
        return True
    return False


def discard_expired(session: Session, settings: Settings) -> int:
    """Housekeeping: discard every unfinished upload past its expiry (their bytes are on the
    device still; a later create starts again from 0). Returns how many."""
    due = session.scalars(
        select(Attachment)
        .where(
            Attachment.state == AttachmentState.PARTIAL,
            Attachment.upload_expires_at <= utcnow(),
        )
        .with_for_update()
    ).all()
    return sum(_expire_if_due(session, settings, attachment) for attachment in due)


def _status(attachment: Attachment) -> UploadStatus:
    return UploadStatus(
        attachment_id=attachment.id,
        offset=attachment.received_bytes,
        length=attachment.size_bytes,
        expires_at=attachment.upload_expires_at,
        complete=attachment.state is AttachmentState.COMPLETE,
    )


def create(
    session: Session, ctx: DeviceContext, settings: Settings, request: UploadCreate
) -> tuple[UploadStatus, bool]:
    """Start (or find) the upload of an announced attachment: ``(status, created)``."""
    if request.length > settings.sync.max_attachment_bytes:
        raise PayloadTooLargeError(
            f"Attachments may be at most {settings.sync.max_attachment_bytes} bytes."
        )
    attachment = _visible(
        session, ctx, _locked(session, request.attachment_id), request.attachment_id
    )
    if attachment.report_id != request.report_id or (
        attachment.sha256.lower(),
        attachment.size_bytes,
    ) != (request.sha256, request.length):
        raise ConflictError(
            f"Attachment {attachment.id} was announced with another report, length or sha256; "
            "a changed file needs a new attachment id and a new manifest op."
        )
    _expire_if_due(session, settings, attachment)
    if attachment.state is not AttachmentState.EXPECTED:
        return _status(attachment), False
    path = _partial_path(settings, attachment.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        os.fsync(handle.fileno())
    attachment.state = AttachmentState.PARTIAL
    attachment.received_bytes = 0
    attachment.upload_expires_at = utcnow() + timedelta(days=settings.sync.upload_expiry_days)
    session.flush()
    if attachment.size_bytes == 0:
        _complete(session, ctx, settings, attachment)
    return _status(attachment), True


def status(
    session: Session, ctx: DeviceContext, settings: Settings, attachment_id: uuid.UUID
) -> UploadStatus:
    attachment = _visible(session, ctx, session.get(Attachment, attachment_id), attachment_id)
    if _expire_if_due(session, settings, attachment):
        raise UploadExpiredError(
            "This unfinished upload expired and was discarded; create it again and send from "
            "byte 0."
        )
    if attachment.state is AttachmentState.EXPECTED:
        raise NotFoundError(f"No upload of attachment {attachment_id} has been started.")
    return _status(attachment)


def _writable(
    session: Session,
    ctx: DeviceContext,
    settings: Settings,
    *,
    attachment_id: uuid.UUID,
    offset: int,
    length: int,
) -> Attachment:
    """The attachment, locked, if ``length`` bytes may be written at ``offset`` now."""
    attachment = _visible(session, ctx, _locked(session, attachment_id), attachment_id)
    if attachment.state is AttachmentState.COMPLETE:
        raise UploadOffsetMismatchError(
            "This attachment is complete and can never be changed.", offset=attachment.size_bytes
        )
    if _expire_if_due(session, settings, attachment):
        raise UploadExpiredError(
            "This unfinished upload expired and was discarded; create it again and send from "
            "byte 0."
        )
    if attachment.state is AttachmentState.EXPECTED:
        raise NotFoundError(f"No upload of attachment {attachment_id} has been started.")
    if offset != attachment.received_bytes:
        raise UploadOffsetMismatchError(
            f"The upload is at byte {attachment.received_bytes}, not {offset}: ask (HEAD) and "
            "resume from there.",
            offset=attachment.received_bytes,
        )
    if length > settings.sync.max_chunk_bytes:
        raise PayloadTooLargeError(f"Chunks may be at most {settings.sync.max_chunk_bytes} bytes.")
    if offset + length > attachment.size_bytes:
        raise PayloadTooLargeError(
            f"This chunk would take the upload past its announced length of "
            f"{attachment.size_bytes} bytes."
        )
    return attachment


def _store(
    session: Session,
    ctx: DeviceContext,
    settings: Settings,
    attachment: Attachment,
    offset: int,
    data: bytes,
) -> UploadStatus:
    path = _partial_path(settings, attachment.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("r+b" if path.exists() else "wb") as handle:
        handle.seek(offset)
        handle.write(data)
        handle.truncate()
        handle.flush()
        os.fsync(handle.fileno())
    attachment.received_bytes = offset + len(data)
    session.flush()
    if attachment.received_bytes == attachment.size_bytes:
        _complete(session, ctx, settings, attachment)
    return _status(attachment)


def write_chunk(
    session: Session,
    ctx: DeviceContext,
    settings: Settings,
    *,
    attachment_id: uuid.UUID,
    offset: int,
    checksum: bytes,
    chunk: bytes,
) -> UploadStatus:
    """Store one chunk at ``offset``; on the last one, verify the whole file and complete it."""
    attachment = _writable(
        session, ctx, settings, attachment_id=attachment_id, offset=offset, length=len(chunk)
    )
    if hashlib.sha256(chunk).digest() != checksum:
        raise ChecksumMismatchError(
            "The chunk arrived damaged (its sha256 does not match Upload-Checksum); nothing was "
            "stored. Send it again."
        )
    return _store(session, ctx, settings, attachment, offset, chunk)


def write_prefix(
    session: Session,
    ctx: DeviceContext,
    settings: Settings,
    *,
    attachment_id: uuid.UUID,
    offset: int,
    blocks: BlockChecksums,
    declared_length: int | None,
    received: bytes,
) -> UploadStatus | None:
    """A PATCH whose body stopped early: keep its complete blocks at ``offset``, up to the first
    that does not match its digest (that one and all after it are dropped). The checks are the
    whole chunk's (offset, expiry, the announced length), with the length the request declared
    (``Content-Length``; without one, what is kept), so a cut request can never put a byte
    where a whole one could not. None when no block was kept."""
    kept = 0
    for index in range(len(blocks.digests)):
        block = received[kept : kept + blocks.block_bytes]
        if len(block) < blocks.block_bytes or not blocks.matches(index, block):
            break
        kept += len(block)
    if kept == 0:
        return None
    attachment = _writable(
        session,
        ctx,
        settings,
        attachment_id=attachment_id,
        offset=offset,
        length=kept if declared_length is None else declared_length,
    )
    return _store(session, ctx, settings, attachment, offset, received[:kept])


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _complete(
    session: Session, ctx: DeviceContext, settings: Settings, attachment: Attachment
) -> None:
    partial = _partial_path(settings, attachment.id)
    if not partial.exists():
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.touch()
    if _file_sha256(partial) != attachment.sha256.lower():
        partial.unlink(missing_ok=True)
        attachment.state = AttachmentState.EXPECTED
        attachment.received_bytes = 0
        attachment.upload_expires_at = None
        session.flush()
        audit.record(
            session,
            actor=ctx.actor,
            action="attachment_hash_mismatch",
            object_type="attachment",
            object_id=attachment.id,
        )
        raise AttachmentHashMismatchError(
            "The uploaded file does not match the sha256 in the report's manifest, so it was "
            "discarded. If the file on the device is intact, upload it again from byte 0."
        )
    final = _complete_path(settings, attachment.sha256.lower())
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(partial, final)
    attachment.state = AttachmentState.COMPLETE
    attachment.storage_key = str(final.relative_to(settings.attachments_dir))
    attachment.completed_at = utcnow()
    attachment.upload_expires_at = None
    report = session.get(Report, attachment.report_id)
    assert report is not None
    report.version += 1
    report.updated_at = utcnow()
    session.flush()
    changes.note_change(session, report_id=report.id, version=report.version)
    audit.record(
        session,
        actor=ctx.actor,
        action="attachment_received",
        object_type="attachment",
        object_id=attachment.id,
        details={"report_id": str(report.id), "bytes": attachment.size_bytes},
    )
