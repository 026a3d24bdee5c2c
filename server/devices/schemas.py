"""Bodies of the devices endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class DeviceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: uuid.UUID = Field(description="The install id the device generated for itself.")
    name: str = Field(min_length=1, max_length=120, examples=["Patrol phone 3, COB Bambari"])
    platform: str = Field(min_length=1, max_length=60, examples=["android-14"])


class DeviceRevoke(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str = Field(min_length=3, max_length=500, examples=["Phone lost on patrol near Ippy"])


class DeviceRead(BaseModel):
    id: uuid.UUID
    user_id: int
    name: str
    platform: str
    registered_at: datetime
    last_seen_at: datetime | None
    revoked_at: datetime | None
    revoke_reason: str | None


class DeviceCredential(BaseModel):
    """The device's sync credential. Shown once: store it in the device's keystore."""

    token: str
    issued_at: datetime
