"""Reports: idempotent create, policy-filtered reads, optimistic updates, verification."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import shapely
from sqlalchemy import Select, and_, not_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from geo import STORED_RESOLUTIONS
from server.access import policy
from server.access.policy import Actor, Detail, Permission, require
from server.audit import service as audit
from server.db import bulk, spatial
from server.db.base import utcnow
from server.db.columns import cell_column_name
from server.errors import (
    IdempotencyConflictError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    ValidationFailedError,
)
from server.incidents import service as incidents
from server.pagination import newest_first_page
from server.reports import verification
from server.reports.derived import (
    ReportValues,
    cells_as_strings,
    day_start,
    list_sort_at,
    placement,
    placements_of,
    redacted_fields,
    sensitivity_for,
)
from server.reports.enums import AttachmentState, ReportOrigin, VerificationState
from server.reports.models import Attachment, Report, ReportRevision, ReportVerification
from server.reports.schemas import (
    AttachmentManifestItem,
    AttachmentRead,
    Consent,
    KilledRead,
    ReportCreate,
    ReportRead,
    ReportRedacted,
    ReportUpdate,
    VerificationRequest,
    VictimGroup,
    Victims,
    VictimsRead,
)
from server.settings import MissionSettings
from server.sync import changes
from server.taxonomy.codes import Sensitivity, get_category
from server.units import service as units
from server.units.models import Unit

__all__ = [
    "BBox",
    "NewReport",
    "ReportFilters",
    "create",
    "create_many",
    "detail",
    "get_or_raise",
    "list_",
    "to_view",
    "transition",
    "update",
    "withdraw",
]

#: Fields an update may change; everything else is set by the server.
EDITABLE_FIELDS = (
    "category",
    "occurred_at",
    "time_precision",
    "location",
    "location_accuracy_m",
    "location_precision",
    "place_name",
    "admin1",
    "admin2",
    "source_type",
    "source_reliability",
    "information_credibility",
    "victims",
    "perpetrator_type",
    "perpetrator_name",
    "narrative",
    "protection_concern",
    "consent",
)


@dataclass(frozen=True)
class BBox:
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float


@dataclass(frozen=True)
class ReportFilters:
    bbox: BBox | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    categories: tuple[str, ...] = ()
    families: tuple[str, ...] = ()
    unit_id: int | None = None
    verification_states: tuple[VerificationState, ...] = ()


# --------------------------------------------------------------------------- reading


def _units_of(report: Report) -> tuple[int | None, int | None]:
    return (report.reporting_unit_id, report.aor_unit_id)


def detail(actor: Actor, report: Report) -> Detail:
    return policy.detail_for(actor, sensitivity=report.sensitivity, unit_ids=_units_of(report))


def get_or_raise(*, session: Session, report_id: uuid.UUID, actor: Actor) -> Report:
    """The report if the actor may see it at all; otherwise 404, and the denial is audited."""
    report = session.get(Report, report_id)
    if report is None or detail(actor, report) is Detail.HIDDEN:
        if report is not None:
            audit.record_denial(
                session,
                actor=actor,
                object_type="report",
                object_id=report_id,
                details={"reason": "out_of_scope"},
            )
        raise NotFoundError(f"Report {report_id} does not exist or is not visible to you.")
    return report


def _victims(report: Report) -> VictimsRead:
    return VictimsRead(
        killed=KilledRead(best=report.killed_best, low=report.killed_low, high=report.killed_high),
        injured=report.injured,
        abducted=report.abducted,
        displaced=report.displaced,
        disaggregation=[VictimGroup.model_validate(g) for g in report.victims_detail or []],
    )


def to_full(report: Report, incident_id: uuid.UUID | None) -> ReportRead:
    return ReportRead(
        id=report.id,
        version=report.version,
        category=report.category,
        family=report.family,
        occurred_at=report.occurred_at,
        time_precision=report.time_precision,
        location={"type": "Point", "coordinates": [report.longitude, report.latitude]},
        location_accuracy_m=report.location_accuracy_m,
        location_precision=report.location_precision,
        place_name=report.place_name,
        admin1=report.admin1,
        admin2=report.admin2,
        cells=cells_as_strings(report),
        reporting_unit_id=report.reporting_unit_id,
        aor_unit_id=report.aor_unit_id,
        component=report.component,
        created_by_user_id=report.created_by_user_id,
        source_type=report.source_type,
        source_reliability=report.source_reliability,
        information_credibility=report.information_credibility,
        victims=_victims(report),
        perpetrator_type=report.perpetrator_type,
        perpetrator_name=report.perpetrator_name,
        narrative=report.narrative,
        sensitivity=report.sensitivity,
        protection_concern=report.protection_concern,
        consent=Consent(
            aggregate_reporting=report.consent_aggregate_reporting,
            referral=report.consent_referral,
        ),
        verification_state=report.verification_state,
        origin=report.origin,
        dataset=report.dataset,
        external_id=report.external_id,
        dataset_details=report.dataset_details,
        incident_id=incident_id,
        attachments=[
            AttachmentRead(
                id=a.id,
                media_type=a.media_type,
                size_bytes=a.size_bytes,
                sha256=a.sha256,
                role=a.role,
                state=a.state,
                received_bytes=a.received_bytes,
            )
            for a in report.attachments
        ],
        attachments_expected=len(report.attachments),
        attachments_present=sum(a.state is AttachmentState.COMPLETE for a in report.attachments),
        created_by_device_id=report.created_by_device_id,
        captured_at_device=report.captured_at_device,
        captured_at_corrected=report.captured_at_corrected,
        capture_time_flag=report.capture_time_flag,
        capture_uncertainty_ms=report.capture_uncertainty_ms,
        conflict_state=report.conflict_state,  # type: ignore[arg-type]
        deleted_at=report.deleted_at,
        deleted_reason=report.deleted_reason,
        server_received_at=report.server_received_at,
        created_at=report.created_at,
        updated_at=report.updated_at,
    )


def to_redacted(report: Report) -> ReportRedacted:
    return ReportRedacted(id=report.id, **redacted_fields(report))


def to_view(
    *,
    session: Session,
    actor: Actor,
    report: Report,
    incident_ids: dict[uuid.UUID, uuid.UUID] | None = None,
) -> ReportRead | ReportRedacted:
    """The form of one report the actor may see (the caller has checked it is not hidden)."""
    if detail(actor, report) is Detail.FULL:
        if incident_ids is None:
            incident_ids = incidents.incident_ids_for(session=session, report_ids=[report.id])
        return to_full(report, incident_ids.get(report.id))
    return to_redacted(report)


def audit_sensitive_reads(
    session: Session, actor: Actor, reports: list[Report], action: str
) -> None:
    """One audit row per request that showed sensitive reports in full (SECURITY.md L1)."""
    sensitive = [
        str(r.id)
        for r in reports
        if r.sensitivity is not Sensitivity.NORMAL and detail(actor, r) is Detail.FULL
    ]
    if sensitive:
        audit.record(
            session,
            actor=actor,
            action=action,
            object_type="report",
            object_id=sensitive[0] if len(sensitive) == 1 else None,
            details={"report_ids": sensitive},
        )


def _filtered(
    statement: Select[Any], *, session: Session, actor: Actor, filters: ReportFilters
) -> Select[Any]:
    full = policy.full_detail_clause(actor, Report.sensitivity)
    redacted = not_(full)
    statement = statement.where(
        policy.scope_clause(actor, Report.reporting_unit_id, Report.aor_unit_id)
    )
    if filters.bbox is not None:
        box = filters.bbox
        # A redacted report matches by its coarse cell only: a bbox must never locate it finer.
        statement = statement.where(
            or_(
                and_(full, spatial.point_in_bbox(session, Report, box)),
                and_(
                    redacted,
                    Report.coarse_longitude.between(box.min_lon, box.max_lon),
                    Report.coarse_latitude.between(box.min_lat, box.max_lat),
                ),
            )
        )
    if filters.occurred_from is not None:
        statement = statement.where(
            or_(
                and_(full, Report.occurred_at >= filters.occurred_from),
                and_(redacted, Report.occurred_day_start >= filters.occurred_from),
            )
        )
    if filters.occurred_to is not None:
        statement = statement.where(
            or_(
                and_(full, Report.occurred_at < filters.occurred_to),
                and_(redacted, Report.occurred_day_start < filters.occurred_to),
            )
        )
    if filters.categories:
        statement = statement.where(Report.category.in_(filters.categories))
    if filters.families:
        statement = statement.where(Report.family.in_(filters.families))
    if filters.unit_id is not None:
        unit = session.get(Unit, filters.unit_id)
        if unit is None:
            raise ValidationFailedError.on("query:unit", f"unit {filters.unit_id} does not exist")
        subtree = units.subtree_ids(session=session, unit=unit)
        statement = statement.where(
            or_(
                and_(
                    full,
                    or_(Report.reporting_unit_id.in_(subtree), Report.aor_unit_id.in_(subtree)),
                ),
                # The reporting unit is not part of what a redacted reader may know.
                and_(redacted, Report.aor_unit_id.in_(subtree)),
            )
        )
    if filters.verification_states:
        # Verification state is not shown for redacted reports, so it cannot filter them either.
        statement = statement.where(
            and_(full, Report.verification_state.in_(filters.verification_states))
        )
    return statement


def list_(
    *,
    session: Session,
    actor: Actor,
    filters: ReportFilters,
    limit: int,
    cursor: str | None,
) -> tuple[list[Report], str | None]:
    """One page of the reports the actor may see, newest first, and the next page's cursor."""
    statement = _filtered(select(Report), session=session, actor=actor, filters=filters)
    return newest_first_page(session, statement, Report, limit=limit, cursor=cursor)


