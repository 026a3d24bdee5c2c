"""Patrol coverage per cell: densification, km and minutes, signal losses, sensing rings, roll-up
and the incremental last-visit table — against references computed another way."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo import cells as geo_cells
from geo.coverage import (
    densify_tracks,
    merge_last_visit,
    sensing_k,
    track_coverage,
)
from geo.tracks import haversine_m

RES = 8
EDGE_M = geo_cells.average_edge_length_m(RES)


def walk(n: int, seed: int, *, step_deg: float = 0.002, dt_s: float = 60.0):
    """A wandering track of ``n`` fixes near Bambari, one fix a minute."""
    rng = np.random.default_rng(seed)
    lon = 20.67 + np.cumsum(rng.normal(0, step_deg, n))
    lat = 5.76 + np.cumsum(rng.normal(0, step_deg, n))
    return np.arange(n) * dt_s, lon, lat


def reference_km_per_cell(t, lon, lat, resolution, samples_per_segment=400):
    """Brute force: every segment cut into many tiny pieces, each piece's length to its cell."""
    total: dict[int, float] = {}
    for i in range(len(t) - 1):
        f = (np.arange(samples_per_segment) + 0.5) / samples_per_segment
        mid_lon = lon[i] + f * (lon[i + 1] - lon[i])
        mid_lat = lat[i] + f * (lat[i + 1] - lat[i])
        piece = haversine_m(lon[i], lat[i], lon[i + 1], lat[i + 1]) / 1000 / samples_per_segment
        for cell in geo_cells.point_cells(mid_lat, mid_lon, resolution).tolist():
            total[cell] = total.get(cell, 0.0) + float(piece)
    return total


@pytest.mark.parametrize(
    ("radius_m", "resolution", "k"),
    [(0, 8, 0), (300, 8, 0), (500, 8, 1), (1000, 8, 1), (1500, 8, 2), (3000, 8, 3), (500, 9, 1)],
    ids=["zero", "escort", "foot", "mobile", "long-range", "air", "foot-res9"],
)
def test_sensing_k_rounds_the_radius_to_rings(radius_m, resolution, k):
    assert sensing_k(radius_m, resolution) == k


def test_sensing_k_refuses_a_negative_radius():
    with pytest.raises(ValueError, match="non-negative"):
        sensing_k(-1, 8)


def test_densified_pieces_are_short_and_add_up_to_the_track():
    t, lon, lat = walk(200, seed=1, step_deg=0.01)
    step = 0.5 * EDGE_M
    pieces = densify_tracks(t, lon, lat, max_step_m=step)
    moving = pieces.km > 0
    assert pieces.km.max() * 1000 <= step + 1e-6
    total = haversine_m(lon[:-1], lat[:-1], lon[1:], lat[1:]).sum() / 1000
    assert pieces.km.sum() == pytest.approx(total, rel=1e-12)
    assert pieces.minutes.sum() == pytest.approx((t[-1] - t[0]) / 60, rel=1e-12)
    # Pieces tile time: each ends where the next begins, within one segment.
    assert np.all(pieces.end_s[moving] > pieces.start_s[moving])
    assert np.all(np.diff(pieces.start_s[moving]) >= 0)


def test_km_per_cell_matches_a_brute_force_reference():
    t, lon, lat = walk(60, seed=2, step_deg=0.004)
    coverage = track_coverage(t, lon, lat, RES)
    reference = reference_km_per_cell(t, lon, lat, RES)
    got = {int(c): float(k) for c, k in zip(coverage.cells, coverage.km, strict=True) if k > 0}
    assert set(got) <= set(reference)  # no cell the track does not cross
    crossed_heavily = {c for c, km in reference.items() if km > 0.5 * EDGE_M / 1000}
    assert crossed_heavily <= set(got)  # and every cell it crosses for half an edge or more
    # Each piece is at most half an edge; per cell, the error is a piece at each crossing.
    for cell, km in reference.items():
        assert abs(got.get(cell, 0.0) - km) <= 2 * 0.5 * EDGE_M / 1000 + 1e-9
    assert sum(got.values()) == pytest.approx(sum(reference.values()), rel=1e-9)


def test_a_walk_inside_one_cell_credits_its_length_and_duration_there():
    centre_lat, centre_lng = geo_cells.cell_center(
        int(geo_cells.point_cells([5.76], [20.67], 8)[0])
    )
    lon = np.array([centre_lng - 0.0005, centre_lng + 0.0005])
    lat = np.array([centre_lat, centre_lat])
    coverage = track_coverage([0.0, 900.0], lon, lat, RES)
    assert coverage.cells.size == 1
    assert coverage.km[0] == pytest.approx(
        float(haversine_m(lon[0], lat[0], lon[1], lat[1])) / 1000
    )
    assert coverage.minutes[0] == pytest.approx(15.0)
    assert (coverage.first_s[0], coverage.last_s[0]) == (0.0, 900.0)


