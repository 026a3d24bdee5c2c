"""Sync v1 on the server: hello, push (the op ledger and per-device order), pull (the
commit-ordered change log, filtered by the access policy), clock offsets.

Push follows SYNC.md §4.3 per op, each op in its own savepoint of the request's transaction:

1. lock the device's cursor row (serialises one device's ops, even across connections);
2. a known ``op_id`` with the same fingerprint is a ``duplicate`` answered with the stored
   result; with another fingerprint it is ``rejected: idempotency_mismatch`` (nothing written);
3. a ``device_seq`` at or below the cursor with an unknown op is ``rejected: device_seq_reused``;
   above cursor + 1 it is ``deferred`` (an earlier op is missing; nothing written);
4. otherwise the op is applied through the same services the REST API uses (so a pushed report
   enters the same pipeline: incidents, hotspots, alerts), and its result and the new cursor are
   written in the same transaction. The response is sent only after commit.

Ops that no longer validate (an old schema, a date years ahead) are quarantined, never
rejected: ``applied`` with ``quarantined: true``, kept for HQ to fix.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from mobile_sync.protocol.models import (
    PROTOCOL_VERSION,
    Change,
    ChangeKind,
    ClockProbe,
    Hello,
    Op,
    OpError,
    OpHeader,
    OpKind,
    OpResult,
    OpStatus,
    PullResponse,
    PushRequest,
    PushResponse,
    payload_sha256,
)
from server.access.policy import Actor, Detail
from server.audit import service as audit
from server.db.base import utcnow
from server.devices.models import Device
from server.errors import (
    ConflictError,
    CursorExpiredError,
    IdempotencyConflictError,
    InvalidTransitionError,
    MalformedRequestError,
    NotFoundError,
    PermissionDeniedError,
    ValidationFailedError,
)
from server.patrols import service as patrols
from server.patrols.schemas import TrackAppend
from server.reports import service as reports
from server.reports.enums import ReportOrigin, VerificationState
from server.reports.models import Attachment, Report, ReportRevision, ReportVerification
from server.reports.schemas import AttachmentManifestItem, ReportCreate, ReportUpdate
from server.settings import Settings, SyncSettings
from server.sync import changes
from server.sync.models import (
    Change as ChangeRow,
)
from server.sync.models import (
    ClockSample,
    DeviceCursor,
    DeviceReportView,
    QuarantinedOp,
    ReportNote,
    SealedBlob,
    SyncOp,
    SyncState,
)
from server.sync.schemas import (
    NoteRead,
    OpRecord,
    QuarantineRead,
    ReportHistory,
    RevisionRead,
    SealedBlobRead,
    StatusStepRead,
)

__all__ = [
    "DeviceContext",
    "hello",
    "history",
    "new_epoch",
    "prune_tombstones",
    "pull",
    "push",
]

#: Clock offsets beyond this make a capture time doubtful (SYNC.md §4.8).
CLOCK_FLAG_MS = 5 * 60 * 1000


@dataclass(frozen=True)
class DeviceContext:
    """The authenticated device, its user as an access-policy actor, and what the request said
    about the device clock."""

    device: Device
    actor: Actor
    device_time_ms: int
    device_uptime_ms: int
    boot_id: uuid.UUID
    server_received_ms: int


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


# --------------------------------------------------------------------------- epoch and cursors


def current_epoch(session: Session) -> uuid.UUID:
    state = session.get(SyncState, 1)
    if state is None:
        state = SyncState(id=1, epoch=uuid.uuid4(), last_change_seq=0)
        session.add(state)
        session.flush()
    return state.epoch


def new_epoch(session: Session) -> uuid.UUID:
    """After a restore from backup: every device's cursor becomes invalid (410 → replacement
    sync, which keeps and re-pushes the device's outbox)."""
    state = session.get(SyncState, 1)
    epoch = uuid.uuid4()
    if state is None:
        session.add(SyncState(id=1, epoch=epoch, last_change_seq=0))
    else:
        state.epoch = epoch
        state.changed_at = utcnow()
    session.flush()
    return epoch


@dataclass(frozen=True)
class Cursor:
    """Where a device's pull stands: the server epoch, the last seq it was given, and how far
    tombstones had been pruned when the cursor was issued (``pruned_mark``). Opaque to devices."""

    epoch: uuid.UUID
    seq: int
    pruned_mark: int


