"""How each kind of sync op takes effect (SYNC.md §4.6), through the same services the REST
API uses, so a pushed report enters the same pipeline (incidents, hotspots, alerts).

Every op is applied in its own savepoint and answers for itself: applied, conflict_flagged,
rejected with a reason, gone, or quarantined (``applied`` with ``quarantined: true``: an op
that no longer validates is held for HQ, never refused). Runs of plain creates are applied
together (:func:`create_reports`), which gives each op the answer it would get alone.
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from mobile_sync.protocol.models import Op, OpError, OpHeader, OpKind, OpResult, OpStatus
from server.access.policy import Actor, Detail
from server.audit import service as audit
from server.db import bulk
from server.db.base import utcnow
from server.errors import (
    ConflictError,
    IdempotencyConflictError,
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    ValidationFailedError,
)
from server.patrols import service as patrols
from server.patrols.schemas import TrackAppend
from server.reports import service as reports
from server.reports.enums import VerificationState
from server.reports.models import Attachment, Report, ReportRevision, ReportVerification
from server.reports.schemas import AttachmentManifestItem, ReportCreate, ReportUpdate
from server.settings import Settings
from server.sync import changes, clock
from server.sync.context import DeviceContext
from server.sync.models import QuarantinedOp, ReportNote, SealedBlob

__all__ = [
    "apply",
    "bulk_creatable",
    "create_reports",
    "op_rejected",
    "op_result",
]

log = logging.getLogger(__name__)


def op_result(op: Op | OpHeader, status: OpStatus, **fields: Any) -> OpResult:
    return OpResult(
        op_id=op.op_id, device_seq=op.device_seq, status=status, report_id=op.report_id, **fields
    )


def op_rejected(op: Op | OpHeader, code: str, detail: str) -> OpResult:
    return op_result(op, OpStatus.REJECTED, error=OpError(code=code, detail=detail))


def apply(session: Session, ctx: DeviceContext, op: Op, settings: Settings) -> OpResult:
    handler = _HANDLERS[op.kind]
    try:
        with session.begin_nested():
            return handler(session, ctx, op, settings)
    except OperationalError:
        raise  # the database is unreachable: fail the batch, the device retries it unchanged
    except _QuarantineError as exc:
        return _quarantine(session, ctx, op, exc.reason)
    except NotFoundError as exc:
        return op_rejected(op, "not_found", exc.message)
    except PermissionDeniedError as exc:
        return op_rejected(op, "forbidden", exc.message)
    except InvalidTransitionError as exc:
        return op_rejected(op, "invalid_transition", exc.message)
    except IdempotencyConflictError as exc:
        return op_rejected(op, "report_id_conflict", exc.message)
    except ConflictError as exc:
        return op_rejected(op, "conflict", exc.message)
    except _GoneError:
        return op_result(
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
    return op_result(
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
    return op_result(op, status, version=report.version)


def _capture_columns(ctx: DeviceContext, op: Op, capture: clock.CaptureTime) -> dict[str, Any]:
    """What a synced report records of the device that captured it and of its clock."""
    return {
        "created_by_device_id": ctx.device.id,
        "captured_at_device": capture.device,
        "captured_uptime_ms": op.device_uptime_ms,
        "capture_boot_id": op.boot_id,
        "captured_at_corrected": capture.corrected,
        "capture_uncertainty_ms": capture.uncertainty_ms,
        "capture_time_flag": capture.flag,
    }


def bulk_creatable(op: Op, settings: Settings) -> ReportCreate | None:
    """The report a create op brings, if :func:`create_reports` can take it with others: a
    body that validates, a time not ahead of the server, no sealed payload. Any other op goes
    through :func:`apply` alone, which finds its precise answer (quarantine, gone, conflict)."""
    if op.kind is not OpKind.CREATE or "sealed" in op.payload:
        return None
    try:
        report_in = ReportCreate.model_validate({**op.payload, "id": str(op.report_id)})
    except ValidationError:
        return None
    tolerance = timedelta(minutes=settings.mission.future_tolerance_minutes)
    return report_in if report_in.occurred_at <= utcnow() + tolerance else None


def create_reports(
    session: Session,
    ctx: DeviceContext,
    creates: Sequence[tuple[Op, ReportCreate]],
    settings: Settings,
) -> list[OpResult]:
    """Apply a run of create ops (each :func:`bulk_creatable`) together: one statement per
    table for the new reports, their incidents, change-log entries and audit events.

    Reports that already exist (a resend, a removed report, an id clash) and any run the
    database refuses (an id taken by a concurrent push) are applied one by one instead, so
    every op still gets the answer :func:`apply` would give it alone.
    """
    ids = [op.report_id for op, _ in creates]
    session.flush()  # then a Core lookup: plain rows, no ORM set-up (once per batch)
    existing = set(
        session.connection()
        .execute(select(Report.id).where(bulk.one_of(session, Report.id, ids)))
        .scalars()
    )
    fresh = [(op, report_in) for op, report_in in creates if op.report_id not in existing]
    done: dict[uuid.UUID, OpResult] = {}
    if fresh:
        captures = clock.corrected_captures(session, ctx, [op for op, _ in fresh])
        items = [
            reports.NewReport(
                report_in, reports.fingerprint(report_in), _capture_columns(ctx, op, capture)
            )
            for (op, report_in), capture in zip(fresh, captures, strict=True)
        ]
        try:
            with session.begin_nested():
                reports.create_many(
                    session=session, items=items, actor=ctx.actor, mission=settings.mission
                )
        except OperationalError:
            raise  # the database is unreachable: fail the batch, the device retries it unchanged
        except IntegrityError:
            pass  # an id taken by a concurrent push: each op finds its own answer below
        except Exception:  # rolled back whole; each op below gets its own answer (or quarantine)
            log.warning("batch create failed; applying its ops one by one", exc_info=True)
        else:
            for op, _ in fresh:
                done[op.op_id] = op_result(op, OpStatus.APPLIED, version=1)
    return [done.get(op.op_id) or apply(session, ctx, op, settings) for op, _ in creates]


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
        sample = clock.nearest_sample(session, ctx, op)
        if sample is not None:
            corrected = report_in.occurred_at + timedelta(milliseconds=sample.offset_ms)
            if corrected <= utcnow() + tolerance:
                report_in = report_in.model_copy(update={"occurred_at": corrected})
        if report_in.occurred_at > utcnow() + tolerance:
            raise _QuarantineError(
                f"occurred_at {report_in.occurred_at.isoformat()} is in the future; the device "
                "clock is probably wrong"
            )
    (capture,) = clock.corrected_captures(session, ctx, [op])
    report, created = reports.create(
        session=session,
        report_in=report_in,
        actor=ctx.actor,
        mission=settings.mission,
        extra_columns=_capture_columns(ctx, op, capture),
    )
    sealed = op.payload.get("sealed")
    if created and sealed:
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
    return op_result(op, OpStatus.APPLIED)


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
