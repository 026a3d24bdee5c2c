"""Tasking suggestions: feasibility, known answers, the ½ and 1 − 1/e guarantees against brute
force, sensing rings, and the comparison with nearest-gaps-first."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from geo import cells as geo_cells
from geo.tasking import PatrolAsset, nearest_first, suggest_routes
from geo.tracks import haversine_m

RES = 8
BASE = (20.67, 5.76)  # lon, lat
KM_PER_DEG_LON = float(haversine_m(BASE[0], BASE[1], BASE[0] + 1, BASE[1])) / 1000


def cell_east(km: float, north_km: float = 0.0) -> int:
    """The res-8 cell about ``km`` east (and ``north_km`` north) of the base."""
    lon = BASE[0] + km / KM_PER_DEG_LON
    lat = BASE[1] + north_km / 111.2
    return int(geo_cells.point_cells([lat], [lon], RES)[0])


def foot(range_km: float, *, stops: int = 12, k: int = 0, hours: float = 24.0, base=BASE):
    return PatrolAsset(
        base[0],
        base[1],
        sensing_k=k,
        speed_kmh=4.0,
        max_range_km=range_km,
        max_duration_h=hours,
        dwell_h=0.0,
        max_stops=stops,
        detour_factor=1.0,
    )


def test_the_range_decides_which_gaps_a_patrol_can_reach():
    near, far = cell_east(2), cell_east(10)
    short = suggest_routes([near, far], [1.0, 10.0], [foot(12)])
    assert short.routes[0].stops.tolist() == [0]  # the far one is 20 km there and back
    long = suggest_routes([near, far], [1.0, 10.0], [foot(25)])
    assert sorted(long.routes[0].stops.tolist()) == [0, 1]  # 2 + 8 + 10 km: both on the way
    assert long.threat_covered == 11.0
    assert long.routes[0].km == pytest.approx(20.0, abs=1.0)


def test_duration_and_dwell_limit_the_route_too():
    near, far = cell_east(2), cell_east(4)
    # 8 km at 4 km/h is 2 h of walking; two dwells of an hour make it 4 h.
    patrol = PatrolAsset(*BASE, 0, 4.0, 100.0, max_duration_h=3.5, dwell_h=1.0, detour_factor=1.0)
    plan = suggest_routes([near, far], [1.0, 5.0], [patrol])
    assert plan.routes[0].stops.tolist() == [1]
    assert plan.routes[0].hours <= 3.5


def test_a_stop_covers_its_sensing_ring():
    first = cell_east(3)
    neighbour = int(geo_cells.grid_disks([first], 1)[1][1])
    plan = suggest_routes([first, neighbour], [4.0, 4.0], [foot(20, k=1)])
    assert len(plan.routes[0].stops) == 1
    assert plan.covered.all() and plan.threat_covered == 8.0


def test_no_gaps_means_no_routes():
    plan = suggest_routes([], [], [foot(10)])
    assert plan.routes[0].stops.size == 0
    assert (plan.threat_covered, plan.km, plan.threat_per_km) == (0.0, 0.0, 0.0)


def test_routes_are_feasible_and_their_legs_add_up():
    rng = np.random.default_rng(7)
    lat = BASE[1] + rng.normal(0, 0.06, 300)
    lon = BASE[0] + rng.normal(0, 0.06, 300)
    cells = np.unique(geo_cells.point_cells(lat, lon, RES))
    score = rng.exponential(10, cells.size)
    patrols = [
        PatrolAsset(*BASE, 1, 4.0, 15.0, 6.0, dwell_h=0.25, max_stops=6),
        PatrolAsset(BASE[0] + 0.05, BASE[1], 1, 25.0, 60.0, 5.0, max_stops=10),
    ]
    for plan in (suggest_routes(cells, score, patrols), nearest_first(cells, score, patrols)):
        for route in plan.routes:
            patrol = patrols[route.patrol]
            assert patrol.fits(route.km, len(route.stops))
            assert len(route.stops) <= patrol.max_stops
            assert route.leg_km.sum() == pytest.approx(route.km)
            assert len(route.leg_km) == len(route.stops) + 1
        assert plan.threat_covered == pytest.approx(score[plan.covered].sum())
        assert sum(r.threat_covered for r in plan.routes) == pytest.approx(plan.threat_covered)


def _optimum_one_stop(cells, score, patrols):
    """Brute force with one stop per patrol (or none)."""
    n = len(cells)
    rings = {p.sensing_k: geo_cells.grid_disks(cells, p.sensing_k) for p in patrols}
    covers = {}
    for k, (origin, neighbour) in rings.items():
        index = {int(c): i for i, c in enumerate(cells)}
        covers[k] = [
            {
                index[int(nb)]
                for o, nb in zip(origin, neighbour, strict=True)
                if o == i and int(nb) in index
            }
            for i in range(n)
        ]
    lat, lon = geo_cells.cells_centers(cells)
    choices = []
    for p in patrols:
        d = haversine_m(p.base_lon, p.base_lat, lon, lat) / 1000 * p.detour_factor
        choices.append([None] + [i for i in range(n) if p.fits(2 * d[i], 1)])
    best = 0.0
    for pick in itertools.product(*choices):
        covered = set()
        for p, c in zip(patrols, pick, strict=True):
            if c is not None:
                covered |= covers[p.sensing_k][c]
        best = max(best, float(sum(score[i] for i in covered)))
    return best


@pytest.mark.parametrize("seed", range(12))
def test_one_stop_plans_cover_at_least_half_the_optimum(seed):
    rng = np.random.default_rng(seed)
    cells = np.unique(
        geo_cells.point_cells(
            BASE[1] + rng.normal(0, 0.02, 9), BASE[0] + rng.normal(0, 0.02, 9), RES
        )
    )
    score = rng.integers(1, 20, cells.size).astype(float)
    patrols = [
        foot(float(rng.uniform(2, 8)), stops=1, k=int(rng.integers(0, 3))),
        foot(float(rng.uniform(2, 8)), stops=1, k=int(rng.integers(0, 3)), base=(20.69, 5.75)),
        foot(float(rng.uniform(2, 8)), stops=1, k=1, base=(20.66, 5.78)),
    ]
    optimum = _optimum_one_stop(cells, score, patrols)
    plan = suggest_routes(cells, score, patrols)
    assert plan.threat_covered >= 0.5 * optimum - 1e-9
    assert plan.threat_covered <= optimum + 1e-9


@pytest.mark.parametrize("seed", range(12))
def test_interchangeable_patrols_cover_at_least_1_minus_1_over_e_of_the_optimum(seed):
    rng = np.random.default_rng(100 + seed)
    cells = np.unique(
        geo_cells.point_cells(
            BASE[1] + rng.normal(0, 0.015, 10), BASE[0] + rng.normal(0, 0.015, 10), RES
        )
    )
    score = rng.integers(1, 20, cells.size).astype(float)
    patrols = [foot(6.0, stops=1, k=1)] * 3
    optimum = _optimum_one_stop(cells, score, patrols)
    plan = suggest_routes(cells, score, patrols)
    assert plan.threat_covered >= (1 - 1 / math.e) * optimum - 1e-9


def test_greedy_goes_where_the_threat_is_and_nearest_first_does_not():
    """Low-score gaps just west of the base, a high-score cluster 4 km east: a 9 km patrol can
    do one side only. Nearest-first spends itself on the west."""
    west = [cell_east(-0.9 * i) for i in range(1, 4)]
    east = [cell_east(4.0), cell_east(4.0, north_km=0.9), cell_east(4.0, north_km=-0.9)]
    cells = np.array(west + east)
    score = np.array([1.0, 1.0, 1.0, 30.0, 30.0, 30.0])
    patrols = [foot(9.5)]
    greedy = suggest_routes(cells, score, patrols)
    naive = nearest_first(cells, score, patrols)
    assert set(greedy.routes[0].stops.tolist()) >= {3}
    assert naive.routes[0].stops.tolist()[0] == 0
    assert greedy.threat_covered > naive.threat_covered
    assert greedy.threat_per_km > naive.threat_per_km


def test_the_plan_is_deterministic():
    rng = np.random.default_rng(5)
    cells = np.unique(
        geo_cells.point_cells(
            BASE[1] + rng.normal(0, 0.05, 80), BASE[0] + rng.normal(0, 0.05, 80), RES
        )
    )
    score = rng.exponential(5, cells.size)
    patrols = [foot(15, k=1), foot(12, base=(20.7, 5.8))]
    first = suggest_routes(cells, score, patrols)
    again = suggest_routes(cells, score, patrols)
    assert [r.stops.tolist() for r in first.routes] == [r.stops.tolist() for r in again.routes]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"speed_kmh": 0}, "positive"),
        ({"max_stops": 0}, "max_stops"),
        ({"detour_factor": 0.5}, "detour"),
    ],
    ids=["speed", "stops", "detour"],
)
def test_impossible_patrols_are_refused(kwargs, message):
    base = {
        "base_lon": 20.0,
        "base_lat": 5.0,
        "sensing_k": 0,
        "speed_kmh": 4.0,
        "max_range_km": 10.0,
        "max_duration_h": 4.0,
    }
    with pytest.raises(ValueError, match=message):
        PatrolAsset(**{**base, **kwargs})


def test_gap_cells_must_be_distinct_with_a_score_each():
    with pytest.raises(ValueError, match="distinct"):
        suggest_routes([cell_east(1), cell_east(1)], [1.0, 2.0], [foot(10)])
    with pytest.raises(ValueError, match="same length"):
        suggest_routes([cell_east(1)], [1.0, 2.0], [foot(10)])
