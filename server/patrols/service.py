"""Patrols: plans, status, and GPS fixes from devices (sync), REST, GeoJSON and GPX.

Fixes are idempotent per fix time (the same fix twice is one fix), so a resent op, a re-uploaded
file or two devices on the same patrol never double a track. Implausible jumps are kept for the
record and excluded from coverage (``geo.tracks``). Every stored fix marks the patrol's coverage
due (``server.coverage``), recomputed after the transaction commits.

Who may do what: recording patrols (planning, starting, fixes) needs ``record_patrol``, for the
actor's own unit or one below it; reading needs the patrol's unit in the actor's scope (or to
have recorded it).
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import gpxpy
import gpxpy.gpx
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from geo.tracks import implausible_fixes
from server.access.policy import Actor, Permission, in_scope, require
from server.audit import service as audit
from server.db.base import utcnow
from server.errors import (
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    ValidationFailedError,
)
from server.pagination import newest_first_page
from server.patrols.enums import ALLOWED_TRANSITIONS, PatrolStatus, PatrolType
from server.patrols.models import Patrol, PatrolTrackPoint
from server.patrols.schemas import (
    PatrolCreate,
    PatrolUpdate,
    TrackAppend,
    TrackFeature,
    TrackFix,
)
from server.settings import MissionSettings
from server.units.models import Unit

__all__ = [
    "GROUND_MAX_SPEED_MPS",
    "MAX_FIXES_PER_UPLOAD",
    "MAX_SPEED_MPS",
    "TrackAppendResult",
    "append_fixes",
    "append_track",
    "create",
    "fixes_from_gpx",
    "get_or_raise",
    "list_",
    "update",
]

#: Faster than any ground patrol (≈150 km/h); air patrols get ≈900 km/h.
MAX_SPEED_MPS = {PatrolType.AIR: 250.0}
GROUND_MAX_SPEED_MPS = 42.0
#: Most fixes in one GeoJSON or GPX upload.
MAX_FIXES_PER_UPLOAD = 50_000
#: A GPX document: an optional XML declaration, comments or a doctype, then <gpx> (any prefix).
_GPX_ROOT = re.compile(
    r"\A\s*(?:<\?xml[^>]*\?>\s*)?(?:(?:<!--.*?-->|<!DOCTYPE[^>]*>)\s*)*<(?:[\w.-]+:)?gpx[\s>/]",
    re.DOTALL,
)


class TrackAppendResult:
    def __init__(self, patrol: Patrol, stored: int, repeated: int, excluded: int) -> None:
        self.patrol, self.stored, self.repeated, self.excluded = patrol, stored, repeated, excluded


# --------------------------------------------------------------------------- access


def _may_write(actor: Actor, patrol: Patrol) -> bool:
    return patrol.created_by_user_id == actor.user_id or in_scope(actor, [patrol.unit_id])


def _may_read(actor: Actor, patrol: Patrol) -> bool:
    return _may_write(actor, patrol)


def get_or_raise(*, session: Session, patrol_id: uuid.UUID, actor: Actor) -> Patrol:
    """The patrol, if it exists and the actor may see it (404 otherwise, either way)."""
    patrol = session.get(Patrol, patrol_id)
    if patrol is None or not _may_read(actor, patrol):
        raise NotFoundError(f"Patrol {patrol_id} does not exist or is not visible to you.")
    return patrol


def _writable(*, session: Session, patrol_id: uuid.UUID, actor: Actor) -> Patrol:
    require(actor, Permission.RECORD_PATROL)
    patrol = get_or_raise(session=session, patrol_id=patrol_id, actor=actor)
    if not _may_write(actor, patrol):
        raise PermissionDeniedError("This patrol belongs to another unit.")
    return patrol


def list_(
    *,
    session: Session,
    actor: Actor,
    limit: int,
    cursor: str | None,
    unit_ids: Sequence[int] | None = None,
    status: Sequence[PatrolStatus] = (),
    kind: Sequence[PatrolType] = (),
    since: datetime | None = None,
) -> tuple[list[Patrol], str | None]:
    """Patrols the actor may see, newest first, one page."""
    statement = select(Patrol)
    if actor.scope_unit_ids is not None:
        statement = statement.where(
            or_(
                Patrol.unit_id.in_(sorted(actor.scope_unit_ids)),
                Patrol.created_by_user_id == actor.user_id,
            )
        )
    if unit_ids is not None:
        statement = statement.where(Patrol.unit_id.in_(list(unit_ids)))
    if status:
        statement = statement.where(Patrol.status.in_(list(status)))
    if kind:
        statement = statement.where(Patrol.kind.in_(list(kind)))
    if since is not None:
        statement = statement.where(or_(Patrol.ended_at.is_(None), Patrol.ended_at >= since))
    return newest_first_page(session, statement, Patrol, limit=limit, cursor=cursor)


# --------------------------------------------------------------------------- plans and status


def create(*, session: Session, patrol_in: PatrolCreate, actor: Actor) -> Patrol:
    """Plan a patrol (or record one that is already underway) for the actor's unit or below."""
    require(actor, Permission.RECORD_PATROL)
    unit_id = patrol_in.unit_id if patrol_in.unit_id is not None else actor.unit_id
    if unit_id is None or session.get(Unit, unit_id) is None:
        raise ValidationFailedError.on("unit_id", f"unit {unit_id} does not exist")
    if not in_scope(actor, [unit_id]):
        raise PermissionDeniedError(
            "You may record patrols only for your own unit and the units under it."
        )
    patrol_id = patrol_in.id or uuid.uuid4()
    if session.get(Patrol, patrol_id) is not None:
        raise ValidationFailedError.on("id", f"a patrol with id {patrol_id} already exists")
    now = utcnow()
    patrol = Patrol(
        id=patrol_id,
        unit_id=unit_id,
        kind=patrol_in.kind,
        status=patrol_in.status,
        name=patrol_in.name,
        sensing_radius_m=patrol_in.sensing_radius_m,
        planned_start=patrol_in.planned_start,
        planned_end=patrol_in.planned_end,
        planned_route=patrol_in.planned_route.to_shape() if patrol_in.planned_route else None,
        created_by_user_id=actor.user_id,
        started_at=now if patrol_in.status is PatrolStatus.UNDERWAY else None,
        created_at=now,
        updated_at=now,
    )
    session.add(patrol)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="patrol_created",
        object_type="patrol",
        object_id=patrol.id,
        details={"kind": patrol.kind.value, "unit_id": unit_id, "status": patrol.status.value},
    )
    return patrol