# --------------------------------------------------------------------------- writing


def fingerprint(report_in: ReportCreate) -> str:
    canonical = json.dumps(
        report_in.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _check_occurred_at(
    occurred_at: datetime, mission: MissionSettings, field: str = "occurred_at"
) -> None:
    limit = utcnow() + timedelta(minutes=mission.future_tolerance_minutes)
    if occurred_at > limit:
        raise ValidationFailedError.on(
            field,
            f"{occurred_at.isoformat()} is in the future (more than "
            f"{mission.future_tolerance_minutes} minutes ahead of server time); "
            "check the device clock",
        )


def _apply_location(report: Report, mission: MissionSettings, session: Session) -> None:
    place = placement(
        report.longitude, report.latitude, report.location_precision, report.location_accuracy_m
    )
    report.set_cells(place.cells)
    report.coarse_longitude = place.coarse_longitude
    report.coarse_latitude = place.coarse_latitude
    report.aor_unit_id = units.route_cells(session=session, cells=place.cells, mission=mission)


def _derived_columns(
    *,
    category: str,
    source_type: Any,
    protection_concern: bool,
    involves_children: bool,
    occurred_at: datetime,
) -> dict[str, Any]:
    """Columns that follow from what the client sent: family, tier, day, list order."""
    sensitivity = sensitivity_for(
        category=category,
        source_type=source_type,
        protection_concern=protection_concern,
        involves_children=involves_children,
    )
    return {
        "family": get_category(category).family.value,
        "sensitivity": sensitivity,
        "occurred_day_start": day_start(occurred_at),
        "list_sort_at": list_sort_at(occurred_at, sensitivity),
    }


def _apply_derived(report: Report, involves_children: bool) -> None:
    columns = _derived_columns(
        category=report.category,
        source_type=report.source_type,
        protection_concern=report.protection_concern,
        involves_children=involves_children,
        occurred_at=report.occurred_at,
    )
    for name, value in columns.items():
        setattr(report, name, value)


def _victim_columns(victims: Victims) -> dict[str, Any]:
    return {
        "killed_best": victims.killed.best,
        "killed_low": victims.killed.low,
        "killed_high": victims.killed.high,
        "injured": victims.injured,
        "abducted": victims.abducted,
        "displaced": victims.displaced,
        "victims_detail": [g.model_dump() for g in victims.disaggregation] or None,
    }


def _set_victims(report: Report, victims: Victims) -> None:
    for name, value in _victim_columns(victims).items():
        setattr(report, name, value)


def _existing_resend(
    session: Session, report_in: ReportCreate, digest: str, actor: Actor
) -> Report | None:
    existing = session.get(Report, report_in.id)
    if existing is None:
        return None
    if existing.content_fingerprint == digest and existing.created_by_user_id == actor.user_id:
        return existing
    raise IdempotencyConflictError(
        f"Report {report_in.id} already exists with different content. A report id can be used "
        "only once: to change the report, edit it; to file a new one, use a new id."
    )


def create(
    *,
    session: Session,
    report_in: ReportCreate,
    actor: Actor,
    mission: MissionSettings,
    extra_columns: dict[str, Any] | None = None,
) -> tuple[Report, bool]:
    """Store a new report, or return the stored one for an identical resend.

    Returns ``(report, created)``. The same id with different content is a 409: silently keeping
    either version would lose evidence. ``extra_columns`` are server-side columns the caller
    sets on a new report (sync: the capturing device and its clock).
    """
    require(actor, Permission.CREATE_REPORT)
    digest = fingerprint(report_in)
    resent = _existing_resend(session, report_in, digest, actor)
    if resent is not None:
        return resent, False
    try:
        (report_id,) = create_many(
            session=session,
            items=[NewReport(report_in, digest, extra_columns or {})],
            actor=actor,
            mission=mission,
        )
    except IntegrityError:
        # Another request stored the same id (or an attachment id) a moment ago.
        resent = _existing_resend(session, report_in, digest, actor)
        if resent is not None:
            return resent, False
        raise ValidationFailedError.on(
            "attachments", "an attachment id is already used by another report"
        ) from None
    report = session.get(Report, report_id)
    assert report is not None, "created in this transaction"
    return report, True


@dataclass(frozen=True)
class NewReport:
    """One report for :func:`create_many`: what the client sent, its fingerprint, and columns
    the caller sets itself (sync: the device and its capture clock)."""

    report_in: ReportCreate
    fingerprint: str
    extra_columns: dict[str, Any] = field(default_factory=dict)


def _new_report_values(
    item: NewReport, *, actor: Actor, unit: Unit | None, now: datetime
) -> ReportValues:
    """Every column of a new report (cells, coarse point and AOR unit follow in
    :func:`create_many`)."""
    report_in = item.report_in
    return ReportValues(
        id=report_in.id,
        version=1,
        category=report_in.category,
        occurred_at=report_in.occurred_at,
        time_precision=report_in.time_precision,
        location=None,  # all points at once, in create_many
        longitude=report_in.location.longitude,
        latitude=report_in.location.latitude,
        location_accuracy_m=report_in.location_accuracy_m,
        location_precision=report_in.location_precision,
        place_name=report_in.place_name,
        admin1=report_in.admin1,
        admin2=report_in.admin2,
        reporting_unit_id=unit.id if unit else None,
        component=unit.component if unit else None,
        created_by_user_id=actor.user_id,
        source_type=report_in.source_type,
        source_reliability=report_in.source_reliability,
        information_credibility=report_in.information_credibility,
        perpetrator_type=report_in.perpetrator_type,
        perpetrator_name=report_in.perpetrator_name,
        narrative=report_in.narrative,
        protection_concern=report_in.protection_concern,
        consent_aggregate_reporting=report_in.consent.aggregate_reporting,
        consent_referral=report_in.consent.referral,
        verification_state=VerificationState.REPORTED,
        origin=ReportOrigin.FIELD,
        content_fingerprint=item.fingerprint,
        server_received_at=now,
        created_at=now,
        updated_at=now,
        deleted_at=None,
        **_victim_columns(report_in.victims),
        **_derived_columns(
            category=report_in.category,
            source_type=report_in.source_type,
            protection_concern=report_in.protection_concern,
            involves_children=report_in.victims.involves_children,
            occurred_at=report_in.occurred_at,
        ),
        **item.extra_columns,
    )


def create_many(
    *, session: Session, items: Sequence[NewReport], actor: Actor, mission: MissionSettings
) -> list[uuid.UUID]:
    """Store new reports (ids the caller found unused), each with its own incident, change-log
    entry and audit event, with one statement per table rather than per report.

    Raises ``IntegrityError`` when an id or an attachment id was taken meanwhile; the caller
    rolls back its savepoint and takes the reports one by one.
    """
    require(actor, Permission.CREATE_REPORT)
    if not items:
        return []
    for item in items:
        _check_occurred_at(item.report_in.occurred_at, mission)
    unit = session.get(Unit, actor.unit_id) if actor.unit_id is not None else None
    now = utcnow()
    rows = [_new_report_values(item, actor=actor, unit=unit, now=now) for item in items]
    places = placements_of(
        [
            (r["longitude"], r["latitude"], r["location_precision"], r["location_accuracy_m"])
            for r in rows
        ]
    )
    routed = units.route_many(session=session, cells=[p.cells for p in places], mission=mission)
    points = shapely.points([(r["longitude"], r["latitude"]) for r in rows])
    for row, point, place, aor_unit_id in zip(rows, points, places, routed, strict=True):
        row["location"] = point
        row.update({cell_column_name(r): place.cells.get(r) for r in STORED_RESOLUTIONS})
        row["coarse_longitude"] = place.coarse_longitude
        row["coarse_latitude"] = place.coarse_latitude
        row["aor_unit_id"] = aor_unit_id
    bulk.insert_rows(session, Report.__table__, _same_columns(rows))
    bulk.insert_rows(
        session,
        Attachment.__table__,
        [
            attachment_values(item.report_in.id, attachment)
            for item in items
            for attachment in item.report_in.attachments
        ],
    )
    incidents.create_for_new_reports(session=session, reports=rows, actor=actor)
    for row in rows:
        changes.note_change(session, report_id=row["id"], version=1)
    audit.record_many(
        session,
        [
            audit.Entry(
                actor=actor,
                action="report_created",
                object_type="report",
                object_id=row["id"],
                details={"category": row["category"], "sensitivity": row["sensitivity"].value},
            )
            for row in rows
        ],
    )
    if any(row["origin"] is ReportOrigin.FIELD for row in rows):
        from server.alerts_inbox import service as alerts

        alerts.record_reports(
            session, [row["id"] for row in rows if row["origin"] is ReportOrigin.FIELD]
        )
    return [row["id"] for row in rows]


def _same_columns(rows: list[ReportValues]) -> list[ReportValues]:
    """Rows from different callers (REST, sync with its capture columns) as one table: the
    union of their columns, NULL (or the column default) where a row has none."""
    first = list(rows[0])
    if all(list(row) == first for row in rows):  # the usual case: one caller, one shape
        return rows
    names = list(dict.fromkeys(name for row in rows for name in row))
    return [ReportValues({name: row.get(name) for name in names}) for row in rows]


def _require_editable(actor: Actor, report: Report) -> None:
    if detail(actor, report) is not Detail.FULL:
        raise PermissionDeniedError("You may not edit this report.")
    own_unverified = (
        report.created_by_user_id == actor.user_id
        and report.verification_state is VerificationState.REPORTED
    )
    if not (actor.may(Permission.EDIT_ANY_REPORT) or own_unverified):
        raise PermissionDeniedError(
            "Only analysts and protection officers may edit a report once verification has "
            "started, or a report filed by someone else."
        )


def _check_version(report: Report, expected_version: int) -> None:
    if expected_version != report.version:
        raise PreconditionFailedError(
            f"Report {report.id} was changed by someone else (you edited version "
            f"{expected_version}; it is now at version {report.version}). Reload it and apply "
            "your change again."
        )


def _snapshot(report: Report, fields: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in fields:
        if name == "location":
            values[name] = [report.longitude, report.latitude]
        elif name == "victims":
            values[name] = _victims(report).model_dump(mode="json")
        elif name == "consent":
            values[name] = {
                "aggregate_reporting": report.consent_aggregate_reporting,
                "referral": report.consent_referral,
            }
        else:
            value = getattr(report, name)
            values[name] = (
                value.isoformat()
                if isinstance(value, datetime)
                else (value.value if hasattr(value, "value") else value)
            )
    return values


def update(
    *,
    session: Session,
    report: Report,
    report_in: ReportUpdate,
    expected_version: int,
    actor: Actor,
    mission: MissionSettings,
) -> Report:
    """Apply changed fields if ``expected_version`` is current (else 412); keep a revision."""
    _require_editable(actor, report)
    _check_version(report, expected_version)
    changed = {
        name: getattr(report_in, name)
        for name in EDITABLE_FIELDS
        if name in report_in.model_fields_set
    }
    if not changed:
        return report
    if "occurred_at" in changed:
        _check_occurred_at(changed["occurred_at"], mission)
    previous = _snapshot(report, list(changed))
    for name, value in changed.items():
        if name == "location":
            report.location = value.to_shape()
            report.longitude, report.latitude = value.longitude, value.latitude
        elif name == "victims":
            _set_victims(report, value)
        elif name == "consent":
            report.consent_aggregate_reporting = value.aggregate_reporting
            report.consent_referral = value.referral
        else:
            setattr(report, name, value)
    involves_children = any(
        g.get("age_group") == "child"
        and any(g.get(k) for k in ("killed", "injured", "abducted", "displaced"))
        for g in report.victims_detail or []
    )
    _apply_derived(report, involves_children)
    if {"location", "location_precision", "location_accuracy_m"} & changed.keys():
        _apply_location(report, mission, session)
    report.version += 1
    report.updated_at = utcnow()
    session.add(
        ReportRevision(
            report_id=report.id,
            version=report.version,
            actor_user_id=actor.user_id,
            previous_values=previous,
        )
    )
    session.flush()
    incidents.refresh_for_report(session=session, report=report)
    changes.note_change(session, report_id=report.id, version=report.version)
    audit.record(
        session,
        actor=actor,
        action="report_updated",
        object_type="report",
        object_id=report.id,
        details={"fields": sorted(changed), "version": report.version},
    )
    return report


def transition(
    *, session: Session, report: Report, request: VerificationRequest, actor: Actor
) -> Report:
    """Move the report through verification, if the state machine and the role allow it.
    ``withdrawn`` is the author's own step (see :func:`withdraw`)."""
    if request.to_state is VerificationState.WITHDRAWN:
        if request.version is not None:
            _check_version(report, request.version)
        return withdraw(session=session, report=report, actor=actor, note=request.note)
    if detail(actor, report) is not Detail.FULL:
        raise PermissionDeniedError("You may not verify a report you cannot read in full.")
    if request.version is not None:
        _check_version(report, request.version)
    verification.check(report.verification_state, request.to_state, actor, note=request.note)
    session.add(
        ReportVerification(
            report_id=report.id,
            from_state=report.verification_state,
            to_state=request.to_state,
            actor_user_id=actor.user_id,
            note=request.note,
            version=report.version + 1,
        )
    )
    previous = report.verification_state
    report.verification_state = request.to_state
    report.version += 1
    report.updated_at = utcnow()
    session.flush()
    incidents.refresh_for_report(session=session, report=report)
    changes.note_change(session, report_id=report.id, version=report.version)
    audit.record(
        session,
        actor=actor,
        action="report_verification",
        object_type="report",
        object_id=report.id,
        details={"from": previous.value, "to": request.to_state.value},
    )
    return report


def withdraw(*, session: Session, report: Report, actor: Actor, note: str | None) -> Report:
    """The author takes their report back before a decision: it stays on record, leaves every
    incident count and hotspot, and shows as withdrawn."""
    verification.check_withdrawal(
        report.verification_state, actor=actor, author_user_id=report.created_by_user_id
    )
    previous = report.verification_state
    session.add(
        ReportVerification(
            report_id=report.id,
            from_state=previous,
            to_state=VerificationState.WITHDRAWN,
            actor_user_id=actor.user_id,
            note=note,
            version=report.version + 1,
        )
    )
    report.verification_state = VerificationState.WITHDRAWN
    report.version += 1
    report.updated_at = utcnow()
    session.flush()
    incidents.refresh_for_report(session=session, report=report)
    changes.note_change(session, report_id=report.id, version=report.version)
    audit.record(
        session,
        actor=actor,
        action="report_withdrawn",
        object_type="report",
        object_id=report.id,
        details={"from": previous.value},
    )
    return report


def attachment_values(report_id: uuid.UUID, item: AttachmentManifestItem) -> dict[str, Any]:
    """An announced attachment, waiting for its bytes (REST create and sync's attach op)."""
    return {
        "id": item.id,
        "report_id": report_id,
        "media_type": item.media_type,
        "size_bytes": item.size_bytes,
        "sha256": item.sha256,
        "role": item.role,
    }


def attachment_from_manifest(report_id: uuid.UUID, item: AttachmentManifestItem) -> Attachment:
    return Attachment(**attachment_values(report_id, item))


def remove(*, session: Session, report: Report, actor: Actor, reason: str) -> Report:
    """HQ removes a report from the field (a tombstone): it stays on record for HQ, leaves every
    incident count and hotspot, devices drop their copy, and any later sync op on it answers
    ``gone``. Removing twice changes nothing."""
    require(actor, Permission.REMOVE_REPORT)
    if detail(actor, report) is not Detail.FULL:
        raise PermissionDeniedError("You may not remove a report you cannot read in full.")
    if report.deleted_at is not None:
        return report
    report.deleted_at = utcnow()
    report.deleted_reason = reason
    report.version += 1
    report.updated_at = report.deleted_at
    session.flush()
    incidents.refresh_for_report(session=session, report=report)
    changes.note_change(
        session, report_id=report.id, version=report.version, kind=changes.TOMBSTONE
    )
    audit.record(
        session,
        actor=actor,
        action="report_removed",
        object_type="report",
        object_id=report.id,
        reason=reason,
    )
    return report


def verification_history(*, session: Session, report: Report) -> list[ReportVerification]:
    return list(
        session.scalars(
            select(ReportVerification)
            .where(ReportVerification.report_id == report.id)
            .order_by(ReportVerification.at, ReportVerification.id)
        )
    )
