"""The threat picture: feed incidents to the spatial core, store and serve what it returns.

One analysis covers one AOR version at one resolution over one time window, as of a moment, for
one audience:

- ``full`` — every active incident; what protection officers see;
- ``general`` — normal-tier incidents only; what everyone else sees. Sensitive families
  (sexual violence, children, misconduct) are available to them only as counts at resolution
  ≤ 6, from incidents with consent to aggregate reporting, with small counts suppressed and the
  statistics computed from the published counts alone, so nothing shown can be differenced back
  to a hidden case.

Discredited incidents are left out: a report found false must not raise a threat.
The universe is the AOR's cells at the resolution (zero-count cells included: Gi* needs them).
Incidents, not reports, are counted; an incident whose location cannot support the resolution
has no cell there and is not counted at it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from geo import cells as geo_cells
from geo.aggregate import CellValues, aggregate
from geo.early_warning import precursor_flag, precursor_index, surge
from geo.emerging import EmergingCategory, emerging_hotspots, space_time_cube
from geo.hotspots import find_hotspots
from geo.suppression import Level, suppress
from geo.weights import KRingWeights, WeightsCache, kring_weights
from server.db.base import utcnow
from server.errors import ValidationFailedError
from server.hotspots.models import HotspotCell, HotspotDirty, HotspotSnapshot
from server.incidents.models import Incident, IncidentStatus
from server.reports.enums import VerificationState
from server.settings import AlertSettings, Settings
from server.taxonomy.codes import TAXONOMY, Sensitivity, get_category
from server.units.models import AorCell, AorVersion, Unit, ancestor_ids_of

__all__ = [
    "AUDIENCES",
    "Analysis",
    "analyse",
    "check_window",
    "compute_snapshots",
    "mark_all_dirty",
    "mark_dirty",
    "mark_dirty_many",
    "mark_dirty_version",
    "recompute",
    "store",
    "store_snapshots",
    "window_plan",
]

#: Incidents that raise no threat: discredited by an analyst, or withdrawn by their author.
SET_ASIDE = (VerificationState.DISCREDITED.value, VerificationState.WITHDRAWN.value)

FULL = "full"
GENERAL = "general"
AUDIENCES = (FULL, GENERAL)

#: Leading indicators and their weight in the precursor index: open incitement and threats
#: weigh most; movement and displacement are noisier signals of the same build-up.
PRECURSOR_WEIGHTS: dict[str, float] = {
    "hate_speech_incitement": 1.0,
    "threats_intimidation": 1.0,
    "armed_group_movement": 0.75,
    "forced_displacement": 0.75,
}
assert set(PRECURSOR_WEIGHTS) == {c.code for c in TAXONOMY if c.precursor}, (
    "PRECURSOR_WEIGHTS must weigh exactly the taxonomy's precursor categories"
)

#: Families whose categories are not all normal-tier: shown outside protection only as
#: suppressed counts.
SENSITIVE_FAMILIES = frozenset(
    c.family.value for c in TAXONOMY if c.sensitivity is not Sensitivity.NORMAL
)

_WEIGHTS = WeightsCache(capacity=64)


def window_plan(window_days: int) -> tuple[int, int]:
    """``(bin_days, n_bins)`` of the space-time cube for a window.

    Daily bins for windows under ten weeks, weekly bins up to two years, 30-day bins beyond:
    enough bins for a trend (ArcGIS advises at least ten), few enough to stay meaningful.
    """
    if window_days < 70:
        bin_days = 1
    elif window_days <= 730:
        bin_days = 7
    else:
        bin_days = 30
    return bin_days, max(1, math.ceil(window_days / bin_days))


def max_window_days(resolution: int) -> int:
    """The longest window worth analysing at a resolution: decades of history can be read at
    the scale of a province, not of a village."""
    if resolution >= 8:
        return 366
    if resolution >= 6:
        return 5 * 366
    return 40 * 366


def check_window(resolution: int, window_days: int, settings: Settings) -> None:
    if resolution not in settings.mission.h3_resolutions:
        raise ValidationFailedError.on(
            "query:resolution",
            f"{resolution} is not one of the mission's resolutions "
            f"{settings.mission.h3_resolutions}",
        )
    if window_days < 1:
        raise ValidationFailedError.on("query:window_days", "must be at least 1 day")
    limit = max_window_days(resolution)
    if window_days > limit:
        raise ValidationFailedError.on(
            "query:window_days",
            f"{window_days} days is too long to analyse at resolution {resolution} "
            f"(at most {limit}); use a coarser resolution for long histories",
        )


@dataclass(frozen=True, eq=False)
class Analysis:
    """One analysis, arrays aligned with ``cells`` (the universe)."""

    unit_id: int
    aor_version_id: int
    resolution: int
    window_days: int
    as_of: datetime
    audience: str
    bin_days: int
    n_bins: int
    incidents: int
    universe_cells: int
    #: The universe, or empty for a quiet window (nothing to report, nothing computed).
    cells: npt.NDArray[np.int64]
    count: npt.NDArray[np.int64]
    intensity: npt.NDArray[np.float64]
    local_count: npt.NDArray[np.int64]
    z_score: npt.NDArray[np.float64]
    p_value: npt.NDArray[np.float64]
    q_value: npt.NDArray[np.float64]
    confidence: npt.NDArray[np.int8]
    emerging: npt.NDArray[np.str_]
    trend_z: npt.NDArray[np.float64]
    trend_p: npt.NDArray[np.float64]
    surge_score: npt.NDArray[np.float64]
    surge_p: npt.NDArray[np.float64]
    surge_flag: npt.NDArray[np.bool_]
    precursor_index: npt.NDArray[np.float64]
    precursor_flag: npt.NDArray[np.bool_]
    #: Cells whose count is suppressed: never stored or shown, whatever their statistics.
    withheld: npt.NDArray[np.bool_] | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def suppressed(self) -> int:
        return 0 if self.withheld is None else int(self.withheld.sum())

    def notable(self) -> npt.NDArray[np.bool_]:
        """Cells worth storing and sending: anything but a quiet, ordinary cell (and never a
        withheld one)."""
        shown = np.ones(self.cells.size, dtype=bool) if self.withheld is None else ~self.withheld
        return shown & (
            (self.count > 0)
            | (self.confidence != 0)
            | (self.emerging != EmergingCategory.NO_PATTERN.value)
            | self.surge_flag
            | self.precursor_flag
        )


# --------------------------------------------------------------------------- inputs


def current_aor_for_unit(session: Session, unit: Unit) -> AorVersion | None:
    """The unit's current AOR, or its nearest ancestor's (a JOC or a section has none)."""
    ids = [int(part) for part in unit.path.strip("/").split("/") if part][::-1]
    versions = {
        v.unit_id: v
        for v in session.scalars(
            select(AorVersion).where(AorVersion.unit_id.in_(ids), AorVersion.valid_to.is_(None))
        )
    }
    for unit_id in ids:
        if unit_id in versions:
            return versions[unit_id]
    return None


def universe_for(session: Session, aor: AorVersion, resolution: int) -> npt.NDArray[np.int64]:
    """The AOR's cells at ``resolution`` (stored compacted, expanded here)."""
    compact = np.fromiter(
        session.scalars(
            select(AorCell.cell).where(
                AorCell.aor_version_id == aor.id, AorCell.resolution == resolution
            )
        ),
        dtype=np.int64,
    )
    return geo_cells.uncompact_cells(compact, resolution)


