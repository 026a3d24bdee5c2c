"""Benchmark the Gi* hot-spot recompute and permutation inference against baselines in the same run.

Run ``.venv/bin/python benchmarks/bench_hotspots.py`` (about 100k cells, 1M incidents) or add
``--quick`` (about 12k cells, 100k incidents); ``--profile`` adds a cProfile of our recompute.
Prints best-of-N wall times and ratios; asserts nothing.

Recompute (issue 3, first row: target ≤ 3× the numpy floor, peer ≥ 100× slower than ours):

* ours — what a recompute job runs on incidents that already carry their cell (an ``int64``
  array, as stored): ``aggregate`` → cached ``kring_weights`` (``WeightsCache`` hit) → the
  the weights of the counted incidents (returned by ``aggregate``) →
  ``find_hotspots(approximation="events", incident_weights=…)``: Gi* z, event-null p for both
  tails, Benjamini–Hochberg, classes. Two variants: severity weights (what the server analyses)
  and plain counts (equal weights: the exact binomial tail);
* numpy floor — ``np.unique(cells, return_counts=True)``, one sparse mat-vec Gi* z, normal
  upper-tail p and ``benjamini_hochberg``, nothing else: the least any Gi* over prebuilt weights
  can do;
* peer — the usual notebook recipe from raw points: geopandas ``sjoin`` of the points to the
  hexagon polygons → libpysal weights (``Queen.from_dataframe``; and, as the peer's lower
  bound, a ``W`` made from our k-ring matrix) → esda ``G_Local`` (analytic). Compared with our
  recompute from stored cells and with ours from raw points (``index_points`` included, weights
  built cold).

Permutations (target ≤ 1 s warm, ≤ 3 s cold): ``find_hotspots(…, permutations=999)`` warm, and
cold as a fresh interpreter that imports, loads the stored cells from disk, aggregates, builds
the weights and runs (the whole subprocess is timed from outside), against esda ``G_Local``
with 999 permutations warm and cold (a fresh interpreter given our weights matrix and the
per-cell values, so it skips aggregation).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from scipy import sparse, special
from shapely.geometry import box

from geo import cells as geo_cells
from geo.aggregate import aggregate
from geo.hotspots import HotspotResult, benjamini_hochberg, find_hotspots
from geo.weights import KRingWeights, WeightsCache, kring_weights

T = TypeVar("T")
FloatArray = npt.NDArray[np.float64]

REPO = Path(__file__).resolve().parent.parent
FULL_BOX = (12.0, -4.0, 31.0, 12.0)  # CAR and most of the DRC: ~100k cells at resolution 6
QUICK_BOX = (18.0, 3.0, 24.0, 8.0)  # central CAR: ~12k cells
RESOLUTION = 6
K = 1  # k = 1 is what Queen contiguity gives the peer pipeline on hexagons
PERMUTATIONS = 999
FLOOR_TARGET = 3.0
PEER_TARGET = 100.0
PERM_WARM_TARGET_S = 1.0
PERM_COLD_TARGET_S = 3.0


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


def synthetic_incidents(
    bounds: tuple[float, float, float, float], n: int, seed: int
) -> dict[str, FloatArray]:
    """Exactly ``n`` incidents in ``bounds``: 70 % in 200 Gaussian clusters (σ ≈ 15 km), 30 %
    uniform; severity weights 1, 2 or 3."""
    rng = np.random.default_rng(seed)
    west, south, east, north = bounds
    drawn = int(n * 1.1) + 100  # clusters near the edge lose some points to the box
    clustered = int(drawn * 0.7)
    centres = np.column_stack([rng.uniform(south, north, 200), rng.uniform(west, east, 200)])
    which = rng.integers(0, 200, clustered)
    lat = np.concatenate([centres[which, 0] + rng.normal(0, 0.14, clustered),
                          rng.uniform(south, north, drawn - clustered)])  # fmt: skip
    lng = np.concatenate([centres[which, 1] + rng.normal(0, 0.14, clustered),
                          rng.uniform(west, east, drawn - clustered)])  # fmt: skip
    inside = (lat > south) & (lat < north) & (lng > west) & (lng < east)
    keep = rng.permutation(np.flatnonzero(inside))[:n]
    assert keep.size == n
    return {
        "lat": lat[keep],
        "lng": lng[keep],
        "severity": rng.choice([1.0, 2.0, 3.0], n),
    }


def numpy_floor(
    universe: npt.NDArray[np.int64],
    incident_cells: npt.NDArray[np.int64],
    matrix: sparse.csr_matrix,
) -> tuple[FloatArray, FloatArray]:
    """Counts per cell, Gi* z by one sparse mat-vec, normal upper-tail p, BH: nothing else."""
    found, counts = np.unique(incident_cells, return_counts=True)
    y = np.zeros(universe.size)
    pos = np.minimum(np.searchsorted(universe, found), universe.size - 1)
    hit = universe[pos] == found
    y[pos[hit]] = counts[hit]
    n = y.size
    w = np.diff(matrix.indptr).astype(np.float64)
    z = (matrix @ y - w * y.mean()) / (y.std() * np.sqrt(w * (n - w) / (n - 1)))
    return z, benjamini_hochberg(special.ndtr(-z))


def recompute(
    universe: npt.NDArray[np.int64],
    incident_cells: npt.NDArray[np.int64],
    weight: FloatArray,
    weights: Callable[[], KRingWeights],
    permutations: int | None = None,
) -> HotspotResult:
    """What a recompute job does with stored cells (``server/hotspots/service.py``)."""
    values = aggregate(universe, incident_cells, weight)
    return find_hotspots(
        values,
        weights(),
        approximation="events",
        incident_weights=values.counted_weights,
        permutations=permutations,
    )


OURS_COLD = textwrap.dedent(
    f"""
    import json, sys, time
    started = time.perf_counter()
    import numpy as np
    from geo.aggregate import aggregate
    from geo.hotspots import find_hotspots
    from geo.weights import kring_weights
    imported = time.perf_counter()
    stored = np.load(sys.argv[1])
    universe, cells, severity = stored["universe"], stored["cells"], stored["severity"]
    loaded = time.perf_counter()
    values = aggregate(universe, cells, severity)
    weights = kring_weights(universe, {K})
    built = time.perf_counter()
    find_hotspots(values, weights, permutations={PERMUTATIONS})
    done = time.perf_counter()
    print(json.dumps({{"import": imported - started, "load": loaded - imported,
                      "aggregate + weights": built - loaded, "find_hotspots": done - built}}))
    """
)

ESDA_COLD = textwrap.dedent(
    f"""
    import json, sys, time, warnings
    started = time.perf_counter()
    import numpy as np
    from scipy import sparse
    import libpysal, esda
    imported = time.perf_counter()
    matrix = sparse.load_npz(sys.argv[1]).tocsr()
    y = np.load(sys.argv[2])
    loaded = time.perf_counter()
    w = libpysal.weights.WSP(matrix).to_W(silence_warnings=True)
    built = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        esda.G_Local(y, w, transform="B", star=True, permutations={PERMUTATIONS}, seed=1)
    done = time.perf_counter()
    print(json.dumps({{"import": imported - started, "load": loaded - imported,
                      "W": built - loaded, "G_Local": done - built}}))
    """
)


def run_cold(script: str, *paths: Path) -> tuple[float, dict[str, float]]:
    """Whole-process wall time of a fresh interpreter running ``script``, and its own split."""
    started = time.perf_counter()
    out = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script, *map(str, paths)],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    total = time.perf_counter() - started
    split: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return total, split


def describe(split: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds:.2f}" for name, seconds in split.items()) + " s"


def profile(fn: Callable[[], object], label: str, calls: int = 10) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        fn()
    profiler.disable()
    print(f"\ncProfile: {label}, {calls} calls, by own time")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~12k cells, 100k incidents")
    parser.add_argument("--repeat", type=int, default=None, help="best-of-N for fast steps")
    parser.add_argument("--profile", action="store_true", help="cProfile our recompute")
    args = parser.parse_args()
    bounds = QUICK_BOX if args.quick else FULL_BOX
    n_incidents = 100_000 if args.quick else 1_000_000
    repeat = args.repeat or (3 if args.quick else 7)
    slow_repeat = 1 if args.quick else 2

    try:
        import numba

        numba_note = f"numba {numba.__version__}"
    except ImportError:
        numba_note = "numba NOT installed: esda permutations run its numpy fallback"
    print(f"Python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs")
    print(f"{numba_note}; wall clock, best of {repeat} (slow steps: best of {slow_repeat})\n")

    universe = geo_cells.polygon_cells(box(*bounds), RESOLUTION)
    points = synthetic_incidents(bounds, n_incidents, seed=1)
    severity = points["severity"]
    ones = np.ones(n_incidents)
    finest = np.full(n_incidents, RESOLUTION)

    def index() -> npt.NDArray[np.int64]:
        return geo_cells.index_points(points["lat"], points["lng"], finest, [RESOLUTION])[:, 0]

    t_index, indexed = best_of(repeat, index)
    cells = np.ascontiguousarray(indexed)  # "stored cells": what the incidents table holds
    cache = WeightsCache()
    key = ("aor-v1", RESOLUTION, K)

    def cached() -> KRingWeights:
        return cache.get(key, lambda: kring_weights(universe, K))

    weights = cached()
    print(
        f"universe {universe.size:,} cells at resolution {RESOLUTION}, k = {K} "
        f"({weights.matrix.nnz:,} weights); {n_incidents:,} incidents with stored cells\n"
    )

    # ------------------------------------------------------------------ recompute
    t_floor, (floor_z, _) = best_of(repeat, lambda: numpy_floor(universe, cells, weights.matrix))
    t_ours, result = best_of(repeat, lambda: recompute(universe, cells, severity, cached))
    t_counts, counts_result = best_of(repeat, lambda: recompute(universe, cells, ones, cached))
    t_agg, values = best_of(repeat, lambda: aggregate(universe, cells, severity))
    t_hot, _ = best_of(
        repeat,
        lambda: find_hotspots(
            values, weights, approximation="events", incident_weights=values.counted_weights
        ),
    )
    count_values = aggregate(universe, cells, ones)
    t_hot_counts, _ = best_of(
        repeat,
        lambda: find_hotspots(
            count_values,
            weights,
            approximation="events",
            incident_weights=count_values.counted_weights,
        ),
    )
    t_weights, _ = best_of(repeat, lambda: kring_weights(universe, K))

    def ours_from_points() -> HotspotResult:
        return recompute(universe, index(), severity, lambda: kring_weights(universe, K))

    t_ours_raw, _ = best_of(repeat, ours_from_points)

    import esda
    import geopandas as gpd
    import libpysal
    import shapely

    rings = np.array([geo_cells.cell_boundary(int(c)) for c in universe])
    hexagons = gpd.GeoDataFrame(
        {"cell": universe}, geometry=shapely.polygons(rings), crs="EPSG:4326"
    )  # built once per AOR version: not timed

    def peer_join() -> FloatArray:
        frame = gpd.GeoDataFrame(
            {"severity": severity},
            geometry=gpd.points_from_xy(points["lng"], points["lat"]),
            crs="EPSG:4326",
        )
        joined = gpd.sjoin(frame, hexagons, predicate="within", how="inner")
        sums = np.bincount(
            joined["index_right"].to_numpy(),
            weights=joined["severity"].to_numpy(),
            minlength=len(hexagons),
        )
        return np.asarray(sums, dtype=np.float64)

    t_sjoin, peer_y = best_of(slow_repeat, peer_join)
    t_queen, queen = best_of(
        slow_repeat,
        lambda: libpysal.weights.Queen.from_dataframe(
            hexagons, use_index=False, silence_warnings=True
        ),
    )
    t_kring_w, kring_w = best_of(
        slow_repeat, lambda: libpysal.weights.WSP(weights.matrix).to_W(silence_warnings=True)
    )
    t_g_queen, g_queen = best_of(
        slow_repeat, lambda: esda.G_Local(peer_y, queen, transform="B", star=True, permutations=0)
    )
    t_g_kring, _ = best_of(
        slow_repeat,
        lambda: esda.G_Local(peer_y, kring_w, transform="B", star=True, permutations=0),
    )
    t_peer = t_sjoin + t_queen + t_g_queen
    t_peer_kring = t_sjoin + t_kring_w + t_g_kring

    rows: list[tuple[str, float, str]] = [
        ("numpy floor: np.unique counts + mat-vec Gi* + normal p + BH", t_floor, "prebuilt CSR"),
        ("ours: recompute, severity weights", t_ours, "what the server analyses"),
        ("ours: recompute, counts only", t_counts, "equal weights: binomial tail"),
        ("  of which aggregate (severity)", t_agg, ""),
        ("  of which find_hotspots, events, severity", t_hot, ""),
        ("  of which find_hotspots, events, counts", t_hot_counts, ""),
        ("ours: kring_weights, cold (cached above)", t_weights, "once per AOR version"),
        ("ours: index_points at one resolution", t_index, "once per incident, at ingest"),
        ("ours: from raw points (index + cold weights + recompute)", t_ours_raw, ""),
        ("peer: geopandas sjoin points → hexagons, sums", t_sjoin, ""),
        ("peer: libpysal Queen.from_dataframe", t_queen, ""),
        ("peer: esda G_Local analytic (Queen)", t_g_queen, ""),
        ("peer: whole pipeline (sjoin + Queen + G_Local)", t_peer, ""),
        ("peer: libpysal W from our k-ring CSR", t_kring_w, ""),
        ("peer: esda G_Local analytic (k-ring W)", t_g_kring, ""),
        ("peer: whole pipeline (sjoin + k-ring W + G_Local)", t_peer_kring, "peer's lower bound"),
    ]

    # ------------------------------------------------------------------ permutations
    t_perm, _ = best_of(repeat, lambda: find_hotspots(values, weights, permutations=PERMUTATIONS))
    t_perm_job, _ = best_of(
        repeat, lambda: recompute(universe, cells, severity, cached, permutations=PERMUTATIONS)
    )
    y = values.intensity
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # compile (with numba) on a tiny problem first, so the timed call is warm
        tiny = kring_weights(universe[:200], K)
        tiny_w = libpysal.weights.WSP(tiny.matrix).to_W(silence_warnings=True)
        esda.G_Local(np.arange(200.0), tiny_w, transform="B", star=True, permutations=99)
        t_esda_perm, g_perm = best_of(
            slow_repeat,
            lambda: esda.G_Local(
                y, kring_w, transform="B", star=True, permutations=PERMUTATIONS, seed=1
            ),
        )
    with tempfile.TemporaryDirectory() as tmp:
        stored_path = Path(tmp) / "stored.npz"
        np.savez(stored_path, universe=universe, cells=cells, severity=severity)
        matrix_path, y_path = Path(tmp) / "w.npz", Path(tmp) / "y.npy"
        sparse.save_npz(matrix_path, weights.matrix)
        np.save(y_path, y)
        ours_cold = [run_cold(OURS_COLD, stored_path) for _ in range(slow_repeat + 1)]
        esda_cold = [run_cold(ESDA_COLD, matrix_path, y_path) for _ in range(slow_repeat)]
    t_ours_cold, ours_split = min(ours_cold, key=lambda run: run[0])
    t_esda_cold, esda_split = min(esda_cold, key=lambda run: run[0])
    rows += [
        (f"ours: find_hotspots, {PERMUTATIONS} permutations, warm", t_perm, "inputs ready"),
        (f"ours: recompute + {PERMUTATIONS} permutations, warm", t_perm_job, "cached weights"),
        (f"ours: {PERMUTATIONS} permutations, cold process", t_ours_cold, describe(ours_split)),
        (f"esda: G_Local {PERMUTATIONS} permutations, warm", t_esda_perm, "k-ring W prebuilt"),
        (f"esda: G_Local {PERMUTATIONS} permutations, cold process", t_esda_cold,
         describe(esda_split)),
    ]  # fmt: skip

    width = max(len(name) for name, _, _ in rows)
    print(f"{'step':<{width}}  {'best':>11}")
    for name, seconds, note in rows:
        print(f"{name:<{width}}  {seconds * 1000:>8.1f} ms  {note}")

    def ratio(label: str, numerator: float, denominator: float, target: str = "") -> None:
        print(f"  {label:<62} {numerator / denominator:>7.1f}×  {target}")

    print(
        f"\nrecompute, {n_incidents:,} incidents from stored cells "
        f"(target ≤ {FLOOR_TARGET:g}× the floor)"
    )
    ratio("ours (severity) / numpy floor", t_ours, t_floor, f"target ≤ {FLOOR_TARGET:g}×")
    ratio("ours (counts) / numpy floor", t_counts, t_floor, f"target ≤ {FLOOR_TARGET:g}×")
    ratio("peer (sjoin + Queen + G_Local) / ours (severity)", t_peer, t_ours,
          f"target ≥ {PEER_TARGET:g}×")  # fmt: skip
    ratio("peer (sjoin + Queen + G_Local) / ours (counts)", t_peer, t_counts,
          f"target ≥ {PEER_TARGET:g}×")  # fmt: skip
    ratio("peer (sjoin + k-ring W + G_Local) / ours (severity)", t_peer_kring, t_ours)
    ratio("peer (sjoin + Queen + G_Local) / ours from raw points", t_peer, t_ours_raw)
    ratio("peer (sjoin + k-ring W + G_Local) / ours from raw points", t_peer_kring, t_ours_raw)
    print(
        f"\npermutations, {PERMUTATIONS} (targets: ours ≤ {PERM_WARM_TARGET_S:g} s warm, "
        f"≤ {PERM_COLD_TARGET_S:g} s cold)"
    )
    print(f"  ours warm {t_perm:.3f} s (recompute + permutations {t_perm_job:.3f} s); "
          f"cold process {t_ours_cold:.2f} s")  # fmt: skip
    ratio("esda warm / ours warm (find_hotspots)", t_esda_perm, t_perm)
    ratio("esda cold process / ours cold process", t_esda_cold, t_ours_cold)

    z_dz = float(np.abs(g_perm.Zs - result.z_score).max())
    floor_dz = float(np.abs(floor_z - counts_result.z_score).max())
    queen_same = float(np.mean([set(queen.neighbors[i]) | {i} == set(kring_w.neighbors[i]) | {i}
                                for i in range(universe.size)]))  # fmt: skip
    print("\nchecks")
    print(f"  hot cells (any class): severity {result.hot.mean():.2%}, "
          f"counts {counts_result.hot.mean():.2%}")  # fmt: skip
    print(f"  esda Zs (k-ring W) vs ours: max |Δz| = {z_dz:.1e}")
    print(f"  floor z vs ours (counts): max |Δz| = {floor_dz:.1e}")
    print(f"  peer sjoin sums equal to our aggregate in {np.mean(peer_y == values.intensity):.4%}"
          " of cells")  # fmt: skip
    print(
        f"  Queen neighbourhood equals the k = 1 ring in {queen_same:.4%} of cells; "
        f"max |Δz| Queen vs ours {np.abs(g_queen.Zs - result.z_score).max():.2f}"
    )
    print("  universe and hexagon polygons are built once per AOR version: not timed")

    if args.profile:
        profile(lambda: recompute(universe, cells, severity, cached), "ours, severity")
        profile(lambda: recompute(universe, cells, ones, cached), "ours, counts")


if __name__ == "__main__":
    main()
