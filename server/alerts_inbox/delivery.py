"""Delivering notifications, and the CAP 1.2 form of every alert.

A delivery reads the notification in one short transaction, sends it with no transaction open
(a slow webhook never holds a database lock), and records the outcome in a second one. If the
process dies after the send and before the record, the next attempt sends again with the same
idempotency key, which the receiver uses to drop the duplicate: at-least-once underneath,
exactly-once at the sink.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerts.cap import CapArea, CapInfo, CapMessage, to_xml
from geo import cells as geo_cells
from server.alerts_inbox.models import Alert, AlertChannel, AlertEvent, AlertNotification
from server.alerts_inbox.notifiers import (
    DeliveryOutcome,
    EmailNotifier,
    Notification,
    Notifier,
    Recipient,
    WebhookNotifier,
)
from server.db.session import read_only, transaction
from server.settings import Settings
from server.units.models import Unit

__all__ = [
    "MAX_ATTEMPTS",
    "DeliveryDeferredError",
    "alert_payload",
    "cap_message",
    "cap_xml",
    "deliver",
    "notifier_for",
]

log = logging.getLogger("vigil.alerts")

#: After this many failed attempts a notification is marked failed (and stays on the timeline).
MAX_ATTEMPTS = 8


class DeliveryDeferredError(RuntimeError):
    """The channel failed in a way a later attempt may fix; the job is retried."""


_CAP_MSG_TYPE = {"Alert": "Alert", "Update": "Update", "Ack": "Update", "Cancel": "Cancel"}


def cap_message(
    alert: Alert,
    *,
    settings: Settings,
    unit_code: str,
    msg_type: str = "Alert",
    now: datetime | None = None,
) -> CapMessage:
    """The alert as CAP 1.2: scope Restricted to the mission, the cell as the area (polygon and
    H3 geocode), urgency, severity and certainty from the rule. Text is the alert's title,
    summary and coverage sentence, which never carry narratives or names."""
    sent = (now or alert.updated_at).replace(microsecond=0)
    sender = settings.alerts.cap_sender
    cap_type = "Alert"
    references: tuple[str, ...] = ()
    if alert.state == "resolved":
        cap_type = "Cancel"
    elif msg_type != "Alert" or alert.count > 1 or alert.level > 0:
        cap_type = _CAP_MSG_TYPE.get(msg_type, "Update")
    if cap_type == "Alert":
        sent = alert.created_at.replace(microsecond=0)
    else:
        from alerts.cap import cap_time

        references = (
            f"{sender},{alert.cap_identifier},{cap_time(alert.created_at.replace(microsecond=0))}",
        )
    ring = tuple((lat, lng) for lng, lat in geo_cells.cell_boundary(alert.cell))
    area = CapArea(
        description=f"H3 cell {geo_cells.cell_to_string(alert.cell)} (AOR of {unit_code})",
        polygons=(ring,),
        geocodes=(("h3", geo_cells.cell_to_string(alert.cell)),),
    )
    description = alert.summary
    if alert.kind != "gap" and alert.coverage:
        description += " Coverage: " + alert.coverage
    parameters = [
        ("vigil-rule", alert.rule_id),
        ("vigil-severity", alert.severity),
        ("vigil-state", alert.state),
        ("vigil-level", str(alert.level)),
        ("vigil-count", str(alert.count)),
    ]
    if alert.category:
        parameters.append(("vigil-category", alert.category))
    info = CapInfo(
        event=alert.title.split(" — ")[0][:200] or alert.rule_id,
        urgency=alert.urgency,
        severity=alert.cap_severity,
        certainty=alert.certainty,
        headline=alert.title[:160],
        description=description,
        categories=("Security",),
        response_types=("Monitor",) if alert.state == "resolved" else ("Assess",),
        instruction=None,
        sender_name="Vigil",
        web=f"{settings.alerts.public_base_url.rstrip('/')}/api/v1/alerts/{alert.id}",
        parameters=tuple(parameters),
        areas=(area,),
    )
    return CapMessage(
        identifier=alert.cap_identifier
        if cap_type == "Alert"
        else f"{alert.cap_identifier}-{int(sent.timestamp())}",
        sender=sender,
        sent=sent,
        msg_type=cap_type,
        infos=(info,),
        status="Actual",
        scope="Restricted",
        restriction="Mission personnel with need to know",
        references=references,
        incidents=alert.cap_identifier,
    )


def cap_xml(alert: Alert, *, settings: Settings, unit_code: str, msg_type: str = "Alert") -> str:
    return to_xml(cap_message(alert, settings=settings, unit_code=unit_code, msg_type=msg_type))


def alert_payload(alert: Alert, settings: Settings) -> dict[str, Any]:
    """What a webhook receives about one alert: labels and counts, never narratives."""
    base = settings.alerts.public_base_url.rstrip("/")
    return {
        "id": alert.id,
        "cap_identifier": alert.cap_identifier,
        "rule": alert.rule_id,
        "kind": alert.kind,
        "severity": alert.severity,
        "state": alert.state,
        "level": alert.level,
        "title": alert.title,
        "summary": alert.summary,
        "coverage": alert.coverage,
        "cell": geo_cells.cell_to_string(alert.cell),
        "category": alert.category,
        "count": alert.count,
        "urgency": alert.urgency,
        "cap_severity": alert.cap_severity,
        "certainty": alert.certainty,
        "created_at": alert.created_at.isoformat(),
        "url": f"{base}/api/v1/alerts/{alert.id}",
        "cap_url": f"{base}/api/v1/alerts/{alert.id}.cap",
    }


#: One webhook notifier (one httpx client, its connection pool and TLS context) per process
#: and timeout: building a client per delivery cost more than the delivery (bench_alerts.py).
_WEBHOOKS: dict[float, WebhookNotifier] = {}


def notifier_for(kind: str, settings: Settings) -> Notifier:
    """The channel implementation for ``kind`` with the deployment's settings."""
    if kind == "webhook":
        timeout = settings.alerts.webhook_timeout_s
        if timeout not in _WEBHOOKS:
            _WEBHOOKS[timeout] = WebhookNotifier(timeout_s=timeout)
        return _WEBHOOKS[timeout]
    if kind == "email":
        alerts = settings.alerts
        if not alerts.smtp_host:
            raise DeliveryDeferredError(
                "e-mail channel configured but VIGIL_ALERTS_SMTP_HOST is not"
            )
        return EmailNotifier(
            host=alerts.smtp_host,
            port=alerts.smtp_port,
            sender=alerts.smtp_sender,
            starttls=alerts.smtp_starttls,
            username=alerts.smtp_username,
            password=alerts.smtp_password.get_secret_value() if alerts.smtp_password else None,
        )
    raise ValueError(f"no notifier for channel kind {kind!r}")