def _weights(
    aor: AorVersion, resolution: int, k: int, universe: npt.NDArray[np.int64]
) -> KRingWeights:
    # The universe's digest is part of the key: an AOR version id names a polygon only within
    # one database (a restore, or a rolled-back test, can hand the same id to another).
    digest = hashlib.blake2b(universe.tobytes(), digest_size=16).hexdigest()
    key = (aor.id, resolution, k, digest)
    return _WEIGHTS.get(key, lambda: kring_weights(universe, k))


@dataclass(frozen=True, eq=False)
class _Incidents:
    cells: npt.NDArray[np.int64]
    severity: npt.NDArray[np.float64]
    occurred_s: npt.NDArray[np.float64]
    category: npt.NDArray[np.str_]


def _load_incidents(
    session: Session,
    *,
    resolution: int,
    start: datetime,
    end: datetime,
    audience: str,
    categories: Sequence[str],
    sensitive_layer: bool,
    bounds: tuple[float, float, float, float],
) -> _Incidents:
    cell_column = getattr(Incident, f"h3_res{resolution}")
    statement = select(
        cell_column, Incident.severity_weight, Incident.occurred_at, Incident.category
    ).where(
        Incident.status == IncidentStatus.ACTIVE,
        Incident.verification_state.not_in(SET_ASIDE),
        cell_column.is_not(None),
        Incident.occurred_at >= start,
        Incident.occurred_at < end,
        # The AOR's bounding box (grown by a cell) narrows the scan; cell membership is exact.
        Incident.longitude.between(bounds[0], bounds[2]),
        Incident.latitude.between(bounds[1], bounds[3]),
    )
    if categories:
        statement = statement.where(Incident.category.in_(list(categories)))
    if audience == GENERAL:
        if sensitive_layer:
            statement = statement.where(Incident.consent_aggregate_reporting.is_(True))
        else:
            statement = statement.where(Incident.sensitivity == Sensitivity.NORMAL.value)
    rows = session.execute(statement).all()
    return _Incidents(
        cells=np.array([r[0] for r in rows], dtype=np.int64),
        severity=np.array([r[1] for r in rows], dtype=np.float64),
        occurred_s=np.array([r[2].timestamp() for r in rows], dtype=np.float64),
        category=np.array([r[3] for r in rows], dtype=str),
    )


