"""Benchmark indexing incidents at ingest: ``geo.cells.index_points`` against h3ronpy directly.

At ingest every incident gets its cell at every stored resolution (4–10), honouring the finest
resolution its location supports. ``index_points`` does that with one point-to-cell call at the
finest resolution and derives the coarser cells as parents. Baselines, measured in the same run:

* h3ronpy directly, once per resolution — ``h3ronpy.vector.coordinates_to_cells`` called 7 times
  (resolutions 4…10), each result converted to a numpy array: what a caller without
  ``index_points`` would write;
* h3ronpy directly, finest resolution only — one ``coordinates_to_cells`` call at resolution 10:
  the theoretical minimum (one point-to-cell conversion per point), not the same output.

Prints best-of-N wall times and both ratios (target: ≤ 1.5× h3ronpy directly); asserts nothing.

    .venv/bin/python benchmarks/bench_ingest.py [--quick] [--points N] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import TypeVar

import h3ronpy
import numpy as np
import numpy.typing as npt
from h3ronpy import vector as h3_vector

from geo.cells import NO_CELL, STORED_RESOLUTIONS, index_points

T = TypeVar("T")

#: Central African Republic, roughly (west, south, east, north) in degrees.
CAR_BOX = (14.4, 2.2, 27.5, 11.0)
TARGET_RATIO = 1.5


def best_of(repeat: int, fn: Callable[[], T]) -> tuple[float, T]:
    """Smallest wall time of ``repeat`` runs (seconds) and the last result."""
    best = float("inf")
    result: T | None = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    assert result is not None
    return best, result


def random_points(n: int, seed: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    rng = np.random.default_rng(seed)
    west, south, east, north = CAR_BOX
    return rng.uniform(south, north, n), rng.uniform(west, east, n)


def h3ronpy_per_resolution(
    lat: npt.NDArray[np.float64], lng: npt.NDArray[np.float64]
) -> list[npt.NDArray[np.uint64]]:
    return [
        np.asarray(h3_vector.coordinates_to_cells(lat, lng, resolution), dtype=np.uint64)
        for resolution in STORED_RESOLUTIONS
    ]


def h3ronpy_finest(
    lat: npt.NDArray[np.float64], lng: npt.NDArray[np.float64]
) -> npt.NDArray[np.uint64]:
    finest = max(STORED_RESOLUTIONS)
    return np.asarray(h3_vector.coordinates_to_cells(lat, lng, finest), dtype=np.uint64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k points instead of 1M")
    parser.add_argument("--points", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=None, help="best of N (default 5, quick 3)")
    args = parser.parse_args()
    n = args.points or (100_000 if args.quick else 1_000_000)
    repeat = args.repeat or (3 if args.quick else 5)

    print(f"Python {sys.version.split()[0]}, numpy {np.__version__}, h3ronpy {h3ronpy.__version__}")
    print(f"{os.cpu_count()} CPUs; timings are wall clock, best of {repeat}\n")
    lat, lng = random_points(n, seed=7)
    top = max(STORED_RESOLUTIONS)
    finest_all = np.full(n, top, dtype=np.int64)
    # Points whose location supports only a coarser resolution (a village name, a district):
    # same work for index_points, more zeros in the output.
    finest_mixed = np.random.default_rng(8).integers(5, top + 1, n)

    # Warm up each path once (page faults of the first big allocation, lazy imports).
    index_points(lat[:1000], lng[:1000], finest_all[:1000])
    h3ronpy_per_resolution(lat[:1000], lng[:1000])

    t_ours, ours = best_of(repeat, lambda: index_points(lat, lng, finest_all))
    t_mixed, mixed = best_of(repeat, lambda: index_points(lat, lng, finest_mixed))
    t_each, each = best_of(repeat, lambda: h3ronpy_per_resolution(lat, lng))
    t_min, finest_cells = best_of(repeat, lambda: h3ronpy_finest(lat, lng))

    # index_points stores the ancestors of the finest cell (so a point's cells nest); H3 cells
    # do not nest exactly, so near a coarse cell's edge that ancestor is not always the cell
    # the point itself falls in at that resolution.
    differs = {
        resolution: float(np.mean(ours[:, j].view(np.uint64) != each[j]))
        for j, resolution in enumerate(STORED_RESOLUTIONS)
    }
    honoured = bool(
        np.all(
            (mixed != NO_CELL) == (finest_mixed[:, None] >= np.asarray(STORED_RESOLUTIONS)[None])
        )
    )
    same_finest = bool(np.array_equal(ours[:, -1].view(np.uint64), finest_cells))
    resolutions = f"{min(STORED_RESOLUTIONS)}–{top}"

    rows = [
        (f"ours: index_points, resolutions {resolutions}, finest {top} everywhere", t_ours),
        (f"ours: index_points, resolutions {resolutions}, finest 5–{top} per point", t_mixed),
        (f"h3ronpy: coordinates_to_cells × {len(STORED_RESOLUTIONS)} (one per resolution)", t_each),
        (f"h3ronpy: coordinates_to_cells × 1 (resolution {top} only; the minimum)", t_min),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{n:,} points, uniform over the CAR box {CAR_BOX}\n")
    print(f"{'step':<{width}}  {'best':>10}")
    for name, seconds in rows:
        print(f"{name:<{width}}  {seconds * 1000:>8.1f} ms")
    print(f"\nratios (ours / baseline; target ≤ {TARGET_RATIO}×)")
    print(f"  ours / h3ronpy once per resolution   {t_ours / t_each:6.2f}×")
    print(f"  ours / h3ronpy finest only (minimum) {t_ours / t_min:6.2f}×")
    print(f"  ours per point                       {t_ours / n * 1e9:6.0f} ns")
    print("\nchecks")
    shares = ", ".join(f"{r}: {share:.1%}" for r, share in differs.items())
    print("  points whose stored cell (ancestor of the finest) is not the cell h3ronpy gives at")
    print(f"  that resolution (H3 children stray outside their parent): {shares}")
    print(f"  finest column equals the one-call minimum: {same_finest}")
    print(f"  per-point finest resolution honoured (NO_CELL exactly where finer): {honoured}")


if __name__ == "__main__":
    main()
