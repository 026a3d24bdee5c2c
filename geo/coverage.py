"""Patrol presence per cell: kilometres, minutes and last visit from GPS tracks, spread over the
sensing ring of each patrol.

A track is a sequence of plausible fixes (:func:`geo.tracks.implausible_fixes` flags the others;
callers leave them out). Between two fixes the patrol is taken to move in a straight line at
constant speed, which is all a GPS log says. Each segment is cut into equal sub-segments no
longer than half a cell edge, and each sub-segment's length and duration go to the cell of its
midpoint. A sub-segment that short crosses at most one cell boundary, so the per-cell totals are
exact to within one sub-segment at every crossing, and no cell the track passes through is
skipped. A segment longer in time than ``max_gap_s`` is a signal loss: nobody knows where the
patrol was, so it credits nothing; its two fixes still count as presence.

Presence is wider than the track: a patrol sees, hears and is seen over a sensing radius that
depends on its type (a foot patrol in a village, a helicopter over a valley). At the working
resolution the radius becomes a k-ring (:func:`sensing_k`): every cell within ``k`` grid steps
of a visited cell is present at the visited cell's times.

The last visit per cell is a maximum, so it is kept incrementally (:func:`merge_last_visit`):
new tracks only ever raise it, and the gap query reads one small table instead of the tracks.
Coordinates are degrees (WGS 84); tracks must not cross the antimeridian (the mission refuses
such AORs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geo.cells import CellArray, average_edge_length_m, cell_parents, grid_disks, point_cells
from geo.tracks import haversine_m

__all__ = [
    "DEFAULT_MAX_GAP_S",
    "CellCoverage",
    "Segments",
    "TrackCoverage",
    "densify_tracks",
    "merge_last_visit",
    "sensing_k",
    "track_coverage",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: A gap between two fixes longer than this (30 minutes) is a signal loss, not a straight walk.
DEFAULT_MAX_GAP_S = 1800.0


def sensing_k(radius_m: float, resolution: int) -> int:
    """Rings of ``resolution`` cells that best match a sensing radius.

    Neighbouring cell centres are ``√3·e`` apart (``e`` the average edge length), so ring ``k``
    lies about ``k·√3·e`` from the focal centre and ``k = round(radius / (√3·e))``.

    >>> sensing_k(500, 8), sensing_k(300, 8), sensing_k(1500, 8), sensing_k(3000, 8)
    (1, 0, 2, 3)
    """
    if radius_m < 0 or not math.isfinite(radius_m):
        raise ValueError("the sensing radius must be a finite, non-negative number of metres")
    return round(radius_m / (math.sqrt(3.0) * average_edge_length_m(resolution)))


@dataclass(frozen=True, eq=False)
class Segments:
    """Sub-segments of densified tracks, one row each.

    Attributes
    ----------
    track
        Track index of each sub-segment.
    lat, lng
        Its midpoint (degrees).
    km, minutes
        Its length and duration; zero for the anchor fixes.
    start_s, end_s
        When the patrol entered and left it (seconds; equal for anchors).
    """

    track: IntArray
    lat: FloatArray
    lng: FloatArray
    km: FloatArray
    minutes: FloatArray
    start_s: FloatArray
    end_s: FloatArray


def densify_tracks(
    times_s: npt.ArrayLike,
    lon: npt.ArrayLike,
    lat: npt.ArrayLike,
    *,
    max_step_m: float,
    track: npt.ArrayLike | None = None,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
) -> Segments:
    """Cut every segment between consecutive fixes into equal sub-segments of at most
    ``max_step_m``, vectorised over all tracks at once.

    A segment of length ``d`` and duration ``Δt`` becomes ``n = max(1, ⌈d / max_step_m⌉)``
    sub-segments of length ``d / n`` and duration ``Δt / n``; sub-segment ``j`` has its midpoint
    at fraction ``(j + ½) / n`` of the way (linear in longitude and latitude, which over half a
    kilometre differs from the great circle by millimetres). Segments longer than ``max_gap_s``
    give none. The first and last fix of every track, and both fixes around every signal loss,
    are added as zero-length *anchors*, so a one-fix track and the ends of a loss still count as
    presence.

    Parameters
    ----------
    times_s, lon, lat
        The fixes, shape ``(n,)``; the fixes of one track contiguous and in strictly increasing
        time.
    max_step_m
        Longest sub-segment.
    track
        Track index of each fix (default: one track).
    max_gap_s
        Longest segment, in seconds, that is credited.

    Examples
    --------
    >>> s = densify_tracks([0, 600], [20.0, 20.0], [5.0, 5.009], max_step_m=300)
    >>> s.km.round(4).tolist()  # 1.0 km in four pieces, plus the two anchors
    [0.2502, 0.2502, 0.2502, 0.2502, 0.0, 0.0]
    >>> s.minutes.tolist()[:4]
    [2.5, 2.5, 2.5, 2.5]
    """
    t = np.asarray(times_s, dtype=np.float64)
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    if not (t.shape == x.shape == y.shape) or t.ndim != 1:
        raise ValueError("times_s, lon and lat must be 1-d arrays of the same length")
    tracks = (
        np.zeros(t.size, dtype=np.int64) if track is None else np.asarray(track, dtype=np.int64)
    )
    if tracks.shape != t.shape:
        raise ValueError("track must have one entry per fix")
    if max_step_m <= 0:
        raise ValueError("max_step_m must be positive")
    if t.size == 0:
        empty_f, empty_i = np.zeros(0, dtype=np.float64), np.zeros(0, dtype=np.int64)
        return Segments(empty_i, empty_f, empty_f, empty_f, empty_f, empty_f, empty_f)
    same = tracks[1:] == tracks[:-1]
    dt = np.diff(t)
    if bool(np.any(same & ~(dt > 0))):
        raise ValueError("fix times must increase strictly within each track")
    step = haversine_m(x[:-1], y[:-1], x[1:], y[1:])
    credited = same & (dt <= max_gap_s)
    index = np.flatnonzero(credited)
    parts = np.maximum(1, np.ceil(step[index] / max_step_m)).astype(np.int64)
    seg = np.repeat(index, parts)
    repeated_parts = np.repeat(parts, parts).astype(np.float64)
    j = np.arange(seg.size, dtype=np.float64) - np.repeat(np.cumsum(parts) - parts, parts)
    mid = (j + 0.5) / repeated_parts
    seg_dt = dt[seg]
    # Anchors: track ends and both sides of every signal loss.
    lost = same & ~credited
    anchor = np.r_[True, ~same] | np.r_[~same, True] | np.r_[False, lost] | np.r_[lost, False]
    anchors = np.flatnonzero(anchor)
    zeros = np.zeros(anchors.size, dtype=np.float64)
    return Segments(
        track=np.concatenate([tracks[seg], tracks[anchors]]),
        lat=np.concatenate([y[seg] + mid * (y[seg + 1] - y[seg]), y[anchors]]),
        lng=np.concatenate([x[seg] + mid * (x[seg + 1] - x[seg]), x[anchors]]),
        km=np.concatenate([step[seg] / repeated_parts / 1000.0, zeros]),
        minutes=np.concatenate([seg_dt / repeated_parts / 60.0, zeros]),
        start_s=np.concatenate([t[seg] + j / repeated_parts * seg_dt, t[anchors]]),
        end_s=np.concatenate([t[seg] + (j + 1.0) / repeated_parts * seg_dt, t[anchors]]),
    )


@dataclass(frozen=True, eq=False)
class CellCoverage:
    """Coverage per cell over all tracks, aligned with the sorted ``cells``.

    Attributes
    ----------
    cells
        Sorted unique cells with presence.
    km, minutes
        Track length and time inside the cell, summed over tracks (0 where only sensed).
    tracks
        Number of tracks present in the cell (their sensing ring included).
    first_s, last_s
        Earliest and latest presence (seconds).
    """

    cells: CellArray
    km: FloatArray
    minutes: FloatArray
    tracks: IntArray
    first_s: FloatArray
    last_s: FloatArray


@dataclass(frozen=True, eq=False)
class TrackCoverage:
    """Coverage per (track, cell), sorted by track then cell.

    Attributes
    ----------
    resolution
        Resolution of ``cells``.
    track
        Track index of each row.
    cells
        The cell.
    km, minutes
        Length and time of the track inside the cell; zero for cells reached only by the
        sensing ring.
    first_s, last_s
        First and last presence of the track in the cell, its sensing ring included.
    """

    resolution: int
    track: IntArray
    cells: CellArray
    km: FloatArray
    minutes: FloatArray
    first_s: FloatArray
    last_s: FloatArray

    def per_cell(self) -> CellCoverage:
        """Totals over tracks: summed km and minutes, track count, first and last presence."""
        cells, inverse = np.unique(self.cells, return_inverse=True)
        first = np.full(cells.size, np.inf)
        last = np.full(cells.size, -np.inf)
        np.minimum.at(first, inverse, self.first_s)
        np.maximum.at(last, inverse, self.last_s)
        return CellCoverage(
            cells=cells,
            km=_sum_by(inverse, self.km, cells.size),
            minutes=_sum_by(inverse, self.minutes, cells.size),
            tracks=np.bincount(inverse, minlength=cells.size).astype(np.int64),
            first_s=first,
            last_s=last,
        )

    def roll_up(self, resolution: int) -> TrackCoverage:
        """The same coverage at a coarser resolution: each cell's H3 ancestor takes the sum of
        its km and minutes and the extremes of its presence times (the ancestors are what
        incidents are indexed with, so counts at every resolution nest)."""
        if resolution > self.resolution:
            raise ValueError("roll_up goes to a coarser resolution only")
        if resolution == self.resolution:
            return self
        parents = cell_parents(self.cells, resolution)
        track, cells, inverse = _group(self.track, parents)
        first = np.full(cells.size, np.inf)
        last = np.full(cells.size, -np.inf)
        np.minimum.at(first, inverse, self.first_s)
        np.maximum.at(last, inverse, self.last_s)
        return TrackCoverage(
            resolution=resolution,
            track=track,
            cells=cells,
            km=_sum_by(inverse, self.km, cells.size),
            minutes=_sum_by(inverse, self.minutes, cells.size),
            first_s=first,
            last_s=last,
        )


def _sum_by(index: IntArray, values: FloatArray, n: int) -> FloatArray:
    """``out[i] = Σ values[index == i]`` for ``i < n``."""
    return np.bincount(index, values, minlength=n).astype(np.float64, copy=False)


def _group(track: IntArray, cells: CellArray) -> tuple[IntArray, CellArray, IntArray]:
    """Distinct (track, cell) pairs, sorted by track then cell, and each row's pair index."""
    if cells.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    distinct_cells, cell_index = np.unique(cells, return_inverse=True)
    key = track * distinct_cells.size + cell_index
    keys, inverse = np.unique(key, return_inverse=True)
    return keys // distinct_cells.size, distinct_cells[keys % distinct_cells.size], inverse


