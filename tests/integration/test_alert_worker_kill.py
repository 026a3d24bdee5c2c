"""A real worker killed mid-job: ``vigil worker`` (rq, forking a work horse per job) is sent
SIGKILL while its delivery job waits on the webhook receiver, after the receiver has the
message. The notification stays pending in the database; the alert tick hands it to a new job;
a new worker sends it again with the same idempotency key; the receiver keeps one.

Needs its own committed database (the worker is another process), so it runs on PostgreSQL,
in a database of its own next to the test database.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from server.access.policy import actor_for
from server.alerts_inbox import service as alerts
from server.alerts_inbox.models import Alert, AlertEvent, AlertNotification
from server.auth.passwords import PasswordService
from server.db import migrate
from server.db.session import create_engine_for, transaction
from server.settings import HotspotSettings, QueueSettings, Settings
from server.units.models import Unit
from server.users.models import User
from server.worker import context as job_context
from server.worker import tasks
from server.worker.queue import RqQueue, install_after_commit_hook
from tests import seed
from tests.integration.test_alerts_flow import file_report
from tests.seed import POINT_A1_1
from tests.support.webhook_receiver import HOLD, WebhookReceiver

pytestmark = [pytest.mark.integration, pytest.mark.postgres_only, pytest.mark.redis]

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET = "kill-test-webhook-secret-0123456789"


def _libpq(url: str, database: str) -> str:
    return (
        make_url(url)
        .set(drivername="postgresql", database=database)
        .render_as_string(hide_password=False)
    )


@pytest.fixture
def own_database(tmp_path):
    base = os.environ["VIGIL_TEST_DATABASE_URL"]
    name = f"{make_url(base).database}_kill_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(_libpq(base, "postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(_libpq(base, name), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with psycopg.connect(_libpq(base, "postgres"), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (rq puts its work horse in a process group of its own, so
    killing the worker's group would leave the horse running)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_hard(process: subprocess.Popen[bytes]) -> None:
    for pid in [*_descendants(process.pid), process.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=10)


def _worker(env: dict[str, str], *, burst: bool, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "server", "worker", *(["--burst"] if burst else [])]
    with log.open("ab") as out:
        return subprocess.Popen(
            command,
            env=env,
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_a_worker_killed_mid_delivery_delivers_exactly_once_at_the_sink(
    own_database, tmp_path, settings
) -> None:
    redis_url = os.environ["VIGIL_TEST_REDIS_URL"]
    queue_name = f"vigil-kill-{uuid.uuid4().hex[:8]}"
    mine = Settings.load(
        data_dir=tmp_path,
        database={"url": own_database},
        auth=settings.auth,
        hotspots=HotspotSettings(windows_days=[30], background=False),
        queue=QueueSettings(redis_url=redis_url, queue_name=queue_name),
    )
    engine = create_engine_for(mine)
    migrate.upgrade(engine)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with transaction(factory) as session:
        mission = seed.build(session, mine, PasswordService(mine.auth))
    queue = RqQueue(redis_url, queue_name)
    install_after_commit_hook(factory, queue)
    job_context.configure(
        job_context.JobContext(settings=mine, session_factory=factory, queue=queue)
    )
    env = {
        **os.environ,
        "VIGIL_DATABASE_URL": own_database,
        "VIGIL_DATA_DIR": str(tmp_path),
        "VIGIL_REDIS_URL": redis_url,
        "VIGIL_QUEUE_NAME": queue_name,
        "VIGIL_HOTSPOT_BACKGROUND": "false",
    }
    log = tmp_path / "worker.log"
    try:
        with WebhookReceiver(secret=SECRET) as receiver:
            receiver.script(HOLD)
            with transaction(factory) as session:
                coy = session.scalar(select(Unit).where(Unit.code == "coy-a1-1"))
                assert coy is not None
                alerts.add_channel(
                    session=session,
                    unit_id=coy.id,
                    kind="webhook",
                    address=receiver.url,
                    secret=SECRET,
                )
                officer = session.scalar(
                    select(User).where(User.id == mission.users["officer_a"].id)
                )
                assert officer is not None
                file_report(
                    session,
                    actor_for(session, officer),
                    mine,
                    "attack_on_protected_site",
                    POINT_A1_1,
                )
            # The commit queued the drain on Redis; a real worker takes it, raises the alert
            # and its delivery job posts to the receiver, which holds the answer.
            worker = _worker(env, burst=False, log=log)
            receiver.wait_for(1, timeout=60)
            _kill_hard(worker)  # the worker and its work horse, mid-request
            receiver.release()
            with transaction(factory) as session:
                (notification,) = session.scalars(
                    select(AlertNotification).where(AlertNotification.channel_kind == "webhook")
                ).all()
                assert notification.state == "pending"  # sent, never recorded
                later = notification.created_at + timedelta(seconds=mine.alerts.redeliver_after_s)
            # The alert tick finds it pending and queues a delivery; a new worker runs it.
            tasks.alerts_tick((later + timedelta(seconds=1)).isoformat())
            second = _worker(env, burst=True, log=log)
            second.wait(timeout=60)
            receiver.wait_for(2, timeout=10)
            time.sleep(0.2)
        assert len(receiver.requests) == 2
        assert len(receiver.unique_keys()) == 1
        assert receiver.requests[1].duplicate and receiver.requests[1].signature_error is None
        with transaction(factory) as session:
            assert session.scalar(select(func.count()).select_from(Alert)) == 1
            (notification,) = session.scalars(
                select(AlertNotification).where(AlertNotification.channel_kind == "webhook")
            ).all()
            assert notification.state == "delivered"
            delivered = [
                e
                for e in session.scalars(select(AlertEvent).where(AlertEvent.kind == "delivered"))
                if e.detail.get("channel") == "webhook"
            ]
            assert len(delivered) == 1
            assert datetime.now(UTC) - notification.delivered_at < timedelta(minutes=5)
    finally:
        queue.rq_queue.empty()
        queue.alerts_rq_queue.empty()
        engine.dispose()
