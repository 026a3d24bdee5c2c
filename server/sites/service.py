"""Protected sites: IDP camps, refugee and POC sites, markets, water points.

A site raises the exposure of the cells it touches and shortens their allowed gap
(``geo.gaps``); it is written with its cells at every mission resolution, so the gap query
finds it by integer join. Anyone signed in may read sites; ``manage_sites`` roles write them,
and a user whose scope is not the whole mission only within their units' AORs.
"""

from __future__ import annotations

from typing import Any

from shapely.geometry import MultiPolygon, Point
from sqlalchemy import delete as sql_delete
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from geo import cells as geo_cells
from geo import finest_supported_resolution
from geo.precision import LocationPrecision
from server.access.policy import Actor, Permission, in_scope, require
from server.audit import service as audit
from server.db.base import utcnow
from server.errors import (
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    ValidationFailedError,
)
from server.settings import MissionSettings
from server.sites.enums import SiteKind
from server.sites.models import ProtectedSite, ProtectedSiteCell
from server.sites.schemas import SiteCreate, SiteUpdate
from server.units import service as units

__all__ = [
    "MAX_SITE_AREA_KM2",
    "create",
    "delete",
    "get_or_raise",
    "list_",
    "reassign_aor_units",
    "update",
]

#: A protected site larger than this is a region, not a site (the largest camps are ~10 km²).
MAX_SITE_AREA_KM2 = 200.0


def get_or_raise(*, session: Session, site_id: int) -> ProtectedSite:
    site = session.get(ProtectedSite, site_id)
    if site is None:
        raise NotFoundError(f"Protected site {site_id} does not exist.")
    return site


def list_(
    *,
    session: Session,
    kinds: list[SiteKind] | None = None,
    aor_unit_ids: list[int] | None = None,
) -> list[ProtectedSite]:
    statement = select(ProtectedSite).order_by(ProtectedSite.id)
    if kinds:
        statement = statement.where(ProtectedSite.kind.in_(kinds))
    if aor_unit_ids is not None:
        statement = statement.where(ProtectedSite.aor_unit_id.in_(aor_unit_ids))
    return list(session.scalars(statement))


def _area(area: Any) -> MultiPolygon | None:
    if area is None:
        return None
    try:
        polygon = area.to_shape()
    except ValueError as exc:
        raise ValidationFailedError.on("area", str(exc)) from exc
    if units.geodesic_area_km2(polygon) > MAX_SITE_AREA_KM2:
        raise ValidationFailedError.on(
            "area", f"a protected site may cover at most {MAX_SITE_AREA_KM2:g} km²"
        )
    return polygon


def _resolve(point: Point | None, area: MultiPolygon | None) -> tuple[Point, MultiPolygon | None]:
    """The site's point (the area's representative point when none is given) and area."""
    if point is None and area is None:
        raise ValidationFailedError.on("location", "a site needs a location, an area or both")
    if point is None:
        assert area is not None
        point = area.representative_point()
    if area is not None and not area.buffer(1e-9).contains(point):
        raise ValidationFailedError.on("location", "the site's point must lie inside its area")
    return Point(point.x, point.y), area


def _cells(
    point: Point, area: MultiPolygon | None, mission: MissionSettings
) -> list[dict[str, int]]:
    rows = []
    for resolution in mission.h3_resolutions:
        cells = {int(geo_cells.point_cells([point.y], [point.x], resolution)[0])}
        if area is not None:
            cells |= set(geo_cells.polygon_cells(area, resolution).tolist())
        rows += [{"resolution": resolution, "cell": c} for c in sorted(cells)]
    return rows


def _route(session: Session, point: Point, mission: MissionSettings) -> int | None:
    finest = finest_supported_resolution(LocationPrecision.EXACT, None) or max(
        geo_cells.STORED_RESOLUTIONS
    )
    indexed = geo_cells.index_points([point.y], [point.x], [finest])[0]
    by_resolution = {
        r: int(c) or None
        for r, c in zip(geo_cells.STORED_RESOLUTIONS, indexed.tolist(), strict=True)
    }
    return units.route_cells(session=session, cells=by_resolution, mission=mission)


