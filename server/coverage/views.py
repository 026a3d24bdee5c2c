"""Coverage, gaps and tasking: /api/v1/coverage, /api/v1/gaps, /api/v1/tasking."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query
from pydantic import AwareDatetime
from sqlalchemy import select
from sqlalchemy.orm import Session

from geo import cells as geo_cells
from geo.gaps import ThreatReason
from geo.tasking import TaskingPlan
from server.access.policy import Actor
from server.coverage import service, tasking
from server.coverage.schemas import (
    CoverageCollection,
    CoverageFeature,
    CoverageMetadata,
    CoverageProperties,
    GapCollection,
    GapFeature,
    GapMetadata,
    GapProperties,
    NearestAssetRead,
    PresenceAroundRead,
    SiteRefRead,
    TaskingRequest,
    TaskingResponse,
    TaskingRoute,
    TaskingStop,
    TaskingSummary,
)
from server.db.base import utcnow
from server.deps import AppSettings, CurrentActor, DbSession
from server.errors import NotFoundError, ValidationFailedError
from server.hotspots.service import current_aor_for_unit
from server.hotspots.views import audience_for
from server.units import service as units
from server.units.models import Unit

router = APIRouter(tags=["coverage"])

#: The longest coverage window served at once.
MAX_COVERAGE_DAYS = 366


def _visible_unit(session: Session, actor: Actor, unit_id: int | None, field: str) -> Unit:
    wanted = unit_id if unit_id is not None else actor.unit_id
    if wanted is None:
        raise ValidationFailedError.on(field, "name a unit")
    unit = units.get(session=session, unit_id=wanted)
    if unit is None or (actor.scope_unit_ids is not None and unit.id not in actor.scope_unit_ids):
        raise NotFoundError(f"Unit {wanted} does not exist or is not visible to you.")
    return unit


def _hexagon(cell: int) -> dict[str, object]:
    ring = geo_cells.cell_boundary(cell)
    return {"type": "Polygon", "coordinates": [[[round(x, 6), round(y, 6)] for x, y in ring]]}


def _point(lon: float, lat: float) -> dict[str, object]:
    return {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]}


def _reasons(names: list[str], field: str) -> list[ThreatReason]:
    try:
        return [ThreatReason.parse(name) for name in names]
    except ValueError as exc:
        raise ValidationFailedError.on(field, str(exc)) from None


def _scope_of(session: Session, actor: Actor, unit: Unit | None) -> list[int] | None:
    """Unit ids whose gaps to show: the unit's subtree within the actor's scope."""
    if unit is None:
        return None if actor.scope_unit_ids is None else sorted(actor.scope_unit_ids)
    subtree = set(units.subtree_ids(session=session, unit=unit))
    if actor.scope_unit_ids is not None:
        subtree &= actor.scope_unit_ids
    return sorted(subtree)


def _unit_codes(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(Unit.id, Unit.code).where(Unit.id.in_(sorted(ids)))).all())


def _gap_properties(row: service.GapRow, codes: dict[int, str]) -> GapProperties:
    return GapProperties(
        rank=row.rank,
        cell=geo_cells.cell_to_string(row.cell),
        score=round(row.score, 3),
        threat=row.threat,
        reasons=row.reasons,
        exposure=round(row.exposure, 3),
        hours_uncovered=round(row.hours_uncovered, 2),
        allowed_hours=round(row.allowed_hours, 2),
        last_presence_at=row.last_presence_at,
        last_patrol_id=row.last_patrol_id,
        unit_id=row.unit_id,
        unit_code=codes.get(row.unit_id) if row.unit_id is not None else None,
        sites=[SiteRefRead(**vars(s)) for s in row.sites],
    )


@router.get(
    "/coverage",
    response_model=CoverageCollection,
    summary="Patrol coverage of an area: km, minutes, patrols and last visit per cell (GeoJSON)",
    description=(
        "Cells of the unit's AOR (default: yours, or your nearest parent's) where patrols were "
        "present between `since` and `until` (default: the last 30 days): the km and minutes "
        "their tracks spent inside the cell, how many patrols were present (the sensing radius "
        "of each patrol type included) and the last presence. Every unit's patrols count — "
        "presence is presence — unless `patrol_unit` names one (and its subunits)."
    ),
)
def get_coverage(
    session: DbSession,
    actor: CurrentActor,
    settings: AppSettings,
    unit: Annotated[int | None, Query(description="Unit whose AOR to show")] = None,
    resolution: Annotated[int | None, Query(ge=0, le=15)] = None,
    since: Annotated[AwareDatetime | None, Query()] = None,
    until: Annotated[AwareDatetime | None, Query()] = None,
    patrol_unit: Annotated[int | None, Query(description="Only this unit's patrols")] = None,
) -> CoverageCollection:
    chosen = service.check_resolution(settings, resolution, "query:resolution")
    end = until or utcnow()
    start = since or end - timedelta(days=30)
    if start >= end:
        raise ValidationFailedError.on("query:since", "must be before until")
    if end - start > timedelta(days=MAX_COVERAGE_DAYS):
        raise ValidationFailedError.on(
            "query:since", f"the window may span at most {MAX_COVERAGE_DAYS} days"
        )
    unit_obj = _visible_unit(session, actor, unit, "query:unit")
    aor = current_aor_for_unit(session, unit_obj)
    if aor is None:
        raise ValidationFailedError.on(
            "query:unit", f"unit {unit_obj.code} and its parents have no area of responsibility"
        )
    patrol_units = None
    if patrol_unit is not None:
        patrolling = _visible_unit(session, actor, patrol_unit, "query:patrol_unit")
        patrol_units = units.subtree_ids(session=session, unit=patrolling)
    rows = service.coverage_cells(
        session,
        aor=aor,
        resolution=chosen,
        since=start,
        until=end,
        settings=settings,
        patrol_unit_ids=patrol_units,
    )
    features = [
        CoverageFeature(
            id=geo_cells.cell_to_string(r.cell),
            geometry=_hexagon(r.cell),
            properties=CoverageProperties(
                cell=geo_cells.cell_to_string(r.cell),
                km=round(r.km, 4),
                minutes=round(r.minutes, 2),
                patrol_count=r.patrol_count,
                first_presence_at=r.first_presence_at,
                last_presence_at=r.last_presence_at,
            ),
        )
        for r in rows
    ]
    return CoverageCollection(
        metadata=CoverageMetadata(
            unit_id=aor.unit_id,
            aor_version=aor.version,
            resolution=chosen,
            since=start,
            until=end,
            cells=len(rows),
            km=round(sum(r.km for r in rows), 3),
            minutes=round(sum(r.minutes for r in rows), 1),
        ),
        features=features,
    )


@router.get(
    "/coverage/around/{cell}",
    response_model=PresenceAroundRead,
    summary="Presence around one cell: last visit, its ring, nearby gaps, the nearest asset",
)
def get_presence_around(
    cell: str, session: DbSession, actor: CurrentActor, settings: AppSettings
) -> PresenceAroundRead:
    value = geo_cells.cell_from_string(cell)
    service.check_resolution(settings, geo_cells.cell_resolution(value), "cell")
    picture = service.presence_around(
        session, value, utcnow(), settings=settings, audience=audience_for(actor)
    )
    scope = actor.scope_unit_ids
    if picture.unit_id is not None and scope is not None and picture.unit_id not in scope:
        raise NotFoundError(f"Cell {cell} is outside your units' areas.")
    visible = [
        g
        for g in picture.gaps
        if actor.scope_unit_ids is None or (g.unit_id in actor.scope_unit_ids)
    ]
    codes = _unit_codes(session, {g.unit_id for g in visible if g.unit_id is not None})
    nearest = picture.nearest
    return PresenceAroundRead(
        cell=geo_cells.cell_to_string(value),
        resolution=picture.resolution,
        last_presence_at=picture.last_presence_at,
        hours_uncovered=picture.hours_uncovered,
        ring_last_presence_at=picture.ring_last_presence_at,
        ring_hours_uncovered=picture.ring_hours_uncovered,
        unit_id=picture.unit_id,
        nearest=(
            NearestAssetRead(
                kind=nearest.kind,  # type: ignore[arg-type]
                unit_id=nearest.unit_id,
                patrol_id=nearest.patrol_id,
                name=nearest.name,
                location=_point(nearest.longitude, nearest.latitude),
                distance_km=nearest.distance_km,
                as_of=nearest.as_of,
            )
            if nearest is not None
            else None
        ),
        gaps=[_gap_properties(g, codes) for g in visible],
    )


@router.get(
    "/gaps",
    response_model=GapCollection,
    summary="Protection gaps: threatened cells without recent presence, ranked (GeoJSON)",
    description=(
        "Threatened cells — hot or emerging hot spot classes, surge or precursor flags (the "
        "newest stored snapshots of every current AOR, `VIGIL_COVERAGE_THREAT_WINDOW_DAYS`), a "
        "severe incident in the last `VIGIL_COVERAGE_FLASH_HOURS`, a protected site — whose "
        "last patrol presence is older than their threat allows, ranked by threat × hours "
        "uncovered × exposure, each assigned to the unit whose AOR holds it. You see the gaps "
        "of your units (all of them if you see the whole mission); `unit` narrows to one unit "
        "and its subunits, `threat` to cells with one of those reasons."
    ),
)
def get_gaps(
    session: DbSession,
    actor: CurrentActor,
    settings: AppSettings,
    unit: Annotated[int | None, Query(description="Gaps of this unit and its subunits")] = None,
    threat: Annotated[
        list[str],
        Query(description="Only gaps with one of these reasons: hot, emerging, surge, …"),
    ] = [],  # noqa: B006 - FastAPI copies defaults
    resolution: Annotated[int | None, Query(ge=0, le=15)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 100,
) -> GapCollection:
    chosen = service.check_resolution(settings, resolution, "query:resolution")
    reasons = _reasons(threat, "query:threat")
    unit_obj = _visible_unit(session, actor, unit, "query:unit") if unit is not None else None
    picture = service.gaps(
        session,
        settings=settings,
        resolution=chosen,
        audience=audience_for(actor),
        unit_ids=_scope_of(session, actor, unit_obj),
        reasons=reasons,
        limit=limit,
    )
    codes = _unit_codes(session, {r.unit_id for r in picture.rows if r.unit_id is not None})
    return GapCollection(
        metadata=GapMetadata(
            resolution=chosen,
            audience=picture.audience,  # type: ignore[arg-type]
            threat_window_days=picture.window_days,
            computed_at=picture.now,
            threat_as_of=picture.threat_as_of,
            threatened_cells=picture.threatened_cells,
            total=picture.total,
        ),
        features=[
            GapFeature(
                id=geo_cells.cell_to_string(r.cell),
                geometry=_hexagon(r.cell),
                properties=_gap_properties(r, codes),
            )
            for r in picture.rows
        ],
    )


@router.post(
    "/tasking",
    response_model=TaskingResponse,
    summary="Suggest routes for a unit's available patrols over its ranked gaps",
    description=(
        "Greedy maximum coverage (two passes, by threat and by threat per added km, the better "
        "kept): routes from each patrol's base that cover the most ranked gap threat within "
        "range, duration and stops. With one stop per patrol it covers at least half of the "
        "optimum (1 − 1/e when the patrols are interchangeable); with more stops it is a "
        "heuristic. The naive plan (nearest uncovered gap first) is returned for comparison. "
        "Nothing is stored."
    ),
)
def post_tasking(
    body: TaskingRequest, session: DbSession, actor: CurrentActor, settings: AppSettings
) -> TaskingResponse:
    chosen = service.check_resolution(settings, body.resolution, "resolution")
    reasons = _reasons(body.threat, "threat")
    unit_obj = _visible_unit(session, actor, body.unit_id, "unit_id")
    suggestion = tasking.suggest(
        session,
        settings=settings,
        actor=actor,
        unit=unit_obj,
        unit_ids=_scope_of(session, actor, unit_obj) or [],
        specs=body.patrols,
        resolution=chosen,
        audience=audience_for(actor),
        reasons=reasons,
    )
    return _tasking_response(suggestion)


def _summary(plan: TaskingPlan, threat_total: float) -> TaskingSummary:
    return TaskingSummary(
        threat_covered=round(plan.threat_covered, 3),
        threat_total=round(threat_total, 3),
        km=round(plan.km, 3),
        threat_per_km=round(plan.threat_per_km, 3),
        gaps_covered=int(plan.covered.sum()),
    )


def _tasking_response(suggestion: tasking.Suggestion) -> TaskingResponse:
    gaps = suggestion.gaps
    lat, lon = geo_cells.cells_centers(np.array([g.cell for g in gaps], dtype=np.int64))
    routes = []
    for route in suggestion.plan.routes:
        asset = suggestion.assets[route.patrol]
        spec_index, spec = suggestion.specs[route.patrol]
        stops, cumulative, hours = [], 0.0, 0.0
        for order, (gap_index, leg) in enumerate(
            zip(route.stops.tolist(), route.leg_km[:-1].tolist(), strict=True), start=1
        ):
            gap = gaps[gap_index]
            cumulative += leg
            hours += leg / asset.speed_kmh
            stops.append(
                TaskingStop(
                    order=order,
                    cell=geo_cells.cell_to_string(gap.cell),
                    location=_point(float(lon[gap_index]), float(lat[gap_index])),
                    leg_km=round(leg, 3),
                    cumulative_km=round(cumulative, 3),
                    eta_hours=round(hours, 3),
                    score=round(gap.score, 3),
                    reasons=gap.reasons,
                    hours_uncovered=round(gap.hours_uncovered, 2),
                )
            )
            hours += asset.dwell_h
        line = [[round(asset.base_lon, 6), round(asset.base_lat, 6)]]
        line += [s.location["coordinates"] for s in stops]
        line.append(line[0])
        routes.append(
            TaskingRoute(
                patrol=route.patrol,
                spec=spec_index,
                kind=spec.kind,
                base=_point(asset.base_lon, asset.base_lat),
                stops=stops,
                return_km=round(float(route.leg_km[-1]), 3),
                km=round(route.km, 3),
                hours=round(route.hours, 3),
                threat_covered=round(route.threat_covered, 3),
                gaps_covered=int(route.covered.size),
                geometry={"type": "LineString", "coordinates": line} if stops else None,
            )
        )
    threat_total = float(sum(g.score for g in gaps))
    return TaskingResponse(
        unit_id=suggestion.unit.id,
        resolution=suggestion.resolution,
        gaps_considered=len(gaps),
        gaps_total=suggestion.gap_total,
        rule=suggestion.plan.rule,
        routes=routes,
        summary=_summary(suggestion.plan, threat_total),
        nearest_first=_summary(suggestion.baseline, threat_total),
    )
