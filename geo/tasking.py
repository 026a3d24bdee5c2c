"""Tasking suggestions: which gap cells a unit's available patrols should visit, in what order.

The problem. Gap cells ``g`` carry scores ``s_g`` (:mod:`geo.gaps`). Patrol ``p`` leaves base
``b_p`` and returns to it; it may drive or walk at most ``R_p`` km (great-circle distance times
a detour factor ``ρ_p`` for roads and paths), be out at most ``D_p`` hours (travel at speed
``v_p`` plus a dwell ``δ_p`` at each stop) and make at most ``m_p`` stops. A stop at cell ``c``
covers every gap cell within the patrol's sensing ring ``k_p`` of ``c``. Choose the routes that
cover the most score, each gap counted once:

.. math::

    \\max \\sum_g s_g \\,[g \\text{ covered}] \\quad\\text{s.t.}\\quad
    \\rho_p L(\\mathrm{route}_p) \\le R_p,\\;
    \\frac{\\rho_p L(\\mathrm{route}_p)}{v_p} + \\delta_p |\\mathrm{route}_p| \\le D_p,\\;
    |\\mathrm{route}_p| \\le m_p .

This contains the orienteering problem, which is NP-hard, so :func:`suggest_routes` is a greedy
heuristic. It runs two greedy passes and keeps the one covering more score (fewer km on a tie):

- *by gain* — the classic greedy for maximum coverage: at each step, over all patrols and all
  cells, add the stop with the largest marginal covered score that keeps its route feasible,
  inserted where it lengthens the route least (cheapest insertion);
- *by gain per km* — the same with the marginal score divided by the kilometres the insertion
  adds (cost-benefit greedy), which favours clusters of gaps near the route.

Each route's order is then shortened by 2-opt (its stops, hence its coverage, unchanged).

What it guarantees:

1. Every route it returns is feasible: it starts and ends at the base and keeps within range,
   duration and stop count.
2. With one stop per patrol (``max_stops = 1``) the *by-gain* pass is the greedy algorithm for
   a monotone submodular function (covered score) over a partition matroid (one stop per
   patrol), so the plan covers at least **½ of the optimum** (Fisher, Nemhauser & Wolsey 1978);
   and at least **1 − 1/e ≈ 63 %** of it when the patrols are interchangeable (same base,
   sensing ring and limits: a cardinality constraint; Nemhauser, Wolsey & Fisher 1978). Keeping
   the better of the two passes keeps the bound.
3. With several stops per route no constant factor is claimed: a cheap insertion chosen early
   can block a better route later. :func:`nearest_first`, the naive "nearest gaps first" plan,
   is what ``benchmarks/bench_coverage.py`` compares it with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import sparse

from geo.cells import CellArray, cells_centers, grid_disks
from geo.tracks import haversine_m

__all__ = ["PatrolAsset", "Route", "TaskingPlan", "nearest_first", "suggest_routes"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Rule = Literal["gain", "gain_per_km", "nearest"]

#: Insertions adding less than this (km) count as this in the gain-per-km rule (a stop in the
#: cell next door is cheap, not free).
_MIN_ADDED_KM = 0.1


@dataclass(frozen=True)
class PatrolAsset:
    """One available patrol.

    Attributes
    ----------
    base_lon, base_lat
        Where it leaves from and returns to (degrees).
    sensing_k
        Sensing ring in grid steps at the gaps' resolution (:func:`geo.coverage.sensing_k`).
    speed_kmh
        Typical speed over the route (km/h).
    max_range_km
        Longest route, base to base, in km along the ground.
    max_duration_h
        Longest time out, travel and dwell, in hours.
    dwell_h
        Time spent at each stop (hours).
    max_stops
        Most stops on the route.
    detour_factor
        Ground distance over great-circle distance (about 1.3 on roads and tracks; 1 by air).
    """

    base_lon: float
    base_lat: float
    sensing_k: int
    speed_kmh: float
    max_range_km: float
    max_duration_h: float
    dwell_h: float = 0.25
    max_stops: int = 12
    detour_factor: float = 1.3

    def __post_init__(self) -> None:
        if self.speed_kmh <= 0 or self.max_range_km <= 0 or self.max_duration_h <= 0:
            raise ValueError("speed, range and duration must be positive")
        if self.sensing_k < 0 or self.max_stops < 1 or self.dwell_h < 0:
            raise ValueError("need sensing_k >= 0, max_stops >= 1 and dwell_h >= 0")
        if self.detour_factor < 1:
            raise ValueError("the detour factor is at least 1")

    def fits(self, km: float, stops: int) -> bool:
        """Whether a route of ``km`` with ``stops`` stops keeps within the limits."""
        hours = km / self.speed_kmh + self.dwell_h * stops
        return km <= self.max_range_km + 1e-9 and hours <= self.max_duration_h + 1e-9


@dataclass(frozen=True, eq=False)
class Route:
    """One patrol's suggested route.

    Attributes
    ----------
    patrol
        Index of the patrol in the ``patrols`` given.
    stops
        Gap indices in visiting order (empty: nothing worth the trip).
    leg_km
        Ground km of each leg: base → first stop, …, last stop → base (``len(stops) + 1``
        entries; ``[0.0]`` for an empty route).
    km, hours
        Route length and time out (travel and dwell).
    covered
        Gap indices this route covers that no earlier route of the plan covers.
    threat_covered
        Their summed score.
    """

    patrol: int
    stops: IntArray
    leg_km: FloatArray
    km: float
    hours: float
    covered: IntArray
    threat_covered: float


@dataclass(frozen=True, eq=False)
class TaskingPlan:
    """Routes for every patrol given and what they cover together.

    Attributes
    ----------
    routes
        One :class:`Route` per patrol, in the order given.
    covered
        Boolean mask over the gaps: covered by some route.
    threat_covered
        Σ score of the covered gaps.
    km
        Σ route km.
    rule
        Which pass produced the plan: ``gain``, ``gain_per_km`` or ``nearest``.
    """

    routes: list[Route]
    covered: npt.NDArray[np.bool_]
    threat_covered: float
    km: float
    rule: Rule

    @property
    def threat_per_km(self) -> float:
        """Covered score per patrol-km (0 for a plan that goes nowhere)."""
        return self.threat_covered / self.km if self.km > 0 else 0.0


def _coverage_matrices(cells: CellArray, rings: set[int]) -> dict[int, sparse.csr_matrix]:
    """For each ring size ``k``: ``M[c, g] = 1`` when gap ``g`` is within ``k`` of gap ``c``."""
    n = cells.size
    order = np.argsort(cells)
    sorted_cells = cells[order]
    matrices = {}
    for k in sorted(rings):
        if k == 0 or n == 0:
            matrices[k] = sparse.identity(n, dtype=np.float64, format="csr")
            continue
        origin, neighbour = grid_disks(cells, k)
        pos = np.minimum(np.searchsorted(sorted_cells, neighbour), n - 1)
        hit = sorted_cells[pos] == neighbour
        matrix = sparse.csr_matrix(
            (np.ones(int(hit.sum())), (origin[hit], order[pos[hit]])), shape=(n, n)
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        matrices[k] = matrix
    return matrices


def _km(
    lon1: npt.ArrayLike, lat1: npt.ArrayLike, lon2: npt.ArrayLike, lat2: npt.ArrayLike
) -> FloatArray:
    return haversine_m(lon1, lat1, lon2, lat2) / 1000.0


class _Problem:
    """Gap positions, coverage sets and the patrols, shared by the passes."""

    def __init__(self, cells: npt.ArrayLike, score: npt.ArrayLike, patrols: Sequence[PatrolAsset]):
        self.cells = np.asarray(cells, dtype=np.int64)
        self.score = np.asarray(score, dtype=np.float64)
        if self.cells.shape != self.score.shape:
            raise ValueError("cells and score must have the same length")
        if bool(np.any(self.score < 0)):
            raise ValueError("scores must be non-negative")
        if np.unique(self.cells).size != self.cells.size:
            raise ValueError("gap cells must be distinct")
        self.patrols = list(patrols)
        self.lat, self.lon = cells_centers(self.cells)
        self.cover = _coverage_matrices(self.cells, {p.sensing_k for p in self.patrols})
        # Straight-line distance from each base to each gap, and which gaps a round trip reaches.
        self.from_base = [
            _km(p.base_lon, p.base_lat, self.lon, self.lat) * p.detour_factor for p in self.patrols
        ]
        self.reachable = [
            np.flatnonzero(
                (2 * d <= p.max_range_km) & (2 * d / p.speed_kmh + p.dwell_h <= p.max_duration_h)
            )
            for p, d in zip(self.patrols, self.from_base, strict=True)
        ]

    def route_km(self, p: int, stops: Sequence[int]) -> FloatArray:
        """Ground km of every leg of patrol ``p``'s route through ``stops``."""
        patrol = self.patrols[p]
        lon = np.r_[patrol.base_lon, self.lon[list(stops)], patrol.base_lon]
        lat = np.r_[patrol.base_lat, self.lat[list(stops)], patrol.base_lat]
        return np.asarray(_km(lon[:-1], lat[:-1], lon[1:], lat[1:]) * patrol.detour_factor)

    def plan(self, stops: list[list[int]], rule: Rule) -> TaskingPlan:
        covered = np.zeros(self.cells.size, dtype=bool)
        routes = []
        for p, route in enumerate(stops):
            patrol = self.patrols[p]
            legs = self.route_km(p, route)
            reach = np.zeros(self.cells.size, dtype=bool)
            if route:
                reach[self.cover[patrol.sensing_k][route].indices] = True
            fresh = np.flatnonzero(reach & ~covered)
            covered |= reach
            km = float(legs.sum())
            routes.append(
                Route(
                    patrol=p,
                    stops=np.asarray(route, dtype=np.int64),
                    leg_km=legs,
                    km=km,
                    hours=km / patrol.speed_kmh + patrol.dwell_h * len(route),
                    covered=fresh,
                    threat_covered=float(self.score[fresh].sum()),
                )
            )
        return TaskingPlan(
            routes=routes,
            covered=covered,
            threat_covered=float(self.score[covered].sum()),
            km=float(sum(r.km for r in routes)),
            rule=rule,
        )


