"""Vigil's pure spatial core: H3 cells, location precision, aggregation, Gi* hotspots, emerging
hotspots, early warning and small-count suppression.

Plain values in, plain values out: numpy arrays, shapely geometries and dataclasses. Nothing here
knows about the web, the database or the queue; only ``geo.cells`` imports h3.
"""

from geo.aggregate import CellValues, aggregate
from geo.cells import (
    MAX_STORED_RESOLUTION,
    MIN_STORED_RESOLUTION,
    NO_CELL,
    STORED_RESOLUTIONS,
    InvalidCellError,
)
from geo.early_warning import SurgeResult, precursor_flag, precursor_index, surge
from geo.emerging import EmergingCategory, EmergingResult, emerging_hotspots, space_time_cube
from geo.hotspots import (
    ConfidenceLevel,
    HotspotResult,
    benjamini_hochberg,
    confidence_classes,
    find_hotspots,
    gi_star_p_values,
    gi_star_z,
    permutation_p_values,
)
from geo.precision import LocationPrecision, finest_supported_resolution
from geo.suppression import Level, suppress
from geo.weights import KRingWeights, WeightsCache, kring_weights

__all__ = [
    "MAX_STORED_RESOLUTION",
    "MIN_STORED_RESOLUTION",
    "NO_CELL",
    "STORED_RESOLUTIONS",
    "CellValues",
    "ConfidenceLevel",
    "EmergingCategory",
    "EmergingResult",
    "HotspotResult",
    "InvalidCellError",
    "KRingWeights",
    "Level",
    "LocationPrecision",
    "SurgeResult",
    "WeightsCache",
    "aggregate",
    "benjamini_hochberg",
    "confidence_classes",
    "emerging_hotspots",
    "find_hotspots",
    "finest_supported_resolution",
    "gi_star_p_values",
    "gi_star_z",
    "kring_weights",
    "permutation_p_values",
    "precursor_flag",
    "precursor_index",
    "space_time_cube",
    "suppress",
    "surge",
]
