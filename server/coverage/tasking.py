"""Tasking suggestions: which of a unit's gaps its available patrols should close, and how.

Reads the unit's ranked gaps (:func:`server.coverage.service.gaps`, the unit and its subunits),
turns each requested patrol into a :class:`geo.tasking.PatrolAsset` (base: given, or the unit's;
speed and sensing radius: given, or the type's defaults) and runs
:func:`geo.tasking.suggest_routes`; :func:`geo.tasking.nearest_first` on the same input is
returned alongside, so a commander sees what the suggestion gains over the obvious plan.
Nothing is stored: a suggestion is advice, the commander tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy.orm import Session

from geo.coverage import sensing_k
from geo.gaps import ThreatReason
from geo.tasking import PatrolAsset, TaskingPlan, nearest_first, suggest_routes
from server.access.policy import Actor, Permission, require
from server.coverage import service as coverage
from server.coverage.schemas import TaskingPatrol
from server.errors import ValidationFailedError
from server.patrols.enums import SENSING_RADIUS_M, TYPICAL_SPEED_KMH, PatrolType
from server.settings import Settings
from server.units.models import Unit

__all__ = ["MAX_CANDIDATE_GAPS", "MAX_PATROLS", "Suggestion", "suggest"]

#: The top-ranked gaps a suggestion chooses among (beyond them the tail is noise).
MAX_CANDIDATE_GAPS = 3000
#: Most patrols in one request (counts summed).
MAX_PATROLS = 40


@dataclass(frozen=True)
class Suggestion:
    unit: Unit
    resolution: int
    gaps: list[coverage.GapRow]
    gap_total: int
    specs: list[tuple[int, TaskingPatrol]]  # (spec index, spec) of each asset, in plan order
    assets: list[PatrolAsset]
    plan: TaskingPlan
    baseline: TaskingPlan


def _assets(
    specs: Sequence[TaskingPatrol], unit: Unit, resolution: int, settings: Settings
) -> tuple[list[tuple[int, TaskingPatrol]], list[PatrolAsset]]:
    if sum(spec.count for spec in specs) > MAX_PATROLS:
        raise ValidationFailedError.on(
            "patrols", f"at most {MAX_PATROLS} patrols in one suggestion"
        )
    owners: list[tuple[int, TaskingPatrol]] = []
    assets: list[PatrolAsset] = []
    for index, spec in enumerate(specs):
        if spec.base is not None:
            base_lon, base_lat = spec.base.longitude, spec.base.latitude
        elif unit.base_location is not None:
            base_lon, base_lat = unit.base_location.x, unit.base_location.y
        else:
            raise ValidationFailedError.on(
                f"patrols.{index}.base", f"unit {unit.code} has no base location; give a base"
            )
        kind = PatrolType(spec.kind)
        radius = spec.sensing_radius_m if spec.sensing_radius_m is not None else None
        asset = PatrolAsset(
            base_lon=base_lon,
            base_lat=base_lat,
            sensing_k=sensing_k(
                radius if radius is not None else SENSING_RADIUS_M[kind], resolution
            ),
            speed_kmh=spec.speed_kmh or TYPICAL_SPEED_KMH[kind],
            max_range_km=spec.max_range_km,
            max_duration_h=spec.max_duration_hours,
            dwell_h=spec.dwell_minutes / 60.0,
            max_stops=spec.max_stops,
            detour_factor=1.0 if kind is PatrolType.AIR else settings.coverage.detour_factor,
        )
        for _ in range(spec.count):
            owners.append((index, spec))
            assets.append(asset)
    return owners, assets


def suggest(
    session: Session,
    *,
    settings: Settings,
    actor: Actor,
    unit: Unit,
    unit_ids: Sequence[int],
    specs: Sequence[TaskingPatrol],
    resolution: int,
    audience: str,
    reasons: Sequence[ThreatReason] = (),
    now: datetime | None = None,
) -> Suggestion:
    """Routes for the unit's available patrols over its ranked gaps (see the module doc)."""
    require(actor, Permission.SUGGEST_TASKING)
    owners, assets = _assets(specs, unit, resolution, settings)
    picture = coverage.gaps(
        session,
        settings=settings,
        resolution=resolution,
        audience=audience,
        now=now,
        unit_ids=unit_ids,
        reasons=reasons,
        limit=MAX_CANDIDATE_GAPS,
    )
    cells = np.array([g.cell for g in picture.rows], dtype=np.int64)
    score = np.array([g.score for g in picture.rows], dtype=np.float64)
    return Suggestion(
        unit=unit,
        resolution=resolution,
        gaps=picture.rows,
        gap_total=picture.total,
        specs=owners,
        assets=assets,
        plan=suggest_routes(cells, score, assets),
        baseline=nearest_first(cells, score, assets),
    )
