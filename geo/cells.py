"""The one door to H3: every other module speaks of cells as ``int64`` and never imports h3.

Cells are H3 indexes held as signed 64-bit integers (an H3 index never sets the top bit, so
it fits a PostgreSQL ``BIGINT`` and a numpy ``int64`` unchanged). ``0`` is never a valid cell
and serves as "no cell" in arrays. Bulk paths go through h3ronpy, which is vectorised in Rust;
h3-py is used only for single cells and for polygon fills.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import h3.api.basic_int as h3
import h3.api.numpy_int as h3_numpy
import h3ronpy
import numpy as np
import numpy.typing as npt
import shapely
from h3ronpy import vector as h3_vector

__all__ = [
    "MAX_STORED_RESOLUTION",
    "MIN_STORED_RESOLUTION",
    "NO_CELL",
    "STORED_RESOLUTIONS",
    "CellArray",
    "InvalidCellError",
    "average_edge_length_m",
    "cell_boundary",
    "cell_center",
    "cell_from_string",
    "cell_parents",
    "cell_resolution",
    "cell_to_string",
    "cells_centers",
    "cells_in_compacted",
    "compact_polygon_cells",
    "disk_size",
    "grid_disks",
    "index_points",
    "is_valid_cell",
    "parent_cell",
    "point_cells",
    "polygon_cells",
    "uncompact_cells",
    "uncompacted_size",
]

#: Resolutions for which reports, incidents and AORs carry cells in storage. A mission chooses
#: its working resolutions among these (default 5–9).
MIN_STORED_RESOLUTION = 4
MAX_STORED_RESOLUTION = 10
STORED_RESOLUTIONS: tuple[int, ...] = tuple(range(MIN_STORED_RESOLUTION, MAX_STORED_RESOLUTION + 1))

#: Sentinel for "this point has no cell at this resolution".
NO_CELL = 0

CellArray = npt.NDArray[np.int64]


class InvalidCellError(ValueError):
    """A value that is not a valid H3 cell index."""


def average_edge_length_m(resolution: int) -> float:
    """Average hexagon edge length at ``resolution`` in metres (H3's published table)."""
    return float(h3.average_hexagon_edge_length(resolution, unit="m"))


def _as_uint64(cells: npt.ArrayLike) -> npt.NDArray[np.uint64]:
    return np.asarray(cells, dtype=np.int64).view(np.uint64)


def index_points(
    lat: npt.ArrayLike,
    lng: npt.ArrayLike,
    finest_resolution: npt.ArrayLike,
    resolutions: Sequence[int] = STORED_RESOLUTIONS,
) -> CellArray:
    """Index points at several resolutions at once, honouring each point's finest resolution.

    Parameters
    ----------
    lat, lng
        Coordinates in degrees (WGS 84), shape ``(n,)``.
    finest_resolution
        Per point, the finest resolution its location supports; ``-1`` for none.
    resolutions
        The resolutions to index at, ascending.

    Returns
    -------
    numpy.ndarray
        ``int64`` array of shape ``(n, len(resolutions))``; column ``j`` holds the cell at
        ``resolutions[j]``, or :data:`NO_CELL` where that is finer than the point supports.

    Notes
    -----
    Coarser cells are the *ancestors* of the point's finest cell, so a point's cells always
    nest: counts at a coarse resolution are exactly the sums of the finer counts (which the
    small-count suppression and the AOR membership test rely on). H3 children are not contained
    in their parent, so for about 6.5 % of points that ancestor is not the cell a direct lookup
    at the coarser resolution gives (measured in ``benchmarks/bench_ingest.py``): the point then
    lies just outside the ancestor's hexagon, within its descendants.
    """
    lat_arr = np.asarray(lat, dtype=np.float64)
    lng_arr = np.asarray(lng, dtype=np.float64)
    finest = np.asarray(finest_resolution, dtype=np.int64)
    out = np.zeros((lat_arr.shape[0], len(resolutions)), dtype=np.int64)
    if lat_arr.shape[0] == 0 or not resolutions:
        return out
    top = max(resolutions)
    finest_cells = np.asarray(
        h3_vector.coordinates_to_cells(
            lat_arr, lng_arr, np.full(lat_arr.shape[0], top, dtype=np.uint8)
        ),
        dtype=np.uint64,
    )
    for j, resolution in enumerate(resolutions):
        at_res = np.asarray(h3ronpy.change_resolution(finest_cells, resolution), dtype=np.uint64)
        out[:, j] = np.where(finest >= resolution, at_res.view(np.int64), NO_CELL)
    return out


def point_cells(lat: npt.ArrayLike, lng: npt.ArrayLike, resolution: int) -> CellArray:
    """The cell of each point at one resolution (vectorised; no precision rules applied).

    >>> cells = point_cells([5.76], [20.67], 8)
    >>> cell_resolution(int(cells[0]))
    8
    """
    lat_arr = np.asarray(lat, dtype=np.float64)
    lng_arr = np.asarray(lng, dtype=np.float64)
    if lat_arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    found = h3_vector.coordinates_to_cells(
        lat_arr, lng_arr, np.full(lat_arr.size, resolution, dtype=np.uint8)
    )
    return np.asarray(found, dtype=np.uint64).view(np.int64)


def cells_in_compacted(
    cells: npt.ArrayLike, compacted: npt.ArrayLike, resolution: int, coarsest_resolution: int
) -> npt.NDArray[np.bool_]:
    """Whether each cell of ``resolution`` lies in a compacted set (as
    :func:`compact_polygon_cells` stores an AOR): one of its ancestors at
    ``coarsest_resolution … resolution`` (itself included) is in the set. Never expands the set,
    so the test costs the same for a district and for the whole country."""
    arr = np.asarray(cells, dtype=np.int64)
    wanted = np.unique(np.asarray(compacted, dtype=np.int64))
    inside = np.zeros(arr.shape, dtype=bool)
    if arr.size == 0 or wanted.size == 0:
        return inside
    for level in range(coarsest_resolution, resolution + 1):
        ancestors = arr if level == resolution else cell_parents(arr, level)
        inside |= np.isin(ancestors, wanted)
    return inside


def compact_polygon_cells(polygon: Any, resolution: int, coarsest_resolution: int) -> CellArray:
    """Cells of ``resolution`` whose centres lie inside ``polygon``, compacted.

    The set is compacted (seven complete siblings replaced by their parent) but never above
    ``coarsest_resolution``, so every stored cell's ancestors down to that resolution are the
    cells a point index gives: membership of a point is then an integer ``IN`` over the point's
    own cells at ``coarsest_resolution … resolution``.

    Uncompacted to ``resolution`` the result is exactly ``polygon_to_cells(polygon,
    resolution)`` (centre containment); it is computed top-down so the interior of a large area
    is never enumerated cell by cell:

    1. candidates at ``coarsest_resolution`` are the cells whose hexagon, grown by a margin
       ``δ``, overlaps the polygon;
    2. a candidate whose hexagon grown by ``δ`` lies inside the polygon (tested as: the hexagon
       lies inside the polygon eroded by ``δ``) is kept whole, since all its descendants'
       centres are inside; the others are split into their children and the test repeats one
       resolution finer;
    3. at ``resolution`` the remaining cells are kept when their centre is inside.

    ``δ`` is one average edge length of the level being tested. H3 children are not exactly
    nested in their parent: descendant centres stray beyond the parent hexagon by up to about
    0.2 edge lengths (measured), so one edge is a five-fold margin. Agreement with the direct
    fill is checked in ``tests/unit/test_cells.py``.

    Parameters
    ----------
    polygon
        A shapely Polygon or MultiPolygon (or anything with ``__geo_interface__``) in WGS 84.
    resolution
        Resolution whose cell centres decide membership.
    coarsest_resolution
        Compaction stops here.

    Returns
    -------
    numpy.ndarray
        Sorted, unique ``int64`` cells of mixed resolutions between ``coarsest_resolution`` and
        ``resolution``.
    """
    if coarsest_resolution > resolution:
        raise ValueError("coarsest_resolution must not be finer than resolution")
    geometry = shapely.geometry.shape(polygon)
    if geometry.is_empty:
        return np.zeros(0, dtype=np.int64)
    _min_lon, min_lat, _max_lon, max_lat = geometry.bounds
    # Metres → degrees, conservatively (longitude degrees shrink towards the poles).
    widest_lat = min(89.0, max(abs(min_lat), abs(max_lat)) + 1.0)
    metres_per_degree = 111_320.0 * max(0.05, math.cos(math.radians(widest_lat)))

    def margin(level: int) -> float:
        return average_edge_length_m(level) / metres_per_degree

    grown = geometry.buffer(margin(coarsest_resolution))
    candidates = np.asarray(
        h3_numpy.h3shape_to_cells_experimental(
            h3_numpy.geo_to_h3shape(shapely.geometry.mapping(grown)),
            coarsest_resolution,
            contain="overlap",
        ),
        dtype=np.uint64,
    )
    shapely.prepare(geometry)
    kept: list[npt.NDArray[np.uint64]] = []
    level = coarsest_resolution
    while level < resolution and candidates.size:
        hexagons = shapely.from_wkb(
            np.asarray(h3_vector.cells_to_wkb_polygons(candidates), dtype=object)
        )
        eroded = geometry.buffer(-margin(level))
        inside = (
            shapely.contains(eroded, hexagons)
            if not eroded.is_empty
            else np.zeros(candidates.size, dtype=bool)
        )
        kept.append(candidates[inside])
        boundary = candidates[~inside]
        if boundary.size == 0:
            candidates = boundary
            break
        children = np.asarray(h3ronpy.uncompact(boundary, level + 1), dtype=np.uint64)
        child_hexagons = shapely.from_wkb(
            np.asarray(h3_vector.cells_to_wkb_polygons(children), dtype=object)
        )
        near = geometry.buffer(margin(level + 1))
        candidates = children[shapely.intersects(near, child_hexagons)]
        level += 1
    if candidates.size:
        lat, lng = cells_centers(candidates.view(np.int64))
        kept.append(candidates[shapely.contains_xy(geometry, lng, lat)])
    found = np.concatenate(kept) if kept else np.zeros(0, dtype=np.uint64)
    if found.size == 0:
        return np.zeros(0, dtype=np.int64)
    compacted = np.asarray(h3ronpy.compact(found, mixed_resolutions=True), dtype=np.uint64)
    resolutions = np.asarray(h3ronpy.cells_resolution(compacted), dtype=np.int64)
    too_coarse = resolutions < coarsest_resolution
    if too_coarse.any():
        expanded = np.asarray(
            h3ronpy.uncompact(compacted[too_coarse], coarsest_resolution), dtype=np.uint64
        )
        compacted = np.concatenate([compacted[~too_coarse], expanded])
    return np.unique(compacted.view(np.int64))


def polygon_cells(polygon: Any, resolution: int) -> CellArray:
    """Every cell of ``resolution`` whose centre lies in ``polygon`` (direct fill; the
    reference :func:`compact_polygon_cells` is checked against)."""
    shape = h3_numpy.geo_to_h3shape(shapely.geometry.mapping(shapely.geometry.shape(polygon)))
    filled = np.asarray(h3_numpy.h3shape_to_cells(shape, resolution), dtype=np.uint64)
    return np.unique(filled.view(np.int64))


def disk_size(k: int) -> int:
    """Cells in a k-ring disk around a hexagon (including it): 1 + 3k(k+1)."""
    return 1 + 3 * k * (k + 1)


def grid_disks(cells: npt.ArrayLike, k: int) -> tuple[npt.NDArray[np.int64], CellArray]:
    """Every cell within ``k`` steps of each of ``cells`` (each disk includes its centre).

    Returns ``(origin, neighbour)``: flat arrays where ``neighbour[i]`` is within ``k`` of
    ``cells[origin[i]]``. Vectorised through h3ronpy; a disk that touches one of H3's twelve
    pentagons (all at sea) has fewer cells, and only then are disks computed one by one.
    """
    arr = _as_uint64(cells)
    n = arr.size
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    flat = np.asarray(h3ronpy.grid_disk(arr, k, flatten=True), dtype=np.uint64).view(np.int64)
    size = disk_size(k)
    if flat.size == n * size:
        return np.repeat(np.arange(n, dtype=np.int64), size), flat
    origins: list[int] = []
    neighbours: list[int] = []
    for index, cell in enumerate(arr.view(np.int64).tolist()):
        disk = h3.grid_disk(cell, k)
        origins.extend([index] * len(disk))
        neighbours.extend(int(c) for c in disk)
    return np.asarray(origins, dtype=np.int64), np.asarray(neighbours, dtype=np.int64)


def cell_parents(cells: npt.ArrayLike, resolution: int) -> CellArray:
    """Ancestors at the coarser ``resolution`` of many cells (vectorised)."""
    arr = _as_uint64(cells)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(h3ronpy.change_resolution(arr, resolution), dtype=np.uint64).view(np.int64)


def uncompacted_size(cells: npt.ArrayLike, resolution: int) -> int:
    """How many cells of ``resolution`` a compacted set stands for, without expanding it
    (each cell of resolution ``r`` holds ``7 ** (resolution - r)``; pentagons, all at sea,
    hold slightly fewer)."""
    arr = _as_uint64(cells)
    if arr.size == 0:
        return 0
    levels = np.asarray(h3ronpy.cells_resolution(arr), dtype=np.int64)
    return int(np.sum(np.power(7, resolution - levels, dtype=np.int64)))


def uncompact_cells(cells: npt.ArrayLike, resolution: int) -> CellArray:
    """Expand a compacted cell set to all its cells at ``resolution`` (sorted, unique)."""
    arr = _as_uint64(cells)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    expanded = np.asarray(h3ronpy.uncompact(arr, resolution), dtype=np.uint64)
    return np.unique(expanded.view(np.int64))


def cells_centers(cells: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Centres of many cells as ``(lat, lng)`` arrays in degrees."""
    arr = _as_uint64(cells)
    if arr.size == 0:
        empty = np.zeros(0, dtype=np.float64)
        return empty, empty
    batch = h3_vector.cells_to_coordinates(arr)
    return (
        np.asarray(batch.column("lat"), dtype=np.float64),
        np.asarray(batch.column("lng"), dtype=np.float64),
    )


def is_valid_cell(cell: int) -> bool:
    """Whether ``cell`` is a valid H3 cell index."""
    return cell > 0 and bool(h3.is_valid_cell(int(cell)))


def _checked(cell: int) -> int:
    if not is_valid_cell(cell):
        raise InvalidCellError(f"{cell!r} is not a valid H3 cell")
    return int(cell)


def cell_resolution(cell: int) -> int:
    """Resolution of one cell."""
    return int(h3.get_resolution(_checked(cell)))


def parent_cell(cell: int, resolution: int) -> int:
    """Ancestor of ``cell`` at the coarser ``resolution``."""
    return int(h3.cell_to_parent(_checked(cell), resolution))


def cell_center(cell: int) -> tuple[float, float]:
    """Centre of one cell as ``(lat, lng)`` in degrees."""
    lat, lng = h3.cell_to_latlng(_checked(cell))
    return float(lat), float(lng)


def cell_boundary(cell: int) -> list[tuple[float, float]]:
    """Closed boundary ring of a cell as ``(lng, lat)`` pairs (GeoJSON order)."""
    ring = [(float(lng), float(lat)) for lat, lng in h3.cell_to_boundary(_checked(cell))]
    ring.append(ring[0])
    return ring


def cell_to_string(cell: int) -> str:
    """The canonical hexadecimal form of a cell (what H3 tools and QGIS plugins show)."""
    return str(h3.int_to_str(_checked(cell)))


def cell_from_string(text: str) -> int:
    """Parse the hexadecimal form of a cell."""
    try:
        value = int(h3.str_to_int(text))
    except (ValueError, TypeError) as exc:
        raise InvalidCellError(f"{text!r} is not a valid H3 cell") from exc
    return _checked(value)
