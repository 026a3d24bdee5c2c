"""Writing parsed dataset events (UCDP, ACLED) as reports, idempotently, batch by batch.

Each event becomes a report with a deterministic id (uuid5 of dataset and event id) and its own
incident. Re-importing the same file changes nothing; an event whose content changed in a newer
release of the dataset is updated in place (new version, revision kept). Each batch commits on
its own, so an interrupted import keeps what it did and a re-run finishes the rest.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from geo import finest_supported_resolution
from server.access.policy import Actor
from server.audit import service as audit
from server.db.base import utcnow
from server.db.session import transaction
from server.hotspots import service as hotspots
from server.imports.records import ImportedEvent, RowError, SkippedRow
from server.incidents import service as incidents
from server.reports.derived import day_start, list_sort_at, placements, sensitivity_for
from server.reports.enums import ReportOrigin, SourceType, VerificationState
from server.reports.models import Report, ReportRevision
from server.settings import MissionSettings
from server.taxonomy.codes import get_category
from server.units import service as units
from server.units.models import Unit

__all__ = ["ImportResult", "import_events", "report_id_for"]

BATCH_SIZE = 500
IMPORT_NAMESPACE = uuid.UUID("0b7e6f7c-8a51-4b52-9a1f-3f6c1d2e4a90")

#: Report fields an import writes (and compares, to tell an unchanged event from a revised one).
_IMPORTED_FIELDS = (
    "category",
    "occurred_at",
    "time_precision",
    "longitude",
    "latitude",
    "location_precision",
    "place_name",
    "admin1",
    "admin2",
    "killed_best",
    "killed_low",
    "killed_high",
    "perpetrator_type",
    "perpetrator_name",
    "source_reliability",
    "information_credibility",
    "narrative",
    "dataset_details",
)


@dataclass
class ImportResult:
    dataset: str
    read: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[SkippedRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def report_id_for(dataset: str, external_id: str) -> uuid.UUID:
    """The same event gets the same report id in every Vigil database."""
    return uuid.uuid5(IMPORT_NAMESPACE, f"{dataset}:{external_id}")


def _fingerprint(event: ImportedEvent) -> str:
    payload = asdict(event)
    payload.pop("position")
    canonical = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _clip(text: str | None, column: Any) -> str | None:
    """Datasets carry free text longer than Vigil's columns (UCDP place descriptions run to
    several hundred characters); keep the start and mark the cut rather than fail the row."""
    length = column.type.length
    if text is None or length is None or len(text) <= length:
        return text
    return text[: length - 1] + "…"


def _apply(report: Report, event: ImportedEvent) -> None:
    category = get_category(event.category)
    report.category = category.code
    report.family = category.family.value
    report.occurred_at = event.occurred_at
    report.time_precision = event.time_precision
    report.longitude = event.longitude
    report.latitude = event.latitude
    report.location_precision = event.location_precision
    report.location_accuracy_m = None
    report.place_name = _clip(event.place_name, Report.__table__.c.place_name)
    report.admin1 = _clip(event.admin1, Report.__table__.c.admin1)
    report.admin2 = _clip(event.admin2, Report.__table__.c.admin2)
    report.killed_best = event.killed_best
    report.killed_low = event.killed_low
    report.killed_high = event.killed_high
    report.perpetrator_type = event.perpetrator_type
    report.perpetrator_name = _clip(event.perpetrator_name, Report.__table__.c.perpetrator_name)
    report.source_type = SourceType.DATASET
    report.source_reliability = event.source_reliability
    report.information_credibility = event.information_credibility
    report.narrative = event.narrative
    report.dataset_details = dict(event.details)
    report.sensitivity = sensitivity_for(
        category=category.code,
        source_type=SourceType.DATASET,
        protection_concern=False,
        involves_children=False,
    )
    report.occurred_day_start = day_start(event.occurred_at)
    report.list_sort_at = list_sort_at(event.occurred_at, report.sensitivity)


def _place(batch: list[tuple[Report, ImportedEvent]]) -> None:
    from shapely.geometry import Point

    lons = np.array([e.longitude for _, e in batch])
    lats = np.array([e.latitude for _, e in batch])
    finest = np.array(
        [
            -1 if (r := finest_supported_resolution(e.location_precision)) is None else r
            for _, e in batch
        ]
    )
    for (report, event), place in zip(batch, placements(lons, lats, finest), strict=True):
        report.location = Point(event.longitude, event.latitude)
        report.set_cells(place.cells)
        report.coarse_longitude = place.coarse_longitude
        report.coarse_latitude = place.coarse_latitude


def _write_batch(
    session: Session,
    events: list[ImportedEvent],
    result: ImportResult,
    actor: Actor,
    unit: Unit | None,
) -> None:
    keys = [(e.dataset, e.external_id) for e in events]
    existing = {
        (r.dataset, r.external_id): r
        for r in session.scalars(
            select(Report).where(tuple_(Report.dataset, Report.external_id).in_(keys))
        )
    }
    now = utcnow()
    created: list[tuple[Report, ImportedEvent]] = []
    changed: list[tuple[Report, ImportedEvent]] = []
    for event in events:
        digest = _fingerprint(event)
        report = existing.get((event.dataset, event.external_id))
        if report is not None:
            if report.content_fingerprint == digest:
                result.unchanged += 1
                continue
            previous = {name: getattr(report, name) for name in _IMPORTED_FIELDS}
            _apply(report, event)
            report.content_fingerprint = digest
            report.version += 1
            report.updated_at = now
            session.add(
                ReportRevision(
                    report_id=report.id,
                    version=report.version,
                    actor_user_id=None,
                    previous_values=json.loads(json.dumps(previous, default=str)),
                )
            )
            changed.append((report, event))
            continue
        report = Report(
            id=report_id_for(event.dataset, event.external_id),
            version=1,
            reporting_unit_id=unit.id if unit else None,
            component=unit.component if unit else None,
            created_by_user_id=None,
            protection_concern=False,
            consent_aggregate_reporting=False,
            consent_referral=False,
            verification_state=VerificationState.REPORTED,
            origin=ReportOrigin.IMPORT,
            dataset=event.dataset,
            external_id=event.external_id,
            content_fingerprint=digest,
            server_received_at=now,
            created_at=now,
            updated_at=now,
        )
        _apply(report, event)
        created.append((report, event))
    _place(created + changed)
    session.add_all([r for r, _ in created])
    session.flush()
    for report, _ in created:
        incidents.create_for_report(session=session, report=report, actor=actor, mark_dirty=False)
    for report, _ in changed:
        incidents.refresh_for_report(session=session, report=report)
    result.imported += len(created)
    result.updated += len(changed)


def import_events(
    *,
    session_factory: sessionmaker[Session],
    dataset: str,
    rows: Iterable[ImportedEvent | RowError | SkippedRow],
    actor: Actor,
    mission: MissionSettings,
    unit_code: str | None = None,
    progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportResult:
    """Import parsed rows; bad rows are collected with their position, good rows are kept."""
    result = ImportResult(dataset=dataset)
    with transaction(session_factory) as session:
        if unit_code is not None:
            unit = session.scalars(select(Unit).where(Unit.code == unit_code)).one_or_none()
            if unit is None:
                raise ValueError(f"no unit with code {unit_code!r}")
        else:
            unit = session.scalars(select(Unit).where(Unit.parent_id.is_(None))).first()
        unit_id = unit.id if unit else None
    future_limit = utcnow() + timedelta(minutes=mission.future_tolerance_minutes)
    batch: list[ImportedEvent] = []

    def flush_batch() -> None:
        if not batch:
            return
        with transaction(session_factory) as session:
            batch_unit = session.get(Unit, unit_id) if unit_id is not None else None
            _write_batch(session, batch, result, actor, batch_unit)
        if progress:
            progress(len(batch))
        batch.clear()

    for row in rows:
        if isinstance(row, RowError):
            result.read += 1
            result.errors.append(row)
            if progress:
                progress(1)
            continue
        if isinstance(row, SkippedRow):
            result.read += 1
            result.skipped.append(row)
            if progress:
                progress(1)
            continue
        result.read += 1
        if row.occurred_at > future_limit:
            result.errors.append(
                RowError(
                    row.position, f"{row.position}: date {row.occurred_at.date()} is in the future"
                )
            )
            continue
        batch.append(row)
        if len(batch) >= batch_size:
            flush_batch()
    flush_batch()
    with transaction(session_factory) as session:
        units.reassign_all_aor_units(session=session, mission=mission)
        if result.imported or result.updated:
            hotspots.mark_all_dirty(session)
        audit.record(
            session,
            actor=actor,
            action="dataset_imported",
            object_type="dataset",
            object_id=dataset,
            details={
                "read": result.read,
                "imported": result.imported,
                "updated": result.updated,
                "unchanged": result.unchanged,
                "skipped": len(result.skipped),
                "errors": len(result.errors),
                "unit_id": unit_id,
            },
        )
    return result
