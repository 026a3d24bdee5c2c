"""``vigil field`` end to end against the in-process app: init, report (offline), sync, status,
wipe; and its registration on the main ``vigil`` command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from mobile_sync.client.cli import FieldCliContext, field_app
from server.cli import app as vigil_app
from tests.seed import PASSWORD
from tests.sync.test_client_kit import (
    BASE,
    FaultyTransport,
    drop_request,
    server_reports,
    username,
)

pytestmark = pytest.mark.integration


class Field:
    """Runs ``vigil field …`` on one store, through a fault-free transport to the app."""

    def __init__(self, api: Any, store: Path) -> None:
        self.api = api
        self.store = store
        self.faults = FaultyTransport(api.http._transport)
        self.context = FieldCliContext(
            http=httpx.Client(transport=self.faults, base_url=BASE), sleep=lambda _: None
        )

    def __call__(self, *args: str, input: str | None = None, env: Any = None) -> Any:
        return CliRunner().invoke(
            field_app,
            [*args, "--store", str(self.store)],
            obj=self.context,
            input=input,
            env=env,
        )

    def init(self, who: str = "officer_a") -> Any:
        result = self("init", "--server", BASE, "--username", username(self.api, who),
                      input=f"{PASSWORD}\n")  # fmt: skip
        assert result.exit_code == 0, result.output
        return result


def test_init_report_sync_status_end_to_end(api, session, tmp_path):
    field = Field(api, tmp_path / "store.sqlite3")
    signed = field.init()
    assert "signed in as officer-a" in signed.output
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8" + b"z" * 90_000)
    field.faults.sent.clear()

    written = field(
        "report",
        "--category", "killing_of_civilians",
        "--lat", "5.75",
        "--lon", "20.12",
        "--occurred-at", "2026-11-20T06:30:00+01:00",
        "--narrative", "Two men killed at the market.",
        "--attach", str(photo),
        "--field", 'victims={"killed": {"best": 2}}',
    )  # fmt: skip
    assert written.exit_code == 0, written.output
    assert field.faults.sent == []  # `report` never touches the network
    report_id = written.output.split()[1]
    assert "1 unsent" in written.output

    before = field("status")
    assert before.exit_code == 0, before.output
    assert "ops: 1 unsent, 0 done" in before.output
    assert "attachments: 1 to upload (90002 bytes)" in before.output
    assert "clock offset: unknown" in before.output

    synced = field("sync")
    assert synced.exit_code == 0, synced.output
    assert "sync: completed" in synced.output
    assert "pushed: applied 1" in synced.output
    assert "90002/90002 bytes, complete" in synced.output
    assert server_reports(session, report_id) == 1

    after = field("status", "--json")
    assert after.exit_code == 0, after.output
    status = json.loads(after.output)
    assert status["ops"]["pending"] == 0
    assert status["ops"]["done"] == 1
    assert status["uploads"]["complete"] == 1
    assert status["last_sync_outcome"] == "completed"
    assert status["clock_offset_ms"] is not None
    assert status["needs_attention"] == []

    readable = field("status")
    assert "needs attention: 0" in readable.output
    assert "clock offset: " in readable.output and "unknown" not in readable.output


def test_sync_shows_what_needs_attention_and_exits_nonzero_when_offline(api, tmp_path):
    field = Field(api, tmp_path / "store.sqlite3")
    field.init()
    rejected = field(
        "report", "--category", "not_a_category", "--lat", "5.75", "--lon", "20.12",
        "--occurred-at", "2026-11-20T06:30:00Z",
    )  # fmt: skip
    assert rejected.exit_code == 0, rejected.output  # the server decides, not the device

    synced = field("sync")
    assert "pushed: applied 1" in synced.output  # quarantined for HQ, never refused
    status = field("status")
    assert "1 quarantined by HQ" in status.output
    assert "needs attention: 1" in status.output
    assert "quarantined [quarantined]: category" in status.output

    field.faults.arm("GET", "/sync/v1/hello", drop_request, times=100)
    offline = field("sync")
    assert offline.exit_code == 1
    assert "sync: offline" in offline.output


def test_the_password_can_come_from_the_environment(api, tmp_path):
    field = Field(api, tmp_path / "store.sqlite3")
    result = field("init", "--server", BASE, "--username", username(api, "officer_a"),
                   env={"VIGIL_FIELD_PASSWORD": PASSWORD})  # fmt: skip
    assert result.exit_code == 0, result.output


def test_a_wrong_password_is_a_clear_sign_in_error(api, tmp_path):
    field = Field(api, tmp_path / "store.sqlite3")
    result = field("init", "--server", BASE, "--username", username(api, "officer_a"),
                   "--password", "not it")  # fmt: skip
    assert result.exit_code == 5
    assert "Sign-in refused" in result.output


def test_reporting_before_init_says_what_to_do(api, tmp_path):
    field = Field(api, tmp_path / "store.sqlite3")
    result = field("report", "--category", "killing_of_civilians", "--lat", "5.75", "--lon",
                   "20.12", "--occurred-at", "2026-11-20T06:30:00Z")  # fmt: skip
    assert result.exit_code == 2
    assert "vigil field init" in result.output


def test_a_time_without_zone_is_refused(api, tmp_path):
    field = Field(api, tmp_path / "store.sqlite3")
    field.init()
    result = field("report", "--category", "killing_of_civilians", "--lat", "5.75", "--lon",
                   "20.12", "--occurred-at", "2026-11-20T06:30:00")  # fmt: skip
    assert result.exit_code == 2
    assert "time zone" in result.output


def test_switching_user_with_unsent_reports_is_refused(api, tmp_path):
    field = Field(api, tmp_path / "store.sqlite3")
    field.init("officer_a")
    field("report", "--category", "killing_of_civilians", "--lat", "5.75", "--lon", "20.12",
          "--occurred-at", "2026-11-20T06:30:00Z")  # fmt: skip
    refused = field("init", "--server", BASE, "--username", username(api, "officer_b"),
                    "--password", PASSWORD)  # fmt: skip
    assert refused.exit_code == 2
    assert "must be sent first" in refused.output


def test_wipe_asks_for_yes_and_says_what_it_destroys(api, tmp_path):
    store = tmp_path / "store.sqlite3"
    field = Field(api, store)
    field.init()
    field("report", "--category", "killing_of_civilians", "--lat", "5.75", "--lon", "20.12",
          "--occurred-at", "2026-11-20T06:30:00Z")  # fmt: skip

    unconfirmed = field("wipe")
    assert unconfirmed.exit_code == 2
    assert "1 UNSENT" in unconfirmed.output
    assert store.exists()

    confirmed = field("wipe", "--yes")
    assert confirmed.exit_code == 0
    assert "1 unsent op(s) destroyed" in confirmed.output
    assert not store.exists()


def test_vigil_field_is_part_of_the_vigil_command(tmp_path):
    store = tmp_path / "store.sqlite3"
    result = CliRunner().invoke(
        vigil_app, ["field", "status"], env={"VIGIL_FIELD_STORE": str(store)}
    )
    assert result.exit_code == 0, result.output
    assert f"store: {store}" in result.output
    assert "account: none" in result.output


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="XDG layout is Linux's")
def test_the_default_store_is_in_the_user_data_directory(tmp_path):
    result = CliRunner().invoke(
        field_app, ["status"], env={"XDG_DATA_HOME": str(tmp_path), "VIGIL_FIELD_STORE": None}
    )
    assert result.exit_code == 0, result.output
    assert f"store: {tmp_path / 'vigil' / 'field' / 'store.sqlite3'}" in result.output
