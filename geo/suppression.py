"""Small-count suppression for aggregates shown outside the protection tier.

A count of a sensitive category (sexual violence, children) in a small area can identify a
survivor. Counts below ``k`` are hidden (primary suppression), and further cells are hidden
(complementary suppression) wherever a visible parent minus its visible children would reveal a
hidden total between 1 and ``k − 1``. The H3 hierarchy makes "parent" exact: a point's cell at a
coarser resolution is the parent of its finer cells, so parent counts are sums of child counts.

Statistical disclosure practice puts ``k`` at 3–5 for internal products and 10 for public ones
(OECD; ONS); Vigil uses 5 inside the mission (SECURITY.md rule 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geo.cells import CellArray, cell_parents

__all__ = ["Level", "suppress"]


@dataclass(frozen=True, eq=False)
class Level:
    """Counts of one resolution: cells (unique) and their counts (> 0 where stored)."""

    resolution: int
    cells: CellArray
    counts: npt.NDArray[np.int64]


def suppress(levels: Sequence[Level], k: int = 5) -> list[npt.NDArray[np.bool_]]:
    """Visibility masks, one per level, such that no published count or difference of
    published counts reveals a total in ``[1, k − 1]``.

    Parameters
    ----------
    levels
        Counts at consecutive resolutions, coarsest first (each level's counts must be the sums
        of the next level's counts within each parent, as H3 point indexing guarantees).
    k
        The threshold: a visible non-zero count is at least ``k``.

    Returns
    -------
    list of numpy.ndarray
        ``mask[i][j]`` is True when ``levels[i].cells[j]`` may be shown.

    Notes
    -----
    Primary: every count in ``[1, k − 1]`` is hidden. Complementary, repeated until stable: for
    each visible parent, the hidden children's total equals parent − Σ visible children; if it
    lies in ``[1, k − 1]`` the smallest visible non-zero child is hidden too, and if no such child
    remains the parent is hidden. Zero counts are never hidden (a zero reveals nothing a hidden
    cell would not), and hiding only ever grows, so the loop ends.

    Examples
    --------
    >>> import numpy as np
    >>> from geo.cells import index_points
    >>> cells = index_points([5.0, 5.0, 5.001], [20.0, 20.0, 20.3], [6, 6, 6], (5, 6))
    >>> parent = Level(5, np.unique(cells[:, 0]), np.array([3]))
    >>> children = Level(6, np.unique(cells[:, 1]), np.array([2, 1]))
    >>> [m.tolist() for m in suppress([parent, children], k=5)]
    [[False], [False, False]]
    """
    masks = [lvl.counts >= k for lvl in levels]
    for index, level in enumerate(levels):
        masks[index] |= level.counts == 0
    changed = True
    while changed:
        changed = False
        for upper in range(len(levels) - 1):
            parent_level, child_level = levels[upper], levels[upper + 1]
            if child_level.cells.size == 0 or parent_level.cells.size == 0:
                continue
            parents_of_children = cell_parents(child_level.cells, parent_level.resolution)
            parent_pos = np.searchsorted(parent_level.cells, parents_of_children)
            parent_pos = np.minimum(parent_pos, parent_level.cells.size - 1)
            known = parent_level.cells[parent_pos] == parents_of_children
            hidden_child = ~masks[upper + 1] & known
            hidden_total = np.bincount(
                parent_pos[hidden_child],
                weights=child_level.counts[hidden_child],
                minlength=parent_level.cells.size,
            )
            exposed = masks[upper] & (hidden_total >= 1) & (hidden_total <= k - 1)
            for p in np.flatnonzero(exposed).tolist():
                candidates = np.flatnonzero(
                    known & (parent_pos == p) & masks[upper + 1] & (child_level.counts > 0)
                )
                if candidates.size:
                    smallest = candidates[np.argmin(child_level.counts[candidates])]
                    masks[upper + 1][smallest] = False
                else:
                    masks[upper][p] = False
                changed = True
    return masks