def _check_scope(actor: Actor, aor_unit_id: int | None) -> None:
    if actor.sees_whole_mission:
        return
    if aor_unit_id is None or not in_scope(actor, [aor_unit_id]):
        raise PermissionDeniedError(
            "You may manage protected sites only inside your units' areas of responsibility."
        )


def _write_cells(session: Session, site: ProtectedSite, mission: MissionSettings) -> None:
    session.execute(sql_delete(ProtectedSiteCell).where(ProtectedSiteCell.site_id == site.id))
    rows = [{"site_id": site.id, **row} for row in _cells(site.location, site.area, mission)]
    for start in range(0, len(rows), 2000):
        session.execute(insert(ProtectedSiteCell), rows[start : start + 2000])


def create(
    *, session: Session, site_in: SiteCreate, actor: Actor, mission: MissionSettings
) -> ProtectedSite:
    require(actor, Permission.MANAGE_SITES)
    point, area = _resolve(
        site_in.location.to_shape() if site_in.location else None, _area(site_in.area)
    )
    aor_unit_id = _route(session, point, mission)
    _check_scope(actor, aor_unit_id)
    now = utcnow()
    site = ProtectedSite(
        name=site_in.name,
        kind=site_in.kind,
        location=point,
        longitude=point.x,
        latitude=point.y,
        area=area,
        population=site_in.population,
        aor_unit_id=aor_unit_id,
        notes=site_in.notes,
        version=1,
        created_by_user_id=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(site)
    session.flush()
    _write_cells(session, site, mission)
    audit.record(
        session,
        actor=actor,
        action="site_created",
        object_type="protected_site",
        object_id=site.id,
        details={"kind": site.kind.value, "aor_unit_id": aor_unit_id},
    )
    return site


def update(
    *,
    session: Session,
    site: ProtectedSite,
    site_in: SiteUpdate,
    actor: Actor,
    mission: MissionSettings,
) -> ProtectedSite:
    require(actor, Permission.MANAGE_SITES)
    _check_scope(actor, site.aor_unit_id)
    if site_in.version != site.version:
        raise PreconditionFailedError(
            f"The site is at version {site.version}, not {site_in.version}: someone changed it. "
            "Reload it and apply your change again."
        )
    changes = site_in.model_dump(exclude_unset=True, exclude={"version"})
    for name in ("name", "kind", "population", "notes"):
        if name in changes:
            if name in ("name", "kind") and changes[name] is None:
                raise ValidationFailedError.on(name, "may not be empty")
            setattr(site, name, changes[name])
    if "location" in changes or "area" in changes:
        area = _area(site_in.area) if "area" in changes else site.area
        if "location" in changes:
            point = site_in.location.to_shape() if site_in.location else None
        elif area is not None and area.buffer(1e-9).contains(site.location):
            point = site.location
        else:
            point = None  # a new area without a new point: the area's own point
        point, polygon = _resolve(point, area)
        aor_unit_id = _route(session, point, mission)
        _check_scope(actor, aor_unit_id)
        site.location, site.longitude, site.latitude = point, point.x, point.y
        site.area = polygon
        site.aor_unit_id = aor_unit_id
        _write_cells(session, site, mission)
    site.version += 1
    site.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="site_updated",
        object_type="protected_site",
        object_id=site.id,
        details={"fields": sorted(changes), "version": site.version},
    )
    return site


def delete(*, session: Session, site: ProtectedSite, actor: Actor) -> None:
    require(actor, Permission.MANAGE_SITES)
    _check_scope(actor, site.aor_unit_id)
    audit.record(
        session,
        actor=actor,
        action="site_deleted",
        object_type="protected_site",
        object_id=site.id,
        details={"kind": site.kind.value},
    )
    session.delete(site)
    session.flush()


def reassign_aor_units(*, session: Session, mission: MissionSettings) -> int:
    """After an AOR change: which unit's AOR holds each site. Idempotent."""
    changed = 0
    for site in session.scalars(select(ProtectedSite)):
        unit_id = _route(session, site.location, mission)
        if unit_id != site.aor_unit_id:
            site.aor_unit_id = unit_id
            changed += 1
    session.flush()
    return changed