def encode_cursor(cursor: Cursor) -> str:
    raw = cursor.epoch.bytes + cursor.seq.to_bytes(8, "big") + cursor.pruned_mark.to_bytes(8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValidationFailedError.on("query:cursor", "is not a cursor this server issued")
    return Cursor(
        uuid.UUID(bytes=raw[:16]),
        int.from_bytes(raw[16:24], "big"),
        int.from_bytes(raw[24:], "big"),
    )


# --------------------------------------------------------------------------- hello


def hello(session: Session, ctx: DeviceContext, settings: SyncSettings) -> Hello:
    return Hello(
        protocol_versions=[PROTOCOL_VERSION],
        min_client_version=settings.min_client_version,
        max_batch_bytes=settings.max_batch_bytes,
        max_batch_ops=settings.max_batch_ops,
        max_chunk_bytes=settings.max_chunk_bytes,
        max_attachment_bytes=settings.max_attachment_bytes,
        upload_expiry_s=settings.upload_expiry_days * 86_400,
        key_bundle_version=0,
        server_time_ms=now_ms(),
        tombstone_horizon_s=settings.tombstone_horizon_days * 86_400,
        epoch=str(current_epoch(session)),
    )


# --------------------------------------------------------------------------- clock


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


def _nearest_sample(session: Session, ctx: DeviceContext, op: Op) -> ClockSample | None:
    """The device's clock sample of the op's boot nearest to it in uptime: the wall clock may
    have been changed in between, the uptime cannot have been."""
    return session.scalars(
        select(ClockSample)
        .where(ClockSample.device_id == ctx.device.id, ClockSample.boot_id == op.boot_id)
        .order_by(func.abs(ClockSample.device_uptime_ms - op.device_uptime_ms), ClockSample.id)
        .limit(1)
    ).one_or_none()


def corrected_capture(session: Session, ctx: DeviceContext, op: Op) -> CaptureTime:
    """An op's capture time: as the device clock said, and corrected by the offset measured in
    the same boot. Without such a sample (the phone restarted before it synced) it stays
    uncorrected and flagged. Display only: never used for ordering (I10)."""
    device_time = datetime.fromtimestamp(op.device_time_ms / 1000, UTC)
    sample = _nearest_sample(session, ctx, op)
    if sample is None:
        return CaptureTime(device_time, None, None, "no_clock_sample")
    corrected = datetime.fromtimestamp((op.device_time_ms + sample.offset_ms) / 1000, UTC)
    flag = "clock_offset" if abs(sample.offset_ms) > CLOCK_FLAG_MS else None
    return CaptureTime(device_time, corrected, (sample.rtt_ms + 1) // 2, flag)


# --------------------------------------------------------------------------- push


def _cursor_locked(session: Session, device_id: uuid.UUID) -> DeviceCursor:
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    session.execute(
        module.insert(DeviceCursor)
        .values(device_id=device_id, last_seq=0)
        .on_conflict_do_nothing(index_elements=["device_id"])
    )
    cursor = session.scalars(
        select(DeviceCursor).where(DeviceCursor.device_id == device_id).with_for_update()
    ).one()
    session.refresh(cursor)
    return cursor


def _result(op: Op | OpHeader, status: OpStatus, **fields: Any) -> OpResult:
    return OpResult(
        op_id=op.op_id, device_seq=op.device_seq, status=status, report_id=op.report_id, **fields
    )


def _rejected(op: Op | OpHeader, code: str, detail: str) -> OpResult:
    return _result(op, OpStatus.REJECTED, error=OpError(code=code, detail=detail))


def _kind_name(header: OpHeader) -> str:
    """The op's kind for the ledger: a known kind, or "unknown" (never client text as is)."""
    kind = getattr(header, "kind", None)
    return kind if isinstance(kind, str) and kind in OpKind._value2member_map_ else "unknown"


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def parse_ops(raw_ops: list[dict[str, Any]]) -> list[tuple[OpHeader, Op | OpResult]]:
    """Each op's header, and the op itself or the rejection it earns. An op without a readable
    header cannot be answered at all: that is a malformed envelope (400)."""
    parsed: list[tuple[OpHeader, Op | OpResult]] = []
    for index, raw in enumerate(raw_ops):
        try:
            header = OpHeader.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first.get("loc", ()))
            raise MalformedRequestError.on(f"ops.{index}.{field}", str(first.get("msg"))) from None
        if _holds_nul(raw):
            # PostgreSQL cannot store NUL in text or jsonb; refused on both backends alike.
            detail = "text may not contain the NUL character (\\u0000)"
            parsed.append((header, _rejected(header, "invalid_op", detail)))
            continue
        try:
            parsed.append((header, Op.model_validate(raw)))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first.get("loc", ()))
            if field == "kind":
                known = ", ".join(k.value for k in OpKind)
                result = _rejected(
                    header, "unknown_kind", f"kind {raw.get('kind')!r} is not one of: {known}"
                )
            else:
                result = _rejected(header, "invalid_op", f"{field}: {first.get('msg')}")
            parsed.append((header, result))
    # Strict per-device order (I4): apply in device_seq order whatever order they came in.
    parsed.sort(key=lambda item: item[0].device_seq)
    return parsed


