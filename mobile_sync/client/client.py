"""The field client: what an app (or ``vigil field``) calls. It writes reports offline into the
store's outbox and syncs them when a link is up.

Accounts. A store belongs to one account at a time: a server, a user and the device the server
registered for that user (the server binds a device id to one user, so another user on the same
phone is another device, numbering its ops from 1). Signing in as someone else is **refused
while the current account has unsent ops or attachments**: they can only be sent under their own
credential, and dropping them would lose reports. Once everything is sent, the switch keeps the
previous account's outbox rows (history, needs-attention items) under its device id, removes its
local copies of server records (they were shown under the previous user's need-to-know) and
starts the new account with an empty view, cursor and seq 1.

Revocation. When the server says the device was revoked (``401 device_revoked``, or hello's
``device_status``), the client wipes what the server may hold for it: the credential, every
pulled record, the acknowledged and terminal ops and the local copies of uploaded attachments.
It **keeps the ops the server never acknowledged** (and their attachments), because wiping them
would silently lose reports (I1, I11): ``status`` lists them, and ``wipe()`` (``vigil field
wipe``) deletes the whole store once a person has decided to. A revoked store syncs no more and
takes no new reports.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import os
import platform
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from mobile_sync.client import crash, migrations, outbox, tracks
from mobile_sync.client.backoff import Backoff
from mobile_sync.client.clock import BootState, DeviceClock, Exchange, SystemClock, next_boot_state
from mobile_sync.client.errors import (
    AccountSwitchRefusedError,
    DeviceRevokedError,
    NotSignedInError,
    SignInError,
    UnknownReportError,
)
from mobile_sync.client.ids import new_attachment_id, new_report_id
from mobile_sync.client.outbox import AttentionItem, OutboxEntry
from mobile_sync.client.replica import local_view
from mobile_sync.client.store import Connector, Store, connect_plain, get_meta, set_meta
from mobile_sync.client.sync import SyncResult, run_sync
from mobile_sync.client.transport import CLIENT_VERSION, SyncHttp
from mobile_sync.protocol.models import OpKind

__all__ = ["Account", "AttachmentFile", "FieldClient", "FieldStatus", "UnsentItem"]

API = "/api/v1"

_ROLE_BY_MEDIA = {"image": "photo", "audio": "audio", "video": "video"}
#: What the server's manifest accepts (``AttachmentManifestItem.media_type``).
_MEDIA_TYPE = re.compile(r"[a-z]+/[a-zA-Z0-9.+-]+")

#: An attachment copied into the store: (attachment_id, copy, size, sha256 hex, media type, role).
_Copy = tuple[str, Path, int, str, str, str]


def _manifest_item(copy: _Copy) -> dict[str, Any]:
    """The manifest entry the server checks the uploaded bytes against."""
    attachment_id, _, size, sha256, media_type, role = copy
    return {
        "id": attachment_id,
        "media_type": media_type,
        "size_bytes": size,
        "sha256": sha256,
        "role": role,
    }


def _require_local_report(connection: Any, report_id: uuid.UUID) -> None:
    """An op on a report this device never had would only come back rejected (not found)."""
    row = connection.execute(
        "SELECT deleted, record IS NOT NULL OR local_fields NOT IN ('{}', '') OR "
        "acked_version > 0 FROM reports WHERE report_id = ?",
        (str(report_id),),
    ).fetchone()
    if row is None or not row[1]:
        raise UnknownReportError(
            f"No report {report_id} on this device: write it here first, or sync to fetch it "
            "(vigil field status lists what the device holds)."
        )
    if row[0]:
        raise UnknownReportError(f"Report {report_id} was removed by HQ; nothing can be added.")


@dataclass(frozen=True)
class Account:
    server_url: str
    username: str
    device_id: uuid.UUID
    signed_in: bool  # holds a credential


@dataclass(frozen=True)
class AttachmentFile:
    """A file to attach; media type and role are guessed from the name when not given."""

    path: Path
    media_type: str | None = None
    role: str | None = None


@dataclass(frozen=True)
class UnsentItem:
    op_id: str
    device_seq: int
    report_id: str
    kind: str
    attempts: int
    last_error: str | None


@dataclass
class FieldStatus:
    store_path: str
    schema_version: int
    account: Account | None
    revoked: str | None
    update_required: str | None
    ops: dict[str, int]
    quarantined: int
    unsent: list[UnsentItem]
    uploads: dict[str, int]
    upload_bytes_pending: int
    pull_cursor: str | None
    epoch: str | None
    last_sync_ms: int | None
    last_sync_outcome: str | None
    clock_offset_ms: int | None
    clock_rtt_ms: int | None
    needs_attention: list[AttentionItem] = field(default_factory=list)
    #: Sealed ops the server applied whose ciphertext is wiped from this device (still counted
    #: in ``ops`` as done or flagged: the op's header and result stay).
    sealed_wiped: int = 0


def _copy_and_hash(source: Path, target: Path) -> tuple[int, str]:
    """Copy into the store (the original may be moved before the upload) and hash what was
    written; fsynced so the manifest never announces bytes the device lost."""
    digest = hashlib.sha256()
    size = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open("rb") as reader, target.open("wb") as writer:
        for block in iter(lambda: reader.read(1 << 20), b""):
            digest.update(block)
            writer.write(block)
            size += len(block)
        writer.flush()
        os.fsync(writer.fileno())
    return size, digest.hexdigest()


class FieldClient:
    """A device's client over one store file.

    ``http`` is any ``httpx.Client`` whose base URL is the server (tests pass the in-process
    app's client); without one, a client for the account's server URL is made on first use.
    ``clock``, ``sleep`` and ``random`` are injectable so tests control time and jitter.
    """

    def __init__(
        self,
        store: Store | Path | str,
        *,
        http: httpx.Client | None = None,
        clock: DeviceClock | None = None,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] | None = None,
        max_attempts: int = 5,
        upload_attempts: int = 20,
        pull_limit: int = 200,
        client_version: str = CLIENT_VERSION,
        connector: Connector = connect_plain,
        on_upload_progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.store = store if isinstance(store, Store) else Store(store, connector=connector)
        self._http = http
        self._owns_http = False
        self.clock: DeviceClock = clock or SystemClock()
        self.sleep = sleep
        self.random = random
        self.max_attempts = max_attempts
        self.upload_attempts = upload_attempts
        self.pull_limit = pull_limit
        self.client_version = client_version
        self.on_upload_progress = on_upload_progress

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        if self._owns_http and self._http is not None:
            self._http.close()
        self.store.close()

    def __enter__(self) -> FieldClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def http(self) -> httpx.Client:
        if self._http is None:
            account = self._require_account()
            self._http = httpx.Client(
                base_url=account.server_url, timeout=httpx.Timeout(30.0, connect=15.0)
            )
            self._owns_http = True
        return self._http

    # ------------------------------------------------------------------ account

    def account(self) -> Account | None:
        with self.store.snapshot() as connection:
            server_url = get_meta(connection, "server_url")
            username = get_meta(connection, "username")
            device_id = get_meta(connection, "device_id")
            token = get_meta(connection, "token")
        if server_url is None or username is None or device_id is None:
            return None
        return Account(server_url, username, uuid.UUID(device_id), token is not None)

    def _require_account(self) -> Account:
        account = self.account()
        if account is None:
            raise NotSignedInError(
                f"No account in {self.store.path}: sign in first (vigil field init)."
            )
        return account

    def _refuse_if_revoked(self) -> None:
        reason = self.store.meta("revoked")
        if reason is not None:
            raise DeviceRevokedError(
                f"This device was revoked ({reason}). It keeps its unsent reports for you to "
                "see (vigil field status) until you wipe it (vigil field wipe)."
            )

    def unsent_count(self, device_id: str) -> int:
        with self.store.snapshot() as connection:
            ops = connection.execute(
                "SELECT count(*) FROM outbox WHERE device_id = ? AND state = 'pending'",
                (device_id,),
            ).fetchone()[0]
            files = connection.execute(
                "SELECT count(*) FROM attachments WHERE device_id = ? AND state = 'pending'",
                (device_id,),
            ).fetchone()[0]
        return int(ops) + int(files)

    def sign_in(
        self,
        server_url: str,
        username: str,
        password: str,
        *,
        device_name: str | None = None,
    ) -> Account:
        """Sign in, register this device for the user and store its sync credential. Signing in
        again as the same user keeps the device (a new credential replaces the old one)."""
        self._refuse_if_revoked()
        server_url = server_url.rstrip("/")
        current = self.account()
        switching = current is not None and (current.server_url, current.username) != (
            server_url,
            username,
        )
        if current is not None and switching:
            unsent = self.unsent_count(str(current.device_id))
            if unsent:
                raise AccountSwitchRefusedError(
                    f"{current.username}'s {unsent} unsent item(s) on {current.server_url} must "
                    f"be sent first: sign in as {current.username} if needed and run `vigil "
                    "field sync`. They can only be sent under their own account."
                )
        device_id = current.device_id if current is not None and not switching else uuid.uuid4()
        stale = self._http is not None and str(self._http.base_url).rstrip("/") != server_url
        if self._owns_http and self._http is not None and stale:
            self._http.close()  # made for the previous account's server
            self._http = None
        if self._http is None:
            self._http = httpx.Client(
                base_url=server_url, timeout=httpx.Timeout(30.0, connect=15.0)
            )
            self._owns_http = True
        token = self._register(username, password, device_id, device_name)
        with self.store.transaction() as connection:
            if current is None or switching:
                self._reset_account_state(connection)
            set_meta(connection, "server_url", server_url)
            set_meta(connection, "username", username)
            set_meta(connection, "device_id", str(device_id))
            set_meta(connection, "token", token)
        return Account(server_url, username, device_id, True)

    def _register(
        self, username: str, password: str, device_id: uuid.UUID, device_name: str | None
    ) -> str:
        http = self.http()
        try:
            login = http.post(
                f"{API}/auth/token", data={"username": username, "password": password}
            )
            if login.status_code != 200:
                raise SignInError(f"Sign-in refused: {_api_message(login)}")
            auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
            name = device_name or f"Vigil field client on {platform.node() or 'this device'}"
            registered = http.post(
                f"{API}/devices",
                json={
                    "id": str(device_id),
                    "name": name[:120],
                    "platform": f"{platform.system() or 'unknown'}-python"[:60],
                },
                headers=auth,
            )
            if registered.status_code not in (200, 201):
                raise SignInError(f"Device registration refused: {_api_message(registered)}")
            issued = http.post(f"{API}/devices/{device_id}/credential", headers=auth)
            if issued.status_code != 201:
                raise SignInError(f"No device credential issued: {_api_message(issued)}")
            return str(issued.json()["token"])
        except httpx.HTTPError as exc:
            raise SignInError(f"Cannot reach the server: {exc}") from exc

    def _reset_account_state(self, connection: Any) -> None:
        for key in (
            "next_device_seq",
            "pull_cursor",
            "epoch",
            "replacing",
            "update_required",
            "last_exchange",
            "last_sync_ms",
            "last_sync_outcome",
        ):
            set_meta(connection, key, None)
        set_meta(connection, "next_device_seq", 1)
        # The previous user's view of server records was theirs (need-to-know); their own ops
        # stay in the outbox under their device id.
        connection.execute("DELETE FROM reports")
        connection.execute("DELETE FROM replacement_seen")

    # ------------------------------------------------------------------ clocks

    def _boot(self, connection: Any) -> BootState:
        """The current boot, persisted with the write that uses it."""
        stored_id = get_meta(connection, "boot_id")
        stored_uptime = get_meta(connection, "boot_last_uptime_ms")
        previous = BootState(uuid.UUID(stored_id), int(stored_uptime or 0)) if stored_id else None
        state = next_boot_state(previous, self.clock)
        set_meta(connection, "boot_id", str(state.boot_id))
        set_meta(connection, "boot_last_uptime_ms", state.last_uptime_ms)
        return state

    def previous_exchange(self) -> Exchange | None:
        raw = self.store.meta("last_exchange")
        return Exchange.from_json(json.loads(raw)) if raw else None

    def _remember_exchange(self, exchange: Exchange) -> None:
        with self.store.transaction() as connection:
            set_meta(connection, "last_exchange", json.dumps(exchange.to_json()))

    def sync_http(self) -> SyncHttp:
        with self.store.transaction() as connection:
            boot = self._boot(connection)
        backoff = Backoff(random=self.random) if self.random is not None else Backoff()
        return SyncHttp(
            self.http(),
            token=lambda: self.store.meta("token") or "",
            clock=self.clock,
            boot_id=boot.boot_id,
            on_exchange=self._remember_exchange,
            sleep=self.sleep,
            backoff=backoff,
            max_attempts=self.max_attempts,
            client_version=self.client_version,
        )

    # ------------------------------------------------------------------ writing, offline

    def _write_op(
        self,
        kind: OpKind,
        report_id: uuid.UUID,
        payload: dict[str, Any],
        attachments: Sequence[_Copy] = (),
        *,
        require_report: bool = False,
    ) -> OutboxEntry:
        (entry,) = self._write_ops(
            [(kind, report_id, payload, attachments)], require_report=require_report
        )
        return entry

    def _write_ops(
        self,
        ops: Sequence[tuple[OpKind, uuid.UUID, dict[str, Any], Sequence[_Copy]]],
        *,
        require_report: bool = False,
    ) -> list[OutboxEntry]:
        """Write ops, their seqs, attachment rows and the local view change in one transaction
        (a track split into several ops is queued whole or not at all). ``require_report``:
        each op's report must be on this device (checked inside the transaction)."""
        self._refuse_if_revoked()
        account = self._require_account()
        entries = []
        with self.store.transaction() as connection:
            boot = self._boot(connection)
            for kind, report_id, payload, attachments in ops:
                if require_report:
                    _require_local_report(connection, report_id)
                row = connection.execute(
                    "SELECT max(server_version, acked_version) FROM reports WHERE report_id = ?",
                    (str(report_id),),
                ).fetchone()
                entry = outbox.append_op(
                    connection,
                    device_id=str(account.device_id),
                    report_id=report_id,
                    kind=kind,
                    payload=payload,
                    base_version=int(row[0]) if row else 0,
                    device_time_ms=self.clock.wall_ms(),
                    device_uptime_ms=boot.last_uptime_ms,
                    boot_id=boot.boot_id,
                )
                for attachment_id, path, size, sha256, media_type, role in attachments:
                    connection.execute(
                        "INSERT INTO attachments (attachment_id, report_id, device_id, op_id, "
                        "path, sha256, length, media_type, role, created_at_ms) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            attachment_id,
                            str(report_id),
                            str(account.device_id),
                            entry.op_id,
                            path.name,
                            sha256,
                            size,
                            media_type,
                            role,
                            self.clock.wall_ms(),
                        ),
                    )
                entries.append(entry)
        crash.point("after_local_write")
        return entries

    def _copy_attachment(self, item: Path | AttachmentFile) -> _Copy:
        """Copy a file into the store (hashed, fsynced) under a new attachment id."""
        spec = item if isinstance(item, AttachmentFile) else AttachmentFile(Path(item))
        source = Path(spec.path)
        if not source.is_file() or source.stat().st_size == 0:
            raise ValueError(f"{source} is not a non-empty file")
        media_type = (
            spec.media_type or mimetypes.guess_type(source.name)[0] or "application/octet-stream"
        )
        if not _MEDIA_TYPE.fullmatch(media_type):
            raise ValueError(f"{media_type!r} is not a media type (type/subtype)")
        role = spec.role or _ROLE_BY_MEDIA.get(media_type.split("/")[0], "document")
        attachment_id = str(new_attachment_id())
        target = self.store.files_dir / attachment_id
        size, sha256 = _copy_and_hash(source, target)
        return attachment_id, target, size, sha256, media_type, role

    def create_report(
        self,
        fields: Mapping[str, Any],
        attachments: Sequence[Path | AttachmentFile] = (),
    ) -> uuid.UUID:
        """Record a new report (a ReportCreate body without ``id``) and its attachments, offline.
        Returns the report id. Nothing touches the network."""
        self._refuse_if_revoked()
        self._require_account()
        report_id = new_report_id()
        payload = {k: v for k, v in fields.items() if k != "id"}
        copies: list[_Copy] = []
        try:
            for item in attachments:
                copies.append(self._copy_attachment(item))
            if copies:
                payload["attachments"] = [_manifest_item(copy) for copy in copies]
            self._write_op(OpKind.CREATE, report_id, payload, copies)
        except BaseException:
            # Nothing committed refers to the copies (or the write itself failed).
            if not self._op_exists_for(report_id):
                for _, target, *_rest in copies:
                    target.unlink(missing_ok=True)
            raise
        return report_id

    def _op_exists_for(self, report_id: uuid.UUID) -> bool:
        with self.store.snapshot() as connection:
            row = connection.execute(
                "SELECT 1 FROM outbox WHERE report_id = ? LIMIT 1", (str(report_id),)
            ).fetchone()
        return row is not None

    def set_fields(self, report_id: uuid.UUID, fields: Mapping[str, Any]) -> str:
        """Change fields of a report (a new op, even if an earlier edit is still unsent)."""
        return self._write_op(OpKind.SET_FIELDS, report_id, {"fields": dict(fields)}).op_id

    def add_note(self, report_id: uuid.UUID, text: str) -> str:
        payload = {"note_id": str(uuid.uuid4()), "text": text}
        return self._write_op(OpKind.ADD_NOTE, report_id, payload).op_id

    def transition_status(
        self, report_id: uuid.UUID, to_state: str, note: str | None = None
    ) -> str:
        payload = {"to_state": to_state, "note": note}
        return self._write_op(OpKind.TRANSITION_STATUS, report_id, payload).op_id

    def withdraw(self, report_id: uuid.UUID, note: str | None = None) -> str:
        return self._write_op(OpKind.WITHDRAW, report_id, {"note": note}).op_id

    def attach(
        self,
        report_id: uuid.UUID | str,
        path: Path | str,
        *,
        media_type: str | None = None,
        role: str | None = None,
    ) -> str:
        """Add a file to a report already on this device (an ``attach`` op with its manifest
        entry); the file is copied into the store and uploaded, resumably, once the server has
        acknowledged the op. Returns the op id. Nothing touches the network.

        Raises :class:`UnknownReportError` when the report is not on this device."""
        report_id = uuid.UUID(str(report_id))
        self._refuse_if_revoked()
        self._require_account()
        with self.store.snapshot() as connection:
            _require_local_report(connection, report_id)  # before copying a large file
        copy = self._copy_attachment(AttachmentFile(Path(path), media_type, role))
        try:
            payload = {"attachments": [_manifest_item(copy)]}
            entry = self._write_op(OpKind.ATTACH, report_id, payload, [copy], require_report=True)
        except BaseException:
            if not self._attachment_exists(copy[0]):
                copy[1].unlink(missing_ok=True)  # nothing committed refers to the copy
            raise
        return entry.op_id

    def require_report(self, report_id: uuid.UUID | str) -> None:
        """Raise :class:`UnknownReportError` unless the report is on this device (written
        here or pulled) and not removed by HQ."""
        with self.store.snapshot() as connection:
            _require_local_report(connection, uuid.UUID(str(report_id)))

    def _attachment_exists(self, attachment_id: str) -> bool:
        with self.store.snapshot() as connection:
            row = connection.execute(
                "SELECT 1 FROM attachments WHERE attachment_id = ?", (attachment_id,)
            ).fetchone()
        return row is not None

    def append_track(
        self,
        patrol_id: uuid.UUID | str,
        fixes: Iterable[Any],
        *,
        patrol: str | Mapping[str, Any] | None = None,
    ) -> list[str]:
        """Queue GPS fixes of a patrol (``track_append`` ops; the op's report id is the patrol
        id, and the server creates the patrol on its first append). ``fixes`` are
        ``(t, lon, lat[, accuracy_m])`` (or :class:`~mobile_sync.client.tracks.Fix`, or
        mappings with those keys) with ``t`` an aware datetime or ISO 8601 time; they are
        checked and sorted here. ``patrol`` is the patrol's kind (``"foot"``…) or a
        ``{"kind", "started_at"}`` mapping; left out, the kind this device gave the patrol
        before is used. A long track becomes several ops of :data:`tracks.FIXES_PER_OP` fixes,
        queued together or not at all. Returns the op ids.

        Raises :class:`InvalidTrackError` for fixes the server would refuse, ``ValueError``
        for a missing or unknown kind."""
        patrol_id = uuid.UUID(str(patrol_id))
        checked = tracks.normalise_fixes(fixes)
        start = self._patrol_start(patrol_id, patrol)
        chunks = [
            checked[i : i + tracks.FIXES_PER_OP]
            for i in range(0, len(checked), tracks.FIXES_PER_OP)
        ]
        ops = [
            (
                OpKind.TRACK_APPEND,
                patrol_id,
                {"patrol": start, "points": [tracks.fix_json(fix) for fix in chunk]},
                (),
            )
            for chunk in chunks
        ]
        return [entry.op_id for entry in self._write_ops(ops)]

    def _patrol_start(
        self, patrol_id: uuid.UUID, patrol: str | Mapping[str, Any] | None
    ) -> dict[str, Any]:
        if patrol is None:
            with self.store.snapshot() as connection:
                row = connection.execute(
                    "SELECT json_extract(body, '$.payload.patrol') FROM outbox "
                    "WHERE report_id = ? AND kind = ? ORDER BY device_seq DESC LIMIT 1",
                    (str(patrol_id), OpKind.TRACK_APPEND.value),
                ).fetchone()
            if row is None or row[0] is None:
                raise ValueError(
                    f"Patrol {patrol_id} is new to this device: say what kind of patrol it is "
                    f"({', '.join(tracks.PATROL_KINDS)})."
                )
            start: dict[str, Any] = json.loads(row[0])
            return start
        start = {"kind": patrol} if isinstance(patrol, str) else dict(patrol)
        if start.get("kind") not in tracks.PATROL_KINDS:
            raise ValueError(
                f"{start.get('kind')!r} is not a patrol kind ({', '.join(tracks.PATROL_KINDS)})"
            )
        unknown = set(start) - {"kind", "started_at"}
        if unknown:
            raise ValueError(f"patrol takes kind and started_at, not {sorted(unknown)}")
        started = start.get("started_at")
        if isinstance(started, datetime):
            if started.tzinfo is None:
                raise ValueError("patrol started_at needs a time zone")
            start["started_at"] = started.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return start

    def seal_update(
        self,
        report_id: uuid.UUID | str,
        sealed_blob: bytes,
        manifest: Mapping[str, Any],
        *,
        payload_version: int | None = None,
        parent_version: int | None = None,
    ) -> str:
        """Queue a new version of a report's sealed (end-to-end encrypted) payload. The device
        only carries the ciphertext (base64 in the op) and its manifest (algorithm, key ids,
        …: a JSON object the server stores as it is); sealing itself is a later issue.

        ``parent_version`` defaults to the newest sealed version this device wrote for the
        report and ``payload_version`` to one more (1 with no parent). Two versions from one
        parent are a fork the server keeps and flags for HQ. Returns the op id.

        Raises :class:`UnknownReportError` when the report is not on this device."""
        report_id = uuid.UUID(str(report_id))
        if not isinstance(sealed_blob, bytes | bytearray | memoryview) or not len(sealed_blob):
            raise ValueError("the sealed payload must be non-empty bytes")
        if not isinstance(manifest, Mapping):
            raise ValueError("the sealed payload's manifest must be a JSON object")
        manifest = json.loads(json.dumps(dict(manifest)))  # JSON-able, and copied as it is now
        if parent_version is None and payload_version is None:
            parent_version = self._latest_sealed_version(report_id)
        if payload_version is None:
            payload_version = (parent_version or 0) + 1
        if payload_version < 1 or (parent_version is not None and parent_version < 1):
            raise ValueError("sealed payload versions start at 1")
        payload = {
            "payload_version": payload_version,
            "parent_version": parent_version,
            "ciphertext_b64": base64.b64encode(bytes(sealed_blob)).decode("ascii"),
            "manifest": manifest,
        }
        return self._write_op(OpKind.SEAL_UPDATE, report_id, payload, require_report=True).op_id

    def _latest_sealed_version(self, report_id: uuid.UUID) -> int | None:
        with self.store.snapshot() as connection:
            row = connection.execute(
                "SELECT max(coalesce(json_extract(body, '$.payload.payload_version'), "
                "json_extract(body, '$.payload.sealed.payload_version'))) FROM outbox "
                "WHERE report_id = ? AND kind IN (?, ?) AND state NOT IN ('rejected', 'gone')",
                (str(report_id), OpKind.SEAL_UPDATE.value, OpKind.CREATE.value),
            ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    # ------------------------------------------------------------------ sync

    def sync(self) -> SyncResult:
        """One full sync (hello → push → pull → uploads); see ``sync.py``."""
        self._require_account()
        return run_sync(self)

    # Called by the sync while it runs; each is one small local transaction.

    def note_upload_offset(self, attachment_id: str, offset: int) -> None:
        with self.store.transaction() as connection:
            connection.execute(
                "UPDATE attachments SET uploaded_offset = ? WHERE attachment_id = ?",
                (offset, attachment_id),
            )

    def note_upload_error(self, attachment_id: str, error: str) -> None:
        with self.store.transaction() as connection:
            connection.execute(
                "UPDATE attachments SET attempts = attempts + 1, last_error = ? "
                "WHERE attachment_id = ?",
                (error[:500], attachment_id),
            )

    def fail_attachment(self, attachment_id: str, reason: str) -> None:
        with self.store.transaction() as connection:
            connection.execute(
                "UPDATE attachments SET state = 'failed', last_error = ? WHERE attachment_id = ?",
                (reason[:500], attachment_id),
            )

    def complete_attachment(self, attachment_id: str) -> None:
        with self.store.transaction() as connection:
            row = connection.execute(
                "SELECT path FROM attachments WHERE attachment_id = ?", (attachment_id,)
            ).fetchone()
            connection.execute(
                "UPDATE attachments SET state = 'complete', uploaded_offset = length, "
                "last_error = NULL WHERE attachment_id = ?",
                (attachment_id,),
            )
        # The server holds it, hash-checked: the device's copy only adds exposure (D3).
        if row is not None:
            (self.store.files_dir / row[0]).unlink(missing_ok=True)

    def apply_revocation(self, reason: str) -> None:
        """Wipe as the server asked, except what it never acknowledged (see the module doc)."""
        with self.store.transaction() as connection:
            set_meta(connection, "revoked", reason or "revoked by the server")
            set_meta(connection, "token", None)
            set_meta(connection, "pull_cursor", None)
            set_meta(connection, "last_exchange", None)
            connection.execute("DELETE FROM outbox WHERE state != 'pending'")
            files = [
                path
                for (path,) in connection.execute(
                    "SELECT path FROM attachments WHERE state != 'pending' OR op_id NOT IN "
                    "(SELECT op_id FROM outbox)"
                )
            ]
            connection.execute(
                "DELETE FROM attachments WHERE state != 'pending' OR op_id NOT IN "
                "(SELECT op_id FROM outbox)"
            )
            connection.execute(
                "DELETE FROM reports WHERE report_id NOT IN (SELECT report_id FROM outbox)"
            )
            connection.execute("UPDATE reports SET record = NULL, detail = NULL")
            connection.execute("DELETE FROM replacement_seen")
        for name in files:
            (self.store.files_dir / name).unlink(missing_ok=True)

    # ------------------------------------------------------------------ reading

    def report(self, report_id: uuid.UUID | str) -> dict[str, Any] | None:
        """A report as the device shows it: the server's copy with unsent changes on top."""
        with self.store.snapshot() as connection:
            row = connection.execute(
                "SELECT report_id, server_version, acked_version, detail, record, local_fields, "
                "deleted FROM reports WHERE report_id = ?",
                (str(report_id),),
            ).fetchone()
        return None if row is None else local_view(row)

    def reports(self) -> list[dict[str, Any]]:
        with self.store.snapshot() as connection:
            rows = connection.execute(
                "SELECT report_id, server_version, acked_version, detail, record, local_fields, "
                "deleted FROM reports ORDER BY report_id"
            ).fetchall()
        return [local_view(row) for row in rows]

    def outbox(self) -> list[OutboxEntry]:
        """Every op of the current account, oldest first."""
        account = self._require_account()
        with self.store.snapshot() as connection:
            rows = connection.execute(
                "SELECT op_id, device_id, device_seq, report_id, kind, body, state, attempts, "
                "last_error FROM outbox WHERE device_id = ? ORDER BY device_seq",
                (str(account.device_id),),
            ).fetchall()
        return [
            OutboxEntry(r[0], r[1], int(r[2]), r[3], r[4], bytes(r[5]), r[6], int(r[7]), r[8])
            for r in rows
        ]

    def needs_attention(self) -> list[AttentionItem]:
        account = self.account()
        if account is None:
            return []
        with self.store.snapshot() as connection:
            return outbox.needs_attention(connection, str(account.device_id))

    def status(self) -> FieldStatus:
        account = self.account()
        device_id = str(account.device_id) if account else ""
        with self.store.snapshot() as connection:
            counts = outbox.state_counts(connection, device_id)
            quarantined = connection.execute(
                "SELECT count(*) FROM outbox WHERE device_id = ? AND state = 'done' "
                "AND json_extract(result, '$.quarantined') = 1",
                (device_id,),
            ).fetchone()[0]
            unsent = [
                UnsentItem(r[0], int(r[1]), r[2], r[3], int(r[4]), r[5])
                for r in connection.execute(
                    "SELECT op_id, device_seq, report_id, kind, attempts, last_error FROM outbox "
                    "WHERE device_id = ? AND state = 'pending' ORDER BY device_seq",
                    (device_id,),
                )
            ]
            uploads = {"pending": 0, "complete": 0, "failed": 0}
            for state, count in connection.execute(
                "SELECT state, count(*) FROM attachments WHERE device_id = ? GROUP BY state",
                (device_id,),
            ):
                uploads[state] = int(count)
            pending_bytes = connection.execute(
                "SELECT coalesce(sum(length - uploaded_offset), 0) FROM attachments "
                "WHERE device_id = ? AND state = 'pending'",
                (device_id,),
            ).fetchone()[0]
            attention = outbox.needs_attention(connection, device_id)
            sealed_wiped = outbox.wiped_count(connection, device_id)
            meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
        exchange = (
            Exchange.from_json(json.loads(meta["last_exchange"]))
            if meta.get("last_exchange")
            else None
        )
        return FieldStatus(
            store_path=str(self.store.path),
            schema_version=self.store.schema_version,
            account=account,
            revoked=meta.get("revoked"),
            update_required=meta.get("update_required"),
            ops=counts,
            quarantined=int(quarantined),
            unsent=unsent,
            uploads=uploads,
            upload_bytes_pending=int(pending_bytes),
            pull_cursor=meta.get("pull_cursor"),
            epoch=meta.get("epoch"),
            last_sync_ms=int(meta["last_sync_ms"]) if "last_sync_ms" in meta else None,
            last_sync_outcome=meta.get("last_sync_outcome"),
            clock_offset_ms=exchange.offset_ms if exchange else None,
            clock_rtt_ms=exchange.rtt_ms if exchange else None,
            needs_attention=attention,
            sealed_wiped=sealed_wiped,
        )

    # ------------------------------------------------------------------ wipe

    def wipe(self) -> int:
        """Delete the whole store (database, attachment copies, backups). Returns how many
        unsent ops were destroyed with it; the caller asked a person first."""
        with self.store.snapshot() as connection:
            unsent = int(
                connection.execute(
                    "SELECT count(*) FROM outbox WHERE state = 'pending'"
                ).fetchone()[0]
            )
        path = self.store.path
        self.close()
        for suffix in ("", "-wal", "-shm", ".lock"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        for version in range(1, migrations.LATEST_VERSION + 1):
            migrations.backup_path(path, version).unlink(missing_ok=True)
        shutil.rmtree(path.with_name(path.name + ".files"), ignore_errors=True)
        return unsent


def _api_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    message = body.get("message") if isinstance(body, dict) else None
    return f"HTTP {response.status_code}: {message}" if message else f"HTTP {response.status_code}"
