"""The threat picture as the API serves it: a GeoJSON FeatureCollection of hexagons."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class HotspotProperties(BaseModel):
    cell: str = Field(description="H3 cell (hex).")
    count: int = Field(description="Incidents in the cell in the window (fused, not reports).")
    intensity: float = Field(description="Σ severity weight (× decay, when asked).")
    local_count: int = Field(description="Incidents in the cell's k-ring neighbourhood.")
    z_score: float = Field(description="Getis-Ord Gi* z-score.")
    p_value: float
    q_value: float = Field(description="Benjamini–Hochberg adjusted p-value.")
    confidence: int = Field(
        description="+3/+2/+1: hot at 99/95/90 %; −3/−2/−1: cold; 0: not significant."
    )
    emerging: str = Field(description="Emerging hot spot category over the window's time bins.")
    trend_z: float | None = Field(description="Mann-Kendall z of the cell's Gi* series.")
    trend_p: float | None
    surge_score: float = Field(description="−log10 Poisson tail p of the last bin vs baseline.")
    surge_flag: bool
    precursor_index: float
    precursor_flag: bool


class HotspotFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: dict[str, Any]
    properties: HotspotProperties


class HotspotMetadata(BaseModel):
    unit_id: int
    aor_version: int
    resolution: int
    window_days: int
    as_of: datetime
    audience: Literal["full", "general"] = Field(
        description="`full`: every incident (protection officers). `general`: normal-tier "
        "incidents only, or suppressed counts for a sensitive family."
    )
    source: Literal["stored", "computed"]
    computed_at: datetime
    universe_cells: int
    incidents: int
    bin_days: int
    n_bins: int
    suppressed_cells: int = Field(description="Cells withheld by small-count suppression.")
    parameters: dict[str, Any]


class HotspotCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    metadata: HotspotMetadata
    features: list[HotspotFeature]
