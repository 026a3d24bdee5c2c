"""Vigil's pure spatial core: H3 cells, location precision, aggregation, Gi* hotspots, emerging
hotspots, early warning, small-count suppression, patrol coverage, protection gaps and tasking.

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
from geo.coverage import CellCoverage, TrackCoverage, merge_last_visit, sensing_k, track_coverage
from geo.early_warning import SurgeResult, precursor_flag, precursor_index, surge
from geo.emerging import EmergingCategory, EmergingResult, emerging_hotspots, space_time_cube
from geo.gaps import GapPolicy, Gaps, ThreatCells, ThreatReason, find_gaps, threat_cells
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
from geo.tasking import PatrolAsset, Route, TaskingPlan, nearest_first, suggest_routes
from geo.weights import KRingWeights, WeightsCache, kring_weights

__all__ = [
    "MAX_STORED_RESOLUTION",
    "MIN_STORED_RESOLUTION",
    "NO_CELL",
    "STORED_RESOLUTIONS",
    "CellCoverage",
    "CellValues",
    "ConfidenceLevel",
    "EmergingCategory",
    "EmergingResult",
    "GapPolicy",
    "Gaps",
    "HotspotResult",
    "InvalidCellError",
    "KRingWeights",
    "Level",
    "LocationPrecision",
    "PatrolAsset",
    "Route",
    "SurgeResult",
    "TaskingPlan",
    "ThreatCells",
    "ThreatReason",
    "TrackCoverage",
    "WeightsCache",
    "aggregate",
    "benjamini_hochberg",
    "confidence_classes",
    "emerging_hotspots",
    "find_gaps",
    "find_hotspots",
    "finest_supported_resolution",
    "gi_star_p_values",
    "gi_star_z",
    "kring_weights",
    "merge_last_visit",
    "nearest_first",
    "permutation_p_values",
    "precursor_flag",
    "precursor_index",
    "sensing_k",
    "space_time_cube",
    "suggest_routes",
    "suppress",
    "surge",
    "threat_cells",
    "track_coverage",
]