def push(
    session: Session, ctx: DeviceContext, request: PushRequest, settings: Settings
) -> PushResponse:
    record_clock(session, ctx, request.previous_exchange)
    results = [
        _process(session, ctx, header, op, settings) for header, op in parse_ops(request.ops)
    ]
    return PushResponse(batch_id=request.batch_id, results=results, server_time_ms=now_ms())


def _process(
    session: Session,
    ctx: DeviceContext,
    header: OpHeader,
    op: Op | OpResult,
    settings: Settings,
) -> OpResult:
    if header.device_id != ctx.device.id:
        return _rejected(header, "wrong_device", "the op names another device than the credential")
    cursor = _cursor_locked(session, ctx.device.id)
    existing = session.get(SyncOp, header.op_id)
    if existing is not None:
        if existing.payload_sha256 == header.payload_sha256:
            stored = OpResult.model_validate(existing.result)
            if stored.status in (OpStatus.APPLIED, OpStatus.CONFLICT_FLAGGED):
                return stored.model_copy(
                    update={"status": OpStatus.DUPLICATE, "original_status": stored.status}
                )
            return stored
        return _rejected(
            header, "idempotency_mismatch", "this op id was already used with a different payload"
        )
    if header.device_seq <= cursor.last_seq:
        return _rejected(
            header,
            "device_seq_reused",
            f"device_seq {header.device_seq} was already used by another op",
        )
    if header.device_seq > cursor.last_seq + 1:
        return _result(header, OpStatus.DEFERRED, expected_device_seq=cursor.last_seq + 1)
    if isinstance(op, OpResult):
        result = op
    elif payload_sha256(op.payload) != op.payload_sha256:
        result = _rejected(op, "payload_hash_mismatch", "payload_sha256 does not match the payload")
    else:
        result = _apply(session, ctx, op, settings)
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    result = result.model_copy(update={"server_received_at": stamp})
    session.add(
        SyncOp(
            op_id=header.op_id,
            device_id=header.device_id,
            device_seq=header.device_seq,
            report_id=header.report_id,
            kind=_kind_name(header),
            payload_sha256=header.payload_sha256,
            result=result.model_dump(mode="json"),
        )
    )
    cursor.last_seq = header.device_seq
    session.flush()
    return result


def _apply(session: Session, ctx: DeviceContext, op: Op, settings: Settings) -> OpResult:
    handler = _HANDLERS[op.kind]
    try:
        with session.begin_nested():
            return handler(session, ctx, op, settings)
    except OperationalError:
        raise  # the database is unreachable: fail the batch, the device retries it unchanged
    except _QuarantineError as exc:
        return _quarantine(session, ctx, op, exc.reason)
    except NotFoundError as exc:
        return _rejected(op, "not_found", exc.message)
    except PermissionDeniedError as exc:
        return _rejected(op, "forbidden", exc.message)
    except InvalidTransitionError as exc:
        return _rejected(op, "invalid_transition", exc.message)
    except IdempotencyConflictError as exc:
        return _rejected(op, "report_id_conflict", exc.message)
    except ConflictError as exc:
        return _rejected(op, "conflict", exc.message)
    except _GoneError:
        return _result(
            op, OpStatus.GONE, error=OpError(code="gone", detail="the report was removed by HQ")
        )
    except ValidationFailedError as exc:
        return _quarantine(session, ctx, op, exc.message)
    except Exception as exc:  # never strand an op on the device: keep it for HQ
        return _quarantine(session, ctx, op, f"could not be applied ({type(exc).__name__})")