def _prepare(
    session: Session, notification: AlertNotification, settings: Settings
) -> tuple[Recipient, Notification] | None:
    channel = (
        session.get(AlertChannel, notification.channel_id) if notification.channel_id else None
    )
    if channel is None or not channel.enabled:
        return None
    unit = session.get(Unit, notification.unit_id)
    unit_code = unit.code if unit else str(notification.unit_id)
    alerts = list(
        session.scalars(
            select(Alert).where(Alert.id.in_(notification.alert_ids)).order_by(Alert.id)
        )
    )
    payload = {
        "idempotency_key": notification.idempotency_key,
        "msg_type": notification.msg_type,
        "unit": unit_code,
        "subject": notification.subject,
        "created_at": notification.created_at.isoformat(),
        "alerts": [alert_payload(a, settings) for a in alerts],
    }
    documents = tuple(
        (
            f"alert-{a.id}.cap.xml",
            cap_xml(a, settings=settings, unit_code=unit_code, msg_type=notification.msg_type),
        )
        for a in alerts
    )
    recipient = Recipient(
        channel=channel.kind, address=channel.address, unit_code=unit_code, secret=channel.secret
    )
    message = Notification(
        idempotency_key=notification.idempotency_key,
        msg_type=notification.msg_type,
        subject=notification.subject,
        text=notification.text,
        payload=payload,
        cap_documents=documents,
    )
    return recipient, message


def deliver(
    session_factory: sessionmaker[Session],
    notification_id: int,
    *,
    settings: Settings,
    now: Callable[[], datetime],
    notifier: Callable[[str], Notifier] | None = None,
) -> str:
    """Send one notification; returns ``delivered``, ``failed``, ``done`` (nothing to do) or
    raises :class:`DeliveryDeferredError` for the job to be retried."""
    with read_only(session_factory) as reader:
        notification = reader.get(AlertNotification, notification_id)
        if notification is None or notification.state != "pending":
            return "done"
        prepared = _prepare(reader, notification, settings)
        kind = notification.channel_kind
    if prepared is None:
        outcome = DeliveryOutcome(False, True, 0, "channel removed or disabled")
    else:
        channel_notifier = (notifier or (lambda k: notifier_for(k, settings)))(kind)
        outcome = channel_notifier.send(*prepared)
    with transaction(session_factory) as session:
        row = session.get(AlertNotification, notification_id)
        if row is None or row.state != "pending":
            return "done"  # another attempt recorded it meanwhile
        row.attempts += max(1, outcome.attempts)
        moment = now()
        if outcome.delivered:
            row.state = "delivered"
            row.delivered_at = moment
            row.last_error = None
            for alert in session.scalars(select(Alert).where(Alert.id.in_(row.alert_ids))):
                session.add(
                    AlertEvent(
                        alert_id=alert.id,
                        at=moment,
                        kind="delivered",
                        unit_id=row.unit_id,
                        detail={
                            "channel": kind,
                            "msg_type": row.msg_type,
                            "notification_id": row.id,
                            "attempts": row.attempts,
                        },
                    )
                )
                if alert.first_delivered_at is None or alert.first_delivered_at > moment:
                    alert.first_delivered_at = moment
            return "delivered"
        row.last_error = outcome.detail[:300]
        if outcome.permanent or row.attempts >= MAX_ATTEMPTS:
            row.state = "failed"
            for alert_id in row.alert_ids:
                session.add(
                    AlertEvent(
                        alert_id=alert_id,
                        at=moment,
                        kind="delivery_failed",
                        unit_id=row.unit_id,
                        detail={
                            "channel": kind,
                            "notification_id": row.id,
                            "detail": outcome.detail[:200],
                        },
                    )
                )
            log.warning("alert notification failed", extra={"notification": row.id})
            return "failed"
    raise DeliveryDeferredError(f"notification {notification_id}: {outcome.detail[:200]}")
