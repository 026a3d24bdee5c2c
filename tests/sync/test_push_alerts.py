"""A pushed report enters the alert pipeline exactly as a REST one does, exactly once: the
outbox row is written in the push's transaction, and a replayed batch, a resent op or a
second push of the same report raises no second alert and counts the report once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api._builders import API
from tests.sync.kit import SyncDevice

pytestmark = pytest.mark.integration


@pytest.fixture
def device(api: Any) -> SyncDevice:
    return SyncDevice.for_user(api, "officer_a")


def _alerts(api: Any) -> list[dict[str, Any]]:
    return api.as_("admin").get(f"{API}/alerts?limit=500").json()["items"]


def test_a_pushed_flash_report_raises_one_alert_however_often_it_is_sent(
    api: Any, device: SyncDevice
) -> None:
    op = device.create(category="attack_on_protected_site")
    batch = device.batch([op])
    first = device.push_body(batch)
    assert first.status_code == 200 and first.json()["results"][0]["status"] == "applied"
    (alert,) = _alerts(api)
    assert alert["rule_id"] == "flash-attack-on-protected-site"
    assert alert["responsible_unit"] == "coy-a1-1" and alert["count"] == 1
    # The same batch again (a lost response), then the same op in a new batch.
    assert device.push_body(batch).status_code == 200
    results = device.push(op)
    assert results[0]["status"] == "duplicate"
    (again,) = _alerts(api)
    assert again["id"] == alert["id"] and again["count"] == 1


def test_a_second_report_of_the_same_threat_refreshes_the_alert(
    api: Any, device: SyncDevice
) -> None:
    device.push(device.create(category="attack_on_protected_site"))
    device.push(device.create(category="attack_on_protected_site"))
    (alert,) = _alerts(api)
    assert alert["count"] == 2