def update(
    *, session: Session, patrol_id: uuid.UUID, patrol_in: PatrolUpdate, actor: Actor
) -> Patrol:
    """Change the plan or move the status on (``ALLOWED_TRANSITIONS``)."""
    patrol = _writable(session=session, patrol_id=patrol_id, actor=actor)
    changes = patrol_in.model_dump(exclude_unset=True)
    for field in ("name", "planned_start", "planned_end", "sensing_radius_m"):
        if field in changes:
            setattr(patrol, field, changes[field])
    if "planned_route" in changes:
        route = patrol_in.planned_route
        patrol.planned_route = route.to_shape() if route else None
    if patrol.planned_start and patrol.planned_end and patrol.planned_end <= patrol.planned_start:
        raise ValidationFailedError.on("planned_end", "must be after planned_start")
    if patrol_in.status is not None and patrol_in.status is not patrol.status:
        _transition(patrol, patrol_in.status)
    patrol.updated_at = utcnow()
    session.flush()
    if "sensing_radius_m" in changes:
        _coverage_due(session, patrol.id)
    audit.record(
        session,
        actor=actor,
        action="patrol_updated",
        object_type="patrol",
        object_id=patrol.id,
        details={"fields": sorted(changes), "status": patrol.status.value},
    )
    return patrol


def _transition(patrol: Patrol, to: PatrolStatus) -> None:
    current = PatrolStatus(patrol.status)
    if to not in ALLOWED_TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in ALLOWED_TRANSITIONS[current])) or "none"
        raise InvalidTransitionError(
            f"A {current.value} patrol cannot become {to.value} (allowed: {allowed})."
        )
    now = utcnow()
    if to is PatrolStatus.UNDERWAY and patrol.started_at is None:
        patrol.started_at = now
    if to in (PatrolStatus.COMPLETED, PatrolStatus.ABORTED):
        patrol.ended_at = now
    patrol.status = to


