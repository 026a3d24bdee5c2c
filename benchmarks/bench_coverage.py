"""Benchmark patrol coverage from tracks against baselines in the same run.

Run ``.venv/bin/python benchmarks/bench_coverage.py`` (500 tracks, 240,000 fixes, ~10,000 km) or
add ``--quick`` (50 tracks); ``--profile`` adds a cProfile of ours. Prints best-of-N wall times
and ratios; asserts nothing.

Workload (issue 4, speed table rows 1–2): 500 foot-patrol tracks over the Central African
Republic, 480 fixes each, one fix every 30 s at walking pace with a wandering heading (fixed seed),
→ km and minutes per resolution-8 cell and the last visit per cell.

* ours — what the coverage job runs (``server/coverage/service.py``), on all tracks at once:
  :func:`geo.coverage.track_coverage` (densified below half a cell edge, midpoint cells, per
  (track, cell) km, minutes, first and last presence), then ``per_cell()`` and
  :func:`geo.coverage.merge_last_visit` into an empty last-visit table. Twice: with no sensing
  ring (``k = 0``, the same output as the floor) and with the foot patrol's ring (``k = 1``,
  what the server stores);
* numpy floor — the least any per-cell sum can do: densify (``np.repeat`` of the segments and a
  linear interpolation of the midpoints), index the midpoints (the same h3ronpy call as ours),
  ``np.unique(return_inverse=True)``, two ``np.bincount`` for km and minutes and one
  ``np.maximum.at`` for the last visit; no per-track grouping, no anchors, no signal-loss rule;
* the GIS way — what a notebook does for "cells within the sensing radius of a track": shapely
  ``buffer`` of each track's LineString by 500 m (in degrees at the track's latitude), then an
  h3 polygon fill of each buffer (``h3shape_to_cells``); presence cells only, no km or minutes.
  Compared with ours at ``k = 1``, which also gives km, minutes and times. Also: how many of the
  GIS cells ours marks present, and the other way round.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import math
import pstats
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import shapely

from geo import cells as geo_cells
from geo.coverage import merge_last_visit, sensing_k, track_coverage
from geo.tracks import haversine_m

T = TypeVar("T")
FloatArray = npt.NDArray[np.float64]

RESOLUTION = 8
FOOT_RADIUS_M = 500.0
CAR_BOX = (15.0, 3.5, 26.0, 10.0)  # west, south, east, north
FIX_EVERY_S = 30.0
TARGET_FLOOR = 3.0
TARGET_GIS = 20.0


def best_of(repeat: int, fn: Callable[[], T]) -> tuple[float, T]:
    best = float("inf")
    result: T | None = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    assert result is not None
    return best, result


def synthetic_tracks(
    n_tracks: int, fixes_per_track: int, seed: int = 20261204
) -> tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.int64]]:
    """Foot patrols: ~5 km/h (a fix every 30 s ≈ 42 m), a heading that wanders, GPS noise of a
    few metres; each track starts at a random base in the box and a random day."""
    rng = np.random.default_rng(seed)
    west, south, east, north = CAR_BOX
    n = n_tracks * fixes_per_track
    track = np.repeat(np.arange(n_tracks, dtype=np.int64), fixes_per_track)
    heading = np.cumsum(rng.normal(0, 0.25, n)) + np.repeat(
        rng.uniform(0, 2 * np.pi, n_tracks), fixes_per_track
    )
    step_m = rng.normal(42.0, 6.0, n).clip(5, 80)
    lat0 = np.repeat(rng.uniform(south, north, n_tracks), fixes_per_track)
    lon0 = np.repeat(rng.uniform(west, east, n_tracks), fixes_per_track)
    dy = step_m * np.cos(heading) / 111_320.0
    dx = step_m * np.sin(heading) / (111_320.0 * np.cos(np.radians(lat0)))
    first = np.r_[True, track[1:] != track[:-1]]
    dy[first], dx[first] = 0.0, 0.0

    # Cumulative sums restarted at each track's first fix.
    def restart(values: FloatArray) -> FloatArray:
        total = np.cumsum(values)
        offsets = np.repeat(total[first] - values[first], fixes_per_track)
        return total - offsets

    lat = lat0 + restart(dy) + rng.normal(0, 3e-5, n)
    lon = lon0 + restart(dx) + rng.normal(0, 3e-5, n)
    day = np.repeat(rng.integers(0, 30, n_tracks) * 86_400.0 + 6 * 3600.0, fixes_per_track)
    times = day + np.tile(np.arange(fixes_per_track) * FIX_EVERY_S, n_tracks)
    return times, lon, lat, track


def ours(
    times: FloatArray, lon: FloatArray, lat: FloatArray, track: npt.NDArray[np.int64], k: int
) -> tuple[int, float, float]:
    coverage = track_coverage(times, lon, lat, RESOLUTION, sensing_k=k, track=track)
    totals = coverage.per_cell()
    cells, _last = merge_last_visit(
        np.zeros(0, dtype=np.int64), np.zeros(0), totals.cells, totals.last_s
    )
    return int(cells.size), float(totals.km.sum()), float(totals.minutes.sum())


def numpy_floor(
    times: FloatArray, lon: FloatArray, lat: FloatArray, track: npt.NDArray[np.int64]
) -> tuple[int, float, float]:
    same = track[1:] == track[:-1]
    seg = np.flatnonzero(same)
    d = haversine_m(lon[seg], lat[seg], lon[seg + 1], lat[seg + 1])
    step = 0.5 * geo_cells.average_edge_length_m(RESOLUTION)
    parts = np.maximum(1, np.ceil(d / step)).astype(np.int64)
    rep = np.repeat(seg, parts)
    n_rep = np.repeat(parts, parts).astype(np.float64)
    j = np.arange(rep.size) - np.repeat(np.cumsum(parts) - parts, parts)
    f = (j + 0.5) / n_rep
    mid_lat = lat[rep] + f * (lat[rep + 1] - lat[rep])
    mid_lon = lon[rep] + f * (lon[rep + 1] - lon[rep])
    km = np.repeat(d / parts / 1000.0, parts)
    minutes = np.repeat(np.diff(times)[seg] / parts / 60.0, parts)
    end = times[rep] + (j + 1) / n_rep * (times[rep + 1] - times[rep])
    cells = geo_cells.point_cells(mid_lat, mid_lon, RESOLUTION)
    distinct, inverse = np.unique(cells, return_inverse=True)
    km_per_cell = np.bincount(inverse, km, minlength=distinct.size)
    minutes_per_cell = np.bincount(inverse, minutes, minlength=distinct.size)
    last = np.full(distinct.size, -np.inf)
    np.maximum.at(last, inverse, end)
    return int(distinct.size), float(km_per_cell.sum()), float(minutes_per_cell.sum())


def gis_way(
    lon: FloatArray, lat: FloatArray, track: npt.NDArray[np.int64], radius_m: float
) -> npt.NDArray[np.int64]:
    """Buffer each track and fill the buffer with cells (presence only)."""
    bounds = np.flatnonzero(np.r_[True, track[1:] != track[:-1], True])
    found = []
    for start, stop in itertools.pairwise(bounds):
        line = shapely.LineString(np.column_stack([lon[start:stop], lat[start:stop]]))
        mean_lat = float(lat[start:stop].mean())
        # Degrees of longitude shrink with latitude; take the buffer in latitude degrees and
        # stretch it (a planar buffer is what the notebook recipe does).
        radius_deg = radius_m / (111_320.0 * math.cos(math.radians(mean_lat)))
        found.append(geo_cells.polygon_cells(line.buffer(radius_deg), RESOLUTION))
    return np.unique(np.concatenate(found))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 tracks instead of 500")
    parser.add_argument("--profile", action="store_true", help="cProfile of ours (k = 1)")
    args = parser.parse_args()
    n_tracks = 50 if args.quick else 500
    repeat = 3 if args.quick else 5
    times, lon, lat, track = synthetic_tracks(n_tracks, 480)
    length_km = float(
        haversine_m(lon[:-1], lat[:-1], lon[1:], lat[1:])[track[1:] == track[:-1]].sum() / 1000
    )
    k = sensing_k(FOOT_RADIUS_M, RESOLUTION)
    print(
        f"{n_tracks} tracks, {times.size:,} fixes, {length_km:,.0f} km; resolution {RESOLUTION} "
        f"(edge {geo_cells.average_edge_length_m(RESOLUTION):.0f} m); foot sensing ring k = {k}"
    )
    ours(times, lon, lat, track, k)  # warm up h3ronpy and numpy
    t_floor, floor = best_of(repeat, lambda: numpy_floor(times, lon, lat, track))
    t_ours0, ours0 = best_of(repeat, lambda: ours(times, lon, lat, track, 0))
    t_ours1, ours1 = best_of(repeat, lambda: ours(times, lon, lat, track, k))
    t_gis, gis_cells = best_of(
        1 if not args.quick else 2, lambda: gis_way(lon, lat, track, FOOT_RADIUS_M)
    )
    print(f"numpy floor (densify + bincount):  {t_floor * 1e3:8.1f} ms  {floor[0]:,} cells, "
          f"{floor[1]:,.1f} km, {floor[2]:,.0f} min")  # fmt: skip
    print(f"ours, k = 0:                       {t_ours0 * 1e3:8.1f} ms  {ours0[0]:,} cells, "
          f"{ours0[1]:,.1f} km, {ours0[2]:,.0f} min   {t_ours0 / t_floor:.2f}× floor "
          f"(target ≤ {TARGET_FLOOR:g}×)")  # fmt: skip
    print(f"ours, k = {k} (what the server stores): {t_ours1 * 1e3:8.1f} ms  {ours1[0]:,} cells"
          f"   {t_ours1 / t_floor:.2f}× floor (target ≤ {TARGET_FLOOR:g}×)")  # fmt: skip
    print(f"GIS way (buffer {FOOT_RADIUS_M:.0f} m + polyfill): {t_gis * 1e3:8.1f} ms  "
          f"{gis_cells.size:,} cells   {t_gis / t_ours1:.1f}× ours k = {k} "
          f"(expect ≥ {TARGET_GIS:g}×)")  # fmt: skip
    presence = track_coverage(times, lon, lat, RESOLUTION, sensing_k=k, track=track).per_cell()
    both = np.intersect1d(presence.cells, gis_cells).size
    print(f"agreement: {both / gis_cells.size:.1%} of the GIS cells are present in ours; "
          f"{both / presence.cells.size:.1%} of ours are in the GIS buffer")  # fmt: skip
    print(f"km: ours {ours0[1]:,.3f} vs floor {floor[1]:,.3f} (the same segments); minutes: "
          f"ours {ours0[2]:,.1f} vs floor {floor[2]:,.1f}")  # fmt: skip
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        ours(times, lon, lat, track, k)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
