"""How fine a grid a reported location can honestly be placed on.

A report located "somewhere in Ouaka prefecture" must not light up a 0.1 km² hexagon: the cell a
report is counted in must be at least as large as the uncertainty of its location. This module
turns a location precision (and, for GPS fixes, the stated accuracy) into the finest H3
resolution the location supports.
"""

from __future__ import annotations

from enum import StrEnum

from geo.cells import MAX_STORED_RESOLUTION, MIN_STORED_RESOLUTION, average_edge_length_m

__all__ = ["NOMINAL_UNCERTAINTY_M", "LocationPrecision", "finest_supported_resolution"]


class LocationPrecision(StrEnum):
    """How precisely the reported point locates the event.

    ``exact`` is a GPS fix or a surveyed point; ``settlement`` a named village or town;
    ``area`` somewhere within about 25 km of a known point (UCDP ``where_prec`` 2, ACLED
    ``geo_precision`` 2); ``district`` and ``province`` the second and first administrative
    level; ``country`` only the country.
    """

    EXACT = "exact"
    SETTLEMENT = "settlement"
    AREA = "area"
    DISTRICT = "district"
    PROVINCE = "province"
    COUNTRY = "country"


#: Radius (metres) within which the true location lies, for each precision. ``exact`` uses the
#: report's own accuracy when it has one, this value otherwise.
NOMINAL_UNCERTAINTY_M: dict[LocationPrecision, float] = {
    LocationPrecision.EXACT: 100.0,
    LocationPrecision.SETTLEMENT: 1_000.0,
    LocationPrecision.AREA: 25_000.0,
    LocationPrecision.DISTRICT: 50_000.0,
    LocationPrecision.PROVINCE: 150_000.0,
    LocationPrecision.COUNTRY: 1_000_000.0,
}


#: Stored resolutions finest first, with their average edge length (fixed by H3).
_EDGES_FINEST_FIRST: tuple[tuple[int, float], ...] = tuple(
    (resolution, average_edge_length_m(resolution))
    for resolution in range(MAX_STORED_RESOLUTION, MIN_STORED_RESOLUTION - 1, -1)
)


def finest_supported_resolution(
    precision: LocationPrecision | str, accuracy_m: float | None = None
) -> int | None:
    """Return the finest stored H3 resolution a location of this precision supports.

    The rule: a cell may hold the report only if the cell's average edge length is at least the
    location's uncertainty radius, so the true location is in the cell or a direct neighbour.
    The uncertainty is ``accuracy_m`` for exact fixes that state it (never less than 1 m), the
    nominal radius of the precision otherwise.

    Returns ``None`` when even the coarsest stored resolution is finer than the uncertainty:
    such a report is counted by administrative area, never in a hexagon.

    Examples
    --------
    >>> finest_supported_resolution("exact", 10.0)
    10
    >>> finest_supported_resolution("settlement")
    7
    >>> finest_supported_resolution("district") is None
    True
    """
    precision = LocationPrecision(precision)
    uncertainty = NOMINAL_UNCERTAINTY_M[precision]
    if precision is LocationPrecision.EXACT and accuracy_m is not None:
        uncertainty = max(float(accuracy_m), 1.0)
    for resolution, edge_m in _EDGES_FINEST_FIRST:
        if edge_m >= uncertainty:
            return resolution
    return None