# --------------------------------------------------------------------------- fixes


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
        now = utcnow()
        patrol = Patrol(
            id=patrol_id,
            unit_id=actor.unit_id,
            kind=body.patrol.kind,
            status=PatrolStatus.UNDERWAY,
            created_by_user_id=actor.user_id,
            created_by_device_id=device_id,
            started_at=body.patrol.started_at or body.points[0].t,
            created_at=now,
            updated_at=now,
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
    if not _may_write(actor, patrol):
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
    """Sync's ``track_append``: fixes for a patrol, which the first append creates."""
    require(actor, Permission.RECORD_PATROL)
    _check_times(body.points, mission, field="points")
    patrol = _patrol_for(session, patrol_id=patrol_id, body=body, actor=actor, device_id=device_id)
    return _store_fixes(session, patrol, body.points)


def append_fixes(
    *,
    session: Session,
    patrol_id: uuid.UUID,
    fixes: Sequence[TrackFix],
    actor: Actor,
    mission: MissionSettings,
    field: str = "points",
    source: str = "points",
) -> TrackAppendResult:
    """Fixes for an existing patrol, from REST, GeoJSON or GPX. A planned patrol whose first
    fixes arrive is underway from the first fix."""
    patrol = _writable(session=session, patrol_id=patrol_id, actor=actor)
    if len(fixes) > MAX_FIXES_PER_UPLOAD:
        raise ValidationFailedError.on(
            field, f"{len(fixes)} fixes in one upload; send at most {MAX_FIXES_PER_UPLOAD}"
        )
    _check_times(fixes, mission, field=field)
    result = _store_fixes(session, patrol, fixes)
    if patrol.status is PatrolStatus.PLANNED and result.stored:
        patrol.status = PatrolStatus.UNDERWAY
        patrol.started_at = fixes[0].t
    if result.stored:
        audit.record(
            session,
            actor=actor,
            action="patrol_track_added",
            object_type="patrol",
            object_id=patrol.id,
            details={"source": source, "stored": result.stored, "excluded": result.excluded},
        )
    return result


def _check_times(fixes: Sequence[TrackFix], mission: MissionSettings, *, field: str) -> None:
    times = [p.t for p in fixes]
    for index, (a, b) in enumerate(itertools.pairwise(times), start=1):
        if b == a:
            raise ValidationFailedError.on(
                field, f"fix {index} repeats the time of fix {index - 1} ({b.isoformat()})"
            )
        if b < a:
            raise ValidationFailedError.on(
                field,
                f"fixes must be in strictly increasing time order: fix {index} "
                f"({b.isoformat()}) is before fix {index - 1} ({a.isoformat()})",
            )
    latest_allowed = utcnow() + timedelta(minutes=mission.future_tolerance_minutes)
    if times and max(times) > latest_allowed:
        raise ValidationFailedError.on(field, f"fix time {max(times).isoformat()} is in the future")


def _store_fixes(session: Session, patrol: Patrol, points: Sequence[TrackFix]) -> TrackAppendResult:
    times = [p.t for p in points]
    known = set(
        session.scalars(
            select(PatrolTrackPoint.recorded_at).where(
                PatrolTrackPoint.patrol_id == patrol.id,
                PatrolTrackPoint.recorded_at >= times[0],
                PatrolTrackPoint.recorded_at <= times[-1],
            )
        ).all()
    )
    fresh = [p for p in points if p.t not in known]
    repeated = len(points) - len(fresh)
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
    _coverage_due(session, patrol.id)
    return TrackAppendResult(patrol, len(fresh), repeated, int(flags.sum()))


def _coverage_due(session: Session, patrol_id: uuid.UUID) -> None:
    from server.coverage import service as coverage  # coverage reads patrols; not the reverse

    coverage.mark_dirty(session, patrol_id=patrol_id)


def fixes_from_geojson(feature: TrackFeature) -> list[TrackFix]:
    return feature.fixes()


def fixes_from_gpx(data: bytes, *, field: str = "file") -> list[TrackFix]:
    """The track points of a GPX document, every track and segment in document order.

    Raises ``ValidationFailedError`` naming ``field`` for anything that is not a GPX document
    with timed track points.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailedError.on(field, "is not a GPX file: it is not UTF-8 text") from None
    if not _GPX_ROOT.match(text):
        raise ValidationFailedError.on(field, "is not a GPX file: its root element is not <gpx>")
    try:
        document = gpxpy.parse(text)
    except (gpxpy.gpx.GPXException, ValueError) as exc:
        raise ValidationFailedError.on(field, f"is not a GPX file: {_short(exc)}") from None
    points: list[Any] = [
        point for track in document.tracks for segment in track.segments for point in segment.points
    ]
    if not points:
        raise ValidationFailedError.on(
            field, "the GPX file has no track points (<trkpt>); routes and waypoints are not tracks"
        )
    fixes = []
    for index, point in enumerate(points):
        if point.time is None:
            raise ValidationFailedError.on(field, f"track point {index} has no <time>")
        # GPX 1.1 times are UTC by definition, with or without the "Z".
        moment = point.time.astimezone(UTC) if point.time.tzinfo else point.time.replace(tzinfo=UTC)
        try:
            fixes.append(
                TrackFix(
                    t=moment,
                    lon=point.longitude,
                    lat=point.latitude,
                    accuracy_m=_accuracy(point),
                )
            )
        except ValueError as exc:
            raise ValidationFailedError.on(field, f"track point {index}: {_short(exc)}") from None
    return fixes


def _accuracy(point: Any) -> float | None:
    # GPX has no accuracy field; the horizontal dilution of precision times a typical 5 m
    # user range error is the usual estimate.
    if point.horizontal_dilution is None:
        return None
    return float(min(100_000.0, max(0.0, point.horizontal_dilution * 5.0)))


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
