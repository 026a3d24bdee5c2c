"""Units and their areas of responsibility: /api/v1/units."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status
from sqlalchemy.orm import Session

from server.deps import AppSettings, CurrentActor, DbSession
from server.errors import NotFoundError
from server.geojson import geometry_to_geojson
from server.units import service
from server.units.models import AorVersion, Unit
from server.units.schemas import (
    AorFeature,
    AorUpdate,
    AorVersionRead,
    UnitCreate,
    UnitRead,
    UnitUpdate,
)

router = APIRouter(prefix="/units", tags=["units"])


def _read(unit: Unit, current_version: int | None) -> UnitRead:
    return UnitRead(
        id=unit.id,
        code=unit.code,
        name=unit.name,
        kind=unit.kind,
        component=unit.component,
        parent_id=unit.parent_id,
        path=unit.path,
        depth=unit.depth,
        base_location=geometry_to_geojson(unit.base_location) if unit.base_location else None,
        sees_whole_mission=unit.sees_whole_mission,
        current_aor_version=current_version,
        created_at=unit.created_at,
        updated_at=unit.updated_at,
    )


def _read_one(session: Session, unit: Unit) -> UnitRead:
    current = service.current_aor(session=session, unit_id=unit.id)
    return _read(unit, current.version if current else None)


def _version_read(session: Session, version: AorVersion) -> AorVersionRead:
    return AorVersionRead(
        unit_id=version.unit_id,
        version=version.version,
        valid_from=version.valid_from,
        valid_to=version.valid_to,
        area_km2=round(version.area_km2, 3),
        resolutions=[int(r) for r in version.resolutions.split(",") if r],
        cell_count=service.aor_cell_count(session=session, aor_version_id=version.id),
        geometry=geometry_to_geojson(version.geometry),
    )


@router.get("", response_model=list[UnitRead], summary="The mission hierarchy")
def list_units(session: DbSession, _actor: CurrentActor) -> list[UnitRead]:
    versions = service.current_aor_versions(session=session)
    return [_read(u, versions.get(u.id)) for u in service.list_(session=session)]


@router.post(
    "",
    response_model=UnitRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a unit (admin)",
)
def create_unit(
    body: UnitCreate, session: DbSession, actor: CurrentActor, settings: AppSettings
) -> UnitRead:
    unit = service.create(session=session, unit_in=body, actor=actor, mission=settings.mission)
    return _read_one(session, unit)


@router.get("/{unit_id}", response_model=UnitRead, summary="One unit")
def get_unit(unit_id: int, session: DbSession, _actor: CurrentActor) -> UnitRead:
    return _read_one(session, service.get_or_raise(session=session, unit_id=unit_id))


@router.patch("/{unit_id}", response_model=UnitRead, summary="Change a unit (admin)")
def update_unit(
    unit_id: int, body: UnitUpdate, session: DbSession, actor: CurrentActor
) -> UnitRead:
    unit = service.get_or_raise(session=session, unit_id=unit_id)
    return _read_one(session, service.update(session=session, unit=unit, unit_in=body, actor=actor))


@router.delete(
    "/{unit_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an unused unit (admin)"
)
def delete_unit(unit_id: int, session: DbSession, actor: CurrentActor) -> Response:
    unit = service.get_or_raise(session=session, unit_id=unit_id)
    service.delete(session=session, unit=unit, actor=actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{unit_id}/aor",
    response_model=AorFeature,
    summary="The unit's current area of responsibility (GeoJSON Feature)",
)
def get_aor(unit_id: int, session: DbSession, _actor: CurrentActor) -> AorFeature:
    unit = service.get_or_raise(session=session, unit_id=unit_id)
    current = service.current_aor(session=session, unit_id=unit.id)
    if current is None:
        raise NotFoundError(f"Unit {unit.code} has no area of responsibility.")
    properties: dict[str, Any] = {
        "unit_id": unit.id,
        "unit_code": unit.code,
        "unit_name": unit.name,
        "version": current.version,
        "valid_from": current.valid_from.isoformat(),
        "area_km2": round(current.area_km2, 3),
    }
    return AorFeature(
        id=f"{unit.code}@{current.version}",
        geometry=geometry_to_geojson(current.geometry),
        properties=properties,
    )


@router.put(
    "/{unit_id}/aor",
    response_model=AorVersionRead,
    summary="Replace the AOR (admin): closes the current version, opens a new one",
)
def set_aor(
    unit_id: int, body: AorUpdate, session: DbSession, actor: CurrentActor, settings: AppSettings
) -> AorVersionRead:
    unit = service.get_or_raise(session=session, unit_id=unit_id)
    geometry = service.aor_shape(body.geometry, "geometry")
    version = service.set_aor(
        session=session, unit=unit, geometry=geometry, actor=actor, mission=settings.mission
    )
    return _version_read(session, version)


@router.get(
    "/{unit_id}/aor/versions",
    response_model=list[AorVersionRead],
    summary="Every version of the unit's AOR, oldest first",
)
def list_aor_versions(
    unit_id: int, session: DbSession, _actor: CurrentActor
) -> list[AorVersionRead]:
    unit = service.get_or_raise(session=session, unit_id=unit_id)
    return [
        _version_read(session, v) for v in service.aor_versions(session=session, unit_id=unit.id)
    ]
