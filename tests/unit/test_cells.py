"""The H3 door: point indexing across resolutions, polygon fills, compaction, conversions."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, Polygon, box

from geo import STORED_RESOLUTIONS
from geo import cells as geo_cells
from server.db.columns import CellColumns

REPO = Path(__file__).resolve().parents[2]


def test_only_geo_cells_imports_h3() -> None:
    offenders = []
    for path in REPO.glob("**/*.py"):
        # Benchmarks call h3/h3ronpy directly on purpose: they are the baselines we measure
        # ourselves against, not part of Vigil.
        if {".venv", "benchmarks"} & set(path.relative_to(REPO).parts) or path == (
            REPO / "geo" / "cells.py"
        ):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] in {"h3", "h3ronpy"} for n in names):
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def test_stored_resolutions_match_the_cell_columns() -> None:
    columns = {name for name in vars(CellColumns) if name.startswith("h3_res")}
    assert columns == {f"h3_res{r}" for r in STORED_RESOLUTIONS}


def test_index_points_is_hierarchical_and_honours_finest_resolution() -> None:
    lat = np.array([5.7591, 4.3612, 10.29])
    lng = np.array([20.6706, 18.5550, 22.78])
    finest = np.array([10, 6, -1])
    matrix = geo_cells.index_points(lat, lng, finest, STORED_RESOLUTIONS)
    assert matrix.shape == (3, len(STORED_RESOLUTIONS))
    # first point: every resolution, each the parent of the next
    for j in range(len(STORED_RESOLUTIONS) - 1):
        child, parent = int(matrix[0, j + 1]), int(matrix[0, j])
        assert geo_cells.parent_cell(child, STORED_RESOLUTIONS[j]) == parent
    # second point: nothing finer than 6
    by_res = dict(zip(STORED_RESOLUTIONS, matrix[1].tolist(), strict=True))
    assert all(by_res[r] for r in STORED_RESOLUTIONS if r <= 6)
    assert not any(by_res[r] for r in STORED_RESOLUTIONS if r > 6)
    # third point: no cell at all
    assert not matrix[2].any()


def test_index_points_agrees_with_single_cell_lookups() -> None:
    lat, lng = 5.7591, 20.6706
    cell9 = int(geo_cells.index_points([lat], [lng], [9], (9,))[0, 0])
    c_lat, c_lng = geo_cells.cell_center(cell9)
    assert abs(c_lat - lat) < 0.01 and abs(c_lng - lng) < 0.01
    assert geo_cells.cell_resolution(cell9) == 9


@pytest.mark.parametrize(
    ("shape", "resolution"),
    [
        (box(20.0, 5.5, 20.5, 6.0), 8),
        (box(20.0, 5.5, 20.5, 6.0), 9),
        (Polygon([(18.2, 4.1), (19.4, 4.3), (19.9, 5.6), (18.9, 6.2), (18.0, 5.1)]), 8),
        (Point(20.6, 5.7).buffer(0.3), 9),
        (box(20.0, 5.5, 20.01, 5.51), 9),
    ],
    ids=["box-res8", "box-res9", "pentagon-res8", "disc-res9", "tiny-box-res9"],
)
def test_compact_fill_equals_the_direct_fill(shape: Polygon, resolution: int) -> None:
    compact = geo_cells.compact_polygon_cells(shape, resolution, 5)
    resolutions = {geo_cells.cell_resolution(int(c)) for c in compact}
    assert resolutions <= set(range(5, resolution + 1))
    expanded = geo_cells.uncompact_cells(compact, resolution)
    direct = geo_cells.polygon_cells(shape, resolution)
    assert np.array_equal(expanded, direct)
    assert compact.size < direct.size or direct.size < 7


def test_compact_fill_membership_is_an_integer_in_over_a_points_own_cells() -> None:
    shape = Polygon([(18.2, 4.1), (19.4, 4.3), (19.9, 5.6), (18.9, 6.2), (18.0, 5.1)])
    stored = set(geo_cells.compact_polygon_cells(shape, 9, 5).tolist())
    rng = np.random.default_rng(7)
    lat = rng.uniform(4.0, 6.3, 4000)
    lng = rng.uniform(17.9, 20.0, 4000)
    own = geo_cells.index_points(lat, lng, np.full(4000, 9), (5, 6, 7, 8, 9))
    member = np.array([any(int(c) in stored for c in row) for row in own])
    c_lat, c_lng = geo_cells.cells_centers(own[:, -1])
    centre_inside = shapely.contains_xy(shape, c_lng, c_lat)
    assert np.array_equal(member, centre_inside)
    assert 0.2 < member.mean() < 0.9


def test_empty_polygon_and_bad_resolution_order() -> None:
    assert geo_cells.compact_polygon_cells(Polygon(), 8, 5).size == 0
    with pytest.raises(ValueError, match="coarsest_resolution"):
        geo_cells.compact_polygon_cells(box(0, 0, 1, 1), 5, 8)


def test_string_round_trip_and_invalid_cells() -> None:
    cell = int(geo_cells.index_points([5.0], [20.0], [7], (7,))[0, 0])
    text = geo_cells.cell_to_string(cell)
    assert geo_cells.cell_from_string(text) == cell
    for bad in ("zz", "", "8f", "0"):
        with pytest.raises(geo_cells.InvalidCellError):
            geo_cells.cell_from_string(bad)
    with pytest.raises(geo_cells.InvalidCellError):
        geo_cells.cell_resolution(12345)


def test_cell_boundary_is_a_closed_ring_around_the_centre() -> None:
    cell = int(geo_cells.index_points([5.0], [20.0], [6], (6,))[0, 0])
    ring = geo_cells.cell_boundary(cell)
    assert ring[0] == ring[-1] and len(ring) == 7
    hexagon = Polygon(ring)
    lat, lng = geo_cells.cell_center(cell)
    assert hexagon.contains(Point(lng, lat))