class _QuarantineError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _GoneError(Exception):
    pass


def _quarantine(session: Session, ctx: DeviceContext, op: Op, reason: str) -> OpResult:
    if session.get(QuarantinedOp, op.op_id) is None:
        session.add(
            QuarantinedOp(
                op_id=op.op_id,
                device_id=op.device_id,
                report_id=op.report_id,
                kind=op.kind.value,
                reason=reason[:2000],
                payload=op.payload,
                schema_version=op.schema_version,
            )
        )
        audit.record(
            session,
            actor=ctx.actor,
            action="sync_op_quarantined",
            object_type="report",
            object_id=op.report_id,
            details={"op_id": str(op.op_id), "kind": op.kind.value},
        )
    return _result(
        op,
        OpStatus.APPLIED,
        quarantined=True,
        error=OpError(code="quarantined", detail=reason[:500]),
    )


def _report_for(session: Session, ctx: DeviceContext, op: Op) -> Report:
    report = session.get(Report, op.report_id)
    if report is not None and report.deleted_at is not None:
        raise _GoneError
    if report is None or reports.detail(ctx.actor, report) is Detail.HIDDEN:
        raise NotFoundError(f"report {op.report_id} does not exist or is not visible to you")
    return report


def _applied(op: Op, report: Report, conflict: bool = False) -> OpResult:
    status = OpStatus.CONFLICT_FLAGGED if conflict else OpStatus.APPLIED
    return _result(op, status, version=report.version)


def _create(session: Session, ctx: DeviceContext, op: Op, settings: Settings) -> OpResult:
    existing = session.get(Report, op.report_id)
    if existing is not None and existing.deleted_at is not None:
        raise _GoneError
    body = {k: v for k, v in op.payload.items() if k != "sealed"}
    try:
        report_in = ReportCreate.model_validate({**body, "id": str(op.report_id)})
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid"}
        field = ".".join(str(p) for p in first.get("loc", ())) or "payload"
        raise _QuarantineError(f"{field}: {first.get('msg')}") from None
    tolerance = timedelta(minutes=settings.mission.future_tolerance_minutes)
    if report_in.occurred_at > utcnow() + tolerance:
        # The form defaulted the time from a clock running ahead: correct it by that clock's
        # measured offset (same boot), or hold the report for HQ rather than guess.
        sample = _nearest_sample(session, ctx, op)
        if sample is not None:
            corrected = report_in.occurred_at + timedelta(milliseconds=sample.offset_ms)
            if corrected <= utcnow() + tolerance:
                report_in = report_in.model_copy(update={"occurred_at": corrected})
        if report_in.occurred_at > utcnow() + tolerance:
            raise _QuarantineError(
                f"occurred_at {report_in.occurred_at.isoformat()} is in the future; the device "
                "clock is probably wrong"
            )
    report, created = reports.create(
        session=session, report_in=report_in, actor=ctx.actor, mission=settings.mission
    )
    if created:
        capture = corrected_capture(session, ctx, op)
        report.created_by_device_id = ctx.device.id
        report.captured_at_device = capture.device
        report.captured_uptime_ms = op.device_uptime_ms
        report.capture_boot_id = op.boot_id
        report.captured_at_corrected = capture.corrected
        report.capture_uncertainty_ms = capture.uncertainty_ms
        report.capture_time_flag = capture.flag
        sealed = op.payload.get("sealed")
        if sealed:
            _store_sealed(session, report, sealed, op)
        session.flush()
    return _applied(op, report)


def _fields_changed_since(
    session: Session, report: Report, base_version: int, actor: Actor
) -> set[str]:
    """Fields other actors changed after ``base_version`` (from the revision history)."""
    revisions = session.scalars(
        select(ReportRevision).where(
            ReportRevision.report_id == report.id, ReportRevision.version > base_version
        )
    ).all()
    return {
        name
        for revision in revisions
        if revision.actor_user_id != actor.user_id
        for name in revision.previous_values
    }


