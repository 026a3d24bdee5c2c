"""Alerts on the server: the outbox, raising and refreshing alerts, group flushes, escalation,
acknowledgement, silences, rules and time-to-act.

The logic is :mod:`alerts` (pure); this module reads its inputs from the database and stores
its answers. Every function takes the session and the current time; the request or the job owns
the transaction. Delivery over the network (webhook, e-mail) happens outside any transaction in
:func:`deliver`, so a slow receiver never holds a database lock.

The flow, each step idempotent::

    report / snapshot / gap change ──(same transaction)──▶ alert_outbox
    drain_outbox ──▶ rules ──▶ alerts (open_key unique) ──▶ group states (per unit)
    flush_due_groups ──▶ notifications (idempotency key) + delivery log (alert, recipient, step)
    deliver ──▶ inbox at once; webhook / e-mail with the idempotency key
    escalate_due / expire ──▶ next unit up / auto-resolve ──▶ group states again
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from alerts import (
    DEFAULT_COMPONENT_ROUTES,
    DEFAULT_INHIBITIONS,
    AlertError,
    AlertState,
    Candidate,
    CellState,
    GapFact,
    GroupState,
    HotspotFact,
    ReportFact,
    Rule,
    RuleKind,
    UnitNode,
    active_silence,
    evaluate,
    group_key,
    inhibited_by,
    next_escalation,
    notification_due,
    parse_rule,
    route,
    rule_to_dict,
    validate_silence,
)
from alerts import Silence as CoreSilence
from alerts.defaults import DEFAULT_RULE_DEFINITIONS
from alerts.kpis import AlertTimes, TimeToAct, time_to_act
from alerts.lifecycle import check_acknowledge, check_resolve, flash_expired
from alerts.messages import CoveragePicture, alert_summary, alert_title, coverage_sentence
from geo import cells as geo_cells
from server.access.policy import Actor
from server.alerts_inbox.models import (
    Alert,
    AlertChannel,
    AlertDelivery,
    AlertEvent,
    AlertGroupState,
    AlertNotification,
    AlertOutbox,
    AlertRule,
    AlertSilence,
    AlertSubject,
)
from server.audit import service as audit
from server.db import bulk
from server.db.base import utcnow
from server.db.session import is_sqlite
from server.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationFailedError,
)
from server.settings import Settings
from server.taxonomy.codes import get_category
from server.units.models import AorCell, AorVersion, Unit
from server.users.enums import Role
from server.worker.queue import after_commit

__all__ = [
    "DrainResult",
    "acknowledge",
    "drain_outbox",
    "ensure_default_rules",
    "escalate_due",
    "expire_flash_alerts",
    "flush_due_groups",
    "get_or_raise",
    "kpis",
    "list_",
    "record_gaps",
    "record_hotspot_changes",
    "record_reports",
    "resolve",
]

log = logging.getLogger("vigil.alerts")

#: Roles that may acknowledge, resolve and silence (those who answer for ground or watch it).
ACTING_ROLES = frozenset({Role.COMMANDER, Role.ANALYST, Role.PROTECTION_OFFICER, Role.ADMIN})
_CHILD_CATEGORIES = frozenset(
    {
        "killing_maiming_of_children",
        "sexual_violence_against_children",
        "abduction_of_children",
        "recruitment_use_of_children",
    }
)


# ----------------------------------------------------------------------------------- the outbox


def record_reports(session: Session, report_ids: Iterable[uuid.UUID]) -> None:
    """Put new reports on the outbox, in the caller's transaction (with the reports), and
    queue a drain for after its commit (the outbox row is what survives a lost job)."""
    from server.worker import tasks  # local: tasks import services, services enqueue tasks

    now = utcnow()
    rows = [
        {
            "kind": "report",
            "payload": {"report_id": str(r)},
            "created_at": now,
            "processed_at": None,
        }
        for r in report_ids
    ]
    if not rows:
        return
    bulk.insert_rows(session, AlertOutbox.__table__, rows)
    after_commit(session, tasks.drain_alert_outbox)


def record_incidents(session: Session, incident_ids: Iterable[uuid.UUID]) -> None:
    """Put changed (fused) incidents on the outbox, in the caller's transaction."""
    from server.worker import tasks

    ids = [str(i) for i in incident_ids]
    session.add_all(AlertOutbox(kind="incident", payload={"incident_id": i}) for i in ids)
    if ids:
        after_commit(session, tasks.drain_alert_outbox)


def _state_json(state: CellState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "confidence": state.confidence,
        "pattern": state.pattern,
        "surge": state.surge,
        "precursor": state.precursor,
    }


def _state_of(data: dict[str, Any] | None) -> CellState | None:
    if data is None:
        return None
    return CellState(
        confidence=int(data["confidence"]),
        pattern=str(data["pattern"]),
        surge=bool(data["surge"]),
        precursor=bool(data["precursor"]),
    )


def record_hotspot_changes(session: Session, facts: Sequence[HotspotFact]) -> None:
    """Put hotspot class changes on the outbox (with the snapshot that shows them)."""
    session.add_all(
        AlertOutbox(
            kind="hotspot",
            payload={
                "cell": f.cell,
                "before": _state_json(f.before),
                "after": _state_json(f.after),
                "as_of": f.as_of.isoformat(),
                "count": f.count,
            },
        )
        for f in facts
    )
    if facts:
        from server.worker import tasks

        after_commit(session, tasks.drain_alert_outbox)


def record_gaps(session: Session, facts: Sequence[GapFact]) -> None:
    """Put coverage states of threatened cells on the outbox."""
    session.add_all(
        AlertOutbox(
            kind="gap",
            payload={
                "cell": f.cell,
                "hours_uncovered": f.hours_uncovered,
                "allowed_hours": f.allowed_hours,
                "reasons": list(f.reasons),
                "as_of": f.as_of.isoformat(),
                "site_kind": f.site_kind,
            },
        )
        for f in facts
    )


# ------------------------------------------------------------------------------------- rules


def ensure_default_rules(session: Session) -> int:
    """Store the default rules that are not stored yet (a new mission's first start)."""
    have = set(session.scalars(select(AlertRule.id)))
    added = 0
    for definition in DEFAULT_RULE_DEFINITIONS:
        if definition["id"] not in have:
            rule = parse_rule(definition)
            session.add(AlertRule(id=rule.id, definition=rule_to_dict(rule)))
            added += 1
    session.flush()
    _forget_rules(session)
    return added


def load_rules(session: Session) -> list[Rule]:
    """The stored rules (parsed; a stored rule that no longer parses is skipped and logged)."""
    rules = []
    for stored in session.scalars(select(AlertRule).order_by(AlertRule.id)):
        try:
            rules.append(parse_rule(stored.definition))
        except AlertError:
            log.error("stored alert rule does not parse", extra={"rule": stored.id})
    return rules