def _greedy(problem: _Problem, rule: Rule) -> list[list[int]]:
    """One greedy pass (``gain`` or ``gain_per_km``) with cheapest insertion."""
    n = problem.cells.size
    covered = np.zeros(n, dtype=bool)
    routes: list[list[int]] = [[] for _ in problem.patrols]
    route_km = [0.0 for _ in problem.patrols]
    while True:
        best: tuple[float, float, float, int, int, int] | None = None
        remaining = np.where(covered, 0.0, problem.score)
        for p, patrol in enumerate(problem.patrols):
            route = routes[p]
            if len(route) >= patrol.max_stops:
                continue
            candidates = problem.reachable[p]
            if candidates.size == 0:
                continue
            gain = problem.cover[patrol.sensing_k][candidates] @ remaining
            useful = gain > 0
            if not bool(useful.any()):
                continue
            candidates, gain = candidates[useful], gain[useful]
            # Cheapest insertion between consecutive nodes of base → stops → base.
            node_lon = np.r_[patrol.base_lon, problem.lon[route], patrol.base_lon]
            node_lat = np.r_[patrol.base_lat, problem.lat[route], patrol.base_lat]
            to_node = (
                _km(
                    problem.lon[candidates][:, None],
                    problem.lat[candidates][:, None],
                    node_lon[None, :],
                    node_lat[None, :],
                )
                * patrol.detour_factor
            )
            edges = problem.route_km(p, route)
            added = to_node[:, :-1] + to_node[:, 1:] - edges[None, :]
            position = np.argmin(added, axis=1)
            delta = np.maximum(added[np.arange(candidates.size), position], 0.0)
            new_km = route_km[p] + delta
            hours = new_km / patrol.speed_kmh + patrol.dwell_h * (len(route) + 1)
            feasible = (new_km <= patrol.max_range_km + 1e-9) & (
                hours <= patrol.max_duration_h + 1e-9
            )
            if not bool(feasible.any()):
                continue
            value = gain if rule == "gain" else gain / np.maximum(delta, _MIN_ADDED_KM)
            value = np.where(feasible, value, -np.inf)
            i = int(np.argmax(value))
            # Ties: more gain, then fewer km, then the earlier patrol and gap (deterministic).
            key = (float(value[i]), float(gain[i]), -float(delta[i]), -p, -int(candidates[i]))
            if best is None or key > best[:5]:
                best = (*key, int(position[i]))
        if best is None:
            break
        _value, _gain, neg_delta, neg_p, neg_c, position_at = best
        p, c = -int(neg_p), -int(neg_c)
        routes[p].insert(position_at, c)
        route_km[p] += -neg_delta
        covered[problem.cover[problem.patrols[p].sensing_k][[c]].indices] = True
    return [_two_opt(problem, p, route) for p, route in enumerate(routes)]


