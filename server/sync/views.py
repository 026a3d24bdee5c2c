"""Offline sync: /sync/v1 (SYNC.md §4.2). Devices authenticate with their own credential
(``Authorization: Bearer vgd.…``) and say on every request what their clock reads.

A push body may come gzipped (``Content-Encoding: gzip``, advertised by hello's
``request_encodings``); it is decoded under the batch size limit before anything else reads it,
and the decoded bytes are the batch (see ``server.sync.encoding``)."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from pydantic import ValidationError
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from starlette.requests import ClientDisconnect

from mobile_sync.protocol.models import (
    PROTOCOL_VERSION,
    Hello,
    PullResponse,
    PushRequest,
    PushResponse,
    UploadBlocks,
)
from server.access.policy import actor_for
from server.deps import AppSettings, CurrentActor, DbSession
from server.devices import service as devices
from server.errors import (
    AuthenticationError,
    ClientTooOldError,
    IdempotencyKeyReusedError,
    MalformedRequestError,
    PayloadTooLargeError,
    UnsupportedContentEncodingError,
    UnsupportedMediaTypeError,
)
from server.reports import service as reports
from server.settings import Settings
from server.sync import encoding, service, uploads
from server.sync.models import SyncBatch
from server.sync.schemas import ReportHistory
from server.sync.service import DeviceContext, now_ms

router = APIRouter(prefix="/sync/v1", tags=["sync"])

TUS_VERSION = "1.0.0"
TUS_HEADERS = {"Tus-Resumable": TUS_VERSION}


def _int_header(name: str, value: str | None, *, minimum: int | None = None) -> int:
    if value is None:
        raise MalformedRequestError.on(f"header:{name}", "is required on every sync request")
    try:
        number = int(value)
    except ValueError:
        raise MalformedRequestError.on(f"header:{name}", "must be an integer") from None
    if minimum is not None and number < minimum:
        raise MalformedRequestError.on(f"header:{name}", f"must be at least {minimum}")
    return number


def get_device_context(
    request: Request,
    session: DbSession,
    authorization: Annotated[str | None, Header()] = None,
    x_device_time_ms: Annotated[str | None, Header()] = None,
    x_device_uptime_ms: Annotated[str | None, Header()] = None,
    x_boot_id: Annotated[str | None, Header()] = None,
) -> DeviceContext:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError("Sync needs the device's credential: Authorization: Bearer vgd…")
    device = devices.authenticate(session=session, token=token.strip())
    device_time = _int_header("X-Device-Time-Ms", x_device_time_ms)
    uptime = _int_header("X-Device-Uptime-Ms", x_device_uptime_ms, minimum=0)
    try:
        boot_id = uuid.UUID(x_boot_id or "")
    except ValueError:
        raise MalformedRequestError.on(
            "header:X-Boot-Id", "must be the device's boot UUID"
        ) from None
    actor = actor_for(session, device.user, getattr(request.state, "request_id", None))
    request.state.user_id = device.user_id
    request.state.actor = actor
    return DeviceContext(
        device=device,
        actor=actor,
        device_time_ms=device_time,
        device_uptime_ms=uptime,
        boot_id=boot_id,
        server_received_ms=now_ms(),
    )


CurrentDevice = Annotated[DeviceContext, Depends(get_device_context)]


async def read_push_body(
    request: Request,
    settings: AppSettings,
    content_encoding: Annotated[str | None, Header()] = None,
) -> bytes:
    """The push batch as the device wrote it: a gzip body decoded piece by piece as it arrives,
    and either kind held to ``max_batch_bytes`` (413 the moment it passes, nothing stored)."""
    limit = settings.sync.max_batch_bytes
    if encoding.request_coding(content_encoding) is None:
        body = await request.body()
        if len(body) > limit:
            raise encoding.batch_too_large(limit)
        return body
    decoder = encoding.CappedGunzip(limit)
    async for piece in request.stream():
        decoder.feed(piece)
    return decoder.finish()


PushBody = Annotated[bytes, Depends(read_push_body)]


@dataclass(frozen=True)
class ChunkBody:
    data: bytes
    #: False when the link dropped before the body was all there (ClientDisconnect, or fewer
    #: bytes than Content-Length).
    complete: bool


async def read_chunk_body(request: Request) -> ChunkBody:
    """An upload chunk, or as much of it as arrived: with block checksums the received prefix
    is still worth keeping (``uploads.write_prefix``)."""
    pieces: list[bytes] = []
    try:
        async for piece in request.stream():
            pieces.append(piece)
    except ClientDisconnect:
        return ChunkBody(b"".join(pieces), complete=False)
    data = b"".join(pieces)
    declared = request.headers.get("content-length", "")
    return ChunkBody(data, complete=not declared.isdigit() or len(data) >= int(declared))


UploadBody = Annotated[ChunkBody, Depends(read_chunk_body)]

#: What /hello and OPTIONS advertise: the block checksums a cut PATCH is kept by.
UPLOAD_BLOCKS = UploadBlocks(
    algorithms=list(uploads.BLOCK_ALGORITHMS),
    min_block_bytes=uploads.MIN_BLOCK_BYTES,
    max_blocks=uploads.MAX_BLOCKS,
)


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split("."):
        digits = "".join(c for c in part if c.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def require_current_client(settings: Settings, client_version: str | None) -> None:
    """426 for a client below the minimum version (hello and pull only: its push path stays
    open, so nothing is stranded on the device)."""
    if _version_tuple(client_version or "0") < _version_tuple(settings.sync.min_client_version):
        raise ClientTooOldError(
            f"This app is older than {settings.sync.min_client_version}. Update it: the update "
            "keeps every report you have not sent, and sending still works until then."
        )


@router.get("/hello", response_model=Hello, summary="Capabilities, limits and a clock probe")
def hello(
    session: DbSession,
    device: CurrentDevice,
    settings: AppSettings,
    x_client_version: Annotated[str | None, Header()] = None,
) -> Hello:
    require_current_client(settings, x_client_version)
    reply = service.hello(session, device, settings.sync)
    return reply.model_copy(update={"upload_blocks": UPLOAD_BLOCKS})


def _not_json(constant: str) -> None:
    # Python's json reads NaN and Infinity; JSON (and PostgreSQL's jsonb) has no such thing.
    raise ValueError(f"{constant} is not a JSON value")


def _body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _remember_batch(
    session: Session, device: DeviceContext, batch_id: uuid.UUID, body_sha256: str
) -> None:
    """The Idempotency-Key check: the same key with another body is a client bug (422).

    An upsert that locks the row and returns what the first copy stored: concurrent copies of
    one batch (a retry storm) queue on the row instead of failing on its unique key."""
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = module.insert(SyncBatch).values(
        batch_id=batch_id, device_id=device.device.id, body_sha256=body_sha256
    )
    stored = session.execute(
        statement.on_conflict_do_update(
            index_elements=["batch_id"], set_={"batch_id": SyncBatch.batch_id}
        ).returning(SyncBatch.body_sha256, SyncBatch.device_id)
    ).one()
    if stored.body_sha256 != body_sha256 or stored.device_id != device.device.id:
        raise IdempotencyKeyReusedError(
            "This Idempotency-Key was already used for a different batch. Resend a batch "
            "unchanged, or give a new batch a new key."
        )


@router.post(
    "/push",
    response_model=PushResponse,
    summary="Push a batch of operations; one result per operation",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PushRequest.model_json_schema()}},
        }
    },
)
def push(
    session: DbSession,
    device: CurrentDevice,
    # After the device: nothing is decoded for a request without a valid credential.
    body: PushBody,
    settings: AppSettings,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> PushResponse:
    if not idempotency_key:
        raise MalformedRequestError.on("header:Idempotency-Key", "is required (the batch_id)")
    try:
        envelope = json.loads(body, parse_constant=_not_json)
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise MalformedRequestError.on("body", f"is not valid JSON: {exc}") from None
    try:
        batch = PushRequest.model_validate(envelope)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise MalformedRequestError.on(field, str(first.get("msg"))) from None
    if str(batch.batch_id) != idempotency_key.strip():
        raise MalformedRequestError.on("header:Idempotency-Key", "must equal the body's batch_id")
    if batch.device_id != device.device.id:
        raise MalformedRequestError.on("device_id", "is not the device of this credential")
    if len(batch.ops) > settings.sync.max_batch_ops:
        raise PayloadTooLargeError(
            f"A push batch may hold at most {settings.sync.max_batch_ops} operations."
        )
    # Over the decoded bytes: a batch resent gzipped (or plain) is still the same batch.
    _remember_batch(session, device, batch.batch_id, _body_sha256(body))
    # JSON can carry a NUL character only as the escape \u0000: without one, no op holds it.
    may_hold_nul = b"\\u0000" in body
    return service.push(session, device, batch, settings, may_hold_nul=may_hold_nul)


@router.get("/pull", response_model=PullResponse, summary="Changes after a cursor")
def pull(
    session: DbSession,
    device: CurrentDevice,
    settings: AppSettings,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1)] = 200,
    x_client_version: Annotated[str | None, Header()] = None,
) -> PullResponse:
    require_current_client(settings, x_client_version)
    return service.pull(session, device, cursor, min(limit, settings.sync.pull_page_max))


@router.options("/uploads", summary="tus discovery", include_in_schema=False)
def upload_options(settings: AppSettings) -> Response:
    return Response(
        status_code=status.HTTP_204_NO_CONTENT,
        headers={
            **TUS_HEADERS,
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": "creation,checksum,expiration,block-checksum",
            "Tus-Checksum-Algorithm": "sha256",
            "Tus-Max-Size": str(settings.sync.max_attachment_bytes),
            # Vigil's block-checksum extension (mobile_sync/client/README.md).
            "Upload-Block-Algorithms": ",".join(UPLOAD_BLOCKS.algorithms),
            "Upload-Block-Min-Size": str(UPLOAD_BLOCKS.min_block_bytes),
            "Upload-Block-Max-Count": str(UPLOAD_BLOCKS.max_blocks),
        },
    )


def _upload_headers(state: uploads.UploadStatus) -> dict[str, str]:
    headers = {
        **TUS_HEADERS,
        "Upload-Offset": str(state.offset),
        "Upload-Length": str(state.length),
        "Location": f"/sync/v1/uploads/{state.attachment_id}",
    }
    if state.expires_at is not None:
        headers["Upload-Expires"] = state.expires_at.strftime("%a, %d %b %Y %H:%M:%S GMT")
    return headers


@router.post(
    "/uploads",
    status_code=status.HTTP_201_CREATED,
    summary="Start (or find) the upload of an attachment the report's manifest announced",
    response_class=Response,
)
def create_upload(
    session: DbSession,
    device: CurrentDevice,
    settings: AppSettings,
    upload_length: Annotated[str | None, Header()] = None,
    upload_metadata: Annotated[str | None, Header()] = None,
) -> Response:
    request = uploads.parse_metadata(upload_metadata, upload_length)
    state, created = uploads.create(session, device, settings, request)
    return Response(status_code=201 if created else 200, headers=_upload_headers(state))


@router.head("/uploads/{attachment_id}", summary="Where an upload stands", response_class=Response)
def upload_status(
    attachment_id: uuid.UUID, session: DbSession, device: CurrentDevice, settings: AppSettings
) -> Response:
    state = uploads.status(session, device, settings, attachment_id)
    return Response(status_code=200, headers=_upload_headers(state))


@router.patch(
    "/uploads/{attachment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Send the next chunk (Upload-Offset, Upload-Checksum: sha256 <base64>)",
    response_class=Response,
)
def upload_chunk(
    attachment_id: uuid.UUID,
    body: UploadBody,
    session: DbSession,
    device: CurrentDevice,
    settings: AppSettings,
    content_type: Annotated[str | None, Header()] = None,
    content_encoding: Annotated[str | None, Header()] = None,
    content_length: Annotated[str | None, Header()] = None,
    upload_offset: Annotated[str | None, Header()] = None,
    upload_checksum: Annotated[str | None, Header()] = None,
    upload_block_size: Annotated[str | None, Header()] = None,
    upload_block_checksums: Annotated[str | None, Header()] = None,
) -> Response:
    """A whole body is stored only if it matches ``Upload-Checksum``. A body cut short stores
    nothing (499), unless the PATCH carried block checksums: then its complete, matching blocks
    are kept and the device learns the new offset by HEAD (nobody is left to answer)."""
    if (content_encoding or "identity").strip().lower() != "identity":
        # Offsets and checksums count the file's bytes; a coded chunk would be stored coded.
        raise UnsupportedContentEncodingError(
            "Upload chunks are sent as they are, without a Content-Encoding.", accepted=()
        )
    if (content_type or "").split(";")[0].strip() != "application/offset+octet-stream":
        raise UnsupportedMediaTypeError(
            "Chunks are sent as Content-Type: application/offset+octet-stream."
        )
    offset = _int_header("Upload-Offset", upload_offset, minimum=0)
    checksum = uploads.parse_checksum(upload_checksum)
    declared = int(content_length) if content_length and content_length.isdigit() else None
    blocks = uploads.parse_block_checksums(
        upload_block_size, upload_block_checksums, content_length=declared
    )
    if not body.complete:
        if blocks is None:
            raise ClientDisconnect()  # as before block checksums: 499, nothing stored
        kept = uploads.write_prefix(
            session,
            device,
            settings,
            attachment_id=attachment_id,
            offset=offset,
            blocks=blocks,
            declared_length=declared,
            received=body.data,
        )
        # Returned, not raised, so that the kept blocks are committed; 499 in the access log.
        return Response(
            status_code=499, headers=_upload_headers(kept) if kept is not None else TUS_HEADERS
        )
    state = uploads.write_chunk(
        session,
        device,
        settings,
        attachment_id=attachment_id,
        offset=offset,
        checksum=checksum,
        chunk=body.data,
    )
    return Response(status_code=204, headers=_upload_headers(state))


@router.get(
    "/reports/{report_id}/history",
    response_model=ReportHistory,
    summary="A report's versions, conflict flags and the sync ops behind them (HQ)",
)
def report_history(report_id: uuid.UUID, session: DbSession, actor: CurrentActor) -> ReportHistory:
    report = reports.get_or_raise(session=session, report_id=report_id, actor=actor)
    return service.history(session, actor, report)


__all__ = ["PROTOCOL_VERSION", "router"]
