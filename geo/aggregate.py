"""Incidents into cells: counts and severity-weighted intensity over an analysis universe.

The universe is every cell of the AOR at the analysis resolution — cells with no incident count
as zero, which Gi* needs (a hot cell is hot relative to its quiet neighbours). Incidents are
fused incidents, never raw reports, so one event reported three times counts once. An incident
whose location cannot support the resolution carries no cell there (``0``) and is not counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from geo.cells import NO_CELL, CellArray

__all__ = ["SECONDS_PER_DAY", "CellValues", "aggregate", "decay_factors"]

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True, eq=False)
class CellValues:
    """Per-cell totals, aligned with ``cells`` (the sorted universe).

    Attributes
    ----------
    cells
        Sorted unique ``int64`` cells of the universe.
    count
        Incidents per cell (``int64``).
    intensity
        Σ severity weight × time decay per cell (``float64``).
    outside
        Incidents that had a cell at this resolution but fell outside the universe.
    counted_weights
        Weights of the counted incidents (see the field's comment).
    """

    cells: CellArray
    count: npt.NDArray[np.int64]
    intensity: npt.NDArray[np.float64]
    outside: int
    #: The weight (severity × decay) of every incident counted in the universe, in no
    #: particular order: what the event-null p-values of :func:`geo.hotspots.event_tails` need.
    counted_weights: npt.NDArray[np.float64] = field(
        default_factory=lambda: np.zeros(0, dtype=np.float64)
    )


def decay_factors(
    occurred_at_s: npt.ArrayLike, as_of_s: float, half_life_days: float | None
) -> npt.NDArray[np.float64]:
    """Exponential time decay ``0.5 ** (age / half_life)``; 1 everywhere without a half-life.

    Ages below zero (incidents after ``as_of``) are clipped to zero: the caller chooses the
    window, decay only down-weights the past.
    """
    times = np.asarray(occurred_at_s, dtype=np.float64)
    if half_life_days is None:
        return np.ones(times.shape, dtype=np.float64)
    if half_life_days <= 0:
        raise ValueError("half_life_days must be positive")
    age_days = np.maximum(as_of_s - times, 0.0) / SECONDS_PER_DAY
    return np.power(0.5, age_days / half_life_days)


def aggregate(
    universe: npt.ArrayLike,
    incident_cells: npt.ArrayLike,
    severity: npt.ArrayLike,
    *,
    occurred_at_s: npt.ArrayLike | None = None,
    as_of_s: float | None = None,
    half_life_days: float | None = None,
) -> CellValues:
    """Count incidents and sum their weighted severity per universe cell.

    Parameters
    ----------
    universe
        The analysis universe (cells of one resolution).
    incident_cells
        Each incident's cell at that resolution, :data:`geo.cells.NO_CELL` (0) where its
        location does not support the resolution.
    severity
        Each incident's severity weight.
    occurred_at_s, as_of_s, half_life_days
        Optional exponential decay: an incident ``half_life_days`` old weighs half.

    Examples
    --------
    >>> import numpy as np
    >>> universe, cells = np.array([10, 20, 30]), np.array([20, 20, 0, 40])
    >>> v = aggregate(universe, cells, np.array([1.0, 2.0, 5.0, 1.0]))
    >>> v.count.tolist(), v.intensity.tolist(), v.outside
    ([0, 2, 0], [0.0, 3.0, 0.0], 1)
    """
    cells = np.asarray(universe, dtype=np.int64)
    if cells.size > 1 and not bool(np.all(cells[1:] > cells[:-1])):
        cells = np.unique(cells)  # callers usually pass the sorted universe; skip the sort then
    wanted = np.asarray(incident_cells, dtype=np.int64)
    weights = np.asarray(severity, dtype=np.float64)
    if wanted.shape != weights.shape:
        raise ValueError("incident_cells and severity must have the same length")
    if half_life_days is not None:
        if occurred_at_s is None or as_of_s is None:
            raise ValueError("time decay needs occurred_at_s and as_of_s")
        weights = weights * decay_factors(occurred_at_s, as_of_s, half_life_days)
    n = cells.size
    count = np.zeros(n, dtype=np.int64)
    intensity = np.zeros(n, dtype=np.float64)
    if wanted.size == 0:
        return CellValues(cells, count, intensity, 0)
    # Sort the incidents by cell once, then work per distinct cell: the universe lookup shrinks
    # to the few thousand cells that have incidents, and the sums are one reduceat each.
    equal = bool(np.all(weights == weights[0]))
    if equal:
        # Plain counts (or one weight for all): sorting the cells alone is enough, and a plain
        # sort is several times faster than the argsort the weighted sums need.
        by_cell = np.sort(wanted)
        sorted_weights = np.full(wanted.size, weights[0])
    else:
        order = np.argsort(wanted)
        by_cell = wanted[order]
        sorted_weights = weights[order]
    starts = np.flatnonzero(np.concatenate(([True], by_cell[1:] != by_cell[:-1])))
    distinct = by_cell[starts]
    per_cell = np.diff(np.append(starts, by_cell.size))
    sums = per_cell * weights[0] if equal else np.add.reduceat(sorted_weights, starts)
    if n:
        pos = np.minimum(np.searchsorted(cells, distinct), n - 1)
        inside = (cells[pos] == distinct) & (distinct != NO_CELL)
    else:
        pos = np.zeros(distinct.size, dtype=np.int64)
        inside = np.zeros(distinct.size, dtype=bool)
    count[pos[inside]] = per_cell[inside]
    intensity[pos[inside]] = sums[inside]
    outside = int(per_cell[~inside & (distinct != NO_CELL)].sum())
    counted = sorted_weights if inside.all() else sorted_weights[np.repeat(inside, per_cell)]
    return CellValues(cells, count, intensity, outside, counted)
