"""Binary k-ring spatial weights over an analysis universe of H3 cells.

For Getis-Ord Gi* the neighbourhood of cell ``i`` is every universe cell within ``k`` grid steps,
the focal cell included (the "star" form): ``w_ij = 1`` if ``grid_distance(i, j) <= k`` and ``j``
is in the universe, else 0. Cells outside the universe (beyond the AOR) are not neighbours: the
universe is the study area.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse

from geo.cells import CellArray, grid_disks

__all__ = ["KRingWeights", "WeightsCache", "kring_weights"]


@dataclass(frozen=True, eq=False)
class KRingWeights:
    """Binary weights including the focal cell, as a CSR matrix over ``cells``.

    Attributes
    ----------
    cells
        The universe: sorted, unique ``int64`` cells; row and column ``i`` are ``cells[i]``.
    k
        Neighbourhood radius in grid steps.
    matrix
        ``n × n`` sparse matrix of ones (float64), diagonal included.
    """

    cells: CellArray
    k: int
    matrix: sparse.csr_matrix

    @property
    def n(self) -> int:
        return int(self.cells.size)

    @property
    def neighbour_count(self) -> npt.NDArray[np.float64]:
        """``W_i = Σ_j w_ij``, the size of each cell's neighbourhood inside the universe."""
        return np.asarray(self.matrix.sum(axis=1), dtype=np.float64).ravel()

    def positions(self, cells: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Row of each cell in the universe, or -1 for cells outside it."""
        wanted = np.asarray(cells, dtype=np.int64)
        if self.n == 0:
            return np.full(wanted.shape, -1, dtype=np.int64)
        pos = np.searchsorted(self.cells, wanted)
        pos_clipped = np.minimum(pos, self.n - 1)
        return np.where(self.cells[pos_clipped] == wanted, pos_clipped, -1)


def kring_weights(universe: npt.ArrayLike, k: int) -> KRingWeights:
    """Build binary k-ring weights (focal cell included) over ``universe``, vectorised.

    Parameters
    ----------
    universe
        Cells of one resolution (duplicates and order do not matter).
    k
        Radius in grid steps, ≥ 1.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    cells = np.unique(np.asarray(universe, dtype=np.int64))
    n = cells.size
    if n == 0:
        return KRingWeights(cells, k, sparse.csr_matrix((0, 0), dtype=np.float64))
    origin, neighbour = grid_disks(cells, k)
    pos = np.searchsorted(cells, neighbour)
    pos_clipped = np.minimum(pos, n - 1)
    inside = cells[pos_clipped] == neighbour
    rows, cols = origin[inside], pos_clipped[inside]
    matrix = sparse.csr_matrix((np.ones(rows.size, dtype=np.float64), (rows, cols)), shape=(n, n))
    matrix.sum_duplicates()
    return KRingWeights(cells, k, matrix)


class WeightsCache:
    """A small LRU of weights keyed by the caller, e.g. ``(aor_version_id, resolution, k)``.

    Building weights for 100k cells costs tens of milliseconds; a recompute job that analyses the
    same AOR for several windows and families builds them once.
    """

    def __init__(self, capacity: int = 32) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[Hashable, KRingWeights] = OrderedDict()

    def get(self, key: Hashable, build: Callable[[], KRingWeights]) -> KRingWeights:
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        weights = build()
        self._entries[key] = weights
        if len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
        return weights

    def __len__(self) -> int:
        return len(self._entries)