def track_coverage(
    times_s: npt.ArrayLike,
    lon: npt.ArrayLike,
    lat: npt.ArrayLike,
    resolution: int,
    *,
    sensing_k: int | npt.ArrayLike = 0,
    track: npt.ArrayLike | None = None,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    max_step_m: float | None = None,
) -> TrackCoverage:
    """Kilometres, minutes and presence times per (track, cell) at ``resolution``.

    The track is densified below half a cell edge (:func:`densify_tracks`); each sub-segment's
    length and duration go to the cell of its midpoint, so for a track ``T`` and a cell ``c``

    .. math::

        \\mathrm{km}_{T,c} = \\sum_{s \\in T,\\ \\mathrm{cell}(m_s) = c} |s|, \\qquad
        \\mathrm{min}_{T,c} = \\sum_{s \\in T,\\ \\mathrm{cell}(m_s) = c} \\Delta t_s ,

    and presence spreads over the track's sensing ring: cell ``c`` is present at
    ``[min, max]`` of the entry and exit times of the sub-segments whose cell lies within
    ``k_T`` grid steps of ``c`` (the cells themselves included).

    Parameters
    ----------
    times_s, lon, lat
        The plausible fixes, the fixes of each track contiguous and in increasing time.
    resolution
        The working resolution.
    sensing_k
        Sensing ring in grid steps (:func:`sensing_k`), one value or one per track index.
    track
        Track index of each fix (default: one track, index 0).
    max_gap_s
        A longer segment is a signal loss and credits nothing.
    max_step_m
        Longest sub-segment; default half the resolution's average edge length.

    Examples
    --------
    One kilometre walked north in ten minutes at resolution 8 (edges of ~530 m):

    >>> cov = track_coverage([0, 600], [20.0, 20.0], [5.0, 5.009], 8)
    >>> round(float(cov.km.sum()), 3), round(float(cov.minutes.sum()), 3)
    (1.001, 10.0)
    >>> bool((cov.km > 0).all()), int(cov.cells.size) in (2, 3)
    (True, True)
    >>> ring = track_coverage([0, 600], [20.0, 20.0], [5.0, 5.009], 8, sensing_k=1)
    >>> bool(ring.cells.size > cov.cells.size), round(float(ring.km.sum()), 3)
    (True, 1.001)
    """
    step = max_step_m if max_step_m is not None else 0.5 * average_edge_length_m(resolution)
    segments = densify_tracks(times_s, lon, lat, max_step_m=step, track=track, max_gap_s=max_gap_s)
    on_track = point_cells(segments.lat, segments.lng, resolution)
    track_index, cells, inverse = _group(segments.track, on_track)
    n = cells.size
    km = _sum_by(inverse, segments.km, n)
    minutes = _sum_by(inverse, segments.minutes, n)
    first = np.full(n, np.inf)
    last = np.full(n, -np.inf)
    np.minimum.at(first, inverse, segments.start_s)
    np.maximum.at(last, inverse, segments.end_s)
    direct = TrackCoverage(resolution, track_index, cells, km, minutes, first, last)
    return _spread(direct, sensing_k)