def test_a_signal_loss_credits_nothing_but_both_ends_are_present():
    lon = np.array([20.60, 20.601, 20.70, 20.701])
    lat = np.array([5.70, 5.70, 5.80, 5.80])
    t = np.array([0.0, 60.0, 60.0 + 3 * 3600, 120.0 + 3 * 3600])  # three hours without a fix
    coverage = track_coverage(t, lon, lat, RES, max_gap_s=1800)
    assert coverage.km.sum() == pytest.approx(
        float(
            haversine_m(lon[0], lat[0], lon[1], lat[1])
            + haversine_m(lon[2], lat[2], lon[3], lat[3])
        )
        / 1000
    )
    assert coverage.minutes.sum() == pytest.approx(2.0)
    before = geo_cells.point_cells([5.70], [20.601], RES)[0]
    after = geo_cells.point_cells([5.80], [20.70], RES)[0]
    assert {int(before), int(after)} <= set(coverage.cells.tolist())
    # Nothing in between: the 15 km straight line was never walked.
    middle = geo_cells.point_cells([5.75], [20.65], RES)[0]
    assert int(middle) not in set(coverage.cells.tolist())


def test_a_single_fix_is_presence_without_effort():
    coverage = track_coverage([100.0], [20.67], [5.76], RES)
    assert coverage.cells.tolist() == geo_cells.point_cells([5.76], [20.67], RES).tolist()
    assert (coverage.km[0], coverage.minutes[0], coverage.last_s[0]) == (0.0, 0.0, 100.0)


def test_the_sensing_ring_spreads_presence_but_not_effort():
    t, lon, lat = walk(40, seed=3)
    direct = track_coverage(t, lon, lat, RES, sensing_k=0)
    ringed = track_coverage(t, lon, lat, RES, sensing_k=1)
    origin, neighbour = geo_cells.grid_disks(direct.cells, 1)
    assert set(ringed.cells.tolist()) == set(neighbour.tolist())
    assert ringed.km.sum() == pytest.approx(direct.km.sum())
    on_track = dict(zip(direct.cells.tolist(), direct.km.tolist(), strict=True))
    for cell, km in zip(ringed.cells.tolist(), ringed.km.tolist(), strict=True):
        assert km == pytest.approx(on_track.get(cell, 0.0))
    # A ring cell's last presence is the latest of the visited cells within one step of it.
    expected_last: dict[int, float] = {}
    for o, n in zip(origin.tolist(), neighbour.tolist(), strict=True):
        expected_last[n] = max(expected_last.get(n, -np.inf), float(direct.last_s[o]))
    got_last = dict(zip(ringed.cells.tolist(), ringed.last_s.tolist(), strict=True))
    assert got_last == expected_last


def test_many_tracks_at_once_equal_each_track_alone():
    tracks = [walk(30 + 5 * i, seed=10 + i) for i in range(4)]
    t = np.concatenate([tr[0] for tr in tracks])
    lon = np.concatenate([tr[1] for tr in tracks])
    lat = np.concatenate([tr[2] for tr in tracks])
    index = np.concatenate([np.full(tr[0].size, i) for i, tr in enumerate(tracks)])
    k = np.array([0, 1, 2, 1])
    together = track_coverage(t, lon, lat, RES, sensing_k=k, track=index)
    for i, (ti, xi, yi) in enumerate(tracks):
        alone = track_coverage(ti, xi, yi, RES, sensing_k=int(k[i]))
        rows = together.track == i
        assert together.cells[rows].tolist() == alone.cells.tolist()
        np.testing.assert_allclose(together.km[rows], alone.km)
        np.testing.assert_allclose(together.minutes[rows], alone.minutes)
        np.testing.assert_array_equal(together.last_s[rows], alone.last_s)
    totals = together.per_cell()
    assert totals.km.sum() == pytest.approx(together.km.sum())
    assert totals.tracks.max() <= 4


def test_roll_up_sums_effort_into_the_ancestors():
    t, lon, lat = walk(80, seed=4, step_deg=0.01)
    fine = track_coverage(t, lon, lat, 8, sensing_k=1)
    coarse = fine.roll_up(6)
    assert coarse.resolution == 6
    assert set(coarse.cells.tolist()) == set(geo_cells.cell_parents(fine.cells, 6).tolist())
    assert coarse.km.sum() == pytest.approx(fine.km.sum())
    assert coarse.last_s.max() == fine.last_s.max()
    with pytest.raises(ValueError, match="coarser"):
        coarse.roll_up(7)


@pytest.mark.parametrize(
    ("times", "message"),
    [([0.0, 60.0, 30.0], "increase strictly"), ([0.0, 60.0, 60.0], "increase strictly")],
    ids=["unsorted", "duplicate"],
)
def test_times_must_increase_within_a_track(times, message):
    with pytest.raises(ValueError, match=message):
        track_coverage(times, [20.0, 20.001, 20.002], [5.0, 5.0, 5.0], RES)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 30), st.floats(0, 1e6, allow_nan=False)), min_size=0, max_size=40
    ),
    st.randoms(use_true_random=False),
)
def test_the_last_visit_table_ends_the_same_whatever_the_arrival_order(visits, rand):
    """Tracks arrive late, twice, out of order: the kept maximum does not care."""
    cells = np.array([c for c, _ in visits], dtype=np.int64)
    times = np.array([t for _, t in visits], dtype=np.float64)
    shuffled = list(range(len(visits)))
    rand.shuffle(shuffled)
    table_cells, table_last = np.zeros(0, dtype=np.int64), np.zeros(0)
    for start in range(0, len(shuffled), 3):
        batch = shuffled[start : start + 3] * 2  # every batch delivered twice
        table_cells, table_last = merge_last_visit(
            table_cells, table_last, cells[batch], times[batch]
        )
    expected = {}
    for c, t in visits:
        expected[c] = max(expected.get(c, -np.inf), t)
    assert dict(zip(table_cells.tolist(), table_last.tolist(), strict=True)) == expected
