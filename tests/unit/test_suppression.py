"""Small-count suppression: no published count, and no parent-minus-children difference,
reveals a hidden total between 1 and k − 1 (SECURITY.md P1, P4)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.cells import cell_parents, index_points
from geo.suppression import Level, suppress

K = 5


def levels_from_points(lat, lng, resolutions=(5, 6)) -> list[Level]:
    cells = index_points(lat, lng, np.full(len(lat), max(resolutions)), resolutions)
    levels = []
    for j, resolution in enumerate(resolutions):
        unique, counts = np.unique(cells[:, j], return_counts=True)
        levels.append(Level(resolution, unique, counts.astype(np.int64)))
    return levels


def assert_safe(levels: list[Level], masks: list[np.ndarray], k: int = K) -> None:
    for level, mask in zip(levels, masks, strict=True):
        shown = level.counts[mask]
        assert not np.any((shown >= 1) & (shown <= k - 1)), "a small count is shown"
    for upper in range(len(levels) - 1):
        parent, child = levels[upper], levels[upper + 1]
        parents_of = cell_parents(child.cells, parent.resolution)
        for p_index, p_cell in enumerate(parent.cells.tolist()):
            if not masks[upper][p_index]:
                continue
            mine = parents_of == p_cell
            hidden = child.counts[mine & ~masks[upper + 1]].sum()
            assert not 1 <= hidden <= k - 1, "parent minus visible children reveals a count"


def test_primary_suppression_hides_small_counts_only() -> None:
    rng = np.random.default_rng(4)
    lat = np.concatenate([rng.normal(5.70, 0.004, 40), rng.normal(6.40, 0.004, 2)])
    lng = np.concatenate([rng.normal(20.60, 0.004, 40), rng.normal(21.90, 0.004, 2)])
    levels = levels_from_points(lat, lng)
    masks = suppress(levels, k=K)
    assert_safe(levels, masks)
    # the big cluster stays visible at the coarse level
    assert masks[0][np.argmax(levels[0].counts)]


def test_complementary_suppression_protects_a_lone_hidden_child() -> None:
    # Parent with 12: one child of 10 and one of 2. Showing parent and the 10 would reveal 2.
    cluster = index_points([5.70] * 10, [20.60] * 10, [6] * 10, (5, 6))
    parent = int(cluster[0, 0])
    # a second child of the same parent
    from geo.cells import uncompact_cells

    siblings = [c for c in uncompact_cells([parent], 6).tolist() if c != int(cluster[0, 1])]
    levels = [
        Level(5, np.array([parent]), np.array([12])),
        Level(
            6,
            np.array(sorted([int(cluster[0, 1]), siblings[0]])),
            np.array([10, 2] if int(cluster[0, 1]) < siblings[0] else [2, 10]),
        ),
    ]
    masks = suppress(levels, k=K)
    assert_safe(levels, masks)
    assert not masks[1].all()
    assert masks[0][0] and not masks[1].any()  # the 10 is hidden too; the parent stays


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    clusters=st.integers(1, 8),
    k=st.integers(2, 10),
)
def test_no_published_figure_reveals_a_small_count(seed: int, clusters: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    centres = rng.uniform([5.0, 20.0], [6.0, 21.0], size=(clusters, 2))
    sizes = rng.integers(1, 15, size=clusters)
    lat = np.concatenate([rng.normal(c[0], 0.03, s) for c, s in zip(centres, sizes, strict=True)])
    lng = np.concatenate([rng.normal(c[1], 0.03, s) for c, s in zip(centres, sizes, strict=True)])
    levels = levels_from_points(lat, lng, (4, 5, 6))
    masks = suppress(levels, k=k)
    assert_safe(levels, masks, k)


def test_suppression_is_deterministic() -> None:
    rng = np.random.default_rng(9)
    levels = levels_from_points(rng.uniform(5, 6, 300), rng.uniform(20, 21, 300))
    first = suppress(levels, k=K)
    for _ in range(5):
        again = suppress(levels, k=K)
        assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))


@pytest.mark.parametrize("k", [2, 5, 10])
def test_zero_and_large_counts_stay_visible(k: int) -> None:
    levels = [Level(5, np.array([1, 2]), np.array([0, 50]))]
    masks = suppress(levels, k=k)
    assert masks[0].tolist() == [True, True]
