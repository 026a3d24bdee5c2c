"""Alert delivery end to end on real components: the report's outbox row, rq jobs on a real
Redis run by ``SimpleWorker`` in burst mode, a signed webhook received on loopback, e-mail to a
local SMTP server; and exactly-once at the sink when a job dies at the two places a kill can
land (before its transaction commits; after the send, before the delivery is recorded).
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from alerts import cap
from server.alerts_inbox import delivery
from server.alerts_inbox import service as alerts
from server.alerts_inbox.models import Alert, AlertEvent, AlertNotification, AlertOutbox
from server.worker import context as job_context
from server.worker import tasks
from server.worker.queue import RqQueue
from tests.integration.test_alerts_flow import file_report
from tests.seed import POINT_A1_1
from tests.support.smtp_sink import SmtpSink
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.integration

SECRET = "webhook-secret-for-tests-0123456789"


class InjectedKillError(Exception):
    """Stands for the process dying at this point: nothing after it runs in this job."""


@pytest.fixture
def rq_queue(session_factory, settings) -> Any:
    from redis import Redis

    redis_url = os.environ["VIGIL_TEST_REDIS_URL"]
    queue = RqQueue(redis_url, f"vigil-test-alerts-{uuid.uuid4().hex[:8]}")
    job_context.configure(
        job_context.JobContext(settings=settings, session_factory=session_factory, queue=queue)
    )
    yield queue
    queue.rq_queue.empty()
    queue.alerts_rq_queue.empty()
    Redis.from_url(redis_url).close()


def work(queue: RqQueue) -> None:
    from rq import SimpleWorker

    SimpleWorker(
        [queue.alerts_rq_queue, queue.rq_queue], connection=queue.rq_queue.connection
    ).work(burst=True)


def committed_report(session, actor_of, settings, mission, receiver_url: str, **kw) -> None:
    alerts.add_channel(
        session=session,
        unit_id=mission.unit_id("coy-a1-1"),
        kind="webhook",
        address=receiver_url,
        secret=SECRET,
    )
    file_report(
        session, actor_of("officer_a"), settings, "attack_on_protected_site", POINT_A1_1, **kw
    )
    session.commit()


@pytest.mark.redis
def test_report_to_signed_webhook_through_rq(
    session, settings, actor_of, mission, rq_queue
) -> None:
    canary = f"CANARY-{uuid.uuid4().hex}"
    with WebhookReceiver(secret=SECRET) as receiver:
        committed_report(session, actor_of, settings, mission, receiver.url, narrative=canary)
        rq_queue.enqueue(tasks.drain_alert_outbox)
        work(rq_queue)  # drain → deliver (enqueued by the drain after its commit)
        (request,) = receiver.wait_for(1)
    assert request.signature_error is None and request.status == 200
    body = json.loads(request.body)
    (sent,) = body["alerts"]
    assert sent["rule"] == "flash-attack-on-protected-site" and sent["state"] == "open"
    assert request.headers["idempotency-key"] == body["idempotency_key"]
    assert canary.encode() not in request.body
    notification = session.scalar(
        select(AlertNotification).where(AlertNotification.channel_kind == "webhook")
    )
    assert notification is not None and notification.state == "delivered"
    alert = session.get(Alert, sent["id"])
    assert alert is not None and alert.first_delivered_at is not None
    assert (
        session.scalar(
            select(func.count()).select_from(AlertOutbox).where(AlertOutbox.processed_at.is_(None))
        )
        == 0
    )


@pytest.mark.redis
def test_escalation_timer_is_on_rqs_scheduler(
    session, settings, actor_of, mission, rq_queue
) -> None:
    from rq.registry import ScheduledJobRegistry

    with WebhookReceiver(secret=SECRET) as receiver:
        committed_report(session, actor_of, settings, mission, receiver.url)
        rq_queue.enqueue(tasks.drain_alert_outbox)
        work(rq_queue)
    registry = ScheduledJobRegistry(queue=rq_queue.alerts_rq_queue)
    (job_id,) = registry.get_job_ids()
    job = rq_queue.alerts_rq_queue.fetch_job(job_id)
    alert = session.scalar(select(Alert))
    assert job.func_name == "server.worker.tasks.escalate_alert"
    assert job.args == (alert.id, 0)
    scheduled = registry.get_scheduled_time(job_id).replace(tzinfo=UTC)
    assert abs((scheduled - alert.escalate_at).total_seconds()) < 1
    # When the timer fires (its job run now with the deadline passed), the battalion is told.
    due = (alert.escalate_at + timedelta(seconds=1)).isoformat()
    assert tasks.escalate_alert(alert.id, 0, due) is True
    assert tasks.escalate_alert(alert.id, 0, due) is False  # a second run finds it moved on
    session.refresh(alert)
    assert alert.level == 1


@pytest.mark.redis
def test_a_drain_killed_before_commit_loses_and_duplicates_nothing(
    session, settings, actor_of, mission, rq_queue, monkeypatch
) -> None:
    with WebhookReceiver(secret=SECRET) as receiver:
        committed_report(session, actor_of, settings, mission, receiver.url)
        real_flush = alerts.flush_due_groups

        def dies(*args: Any, **kwargs: Any) -> Any:
            real_flush(*args, **kwargs)
            raise InjectedKillError("worker killed after raising the alert, before the commit")

        monkeypatch.setattr(alerts, "flush_due_groups", dies)
        rq_queue.enqueue(tasks.drain_alert_outbox)
        work(rq_queue)  # the job fails: its transaction rolls back
        assert session.scalar(select(func.count()).select_from(Alert)) == 0
        assert receiver.requests == []
        monkeypatch.setattr(alerts, "flush_due_groups", real_flush)
        rq_queue.enqueue(tasks.drain_alert_outbox)  # the retry (or the tick's poll)
        work(rq_queue)
        receiver.wait_for(1)
    assert session.scalar(select(func.count()).select_from(Alert)) == 1
    assert len(receiver.unique_keys()) == 1


@pytest.mark.redis
def test_a_delivery_killed_after_sending_is_sent_once_at_the_sink(
    session, settings, actor_of, mission, rq_queue, monkeypatch
) -> None:
    with WebhookReceiver(secret=SECRET) as receiver:
        committed_report(session, actor_of, settings, mission, receiver.url)
        real_transaction = delivery.transaction
        calls = {"n": 0}

        def dies_before_recording(factory: Any) -> Any:
            calls["n"] += 1
            raise InjectedKillError("worker killed after the webhook was sent, before recording it")

        monkeypatch.setattr(delivery, "transaction", dies_before_recording)
        rq_queue.enqueue(tasks.drain_alert_outbox)
        work(rq_queue)
        receiver.wait_for(1)
        assert calls["n"] == 1
        notification = session.scalar(
            select(AlertNotification).where(AlertNotification.channel_kind == "webhook")
        )
        assert notification is not None and notification.state == "pending"
        # The alert tick finds the notification still pending and hands it to a job again.
        monkeypatch.setattr(delivery, "transaction", real_transaction)
        later = notification.created_at + timedelta(seconds=settings.alerts.redeliver_after_s)
        tasks.alerts_tick(later.isoformat())
        work(rq_queue)
        receiver.wait_for(2)
    assert len(receiver.requests) == 2  # at least once underneath...
    assert len(receiver.unique_keys()) == 1  # ...exactly once at the sink
    assert receiver.requests[1].duplicate
    session.refresh(notification)
    assert notification.state == "delivered"
    delivered = session.scalars(select(AlertEvent).where(AlertEvent.kind == "delivered")).all()
    assert [e.detail["channel"] for e in delivered].count("webhook") == 1


def test_webhook_failure_is_retried_then_recorded(
    session, settings, actor_of, mission, session_factory, monkeypatch
) -> None:
    from server.alerts_inbox.notifiers import WebhookNotifier
    from tests.support.webhook_receiver import Fail

    monkeypatch.setattr(
        delivery, "notifier_for", lambda kind, _settings: WebhookNotifier(sleep=lambda _s: None)
    )
    job_context.configure(
        job_context.JobContext(settings=settings, session_factory=session_factory)
    )
    with WebhookReceiver(secret=SECRET) as receiver:
        receiver.script(*(Fail(503) for _ in range(4)))
        committed_report(session, actor_of, settings, mission, receiver.url)
        tasks.drain_alert_outbox()  # its own delivery attempt meets four 503s: deferred
        notification = session.scalar(
            select(AlertNotification).where(AlertNotification.channel_kind == "webhook")
        )
        assert notification is not None
        session.refresh(notification)
        assert (notification.state, notification.attempts) == ("pending", 4)
        assert notification.last_error and SECRET not in notification.last_error
        assert (
            delivery.deliver(
                session_factory, notification.id, settings=settings, now=lambda: datetime.now(UTC)
            )
            == "delivered"
        )
        assert (
            delivery.deliver(
                session_factory, notification.id, settings=settings, now=lambda: datetime.now(UTC)
            )
            == "done"
        )  # a second run finds it delivered and sends nothing
    assert len(receiver.requests) == 5 and len(receiver.unique_keys()) == 1
    session.refresh(notification)
    assert notification.state == "delivered"


def test_email_carries_the_cap_document(session, settings, actor_of, mission, session_factory):
    with SmtpSink() as sink:
        mail_settings = settings.model_copy(
            update={
                "alerts": settings.alerts.model_copy(
                    update={"smtp_host": "127.0.0.1", "smtp_port": sink.port}
                )
            }
        )
        job_context.configure(
            job_context.JobContext(settings=mail_settings, session_factory=session_factory)
        )
        alerts.add_channel(
            session=session,
            unit_id=mission.unit_id("coy-a1-1"),
            kind="email",
            address="ops-coy-a1-1@mission.example",
            secret=None,
        )
        canary = f"CANARY-{uuid.uuid4().hex}"
        file_report(
            session,
            actor_of("officer_a"),
            settings,
            "attack_on_protected_site",
            POINT_A1_1,
            narrative=canary,
        )
        session.commit()
        tasks.drain_alert_outbox()  # no queue: the drain delivers itself
        (message,) = sink.wait_for(1)
    assert message["To"] == "ops-coy-a1-1@mission.example"
    assert "[VIGIL RED]" in message["Subject"]
    (attachment,) = [p for p in message.iter_attachments()]
    document = cap.parse(attachment.get_content())
    assert document.scope == "Restricted" and document.msg_type == "Alert"
    (info,) = document.infos
    assert (info.urgency, info.severity, info.certainty) == ("Immediate", "Extreme", "Observed")
    alert = session.scalar(select(Alert))
    assert document.identifier == alert.cap_identifier
    assert canary not in message.as_string()
