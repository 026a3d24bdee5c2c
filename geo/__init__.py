"""Vigil's pure spatial core: H3 cells, location precision, and (later) hotspot statistics.

Plain values in, plain values out: numpy arrays, shapely geometries and dataclasses. Nothing here
knows about the web, the database or the queue.
"""

from geo.cells import (
    MAX_STORED_RESOLUTION,
    MIN_STORED_RESOLUTION,
    NO_CELL,
    STORED_RESOLUTIONS,
    InvalidCellError,
)
from geo.precision import LocationPrecision, finest_supported_resolution

__all__ = [
    "MAX_STORED_RESOLUTION",
    "MIN_STORED_RESOLUTION",
    "NO_CELL",
    "STORED_RESOLUTIONS",
    "InvalidCellError",
    "LocationPrecision",
    "finest_supported_resolution",
]