def _set_fields(session: Session, ctx: DeviceContext, op: Op, settings: Settings) -> OpResult:
    report = _report_for(session, ctx, op)
    fields = op.payload.get("fields")
    if not isinstance(fields, dict) or not fields:
        raise _QuarantineError("payload.fields must be an object with at least one field")
    try:
        update_in = ReportUpdate.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid"}
        raise _QuarantineError(f"fields: {first.get('msg')}") from None
    others = _fields_changed_since(session, report, op.base_version, ctx.actor)
    mine = set(update_in.model_fields_set) - {"version"}
    reports.update(
        session=session,
        report=report,
        report_in=update_in,
        expected_version=report.version,
        actor=ctx.actor,
        mission=settings.mission,
    )
    conflict = bool(mine & others)
    if conflict:
        report.conflict_state = "conflict"
    elif others and report.conflict_state == "none":
        report.conflict_state = "parallel"
    session.flush()
    return _applied(op, report, conflict)


def _status_changed_since(
    session: Session, report: Report, base_version: int, actor: Actor
) -> bool:
    """Whether someone else moved the report's status after the version the device saw."""
    return (
        session.scalar(
            select(ReportVerification.id)
            .where(
                ReportVerification.report_id == report.id,
                ReportVerification.version > base_version,
                ReportVerification.actor_user_id.is_distinct_from(actor.user_id),
            )
            .limit(1)
        )
        is not None
    )


def _transition(session: Session, ctx: DeviceContext, op: Op, settings: Settings) -> OpResult:
    from server.reports.schemas import VerificationRequest

    report = _report_for(session, ctx, op)
    try:
        request = VerificationRequest.model_validate(
            {"to_state": op.payload.get("to_state"), "note": op.payload.get("note")}
        )
    except ValidationError as exc:
        raise _QuarantineError(f"to_state: {exc.errors()[0].get('msg')}") from None
    if request.to_state is VerificationState.WITHDRAWN:
        return _withdraw(session, ctx, op, settings)
    stale = _status_changed_since(session, report, op.base_version, ctx.actor)
    reports.transition(session=session, report=report, request=request, actor=ctx.actor)
    return _applied(op, report, conflict=stale)


def _withdraw(session: Session, ctx: DeviceContext, op: Op, settings: Settings) -> OpResult:
    report = _report_for(session, ctx, op)
    stale = _status_changed_since(session, report, op.base_version, ctx.actor)
    note = op.payload.get("note")
    reports.withdraw(
        session=session,
        report=report,
        actor=ctx.actor,
        note=note if isinstance(note, str) else None,
    )
    return _applied(op, report, conflict=stale)


def _add_note(session: Session, ctx: DeviceContext, op: Op, settings: Settings) -> OpResult:
    report = _report_for(session, ctx, op)
    try:
        note_id = uuid.UUID(str(op.payload.get("note_id")))
    except ValueError:
        raise _QuarantineError("payload.note_id must be a UUID") from None
    text = op.payload.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > 10_000:
        raise _QuarantineError("payload.text must be 1–10,000 characters")
    if session.get(ReportNote, note_id) is None:
        kind = "verification" if op.kind is OpKind.ADD_VERIFICATION else "note"
        session.add(
            ReportNote(
                id=note_id,
                report_id=report.id,
                kind=kind,
                body=text,
                actor_user_id=ctx.actor.user_id,
                device_id=ctx.device.id,
            )
        )
        report.version += 1
        report.updated_at = utcnow()
        session.flush()
        changes.note_change(session, report_id=report.id, version=report.version)
    return _applied(op, report)


