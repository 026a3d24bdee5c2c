"""The audit log: /api/v1/audit (admin only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from server.access.policy import Permission, require
from server.audit import service
from server.audit.models import AuditEvent
from server.audit.schemas import AuditEventRead, ChainStatus
from server.deps import CurrentActor, DbSession

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=list[AuditEventRead], summary="Audit events, oldest first (admin)")
def list_events(
    session: DbSession,
    actor: CurrentActor,
    after_seq: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    action: Annotated[str | None, Query(max_length=64)] = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
) -> list[AuditEventRead]:
    require(actor, Permission.READ_AUDIT)
    events = service.list_(
        session=session, after_seq=after_seq, limit=limit, action=action, object_id=object_id
    )
    return [AuditEventRead.model_validate(e, from_attributes=True) for e in events]


@router.get("/verify", response_model=ChainStatus, summary="Check the hash chain (admin)")
def verify(session: DbSession, actor: CurrentActor) -> ChainStatus:
    require(actor, Permission.READ_AUDIT)
    broken = service.verify_chain(session)
    count = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
    return ChainStatus(
        intact=broken is None,
        events=count,
        first_break_seq=broken.seq if broken else None,
        problem=broken.problem if broken else None,
    )
