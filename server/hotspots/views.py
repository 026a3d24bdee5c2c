"""The threat picture: /api/v1/hotspots."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from geo import cells as geo_cells
from server.access.policy import Actor
from server.deps import AppSettings, CurrentActor, DbSession
from server.errors import NotFoundError, ValidationFailedError
from server.hotspots import service
from server.hotspots.schemas import (
    HotspotCollection,
    HotspotFeature,
    HotspotMetadata,
    HotspotProperties,
)
from server.taxonomy.service import check_filter_codes
from server.units import service as units
from server.units.models import Unit
from server.users.enums import Role

router = APIRouter(prefix="/hotspots", tags=["hotspots"])


def audience_for(actor: Actor) -> str:
    return service.FULL if actor.role is Role.PROTECTION_OFFICER else service.GENERAL


def _unit_for(session: DbSession, actor: Actor, unit_id: int | None) -> Unit:
    wanted = unit_id if unit_id is not None else actor.unit_id
    if wanted is None:
        raise ValidationFailedError.on("query:unit", "name the unit whose area to analyse")
    unit = units.get(session=session, unit_id=wanted)
    if unit is None or (actor.scope_unit_ids is not None and unit.id not in actor.scope_unit_ids):
        raise NotFoundError(f"Unit {wanted} does not exist or is not visible to you.")
    return unit


def _feature(row: dict[str, object]) -> HotspotFeature:
    cell = int(row["cell"])  # type: ignore[call-overload]
    ring = geo_cells.cell_boundary(cell)
    text = geo_cells.cell_to_string(cell)
    properties = HotspotProperties(cell=text, **{k: v for k, v in row.items() if k != "cell"})
    return HotspotFeature(
        id=text,
        geometry={
            "type": "Polygon",
            "coordinates": [[[round(x, 6), round(y, 6)] for x, y in ring]],
        },
        properties=properties,
    )


@router.get(
    "",
    response_model=HotspotCollection,
    summary="Hotspots, emerging patterns and early-warning flags of an area (GeoJSON cells)",
    description=(
        "Getis-Ord Gi* over the AOR's cells at `resolution`, for incidents (not reports) in "
        "the `window_days` before `as_of`; emerging hot spot categories over the window's time "
        "bins; a surge score (the last bin against the cell's own past) and a precursor index. "
        "Only cells with something to show are returned. Protection officers see every "
        "incident; everyone else sees normal-tier incidents, and sensitive families only at "
        "resolution ≤ 6 as counts of at least 5 (smaller counts withheld, with complementary "
        "suppression across resolutions)."
    ),
)
def get_hotspots(
    session: DbSession,
    actor: CurrentActor,
    settings: AppSettings,
    unit: Annotated[
        int | None,
        Query(description="Unit whose AOR to analyse (default: yours, or your nearest parent's)"),
    ] = None,
    resolution: Annotated[int | None, Query(ge=0, le=15)] = None,
    window_days: Annotated[int, Query(description="Days before as_of")] = 30,
    as_of: Annotated[AwareDatetime | None, Query()] = None,
    family: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
    category: Annotated[list[str], Query()] = [],  # noqa: B006
    half_life_days: Annotated[float | None, Query(gt=0, le=3650)] = None,
) -> HotspotCollection:
    check_filter_codes(category, family)
    unit_obj = _unit_for(session, actor, unit)
    aor = service.current_aor_for_unit(session, unit_obj)
    if aor is None:
        raise ValidationFailedError.on(
            "query:unit", f"unit {unit_obj.code} and its parents have no area of responsibility"
        )
    audience = audience_for(actor)
    selection = service.selected_categories(family, category)
    sensitive_general = audience == service.GENERAL and service.is_sensitive_selection(selection)
    if resolution is None:
        resolution = service.default_resolution(
            session, aor, settings, sensitive_general=sensitive_general
        )
    result = service.picture(
        session=session,
        aor=aor,
        resolution=resolution,
        window_days=window_days,
        as_of=as_of,
        audience=audience,
        settings=settings,
        families=family,
        categories=category,
        half_life_days=half_life_days,
    )
    metadata = HotspotMetadata(
        **result.analysis_key,
        source=result.source,  # type: ignore[arg-type]
        computed_at=result.computed_at,
        universe_cells=result.universe_cells,
        incidents=result.incidents,
        bin_days=result.bin_days,
        n_bins=result.n_bins,
        suppressed_cells=result.suppressed_cells,
        parameters=result.parameters,
    )
    return HotspotCollection(metadata=metadata, features=[_feature(r) for r in result.rows])