def _attach(session: Session, ctx: DeviceContext, op: Op, settings: Settings) -> OpResult:
    report = _report_for(session, ctx, op)
    items = op.payload.get("attachments")
    if not isinstance(items, list) or not items:
        raise _QuarantineError("payload.attachments must list at least one attachment")
    try:
        manifest = [AttachmentManifestItem.model_validate(i) for i in items]
    except ValidationError as exc:
        raise _QuarantineError(f"attachments: {exc.errors()[0].get('msg')}") from None
    added = 0
    for item in manifest:
        stored = session.get(Attachment, item.id)
        if stored is None:
            session.add(reports.attachment_from_manifest(report.id, item))
            added += 1
        elif (stored.report_id, stored.sha256, stored.size_bytes) != (
            report.id,
            item.sha256,
            item.size_bytes,
        ):
            raise ConflictError(f"attachment {item.id} already exists with other content")
    if added:
        report.version += 1
        report.updated_at = utcnow()
        session.flush()
        changes.note_change(session, report_id=report.id, version=report.version)
    return _applied(op, report)


def _store_sealed(session: Session, report: Report, sealed: Any, op: Op) -> bool:
    """Store an opaque sealed payload version; True if it forks an existing one."""
    if not isinstance(sealed, dict):
        raise _QuarantineError("sealed must be an object")
    try:
        ciphertext = base64.b64decode(str(sealed.get("ciphertext_b64", "")), validate=True)
        version = int(sealed["payload_version"])
        parent = sealed.get("parent_version")
        parent = int(parent) if parent is not None else None
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise _QuarantineError("sealed needs payload_version and base64 ciphertext_b64") from None
    if not ciphertext:
        raise _QuarantineError("sealed.ciphertext_b64 is empty")
    manifest = sealed.get("manifest") if isinstance(sealed.get("manifest"), dict) else {}
    same_version = session.scalars(
        select(SealedBlob).where(
            SealedBlob.report_id == report.id, SealedBlob.payload_version == version
        )
    ).one_or_none()
    if same_version is not None:
        if same_version.ciphertext != ciphertext:
            raise ConflictError(f"sealed payload version {version} already exists")
        return False
    fork = (
        parent is not None
        and session.scalar(
            select(SealedBlob.id)
            .where(SealedBlob.report_id == report.id, SealedBlob.parent_version == parent)
            .limit(1)
        )
        is not None
    )
    session.add(
        SealedBlob(
            report_id=report.id,
            payload_version=version,
            parent_version=parent,
            ciphertext=ciphertext,
            manifest=manifest,
            op_id=op.op_id,
        )
    )
    session.flush()
    return fork


def _seal_update(session: Session, ctx: DeviceContext, op: Op, settings: Settings) -> OpResult:
    report = _report_for(session, ctx, op)
    fork = _store_sealed(session, report, op.payload, op)
    if fork:
        report.conflict_state = "conflict"
    report.version += 1
    report.updated_at = utcnow()
    session.flush()
    changes.note_change(session, report_id=report.id, version=report.version)
    return _applied(op, report, conflict=fork)


def _track_append(session: Session, ctx: DeviceContext, op: Op, settings: Settings) -> OpResult:
    try:
        body = TrackAppend.model_validate(op.payload)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid"}
        field = ".".join(str(p) for p in first.get("loc", ())) or "payload"
        raise _QuarantineError(f"{field}: {first.get('msg')}") from None
    patrols.append_track(
        session,
        patrol_id=op.report_id,
        body=body,
        actor=ctx.actor,
        mission=settings.mission,
        device_id=ctx.device.id,
    )
    return _result(op, OpStatus.APPLIED)


_HANDLERS = {
    OpKind.CREATE: _create,
    OpKind.SET_FIELDS: _set_fields,
    OpKind.TRANSITION_STATUS: _transition,
    OpKind.ADD_NOTE: _add_note,
    OpKind.ADD_VERIFICATION: _add_note,
    OpKind.ATTACH: _attach,
    OpKind.WITHDRAW: _withdraw,
    OpKind.SEAL_UPDATE: _seal_update,
    OpKind.TRACK_APPEND: _track_append,
}


# --------------------------------------------------------------------------- pull


