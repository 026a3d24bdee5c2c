"""GPS track hygiene: which fixes of a patrol track are physically implausible.

A phone that loses its fix for a while, or jumps to a cell-tower position, produces points that
would make a patrol "cover" ground it never crossed. Such fixes are kept for the record but left
out of coverage. Plain arrays in, plain arrays out.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["EARTH_RADIUS_M", "haversine_m", "implausible_fixes"]

EARTH_RADIUS_M = 6_371_008.8


def haversine_m(
    lon1: npt.ArrayLike, lat1: npt.ArrayLike, lon2: npt.ArrayLike, lat2: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Great-circle distance in metres (mean Earth radius).

    >>> round(float(haversine_m(20.0, 5.0, 20.0, 6.0)))
    111195
    """
    lam1, phi1, lam2, phi2 = (
        np.radians(np.asarray(a, dtype=np.float64)) for a in (lon1, lat1, lon2, lat2)
    )
    a = (
        np.sin((phi2 - phi1) / 2) ** 2
        + np.cos(phi1) * np.cos(phi2) * np.sin((lam2 - lam1) / 2) ** 2
    )
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))))


def implausible_fixes(
    times_s: npt.ArrayLike,
    lon: npt.ArrayLike,
    lat: npt.ArrayLike,
    *,
    max_speed_mps: float,
    anchor: tuple[float, float, float] | None = None,
) -> npt.NDArray[np.bool_]:
    """Flag each fix that could only be reached from the last *plausible* fix faster than
    ``max_speed_mps``. ``times_s`` must be strictly increasing; ``anchor`` is the last stored
    plausible fix ``(t, lon, lat)`` before these, if any.

    Judged against the last good fix rather than the previous one, so a single wild point is
    flagged alone and the track resumes normally after it.

    >>> implausible_fixes([0, 60, 120], [20.0, 21.0, 20.001], [5.0, 5.0, 5.0], max_speed_mps=42)
    array([False,  True, False])
    """
    t = np.asarray(times_s, dtype=np.float64)
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    flags = np.zeros(t.shape, dtype=bool)
    if t.size == 0:
        return flags
    # The common case — every step plausible from its predecessor — is one vectorised check.
    if anchor is not None:
        t0, x0, y0 = anchor
        pt, px, py = np.r_[t0, t], np.r_[x0, x], np.r_[y0, y]
    else:
        pt, px, py = t, x, y
    step = haversine_m(px[:-1], py[:-1], px[1:], py[1:])
    if np.all(step <= max_speed_mps * np.diff(pt)):
        return flags
    good_t, good_x, good_y = float(pt[0]), float(px[0]), float(py[0])
    for i in range(0 if anchor is not None else 1, t.size):
        distance = float(haversine_m(good_x, good_y, x[i], y[i]))
        if distance > max_speed_mps * (t[i] - good_t):
            flags[i] = True
        else:
            good_t, good_x, good_y = float(t[i]), float(x[i]), float(y[i])
    return flags
