"""Units, the hierarchy, and versioned areas of responsibility with their H3 cells."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyproj import Geod
from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import func, insert, select
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session

from geo import cells as geo_cells
from server.access.policy import Actor, Permission, require
from server.audit import service as audit
from server.db import bulk
from server.db.base import utcnow
from server.errors import InUseError, NotFoundError, ValidationFailedError
from server.reports.models import Report
from server.settings import MissionSettings
from server.units.models import AorCell, AorVersion, Unit
from server.units.schemas import UnitCreate, UnitUpdate
from server.users.models import User
from server.worker.queue import after_commit

__all__ = [
    "aor_versions",
    "create",
    "current_aor",
    "delete",
    "get",
    "get_or_raise",
    "list_",
    "route_cells",
    "route_many",
    "set_aor",
    "subtree_ids",
    "update",
]

_GEOD = Geod(ellps="WGS84")
_AOR_CELL_BATCH = 5000


def get(*, session: Session, unit_id: int) -> Unit | None:
    return session.get(Unit, unit_id)


def get_or_raise(*, session: Session, unit_id: int) -> Unit:
    unit = get(session=session, unit_id=unit_id)
    if unit is None:
        raise NotFoundError(f"Unit {unit_id} does not exist.")
    return unit


def list_(*, session: Session) -> list[Unit]:
    return list(session.scalars(select(Unit).order_by(Unit.path)))


def subtree_ids(*, session: Session, unit: Unit) -> list[int]:
    return list(session.scalars(select(Unit.id).where(Unit.path.startswith(unit.path))))


def current_aor(*, session: Session, unit_id: int) -> AorVersion | None:
    return session.scalars(
        select(AorVersion).where(AorVersion.unit_id == unit_id, AorVersion.valid_to.is_(None))
    ).one_or_none()


def current_aor_versions(*, session: Session) -> dict[int, int]:
    """unit id → current AOR version number, for listing units in one query."""
    rows = session.execute(
        select(AorVersion.unit_id, AorVersion.version).where(AorVersion.valid_to.is_(None))
    )
    return {unit_id: version for unit_id, version in rows}


def aor_versions(*, session: Session, unit_id: int) -> list[AorVersion]:
    return list(
        session.scalars(
            select(AorVersion).where(AorVersion.unit_id == unit_id).order_by(AorVersion.version)
        )
    )


def aor_cell_count(*, session: Session, aor_version_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(AorCell)
            .where(AorCell.aor_version_id == aor_version_id)
        )
        or 0
    )


def create(
    *, session: Session, unit_in: UnitCreate, actor: Actor, mission: MissionSettings
) -> Unit:
    require(actor, Permission.MANAGE_UNITS)
    if session.scalar(select(Unit.id).where(Unit.code == unit_in.code)) is not None:
        raise ValidationFailedError.on("code", f"a unit with code {unit_in.code!r} already exists")
    parent = None
    if unit_in.parent_id is not None:
        parent = session.get(Unit, unit_in.parent_id)
        if parent is None:
            raise ValidationFailedError.on("parent_id", f"unit {unit_in.parent_id} does not exist")
    elif session.scalar(select(Unit.id).where(Unit.parent_id.is_(None)).limit(1)) is not None:
        raise ValidationFailedError.on(
            "parent_id", "the mission already has a root unit; give this unit a parent"
        )
    unit = Unit(
        code=unit_in.code,
        name=unit_in.name,
        kind=unit_in.kind,
        component=unit_in.component,
        parent_id=parent.id if parent else None,
        path="/",
        depth=(parent.depth + 1) if parent else 0,
        base_location=unit_in.base_location.to_shape() if unit_in.base_location else None,
        sees_whole_mission=unit_in.sees_whole_mission,
    )
    session.add(unit)
    session.flush()
    unit.path = f"{parent.path if parent else '/'}{unit.id}/"
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="unit_created",
        object_type="unit",
        object_id=unit.id,
        details={"code": unit.code, "parent_id": unit.parent_id},
    )
    if unit_in.aor is not None:
        set_aor(
            session=session,
            unit=unit,
            geometry=aor_shape(unit_in.aor, "aor"),
            actor=actor,
            mission=mission,
        )
    return unit


def aor_shape(geometry: Any, field: str) -> Any:
    try:
        return geometry.to_shape()
    except ValueError as exc:
        raise ValidationFailedError.on(field, str(exc)) from exc


def update(*, session: Session, unit: Unit, unit_in: UnitUpdate, actor: Actor) -> Unit:
    require(actor, Permission.MANAGE_UNITS)
    changes = unit_in.model_dump(exclude_unset=True)
    if "parent_id" in changes and changes["parent_id"] != unit.parent_id:
        _move(session=session, unit=unit, new_parent_id=changes["parent_id"])
    for field in ("name", "kind", "component", "sees_whole_mission"):
        if field in changes and changes[field] is not None:
            setattr(unit, field, changes[field])
    if "base_location" in changes:
        unit.base_location = unit_in.base_location.to_shape() if unit_in.base_location else None
    unit.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="unit_updated",
        object_type="unit",
        object_id=unit.id,
        details={"fields": sorted(changes)},
    )
    return unit


def _move(*, session: Session, unit: Unit, new_parent_id: int | None) -> None:
    if new_parent_id is None:
        raise ValidationFailedError.on("parent_id", "only the mission's root unit has no parent")
    if unit.parent_id is None:
        raise ValidationFailedError.on("parent_id", "the mission's root unit cannot be moved")
    new_parent = session.get(Unit, new_parent_id)
    if new_parent is None:
        raise ValidationFailedError.on("parent_id", f"unit {new_parent_id} does not exist")
    if new_parent.path.startswith(unit.path):
        raise ValidationFailedError.on(
            "parent_id", "a unit cannot move under itself or one of its own subunits"
        )
    old_path, new_path = unit.path, f"{new_parent.path}{unit.id}/"
    depth_shift = (new_parent.depth + 1) - unit.depth
    for member in session.scalars(select(Unit).where(Unit.path.startswith(old_path))):
        member.path = new_path + member.path[len(old_path) :]
        member.depth = member.depth + depth_shift
    unit.parent_id = new_parent.id


def delete(*, session: Session, unit: Unit, actor: Actor) -> None:
    require(actor, Permission.MANAGE_UNITS)
    blockers = []
    if session.scalar(select(Unit.id).where(Unit.parent_id == unit.id).limit(1)) is not None:
        blockers.append("it has subunits")
    if session.scalar(select(User.id).where(User.unit_id == unit.id).limit(1)) is not None:
        blockers.append("users belong to it")
    if (
        session.scalar(select(Report.id).where(Report.reporting_unit_id == unit.id).limit(1))
        is not None
    ):
        blockers.append("reports were filed by it")
    if blockers:
        raise InUseError(f"Unit {unit.code} cannot be deleted: {', '.join(blockers)}.")
    audit.record(
        session,
        actor=actor,
        action="unit_deleted",
        object_type="unit",
        object_id=unit.id,
        details={"code": unit.code},
    )
    session.delete(unit)
    session.flush()


def geodesic_area_km2(geometry: Any) -> float:
    area_m2, _perimeter = _GEOD.geometry_area_perimeter(geometry)
    return abs(area_m2) / 1e6


def set_aor(
    *, session: Session, unit: Unit, geometry: Any, actor: Actor, mission: MissionSettings
) -> AorVersion:
    """Close the unit's current AOR version (if any) and open a new one with its cells."""
    require(actor, Permission.MANAGE_UNITS)
    if isinstance(geometry, Polygon):
        geometry = MultiPolygon([geometry])
    if not isinstance(geometry, MultiPolygon) or geometry.is_empty or not geometry.is_valid:
        raise ValidationFailedError.on("geometry", "an AOR must be a valid, non-empty polygon")
    now = utcnow()
    previous = current_aor(session=session, unit_id=unit.id)
    if previous is not None:
        previous.valid_to = now
        session.flush()
    last_version = session.scalar(
        select(func.max(AorVersion.version)).where(AorVersion.unit_id == unit.id)
    )
    version = AorVersion(
        unit_id=unit.id,
        version=(last_version or 0) + 1,
        geometry=geometry,
        area_km2=geodesic_area_km2(geometry),
        valid_from=now,
        resolutions=",".join(str(r) for r in mission.h3_resolutions),
        created_by_user_id=actor.user_id,
    )
    session.add(version)
    session.flush()
    _store_cells(session=session, version=version, geometry=geometry, mission=mission)
    audit.record(
        session,
        actor=actor,
        action="aor_changed",
        object_type="unit",
        object_id=unit.id,
        details={
            "version": version.version,
            "previous_version": previous.version if previous else None,
        },
    )
    from server.hotspots.service import mark_dirty_version
    from server.worker import tasks  # local: tasks import services, services enqueue tasks

    mark_dirty_version(session, aor_version_id=version.id)

    after_commit(session, tasks.reassign_aor_units)
    return version


