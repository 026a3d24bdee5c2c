"""Patrols and their tracks: /api/v1/patrols."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, UploadFile, status
from pydantic import BaseModel
from sqlalchemy import select

from server.access.policy import Actor
from server.deps import AppSettings, CurrentActor, DbSession
from server.errors import NotFoundError, PayloadTooLargeError
from server.geojson import geometry_to_geojson
from server.patrols import service
from server.patrols.enums import PatrolStatus, PatrolType
from server.patrols.models import Patrol, PatrolTrackPoint
from server.patrols.schemas import (
    PatrolCreate,
    PatrolPage,
    PatrolRead,
    PatrolUpdate,
    TrackAppendRead,
    TrackFeature,
    TrackPoints,
)
from server.units import service as units

router = APIRouter(prefix="/patrols", tags=["patrols"])


def _read(patrol: Patrol) -> PatrolRead:
    return PatrolRead(
        id=patrol.id,
        kind=patrol.kind,
        unit_id=patrol.unit_id,
        status=patrol.status,
        name=patrol.name,
        sensing_radius_m=patrol.effective_sensing_radius_m,
        planned_start=patrol.planned_start,
        planned_end=patrol.planned_end,
        planned_route=geometry_to_geojson(patrol.planned_route) if patrol.planned_route else None,
        started_at=patrol.started_at,
        ended_at=patrol.ended_at,
        track=geometry_to_geojson(patrol.track) if patrol.track is not None else None,
        track_km=round(patrol.track_km, 4),
        track_minutes=round(patrol.track_minutes, 2),
        fix_count=patrol.fix_count,
        excluded_fix_count=patrol.excluded_fix_count,
        coverage_at=patrol.coverage_at,
        created_by_user_id=patrol.created_by_user_id,
        created_at=patrol.created_at,
        updated_at=patrol.updated_at,
    )


def _appended(result: service.TrackAppendResult) -> TrackAppendRead:
    return TrackAppendRead(
        patrol_id=result.patrol.id,
        status=result.patrol.status,
        stored=result.stored,
        repeated=result.repeated,
        excluded=result.excluded,
    )


@router.post(
    "",
    response_model=PatrolRead,
    status_code=status.HTTP_201_CREATED,
    summary="Plan a patrol (or record one already underway) for your unit or one below it",
)
def create_patrol(body: PatrolCreate, session: DbSession, actor: CurrentActor) -> PatrolRead:
    return _read(service.create(session=session, patrol_in=body, actor=actor))


@router.get("", response_model=PatrolPage, summary="Patrols of your units, newest first")
def list_patrols(
    session: DbSession,
    actor: CurrentActor,
    settings: AppSettings,
    unit: Annotated[int | None, Query(description="This unit and its subunits")] = None,
    status_: Annotated[list[PatrolStatus], Query(alias="status")] = [],  # noqa: B006
    kind: Annotated[list[PatrolType], Query()] = [],  # noqa: B006
    since: Annotated[datetime | None, Query(description="Not ended before this")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query()] = None,
) -> PatrolPage:
    unit_ids = None
    if unit is not None:
        unit_obj = units.get(session=session, unit_id=unit)
        if unit_obj is None:
            raise NotFoundError(f"Unit {unit} does not exist.")
        unit_ids = units.subtree_ids(session=session, unit=unit_obj)
    patrols, next_cursor = service.list_(
        session=session,
        actor=actor,
        limit=limit,
        cursor=cursor,
        unit_ids=unit_ids,
        status=status_,
        kind=kind,
        since=since,
    )
    return PatrolPage(items=[_read(p) for p in patrols], next_cursor=next_cursor)


@router.get("/{patrol_id}", response_model=PatrolRead, summary="One patrol, with its track")
def get_patrol(patrol_id: uuid.UUID, session: DbSession, actor: CurrentActor) -> PatrolRead:
    return _read(service.get_or_raise(session=session, patrol_id=patrol_id, actor=actor))


@router.patch(
    "/{patrol_id}",
    response_model=PatrolRead,
    summary="Change the plan, or move the status on (planned → underway → completed | aborted)",
)
def update_patrol(
    patrol_id: uuid.UUID, body: PatrolUpdate, session: DbSession, actor: CurrentActor
) -> PatrolRead:
    return _read(service.update(session=session, patrol_id=patrol_id, patrol_in=body, actor=actor))


class FixRead(BaseModel):
    t: datetime
    lon: float
    lat: float
    accuracy_m: float | None
    excluded: bool
    exclusion_reason: str | None


@router.get(
    "/{patrol_id}/fixes",
    response_model=list[FixRead],
    summary="Every GPS fix of the patrol, with those left out of coverage and why",
)
def list_fixes(patrol_id: uuid.UUID, session: DbSession, actor: CurrentActor) -> list[FixRead]:
    patrol = service.get_or_raise(session=session, patrol_id=patrol_id, actor=actor)
    points = session.scalars(
        select(PatrolTrackPoint)
        .where(PatrolTrackPoint.patrol_id == patrol.id)
        .order_by(PatrolTrackPoint.recorded_at)
    )
    return [
        FixRead(
            t=p.recorded_at,
            lon=p.longitude,
            lat=p.latitude,
            accuracy_m=p.accuracy_m,
            excluded=p.excluded,
            exclusion_reason=p.exclusion_reason,
        )
        for p in points
    ]


def _append(
    session: Any,
    actor: Actor,
    settings: Any,
    patrol_id: uuid.UUID,
    fixes: Any,
    field: str,
    source: str,
) -> TrackAppendRead:
    return _appended(
        service.append_fixes(
            session=session,
            patrol_id=patrol_id,
            fixes=fixes,
            actor=actor,
            mission=settings.mission,
            field=field,
            source=source,
        )
    )


@router.post(
    "/{patrol_id}/track",
    response_model=TrackAppendRead,
    summary="Add a track as a GeoJSON Feature: a LineString with `properties.times`",
    description=(
        "One fix time per position, strictly increasing (`coordTimes` is accepted for "
        "`times`). Fixes already stored (same time) are skipped; fixes a ground patrol could "
        "only reach faster than 150 km/h are stored but left out of coverage."
    ),
)
def add_track_geojson(
    patrol_id: uuid.UUID,
    body: TrackFeature,
    session: DbSession,
    actor: CurrentActor,
    settings: AppSettings,
) -> TrackAppendRead:
    return _append(session, actor, settings, patrol_id, body.fixes(), "properties.times", "geojson")


@router.post(
    "/{patrol_id}/track/points",
    response_model=TrackAppendRead,
    summary="Append GPS fixes to a patrol (the REST twin of sync's track_append)",
)
def add_track_points(
    patrol_id: uuid.UUID,
    body: TrackPoints,
    session: DbSession,
    actor: CurrentActor,
    settings: AppSettings,
) -> TrackAppendRead:
    return _append(session, actor, settings, patrol_id, body.points, "points", "points")


@router.post(
    "/{patrol_id}/track/gpx",
    response_model=TrackAppendRead,
    summary="Upload a GPX file (multipart field `file`): every timed track point is a fix",
)
def add_track_gpx(
    patrol_id: uuid.UUID,
    file: Annotated[UploadFile, File(description="A GPX 1.0 or 1.1 document")],
    session: DbSession,
    actor: CurrentActor,
    settings: AppSettings,
) -> TrackAppendRead:
    data = file.file.read(settings.mission.max_body_bytes + 1)
    if len(data) > settings.mission.max_body_bytes:
        raise PayloadTooLargeError(
            f"The GPX file is larger than {settings.mission.max_body_bytes} bytes; split it."
        )
    fixes = service.fixes_from_gpx(data)
    return _append(session, actor, settings, patrol_id, fixes, "file", "gpx")
