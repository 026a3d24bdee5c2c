"""The joint operations centre page: what the duty officer needs at a glance — open alerts by
severity (to acknowledge), the worst coverage gaps, the latest verified incidents, and the
trends (incidents per family per day, time to acknowledge) as pictures.

Read through the same services and policy as the API: a sensitive incident the officer may not
read in full shows as its category, day and coarse cell, and the trend chart of a reader
without need-to-know counts normal-tier incidents only.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from geo import cells as geo_cells
from server.access.policy import Actor, Detail
from server.coverage import service as coverage
from server.db.base import utcnow
from server.hotspots.views import audience_for
from server.incidents import service as incidents
from server.incidents.service import IncidentFilters
from server.maps import charts
from server.reports.derived import REDACTION_RESOLUTION
from server.reports.enums import VerificationState
from server.settings import Settings
from server.taxonomy.codes import Sensitivity, get_category
from server.units.models import Unit

__all__ = ["JocPage", "joc_page"]

TREND_DAYS = 30
RECENT_DAYS = 7
TOP_GAPS = 10
RECENT_INCIDENTS = 25
TREND_SERIES = 7


@dataclass
class JocPage:
    generated_at: datetime
    audience: str
    gaps: list[dict[str, Any]] = field(default_factory=list)
    gaps_total: int = 0
    incidents: list[dict[str, Any]] = field(default_factory=list)
    family_chart: str = ""
    trend_note: str = ""
    alerts: list[dict[str, Any]] = field(default_factory=list)
    alerts_note: str = ""
    ack_chart: str = ""


def _all_incidents(session: Session, actor: Actor, since: datetime) -> list[Any]:
    found: list[Any] = []
    cursor: str | None = None
    while True:
        page, cursor = incidents.list_(
            session=session,
            actor=actor,
            filters=IncidentFilters(occurred_from=since),
            limit=1000,
            cursor=cursor,
        )
        found += page
        if cursor is None or len(found) >= 20_000:
            return found


def _trend(rows: list[Any], actor: Actor, now: datetime, page: JocPage) -> None:
    days = [(now - timedelta(days=TREND_DAYS - 1 - i)).date() for i in range(TREND_DAYS)]
    counts: Counter[tuple[str, date]] = Counter()
    for incident in rows:
        if page.audience != "full" and incident.sensitivity is not Sensitivity.NORMAL:
            continue  # sensitive daily counts would be small, identifying numbers
        counts[(incident.family, incident.occurred_day_start.date())] += 1
    by_family = Counter({f: 0 for f, _ in counts})
    for (family, _day), n in counts.items():
        by_family[family] += n
    top = [f for f, _ in by_family.most_common(TREND_SERIES - 1)]
    others = [f for f in by_family if f not in top]
    series = [(f.replace("_", " "), [counts[(f, d)] for d in days]) for f in top]
    if others:
        series.append(("other", [sum(counts[(f, d)] for f in others) for d in days]))
    page.family_chart = charts.stacked_bars(
        [d.strftime("%d %b") for d in days],
        series,
        title=f"Incidents per family per day, last {TREND_DAYS} days",
    )
    if page.audience != "full":
        page.trend_note = "Normal-tier incidents only: sensitive cases are not counted by day here."


def _recent(session: Session, actor: Actor, rows: list[Any], now: datetime, page: JocPage) -> None:
    since = now - timedelta(days=RECENT_DAYS)
    verified = [
        i
        for i in rows
        if i.verification_state is VerificationState.VERIFIED and i.occurred_day_start >= since
    ][:RECENT_INCIDENTS]
    full = []
    for incident in verified:
        category = get_category(incident.category)
        if incidents.detail(session=session, actor=actor, incident=incident) is Detail.FULL:
            full.append(incident)
            page.incidents.append(
                {
                    "when": incident.occurred_at.strftime("%Y-%m-%d %H:%M"),
                    "category": category.label,
                    "where": f"{incident.latitude:.4f}, {incident.longitude:.4f}",
                    "killed": incident.killed_best,
                    "reports": incident.report_count,
                    "sensitive": incident.sensitivity is not Sensitivity.NORMAL,
                }
            )
        else:
            cell = incident.cell_at(REDACTION_RESOLUTION)
            page.incidents.append(
                {
                    "when": incident.occurred_day_start.strftime("%Y-%m-%d"),
                    "category": category.label,
                    "where": f"cell {geo_cells.cell_to_string(cell)}" if cell else "—",
                    "killed": None,
                    "reports": None,
                    "sensitive": True,
                }
            )
    incidents.audit_sensitive_reads(
        session=session, actor=actor, incidents=full, action="joc_viewed"
    )


def _gaps(session: Session, actor: Actor, settings: Settings, now: datetime, page: JocPage) -> None:
    scope = None if actor.scope_unit_ids is None else sorted(actor.scope_unit_ids)
    picture = coverage.gaps(
        session,
        settings=settings,
        resolution=settings.coverage_resolution,
        audience=page.audience,
        now=now,
        unit_ids=scope,
        limit=TOP_GAPS,
    )
    page.gaps_total = picture.total
    names = dict(
        session.execute(
            select(Unit.id, Unit.name).where(
                Unit.id.in_(sorted({r.unit_id for r in picture.rows if r.unit_id}))
            )
        ).all()
    )
    for row in picture.rows:
        lat, lng = geo_cells.cell_center(row.cell)
        page.gaps.append(
            {
                "rank": row.rank,
                "cell": geo_cells.cell_to_string(row.cell),
                "unit": names.get(row.unit_id, "JOC") if row.unit_id else "JOC",
                "threat": round(row.threat, 1),
                "hours": None if row.last_presence_at is None else round(row.hours_uncovered),
                "allowed": round(row.allowed_hours),
                "reasons": ", ".join(row.reasons),
                "sites": ", ".join(s.name for s in row.sites),
                "lat": round(lat, 4),
                "lng": round(lng, 4),
            }
        )


_SEVERITY_RANK = {"red": 0, "amber": 1, "yellow": 2}
ACK_CHART_DAYS = 14


def _age(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60:02d}"
    return f"{minutes // 1440} days"


def _alerts(session: Session, actor: Actor, now: datetime, page: JocPage) -> None:
    """Open alerts for the actor's units and chain, gravest first, with what an acknowledge
    button needs; and acknowledgements of the last 24 h, so the watch sees what was taken."""
    from server.alerts_inbox import service as alert_service

    names = dict(session.execute(select(Unit.id, Unit.name)).all())
    open_alerts = alert_service.list_(session=session, actor=actor, state="open", limit=200)
    taken = [
        a
        for a in alert_service.list_(session=session, actor=actor, state="acknowledged", limit=100)
        if a.acknowledged_at is not None and now - a.acknowledged_at <= timedelta(hours=24)
    ]
    acting = actor.role in alert_service.ACTING_ROLES
    for alert in (
        sorted(
            open_alerts,
            key=lambda a: (_SEVERITY_RANK.get(a.severity, 3), -a.created_at.timestamp()),
        )
        + taken
    ):
        escalates = (
            _age((alert.escalate_at - now).total_seconds())
            if alert.escalate_at is not None and alert.escalate_at > now
            else None
        )
        page.alerts.append(
            {
                "id": alert.id,
                "severity": alert.severity,
                "state": alert.state,
                "title": alert.title,
                "summary": alert.summary,
                "coverage": alert.coverage,
                "unit": names.get(alert.chain[alert.level], "?"),
                "level": alert.level,
                "age": _age((now - alert.created_at).total_seconds()),
                "escalates_in": escalates,
                "muted": bool(alert.silenced_by or alert.inhibited_by_alert_id),
                "can_ack": acting and alert.state == "open",
                "ack_note": alert.ack_note or "",
            }
        )
    red = sum(1 for a in open_alerts if a.severity == "red")
    page.alerts_note = (
        f"{len(open_alerts)} open ({red} red), {len(taken)} acknowledged in the last 24 h."
    )
    _ack_chart(session, actor, now, page)


def _ack_chart(session: Session, actor: Actor, now: datetime, page: JocPage) -> None:
    """Median minutes from an alert to its acknowledgement, per day the alert was raised."""
    from server.alerts_inbox import service as alert_service
    from server.alerts_inbox.models import Alert

    since = now - timedelta(days=ACK_CHART_DAYS)
    spans: dict[date, list[float]] = {}
    for alert in session.scalars(
        select(Alert).where(Alert.created_at >= since, Alert.acknowledged_at.is_not(None))
    ):
        if not alert_service.visible(actor, alert) or alert.acknowledged_at is None:
            continue
        minutes = (alert.acknowledged_at - alert.created_at).total_seconds() / 60
        spans.setdefault(alert.created_at.date(), []).append(minutes)
    days = [(now - timedelta(days=ACK_CHART_DAYS - 1 - i)).date() for i in range(ACK_CHART_DAYS)]
    medians = [float(statistics.median(spans[d])) if d in spans else 0.0 for d in days]
    page.ack_chart = charts.stacked_bars(
        [d.strftime("%d %b") for d in days],
        [("median minutes to acknowledge", medians)],
        title=f"Time to acknowledge (median per day, last {ACK_CHART_DAYS} days)",
        unit=" min",
    )


def joc_page(*, session: Session, actor: Actor, settings: Settings) -> JocPage:
    now = utcnow()
    page = JocPage(generated_at=now, audience=audience_for(actor))
    _alerts(session, actor, now, page)
    rows = _all_incidents(session, actor, now - timedelta(days=TREND_DAYS))
    _trend(rows, actor, now, page)
    _recent(session, actor, rows, now, page)
    _gaps(session, actor, settings, now, page)
    return page
