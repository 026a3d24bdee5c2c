"""Incidents into cells: counts and severity-weighted intensity over an analysis universe.

The universe is every cell of the AOR at the analysis resolution — cells with no incident count
as zero, which Gi* needs (a hot cell is hot relative to its quiet neighbours). Incidents are
fused incidents, never raw reports, so one event reported three times counts once. An incident
whose location cannot support the resolution carries no cell there (``0``) and is not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    """

    cells: CellArray
    count: npt.NDArray[np.int64]
    intensity: npt.NDArray[np.float64]
    outside: int


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
    cells = np.unique(np.asarray(universe, dtype=np.int64))
    wanted = np.asarray(incident_cells, dtype=np.int64)
    weights = np.asarray(severity, dtype=np.float64)
    if wanted.shape != weights.shape:
        raise ValueError("incident_cells and severity must have the same length")
    if half_life_days is not None:
        if occurred_at_s is None or as_of_s is None:
            raise ValueError("time decay needs occurred_at_s and as_of_s")
        weights = weights * decay_factors(occurred_at_s, as_of_s, half_life_days)
    n = cells.size
    located = wanted != NO_CELL
    if n == 0:
        return CellValues(cells, np.zeros(0, np.int64), np.zeros(0, np.float64), int(located.sum()))
    # Look each distinct cell up once: sorting the incidents' cells first makes the search
    # cache-friendly and shrinks it to the few thousand distinct cells (measured ~3x faster at
    # 1M incidents than searching the raw order).
    distinct, inverse = np.unique(wanted, return_inverse=True)
    distinct_pos = np.minimum(np.searchsorted(cells, distinct), n - 1)
    distinct_inside = (cells[distinct_pos] == distinct) & (distinct != NO_CELL)
    pos = distinct_pos[inverse]
    inside = distinct_inside[inverse]
    count = np.bincount(pos[inside], minlength=n).astype(np.int64)
    intensity = np.bincount(pos[inside], weights=weights[inside], minlength=n).astype(np.float64)
    return CellValues(cells, count, intensity, int((located & ~inside).sum()))
