"""Devices: registered by their user, revocable by their user or an admin in one request."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.access.policy import Actor, Permission
from server.audit import service as audit
from server.db.base import utcnow
from server.devices.models import Device
from server.devices.schemas import DeviceCreate
from server.errors import ConflictError, NotFoundError

__all__ = ["get_or_raise", "list_", "register", "revoke"]


def list_(*, session: Session, actor: Actor) -> list[Device]:
    statement = select(Device).order_by(Device.registered_at)
    if not actor.may(Permission.MANAGE_DEVICES):
        statement = statement.where(Device.user_id == actor.user_id)
    return list(session.scalars(statement))


def get_or_raise(*, session: Session, device_id: uuid.UUID, actor: Actor) -> Device:
    device = session.get(Device, device_id)
    if device is None or not (
        device.user_id == actor.user_id or actor.may(Permission.MANAGE_DEVICES)
    ):
        raise NotFoundError(f"Device {device_id} does not exist or is not yours.")
    return device


def register(*, session: Session, device_in: DeviceCreate, actor: Actor) -> tuple[Device, bool]:
    """Register the caller's device; registering the same id again is a harmless resend."""
    existing = session.get(Device, device_in.id)
    if existing is not None:
        if existing.user_id != actor.user_id:
            raise ConflictError("This device id is registered to someone else.")
        if existing.revoked_at is not None:
            raise ConflictError(
                "This device was revoked; reinstall the app so it generates a new device id."
            )
        return existing, False
    device = Device(
        id=device_in.id, user_id=actor.user_id, name=device_in.name, platform=device_in.platform
    )
    session.add(device)
    session.flush()
    audit.record(
        session, actor=actor, action="device_registered", object_type="device", object_id=device.id
    )
    return device, True


def revoke(*, session: Session, device: Device, reason: str, actor: Actor) -> Device:
    if device.revoked_at is None:
        device.revoked_at = utcnow()
        device.revoked_by_user_id = actor.user_id
        device.revoke_reason = reason
        device.credential_version += 1
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="device_revoked",
            object_type="device",
            object_id=device.id,
            reason=reason,
        )
    return device