def selected_categories(families: Sequence[str], categories: Sequence[str]) -> list[str]:
    """The category codes a family/category filter selects (empty: no filter)."""
    chosen = {get_category(c).code for c in categories}
    for family in families:
        chosen |= {c.code for c in TAXONOMY if c.family.value == family}
    return sorted(chosen)


def is_sensitive_selection(categories: Sequence[str]) -> bool:
    return any(get_category(c).sensitivity is not Sensitivity.NORMAL for c in categories)


# --------------------------------------------------------------------------- analysis


def analyse(
    *,
    session: Session,
    aor: AorVersion,
    resolution: int,
    window_days: int,
    as_of: datetime,
    audience: str,
    settings: Settings,
    families: Sequence[str] = (),
    categories: Sequence[str] = (),
    half_life_days: float | None = None,
) -> Analysis:
    """Run the spatial core for one AOR, resolution, window and audience."""
    check_window(resolution, window_days, settings)
    hs = settings.hotspots
    selection = selected_categories(families, categories)
    sensitive_layer = bool(selection) and is_sensitive_selection(selection)
    if audience == GENERAL and sensitive_layer and resolution > hs.sensitive_max_resolution:
        raise ValidationFailedError.on(
            "query:resolution",
            f"sensitive families are shown only at resolution {hs.sensitive_max_resolution} "
            "or coarser",
        )
    size = universe_size(session, aor, resolution)
    if size == 0:
        raise ValidationFailedError.on(
            "query:unit", f"the area of responsibility has no cells at resolution {resolution}"
        )
    if size > hs.max_cells:
        raise ValidationFailedError.on(
            "query:resolution",
            f"the area of responsibility has {size} cells at resolution {resolution}, "
            f"more than the {hs.max_cells} analysed at once; choose a coarser resolution or a "
            "smaller unit",
        )
    bin_days, n_bins = window_plan(window_days)
    start = as_of - timedelta(days=bin_days * n_bins)
    found = _load_incidents(
        session,
        resolution=resolution,
        start=start,
        end=as_of,
        audience=audience,
        categories=selection,
        sensitive_layer=sensitive_layer,
        bounds=_grown_bounds(aor, resolution),
    )
    universe = universe_for(session, aor, resolution) if found.cells.size else np.zeros(0, np.int64)
    as_of_s = as_of.timestamp()
    values = aggregate(
        universe,
        found.cells,
        found.severity,
        occurred_at_s=found.occurred_s,
        as_of_s=as_of_s,
        half_life_days=half_life_days,
    )
    if not values.count.any():
        # Most AORs, most of the time: nothing happened there, every statistic is zero.
        return _quiet(
            aor,
            resolution,
            window_days,
            as_of,
            audience,
            bin_days,
            n_bins,
            size,
            families,
            categories,
            half_life_days,
            hs.k,
            hs.min_local_count,
        )
    weights = _weights(aor, resolution, hs.k, universe)
    withheld = np.zeros(universe.size, dtype=bool)
    published_only = audience == GENERAL and sensitive_layer
    counted_weights = values.counted_weights
    if published_only:
        values, withheld = _suppressed_values(
            session,
            resolution=resolution,
            start=start,
            end=as_of,
            categories=selection,
            values=values,
            settings=settings,
        )
        counted_weights = np.ones(int(values.count.sum()))
    # Significance under complete spatial randomness of incidents (see geo.hotspots.event_tails).
    result = find_hotspots(
        values,
        weights,
        min_local_count=hs.min_local_count,
        approximation="events",
        incident_weights=counted_weights,
    )
    n = universe.size
    bins = np.floor((found.occurred_s - start.timestamp()) / (bin_days * 86_400.0)).astype(np.int64)
    if published_only or n_bins < 3:
        # Time-resolved statistics of suppressed counts would re-identify what suppression hid.
        emerging = np.full(n, EmergingCategory.NO_PATTERN.value, dtype=object)
        trend_z = np.full(n, np.nan)
        trend_p = np.full(n, np.nan)
        surge_score = np.zeros(n)
        surge_p = np.ones(n)
        surge_flags = np.zeros(n, dtype=bool)
        precursor = np.zeros(n)
        precursor_flags = np.zeros(n, dtype=bool)
    else:
        counts_cube, intensity_cube = space_time_cube(
            universe, found.cells, bins, n_bins, found.severity
        )
        trend = emerging_hotspots(
            intensity_cube, counts_cube, weights, min_local_count=hs.min_local_count
        )
        emerging = trend.labels
        trend_z, trend_p = trend.trend_z, trend.trend_p
        current = counts_cube[:, -1]
        surged = surge(current, counts_cube[:, :-1])
        surge_score, surge_p, surge_flags = surged.score, surged.p_value, surged.flagged
        precursor, precursor_flags = _precursors(
            universe, found, bins, n_bins, hs.precursor_threshold
        )
    return Analysis(
        unit_id=aor.unit_id,
        aor_version_id=aor.id,
        resolution=resolution,
        window_days=window_days,
        as_of=as_of,
        audience=audience,
        bin_days=bin_days,
        n_bins=n_bins,
        incidents=int(values.count.sum()),
        universe_cells=int(universe.size),
        cells=universe,
        count=values.count,
        intensity=values.intensity,
        local_count=np.asarray(result.local_count, dtype=np.int64),
        z_score=result.z_score,
        p_value=result.p_value,
        q_value=result.q_value,
        confidence=np.asarray(result.confidence, dtype=np.int8),
        emerging=np.asarray(emerging, dtype=str),
        trend_z=np.asarray(trend_z, dtype=np.float64),
        trend_p=np.asarray(trend_p, dtype=np.float64),
        surge_score=np.asarray(surge_score, dtype=np.float64),
        surge_p=np.asarray(surge_p, dtype=np.float64),
        surge_flag=np.asarray(surge_flags, dtype=bool),
        precursor_index=np.asarray(precursor, dtype=np.float64),
        precursor_flag=np.asarray(precursor_flags, dtype=bool),
        withheld=withheld,
        parameters={
            "k": hs.k,
            "min_local_count": hs.min_local_count,
            "families": list(families),
            "categories": list(categories),
            "half_life_days": half_life_days,
            "suppression_k": hs.suppression_k if published_only else None,
        },
    )


