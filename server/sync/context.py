"""The device a sync request comes from, as the views authenticated it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from server.access.policy import Actor
from server.devices.models import Device

__all__ = ["DeviceContext", "now_ms"]


@dataclass(frozen=True)
class DeviceContext:
    """The authenticated device, its user as an access-policy actor, and what the request said
    about the device clock."""

    device: Device
    actor: Actor
    device_time_ms: int
    device_uptime_ms: int
    boot_id: uuid.UUID
    server_received_ms: int


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)
