"""Sync v1 on the server: hello, push (the op ledger and per-device order), pull (the
commit-ordered change log, filtered by the access policy), the epoch, and HQ's report history.

Push follows SYNC.md §4.3 for a whole batch in the request's transaction:

1. lock the device's cursor row once (serialises one device's pushes, even across
   connections), and read the ledger rows of the batch's op ids in one query;
2. a known ``op_id`` with the same fingerprint is a ``duplicate`` answered with the stored
   result; with another fingerprint it is ``rejected: idempotency_mismatch`` (nothing written);
3. a ``device_seq`` at or below the cursor with an unknown op is ``rejected: device_seq_reused``;
   above the next expected one it is ``deferred`` (an earlier op is missing; nothing written);
4. otherwise the op takes effect (``server.sync.ops``), in device_seq order: a run of plain
   creates together, any other op alone in its savepoint. The batch's ledger rows and the new
   cursor are written in the same transaction, and the response is sent only after commit.

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
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mobile_sync.protocol.models import (
    PROTOCOL_VERSION,
    Change,
    ChangeKind,
    Hello,
    Op,
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
from server.db import bulk
from server.db.base import utcnow
from server.errors import (
    CursorExpiredError,
    MalformedRequestError,
    PermissionDeniedError,
    ValidationFailedError,
)
from server.reports import service as reports
from server.reports.enums import ReportOrigin
from server.reports.models import Report, ReportRevision, ReportVerification
from server.reports.schemas import ReportCreate
from server.settings import Settings, SyncSettings
from server.sync import changes, clock, ops
from server.sync.context import DeviceContext, now_ms
from server.sync.encoding import REQUEST_ENCODINGS
from server.sync.models import (
    Change as ChangeRow,
)
from server.sync.models import (
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
    "now_ms",
    "prune_tombstones",
    "pull",
    "push",
]


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
        request_encodings=list(REQUEST_ENCODINGS),
    )


# --------------------------------------------------------------------------- push


def _locked_cursor(session: Session, device_id: uuid.UUID) -> int:
    """The device's last applied device_seq, its cursor row locked until commit (created at 0
    for a new device). One statement: an upsert that takes the row lock and returns the value
    committed before it, however long it waited for a concurrent push of the same device."""
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = module.insert(DeviceCursor).values(device_id=device_id, last_seq=0)
    last_seq: int = session.execute(
        statement.on_conflict_do_update(
            index_elements=["device_id"], set_={"last_seq": DeviceCursor.last_seq}
        ).returning(DeviceCursor.last_seq)
    ).scalar_one()
    return last_seq


def _kind_name(header: OpHeader | Op) -> str:
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


def parse_ops(
    raw_ops: list[dict[str, Any]], *, may_hold_nul: bool = True
) -> list[tuple[OpHeader | Op, Op | OpResult]]:
    """Each op's header (the op itself when it validates), and the op or the rejection it
    earns. An op without a readable header cannot be answered at all: that is a malformed
    envelope (400).

    ``may_hold_nul=False`` when the caller knows no op holds a NUL character (the request body
    has no ``\\u0000`` escape, the only way JSON can carry one): the deep search is skipped."""
    parsed: list[tuple[OpHeader | Op, Op | OpResult]] = []
    for index, raw in enumerate(raw_ops):
        holds_nul = may_hold_nul and _holds_nul(raw)
        try:
            op = Op.model_validate(raw)
        except ValidationError as exc:
            invalid: ValidationError | None = exc
        else:
            if not holds_nul:
                parsed.append((op, op))
                continue
            invalid = None
        try:
            header = OpHeader.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first.get("loc", ()))
            raise MalformedRequestError.on(f"ops.{index}.{field}", str(first.get("msg"))) from None
        if holds_nul:
            # PostgreSQL cannot store NUL in text or jsonb; refused on both backends alike.
            detail = "text may not contain the NUL character (\\u0000)"
            parsed.append((header, ops.op_rejected(header, "invalid_op", detail)))
            continue
        assert invalid is not None
        first = invalid.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ()))
        if field == "kind":
            known = ", ".join(k.value for k in OpKind)
            result = ops.op_rejected(
                header, "unknown_kind", f"kind {raw.get('kind')!r} is not one of: {known}"
            )
        else:
            result = ops.op_rejected(header, "invalid_op", f"{field}: {first.get('msg')}")
        parsed.append((header, result))
    # Strict per-device order (I4): apply in device_seq order whatever order they came in.
    parsed.sort(key=lambda item: item[0].device_seq)
    return parsed


def push(
    session: Session,
    ctx: DeviceContext,
    request: PushRequest,
    settings: Settings,
    *,
    may_hold_nul: bool = True,
) -> PushResponse:
    clock.record_clock(session, ctx, request.previous_exchange)
    parsed = parse_ops(request.ops, may_hold_nul=may_hold_nul)
    batch = _PushBatch(session, ctx, settings, [header.op_id for header, _ in parsed])
    for header, op in parsed:
        batch.take(header, op)
    return PushResponse(batch_id=request.batch_id, results=batch.finish(), server_time_ms=now_ms())


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _PushBatch:
    """One push under its device's cursor lock: the ledger, strict per-device order, and the
    run of creates waiting to be applied together (flushed before any other op takes effect,
    so effects follow device_seq order)."""

    def __init__(
        self, session: Session, ctx: DeviceContext, settings: Settings, op_ids: list[uuid.UUID]
    ) -> None:
        self.session, self.ctx, self.settings = session, ctx, settings
        self.last_seq = _locked_cursor(session, ctx.device.id)
        #: op_id -> (fingerprint, stored result), from the database and from this batch
        self.ledger: dict[uuid.UUID, tuple[str, dict[str, Any]]] = {
            op_id: (fingerprint, result)
            # Core: plain rows (the ledger is written only at finish, nothing is pending).
            for op_id, fingerprint, result in session.connection().execute(
                select(SyncOp.op_id, SyncOp.payload_sha256, SyncOp.result).where(
                    bulk.one_of(session, SyncOp.op_id, op_ids)
                )
            )
        }
        self.results: list[OpResult | None] = []
        self.new_rows: list[dict[str, Any]] = []
        #: (position in results, header, op, report) of creates not yet applied
        self.run: list[tuple[int, OpHeader | Op, Op, ReportCreate]] = []
        self.run_op_ids: set[uuid.UUID] = set()
        self.run_report_ids: set[uuid.UUID] = set()

    def take(self, header: OpHeader | Op, op: Op | OpResult) -> None:
        if header.device_id != self.ctx.device.id:
            self.results.append(
                ops.op_rejected(
                    header, "wrong_device", "the op names another device than the credential"
                )
            )
            return
        if header.op_id in self.run_op_ids:
            self._apply_run()  # the same op twice in one batch: answer the copy from the ledger
        known = self.ledger.get(header.op_id)
        if known is not None:
            self.results.append(_known_answer(header, *known))
            return
        if header.device_seq <= self.last_seq:
            self.results.append(
                ops.op_rejected(
                    header,
                    "device_seq_reused",
                    f"device_seq {header.device_seq} was already used by another op",
                )
            )
            return
        if header.device_seq > self.last_seq + 1:
            self.results.append(
                ops.op_result(header, OpStatus.DEFERRED, expected_device_seq=self.last_seq + 1)
            )
            return
        self.last_seq = header.device_seq
        if isinstance(op, OpResult):
            self._record(header, op)  # refused while parsing: recorded, its seq consumed
            return
        if payload_sha256(op.payload) != op.payload_sha256:
            self._record(
                header,
                ops.op_rejected(
                    op, "payload_hash_mismatch", "payload_sha256 does not match the payload"
                ),
            )
            return
        report_in = ops.bulk_creatable(op, self.settings)
        if report_in is not None:
            if op.report_id in self.run_report_ids:
                self._apply_run()  # the second create of a report must see the first
            self.run.append((len(self.results), header, op, report_in))
            self.run_op_ids.add(op.op_id)
            self.run_report_ids.add(op.report_id)
            self.results.append(None)
            return
        self._apply_run()
        self._record(header, ops.apply(self.session, self.ctx, op, self.settings))

    def _apply_run(self) -> None:
        if not self.run:
            return
        run, self.run = self.run, []
        self.run_op_ids, self.run_report_ids = set(), set()
        answers = ops.create_reports(
            self.session, self.ctx, [(op, report_in) for _, _, op, report_in in run], self.settings
        )
        for (position, header, _, _), answer in zip(run, answers, strict=True):
            self._record(header, answer, position)

    def _record(self, header: OpHeader | Op, result: OpResult, position: int | None = None) -> None:
        """The op's answer, kept in the ledger (its device_seq consumed)."""
        result = result.model_copy(update={"server_received_at": _stamp()})
        stored = result.model_dump(mode="json")
        self.ledger[header.op_id] = (header.payload_sha256, stored)
        self.new_rows.append(
            {
                "op_id": header.op_id,
                "device_id": header.device_id,
                "device_seq": header.device_seq,
                "report_id": header.report_id,
                "kind": _kind_name(header),
                "payload_sha256": header.payload_sha256,
                "result": stored,
                "received_at": utcnow(),
            }
        )
        if position is None:
            self.results.append(result)
        else:
            self.results[position] = result

    def finish(self) -> list[OpResult]:
        self._apply_run()
        if self.new_rows:
            bulk.insert_rows(self.session, SyncOp.__table__, self.new_rows)
            self.session.execute(
                update(DeviceCursor)
                .where(DeviceCursor.device_id == self.ctx.device.id)
                .values(last_seq=self.last_seq)
            )
        assert all(r is not None for r in self.results), "every op has its answer"
        return [r for r in self.results if r is not None]


def _known_answer(header: OpHeader | Op, fingerprint: str, stored: dict[str, Any]) -> OpResult:
    """An op the ledger already holds: its original answer, or a refusal if the same id now
    comes with another payload."""
    if fingerprint != header.payload_sha256:
        return ops.op_rejected(
            header, "idempotency_mismatch", "this op id was already used with a different payload"
        )
    original = OpResult.model_validate(stored)
    if original.status in (OpStatus.APPLIED, OpStatus.CONFLICT_FLAGGED):
        return original.model_copy(
            update={"status": OpStatus.DUPLICATE, "original_status": original.status}
        )
    return original


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
