"""Patrol coverage and protection gaps: derive each patrol's cells from its fixes, keep the last
presence per cell, and join it with the threat picture.

Write path (a job, after the transaction that stored fixes commits): a patrol's plausible fixes
→ :func:`geo.coverage.track_coverage` at the working resolution, spread over the patrol's
sensing ring → rolled up to every coarser mission resolution → ``patrol_cells`` replaced for the
patrol → ``cell_last_presence`` raised by an upsert (``max``), rebuilt from ``patrol_cells`` for
any cell the patrol no longer reaches.

Read path: the threatened cells of a resolution — hot or emerging classes, surge and precursor
flags of the newest stored hotspot snapshots of every current AOR, flash incidents of the last
hours, protected sites — joined with ``cell_last_presence`` (two small tables, integer keys, the
same on both backends) → :func:`geo.gaps.find_gaps` → each gap assigned to the deepest unit
whose current AOR holds it.

Audiences follow the threat picture: protection officers see gaps raised by every incident;
everyone else only by normal-tier incidents (a sensitive case must not show as a flash gap in a
0.7 km² cell).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from sqlalchemy import delete, distinct, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from geo import cells as geo_cells
from geo.coverage import TrackCoverage, sensing_k, track_coverage
from geo.emerging import EmergingCategory
from geo.gaps import GapPolicy, Gaps, ThreatReason, find_gaps, threat_cells
from geo.tracks import haversine_m
from server.coverage.models import CellLastPresence, CoverageDirty, PatrolCell
from server.db.base import utcnow
from server.errors import ValidationFailedError
from server.hotspots.models import HotspotCell, HotspotSnapshot
from server.hotspots.service import FULL, GENERAL, SET_ASIDE
from server.incidents.models import Incident, IncidentStatus
from server.patrols.enums import PatrolStatus
from server.patrols.models import Patrol, PatrolTrackPoint
from server.settings import Settings
from server.sites.models import ProtectedSite, ProtectedSiteCell
from server.taxonomy.codes import Sensitivity
from server.units.models import AorCell, AorVersion, Unit
from server.worker.queue import after_commit

__all__ = [
    "EMERGING_THREATS",
    "GapPicture",
    "GapRow",
    "PresenceAround",
    "coverage_cells",
    "gap_policy",
    "gaps",
    "mark_dirty",
    "presence_around",
    "recompute_dirty",
    "recompute_patrol",
    "responsible_units",
]

#: Emerging patterns that make a cell threatened: every hot pattern but "historical" (hot long
#: ago, not lately).
EMERGING_THREATS = tuple(
    c.value
    for c in EmergingCategory
    if c.value.endswith("_hot") and c is not EmergingCategory.HISTORICAL_HOT
)

_BATCH = 2000
_IN_CHUNK = 900  # SQLite's default limit on bound parameters is far above; stay well below it


def gap_policy(settings: Settings) -> GapPolicy:
    c = settings.coverage
    return GapPolicy(
        base_allowed_hours=c.base_allowed_hours,
        min_allowed_hours=min(c.min_allowed_hours, c.base_allowed_hours),
        site_allowed_factor=c.site_allowed_factor,
        uncovered_cap_hours=c.uncovered_cap_hours,
    )


def coverage_resolutions(settings: Settings) -> list[int]:
    """The resolutions coverage is kept at: the working one and every coarser mission one."""
    top = settings.coverage_resolution
    return [r for r in settings.mission.h3_resolutions if r <= top]


def check_resolution(settings: Settings, resolution: int | None, field: str) -> int:
    allowed = coverage_resolutions(settings)
    if resolution is None:
        return settings.coverage_resolution
    if resolution not in allowed:
        raise ValidationFailedError.on(
            field, f"{resolution} is not a coverage resolution; use one of {allowed}"
        )
    return resolution


def _chunks(values: Sequence[int], size: int = _IN_CHUNK) -> Iterable[list[int]]:
    for start in range(0, len(values), size):
        yield [int(v) for v in values[start : start + size]]


def _seconds(moment: datetime | None) -> float:
    return float("nan") if moment is None else moment.timestamp()


def _moment(seconds: float) -> datetime | None:
    return None if not np.isfinite(seconds) else datetime.fromtimestamp(float(seconds), UTC)


# --------------------------------------------------------------------------- write path


def mark_dirty(session: Session, *, patrol_id: uuid.UUID) -> None:
    """Note that a patrol's coverage is due, and queue the recompute for after the commit."""
    from server.worker import tasks  # local: tasks import services, services enqueue tasks

    existing = session.get(CoverageDirty, patrol_id)
    if existing is None:
        session.add(CoverageDirty(patrol_id=patrol_id))
    else:
        existing.marks += 1
    session.flush()
    after_commit(session, tasks.recompute_dirty_coverage)