def pull(session: Session, ctx: DeviceContext, cursor: str | None, limit: int) -> PullResponse:
    """Changes after ``cursor`` the device's user may see, oldest first.

    A report the device was sent before and may no longer see comes as ``revoke`` (hidden) or as
    ``revoke`` with its redacted form (its sensitivity was raised); a removed report comes as
    ``tombstone``. Reports the device never saw and may not see are skipped without a trace.
    Dataset imports (UCDP, ACLED) are context for analysts and are not synced to devices.
    """
    epoch = current_epoch(session)
    state = session.get(SyncState, 1)
    pruned = state.pruned_through_seq if state is not None else 0
    after = 0
    if cursor:
        given = decode_cursor(cursor)
        if given.epoch != epoch:
            raise CursorExpiredError(
                "The server was restored or reset: start a replacement sync (keep your outbox)."
            )
        # Tombstones pruned since this cursor was issued, after its seq, may never have
        # reached the device. Pruning that happened before (a fresh pull's later pages) or that
        # only touched seqs the device had already passed loses nothing.
        if pruned > given.pruned_mark and given.seq < pruned:
            raise CursorExpiredError(
                "Your last sync is older than the server keeps removals for: start a "
                "replacement sync (keep your outbox)."
            )
        after = given.seq
    rows = session.scalars(
        select(ChangeRow).where(ChangeRow.seq > after).order_by(ChangeRow.seq).limit(limit + 1)
    ).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    out: list[Change] = []
    for row in rows:
        change = _change_for(session, ctx, row, after)
        if change is not None:
            out.append(change)
    last = rows[-1].seq if rows else after
    if not has_more:
        last = max(last, pruned)  # nothing at or below a pruned seq is left to send
    return PullResponse(
        changes=out,
        next_cursor=encode_cursor(Cursor(epoch, last, pruned)),
        has_more=has_more,
        server_time_ms=now_ms(),
    )


def prune_tombstones(
    session: Session, settings: SyncSettings, *, now: datetime | None = None
) -> int:
    """Drop tombstone rows older than the horizon (their reports stay on record). A cursor from
    before the newest pruned one could have missed a removal, so it gets 410 from then on."""
    horizon = (now or utcnow()) - timedelta(days=settings.tombstone_horizon_days)
    doomed = session.scalars(
        select(ChangeRow.seq).where(
            ChangeRow.kind == changes.TOMBSTONE, ChangeRow.committed_at < horizon
        )
    ).all()
    if not doomed:
        return 0
    state = session.get(SyncState, 1)
    assert state is not None, "migration 0004 creates the sync_state row"
    state.pruned_through_seq = max(state.pruned_through_seq, max(doomed))
    session.execute(delete(ChangeRow).where(ChangeRow.seq.in_(doomed)))
    session.flush()
    return len(doomed)


def _record(ctx: DeviceContext, session: Session, report: Report, detail: Detail) -> dict[str, Any]:
    view = reports.to_view(session=session, actor=ctx.actor, report=report)
    record = view.model_dump(mode="json")
    if detail is Detail.FULL:
        notes = session.scalars(
            select(ReportNote)
            .where(ReportNote.report_id == report.id)
            .order_by(ReportNote.created_at, ReportNote.id)
        ).all()
        record["notes"] = [
            {
                "id": str(n.id),
                "kind": n.kind,
                "body": n.body,
                "created_at": n.created_at.isoformat(),
            }
            for n in notes
        ]
    return record


#: DeviceReportView.detail once the device was told its copy is gone.
_HIDDEN, _GONE = "hidden", "gone"


def _removal(
    view: DeviceReportView | None, row: ChangeRow, after: int, report: Report, state: str
) -> Change | None:
    """A tombstone or revoke for a device that holds (or may still hold) the report: sent until
    the device pulls with a cursor past it, so a lost answer cannot lose the removal."""
    if view is None:
        return None  # never sent: nothing to take back, and no trace that it exists
    if view.detail == state and view.revoked_seq is not None and view.revoked_seq <= after:
        return None  # the device's cursor shows it already has this removal
    view.detail, view.revoked_seq, view.version = state, row.seq, report.version
    kind = ChangeKind.TOMBSTONE if state == _GONE else ChangeKind.REVOKE
    return Change(seq=row.seq, kind=kind, report_id=report.id, version=report.version)


