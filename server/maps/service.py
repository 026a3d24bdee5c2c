"""What the threat map shows one user: every layer gathered through the services the API uses,
so the map obeys the same need-to-know policy as every other read.

- hotspot cells (Gi* confidence class) and emerging-hotspot categories of the view's AOR;
- incidents the user may read in full, as points; sensitive families, for users who may not
  read them, only as suppressed counts in coarse cells (``hotspots`` GENERAL audience: res ≤ 6,
  counts ≥ k, complementary suppression) — never a point, a date finer than the day, or text;
- patrol tracks of the last 24 h and 24–72 h; ranked coverage gaps; protected sites; AOR
  boundaries per level of the hierarchy; open alerts.

Cells travel as H3 ids and are drawn in the browser (h3-js), so 50,000 hexagons are a few
hundred kilobytes, not tens of megabytes of GeoJSON polygons. Coordinates are rounded to 5
decimals (about a metre).
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import shapely
from sqlalchemy import select
from sqlalchemy.orm import Session

from geo import cells as geo_cells
from server.access.policy import Actor, Detail
from server.coverage import service as coverage
from server.db.base import utcnow
from server.errors import NotFoundError, ValidationFailedError
from server.hotspots import service as hotspots
from server.hotspots.views import audience_for
from server.incidents import service as incidents
from server.incidents.service import IncidentFilters
from server.patrols.models import Patrol, PatrolTrackPoint
from server.settings import Settings
from server.sites import service as sites
from server.taxonomy.codes import TAXONOMY, Sensitivity, get_category
from server.units import service as units
from server.units.models import AorVersion, Unit

__all__ = ["MapQuery", "ThreatMap", "threat_map"]

#: Incidents drawn at most (newest first); the map says when it shows fewer than there are.
MAX_INCIDENTS = 5000
#: Gaps drawn at most (best ranked first).
MAX_GAPS = 500
PRECISION = 5


@dataclass(frozen=True)
class MapQuery:
    """What the user asked for: ``/maps/threat?unit=&window_hours=&hotspot_days=&family=``."""

    unit_id: int | None = None
    window_hours: int = 72
    hotspot_days: int = 30
    families: tuple[str, ...] = ()


@dataclass
class ThreatMap:
    """Plain values for the renderer (``server.maps.render``)."""

    title: str
    generated_at: datetime
    query: MapQuery
    audience: str
    #: (south, west, north, east) to open the map on.
    bounds: tuple[float, float, float, float] | None
    hotspot_resolution: int | None = None
    #: [cell hex, confidence class −3..3, emerging category, count, z, surge, precursor]
    hotspots: list[list[Any]] = field(default_factory=list)
    #: [cell hex, count] — sensitive families as suppressed coarse counts
    sensitive_cells: list[list[Any]] = field(default_factory=list)
    sensitive_resolution: int | None = None
    #: [cell hex, rank, threat, hours uncovered, allowed hours, unit, reasons, sites]
    gaps: list[list[Any]] = field(default_factory=list)
    gaps_total: int = 0
    #: [lat, lon, category label, family, day or time, killed, verification]
    incidents: list[list[Any]] = field(default_factory=list)
    incidents_total: int = 0
    #: {"recent": [[name, [[lat, lon], ...]], ...], "earlier": [...]}
    tracks: dict[str, list[list[Any]]] = field(default_factory=dict)
    #: depth -> GeoJSON FeatureCollection of AORs at that level
    aors: dict[int, dict[str, Any]] = field(default_factory=dict)
    aor_level_names: dict[int, str] = field(default_factory=dict)
    #: GeoJSON FeatureCollection of protected sites
    sites: dict[str, Any] = field(default_factory=dict)
    #: [cell hex or None, lat, lon, severity, title, state]
    alerts: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


SENSITIVE_FAMILIES = tuple(
    sorted({c.family.value for c in TAXONOMY if c.sensitivity is not Sensitivity.NORMAL})
)


def _check(query: MapQuery) -> None:
    if not 1 <= query.window_hours <= 24 * 366:
        raise ValidationFailedError.on("query:window_hours", "must be between 1 and 8784 hours")
    if not 1 <= query.hotspot_days <= 3650:
        raise ValidationFailedError.on("query:hotspot_days", "must be between 1 and 3650 days")
    known = {c.family.value for c in TAXONOMY}
    for family in query.families:
        if family not in known:
            raise ValidationFailedError.on(
                "query:family", f"unknown family {family!r}; see /api/v1/taxonomy"
            )


def _view_unit(session: Session, actor: Actor, unit_id: int | None) -> Unit | None:
    if unit_id is None:
        return None
    unit = units.get(session=session, unit_id=unit_id)
    if unit is None or (actor.scope_unit_ids is not None and unit.id not in actor.scope_unit_ids):
        raise NotFoundError(f"Unit {unit_id} does not exist or is not visible to you.")
    return unit


def _scope(session: Session, actor: Actor, unit: Unit | None) -> list[int] | None:
    """Unit ids the view covers: the unit's subtree within the actor's scope (None: all)."""
    if unit is None:
        return None if actor.scope_unit_ids is None else sorted(actor.scope_unit_ids)
    subtree = set(units.subtree_ids(session=session, unit=unit))
    if actor.scope_unit_ids is not None:
        subtree &= actor.scope_unit_ids
    return sorted(subtree)


def _rounded(geometry: Any, tolerance: float) -> dict[str, Any]:
    simple = geometry.simplify(tolerance, preserve_topology=True) if tolerance else geometry
    mapping: dict[str, Any] = shapely.geometry.mapping(
        shapely.set_precision(simple, 10**-PRECISION)
    )
    return mapping


def _aors(session: Session, scope: list[int] | None, result: ThreatMap) -> None:
    statement = (
        select(AorVersion, Unit)
        .join(Unit, Unit.id == AorVersion.unit_id)
        .where(AorVersion.valid_to.is_(None))
        .order_by(Unit.depth, Unit.code)
    )
    if scope is not None:
        statement = statement.where(Unit.id.in_(scope))
    levels: dict[int, list[dict[str, Any]]] = defaultdict(list)
    kinds: dict[int, set[str]] = defaultdict(set)
    for aor, unit in session.execute(statement).all():
        levels[unit.depth].append(
            {
                "type": "Feature",
                "geometry": _rounded(aor.geometry, 0.002),
                "properties": {"unit": unit.code, "name": unit.name, "id": unit.id},
            }
        )
        kinds[unit.depth].add(unit.kind.value.replace("_", " "))
    for depth, features in levels.items():
        result.aors[depth] = {"type": "FeatureCollection", "features": features}
        result.aor_level_names[depth] = " / ".join(sorted(kinds[depth]))


def _bounds(session: Session, unit: Unit | None, result: ThreatMap) -> None:
    shapes = []
    if unit is not None:
        aor = hotspots.current_aor_for_unit(session, unit)
        if aor is not None:
            shapes.append(aor.geometry)
    if not shapes:
        shapes = [
            shapely.geometry.shape(f["geometry"])
            for collection in result.aors.values()
            for f in collection["features"]
        ]
    if not shapes:
        return
    west, south, east, north = shapely.union_all(shapes).bounds
    result.bounds = (south, west, north, east)


def _hotspots(
    session: Session, actor: Actor, unit: Unit | None, settings: Settings, result: ThreatMap
) -> None:
    anchor = unit
    if anchor is None and actor.unit_id is not None:
        anchor = units.get(session=session, unit_id=actor.unit_id)
    aor = hotspots.current_aor_for_unit(session, anchor) if anchor is not None else None
    if aor is None:
        # A whole-mission desk (the JOC) belongs to no area: analyse the widest visible one.
        aor = session.scalars(
            select(AorVersion)
            .join(Unit, Unit.id == AorVersion.unit_id)
            .where(AorVersion.valid_to.is_(None))
            .where(
                Unit.id.in_(sorted(actor.scope_unit_ids))
                if actor.scope_unit_ids is not None
                else Unit.id.is_not(None)
            )
            .order_by(Unit.depth, Unit.id)
            .limit(1)
        ).first()
    if aor is None:
        result.notes.append("No area of responsibility is visible to you: no hotspot analysis.")
        return
    families = list(result.query.families)
    selection = hotspots.selected_categories(families, [])
    sensitive_general = result.audience == hotspots.GENERAL and hotspots.is_sensitive_selection(
        selection
    )
    resolution = hotspots.default_resolution(
        session, aor, settings, sensitive_general=sensitive_general
    )
    window = min(result.query.hotspot_days, hotspots.max_window_days(resolution))
    picture = hotspots.picture(
        session=session,
        aor=aor,
        resolution=resolution,
        window_days=window,
        as_of=None,
        audience=result.audience,
        settings=settings,
        families=families,
    )
    result.hotspot_resolution = resolution
    result.hotspots = [
        [
            geo_cells.cell_to_string(int(row["cell"])),
            int(row["confidence"]),
            str(row["emerging"]),
            int(row["count"]),
            round(float(row["z_score"]), 2),
            bool(row["surge_flag"]),
            bool(row["precursor_flag"]),
        ]
        for row in picture.rows
    ]
    if window < result.query.hotspot_days:
        result.notes.append(
            f"Hotspots over {window} days (the longest window at resolution {resolution})."
        )
    if result.audience == hotspots.GENERAL:
        wanted = [f for f in SENSITIVE_FAMILIES if not families or f in families]
        if not wanted:
            return
        coarse = min(settings.hotspots.sensitive_max_resolution, resolution)
        sensitive = hotspots.picture(
            session=session,
            aor=aor,
            resolution=coarse,
            window_days=min(result.query.hotspot_days, hotspots.max_window_days(coarse)),
            as_of=None,
            audience=hotspots.GENERAL,
            settings=settings,
            families=wanted,
        )
        result.sensitive_resolution = coarse
        result.sensitive_cells = [
            [geo_cells.cell_to_string(int(row["cell"])), int(row["count"])]
            for row in sensitive.rows
            if int(row["count"]) > 0
        ]


def _incidents(session: Session, actor: Actor, now: datetime, result: ThreatMap) -> None:
    filters = IncidentFilters(
        occurred_from=now - timedelta(hours=result.query.window_hours),
        families=result.query.families,
    )
    cursor: str | None = None
    shown: list[Any] = []
    total = 0
    while True:
        page, cursor = incidents.list_(
            session=session, actor=actor, filters=filters, limit=500, cursor=cursor
        )
        for incident in page:
            total += 1
            # Sensitive incidents a user may not read in full are in the coarse-cell layer.
            if incidents.detail(session=session, actor=actor, incident=incident) is Detail.FULL:
                shown.append(incident)
        if cursor is None or len(shown) >= MAX_INCIDENTS:
            break
    shown = shown[:MAX_INCIDENTS]
    incidents.audit_sensitive_reads(
        session=session, actor=actor, incidents=shown, action="map_viewed"
    )
    result.incidents_total = total
    for incident in shown:
        category = get_category(incident.category)
        when = incident.occurred_at.strftime("%Y-%m-%d %H:%M UTC")
        result.incidents.append(
            [
                round(incident.latitude, PRECISION),
                round(incident.longitude, PRECISION),
                category.label,
                incident.family,
                when,
                incident.killed_best,
                incident.verification_state.value,
            ]
        )


def _tracks(
    session: Session, actor: Actor, scope: list[int] | None, now: datetime, result: ThreatMap
) -> None:
    since = now - timedelta(hours=max(result.query.window_hours, 24))
    recent_from = now - timedelta(hours=24)
    statement = select(Patrol).where((Patrol.ended_at.is_(None)) | (Patrol.ended_at >= since))
    if scope is not None:
        statement = statement.where(
            Patrol.unit_id.in_(scope) | (Patrol.created_by_user_id == actor.user_id)
        )
    patrols = {p.id: p for p in session.scalars(statement)}
    result.tracks = {"recent": [], "earlier": []}
    if not patrols:
        return
    fixes = session.execute(
        select(
            PatrolTrackPoint.patrol_id,
            PatrolTrackPoint.recorded_at,
            PatrolTrackPoint.latitude,
            PatrolTrackPoint.longitude,
        )
        .where(
            PatrolTrackPoint.patrol_id.in_(list(patrols)),
            PatrolTrackPoint.recorded_at >= since,
            PatrolTrackPoint.excluded.is_(False),
        )
        .order_by(PatrolTrackPoint.patrol_id, PatrolTrackPoint.recorded_at)
    ).all()
    by_patrol: dict[uuid.UUID, dict[str, list[tuple[float, float]]]] = defaultdict(
        lambda: {"recent": [], "earlier": []}
    )
    for patrol_id, at, lat, lon in fixes:
        part = by_patrol[patrol_id]["recent" if at >= recent_from else "earlier"]
        part.append((lon, lat))
    for patrol_id, parts in by_patrol.items():
        patrol = patrols[patrol_id]
        label = f"{patrol.name or patrol.kind.value.replace('_', ' ')} ({patrol.status.value})"
        if parts["earlier"] and parts["recent"]:
            parts["recent"].insert(0, parts["earlier"][-1])  # no break where the bands meet
        for band, points in parts.items():
            if len(points) < 2:
                continue
            line = shapely.LineString(points).simplify(0.0002)
            result.tracks[band].append(
                [label, [[round(y, PRECISION), round(x, PRECISION)] for x, y in line.coords]]
            )


def _gaps(
    session: Session, scope: list[int] | None, settings: Settings, now: datetime, result: ThreatMap
) -> None:
    picture = coverage.gaps(
        session,
        settings=settings,
        resolution=settings.coverage_resolution,
        audience=result.audience,
        now=now,
        unit_ids=scope,
        limit=MAX_GAPS,
    )
    result.gaps_total = picture.total
    codes = dict(
        session.execute(
            select(Unit.id, Unit.name).where(
                Unit.id.in_(sorted({r.unit_id for r in picture.rows if r.unit_id is not None}))
            )
        ).all()
    )
    for row in picture.rows:
        result.gaps.append(
            [
                geo_cells.cell_to_string(row.cell),
                row.rank,
                round(row.threat, 2),
                round(row.hours_uncovered, 1) if math.isfinite(row.hours_uncovered) else None,
                round(row.allowed_hours, 1),
                codes.get(row.unit_id, "JOC (outside every AOR)") if row.unit_id else "JOC",
                ", ".join(row.reasons),
                ", ".join(s.name for s in row.sites),
            ]
        )
    if picture.threat_as_of is None:
        result.notes.append(
            "No stored hotspot picture yet: gaps show protected sites and flash incidents only."
        )


def _sites(session: Session, scope: list[int] | None, result: ThreatMap) -> None:
    features = []
    for site in sites.list_(session=session, aor_unit_ids=scope):
        geometry = site.area if site.area is not None else site.location
        features.append(
            {
                "type": "Feature",
                "geometry": _rounded(geometry, 0.0),
                "properties": {
                    "name": site.name,
                    "kind": site.kind.value.replace("_", " "),
                    "population": site.population,
                },
            }
        )
    result.sites = {"type": "FeatureCollection", "features": features}


def _alerts(session: Session, actor: Actor, result: ThreatMap) -> None:
    """Open alerts the actor may see, at their cell's centre (a sensitive case's cell is
    already the coarse one: the alert never had a finer place)."""
    from server.alerts_inbox import service as alert_service

    for alert in alert_service.list_(session=session, actor=actor, state="open", limit=500):
        lat, lng = geo_cells.cell_center(alert.cell)
        result.alerts.append(
            [
                geo_cells.cell_to_string(alert.cell),
                round(lat, 5),
                round(lng, 5),
                alert.severity,
                alert.title,
                alert.state,
            ]
        )


def threat_map(
    *,
    session: Session,
    actor: Actor,
    settings: Settings,
    query: MapQuery,
    now: datetime | None = None,
) -> ThreatMap:
    """Every layer of the threat map for ``actor`` (see the module docstring)."""
    _check(query)
    moment = now or utcnow()
    unit = _view_unit(session, actor, query.unit_id)
    scope = _scope(session, actor, unit)
    title = f"Threat map — {unit.name}" if unit is not None else "Threat map"
    result = ThreatMap(
        title=title,
        generated_at=moment,
        query=query,
        audience=audience_for(actor),
        bounds=None,
    )
    _aors(session, scope, result)
    _bounds(session, unit, result)
    _hotspots(session, actor, unit, settings, result)
    _incidents(session, actor, moment, result)
    _tracks(session, actor, scope, moment, result)
    _gaps(session, scope, settings, moment, result)
    _sites(session, scope, result)
    _alerts(session, actor, result)
    return result