def _store_cells(
    *, session: Session, version: AorVersion, geometry: Any, mission: MissionSettings
) -> None:
    for resolution in mission.h3_resolutions:
        cells = geo_cells.compact_polygon_cells(geometry, resolution, mission.coarsest_resolution)
        for start in range(0, cells.size, _AOR_CELL_BATCH):
            chunk = cells[start : start + _AOR_CELL_BATCH]
            session.execute(
                insert(AorCell),
                [
                    {"aor_version_id": version.id, "resolution": resolution, "cell": int(c)}
                    for c in chunk
                ],
            )


def route_cells(
    *, session: Session, cells: dict[int, int | None], mission: MissionSettings
) -> int | None:
    """The deepest unit whose current AOR holds a point with these cells, or None.

    Uses the finest mission resolution the point has a cell at; the point is inside a stored
    (compacted) set iff one of its own cells from the coarsest mission resolution up to that
    one is in it.
    """
    usable = [r for r in mission.h3_resolutions if cells.get(r)]
    if not usable:
        return None
    resolution = max(usable)
    candidates = [int(cells[r]) for r in usable if r <= resolution]  # type: ignore[arg-type]
    statement = (
        select(AorVersion.unit_id)
        .join(AorCell, AorCell.aor_version_id == AorVersion.id)
        .join(Unit, Unit.id == AorVersion.unit_id)
        .where(
            AorVersion.valid_to.is_(None),
            AorCell.resolution == resolution,
            AorCell.cell.in_(candidates),
        )
        .order_by(Unit.depth.desc(), Unit.id)
        .limit(1)
    )
    return session.scalar(statement)


