"""Patrols as sync needs them: a device starts a patrol offline and appends GPS fixes to it.

Appends are idempotent per fix (the same fix time twice is one fix), so a resent op or two
devices on the same patrol never double a track. Implausible jumps are kept but excluded from
coverage (``geo.tracks``).
"""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geo.tracks import implausible_fixes
from server.access.policy import Actor, Permission, require
from server.audit import service as audit
from server.db.base import utcnow
from server.errors import PermissionDeniedError, ValidationFailedError
from server.patrols.enums import PatrolStatus, PatrolType
from server.patrols.models import Patrol, PatrolTrackPoint
from server.patrols.schemas import TrackAppend
from server.settings import MissionSettings

__all__ = ["MAX_SPEED_MPS", "TrackAppendResult", "append_track"]

#: Faster than any ground patrol (≈150 km/h); air patrols get ≈900 km/h.
MAX_SPEED_MPS = {PatrolType.AIR: 250.0}
GROUND_MAX_SPEED_MPS = 42.0


class TrackAppendResult:
    def __init__(self, patrol: Patrol, stored: int, repeated: int, excluded: int) -> None:
        self.patrol, self.stored, self.repeated, self.excluded = patrol, stored, repeated, excluded


def _patrol_for(
    session: Session,
    *,
    patrol_id: uuid.UUID,
    body: TrackAppend,
    actor: Actor,
    device_id: uuid.UUID | None,
) -> Patrol:
    patrol = session.get(Patrol, patrol_id)
    if patrol is None:
        patrol = Patrol(
            id=patrol_id,
            unit_id=actor.unit_id,
            kind=body.patrol.kind,
            status=PatrolStatus.UNDERWAY,
            created_by_user_id=actor.user_id,
            created_by_device_id=device_id,
            started_at=body.patrol.started_at or body.points[0].t,
        )
        session.add(patrol)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="patrol_started",
            object_type="patrol",
            object_id=patrol.id,
            details={"kind": patrol.kind.value},
        )
        return patrol
    in_scope = actor.sees_whole_mission or (
        actor.scope_unit_ids is not None and patrol.unit_id in actor.scope_unit_ids
    )
    if patrol.created_by_user_id != actor.user_id and not in_scope:
        raise PermissionDeniedError("This patrol belongs to another unit.")
    return patrol


def append_track(
    session: Session,
    *,
    patrol_id: uuid.UUID,
    body: TrackAppend,
    actor: Actor,
    mission: MissionSettings,
    device_id: uuid.UUID | None = None,
) -> TrackAppendResult:
    require(actor, Permission.RECORD_PATROL)
    times = [p.t for p in body.points]
    if any(b <= a for a, b in itertools.pairwise(times)):
        raise ValidationFailedError.on("points", "fixes must be in strictly increasing time order")
    latest_allowed = utcnow() + timedelta(minutes=mission.future_tolerance_minutes)
    if times[-1] > latest_allowed:
        raise ValidationFailedError.on(
            "points", f"fix time {times[-1].isoformat()} is in the future"
        )
    patrol = _patrol_for(session, patrol_id=patrol_id, body=body, actor=actor, device_id=device_id)
    known = set(
        session.scalars(
            select(PatrolTrackPoint.recorded_at).where(
                PatrolTrackPoint.patrol_id == patrol.id,
                PatrolTrackPoint.recorded_at >= times[0],
                PatrolTrackPoint.recorded_at <= times[-1],
            )
        ).all()
    )
    fresh = [p for p in body.points if p.t not in known]
    repeated = len(body.points) - len(fresh)
    if not fresh:
        return TrackAppendResult(patrol, 0, repeated, 0)
    before = session.execute(
        select(PatrolTrackPoint.recorded_at, PatrolTrackPoint.longitude, PatrolTrackPoint.latitude)
        .where(
            PatrolTrackPoint.patrol_id == patrol.id,
            PatrolTrackPoint.recorded_at < fresh[0].t,
            PatrolTrackPoint.excluded.is_(False),
        )
        .order_by(PatrolTrackPoint.recorded_at.desc())
        .limit(1)
    ).first()
    anchor = (before[0].timestamp(), before[1], before[2]) if before is not None else None
    flags = implausible_fixes(
        [p.t.timestamp() for p in fresh],
        [p.lon for p in fresh],
        [p.lat for p in fresh],
        max_speed_mps=MAX_SPEED_MPS.get(patrol.kind, GROUND_MAX_SPEED_MPS),
        anchor=anchor,
    )
    count = (
        session.scalar(
            select(func.count())
            .select_from(PatrolTrackPoint)
            .where(PatrolTrackPoint.patrol_id == patrol.id)
        )
        or 0
    )
    session.add_all(
        PatrolTrackPoint(
            patrol_id=patrol.id,
            recorded_at=p.t,
            longitude=p.lon,
            latitude=p.lat,
            accuracy_m=p.accuracy_m,
            excluded=bool(flag),
            exclusion_reason="implausible_jump" if flag else None,
            sequence=count + i,
        )
        for i, (p, flag) in enumerate(zip(fresh, flags, strict=True))
    )
    session.flush()
    return TrackAppendResult(patrol, len(fresh), repeated, int(flags.sum()))