def _spread(direct: TrackCoverage, k: int | npt.ArrayLike) -> TrackCoverage:
    """Add each track's sensing ring to its visited cells."""
    if direct.cells.size == 0:
        return direct
    per_track = np.asarray(k, dtype=np.int64)
    row_k = (
        np.full(direct.cells.size, int(per_track))
        if per_track.ndim == 0
        else per_track[direct.track]
    )
    if bool(np.any(row_k < 0)):
        raise ValueError("sensing_k must be non-negative")
    if not bool(np.any(row_k > 0)):
        return direct
    tracks, cells, firsts, lasts = [], [], [], []
    for ring in np.unique(row_k).tolist():
        rows = np.flatnonzero(row_k == ring)
        if ring == 0:
            origin, neighbour = np.arange(rows.size, dtype=np.int64), direct.cells[rows]
        else:
            origin, neighbour = grid_disks(direct.cells[rows], int(ring))
        source = rows[origin]
        tracks.append(direct.track[source])
        cells.append(neighbour)
        firsts.append(direct.first_s[source])
        lasts.append(direct.last_s[source])
    # The crossed cells go in last, so their km and minutes land on the same (track, cell) rows.
    tracks.append(direct.track)
    cells.append(direct.cells)
    firsts.append(direct.first_s)
    lasts.append(direct.last_s)
    track_index, ring_cells, inverse = _group(np.concatenate(tracks), np.concatenate(cells))
    n = ring_cells.size
    first = np.full(n, np.inf)
    last = np.full(n, -np.inf)
    np.minimum.at(first, inverse, np.concatenate(firsts))
    np.maximum.at(last, inverse, np.concatenate(lasts))
    crossed = inverse[inverse.size - direct.cells.size :]
    km = _sum_by(crossed, direct.km, n)
    minutes = _sum_by(crossed, direct.minutes, n)
    return TrackCoverage(direct.resolution, track_index, ring_cells, km, minutes, first, last)


def merge_last_visit(
    cells: npt.ArrayLike,
    last_s: npt.ArrayLike,
    new_cells: npt.ArrayLike,
    new_last_s: npt.ArrayLike,
) -> tuple[CellArray, FloatArray]:
    """Fold new presence into a last-visit table: ``last(c) = max(last(c), new(c))``.

    The in-memory twin of the database upsert that keeps the last visit per cell: because the
    last visit is a maximum, tracks can arrive in any order, late or twice, and the table ends
    the same.

    >>> merge_last_visit([10, 20], [5.0, 9.0], [20, 30], [7.0, 1.0])
    (array([10, 20, 30]), array([5., 9., 1.]))
    """
    all_cells = np.concatenate(
        [np.asarray(cells, dtype=np.int64), np.asarray(new_cells, dtype=np.int64)]
    )
    all_last = np.concatenate(
        [np.asarray(last_s, dtype=np.float64), np.asarray(new_last_s, dtype=np.float64)]
    )
    merged, inverse = np.unique(all_cells, return_inverse=True)
    last = np.full(merged.size, -np.inf)
    np.maximum.at(last, inverse, all_last)
    return merged, last
