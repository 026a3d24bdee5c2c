"""App upgrades with a pending outbox: a store of every shipped schema version is upgraded and
its outbox synced, byte for byte (SYNC.md §6 scenario 11, I1); a failed upgrade keeps the old
store and the app refuses to run on it (scenario 12, I11)."""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from mobile_sync.client import MigrationError, SyncOutcome, crash, migrations
from mobile_sync.client.cli import FieldCliContext, field_app
from server.reports.models import Report
from tests.seed import PASSWORD
from tests.sync.fixtures.client_stores import SHIPPED, USERNAME, StoreFixture
from tests.sync.test_client_kit import BASE, FaultyTransport, open_device_at

pytestmark = pytest.mark.integration


def _build(version: int, directory: Path) -> StoreFixture:
    return SHIPPED[version](directory / f"client_schema_v{version}.sqlite3")


@pytest.mark.parametrize("version", sorted(SHIPPED), ids=lambda v: f"schema-v{v}")
def test_a_store_of_every_shipped_version_upgrades_and_sends_its_outbox(
    api, session, tmp_path, version
):
    fixture = _build(version, tmp_path)
    device = open_device_at(fixture.path, FaultyTransport(api.http._transport), [])
    client = device.client

    assert client.store.schema_version == migrations.LATEST_VERSION
    assert [(e.device_seq, e.op_id, e.report_id, e.body) for e in client.outbox()] == fixture.ops
    # The credential in an old store may be stale: signing in again as the same user keeps the
    # device id the ops were written under.
    account = client.sign_in(BASE, USERNAME, PASSWORD)
    assert str(account.device_id) == fixture.device_id

    result = client.sync()

    assert result.outcome is SyncOutcome.COMPLETED, result.errors
    assert result.pushed == {"applied": len(fixture.ops)}
    assert {e.state for e in client.outbox()} == {"done"}
    for report_id in fixture.report_ids:
        report = session.scalars(select(Report).where(Report.id == uuid.UUID(report_id))).one()
        assert str(report.created_by_device_id) == fixture.device_id
        view = client.report(report_id)
        assert view is not None and view["server_version"] >= 1
    assert all(u.complete for u in result.uploads)
    assert len(result.uploads) == len(fixture.attachments)
    if version < migrations.LATEST_VERSION:
        assert migrations.backup_path(fixture.path, version).exists()


def test_a_failed_upgrade_keeps_the_old_store_and_the_app_refuses_it(
    api, session, tmp_path, monkeypatch
):
    fixture = _build(1, tmp_path)
    pristine = tmp_path / "pristine.sqlite3"
    shutil.copy(fixture.path, pristine)

    def broken_migration(point: str) -> None:
        if point == "mid_migration":
            raise RuntimeError("disk full")

    monkeypatch.setattr(crash, "hook", broken_migration)
    with pytest.raises(MigrationError, match="disk full"):
        open_device_at(fixture.path, FaultyTransport(api.http._transport), [])
    refused = CliRunner().invoke(
        field_app, ["status", "--store", str(fixture.path)], obj=FieldCliContext()
    )
    assert refused.exit_code == 3
    assert "left at schema 1" in refused.output

    with sqlite3.connect(fixture.path) as kept, sqlite3.connect(pristine) as before:
        dump = "SELECT op_id, device_seq, body, state FROM outbox ORDER BY device_seq"
        assert kept.execute(dump).fetchall() == before.execute(dump).fetchall()
        assert kept.execute("PRAGMA user_version").fetchone()[0] == 1

    monkeypatch.setattr(crash, "hook", None)  # the fixed app
    device = open_device_at(fixture.path, FaultyTransport(api.http._transport), [])
    device.client.sign_in(BASE, USERNAME, PASSWORD)
    assert device.client.sync().pushed == {"applied": len(fixture.ops)}
