"""The alert inbox: /api/v1/alerts — my unit's and chain's alerts, acknowledge, resolve,
silences, rules, delivery channels, CAP 1.2 and time-to-act."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any
from xml.sax.saxutils import escape

from fastapi import APIRouter, Body, Query, Response, status
from pydantic import AwareDatetime
from sqlalchemy import select
from sqlalchemy.orm import Session

from geo import cells as geo_cells
from server.alerts_inbox import delivery, service
from server.alerts_inbox.models import Alert, AlertChannel, AlertRule, AlertSilence
from server.alerts_inbox.schemas import (
    AcknowledgementCreate,
    AlertDetail,
    AlertEventRead,
    AlertPage,
    AlertRead,
    ChannelCreate,
    ChannelRead,
    KpiRead,
    ResolutionCreate,
    RuleRead,
    SilenceCreate,
    SilenceRead,
)
from server.db.base import utcnow
from server.deps import AppSettings, CurrentActor, DbSession
from server.errors import NotFoundError, PermissionDeniedError, ValidationFailedError
from server.units.models import Unit
from server.users.enums import Role

router = APIRouter(prefix="/alerts", tags=["alerts"])

CAP_MEDIA_TYPE = "application/cap+xml"


def _codes(session: Session) -> dict[int, str]:
    return {u.id: u.code for u in session.scalars(select(Unit))}


def _read(alert: Alert, codes: dict[int, str]) -> AlertRead:
    return AlertRead(
        id=alert.id,
        cap_identifier=alert.cap_identifier,
        rule_id=alert.rule_id,
        kind=alert.kind,
        severity=alert.severity,
        urgency=alert.urgency,
        cap_severity=alert.cap_severity,
        certainty=alert.certainty,
        state=alert.state,
        title=alert.title,
        summary=alert.summary,
        coverage=alert.coverage,
        cell=geo_cells.cell_to_string(alert.cell),
        category=alert.category,
        labels=alert.labels,
        sensitive=alert.sensitive,
        count=alert.count,
        responsible_unit_id=alert.responsible_unit_id,
        responsible_unit=codes.get(alert.responsible_unit_id, "?"),
        level=alert.level,
        current_unit=codes.get(alert.chain[alert.level], "?") if alert.chain else "?",
        chain=[codes.get(u, "?") for u in alert.chain],
        also=[codes.get(u, "?") for u in alert.also_unit_ids],
        route_reason=alert.route_reason,
        escalate_at=alert.escalate_at,
        silenced_by=alert.silenced_by,
        inhibited_by_alert_id=alert.inhibited_by_alert_id,
        first_seen_at=alert.first_seen_at,
        last_seen_at=alert.last_seen_at,
        created_at=alert.created_at,
        first_delivered_at=alert.first_delivered_at,
        acknowledged_at=alert.acknowledged_at,
        acknowledged_by_user_id=alert.acknowledged_by_user_id,
        ack_note=alert.ack_note,
        resolved_at=alert.resolved_at,
        resolve_reason=alert.resolve_reason,
    )


def _detail(session: Session, alert: Alert) -> AlertDetail:
    base = _read(alert, _codes(session))
    events = [
        AlertEventRead(at=e.at, kind=e.kind, unit_id=e.unit_id, user_id=e.user_id, detail=e.detail)
        for e in service.timeline(session, alert)
    ]
    return AlertDetail(**base.model_dump(), timeline=events)


def _cursor(alert_id: int) -> str:
    return base64.urlsafe_b64encode(f"alert:{alert_id}".encode()).decode().rstrip("=")


def _after(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, number = text.partition(":")
        if kind != "alert":
            raise ValueError(kind)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailedError.on(
            "cursor", "not a cursor this list gave out; start again without it"
        ) from None


AwareQuery = Annotated[AwareDatetime | None, Query(description="ISO time with a zone")]
STATES = "^(open|acknowledged|resolved)$"
SEVERITIES = "^(red|amber|yellow)$"


@router.get("", response_model=AlertPage, summary="Alerts for my unit and chain, newest first")
def list_alerts(
    session: DbSession,
    actor: CurrentActor,
    state: Annotated[str | None, Query(pattern=STATES)] = None,
    severity: Annotated[str | None, Query(pattern=SEVERITIES)] = None,
    unit_id: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> AlertPage:
    alerts = service.list_(
        session=session,
        actor=actor,
        state=state,
        severity=severity,
        unit_id=unit_id,
        after_id=_after(cursor),
        limit=limit + 1,
    )
    codes = _codes(session)
    more = len(alerts) > limit
    items = alerts[:limit]
    return AlertPage(
        items=[_read(a, codes) for a in items],
        next_cursor=_cursor(items[-1].id) if more and items else None,
    )


@router.get("/kpis", response_model=list[KpiRead], summary="Time to act, per unit and severity")
def alert_kpis(session: DbSession, actor: CurrentActor, since: AwareQuery = None) -> list[KpiRead]:
    rows = service.kpis(session=session, actor=actor, since=since, now=utcnow())
    return [KpiRead(**row.__dict__) for row in rows]


@router.get(
    "/feed",
    summary="CAP feed (Atom) of the open alerts I may see",
    response_class=Response,
    responses={200: {"content": {"application/atom+xml": {}}}},
)
def alert_feed(session: DbSession, actor: CurrentActor, settings: AppSettings) -> Response:
    base = settings.alerts.public_base_url.rstrip("/")
    alerts = service.list_(session=session, actor=actor, state="open", limit=200)
    updated = max((a.updated_at for a in alerts), default=utcnow())
    entries = []
    for alert in alerts:
        entries.append(
            "<entry>"
            f"<id>urn:vigil:alert:{escape(alert.cap_identifier)}</id>"
            f"<title>{escape(alert.title)}</title>"
            f"<updated>{alert.updated_at.isoformat()}</updated>"
            f"<summary>{escape(alert.summary)}</summary>"
            f'<link rel="alternate" type="{CAP_MEDIA_TYPE}" '
            f'href="{escape(base)}/api/v1/alerts/{alert.id}.cap"/>'
            "</entry>"
        )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<id>urn:vigil:alerts:{escape(actor.username)}</id>"
        "<title>Vigil alerts</title>"
        f"<updated>{updated.isoformat()}</updated>"
        f'<link rel="self" href="{escape(base)}/api/v1/alerts/feed"/>'
        + "".join(entries)
        + "</feed>"
    )
    return Response(body, media_type="application/atom+xml")


# ------------------------------------------------------------------------------------ rules


def _rule_read(rule: AlertRule) -> RuleRead:
    return RuleRead(
        id=rule.id, version=rule.version, definition=rule.definition, updated_at=rule.updated_at
    )


RuleBody = Annotated[dict[str, Any], Body(description="A rule (see alerts.rules.parse_rule)")]


@router.get("/rules", response_model=list[RuleRead], summary="Alert rules")
def list_rules(session: DbSession, _actor: CurrentActor) -> list[RuleRead]:
    return [_rule_read(r) for r in service.list_rules(session=session)]


@router.post(
    "/rules",
    response_model=RuleRead,
    status_code=status.HTTP_201_CREATED,
    summary="Add an alert rule (admin)",
)
def create_rule(body: RuleBody, session: DbSession, actor: CurrentActor) -> RuleRead:
    return _rule_read(service.create_rule(session=session, definition=body, actor=actor))


@router.get("/rules/{rule_id}", response_model=RuleRead, summary="One alert rule")
def get_rule(rule_id: str, session: DbSession, _actor: CurrentActor) -> RuleRead:
    return _rule_read(service.get_rule_or_raise(session=session, rule_id=rule_id))


@router.put("/rules/{rule_id}", response_model=RuleRead, summary="Replace an alert rule (admin)")
def update_rule(rule_id: str, body: RuleBody, session: DbSession, actor: CurrentActor) -> RuleRead:
    return _rule_read(
        service.update_rule(session=session, rule_id=rule_id, definition=body, actor=actor)
    )


@router.delete(
    "/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a rule (admin)"
)
def delete_rule(rule_id: str, session: DbSession, actor: CurrentActor) -> Response:
    service.delete_rule(session=session, rule_id=rule_id, actor=actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --------------------------------------------------------------------------------- silences


def _silence_read(row: AlertSilence, now: datetime) -> SilenceRead:
    return SilenceRead(
        id=row.id,
        matchers=row.matchers,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        comment=row.comment,
        created_by=row.created_by,
        created_at=row.created_at,
        active=row.starts_at <= now < row.ends_at,
    )


@router.get("/silences", response_model=list[SilenceRead], summary="Silences")
def list_silences(
    session: DbSession, _actor: CurrentActor, active: bool = True
) -> list[SilenceRead]:
    now = utcnow()
    rows = service.list_silences(session=session, now=now, active_only=active)
    return [_silence_read(r, now) for r in rows]


@router.post(
    "/silences",
    response_model=SilenceRead,
    status_code=status.HTTP_201_CREATED,
    summary="Mute matching alerts for a while (who, why, until when)",
)
def create_silence(body: SilenceCreate, session: DbSession, actor: CurrentActor) -> SilenceRead:
    now = utcnow()
    row = service.create_silence(
        session=session,
        actor=actor,
        matchers=body.matchers,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        comment=body.comment,
        now=now,
    )
    return _silence_read(row, now)


@router.get("/silences/{silence_id}", response_model=SilenceRead, summary="One silence")
def get_silence(silence_id: int, session: DbSession, _actor: CurrentActor) -> SilenceRead:
    return _silence_read(
        service.get_silence_or_raise(session=session, silence_id=silence_id), utcnow()
    )


@router.delete("/silences/{silence_id}", response_model=SilenceRead, summary="End a silence now")
def expire_silence(silence_id: int, session: DbSession, actor: CurrentActor) -> SilenceRead:
    now = utcnow()
    row = service.expire_silence(session=session, silence_id=silence_id, actor=actor, now=now)
    return _silence_read(row, now)


# --------------------------------------------------------------------------------- channels


def _channel_read(row: AlertChannel) -> ChannelRead:
    return ChannelRead(
        id=row.id,
        unit_id=row.unit_id,
        kind=row.kind,
        address=row.address,
        enabled=row.enabled,
        created_at=row.created_at,
    )


def _require_admin(actor: Any) -> None:
    if actor.role is not Role.ADMIN:
        raise PermissionDeniedError("Only administrators manage alert channels.")


@router.get("/channels", response_model=list[ChannelRead], summary="Delivery channels (admin)")
def list_channels(session: DbSession, actor: CurrentActor) -> list[ChannelRead]:
    _require_admin(actor)
    rows = session.scalars(select(AlertChannel).order_by(AlertChannel.id))
    return [_channel_read(r) for r in rows]


@router.post(
    "/channels",
    response_model=ChannelRead,
    status_code=status.HTTP_201_CREATED,
    summary="Add a webhook or e-mail channel to a unit (admin)",
)
def create_channel(body: ChannelCreate, session: DbSession, actor: CurrentActor) -> ChannelRead:
    _require_admin(actor)
    row = service.add_channel(
        session=session,
        unit_id=body.unit_id,
        kind=body.kind,
        address=body.address,
        secret=body.secret,
    )
    return _channel_read(row)


@router.delete(
    "/channels/{channel_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a delivery channel (admin)",
)
def delete_channel(channel_id: int, session: DbSession, actor: CurrentActor) -> Response:
    _require_admin(actor)
    row = session.get(AlertChannel, channel_id)
    if row is None:
        raise NotFoundError(f"There is no channel {channel_id}.")
    session.delete(row)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------------------- one alert


@router.get(
    "/{alert_id}.cap",
    summary="The alert as CAP 1.2 XML",
    response_class=Response,
    responses={200: {"content": {CAP_MEDIA_TYPE: {}}}},
)
def alert_cap(
    alert_id: int, session: DbSession, actor: CurrentActor, settings: AppSettings
) -> Response:
    alert = service.get_or_raise(session=session, alert_id=alert_id, actor=actor)
    unit = session.get(Unit, alert.responsible_unit_id)
    xml = delivery.cap_xml(alert, settings=settings, unit_code=unit.code if unit else "?")
    return Response(xml, media_type=CAP_MEDIA_TYPE)


@router.get("/{alert_id}", response_model=AlertDetail, summary="One alert with its timeline")
def get_alert(alert_id: int, session: DbSession, actor: CurrentActor) -> AlertDetail:
    return _detail(session, service.get_or_raise(session=session, alert_id=alert_id, actor=actor))


@router.post(
    "/{alert_id}/acknowledgement",
    response_model=AlertDetail,
    summary="Acknowledge: someone is acting on it (stops the escalation)",
)
def acknowledge_alert(
    alert_id: int, body: AcknowledgementCreate, session: DbSession, actor: CurrentActor
) -> AlertDetail:
    alert = service.acknowledge(
        session=session, alert_id=alert_id, actor=actor, note=body.note, now=utcnow()
    )
    return _detail(session, alert)


@router.post("/{alert_id}/resolution", response_model=AlertDetail, summary="Resolve an alert")
def resolve_alert(
    alert_id: int, body: ResolutionCreate, session: DbSession, actor: CurrentActor
) -> AlertDetail:
    alert = service.resolve(
        session=session, alert_id=alert_id, actor=actor, reason=body.reason, now=utcnow()
    )
    return _detail(session, alert)
