"""SYNC.md §6 scenario 9: the server is SIGKILLed in the middle of a push. Nothing of the push
is acknowledged or stored; the device's retry of the same batch is applied once (I1, I2, I3).

The server is the deployed one (uvicorn in a subprocess) on a database that really commits. To
kill it at a known point, another connection holds a lock the push needs: on PostgreSQL the
change-log ordering lock, which a push takes as the last statement before COMMIT (every row of
the batch is written by then); on SQLite the database write lock, which the push waits for
before its first statement.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, make_url, select, text

from server.reports.models import Report
from server.sync import changes
from server.sync.models import SyncOp
from tests.sync.committed import CommittedServer, committed_server
from tests.sync.kit import SYNC, SyncDevice
from tests.sync.server_process import ServerProcess


@pytest.fixture
def committed(settings: Any, tmp_path: Path) -> Iterator[CommittedServer]:
    with committed_server(settings, tmp_path) as server:
        yield server


class _Blocker:
    """Holds, from its own connection, the lock a push will wait for."""

    def __init__(self, server: CommittedServer) -> None:
        self.server = server
        self.postgres = server.engine.dialect.name == "postgresql"
        self._pg: Any = None
        self._sqlite: sqlite3.Connection | None = None

    def hold(self) -> None:
        if self.postgres:
            self._pg = self.server.engine.connect()
            self._pg.begin()
            self._pg.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": changes.ORDERING_LOCK}
            )
        else:
            path = make_url(self.server.settings.database_url).database
            assert path
            self._sqlite = sqlite3.connect(path, isolation_level=None, timeout=30)
            self._sqlite.execute("BEGIN IMMEDIATE")

    def wait_for_push_to_block(self, timeout_s: float = 30.0) -> None:
        """PostgreSQL: until a backend of the server waits on the ordering lock. SQLite: there is
        no way to watch a writer wait, so give the request time to reach the lock."""
        if not self.postgres:
            time.sleep(1.5)
            return
        deadline = time.monotonic() + timeout_s
        with self.server.engine.connect() as watcher:
            while time.monotonic() < deadline:
                waiting = watcher.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND query LIKE '%pg_advisory_xact_lock%' AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
                if waiting:
                    return
                watcher.rollback()  # pg_stat_activity is a snapshot per transaction
                time.sleep(0.05)
        raise AssertionError(
            f"the push never reached the change-log lock ({self.server.settings.database_url})"
        )

    def release(self) -> None:
        if self._pg is not None:
            self._pg.rollback()
            self._pg.close()
        if self._sqlite is not None:
            self._sqlite.execute("ROLLBACK")
            self._sqlite.close()

    def wait_for_killed_backends(self, timeout_s: float = 30.0) -> None:
        """The killed server's PostgreSQL backend ends (rolling back) once it finds its client
        gone; only then is the outcome of its transaction settled."""
        if not self.postgres:
            return
        deadline = time.monotonic() + timeout_s
        with self.server.engine.connect() as watcher:
            while time.monotonic() < deadline:
                left = watcher.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND state <> 'idle' AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
                if not left:
                    return
                watcher.rollback()
                time.sleep(0.05)
        raise AssertionError("the killed server's transaction is still open")


def _push(base_url: str, device: SyncDevice, body: dict[str, Any]) -> httpx.Response:
    headers = device.headers(
        **{"Idempotency-Key": body["batch_id"], "Content-Type": "application/json"}
    )
    return httpx.post(
        f"{base_url}{SYNC}/push", content=json.dumps(body).encode(), headers=headers, timeout=60
    )


def _stored(server: CommittedServer, report_ids: list[str], op_ids: list[str]) -> tuple[int, int]:
    report_uuids = [uuid.UUID(r) for r in report_ids]
    op_uuids = [uuid.UUID(o) for o in op_ids]
    with server.session_factory() as session:
        reports = session.scalar(
            select(func.count()).select_from(Report).where(Report.id.in_(report_uuids))
        )
        ledger = session.scalar(
            select(func.count()).select_from(SyncOp).where(SyncOp.op_id.in_(op_uuids))
        )
    return int(reports or 0), int(ledger or 0)


def test_a_push_killed_before_commit_is_applied_once_on_retry(
    committed: CommittedServer, tmp_path: Path
) -> None:
    device = SyncDevice.for_user(committed.api, "officer_a")
    ops = [device.create() for _ in range(20)]
    body = device.batch(ops)
    report_ids = [op["report_id"] for op in ops]
    op_ids = [op["op_id"] for op in ops]

    first = ServerProcess(committed.settings.database_url, tmp_path)
    first.start()
    blocker = _Blocker(committed)
    blocker.hold()
    answer: dict[str, Any] = {}

    def send() -> None:
        try:
            answer["response"] = _push(first.base_url, device, body)
        except httpx.TransportError as exc:
            answer["error"] = exc

    sender = threading.Thread(target=send)
    sender.start()
    try:
        blocker.wait_for_push_to_block()
        first.kill()
    finally:
        blocker.release()
        sender.join(timeout=60)
        first.stop()
    assert "response" not in answer, "the device must not get an answer from a killed server"
    assert isinstance(answer.get("error"), httpx.TransportError)
    blocker.wait_for_killed_backends()
    assert _stored(committed, report_ids, op_ids) == (0, 0)  # nothing half-stored

    second = ServerProcess(committed.settings.database_url, tmp_path)
    second.start()
    try:
        retried = _push(second.base_url, device, body)  # the client resends, unchanged
        again = _push(second.base_url, device, body)
    finally:
        second.stop()
    assert retried.status_code == 200, retried.text
    assert [r["status"] for r in retried.json()["results"]] == ["applied"] * len(ops)
    assert [r["status"] for r in again.json()["results"]] == ["duplicate"] * len(ops)
    assert _stored(committed, report_ids, op_ids) == (len(ops), len(ops))