#: Parsed rules by (id, version, updated_at): a rule is read for every alert a job touches.
_PARSED: dict[tuple[str, int, datetime], Rule | None] = {}


_RULES_KEY = "vigil_alert_rules"


def _parsed(stored: AlertRule) -> Rule | None:
    key = (stored.id, stored.version, stored.updated_at)
    if key not in _PARSED:
        try:
            _PARSED[key] = parse_rule(stored.definition)
        except AlertError:
            _PARSED[key] = None
    return _PARSED[key]


def _rule_for(session: Session, rule_id: str) -> Rule | None:
    """The rule, from one read of the rules table per transaction (a job touches many alerts;
    a get per alert would flush the session each time)."""
    rules: dict[str, Rule | None] | None = session.info.get(_RULES_KEY)
    if rules is None:
        with session.no_autoflush:
            rules = {r.id: _parsed(r) for r in session.scalars(select(AlertRule))}
        session.info[_RULES_KEY] = rules
    return rules.get(rule_id)


def _forget_rules(session: Session) -> None:
    session.info.pop(_RULES_KEY, None)


def list_rules(*, session: Session) -> list[AlertRule]:
    return list(session.scalars(select(AlertRule).order_by(AlertRule.id)))


def get_rule_or_raise(*, session: Session, rule_id: str) -> AlertRule:
    stored = session.get(AlertRule, rule_id)
    if stored is None:
        raise NotFoundError(f"There is no alert rule {rule_id!r}.")
    return stored


def _require_admin(actor: Actor, what: str) -> None:
    if actor.role is not Role.ADMIN:
        raise PermissionDeniedError(f"Only administrators may {what}.")


def create_rule(*, session: Session, definition: dict[str, Any], actor: Actor) -> AlertRule:
    _require_admin(actor, "change alert rules")
    rule = parse_rule(definition)
    if session.get(AlertRule, rule.id) is not None:
        raise ConflictError(f"An alert rule {rule.id!r} exists already; update it instead.")
    stored = AlertRule(id=rule.id, definition=rule_to_dict(rule), updated_by_user_id=actor.user_id)
    session.add(stored)
    session.flush()
    _forget_rules(session)
    audit.record(
        session,
        actor=actor,
        action="alert_rule_created",
        object_type="alert_rule",
        object_id=rule.id,
    )
    return stored


def update_rule(
    *, session: Session, rule_id: str, definition: dict[str, Any], actor: Actor
) -> AlertRule:
    _require_admin(actor, "change alert rules")
    stored = get_rule_or_raise(session=session, rule_id=rule_id)
    rule = parse_rule({**definition, "id": rule_id})
    stored.definition = rule_to_dict(rule)
    stored.version += 1
    stored.updated_at = utcnow()
    stored.updated_by_user_id = actor.user_id
    session.flush()
    _forget_rules(session)
    audit.record(
        session,
        actor=actor,
        action="alert_rule_updated",
        object_type="alert_rule",
        object_id=rule_id,
        details={"version": stored.version},
    )
    return stored


def delete_rule(*, session: Session, rule_id: str, actor: Actor) -> None:
    _require_admin(actor, "change alert rules")
    stored = get_rule_or_raise(session=session, rule_id=rule_id)
    session.delete(stored)
    session.flush()
    _forget_rules(session)
    audit.record(
        session,
        actor=actor,
        action="alert_rule_deleted",
        object_type="alert_rule",
        object_id=rule_id,
    )


# ------------------------------------------------------------------------------------- facts


def _alert_resolution(settings: Settings) -> int:
    return settings.coverage_resolution


def _coarser(settings: Settings, resolution: int) -> int:
    coarser = [r for r in settings.mission.h3_resolutions if r < resolution]
    return max(coarser) if coarser else resolution


def _site_kinds(session: Session, cell: int, resolution: int) -> str | None:
    from server.sites.models import ProtectedSite, ProtectedSiteCell

    kinds = session.scalars(
        select(ProtectedSite.kind)
        .join(ProtectedSiteCell, ProtectedSiteCell.site_id == ProtectedSite.id)
        .where(ProtectedSiteCell.resolution == resolution, ProtectedSiteCell.cell == cell)
    ).all()
    if not kinds:
        return None
    values = sorted({getattr(k, "value", str(k)) for k in kinds})
    return "idp_camp" if "idp_camp" in values else values[0]


def _report_fact(session: Session, report_id: str, settings: Settings) -> ReportFact | None:
    from server.reports.models import Report

    report = session.get(Report, uuid.UUID(report_id))
    if report is None or report.deleted_at is not None:
        return None
    category = get_category(report.category)
    sensitivity = getattr(report.sensitivity, "value", str(report.sensitivity or ""))
    resolution = _alert_resolution(settings)
    if sensitivity != "normal":
        # Sensitive cases travel as a coarse cell (SECURITY.md rule 3), whoever reads them.
        resolution = min(resolution, settings.hotspots.sensitive_max_resolution)
    cell = geo_cells.point_cells([report.latitude], [report.longitude], resolution)
    fine = int(cell[0])
    parent = geo_cells.parent_cell(fine, _coarser(settings, resolution))
    children = report.category in _CHILD_CATEGORIES or any(
        g.get("age_group") == "child" for g in report.victims_detail or []
    )
    return ReportFact(
        subject=f"report:{report.id}",
        category=report.category,
        family=category.family.value,
        severity_weight=category.severity_weight,
        sensitivity=sensitivity or "strictly_confidential",
        cell=fine,
        parent_cell=parent,
        occurred_at=report.occurred_at,
        killed=int(report.killed_best or 0),
        abducted=int(report.abducted or 0),
        children=children,
        precursor=category.precursor,
        site_kind=_site_kinds(session, fine, resolution) if sensitivity == "normal" else None,
        component=getattr(report.component, "value", None),
    )


def _incident_fact(session: Session, incident_id: str, settings: Settings) -> ReportFact | None:
    """A fused incident as a fact: its category, its best killed count, where it lies."""
    from server.incidents.models import Incident, IncidentStatus

    incident = session.get(Incident, uuid.UUID(incident_id))
    if incident is None or incident.status is not IncidentStatus.ACTIVE:
        return None
    category = get_category(incident.category)
    sensitivity = getattr(incident.sensitivity, "value", str(incident.sensitivity or ""))
    resolution = _alert_resolution(settings)
    if sensitivity != "normal":
        resolution = min(resolution, settings.hotspots.sensitive_max_resolution)
    fine = int(geo_cells.point_cells([incident.latitude], [incident.longitude], resolution)[0])
    return ReportFact(
        subject=f"incident:{incident.id}",
        category=incident.category,
        family=category.family.value,
        severity_weight=category.severity_weight,
        sensitivity=sensitivity or "strictly_confidential",
        cell=fine,
        parent_cell=geo_cells.parent_cell(fine, _coarser(settings, resolution)),
        occurred_at=incident.occurred_at,
        killed=int(incident.killed_best or 0),
        children=incident.category in _CHILD_CATEGORIES,
        precursor=category.precursor,
        site_kind=_site_kinds(session, fine, resolution) if sensitivity == "normal" else None,
    )