def _two_opt(problem: _Problem, p: int, route: list[int]) -> list[int]:
    """Reverse segments of the route while that shortens it (the stops stay the same)."""
    if len(route) < 3:
        return route
    best = list(route)
    best_km = float(problem.route_km(p, best).sum())
    improved = True
    while improved:
        improved = False
        for i in range(len(best) - 1):
            for j in range(i + 1, len(best)):
                candidate = best[:i] + best[i : j + 1][::-1] + best[j + 1 :]
                km = float(problem.route_km(p, candidate).sum())
                if km < best_km - 1e-9:
                    best, best_km, improved = candidate, km, True
    return best


def suggest_routes(
    cells: npt.ArrayLike, score: npt.ArrayLike, patrols: Sequence[PatrolAsset]
) -> TaskingPlan:
    """Routes for ``patrols`` that cover the most gap score (see the module docstring for the
    algorithm and what it guarantees).

    Parameters
    ----------
    cells
        Distinct gap cells (any resolution, one resolution for all).
    score
        Their non-negative scores (:attr:`geo.gaps.Gaps.score`).
    patrols
        The available patrols.

    Examples
    --------
    Three gap cells on a line east of a base at resolution 8 (about 0.9 km apart), one foot
    patrol that can walk 6 km and sees one ring around each stop:

    >>> from geo.cells import grid_disks, point_cells
    >>> base = point_cells([5.0], [20.0], 8)
    >>> ring = grid_disks(base, 3)[1]
    >>> gaps = ring[[10, 20, 30]]
    >>> foot = PatrolAsset(20.0, 5.0, sensing_k=1, speed_kmh=4, max_range_km=6,
    ...                    max_duration_h=4)
    >>> plan = suggest_routes(gaps, [5.0, 3.0, 1.0], [foot])
    >>> plan.routes[0].km <= 6 and plan.threat_covered > 0
    True
    """
    problem = _Problem(cells, score, patrols)
    plans = [problem.plan(_greedy(problem, rule), rule) for rule in ("gain", "gain_per_km")]
    return max(plans, key=lambda plan: (plan.threat_covered, -plan.km))


