"""Emerging hot spots and surge on a mission-sized cube: 100k cells × 52 weekly bins.

Prints wall-clock times and their ratio to a baseline measured in the same run — the minimal
vectorised computation ("numpy Gi* per bin + MK": one sparse mat-vec per bin, then S over all
pairs on float64 with no tie correction and no classification). Target: ``emerging_hotspots``
≤ 2.5 s end to end at full size. This is a script, not a test: nothing is gated on time.

    .venv/bin/python benchmarks/bench_emerging.py [--quick] [--k 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from scipy import special

from geo.cells import grid_disks, index_points
from geo.early_warning import surge
from geo.emerging import CATEGORIES, emerging_hotspots
from geo.weights import KRingWeights, kring_weights

T = TypeVar("T")
FloatArray = npt.NDArray[np.float64]

BAMBARI = (5.7591, 20.6706)
TARGET_S = 2.5


def best_of(repeat: int, fn: Callable[[], T]) -> tuple[float, T]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    assert result is not None
    return best, result


def universe(n_cells: int, resolution: int = 8) -> npt.NDArray[np.int64]:
    centre = int(index_points([BAMBARI[0]], [BAMBARI[1]], [resolution], [resolution])[0, 0])
    radius = 1
    while 1 + 3 * radius * (radius + 1) < n_cells:
        radius += 1
    _, cells = grid_disks([centre], radius)
    return np.unique(cells)[:n_cells]


def cube(weights: KRingWeights, n_bins: int, seed: int = 0) -> tuple[FloatArray, FloatArray]:
    """Sparse weekly counts (most cells quiet) with a few planted emerging clusters."""
    rng = np.random.default_rng(seed)
    n = weights.n
    counts = rng.poisson(0.05, size=(n, n_bins)).astype(np.float64)
    centres = rng.choice(n, size=max(1, n // 2000), replace=False)
    ramp = np.clip(np.arange(n_bins) - n_bins // 2, 0, None).astype(np.float64)
    members = weights.matrix[centres].nonzero()[1]
    counts[members] += rng.poisson(0.3 * ramp, size=(members.size, n_bins))
    severity = rng.uniform(0.5, 3.0, size=(n, n_bins))
    return counts * severity, counts


def baseline(values: FloatArray, weights: KRingWeights) -> tuple[FloatArray, FloatArray]:
    """Gi* column by column (one sparse mat-vec each), then Mann-Kendall S over all pairs."""
    n, n_bins = values.shape
    w = weights.neighbour_count
    spread = np.sqrt((n * w - w * w) / (n - 1))
    z = np.empty_like(values)
    for t in range(n_bins):
        column = values[:, t]
        lag = weights.matrix @ column
        z[:, t] = (lag - column.mean() * w) / (column.std() * spread)
    s = np.zeros(n)
    for lag_bins in range(1, n_bins):
        s += np.sign(z[:, lag_bins:] - z[:, :-lag_bins]).sum(axis=1)
    variance = n_bins * (n_bins - 1) * (2 * n_bins + 5) / 18.0
    mk_z = (s - np.sign(s)) / np.sqrt(variance)
    return z, special.erfc(np.abs(mk_z) / np.sqrt(2.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k cells instead of 100k")
    parser.add_argument("--cells", type=int, default=None)
    parser.add_argument("--bins", type=int, default=52)
    parser.add_argument("--k", type=int, default=1, help="k-ring radius of the weights")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n_cells = args.cells or (10_000 if args.quick else 100_000)
    repeat = 1 if args.quick else args.repeat

    started = time.perf_counter()
    weights = kring_weights(universe(n_cells), args.k)
    build_s = time.perf_counter() - started
    intensity, counts = cube(weights, args.bins)
    print(
        f"cube: {weights.n:,} cells × {args.bins} bins, k={args.k} "
        f"({weights.matrix.nnz:,} weights, built in {build_s:.3f} s, not timed below)"
    )

    base_s, _ = best_of(repeat, lambda: baseline(intensity, weights))
    ours_s, result = best_of(
        repeat, lambda: emerging_hotspots(intensity, counts.astype(np.int64), weights)
    )
    print(f"baseline  numpy Gi* per bin + MK      {base_s:8.3f} s")
    target = f"(target ≤ {TARGET_S} s at 100k × 52)"
    print(f"emerging_hotspots end to end        {ours_s:8.3f} s  {target}")
    print(f"ratio emerging_hotspots / baseline  {ours_s / base_s:8.2f}")
    found = np.bincount(result.category, minlength=len(CATEGORIES))
    summary = ", ".join(f"{c.value} {k:,}" for c, k in zip(CATEGORIES, found, strict=True) if k)
    print(f"categories: {summary}")

    rng = np.random.default_rng(1)
    windows = 12
    history = rng.poisson(0.5, size=(weights.n, windows))
    current = rng.poisson(0.5, size=weights.n)
    surge_s, flagged = best_of(repeat, lambda: surge(current, history))
    print(
        f"surge ({weights.n:,} cells × {windows} windows)      {surge_s:8.3f} s  "
        f"({int(flagged.flagged.sum()):,} flagged)"
    )


if __name__ == "__main__":
    main()