def _facts_of(session: Session, row: AlertOutbox, settings: Settings) -> list[Any]:
    payload = row.payload
    if row.kind == "report":
        fact = _report_fact(session, payload["report_id"], settings)
        return [fact] if fact is not None else []
    if row.kind == "incident":
        incident = _incident_fact(session, payload["incident_id"], settings)
        return [incident] if incident is not None else []
    cell = int(payload["cell"])
    parent = geo_cells.parent_cell(cell, _coarser(settings, geo_cells.cell_resolution(cell)))
    as_of = datetime.fromisoformat(payload["as_of"])
    if row.kind == "hotspot":
        after = _state_of(payload["after"])
        assert after is not None
        return [
            HotspotFact(
                cell,
                parent,
                _state_of(payload["before"]),
                after,
                as_of,
                int(payload.get("count", 0)),
            )
        ]
    if row.kind == "gap":
        return [
            GapFact(
                cell,
                parent,
                float(payload["hours_uncovered"]),
                float(payload["allowed_hours"]),
                tuple(payload["reasons"]),
                as_of,
                payload.get("site_kind"),
            )
        ]
    log.error("unknown alert outbox kind", extra={"kind": row.kind})
    return []


# ----------------------------------------------------------------------------------- routing


def _unit_nodes(session: Session) -> dict[int, UnitNode]:
    return {
        u.id: UnitNode(u.id, u.code, u.parent_id, u.depth) for u in session.scalars(select(Unit))
    }


def _holders(session: Session, cell: int, settings: Settings) -> list[int]:
    """Units whose current AOR holds ``cell`` (any depth)."""
    resolution = geo_cells.cell_resolution(cell)
    usable = [r for r in settings.mission.h3_resolutions if r <= resolution]
    if not usable:
        return []
    finest = max(usable)
    candidates = [geo_cells.parent_cell(cell, r) for r in usable]
    return list(
        session.scalars(
            select(AorVersion.unit_id)
            .join(AorCell, AorCell.aor_version_id == AorVersion.id)
            .where(
                AorVersion.valid_to.is_(None),
                AorCell.resolution == finest,
                AorCell.cell.in_(candidates),
            )
            .distinct()
        )
    )


def _fallback_unit(session: Session, settings: Settings, units: dict[int, UnitNode]) -> int:
    code = settings.alerts.operations_centre_code
    for node in units.values():
        if node.code == code:
            return node.id
    roots = [n.id for n in units.values() if n.parent_id is None]
    if not roots:
        raise ConflictError("There are no units: alerts need at least the mission's root unit.")
    return min(roots)


def _coverage(session: Session, cell: int, now: datetime, settings: Settings) -> str:
    """The coverage sentence for a threat in ``cell`` (at the coverage resolution)."""
    from server.coverage import service as coverage

    resolution = settings.coverage_resolution
    if geo_cells.cell_resolution(cell) > resolution:
        cell = geo_cells.parent_cell(cell, resolution)
    elif geo_cells.cell_resolution(cell) < resolution:
        # A coarse (sensitive) cell: read the picture at its centre cell.
        lat, lon = geo_cells.cell_center(cell)
        cell = int(geo_cells.point_cells([lat], [lon], resolution)[0])
    try:
        around = coverage.presence_around(session, cell, now, settings=settings)
    except Exception:  # the coverage picture must never stop an alert
        log.exception("coverage picture failed", extra={"cell": cell})
        return coverage_sentence(None)
    overdue = [g for g in around.gaps if g.hours_uncovered >= g.allowed_hours]
    picture = CoveragePicture(
        hours_uncovered=around.hours_uncovered,
        ring_hours_uncovered=around.ring_hours_uncovered,
        nearest_kind=around.nearest.kind if around.nearest else None,
        nearest_name=around.nearest.name if around.nearest else None,
        nearest_km=around.nearest.distance_km if around.nearest else None,
        gaps_nearby=len(overdue),
        worst_gap_hours=max((g.hours_uncovered for g in overdue), default=None),
    )
    return coverage_sentence(picture)


# ------------------------------------------------------------------------------------ events


def _event(
    session: Session,
    alert: Alert,
    kind: str,
    at: datetime,
    *,
    unit_id: int | None = None,
    user_id: int | None = None,
    **detail: Any,
) -> None:
    session.add(
        AlertEvent(
            alert_id=alert.id, at=at, kind=kind, unit_id=unit_id, user_id=user_id, detail=detail
        )
    )


def _recipients(alert: Alert) -> list[int]:
    """Units told about the alert so far: the chain up to its level, and component units."""
    told = list(alert.chain[: alert.level + 1])
    told.extend(u for u in alert.also_unit_ids if u not in told)
    return told


def _touch_groups(
    session: Session, alert: Alert, unit_ids: Iterable[int], now: datetime, *, at_once: bool
) -> None:
    """Mark the alert's group due for each unit (``at_once``: now, e.g. an escalation or an
    acknowledgement; otherwise by the rule's grouping timers)."""
    rule = _rule_for(session, alert.rule_id)
    for unit_id in unit_ids:
        state = session.get(AlertGroupState, (alert.group_key, unit_id))
        if state is None:
            state = AlertGroupState(
                group_key=alert.group_key,
                unit_id=unit_id,
                rule_id=alert.rule_id,
                first_alert_at=now,
                sequence=0,
            )
            session.add(state)
        if at_once or rule is None:
            due: datetime | None = now
        else:
            due = notification_due(
                GroupState(state.first_alert_at, state.last_notified_at, state.notified_hash),
                "changed",  # the caller changed something: it is news
                rule,
                firing=alert.state != AlertState.RESOLVED.value,
            )
            if due is not None and state.last_notified_at is not None and alert.level > 0:
                due = min(due, now)
        if due is not None and (state.next_due_at is None or due < state.next_due_at):
            state.next_due_at = due
    session.flush()


# ----------------------------------------------------------------------------- raise / clear


@dataclass
class DrainResult:
    processed: int = 0
    raised: int = 0
    refreshed: int = 0
    resolved: int = 0
    notifications: list[int] = field(default_factory=list)


def _cap_identifier() -> str:
    return f"vigil-{uuid.uuid4()}"


