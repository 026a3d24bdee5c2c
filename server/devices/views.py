"""Field devices: /api/v1/devices."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from server.deps import CurrentActor, DbSession
from server.devices import service
from server.devices.models import Device
from server.devices.schemas import DeviceCreate, DeviceCredential, DeviceRead, DeviceRevoke
from server.errors import PermissionDeniedError

router = APIRouter(prefix="/devices", tags=["devices"])


def _read(device: Device) -> DeviceRead:
    return DeviceRead(
        id=device.id,
        user_id=device.user_id,
        name=device.name,
        platform=device.platform,
        registered_at=device.registered_at,
        last_seen_at=device.last_seen_at,
        revoked_at=device.revoked_at,
        revoke_reason=device.revoke_reason,
    )


@router.get("", response_model=list[DeviceRead], summary="My devices (admins: all devices)")
def list_devices(session: DbSession, actor: CurrentActor) -> list[DeviceRead]:
    return [_read(d) for d in service.list_(session=session, actor=actor)]


@router.post(
    "",
    response_model=DeviceRead,
    status_code=status.HTTP_201_CREATED,
    summary="Register this device for the signed-in user",
    responses={200: {"model": DeviceRead, "description": "Already registered"}},
)
def register_device(
    body: DeviceCreate, session: DbSession, actor: CurrentActor, response: Response
) -> DeviceRead:
    device, created = service.register(session=session, device_in=body, actor=actor)
    if not created:
        response.status_code = status.HTTP_200_OK
    return _read(device)


@router.get("/{device_id}", response_model=DeviceRead, summary="One device")
def get_device(device_id: uuid.UUID, session: DbSession, actor: CurrentActor) -> DeviceRead:
    return _read(service.get_or_raise(session=session, device_id=device_id, actor=actor))


@router.post(
    "/{device_id}/revoke",
    response_model=DeviceRead,
    summary="Revoke a lost or seized device (its owner or an admin)",
)
def revoke_device(
    device_id: uuid.UUID, body: DeviceRevoke, session: DbSession, actor: CurrentActor
) -> DeviceRead:
    device = service.get_or_raise(session=session, device_id=device_id, actor=actor)
    return _read(service.revoke(session=session, device=device, reason=body.reason, actor=actor))


@router.post(
    "/{device_id}/credential",
    response_model=DeviceCredential,
    status_code=status.HTTP_201_CREATED,
    summary="Issue the device's sync credential (its owner; replaces any earlier one)",
)
def issue_credential(
    device_id: uuid.UUID, session: DbSession, actor: CurrentActor
) -> DeviceCredential:
    device = service.get_or_raise(session=session, device_id=device_id, actor=actor)
    if device.user_id != actor.user_id:
        raise PermissionDeniedError("Only the device's own user may issue its credential.")
    token = service.issue_credential(session=session, device=device, actor=actor)
    assert device.credential_issued_at is not None
    return DeviceCredential(token=token, issued_at=device.credential_issued_at)