def _change_for(session: Session, ctx: DeviceContext, row: ChangeRow, after: int) -> Change | None:
    report = session.get(Report, row.report_id)
    if report is None or report.origin is not ReportOrigin.FIELD:
        return None
    view = session.get(DeviceReportView, (ctx.device.id, report.id))
    if row.kind == changes.TOMBSTONE or report.deleted_at is not None:
        return _removal(view, row, after, report, _GONE)
    detail = reports.detail(ctx.actor, report)
    if detail is Detail.HIDDEN:
        return _removal(view, row, after, report, _HIDDEN)
    kind = ChangeKind.UPSERT
    downgraded = view is not None and (
        view.detail == Detail.FULL.value
        # told before, but maybe lost: keep saying it until the cursor covers it
        or (view.revoked_seq is not None and view.revoked_seq > after)
    )
    if downgraded and detail is Detail.REDACTED:
        kind = ChangeKind.REVOKE  # the device must drop its full copy and keep only this
    record = _record(ctx, session, report, detail)
    if view is None:
        view = DeviceReportView(device_id=ctx.device.id, report_id=report.id)
        session.add(view)
    view.version, view.detail = report.version, detail.value
    view.revoked_seq = row.seq if kind is ChangeKind.REVOKE else None
    return Change(
        seq=row.seq, kind=kind, report_id=report.id, version=report.version, record=record
    )


def history(session: Session, actor: Actor, report: Report) -> ReportHistory:
    """Everything HQ needs to review a report's offline edits: versions, status steps, notes,
    sealed versions (their fork tree, never their bytes), and the ops that made them."""
    if reports.detail(actor, report) is not Detail.FULL:
        raise PermissionDeniedError("A report's history is shown only to those who may read it.")
    revisions = session.scalars(
        select(ReportRevision)
        .where(ReportRevision.report_id == report.id)
        .order_by(ReportRevision.version)
    ).all()
    steps = session.scalars(
        select(ReportVerification)
        .where(ReportVerification.report_id == report.id)
        .order_by(ReportVerification.at, ReportVerification.id)
    ).all()
    notes = session.scalars(
        select(ReportNote)
        .where(ReportNote.report_id == report.id)
        .order_by(ReportNote.created_at, ReportNote.id)
    ).all()
    blobs = session.scalars(
        select(SealedBlob)
        .where(SealedBlob.report_id == report.id)
        .order_by(SealedBlob.payload_version)
    ).all()
    ops = session.scalars(
        select(SyncOp)
        .where(SyncOp.report_id == report.id)
        .order_by(SyncOp.received_at, SyncOp.device_seq)
    ).all()
    held = session.scalars(
        select(QuarantinedOp)
        .where(QuarantinedOp.report_id == report.id)
        .order_by(QuarantinedOp.created_at)
    ).all()
    return ReportHistory(
        report_id=report.id,
        version=report.version,
        conflict_state=report.conflict_state,
        deleted_at=report.deleted_at,
        revisions=[
            RevisionRead(
                version=r.version,
                actor_user_id=r.actor_user_id,
                changed_fields=sorted(r.previous_values),
                at=r.at,
            )
            for r in revisions
        ],
        status_steps=[
            StatusStepRead(
                version=s.version,
                from_state=s.from_state,
                to_state=s.to_state,
                actor_user_id=s.actor_user_id,
                at=s.at,
            )
            for s in steps
        ],
        notes=[
            NoteRead(
                id=n.id,
                kind=n.kind,
                body=n.body,
                actor_user_id=n.actor_user_id,
                device_id=n.device_id,
                created_at=n.created_at,
            )
            for n in notes
        ],
        sealed_blobs=[
            SealedBlobRead(
                payload_version=b.payload_version,
                parent_version=b.parent_version,
                size_bytes=len(b.ciphertext),
                manifest=b.manifest,
                created_at=b.created_at,
            )
            for b in blobs
        ],
        ops=[
            OpRecord(
                op_id=o.op_id,
                device_id=o.device_id,
                device_seq=o.device_seq,
                kind=o.kind,
                status=str(o.result.get("status")),
                error_code=(o.result.get("error") or {}).get("code"),
                quarantined=bool(o.result.get("quarantined")),
                received_at=o.received_at,
            )
            for o in ops
        ],
        quarantined=[
            QuarantineRead(
                op_id=q.op_id,
                kind=q.kind,
                reason=q.reason,
                schema_version=q.schema_version,
                created_at=q.created_at,
                resolved_at=q.resolved_at,
            )
            for q in held
        ],
    )