def _place(alert_cell: int) -> str:
    return f"cell {geo_cells.cell_to_string(alert_cell)}"


def _raise(
    session: Session,
    candidate: Candidate,
    *,
    settings: Settings,
    units: dict[int, UnitNode],
    now: datetime,
    result: DrainResult,
) -> None:
    rule = candidate.rule
    existing = session.scalar(select(Alert).where(Alert.open_key == candidate.fingerprint))
    if existing is not None:
        _refresh(session, existing, candidate, now=now, result=result)
        return
    labels = dict(candidate.labels)
    observed = candidate.observed_at
    if candidate.sensitive:
        # A sensitive case's time travels as its day (SECURITY.md: category, day, coarse cell).
        observed = observed.replace(hour=0, minute=0, second=0, microsecond=0)
    routed = route(
        labels,
        _holders(session, candidate.cell, settings),
        units,
        fallback_unit_id=_fallback_unit(session, settings, units),
        component_routes=DEFAULT_COMPONENT_ROUTES,
    )
    labels["unit"] = units[routed.responsible_unit_id].code
    labels["component"] = labels.get("component", "")
    category = labels.get("category")
    place = _place(candidate.cell)
    coverage_text = _coverage(session, candidate.cell, now, settings)
    escalation = next_escalation(
        state=AlertState.OPEN, level=0, level_started_at=now, chain=routed.chain, rule=rule
    )
    alert = Alert(
        fingerprint=candidate.fingerprint,
        open_key=candidate.fingerprint,
        cap_identifier=_cap_identifier(),
        rule_id=rule.id,
        kind=rule.kind.value,
        severity=rule.severity.value,
        urgency=rule.urgency,
        cap_severity=rule.cap_severity,
        certainty=rule.certainty,
        labels=labels,
        group_key=group_key(rule, labels),
        cell=candidate.cell,
        category=category,
        sensitive=candidate.sensitive,
        state=AlertState.OPEN.value,
        responsible_unit_id=routed.responsible_unit_id,
        chain=list(routed.chain),
        also_unit_ids=list(routed.also),
        route_reason=routed.reason[:500],
        level=0,
        level_started_at=now,
        escalate_at=escalation.due_at if escalation else None,
        title=alert_title(rule.kind, rule.name, category, place)[:300],
        summary=alert_summary(
            kind=rule.kind,
            category=category,
            count=1,
            killed=candidate.killed,
            abducted=candidate.abducted,
            sensitive=candidate.sensitive,
            place=place,
            first_at=observed,
            last_at=observed,
        ),
        coverage=coverage_text,
        count=1,
        killed=candidate.killed,
        abducted=candidate.abducted,
        first_seen_at=observed,
        last_seen_at=now,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(alert)
            session.flush()
    except IntegrityError:
        # Another worker raised the same alert a moment ago: refresh that one instead.
        existing = session.scalar(select(Alert).where(Alert.open_key == candidate.fingerprint))
        if existing is None:
            raise
        _refresh(session, existing, candidate, now=now, result=result)
        return
    if candidate.subject:
        session.add(AlertSubject(alert_id=alert.id, subject=candidate.subject, added_at=now))
    _event(
        session,
        alert,
        "created",
        now,
        unit_id=alert.responsible_unit_id,
        route=routed.reason,
        rule=rule.id,
    )
    result.raised += 1
    _touch_groups(session, alert, _recipients(alert), now, at_once=False)


def _refresh(
    session: Session, alert: Alert, candidate: Candidate, *, now: datetime, result: DrainResult
) -> None:
    """A further fact for an open alert: counted once per subject (a replayed outbox row, or
    the same report seen again, changes nothing)."""
    if not candidate.subject:
        # A condition that still holds (a gap still overdue, a cell still hot): nothing new to
        # tell, so no count, no timeline entry and no notification; only "still true at".
        alert.last_seen_at = now
        return
    fused = candidate.subject.startswith("incident:")
    if candidate.subject:
        seen = session.get(AlertSubject, (alert.id, candidate.subject))
        if seen is not None and not fused:
            return
        if seen is None:
            session.add(AlertSubject(alert_id=alert.id, subject=candidate.subject, added_at=now))
    # Tolls are the largest best estimate, never a sum (as incident fusion counts them:
    # witnesses of one event report the same victims). A fused incident restates reports
    # already counted: it adds no report, and says something new only if its toll is higher.
    if fused and candidate.killed <= alert.killed and candidate.abducted <= alert.abducted:
        return
    if not fused:
        alert.count += 1
    alert.killed = max(alert.killed, candidate.killed)
    alert.abducted = max(alert.abducted, candidate.abducted)
    alert.last_seen_at = now
    alert.updated_at = now
    rule = candidate.rule
    alert.summary = alert_summary(
        kind=rule.kind,
        category=alert.category,
        count=alert.count,
        killed=alert.killed,
        abducted=alert.abducted,
        sensitive=alert.sensitive,
        place=_place(alert.cell),
        first_at=alert.first_seen_at,
        last_at=alert.first_seen_at if alert.sensitive else candidate.observed_at,
    )
    _event(session, alert, "refreshed", now, count=alert.count)
    result.refreshed += 1
    _touch_groups(session, alert, _recipients(alert), now, at_once=False)


def _resolve_alert(
    session: Session, alert: Alert, now: datetime, *, reason: str, user_id: int | None = None
) -> None:
    alert.state = AlertState.RESOLVED.value
    alert.open_key = None
    alert.resolved_at = now
    alert.resolved_by_user_id = user_id
    alert.resolve_reason = reason[:300]
    alert.escalate_at = None
    alert.updated_at = now
    _event(session, alert, "resolved", now, user_id=user_id, reason=reason)
    _touch_groups(session, alert, _recipients(alert), now, at_once=True)
    if alert.severity == "red":
        # It may have been inhibiting others: let their groups decide again what is audible.
        _touch_all_open(session, now)


def _clear(session: Session, candidate: Candidate, now: datetime, result: DrainResult) -> None:
    alert = session.scalar(select(Alert).where(Alert.open_key == candidate.fingerprint))
    if alert is None:
        return
    _resolve_alert(session, alert, now, reason="condition cleared")
    result.resolved += 1


def _claim(session: Session, limit: int) -> list[AlertOutbox]:
    statement = (
        select(AlertOutbox)
        .where(AlertOutbox.processed_at.is_(None))
        .order_by(AlertOutbox.id)
        .limit(limit)
    )
    if not is_sqlite(session):
        # Two workers drain side by side without taking the same rows.
        statement = statement.with_for_update(skip_locked=True)
    return list(session.scalars(statement))


def drain_outbox(session: Session, *, settings: Settings, now: datetime) -> DrainResult:
    """Turn one batch of outbox rows into alerts, then flush the groups now due.

    Rows are marked processed in the same transaction as the alerts they made: a job killed
    part-way leaves every row of its batch for the next run, and nothing half-done.
    """
    result = DrainResult()
    rows = _claim(session, settings.alerts.outbox_batch)
    if rows:
        rules = [r for r in load_rules(session) if r.enabled]
        units = _unit_nodes(session)
        for row in rows:
            for fact in _facts_of(session, row, settings):
                for rule in rules:
                    candidate = evaluate(rule, fact)
                    if candidate is None:
                        continue
                    if candidate.firing:
                        _raise(
                            session,
                            candidate,
                            settings=settings,
                            units=units,
                            now=now,
                            result=result,
                        )
                    else:
                        _clear(session, candidate, now, result)
            row.processed_at = now
            result.processed += 1
        session.flush()
    result.notifications = flush_due_groups(session, settings=settings, now=now)
    return result


# ------------------------------------------------------------------------------------ flushing


def _active_silences(session: Session, now: datetime) -> list[CoreSilence]:
    from alerts.labels import parse_matchers

    silences = []
    for row in session.scalars(
        select(AlertSilence).where(AlertSilence.starts_at <= now, AlertSilence.ends_at > now)
    ):
        silences.append(
            CoreSilence(
                str(row.id),
                parse_matchers(row.matchers),
                row.starts_at,
                row.ends_at,
                row.created_by,
                row.comment,
            )
        )
    return silences


def _muted(
    session: Session,
    alert: Alert,
    now: datetime,
    silences: list[CoreSilence],
    sources: list[Alert],
) -> bool:
    """Whether a silence or an inhibition mutes the alert now (recorded on the alert and its
    timeline when that changes)."""
    silence = active_silence(alert.labels, silences, now)
    silenced_by = silence.id if silence else None
    if silenced_by != alert.silenced_by:
        if silence is not None:
            _event(
                session,
                alert,
                "silenced",
                now,
                silence_id=silence.id,
                by=silence.created_by,
                comment=silence.comment,
            )
        else:
            _event(session, alert, "unsilenced", now)
        alert.silenced_by = silenced_by
    inhibition = inhibited_by(
        alert.labels, [s.labels for s in sources if s.id != alert.id], DEFAULT_INHIBITIONS
    )
    source_id = None
    if inhibition is not None:
        source_labels = inhibition[1]
        source_id = next((s.id for s in sources if s.labels == source_labels), None)
    if source_id != alert.inhibited_by_alert_id:
        if source_id is not None:
            _event(
                session,
                alert,
                "inhibited",
                now,
                by_alert_id=source_id,
                inhibition=inhibition[0].name if inhibition else None,
            )
        else:
            _event(session, alert, "uninhibited", now)
        alert.inhibited_by_alert_id = source_id
    muted = silenced_by is not None or source_id is not None
    if not muted and alert.state == AlertState.OPEN.value and alert.escalate_at is None:
        # Heard again after a silence or an inhibition: its acknowledgement clock restarts
        # (a muted alert does not escalate, and must not stay unescalated for good).
        rule = _rule_for(session, alert.rule_id)
        step = (
            next_escalation(
                state=AlertState.OPEN,
                level=alert.level,
                level_started_at=now,
                chain=tuple(alert.chain),
                rule=rule,
            )
            if rule is not None
            else None
        )
        if step is not None:
            alert.level_started_at = now
            alert.escalate_at = step.due_at
    return muted


def _content_hash(alerts: Sequence[Alert]) -> str:
    text = ";".join(
        f"{a.id}:{a.state}:{a.count}:{a.level}" for a in sorted(alerts, key=lambda a: a.id)
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _channels(session: Session, unit_id: int) -> list[AlertChannel]:
    return list(
        session.scalars(
            select(AlertChannel)
            .where(AlertChannel.unit_id == unit_id, AlertChannel.enabled.is_(True))
            .order_by(AlertChannel.id)
        )
    )


def _step(alert: Alert, msg_type: str, sequence: int, repeat: bool) -> str:
    if alert.state == AlertState.RESOLVED.value:
        return "resolved"
    if alert.state == AlertState.ACKNOWLEDGED.value:
        return "acknowledged"
    step = f"open:L{alert.level}:n{alert.count}"
    return f"{step}:r{sequence}" if repeat else step


def _notification_text(alerts: Sequence[Alert], msg_type: str, unit: Unit) -> tuple[str, str]:
    firing = [a for a in alerts if a.state != AlertState.RESOLVED.value]
    head = alerts[0]
    if msg_type == "Cancel":
        subject = f"[VIGIL resolved] {head.title}"
    elif msg_type == "Ack":
        subject = f"[VIGIL acknowledged] {head.title}"
    else:
        subject = f"[VIGIL {head.severity.upper()}] {head.title}"
    if len(alerts) > 1:
        subject += f" (+{len(alerts) - 1} more)"
    lines = [f"For {unit.name} ({unit.code})."]
    for alert in alerts:
        state = alert.state.upper()
        escalated = f" — ESCALATED to level {alert.level}" if alert.level else ""
        lines.append(f"- [{alert.severity.upper()} {state}{escalated}] {alert.title}")
        lines.append(f"  {alert.summary}")
        if alert.state != AlertState.RESOLVED.value and alert.kind != RuleKind.GAP.value:
            lines.append(f"  Coverage: {alert.coverage}")
        lines.append(f"  Alert {alert.id}: /api/v1/alerts/{alert.id}")
    if firing:
        lines.append("Acknowledge in Vigil once someone is acting on it.")
    return subject[:300], "\n".join(lines)


def flush_due_groups(session: Session, *, settings: Settings, now: datetime) -> list[int]:
    """Send every (group, unit) whose notification is due: one notification per channel, with
    each alert logged once per (alert, recipient, step). Returns the notification ids that wait
    for an external delivery (webhook, e-mail); the in-app inbox is delivered here."""
    due = list(
        session.scalars(
            select(AlertGroupState)
            .where(AlertGroupState.next_due_at.is_not(None), AlertGroupState.next_due_at <= now)
            .order_by(AlertGroupState.next_due_at)
        )
    )
    if not due:
        return []
    silences = _active_silences(session, now)
    outgoing: list[int] = []
    for state in due:
        outgoing.extend(_flush_one(session, state, now=now, silences=silences, settings=settings))
    session.flush()
    return outgoing


def _inhibition_sources(
    session: Session, targets: Sequence[Alert], settings: Settings
) -> list[Alert]:
    """The open red alerts that could inhibit ``targets``: those whose cell's parent (the
    area an inhibition covers) holds a target — the children of each target's ancestor at
    every resolution alerts are raised at. One indexed query, however many alerts are open."""
    if not targets:
        return []
    resolutions = {
        settings.coverage_resolution,
        min(settings.coverage_resolution, settings.hotspots.sensitive_max_resolution),
        settings.alerts.hotspot_resolution,
    }
    candidates: set[int] = set()
    for target in targets:
        level = geo_cells.cell_resolution(target.cell)
        for resolution in resolutions:
            area = _coarser(settings, resolution)
            if level < area:
                continue
            ancestor = geo_cells.parent_cell(target.cell, area) if level > area else target.cell
            candidates.update(int(c) for c in geo_cells.uncompact_cells([ancestor], resolution))
    return list(
        session.scalars(
            select(Alert).where(
                Alert.state != AlertState.RESOLVED.value,
                Alert.severity == "red",
                Alert.cell.in_(sorted(candidates)),
            )
        )
    )


def _flush_one(
    session: Session,
    state: AlertGroupState,
    *,
    now: datetime,
    silences: list[CoreSilence],
    settings: Settings,
) -> list[int]:
    unit = session.get(Unit, state.unit_id)
    rule = _rule_for(session, state.rule_id)
    candidates = list(session.scalars(select(Alert).where(Alert.group_key == state.group_key)))
    members = [a for a in candidates if state.unit_id in _recipients(a)]
    active = [a for a in members if a.state != AlertState.RESOLVED.value]
    resolved_news = [
        a
        for a in members
        if a.state == AlertState.RESOLVED.value
        and a.resolved_at is not None
        and (state.last_notified_at is None or a.resolved_at >= state.last_notified_at)
        and state.last_notified_at is not None  # never told: no need to tell it is over
    ]
    sources = _inhibition_sources(session, active, settings)
    audible = [a for a in active if not _muted(session, a, now, silences, sources)]
    current_hash = _content_hash(audible)
    news = current_hash != state.notified_hash or bool(resolved_news)
    repeat = not news and any(a.state == AlertState.OPEN.value for a in audible)
    told = audible + resolved_news
    state.next_due_at = None
    if unit is None or rule is None or not told or not (news or repeat):
        return []
    if repeat and state.last_notified_at is not None:
        reminder_at = state.last_notified_at + timedelta(seconds=rule.repeat_interval_s)
        if now < reminder_at:
            state.next_due_at = reminder_at
            return []
    if state.last_notified_at is None:
        msg_type = "Alert"
    elif not audible and resolved_news:
        msg_type = "Cancel"
    elif audible and all(a.state == AlertState.ACKNOWLEDGED.value for a in audible):
        msg_type = "Ack"
    else:
        msg_type = "Update"
    subject, text = _notification_text(told, msg_type, unit)
    sequence = state.sequence
    outgoing: list[int] = []
    channels: list[AlertChannel | None] = [None, *_channels(session, unit.id)]
    # What was already logged for these alerts: one query, not one per (alert, channel).
    logged = {
        (row[0], row[1], row[2])
        for row in session.execute(
            select(AlertDelivery.alert_id, AlertDelivery.recipient, AlertDelivery.step).where(
                AlertDelivery.alert_id.in_([a.id for a in told])
            )
        )
    }
    for channel in channels:
        recipient = f"u{unit.id}:" + (f"c{channel.id}" if channel else "inbox")
        fresh = []
        for alert in told:
            step = _step(alert, msg_type, sequence, repeat)
            if (alert.id, recipient, step) not in logged:
                fresh.append((alert, step))
        if not fresh:
            continue
        notification = AlertNotification(
            idempotency_key=f"{state.group_key}#u{unit.id}#{recipient}#s{sequence}",
            group_key=state.group_key,
            unit_id=unit.id,
            channel_id=channel.id if channel else None,
            channel_kind=channel.kind if channel else "inbox",
            msg_type=msg_type,
            alert_ids=[a.id for a, _ in fresh],
            subject=subject,
            text=text,
            state="delivered" if channel is None else "pending",
            attempts=0,
            created_at=now,
            delivered_at=now if channel is None else None,
        )
        session.add(notification)
        session.flush()
        for alert, step in fresh:
            session.add(
                AlertDelivery(
                    alert_id=alert.id,
                    recipient=recipient,
                    step=step,
                    notification_id=notification.id,
                    created_at=now,
                )
            )
            if channel is None:
                _event(
                    session,
                    alert,
                    "delivered",
                    now,
                    unit_id=unit.id,
                    channel="inbox",
                    msg_type=msg_type,
                    notification_id=notification.id,
                )
                if alert.first_delivered_at is None:
                    alert.first_delivered_at = now
        if channel is not None:
            outgoing.append(notification.id)
    state.sequence = sequence + 1
    state.last_notified_at = now
    state.notified_hash = current_hash
    if any(a.state == AlertState.OPEN.value for a in audible):
        state.next_due_at = now + timedelta(seconds=rule.repeat_interval_s)
    return outgoing


def undelivered(session: Session, *, settings: Settings, now: datetime) -> list[int]:
    """Notifications still pending after ``redeliver_after_s`` (their job was lost)."""
    cutoff = now - timedelta(seconds=settings.alerts.redeliver_after_s)
    return list(
        session.scalars(
            select(AlertNotification.id).where(
                AlertNotification.state == "pending", AlertNotification.created_at <= cutoff
            )
        )
    )


# ---------------------------------------------------------------------------- escalation


def escalate_due(
    session: Session, *, now: datetime, alert_ids: Sequence[int] | None = None
) -> list[int]:
    """Move every open alert past its acknowledgement deadline to the next unit up.

    Muted alerts (silenced or inhibited) do not escalate: someone decided, or a graver alert
    covers the ground. Returns the escalated alert ids.
    """
    statement = select(Alert).where(
        Alert.state == AlertState.OPEN.value,
        Alert.escalate_at.is_not(None),
        Alert.escalate_at <= now,
    )
    if alert_ids is not None:
        statement = statement.where(Alert.id.in_(list(alert_ids)))
    escalated = []
    for alert in session.scalars(statement.order_by(Alert.escalate_at)):
        if alert.silenced_by or alert.inhibited_by_alert_id:
            alert.escalate_at = None
            continue
        rule = _rule_for(session, alert.rule_id)
        if rule is None:
            alert.escalate_at = None
            continue
        step = next_escalation(
            state=AlertState.OPEN,
            level=alert.level,
            level_started_at=alert.level_started_at,
            chain=tuple(alert.chain),
            rule=rule,
        )
        if step is None:
            alert.escalate_at = None
            continue
        from_unit = alert.chain[alert.level]
        alert.level = step.level
        alert.level_started_at = now
        following = next_escalation(
            state=AlertState.OPEN,
            level=alert.level,
            level_started_at=now,
            chain=tuple(alert.chain),
            rule=rule,
        )
        alert.escalate_at = following.due_at if following else None
        alert.updated_at = now
        _event(
            session,
            alert,
            "escalated",
            now,
            unit_id=step.unit_id,
            from_unit_id=from_unit,
            level=step.level,
            reason=f"not acknowledged within {rule.ack_within_s // 60} min",
        )
        _touch_groups(session, alert, [step.unit_id], now, at_once=True)
        escalated.append(alert.id)
    session.flush()
    return escalated


def expire_flash_alerts(session: Session, *, now: datetime) -> int:
    """Auto-resolve flash alerts no report has refreshed for the rule's ``resolve_after``."""
    done = 0
    for alert in session.scalars(
        select(Alert).where(Alert.state != AlertState.RESOLVED.value, Alert.kind == "flash")
    ):
        rule = _rule_for(session, alert.rule_id)
        if rule is not None and flash_expired(rule, alert.last_seen_at, now):
            _resolve_alert(
                session,
                alert,
                now,
                reason=f"condition cleared: no new report for {rule.resolve_after_s // 3600} h",
            )
            done += 1
    session.flush()
    return done


def next_escalation_times(
    session: Session, alert_ids: Sequence[int]
) -> list[tuple[int, int, datetime]]:
    """(alert id, level, due) for alerts with an escalation timer: for rq's scheduler."""
    return [
        (a.id, a.level, a.escalate_at)
        for a in session.scalars(select(Alert).where(Alert.id.in_(list(alert_ids))))
        if a.escalate_at is not None
    ]


# ------------------------------------------------------------------------------ reading


def visible(actor: Actor, alert: Alert) -> bool:
    """Need-to-know for alerts: the chain and component units it routes to, the units above
    its responsible unit's ground, the whole-mission units; strictly confidential ones
    (conduct and discipline) only to the units they are routed to."""
    routed = set(alert.chain) | set(alert.also_unit_ids)
    if alert.labels.get("sensitivity") == "strictly_confidential":
        return actor.unit_id is not None and actor.unit_id in routed
    if actor.scope_unit_ids is None:
        return True
    if actor.unit_id is not None and actor.unit_id in routed:
        return True
    return alert.responsible_unit_id in actor.scope_unit_ids


def get_or_raise(*, session: Session, alert_id: int, actor: Actor) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None or not visible(actor, alert):
        if alert is not None:
            audit.record_denial(
                session,
                actor=actor,
                object_type="alert",
                object_id=alert_id,
                details={"reason": "out_of_scope"},
            )
        raise NotFoundError(f"Alert {alert_id} does not exist or is not for your unit.")
    return alert


def list_(
    *,
    session: Session,
    actor: Actor,
    state: str | None = None,
    severity: str | None = None,
    unit_id: int | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> list[Alert]:
    """Alerts for the actor's unit and chain, newest first (``after_id``: older than it)."""
    statement = select(Alert)
    if state is not None:
        statement = statement.where(Alert.state == state)
    if severity is not None:
        statement = statement.where(Alert.severity == severity)
    if unit_id is not None:
        statement = statement.where(Alert.responsible_unit_id == unit_id)
    if after_id is not None:
        statement = statement.where(Alert.id < after_id)
    # Visibility depends on the chain and component units stored with each alert, so it is
    # decided per alert (pages of twice the limit until the page is full).
    out: list[Alert] = []
    batch_after = after_id
    while len(out) < limit:
        page_statement = statement.order_by(Alert.id.desc()).limit(limit * 2)
        if batch_after is not None:
            page_statement = page_statement.where(Alert.id < batch_after)
        page = list(session.scalars(page_statement))
        if not page:
            break
        out.extend(a for a in page if visible(actor, a))
        batch_after = page[-1].id
    return out[:limit]


def timeline(session: Session, alert: Alert) -> list[AlertEvent]:
    return list(
        session.scalars(
            select(AlertEvent).where(AlertEvent.alert_id == alert.id).order_by(AlertEvent.id)
        )
    )


# ---------------------------------------------------------------------------- acting on it


def _require_acting(actor: Actor, what: str) -> None:
    if actor.role not in ACTING_ROLES:
        raise PermissionDeniedError(
            f"A {actor.role.value.replace('_', ' ')} may not {what} alerts; a commander, "
            "analyst or protection officer of the unit can."
        )


def acknowledge(
    *, session: Session, alert_id: int, actor: Actor, note: str | None, now: datetime
) -> Alert:
    """Someone of the alert's chain is acting on it: stop the escalation, tell the others."""
    alert = get_or_raise(session=session, alert_id=alert_id, actor=actor)
    _require_acting(actor, "acknowledge")
    try:
        check_acknowledge(AlertState(alert.state))
    except AlertError as exc:
        raise ConflictError(str(exc)) from None
    alert.state = AlertState.ACKNOWLEDGED.value
    alert.acknowledged_at = now
    alert.acknowledged_by_user_id = actor.user_id
    alert.acknowledged_by_unit_id = actor.unit_id
    alert.ack_note = note
    alert.escalate_at = None
    alert.updated_at = now
    _event(
        session,
        alert,
        "acknowledged",
        now,
        unit_id=actor.unit_id,
        user_id=actor.user_id,
        by=actor.username,
        note=note or "",
    )
    _touch_groups(session, alert, _recipients(alert), now, at_once=True)
    audit.record(
        session, actor=actor, action="alert_acknowledged", object_type="alert", object_id=alert.id
    )
    return alert


def resolve(
    *, session: Session, alert_id: int, actor: Actor, reason: str | None, now: datetime
) -> Alert:
    alert = get_or_raise(session=session, alert_id=alert_id, actor=actor)
    _require_acting(actor, "resolve")
    try:
        check_resolve(AlertState(alert.state))
    except AlertError as exc:
        raise ConflictError(str(exc)) from None
    _resolve_alert(
        session, alert, now, reason=reason or f"resolved by {actor.username}", user_id=actor.user_id
    )
    audit.record(
        session, actor=actor, action="alert_resolved", object_type="alert", object_id=alert.id
    )
    return alert


# ---------------------------------------------------------------------------------- silences


def create_silence(
    *,
    session: Session,
    actor: Actor,
    matchers: list[str],
    starts_at: datetime | None,
    ends_at: datetime | None,
    comment: str,
    now: datetime,
) -> AlertSilence:
    _require_acting(actor, "silence")
    silence = validate_silence(
        matchers,
        starts_at=starts_at,
        ends_at=ends_at,
        now=now,
        created_by=actor.username,
        comment=comment,
    )
    row = AlertSilence(
        matchers=[str(m) for m in silence.matchers],
        starts_at=silence.starts_at,
        ends_at=silence.ends_at,
        comment=silence.comment,
        created_by_user_id=actor.user_id,
        created_by=actor.username,
        created_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="alert_silence_created",
        object_type="silence",
        object_id=row.id,
    )
    _touch_all_open(session, now)
    return row


def _touch_all_open(session: Session, now: datetime) -> None:
    """A silence began or ended: every open alert's groups re-decide what is audible."""
    for alert in session.scalars(select(Alert).where(Alert.state != AlertState.RESOLVED.value)):
        for unit_id in _recipients(alert):
            state = session.get(AlertGroupState, (alert.group_key, unit_id))
            if state is not None and (state.next_due_at is None or state.next_due_at > now):
                state.next_due_at = now
    session.flush()


def list_silences(*, session: Session, now: datetime, active_only: bool) -> list[AlertSilence]:
    statement = select(AlertSilence).order_by(AlertSilence.id.desc())
    if active_only:
        statement = statement.where(AlertSilence.ends_at > now)
    return list(session.scalars(statement))


def get_silence_or_raise(*, session: Session, silence_id: int) -> AlertSilence:
    row = session.get(AlertSilence, silence_id)
    if row is None:
        raise NotFoundError(f"There is no silence {silence_id}.")
    return row


def expire_silence(
    *, session: Session, silence_id: int, actor: Actor, now: datetime
) -> AlertSilence:
    _require_acting(actor, "silence")
    row = get_silence_or_raise(session=session, silence_id=silence_id)
    if row.ends_at <= now:
        raise ConflictError(f"Silence {silence_id} has already ended.")
    row.ends_at = max(now, row.starts_at)
    audit.record(
        session,
        actor=actor,
        action="alert_silence_expired",
        object_type="silence",
        object_id=row.id,
    )
    session.flush()
    _touch_all_open(session, now)
    return row


# ---------------------------------------------------------------------------------- channels


def add_channel(
    *, session: Session, unit_id: int, kind: str, address: str, secret: str | None
) -> AlertChannel:
    if kind not in ("webhook", "email"):
        raise ValidationFailedError.on("kind", "a channel is a webhook or an email address")
    if kind == "webhook":
        if not address.startswith(("http://", "https://")):
            raise ValidationFailedError.on("address", "a webhook address is an http(s) URL")
        if not secret or len(secret) < 16:
            raise ValidationFailedError.on(
                "secret", "a webhook needs a signing secret of at least 16 characters"
            )
    elif "@" not in address:
        raise ValidationFailedError.on("address", "not an e-mail address")
    if session.get(Unit, unit_id) is None:
        raise NotFoundError(f"There is no unit {unit_id}.")
    channel = AlertChannel(unit_id=unit_id, kind=kind, address=address, secret=secret)
    session.add(channel)
    session.flush()
    return channel


# ------------------------------------------------------------------------------------- KPIs


def kpis(
    *, session: Session, actor: Actor, since: datetime | None, now: datetime
) -> list[TimeToAct]:
    statement = select(Alert)
    if since is not None:
        statement = statement.where(Alert.created_at >= since)
    codes = {u.id: u.code for u in session.scalars(select(Unit))}
    rows = [
        AlertTimes(
            unit=codes.get(a.responsible_unit_id, str(a.responsible_unit_id)),
            severity=a.severity,
            created_at=a.created_at,
            first_delivery_at=a.first_delivered_at,
            acknowledged_at=a.acknowledged_at,
            resolved_at=a.resolved_at,
        )
        for a in session.scalars(statement)
        if visible(actor, a)
    ]
    return time_to_act(rows, now=now)


# --------------------------------------------------------------------------------- gap facts


def gap_facts(session: Session, *, settings: Settings, now: datetime) -> list[GapFact]:
    """Every overdue gap of the coverage resolution as a fact, plus a closing fact (zero hours
    uncovered) for each open gap alert whose cell is no longer overdue.

    Gaps are read for the general audience: a gap alert goes to commanders, whose picture must
    not reveal where a sensitive case lies."""
    from server.coverage import service as coverage
    from server.hotspots.service import GENERAL

    resolution = settings.coverage_resolution
    picture = coverage.gaps(
        session,
        settings=settings,
        resolution=resolution,
        audience=GENERAL,
        now=now,
        limit=None,
    )
    coarser = _coarser(settings, resolution)
    facts: list[GapFact] = []
    overdue: set[int] = set()
    for row in picture.rows:
        if row.hours_uncovered < row.allowed_hours:
            continue
        overdue.add(row.cell)
        kinds = sorted({getattr(s.kind, "value", str(s.kind)) for s in row.sites})
        facts.append(
            GapFact(
                cell=row.cell,
                parent_cell=geo_cells.parent_cell(row.cell, coarser),
                hours_uncovered=row.hours_uncovered,
                allowed_hours=row.allowed_hours,
                reasons=tuple(row.reasons),
                as_of=now,
                site_kind=("idp_camp" if "idp_camp" in kinds else kinds[0]) if kinds else None,
            )
        )
    for alert in session.scalars(
        select(Alert).where(Alert.kind == "gap", Alert.state != AlertState.RESOLVED.value)
    ):
        if alert.cell not in overdue:
            facts.append(
                GapFact(alert.cell, geo_cells.parent_cell(alert.cell, coarser), 0.0, 1.0, (), now)
            )
    return facts


# --------------------------------------------------------------------------- hotspot facts


def record_snapshot_transitions(
    session: Session, *, snapshot_id: int, previous_snapshot_id: int | None
) -> int:
    """Compare a new snapshot with the previous one of its key and put every cell whose class
    changed (hot, emerging pattern, surge or precursor flag) on the outbox."""
    from server.hotspots.models import HotspotCell, HotspotSnapshot

    def states(snapshot: int | None) -> dict[int, tuple[CellState, int]]:
        if snapshot is None:
            return {}
        return {
            int(c.cell): (
                CellState(
                    int(c.confidence), str(c.emerging), bool(c.surge_flag), bool(c.precursor_flag)
                ),
                int(c.count),
            )
            for c in session.scalars(select(HotspotCell).where(HotspotCell.snapshot_id == snapshot))
        }

    snapshot = session.get(HotspotSnapshot, snapshot_id)
    if snapshot is None:
        return 0
    before, after = states(previous_snapshot_id), states(snapshot_id)
    quiet = CellState()
    facts = []
    for cell in sorted(set(before) | set(after)):
        old = before.get(cell, (quiet, 0))[0] if previous_snapshot_id is not None else None
        new, count = after.get(cell, (quiet, 0))
        if old == new:
            continue
        facts.append(HotspotFact(cell, cell, old, new, snapshot.as_of, count))
    record_hotspot_changes(session, facts)
    return len(facts)