def route_many(
    *, session: Session, cells: Sequence[dict[int, int | None]], mission: MissionSettings
) -> list[int | None]:
    """:func:`route_cells` for many points with one query (a sync push routes a batch)."""
    wanted: list[tuple[int, list[int]] | None] = []
    for point in cells:
        usable = [r for r in mission.h3_resolutions if point.get(r)]
        if not usable:
            wanted.append(None)
            continue
        resolution = max(usable)
        wanted.append((resolution, [int(point[r]) for r in usable if r <= resolution]))  # type: ignore[arg-type]
    keys = sorted({(w[0], c) for w in wanted if w is not None for c in w[1]})
    if not keys:
        return [None] * len(cells)
    # Core, not ORM execution: plain rows, and none of the ORM's per-statement set-up (a push
    # runs a dozen such lookups per batch). The AOR tables are not written during a push.
    rows = (
        session.connection()
        .execute(
            select(AorCell.resolution, AorCell.cell, Unit.depth, Unit.id)
            .join(AorVersion, AorCell.aor_version_id == AorVersion.id)
            .join(Unit, Unit.id == AorVersion.unit_id)
            .where(
                AorVersion.valid_to.is_(None),
                bulk.pairs_in(session, (AorCell.resolution, AorCell.cell), keys),
            )
        )
        .all()
    )
    # (resolution, cell) -> the deepest unit holding it, ties to the lowest id (as route_cells)
    best: dict[tuple[int, int], tuple[int, int]] = {}
    for resolution, cell, depth, unit_id in rows:
        key = (resolution, cell)
        rank = (-depth, unit_id)
        if key not in best or rank < best[key]:
            best[key] = rank
    routed: list[int | None] = []
    for w in wanted:
        if w is None:
            routed.append(None)
            continue
        ranks = [best[(w[0], c)] for c in w[1] if (w[0], c) in best]
        routed.append(min(ranks)[1] if ranks else None)
    return routed


def reassign_all_aor_units(*, session: Session, mission: MissionSettings) -> int:
    """Recompute ``aor_unit_id`` for every report and incident from the current AORs.

    One correlated UPDATE per (table, resolution): an integer join that runs the same on both
    backends. Rows are handled at their finest mission resolution.
    """
    from server.incidents.models import Incident  # the incidents slice depends on this one

    updated = 0
    resolutions: Sequence[int] = mission.h3_resolutions
    for model in (Report, Incident):
        for index, resolution in enumerate(resolutions):
            own = [getattr(model, f"h3_res{r}") for r in resolutions if r <= resolution]
            finer = resolutions[index + 1] if index + 1 < len(resolutions) else None
            routed = (
                select(AorVersion.unit_id)
                .join(AorCell, AorCell.aor_version_id == AorVersion.id)
                .join(Unit, Unit.id == AorVersion.unit_id)
                .where(
                    AorVersion.valid_to.is_(None),
                    AorCell.resolution == resolution,
                    AorCell.cell.in_(own),
                )
                .order_by(Unit.depth.desc(), Unit.id)
                .limit(1)
                .scalar_subquery()
            )
            condition = getattr(model, f"h3_res{resolution}").is_not(None)
            if finer is not None:
                condition = condition & getattr(model, f"h3_res{finer}").is_(None)
            result = session.execute(
                sql_update(model).where(condition).values(aor_unit_id=routed),
                execution_options={"synchronize_session": False},
            )
            updated += result.rowcount or 0
        coarsest = getattr(model, f"h3_res{resolutions[0]}")
        session.execute(
            sql_update(model).where(coarsest.is_(None)).values(aor_unit_id=None),
            execution_options={"synchronize_session": False},
        )
    session.flush()
    return updated
