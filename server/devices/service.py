"""Devices: registered by their user, revocable by their user or an admin in one request."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.access.policy import Actor, Permission
from server.audit import service as audit
from server.db.base import utcnow
from server.devices.models import Device
from server.devices.schemas import DeviceCreate
from server.errors import AuthenticationError, ConflictError, DeviceRevokedError, NotFoundError

__all__ = [
    "authenticate",
    "get_or_raise",
    "issue_credential",
    "list_",
    "register",
    "revoke",
]


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


TOKEN_PREFIX = "vgd"  # noqa: S105 - the marker of device tokens, not a secret


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def issue_credential(*, session: Session, device: Device, actor: Actor) -> str:
    """A new sync credential for the device (the previous one stops working). Returned once:
    only its hash is kept."""
    if device.revoked_at is not None:
        raise ConflictError(
            "This device was revoked; register the reinstalled app as a new device."
        )
    secret = secrets.token_urlsafe(32)
    device.credential_hash = _secret_hash(secret)
    device.credential_issued_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="device_credential_issued",
        object_type="device",
        object_id=device.id,
    )
    return f"{TOKEN_PREFIX}.{device.id.hex}.{secret}"


def authenticate(*, session: Session, token: str) -> Device:
    """The device a sync credential belongs to. A revoked device raises DeviceRevokedError (its
    app must wipe); anything else wrong, AuthenticationError — the same for every case, so the
    answer reveals nothing about which devices exist."""
    failure = AuthenticationError(
        "The device credential is not valid; sign in on the device again."
    )
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise failure
    try:
        device_id = uuid.UUID(hex=parts[1])
    except ValueError:
        raise failure from None
    device = session.get(Device, device_id)
    if device is None or device.credential_hash is None:
        raise failure
    if not hmac.compare_digest(device.credential_hash, _secret_hash(parts[2])):
        raise failure
    if device.revoked_at is not None:
        raise DeviceRevokedError(
            "This device was revoked. Delete Vigil's data from it; reports it has not sent are "
            "listed by `vigil field status` before wiping."
        )
    if not device.user.is_active:
        raise failure
    device.last_seen_at = utcnow()
    return device