def take_dirty(session: Session, *, limit: int = 200) -> list[uuid.UUID]:
    """Claim up to ``limit`` due patrols; the rows go with this transaction (on PostgreSQL,
    rows another worker holds are skipped)."""
    statement = (
        select(CoverageDirty.patrol_id)
        .order_by(CoverageDirty.marked_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(session.scalars(statement))
    if ids:
        session.execute(delete(CoverageDirty).where(CoverageDirty.patrol_id.in_(ids)))
    return ids


def recompute_dirty(session: Session, *, settings: Settings, limit: int = 200) -> int:
    """Recompute the coverage of due patrols in this transaction (claim and write together:
    a failure leaves them due). Returns how many patrols were done."""
    done = 0
    for patrol_id in take_dirty(session, limit=limit):
        recompute_patrol(session, patrol_id=patrol_id, settings=settings)
        done += 1
    return done


def patrol_coverage(
    patrol: Patrol, fixes: Sequence[tuple[datetime, float, float]], settings: Settings
) -> dict[int, TrackCoverage]:
    """A patrol's coverage at every coverage resolution, from its plausible fixes."""
    resolution = settings.coverage_resolution
    times = np.array([t.timestamp() for t, _, _ in fixes], dtype=np.float64)
    lon = np.array([x for _, x, _ in fixes], dtype=np.float64)
    lat = np.array([y for _, _, y in fixes], dtype=np.float64)
    fine = track_coverage(
        times,
        lon,
        lat,
        resolution,
        sensing_k=sensing_k(patrol.effective_sensing_radius_m, resolution),
        max_gap_s=settings.coverage.max_gap_minutes * 60.0,
    )
    return {r: fine.roll_up(r) for r in coverage_resolutions(settings)}


def recompute_patrol(session: Session, *, patrol_id: uuid.UUID, settings: Settings) -> int:
    """Rewrite one patrol's cells, track and totals from its fixes, and raise (or rebuild) the
    last presence of the cells it touches. Idempotent. Returns the rows written."""
    patrol = session.get(Patrol, patrol_id)
    if patrol is None:
        return 0
    rows = session.execute(
        select(
            PatrolTrackPoint.recorded_at,
            PatrolTrackPoint.longitude,
            PatrolTrackPoint.latitude,
            PatrolTrackPoint.excluded,
        )
        .where(PatrolTrackPoint.patrol_id == patrol.id)
        .order_by(PatrolTrackPoint.recorded_at)
    ).all()
    good = [(t, x, y) for t, x, y, excluded in rows if not excluded]
    by_resolution = patrol_coverage(patrol, good, settings)
    old = {
        (int(r), int(c)): last
        for r, c, last in session.execute(
            select(PatrolCell.resolution, PatrolCell.cell, PatrolCell.last_presence_at).where(
                PatrolCell.patrol_id == patrol.id
            )
        )
    }
    session.execute(delete(PatrolCell).where(PatrolCell.patrol_id == patrol.id))
    new_rows: list[dict[str, Any]] = []
    for resolution, coverage in by_resolution.items():
        for i in range(coverage.cells.size):
            new_rows.append(
                {
                    "patrol_id": patrol.id,
                    "resolution": resolution,
                    "cell": int(coverage.cells[i]),
                    "km": float(coverage.km[i]),
                    "minutes": float(coverage.minutes[i]),
                    "first_presence_at": _moment(coverage.first_s[i]),
                    "last_presence_at": _moment(coverage.last_s[i]),
                }
            )
    for start in range(0, len(new_rows), _BATCH):
        session.execute(insert(PatrolCell), new_rows[start : start + _BATCH])
    fine = by_resolution[settings.coverage_resolution]
    patrol.track = shapely.LineString([(x, y) for _, x, y in good]) if len(good) >= 2 else None
    patrol.track_km = float(fine.km.sum())
    patrol.track_minutes = float(fine.minutes.sum())
    patrol.fix_count = len(rows)
    patrol.excluded_fix_count = len(rows) - len(good)
    patrol.coverage_at = utcnow()
    session.flush()
    _raise_last_presence(session, new_rows, unit_id=patrol.unit_id)
    new_last = {(r["resolution"], r["cell"]): r["last_presence_at"] for r in new_rows}
    shrunk = [key for key, last in old.items() if key not in new_last or new_last[key] < last]
    if shrunk:
        rebuild_last_presence(session, shrunk)
    return len(new_rows)


def _raise_last_presence(
    session: Session, rows: Sequence[dict[str, Any]], *, unit_id: int | None
) -> None:
    """``last = max(last, new)`` per (resolution, cell), one upsert per batch."""
    dialect = session.get_bind().dialect.name
    build = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for start in range(0, len(rows), _BATCH):
        values = [
            {
                "resolution": r["resolution"],
                "cell": r["cell"],
                "last_presence_at": r["last_presence_at"],
                "patrol_id": r["patrol_id"],
                "unit_id": unit_id,
            }
            for r in rows[start : start + _BATCH]
        ]
        statement = build(CellLastPresence).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["resolution", "cell"],
            set_={
                "last_presence_at": statement.excluded.last_presence_at,
                "patrol_id": statement.excluded.patrol_id,
                "unit_id": statement.excluded.unit_id,
            },
            where=statement.excluded.last_presence_at > CellLastPresence.last_presence_at,
        )
        session.execute(statement)


def rebuild_last_presence(session: Session, keys: Sequence[tuple[int, int]]) -> None:
    """Recompute the last presence of these (resolution, cell) from ``patrol_cells`` (after a
    patrol's coverage shrank: a lower sensing radius, fewer plausible fixes)."""
    by_resolution: dict[int, list[int]] = {}
    for resolution, cell in keys:
        by_resolution.setdefault(resolution, []).append(cell)
    for resolution, cells in by_resolution.items():
        for chunk in _chunks(sorted(set(cells))):
            found = session.execute(
                select(
                    PatrolCell.cell,
                    PatrolCell.last_presence_at,
                    PatrolCell.patrol_id,
                    Patrol.unit_id,
                )
                .join(Patrol, Patrol.id == PatrolCell.patrol_id)
                .where(PatrolCell.resolution == resolution, PatrolCell.cell.in_(chunk))
            ).all()
            latest: dict[int, tuple[datetime, uuid.UUID, int | None]] = {}
            for cell, last, patrol_id, unit_id in found:
                if cell not in latest or last > latest[cell][0]:
                    latest[cell] = (last, patrol_id, unit_id)
            session.execute(
                delete(CellLastPresence).where(
                    CellLastPresence.resolution == resolution, CellLastPresence.cell.in_(chunk)
                )
            )
            if latest:
                session.execute(
                    insert(CellLastPresence),
                    [
                        {
                            "resolution": resolution,
                            "cell": cell,
                            "last_presence_at": last,
                            "patrol_id": patrol_id,
                            "unit_id": unit_id,
                        }
                        for cell, (last, patrol_id, unit_id) in latest.items()
                    ],
                )
    session.flush()


# --------------------------------------------------------------------------- coverage


@dataclass(frozen=True)
class CoverageRow:
    cell: int
    km: float
    minutes: float
    patrol_count: int
    first_presence_at: datetime
    last_presence_at: datetime


def coverage_cells(
    session: Session,
    *,
    aor: AorVersion,
    resolution: int,
    since: datetime,
    until: datetime,
    settings: Settings,
    patrol_unit_ids: Sequence[int] | None = None,
) -> list[CoverageRow]:
    """Per cell of the AOR: km and minutes of the patrols present there between ``since`` and
    ``until`` (each patrol's whole effort in the cell), how many patrols, first and last
    presence in the window's patrols."""
    statement = (
        select(
            PatrolCell.cell,
            func.sum(PatrolCell.km),
            func.sum(PatrolCell.minutes),
            func.count(distinct(PatrolCell.patrol_id)),
            func.min(PatrolCell.first_presence_at),
            func.max(PatrolCell.last_presence_at),
        )
        .where(
            PatrolCell.resolution == resolution,
            PatrolCell.last_presence_at >= since,
            PatrolCell.first_presence_at <= until,
        )
        .group_by(PatrolCell.cell)
    )
    if patrol_unit_ids is not None:
        statement = statement.join(Patrol, Patrol.id == PatrolCell.patrol_id).where(
            Patrol.unit_id.in_(list(patrol_unit_ids))
        )
    rows = session.execute(statement).all()
    if not rows:
        return []
    cells = np.array([r[0] for r in rows], dtype=np.int64)
    compact = np.fromiter(
        session.scalars(
            select(AorCell.cell).where(
                AorCell.aor_version_id == aor.id, AorCell.resolution == resolution
            )
        ),
        dtype=np.int64,
    )
    inside = geo_cells.cells_in_compacted(
        cells, compact, resolution, settings.mission.coarsest_resolution
    )
    return [
        CoverageRow(
            cell=int(r[0]),
            km=float(r[1] or 0.0),
            minutes=float(r[2] or 0.0),
            patrol_count=int(r[3]),
            first_presence_at=r[4],
            last_presence_at=r[5],
        )
        for r, keep in zip(rows, inside.tolist(), strict=True)
        if keep
    ]


def last_presence(
    session: Session, *, resolution: int, cells: Sequence[int]
) -> dict[int, tuple[datetime, uuid.UUID | None, int | None]]:
    """cell → (last presence, patrol, unit) for the cells that have one."""
    found: dict[int, tuple[datetime, uuid.UUID | None, int | None]] = {}
    for chunk in _chunks(sorted({int(c) for c in cells})):
        for cell, last, patrol_id, unit_id in session.execute(
            select(
                CellLastPresence.cell,
                CellLastPresence.last_presence_at,
                CellLastPresence.patrol_id,
                CellLastPresence.unit_id,
            ).where(CellLastPresence.resolution == resolution, CellLastPresence.cell.in_(chunk))
        ):
            found[int(cell)] = (last, patrol_id, unit_id)
    return found


# --------------------------------------------------------------------------- threats


@dataclass(frozen=True, eq=False)
class _HotspotThreats:
    hot_cells: npt.NDArray[np.int64]
    hot_confidence: npt.NDArray[np.int64]
    emerging: npt.NDArray[np.int64]
    surge: npt.NDArray[np.int64]
    precursor: npt.NDArray[np.int64]
    as_of: datetime | None


def _latest_snapshot_ids(
    session: Session, *, resolution: int, window_days: int, audience: str
) -> tuple[list[int], datetime | None]:
    """The newest snapshot of every current AOR version for this resolution, window and
    audience."""
    newest = (
        select(HotspotSnapshot.aor_version_id, func.max(HotspotSnapshot.as_of).label("as_of"))
        .join(AorVersion, AorVersion.id == HotspotSnapshot.aor_version_id)
        .where(
            AorVersion.valid_to.is_(None),
            HotspotSnapshot.resolution == resolution,
            HotspotSnapshot.window_days == window_days,
            HotspotSnapshot.audience == audience,
        )
        .group_by(HotspotSnapshot.aor_version_id)
        .subquery()
    )
    rows = session.execute(
        select(HotspotSnapshot.id, HotspotSnapshot.as_of)
        .join(
            newest,
            (newest.c.aor_version_id == HotspotSnapshot.aor_version_id)
            & (newest.c.as_of == HotspotSnapshot.as_of),
        )
        .where(
            HotspotSnapshot.resolution == resolution,
            HotspotSnapshot.window_days == window_days,
            HotspotSnapshot.audience == audience,
        )
    ).all()
    return [int(r[0]) for r in rows], max((r[1] for r in rows), default=None)


def _hotspot_threats(
    session: Session,
    *,
    resolution: int,
    window_days: int,
    audience: str,
    cells: Sequence[int] | None,
) -> _HotspotThreats:
    ids, as_of = _latest_snapshot_ids(
        session, resolution=resolution, window_days=window_days, audience=audience
    )
    rows: list[Any] = []
    threatening = (
        (HotspotCell.confidence > 0)
        | HotspotCell.emerging.in_(EMERGING_THREATS)
        | HotspotCell.surge_flag.is_(True)
        | HotspotCell.precursor_flag.is_(True)
    )
    for id_chunk in _chunks(ids):
        statement = select(
            HotspotCell.cell,
            HotspotCell.confidence,
            HotspotCell.emerging,
            HotspotCell.surge_flag,
            HotspotCell.precursor_flag,
        ).where(HotspotCell.snapshot_id.in_(id_chunk), threatening)
        if cells is None:
            rows += session.execute(statement).all()
        else:
            for cell_chunk in _chunks(list(cells)):
                rows += session.execute(statement.where(HotspotCell.cell.in_(cell_chunk))).all()
    cell = np.array([r[0] for r in rows], dtype=np.int64)
    confidence = np.array([r[1] for r in rows], dtype=np.int64)
    emerging = np.array([r[2] in EMERGING_THREATS for r in rows], dtype=bool)
    surge = np.array([bool(r[3]) for r in rows], dtype=bool)
    precursor = np.array([bool(r[4]) for r in rows], dtype=bool)
    hot = confidence > 0
    return _HotspotThreats(
        hot_cells=cell[hot] if rows else cell,
        hot_confidence=confidence[hot] if rows else confidence,
        emerging=cell[emerging] if rows else cell,
        surge=cell[surge] if rows else cell,
        precursor=cell[precursor] if rows else cell,
        as_of=as_of,
    )


def _flash_cells(
    session: Session,
    *,
    resolution: int,
    audience: str,
    now: datetime,
    settings: Settings,
    cells: Sequence[int] | None,
) -> npt.NDArray[np.int64]:
    cell_column = getattr(Incident, f"h3_res{resolution}")
    statement = select(cell_column).where(
        Incident.status == IncidentStatus.ACTIVE,
        Incident.verification_state.not_in(SET_ASIDE),
        Incident.occurred_at >= now - timedelta(hours=settings.coverage.flash_hours),
        Incident.occurred_at <= now,
        Incident.severity_weight >= settings.coverage.flash_min_severity,
        cell_column.is_not(None),
    )
    if audience == GENERAL:
        statement = statement.where(Incident.sensitivity == Sensitivity.NORMAL.value)
    if cells is None:
        return np.fromiter(session.scalars(statement), dtype=np.int64)
    found: list[int] = []
    for chunk in _chunks(list(cells)):
        found += list(session.scalars(statement.where(cell_column.in_(chunk))))
    return np.array(found, dtype=np.int64)


@dataclass(frozen=True)
class SiteRef:
    id: int
    name: str
    kind: str
    population: int | None


def _site_cells(
    session: Session, *, resolution: int, cells: Sequence[int] | None
) -> list[tuple[int, SiteRef]]:
    statement = (
        select(
            ProtectedSiteCell.cell,
            ProtectedSite.id,
            ProtectedSite.name,
            ProtectedSite.kind,
            ProtectedSite.population,
        )
        .join(ProtectedSite, ProtectedSite.id == ProtectedSiteCell.site_id)
        .where(ProtectedSiteCell.resolution == resolution)
    )
    rows: list[Any] = []
    if cells is None:
        rows = list(session.execute(statement).all())
    else:
        for chunk in _chunks(list(cells)):
            rows += session.execute(statement.where(ProtectedSiteCell.cell.in_(chunk))).all()
    return [(int(r[0]), SiteRef(int(r[1]), r[2], str(r[3].value), r[4])) for r in rows]


# --------------------------------------------------------------------------- responsibility


def responsible_units(
    session: Session, *, cells: npt.ArrayLike, resolution: int, settings: Settings
) -> npt.NDArray[np.int64]:
    """The deepest unit whose current AOR holds each cell (ties: the lower unit id), or -1.

    The same rule as report routing (``units.service.route_cells``), for many cells at once:
    a cell is in an AOR when one of its ancestors from the coarsest mission resolution up to
    its own is in the AOR's compacted cells at that analysis resolution.
    """
    wanted = np.asarray(cells, dtype=np.int64)
    out = np.full(wanted.size, -1, dtype=np.int64)
    if wanted.size == 0:
        return out
    levels = [r for r in settings.mission.h3_resolutions if r <= resolution]
    ancestors = {
        level: wanted if level == resolution else geo_cells.cell_parents(wanted, level)
        for level in levels
    }
    lookup = np.unique(np.concatenate(list(ancestors.values())))
    matched: list[tuple[int, int, int]] = []
    for chunk in _chunks(lookup.tolist()):
        matched += [
            (int(c), int(u), int(d))
            for c, u, d in session.execute(
                select(AorCell.cell, Unit.id, Unit.depth)
                .join(AorVersion, AorVersion.id == AorCell.aor_version_id)
                .join(Unit, Unit.id == AorVersion.unit_id)
                .where(
                    AorVersion.valid_to.is_(None),
                    AorCell.resolution == resolution,
                    AorCell.cell.in_(chunk),
                )
            )
        ]
    if not matched:
        return out
    # Per stored cell keep its deepest unit (ties: lowest id), then per wanted cell the deepest
    # over its ancestors.
    matched.sort(key=lambda m: (m[0], -m[2], m[1]))
    stored = np.array([m[0] for m in matched], dtype=np.int64)
    first = np.r_[True, stored[1:] != stored[:-1]]
    stored_cells = stored[first]
    stored_unit = np.array([m[1] for m in matched], dtype=np.int64)[first]
    stored_depth = np.array([m[2] for m in matched], dtype=np.int64)[first]
    best_depth = np.full(wanted.size, -1, dtype=np.int64)
    for ancestor in ancestors.values():
        pos = np.minimum(np.searchsorted(stored_cells, ancestor), stored_cells.size - 1)
        hit = stored_cells[pos] == ancestor
        depth = np.where(hit, stored_depth[pos], -1)
        unit = np.where(hit, stored_unit[pos], -1)
        better = (depth > best_depth) | ((depth == best_depth) & hit & (unit < out))
        out = np.where(better, unit, out)
        best_depth = np.where(better, depth, best_depth)
    return out


# --------------------------------------------------------------------------- gaps


@dataclass(frozen=True)
class GapRow:
    rank: int
    cell: int
    score: float
    threat: float
    reasons: list[str]
    exposure: float
    hours_uncovered: float
    allowed_hours: float
    last_presence_at: datetime | None
    last_patrol_id: uuid.UUID | None
    unit_id: int | None
    sites: list[SiteRef] = field(default_factory=list)


@dataclass(frozen=True)
class GapPicture:
    resolution: int
    audience: str
    window_days: int
    now: datetime
    threat_as_of: datetime | None
    threatened_cells: int
    total: int
    rows: list[GapRow]


def gaps(
    session: Session,
    *,
    settings: Settings,
    resolution: int,
    audience: str,
    now: datetime | None = None,
    unit_ids: Iterable[int] | None = None,
    reasons: Iterable[ThreatReason] = (),
    limit: int | None = 100,
    cells: Sequence[int] | None = None,
) -> GapPicture:
    """The ranked gaps of a resolution.

    Parameters
    ----------
    unit_ids
        Keep only gaps assigned to these units (a scope); None keeps all, including cells in no
        AOR.
    reasons
        Keep only gaps threatened for one of these reasons; empty keeps all.
    limit
        Rows returned (``total`` counts all that matched); None returns all.
    cells
        Look only at these cells (the neighbourhood of one cell, for alerts).
    """
    moment = now or utcnow()
    if audience not in (FULL, GENERAL):
        raise ValueError(f"unknown audience {audience!r}")
    window = settings.coverage.threat_window_days
    policy = gap_policy(settings)
    hot = _hotspot_threats(
        session, resolution=resolution, window_days=window, audience=audience, cells=cells
    )
    flash = _flash_cells(
        session,
        resolution=resolution,
        audience=audience,
        now=moment,
        settings=settings,
        cells=cells,
    )
    sites = _site_cells(session, resolution=resolution, cells=cells)
    threatened = threat_cells(
        hot_cells=hot.hot_cells,
        hot_confidence=hot.hot_confidence,
        emerging_cells=hot.emerging,
        surge_cells=hot.surge,
        precursor_cells=hot.precursor,
        flash_cells=flash,
        site_cells=[c for c, _ in sites],
        site_population=[
            float("nan") if s.population is None else float(s.population) for _, s in sites
        ],
        policy=policy,
    )
    presence = last_presence(session, resolution=resolution, cells=threatened.cells.tolist())
    last_s = np.array(
        [_seconds(presence.get(int(c), (None, None, None))[0]) for c in threatened.cells],
        dtype=np.float64,
    )
    found: Gaps = find_gaps(threatened, last_s, moment.timestamp(), policy)
    units = responsible_units(session, cells=found.cells, resolution=resolution, settings=settings)
    keep = np.ones(len(found), dtype=bool)
    if unit_ids is not None:
        keep &= np.isin(units, np.array(sorted(set(unit_ids)), dtype=np.int64))
    wanted = 0
    for reason in reasons:
        wanted |= int(reason)
    if wanted:
        keep &= (found.reasons & wanted) != 0
    index = np.flatnonzero(keep)
    total = int(index.size)
    if limit is not None:
        index = index[:limit]
    site_names: dict[int, list[SiteRef]] = {}
    for cell, site in sites:
        site_names.setdefault(cell, []).append(site)
    rows = []
    for rank, i in enumerate(index.tolist(), start=1):
        cell = int(found.cells[i])
        last, patrol_id, _unit = presence.get(cell, (None, None, None))
        rows.append(
            GapRow(
                rank=rank,
                cell=cell,
                score=float(found.score[i]),
                threat=float(found.threat[i]),
                reasons=ThreatReason.names_of(int(found.reasons[i])),
                exposure=float(found.exposure[i]),
                hours_uncovered=float(found.hours_uncovered[i]),
                allowed_hours=float(found.allowed_hours[i]),
                last_presence_at=last,
                last_patrol_id=patrol_id,
                unit_id=int(units[i]) if units[i] >= 0 else None,
                sites=sorted(site_names.get(cell, []), key=lambda s: s.id),
            )
        )
    return GapPicture(
        resolution=resolution,
        audience=audience,
        window_days=window,
        now=moment,
        threat_as_of=hot.as_of,
        threatened_cells=int(threatened.cells.size),
        total=total,
        rows=rows,
    )


# --------------------------------------------------------------------------- around a cell


@dataclass(frozen=True)
class NearestAsset:
    """The responsible unit's nearest presence: a base, or an underway patrol's last fix."""

    kind: str  # "base" or "patrol"
    unit_id: int | None
    patrol_id: uuid.UUID | None
    name: str
    longitude: float
    latitude: float
    distance_km: float
    as_of: datetime | None


@dataclass(frozen=True)
class PresenceAround:
    """The coverage picture around one cell, as alerts need it."""

    cell: int
    resolution: int
    last_presence_at: datetime | None
    hours_uncovered: float | None
    ring_last_presence_at: datetime | None
    ring_hours_uncovered: float | None
    gaps: list[GapRow]
    unit_id: int | None
    nearest: NearestAsset | None


def presence_around(
    session: Session,
    cell: int,
    now: datetime,
    *,
    settings: Settings,
    audience: str = GENERAL,
    gap_rings: int = 3,
) -> PresenceAround:
    """Last patrol presence in ``cell`` and its first ring, the ranked gaps within
    ``gap_rings`` of it, the unit responsible for it and that unit's nearest base or underway
    patrol (the unit and its subunits). For the alerts issue's coverage rule and messages."""
    resolution = geo_cells.cell_resolution(cell)
    check_resolution(settings, resolution, "cell")
    _origin, ring = geo_cells.grid_disks([cell], 1)
    presence = last_presence(session, resolution=resolution, cells=ring.tolist())
    own = presence.get(int(cell), (None, None, None))[0]
    ring_times = [v[0] for v in presence.values()]
    ring_last = max(ring_times) if ring_times else None

    def hours(moment: datetime | None) -> float | None:
        return None if moment is None else max(0.0, (now - moment).total_seconds() / 3600.0)

    _o, nearby = geo_cells.grid_disks([cell], gap_rings)
    nearby_gaps = gaps(
        session,
        settings=settings,
        resolution=resolution,
        audience=audience,
        now=now,
        cells=nearby.tolist(),
        limit=20,
    )
    units = responsible_units(session, cells=[cell], resolution=resolution, settings=settings)
    unit_id = int(units[0]) if units[0] >= 0 else None
    nearest = _nearest_asset(session, cell, unit_id) if unit_id is not None else None
    return PresenceAround(
        cell=int(cell),
        resolution=resolution,
        last_presence_at=own,
        hours_uncovered=hours(own),
        ring_last_presence_at=ring_last,
        ring_hours_uncovered=hours(ring_last),
        gaps=nearby_gaps.rows,
        unit_id=unit_id,
        nearest=nearest,
    )


def _nearest_asset(session: Session, cell: int, unit_id: int) -> NearestAsset | None:
    unit = session.get(Unit, unit_id)
    if unit is None:
        return None
    lat, lon = geo_cells.cell_center(cell)
    subtree = select(Unit.id).where(Unit.path.startswith(unit.path))
    candidates: list[NearestAsset] = []
    for member in session.scalars(
        select(Unit).where(Unit.path.startswith(unit.path), Unit.base_location.is_not(None))
    ):
        point = member.base_location
        assert point is not None
        candidates.append(
            NearestAsset("base", member.id, None, member.name, point.x, point.y, 0.0, None)
        )
    underway = session.scalars(
        select(Patrol).where(Patrol.status == PatrolStatus.UNDERWAY, Patrol.unit_id.in_(subtree))
    ).all()
    for patrol in underway:
        fix = session.execute(
            select(
                PatrolTrackPoint.recorded_at, PatrolTrackPoint.longitude, PatrolTrackPoint.latitude
            )
            .where(PatrolTrackPoint.patrol_id == patrol.id, PatrolTrackPoint.excluded.is_(False))
            .order_by(PatrolTrackPoint.recorded_at.desc())
            .limit(1)
        ).first()
        if fix is not None:
            candidates.append(
                NearestAsset(
                    "patrol",
                    patrol.unit_id,
                    patrol.id,
                    patrol.name or f"{patrol.kind.value} patrol",
                    float(fix[1]),
                    float(fix[2]),
                    0.0,
                    fix[0],
                )
            )
    if not candidates:
        return None
    distances = haversine_m(
        [c.longitude for c in candidates], [c.latitude for c in candidates], lon, lat
    )
    best = int(np.argmin(distances))
    chosen = candidates[best]
    return NearestAsset(
        chosen.kind,
        chosen.unit_id,
        chosen.patrol_id,
        chosen.name,
        chosen.longitude,
        chosen.latitude,
        round(float(distances[best]) / 1000.0, 3),
        chosen.as_of,
    )