def _grown_bounds(aor: AorVersion, resolution: int) -> tuple[float, float, float, float]:
    margin = 2 * geo_cells.average_edge_length_m(resolution) / 100_000.0  # ≥ 1 cell, in degrees
    min_lon, min_lat, max_lon, max_lat = aor.geometry.bounds
    return (min_lon - margin, min_lat - margin, max_lon + margin, max_lat + margin)


def _quiet(
    aor: AorVersion,
    resolution: int,
    window_days: int,
    as_of: datetime,
    audience: str,
    bin_days: int,
    n_bins: int,
    universe_cells: int,
    families: Sequence[str],
    categories: Sequence[str],
    half_life_days: float | None,
    k: int,
    min_local_count: int,
) -> Analysis:
    """The analysis of a window without incidents in the AOR: no cell to report, nothing
    computed (no weights, no cube)."""
    empty_f = np.zeros(0)
    return Analysis(
        unit_id=aor.unit_id,
        aor_version_id=aor.id,
        resolution=resolution,
        window_days=window_days,
        as_of=as_of,
        audience=audience,
        bin_days=bin_days,
        n_bins=n_bins,
        incidents=0,
        universe_cells=universe_cells,
        cells=np.zeros(0, dtype=np.int64),
        count=np.zeros(0, dtype=np.int64),
        intensity=empty_f,
        local_count=np.zeros(0, dtype=np.int64),
        z_score=empty_f,
        p_value=empty_f,
        q_value=empty_f,
        confidence=np.zeros(0, dtype=np.int8),
        emerging=np.zeros(0, dtype=str),
        trend_z=empty_f,
        trend_p=empty_f,
        surge_score=empty_f,
        surge_p=empty_f,
        surge_flag=np.zeros(0, dtype=bool),
        precursor_index=empty_f,
        precursor_flag=np.zeros(0, dtype=bool),
        parameters={
            "k": k,
            "min_local_count": min_local_count,
            "families": list(families),
            "categories": list(categories),
            "half_life_days": half_life_days,
            "suppression_k": None,
        },
    )


