"""Test kit for the sync protocol: a provisioned field device and op builders.

``SyncDevice`` speaks /sync/v1 by hand (no reference client), so server behaviour is tested
without the client's own retries in the way.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from mobile_sync.protocol.models import payload_sha256
from tests.api._builders import report_body

SYNC = "/sync/v1"


def provision(api: Any, username: str, *, name: str = "test phone") -> tuple[uuid.UUID, str]:
    """Register a device for ``username`` through the API and issue its sync credential."""
    device_id = uuid.uuid4()
    user = api.as_(username)
    registered = user.post(
        "/api/v1/devices", json={"id": str(device_id), "name": name, "platform": "test"}
    )
    assert registered.status_code == 201, registered.text
    issued = user.post(f"/api/v1/devices/{device_id}/credential")
    assert issued.status_code == 201, issued.text
    return device_id, issued.json()["token"]


@dataclass
class SyncDevice:
    http: Any
    device_id: uuid.UUID
    token: str
    boot_id: uuid.UUID = field(default_factory=uuid.uuid4)
    clock_skew_ms: int = 0
    next_seq: int = 1
    started: float = field(default_factory=time.monotonic)
    client_version: str = "1.0.0"

    @classmethod
    def for_user(cls, api: Any, username: str) -> SyncDevice:
        device_id, token = provision(api, username)
        return cls(api.http, device_id, token)

    def device_time_ms(self) -> int:
        return int(time.time() * 1000) + self.clock_skew_ms

    def uptime_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000) + 1_000_000

    def headers(self, **extra: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            "X-Device-Time-Ms": str(self.device_time_ms()),
            "X-Device-Uptime-Ms": str(self.uptime_ms()),
            "X-Boot-Id": str(self.boot_id),
            "X-Client-Version": self.client_version,
            **extra,
        }

    def op(
        self,
        kind: str,
        report_id: uuid.UUID | str,
        payload: dict[str, Any],
        *,
        base_version: int = 0,
        seq: int | None = None,
        op_id: uuid.UUID | None = None,
        device_time_ms: int | None = None,
    ) -> dict[str, Any]:
        if seq is None:
            seq = self.next_seq
            self.next_seq += 1
        return {
            "op_id": str(op_id or uuid.uuid4()),
            "device_id": str(self.device_id),
            "device_seq": seq,
            "report_id": str(report_id),
            "kind": kind,
            "base_version": base_version,
            "schema_version": 1,
            "device_time_ms": device_time_ms
            if device_time_ms is not None
            else self.device_time_ms(),
            "device_uptime_ms": self.uptime_ms(),
            "boot_id": str(self.boot_id),
            "payload": payload,
            "payload_sha256": payload_sha256(payload),
        }

    def create(self, **overrides: Any) -> dict[str, Any]:
        body = report_body(**overrides)
        report_id = body.pop("id")
        return self.op("create", report_id, body)

    def batch(
        self, ops: list[dict[str, Any]], batch_id: uuid.UUID | None = None, **extra: Any
    ) -> dict[str, Any]:
        return {
            "batch_id": str(batch_id or uuid.uuid4()),
            "device_id": str(self.device_id),
            "device_time_ms": self.device_time_ms(),
            "device_uptime_ms": self.uptime_ms(),
            "boot_id": str(self.boot_id),
            "client_version": self.client_version,
            "ops": ops,
            **extra,
        }

    def push_body(self, body: dict[str, Any], **headers: str) -> Any:
        raw = json.dumps(body).encode()
        return self.http.post(
            f"{SYNC}/push",
            content=raw,
            headers=self.headers(
                **{
                    "Idempotency-Key": body["batch_id"],
                    "Content-Type": "application/json",
                    **headers,
                }
            ),
        )

    def push(self, *ops: dict[str, Any]) -> list[dict[str, Any]]:
        response = self.push_body(self.batch(list(ops)))
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        return results

    def pull_all(
        self, cursor: str | None = None, limit: int = 200
    ) -> tuple[list[dict[str, Any]], str | None]:
        changes: list[dict[str, Any]] = []
        for _ in itertools.count():
            params: dict[str, Any] = {"limit": limit}
            if cursor:
                params["cursor"] = cursor
            response = self.http.get(f"{SYNC}/pull", params=params, headers=self.headers())
            assert response.status_code == 200, response.text
            page = response.json()
            changes += page["changes"]
            cursor = page["next_cursor"]
            if not page["has_more"]:
                return changes, cursor
        raise AssertionError("unreachable")
