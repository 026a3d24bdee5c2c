"""Fields the server derives from what a client sends: cells, coarse location, day, tier.

Shared by the REST create/update path, the importers and incident fusion, so a report gets the
same cells and tier however it arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from geo import STORED_RESOLUTIONS, LocationPrecision, finest_supported_resolution
from geo import cells as geo_cells
from server.reports.enums import SourceType
from server.taxonomy.codes import Sensitivity, get_category, most_restrictive

__all__ = [
    "REDACTION_RESOLUTION",
    "Placement",
    "ReportValues",
    "cells_as_strings",
    "day_start",
    "list_sort_at",
    "placement",
    "placements",
    "placements_of",
    "redacted_fields",
    "sensitivity_for",
]

#: The one resolution at which sensitive reports are shown to readers without need-to-know
#: (res 6: hexagons of ~36 km², 3.7 km edge). Deterministic, so nothing can be averaged away.
REDACTION_RESOLUTION = 6


@dataclass(frozen=True)
class Placement:
    """Where a report sits on the grid."""

    cells: dict[int, int | None]
    finest_resolution: int | None
    coarse_longitude: float | None
    coarse_latitude: float | None


class ReportValues(dict[str, Any]):
    """The column values of a report not yet loaded as an ORM object (a batch of new reports
    inserted with one statement), readable like a ``Report`` by code that derives from
    reports: ``values.category``, ``values.cell_at(6)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Attributes are the items themselves: plain attribute reads, no lookup hook.
        self.__dict__ = self

    def cell_at(self, resolution: int) -> int | None:
        cell: int | None = self.get(f"h3_res{resolution}")
        return cell


def placements(
    longitudes: np.ndarray, latitudes: np.ndarray, finest: np.ndarray
) -> list[Placement]:
    """Vectorised placement of many points (``finest`` = -1 where no cell is supported)."""
    matrix = geo_cells.index_points(latitudes, longitudes, finest, STORED_RESOLUTIONS)
    column = STORED_RESOLUTIONS.index(REDACTION_RESOLUTION)
    coarse = matrix[:, column]
    coarse_lat, coarse_lng = geo_cells.cells_centers(coarse[coarse != 0])
    coarse_lat_full = np.full(coarse.shape[0], np.nan)
    coarse_lng_full = np.full(coarse.shape[0], np.nan)
    coarse_lat_full[coarse != 0] = coarse_lat
    coarse_lng_full[coarse != 0] = coarse_lng
    result = []
    for row, finest_res, lat_c, lng_c in zip(
        matrix.tolist(),
        finest.tolist(),
        coarse_lat_full.tolist(),
        coarse_lng_full.tolist(),
        strict=True,
    ):
        cells = {r: (c or None) for r, c in zip(STORED_RESOLUTIONS, row, strict=True)}
        has_coarse = not np.isnan(lat_c)
        result.append(
            Placement(
                cells=cells,
                finest_resolution=finest_res if finest_res >= 0 else None,
                coarse_longitude=lng_c if has_coarse else None,
                coarse_latitude=lat_c if has_coarse else None,
            )
        )
    return result


def placements_of(
    points: Sequence[tuple[float, float, LocationPrecision | str, float | None]],
) -> list[Placement]:
    """:func:`placement` of many ``(longitude, latitude, precision, accuracy_m)`` at once."""
    finest = [finest_supported_resolution(p[2], p[3]) for p in points]
    return placements(
        np.array([p[0] for p in points], dtype=float),
        np.array([p[1] for p in points], dtype=float),
        np.array([-1 if f is None else f for f in finest]),
    )


def placement(
    longitude: float,
    latitude: float,
    precision: LocationPrecision | str,
    accuracy_m: float | None,
) -> Placement:
    """Cells of one point at every stored resolution its precision supports."""
    return placements_of([(longitude, latitude, precision, accuracy_m)])[0]


def cells_as_strings(record: Any) -> dict[str, str]:
    """A report's or incident's cells as ``{"resolution": "hex cell"}`` (those it has)."""
    out = {}
    for resolution in STORED_RESOLUTIONS:
        cell = record.cell_at(resolution)
        if cell:
            out[str(resolution)] = geo_cells.cell_to_string(cell)
    return out


def redacted_fields(record: Any) -> dict[str, Any]:
    """All a reader without need-to-know learns of a sensitive report or incident: its
    category, its day and its res-6 cell."""
    cell = record.cell_at(REDACTION_RESOLUTION)
    return {
        "category": record.category,
        "family": record.family,
        "day": day_start(record.occurred_at).date(),
        "h3_res6": geo_cells.cell_to_string(cell) if cell else None,
    }


def day_start(moment: datetime) -> datetime:
    """Midnight UTC of the moment's day: the time bucket shown for sensitive reports."""
    moment = moment.astimezone(UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def list_sort_at(occurred_at: datetime, sensitivity: Sensitivity) -> datetime:
    """The ordering key lists use: exact for normal reports, the day for sensitive ones."""
    if sensitivity is Sensitivity.NORMAL:
        return occurred_at.astimezone(UTC)
    return day_start(occurred_at)


def sensitivity_for(
    *,
    category: str,
    source_type: SourceType | str,
    protection_concern: bool,
    involves_children: bool,
) -> Sensitivity:
    """The report's tier: the strictest of its category's and what its content calls for.

    Informant sources, child victims and an explicit protection concern raise a report to
    restricted; nothing a client sends can lower it below its category's tier.
    """
    tiers: list[Sensitivity] = [get_category(category).sensitivity]
    if source_type == SourceType.CONFIDENTIAL_INFORMANT:
        tiers.append(Sensitivity.RESTRICTED)
    if involves_children or protection_concern:
        tiers.append(Sensitivity.RESTRICTED)
    return most_restrictive(*tiers)