def _precursors(
    universe: npt.NDArray[np.int64],
    found: _Incidents,
    bins: npt.NDArray[np.int64],
    n_bins: int,
    threshold: float,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    codes = list(PRECURSOR_WEIGHTS)
    n, c = universe.size, len(codes)
    category_index = np.full(found.category.size, -1, dtype=np.int64)
    for j, code in enumerate(codes):
        category_index[found.category == code] = j
    chosen = category_index >= 0
    # One cube for all precursor categories: the bin axis carries (category, bin) pairs.
    counts, _ = space_time_cube(
        universe,
        found.cells[chosen],
        category_index[chosen] * n_bins + bins[chosen],
        c * n_bins,
        found.severity[chosen],
    )
    by_category = counts.reshape(n, c, n_bins)
    current = by_category[:, :, -1].astype(np.float64)
    baseline = by_category[:, :, :-1].mean(axis=2) if n_bins > 1 else np.zeros((n, c))
    index = precursor_index(current, baseline, np.array([PRECURSOR_WEIGHTS[c] for c in codes]))
    return index, precursor_flag(index, threshold)


def _suppressed_values(
    session: Session,
    *,
    resolution: int,
    start: datetime,
    end: datetime,
    categories: Sequence[str],
    values: CellValues,
    settings: Settings,
) -> tuple[CellValues, npt.NDArray[np.bool_]]:
    """Counts as they may be published: suppressed jointly over every resolution a reader can
    ask for (coarsest … the sensitive maximum), so that no layer, and no difference between a
    parent layer and its children, reveals a hidden count."""
    hs = settings.hotspots
    published = [r for r in settings.mission.h3_resolutions if r <= hs.sensitive_max_resolution]
    columns = [getattr(Incident, f"h3_res{r}") for r in published]
    rows = session.execute(
        select(*columns).where(
            Incident.status == IncidentStatus.ACTIVE,
            Incident.verification_state.not_in(SET_ASIDE),
            Incident.occurred_at >= start,
            Incident.occurred_at < end,
            Incident.category.in_(list(categories)),
            Incident.consent_aggregate_reporting.is_(True),
        )
    ).all()
    matrix = np.array([[c or 0 for c in row] for row in rows], dtype=np.int64).reshape(
        len(rows), len(published)
    )
    levels = []
    for j, r in enumerate(published):
        located = matrix[:, j][matrix[:, j] != 0]
        unique, counts = np.unique(located, return_counts=True)
        levels.append(Level(r, unique, counts.astype(np.int64)))
    masks = suppress(levels, k=hs.suppression_k)
    layer = published.index(resolution)
    hidden = levels[layer].cells[~masks[layer]]
    shown = np.where(np.isin(values.cells, hidden), 0, values.count)
    withheld = np.isin(values.cells, hidden)
    return CellValues(values.cells, shown, shown.astype(np.float64), values.outside), withheld


# --------------------------------------------------------------------------- storing


def store(session: Session, analysis: Analysis) -> HotspotSnapshot:
    """Insert one snapshot and its notable cells; replaces a snapshot with the same key."""
    session.execute(
        delete(HotspotSnapshot).where(
            HotspotSnapshot.aor_version_id == analysis.aor_version_id,
            HotspotSnapshot.resolution == analysis.resolution,
            HotspotSnapshot.window_days == analysis.window_days,
            HotspotSnapshot.audience == analysis.audience,
            HotspotSnapshot.as_of == analysis.as_of,
        )
    )
    snapshot = HotspotSnapshot(
        aor_version_id=analysis.aor_version_id,
        unit_id=analysis.unit_id,
        resolution=analysis.resolution,
        window_days=analysis.window_days,
        audience=analysis.audience,
        as_of=analysis.as_of,
        computed_at=utcnow(),
        universe_cells=analysis.universe_cells,
        incidents=analysis.incidents,
        bin_days=analysis.bin_days,
        n_bins=analysis.n_bins,
        parameters=analysis.parameters,
    )
    session.add(snapshot)
    session.flush()
    rows = [
        {
            "snapshot_id": snapshot.id,
            "cell": int(analysis.cells[i]),
            "count": int(analysis.count[i]),
            "intensity": float(analysis.intensity[i]),
            "local_count": int(analysis.local_count[i]),
            "z_score": float(analysis.z_score[i]),
            "p_value": float(analysis.p_value[i]),
            "q_value": float(analysis.q_value[i]),
            "confidence": int(analysis.confidence[i]),
            "emerging": str(analysis.emerging[i]),
            "trend_z": _finite(analysis.trend_z[i]),
            "trend_p": _finite(analysis.trend_p[i]),
            "surge_score": float(analysis.surge_score[i]),
            "surge_p": float(analysis.surge_p[i]),
            "surge_flag": bool(analysis.surge_flag[i]),
            "precursor_index": float(analysis.precursor_index[i]),
            "precursor_flag": bool(analysis.precursor_flag[i]),
        }
        for i in np.flatnonzero(analysis.notable()).tolist()
    ]
    for start in range(0, len(rows), 2000):
        session.execute(insert(HotspotCell), rows[start : start + 2000])
    return snapshot


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def prune(session: Session, *, aor_version_id: int, keep: int) -> None:
    """Keep the ``keep`` newest snapshots per (resolution, window, audience) of an AOR."""
    snapshots = session.execute(
        select(
            HotspotSnapshot.id,
            HotspotSnapshot.resolution,
            HotspotSnapshot.window_days,
            HotspotSnapshot.audience,
        )
        .where(HotspotSnapshot.aor_version_id == aor_version_id)
        .order_by(HotspotSnapshot.as_of.desc(), HotspotSnapshot.id.desc())
    ).all()
    seen: dict[tuple[int, int, str], int] = {}
    old = []
    for snapshot_id, resolution, window, audience in snapshots:
        key = (resolution, window, audience)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > keep:
            old.append(snapshot_id)
    if old:
        session.execute(delete(HotspotSnapshot).where(HotspotSnapshot.id.in_(old)))


def mark_dirty(session: Session, *, aor_unit_id: int | None) -> None:
    """Note that the picture of every AOR holding this unit's ground changed (the unit's and
    its ancestors' current AOR versions)."""
    mark_dirty_many(session, aor_unit_ids=[aor_unit_id])


def mark_dirty_many(session: Session, *, aor_unit_ids: Iterable[int | None]) -> None:
    """:func:`mark_dirty` for several units at once (a sync push of a batch of reports)."""
    wanted = {u for u in aor_unit_ids if u is not None}
    if not wanted:
        return
    # Core queries (plain rows, no ORM set-up per statement: a push marks once per batch),
    # after writing whatever the session holds, as the ORM's autoflush would have.
    session.flush()
    connection = session.connection()
    paths = connection.execute(select(Unit.path).where(Unit.id.in_(wanted))).scalars()
    ancestors = {a for path in paths for a in ancestor_ids_of(path)}
    if not ancestors:
        return
    version_ids = (
        connection.execute(
            select(AorVersion.id).where(
                AorVersion.unit_id.in_(ancestors), AorVersion.valid_to.is_(None)
            )
        )
        .scalars()
        .all()
    )
    already = set(
        connection.execute(
            select(HotspotDirty.aor_version_id).where(HotspotDirty.aor_version_id.in_(version_ids))
        ).scalars()
    )
    missing = [v for v in version_ids if v not in already]
    if missing:
        session.add_all([HotspotDirty(aor_version_id=v) for v in missing])
        session.flush()


def mark_dirty_version(session: Session, *, aor_version_id: int) -> None:
    """A new AOR version needs its first picture."""
    if session.get(HotspotDirty, aor_version_id) is None:
        session.add(HotspotDirty(aor_version_id=aor_version_id))
        session.flush()


def mark_all_dirty(session: Session) -> None:
    """After a bulk change (an import): every current AOR needs a new picture."""
    current = set(session.scalars(select(AorVersion.id).where(AorVersion.valid_to.is_(None))))
    current -= set(session.scalars(select(HotspotDirty.aor_version_id)))
    session.add_all([HotspotDirty(aor_version_id=v) for v in sorted(current)])
    session.flush()


def universe_size(session: Session, aor: AorVersion, resolution: int) -> int:
    compact = np.fromiter(
        session.scalars(
            select(AorCell.cell).where(
                AorCell.aor_version_id == aor.id, AorCell.resolution == resolution
            )
        ),
        dtype=np.int64,
    )
    return geo_cells.uncompacted_size(compact, resolution)


def eligible_resolutions(session: Session, aor: AorVersion, settings: Settings) -> list[int]:
    """Resolutions at which the AOR is neither too small nor too large to analyse."""
    return [
        resolution
        for resolution in settings.mission.h3_resolutions
        if settings.hotspots.min_cells
        <= universe_size(session, aor, resolution)
        <= settings.hotspots.max_cells
    ]


def compute_snapshots(
    session: Session, *, settings: Settings, as_of: datetime, aor: AorVersion
) -> list[Analysis]:
    """Every stored picture of one AOR (eligible resolution × stored window × audience).

    Only reads: jobs run it in a read-only transaction and store the result in a short
    write transaction (:func:`store_snapshots`), so a long analysis never holds SQLite's lock.
    """
    analyses = []
    for resolution in eligible_resolutions(session, aor, settings):
        for window in settings.hotspots.windows_days:
            if window > max_window_days(resolution):
                continue
            general = analyse(
                session=session,
                aor=aor,
                resolution=resolution,
                window_days=window,
                as_of=as_of,
                audience=GENERAL,
                settings=settings,
            )
            if _has_sensitive(session, aor, resolution, window, as_of):
                full = analyse(
                    session=session,
                    aor=aor,
                    resolution=resolution,
                    window_days=window,
                    as_of=as_of,
                    audience=FULL,
                    settings=settings,
                )
            else:
                # Without sensitive incidents the two pictures are the same.
                full = dataclasses.replace(general, audience=FULL)
            analyses += [general, full]
    return analyses


def _previous_snapshot_id(session: Session, analysis: Analysis) -> int | None:
    return session.scalar(
        select(HotspotSnapshot.id)
        .where(
            HotspotSnapshot.aor_version_id == analysis.aor_version_id,
            HotspotSnapshot.resolution == analysis.resolution,
            HotspotSnapshot.window_days == analysis.window_days,
            HotspotSnapshot.audience == analysis.audience,
            HotspotSnapshot.as_of < analysis.as_of,
        )
        .order_by(HotspotSnapshot.as_of.desc())
        .limit(1)
    )


def _raises_alerts(session: Session, analysis: Analysis, alerts: AlertSettings) -> bool:
    """Hotspot alerts come from one picture: the mission root's AOR, the general audience (a
    commander's alert must not locate a sensitive case), the alert window and resolution."""
    if not alerts.enabled or analysis.audience != GENERAL:
        return False
    if analysis.window_days != alerts.hotspot_window_days:
        return False
    if analysis.resolution != alerts.hotspot_resolution:
        return False
    unit = session.get(Unit, analysis.unit_id)
    return unit is not None and unit.parent_id is None


def store_snapshots(
    session: Session,
    analyses: Sequence[Analysis],
    *,
    aor_version_id: int,
    retention: int,
    alerts: AlertSettings | None = None,
) -> int:
    """Store computed pictures and prune the AOR's old snapshots. With ``alerts``, the
    picture that raises hotspot alerts puts its class changes on the alert outbox, in this
    transaction."""
    from server.alerts_inbox import service as alert_service

    if session.get(AorVersion, aor_version_id) is None:
        return 0  # the AOR version went away while it was being analysed
    for analysis in analyses:
        watched = alerts is not None and _raises_alerts(session, analysis, alerts)
        previous = _previous_snapshot_id(session, analysis) if watched else None
        snapshot = store(session, analysis)
        if watched:
            session.flush()
            alert_service.record_snapshot_transitions(
                session, snapshot_id=snapshot.id, previous_snapshot_id=previous
            )
    prune(session, aor_version_id=aor_version_id, keep=retention)
    session.flush()
    return len(analyses)


def recompute(
    session: Session,
    *,
    settings: Settings,
    as_of: datetime,
    aor_version_ids: Sequence[int] | None = None,
) -> int:
    """Compute and store snapshots in one session (for callers without a separate read
    phase: the CLI and tests). Returns the number of snapshots."""
    statement = select(AorVersion).where(AorVersion.valid_to.is_(None))
    if aor_version_ids is not None:
        statement = statement.where(AorVersion.id.in_(list(aor_version_ids)))
    stored = 0
    for aor in session.scalars(statement).all():
        analyses = compute_snapshots(session, settings=settings, as_of=as_of, aor=aor)
        stored += store_snapshots(
            session,
            analyses,
            aor_version_id=aor.id,
            retention=settings.hotspots.retention,
            alerts=settings.alerts,
        )
    return stored


def _has_sensitive(
    session: Session, aor: AorVersion, resolution: int, window_days: int, as_of: datetime
) -> bool:
    """Whether a non-normal incident of the window lies in the AOR at this resolution."""
    bin_days, n_bins = window_plan(window_days)
    bounds = _grown_bounds(aor, resolution)
    cell_column = getattr(Incident, f"h3_res{resolution}")
    cells = np.fromiter(
        session.scalars(
            select(cell_column).where(
                Incident.status == IncidentStatus.ACTIVE,
                Incident.sensitivity != Sensitivity.NORMAL.value,
                cell_column.is_not(None),
                Incident.occurred_at >= as_of - timedelta(days=bin_days * n_bins),
                Incident.occurred_at < as_of,
                Incident.longitude.between(bounds[0], bounds[2]),
                Incident.latitude.between(bounds[1], bounds[3]),
            )
        ),
        dtype=np.int64,
    )
    return cells.size > 0 and bool(np.isin(cells, universe_for(session, aor, resolution)).any())


def take_dirty(session: Session) -> list[int]:
    """Claim the AOR versions marked dirty (the rows go with this transaction)."""
    ids = list(session.scalars(select(HotspotDirty.aor_version_id).with_for_update()))
    if ids:
        session.execute(delete(HotspotDirty).where(HotspotDirty.aor_version_id.in_(ids)))
    return ids


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Picture:
    """What the API returns: cell rows (notable cells only) and how they were obtained."""

    analysis_key: dict[str, Any]
    source: str
    computed_at: datetime
    universe_cells: int
    incidents: int
    bin_days: int
    n_bins: int
    suppressed_cells: int
    parameters: dict[str, Any]
    rows: list[dict[str, Any]]


_ROW_FIELDS = (
    "count",
    "intensity",
    "local_count",
    "z_score",
    "p_value",
    "q_value",
    "confidence",
    "emerging",
    "trend_z",
    "trend_p",
    "surge_score",
    "surge_flag",
    "precursor_index",
    "precursor_flag",
)


def picture_from_analysis(analysis: Analysis) -> Picture:
    rows = []
    for i in np.flatnonzero(analysis.notable()).tolist():
        row: dict[str, Any] = {"cell": int(analysis.cells[i])}
        for name in _ROW_FIELDS:
            value = getattr(analysis, name)[i]
            row[name] = value.item() if hasattr(value, "item") else value
        row["trend_z"] = _finite(row["trend_z"])
        row["trend_p"] = _finite(row["trend_p"])
        rows.append(row)
    return Picture(
        analysis_key=_key(
            analysis.unit_id,
            analysis.aor_version_id,
            analysis.resolution,
            analysis.window_days,
            analysis.as_of,
            analysis.audience,
        ),
        source="computed",
        computed_at=utcnow(),
        universe_cells=analysis.universe_cells,
        incidents=analysis.incidents,
        bin_days=analysis.bin_days,
        n_bins=analysis.n_bins,
        suppressed_cells=analysis.suppressed,
        parameters=analysis.parameters,
        rows=rows,
    )


def _key(
    unit_id: int,
    aor_version_id: int,
    resolution: int,
    window_days: int,
    as_of: datetime,
    audience: str,
) -> dict[str, Any]:
    return {
        "unit_id": unit_id,
        "aor_version": aor_version_id,
        "resolution": resolution,
        "window_days": window_days,
        "as_of": as_of,
        "audience": audience,
    }


def stored_picture(
    session: Session,
    *,
    aor: AorVersion,
    resolution: int,
    window_days: int,
    audience: str,
    as_of: datetime | None,
    max_age: timedelta,
) -> Picture | None:
    """The stored snapshot that answers the request, if there is one: the exact ``as_of``, or
    with none given the newest one not older than ``max_age``."""
    statement = select(HotspotSnapshot).where(
        HotspotSnapshot.aor_version_id == aor.id,
        HotspotSnapshot.resolution == resolution,
        HotspotSnapshot.window_days == window_days,
        HotspotSnapshot.audience == audience,
    )
    if as_of is not None:
        statement = statement.where(HotspotSnapshot.as_of == as_of)
    else:
        statement = statement.where(HotspotSnapshot.as_of >= utcnow() - max_age)
    snapshot = session.scalars(
        statement.order_by(HotspotSnapshot.as_of.desc()).limit(1)
    ).one_or_none()
    if snapshot is None:
        return None
    cells = session.scalars(
        select(HotspotCell).where(HotspotCell.snapshot_id == snapshot.id).order_by(HotspotCell.cell)
    ).all()
    rows = [{"cell": c.cell, **{name: getattr(c, name) for name in _ROW_FIELDS}} for c in cells]
    return Picture(
        analysis_key=_key(
            snapshot.unit_id,
            snapshot.aor_version_id,
            snapshot.resolution,
            snapshot.window_days,
            snapshot.as_of,
            snapshot.audience,
        ),
        source="stored",
        computed_at=snapshot.computed_at,
        universe_cells=snapshot.universe_cells,
        incidents=snapshot.incidents,
        bin_days=snapshot.bin_days,
        n_bins=snapshot.n_bins,
        suppressed_cells=0,
        parameters=snapshot.parameters,
        rows=rows,
    )


def default_resolution(
    session: Session, aor: AorVersion, settings: Settings, *, sensitive_general: bool
) -> int:
    """The finest resolution the AOR can be analysed at (sensitive layers for the general
    audience: no finer than the sensitive maximum)."""
    eligible = eligible_resolutions(session, aor, settings)
    if sensitive_general:
        eligible = [r for r in eligible if r <= settings.hotspots.sensitive_max_resolution]
    if not eligible:
        raise ValidationFailedError.on(
            "query:resolution",
            "the area of responsibility cannot be analysed at any of the "
            "mission's resolutions (too small or too large); choose another unit",
        )
    return max(eligible)


def picture(
    *,
    session: Session,
    aor: AorVersion,
    resolution: int,
    window_days: int,
    as_of: datetime | None,
    audience: str,
    settings: Settings,
    families: Sequence[str] = (),
    categories: Sequence[str] = (),
    half_life_days: float | None = None,
) -> Picture:
    """Serve a stored snapshot when one answers the request exactly, compute one otherwise."""
    check_window(resolution, window_days, settings)
    plain = not families and not categories and half_life_days is None
    if plain:
        stored = stored_picture(
            session,
            aor=aor,
            resolution=resolution,
            window_days=window_days,
            audience=audience,
            as_of=as_of,
            max_age=timedelta(minutes=2 * settings.hotspots.refresh_minutes),
        )
        if stored is not None:
            return stored
    analysis = analyse(
        session=session,
        aor=aor,
        resolution=resolution,
        window_days=window_days,
        as_of=as_of or utcnow(),
        audience=audience,
        settings=settings,
        families=families,
        categories=categories,
        half_life_days=half_life_days,
    )
    return picture_from_analysis(analysis)