def nearest_first(
    cells: npt.ArrayLike, score: npt.ArrayLike, patrols: Sequence[PatrolAsset]
) -> TaskingPlan:
    """The naive plan: patrols take turns going to the nearest gap not yet covered from where
    they stand, as long as they can still get home within range and duration and have stops
    left. The baseline :func:`suggest_routes` is measured against."""
    problem = _Problem(cells, score, patrols)
    n = problem.cells.size
    covered = np.zeros(n, dtype=bool)
    routes: list[list[int]] = [[] for _ in problem.patrols]
    km = [0.0 for _ in problem.patrols]
    position = [(p.base_lon, p.base_lat) for p in problem.patrols]
    active = [True for _ in problem.patrols]
    while any(active):
        for p, patrol in enumerate(problem.patrols):
            if not active[p]:
                continue
            candidates = problem.reachable[p][~covered[problem.reachable[p]]]
            if candidates.size == 0 or len(routes[p]) >= patrol.max_stops:
                active[p] = False
                continue
            here = position[p]
            to = _km(here[0], here[1], problem.lon[candidates], problem.lat[candidates])
            to = to * patrol.detour_factor
            home = problem.from_base[p][candidates]
            stops = len(routes[p]) + 1
            fits = np.array(
                [patrol.fits(km[p] + a + b, stops) for a, b in zip(to, home, strict=True)],
                dtype=bool,
            )
            if not bool(fits.any()):
                active[p] = False
                continue
            i = int(np.argmin(np.where(fits, to, np.inf)))
            c = int(candidates[i])
            routes[p].append(c)
            km[p] += float(to[i])
            position[p] = (float(problem.lon[c]), float(problem.lat[c]))
            covered[problem.cover[patrol.sensing_k][[c]].indices] = True
    return problem.plan(routes, "nearest")
