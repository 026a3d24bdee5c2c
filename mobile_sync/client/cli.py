"""``vigil field``: the field client from a terminal (a laptop at a company operating base, or a
test). ``report`` never touches the network; ``sync`` sends and fetches when a link is up.

Exit status: 0 done; 1 sync incomplete (offline, or a phase stopped: run it again); 2 usage;
3 the store cannot be used (failed upgrade, newer app); 4 the device was revoked; 5 sign in
again; 75 another sync of this store is running.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer

from mobile_sync.client.client import AttachmentFile, FieldClient, FieldStatus
from mobile_sync.client.clock import DeviceClock
from mobile_sync.client.errors import (
    AccountSwitchRefusedError,
    DeviceRevokedError,
    FieldClientError,
    NotSignedInError,
    SignInError,
    StoreError,
)
from mobile_sync.client.outbox import AttentionItem
from mobile_sync.client.sync import SyncOutcome, SyncResult

__all__ = ["FieldCliContext", "default_store_path", "field_app"]

EXIT_INCOMPLETE = 1
EXIT_USAGE = 2
EXIT_STORE = 3
EXIT_REVOKED = 4
EXIT_SIGN_IN = 5
EXIT_BUSY = 75  # EX_TEMPFAIL: try again later

field_app = typer.Typer(
    help="The field client: write reports offline, sync them when a link is up.",
    no_args_is_help=True,
    add_completion=False,
)


@dataclass
class FieldCliContext:
    """What a caller may inject (``CliRunner.invoke(field_app, args, obj=...)``): the HTTP client
    (tests pass the in-process app's), the device clock and the backoff sleep."""

    http: httpx.Client | None = None
    clock: DeviceClock | None = None
    sleep: Callable[[float], None] | None = None


def default_store_path() -> Path:
    """``<user data dir>/vigil/field/store.sqlite3`` (XDG on Linux, Application Support on
    macOS, LOCALAPPDATA on Windows): data, not configuration, so not in the config dir."""
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "vigil" / "field" / "store.sqlite3"


StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        envvar="VIGIL_FIELD_STORE",
        help="The store file (default: in the user data directory).",
        show_default=False,
    ),
]


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _open(ctx: typer.Context, store: Path | None, **extra: Any) -> FieldClient:
    deps = ctx.obj if isinstance(ctx.obj, FieldCliContext) else FieldCliContext()
    try:
        return FieldClient(
            store or default_store_path(),
            http=deps.http,
            clock=deps.clock,
            sleep=deps.sleep or time.sleep,
            **extra,
        )
    except StoreError as exc:
        _fail(str(exc), EXIT_STORE)


# --------------------------------------------------------------------------- init


@field_app.command("init")
def init(
    ctx: typer.Context,
    server: Annotated[str, typer.Option(help="The Vigil server, e.g. https://vigil.example")],
    username: Annotated[str, typer.Option(help="Your Vigil user name.")],
    password: Annotated[
        str,
        typer.Option(
            envvar="VIGIL_FIELD_PASSWORD",
            prompt=True,
            hide_input=True,
            help="Asked for when not given (or set VIGIL_FIELD_PASSWORD).",
        ),
    ],
    device_name: Annotated[str | None, typer.Option(help="How admins will see this device.")] = (
        None
    ),
    store: StoreOption = None,
) -> None:
    """Sign in, register this device and keep its sync credential in the store."""
    client = _open(ctx, store)
    try:
        account = client.sign_in(server, username, password, device_name=device_name)
    except AccountSwitchRefusedError as exc:
        _fail(str(exc), EXIT_USAGE)
    except DeviceRevokedError as exc:
        _fail(str(exc), EXIT_REVOKED)
    except SignInError as exc:
        _fail(str(exc), EXIT_SIGN_IN)
    finally:
        client.close()
    typer.echo(f"signed in as {account.username} on {account.server_url}")
    typer.echo(f"device {account.device_id}; store {client.store.path}")


# --------------------------------------------------------------------------- report


def _utc_iso(text: str) -> str:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise typer.BadParameter("give the time zone, e.g. 2026-11-20T06:30:00Z or +01:00")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _extra_field(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"{text!r}: use KEY=JSON, e.g. perpetrator_type=militia")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value  # a bare word is a string


@field_app.command("report")
def report(
    ctx: typer.Context,
    category: Annotated[str, typer.Option(help="A taxonomy code, e.g. killing_of_civilians.")],
    lat: Annotated[float, typer.Option(min=-90, max=90, help="Latitude (WGS 84).")],
    lon: Annotated[float, typer.Option(min=-180, max=180, help="Longitude (WGS 84).")],
    occurred_at: Annotated[str, typer.Option(help="When it happened, ISO 8601 with zone.")],
    narrative: Annotated[str | None, typer.Option(help="What happened.")] = None,
    attach: Annotated[
        list[Path] | None,
        typer.Option(exists=True, dir_okay=False, readable=True, help="A file (repeatable)."),
    ] = None,
    time_precision: Annotated[str | None, typer.Option(help="exact, hour, day, ...")] = None,
    location_precision: Annotated[str | None, typer.Option(help="exact, settlement, ...")] = None,
    accuracy_m: Annotated[float | None, typer.Option(min=0, help="GPS accuracy.")] = None,
    place_name: Annotated[str | None, typer.Option()] = None,
    source_type: Annotated[str | None, typer.Option(help="witness, victim, ...")] = None,
    field: Annotated[
        list[str] | None, typer.Option(help="Any other report field as KEY=JSON (repeatable).")
    ] = None,
    store: StoreOption = None,
) -> None:
    """Write a report into the outbox (offline; `vigil field sync` sends it)."""
    body: dict[str, Any] = {
        "category": category,
        "occurred_at": _utc_iso(occurred_at),
        "location": {"type": "Point", "coordinates": [lon, lat]},
    }
    optional = {
        "narrative": narrative,
        "time_precision": time_precision,
        "location_precision": location_precision,
        "location_accuracy_m": accuracy_m,
        "place_name": place_name,
        "source_type": source_type,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    body.update(dict(_extra_field(item) for item in field or []))
    client = _open(ctx, store)
    try:
        report_id = client.create_report(body, [AttachmentFile(path) for path in attach or []])
        unsent = client.status().ops["pending"]
    except NotSignedInError as exc:
        _fail(str(exc), EXIT_USAGE)
    except DeviceRevokedError as exc:
        _fail(str(exc), EXIT_REVOKED)
    except (FieldClientError, ValueError) as exc:
        _fail(str(exc), EXIT_USAGE)
    finally:
        client.close()
    typer.echo(f"report {report_id} saved on this device ({unsent} unsent in the outbox)")
    for path in attach or []:
        typer.echo(f"  attachment {path.name} queued for upload")


# --------------------------------------------------------------------------- sync


def _print_result(result: SyncResult) -> None:
    typer.echo(f"sync: {result.outcome.value}")
    if result.pushed:
        counts = ", ".join(f"{status} {n}" for status, n in sorted(result.pushed.items()))
        typer.echo(f"  pushed: {counts}")
    typer.echo(
        f"  pulled: {result.pulled} change(s) in {result.pull_pages} page(s)"
        + (" (replacement sync)" if result.replacement else "")
    )
    for upload in result.uploads:
        state = "complete" if upload.complete else f"stopped: {upload.error}"
        typer.echo(
            f"  upload {upload.attachment_id}: {upload.offset}/{upload.length} bytes, {state} "
            f"({upload.stats.requests} requests, {upload.stats.bytes_sent} bytes sent)"
        )
    typer.echo(f"  unsent: {result.pending}")
    if result.update_required:
        typer.echo(f"  UPDATE REQUIRED: {result.update_required}")
    for item in result.needs_attention:
        typer.echo(f"  NEEDS ATTENTION: {_attention_line(item)}")
    for error in result.errors:
        typer.echo(f"  error: {error}")


def _attention_line(item: AttentionItem) -> str:
    what = f"{item.kind} op #{item.device_seq}" if item.item == "op" else f"attachment {item.id}"
    code = f" [{item.code}]" if item.code else ""
    return f"{what} on report {item.report_id}: {item.state}{code}: {item.reason}"


@field_app.command("sync")
def sync(ctx: typer.Context, store: StoreOption = None) -> None:
    """Send unsent reports, fetch changes and upload attachments (one full sync)."""

    def progress(attachment_id: str, offset: int, length: int) -> None:
        typer.echo(f"  uploading {attachment_id}: {offset}/{length} bytes")

    client = _open(ctx, store, on_upload_progress=progress)
    try:
        result = client.sync()
    except NotSignedInError as exc:
        _fail(str(exc), EXIT_USAGE)
    finally:
        client.close()
    _print_result(result)
    codes = {
        SyncOutcome.COMPLETED: 0,
        SyncOutcome.PARTIAL: EXIT_INCOMPLETE,
        SyncOutcome.OFFLINE: EXIT_INCOMPLETE,
        SyncOutcome.ALREADY_RUNNING: EXIT_BUSY,
        SyncOutcome.SIGN_IN_REQUIRED: EXIT_SIGN_IN,
        SyncOutcome.REVOKED: EXIT_REVOKED,
    }
    raise typer.Exit(codes[result.outcome])


# --------------------------------------------------------------------------- status


def _when(ms: int | None) -> str:
    if ms is None:
        return "never"
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def _print_status(status: FieldStatus) -> None:
    account = status.account
    typer.echo(f"store: {status.store_path} (schema {status.schema_version})")
    if account is None:
        typer.echo("account: none (vigil field init)")
    else:
        typer.echo(
            f"account: {account.username} on {account.server_url}, device {account.device_id}"
        )
    if status.revoked:
        typer.echo(f"REVOKED: {status.revoked}")
        typer.echo("  unsent reports kept until you run `vigil field wipe --yes`:")
    ops = status.ops
    typer.echo(
        f"ops: {ops['pending']} unsent, {ops['done']} done, {ops['conflict']} flagged for review, "
        f"{ops['rejected']} rejected, {ops['gone']} gone ({status.quarantined} quarantined by HQ)"
    )
    for item in status.unsent:
        error = f" — last error: {item.last_error}" if item.last_error else ""
        typer.echo(
            f"  unsent #{item.device_seq} {item.kind} report {item.report_id} "
            f"({item.attempts} attempt(s)){error}"
        )
    uploads = status.uploads
    typer.echo(
        f"attachments: {uploads['pending']} to upload ({status.upload_bytes_pending} bytes), "
        f"{uploads['complete']} uploaded, {uploads['failed']} failed"
    )
    typer.echo(f"pull cursor: {status.pull_cursor or 'none (everything will be pulled)'}")
    typer.echo(f"last sync: {_when(status.last_sync_ms)} ({status.last_sync_outcome or '-'})")
    if status.clock_offset_ms is not None:
        typer.echo(
            f"clock offset: {status.clock_offset_ms:+d} ms (server − device; "
            f"round trip {status.clock_rtt_ms} ms)"
        )
    else:
        typer.echo("clock offset: unknown (no exchange yet)")
    if status.update_required:
        typer.echo(f"UPDATE REQUIRED: {status.update_required}")
    typer.echo(f"needs attention: {len(status.needs_attention)}")
    for attention in status.needs_attention:
        typer.echo(f"  {_attention_line(attention)}")


@field_app.command("status")
def status(
    ctx: typer.Context,
    store: StoreOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """What is unsent, what needs attention, when the last sync ran, the clock offset."""
    client = _open(ctx, store)
    try:
        current = client.status()
    finally:
        client.close()
    if as_json:
        typer.echo(json.dumps(asdict(current), default=str, indent=2))
    else:
        _print_status(current)


# --------------------------------------------------------------------------- wipe


@field_app.command("wipe")
def wipe(
    ctx: typer.Context,
    store: StoreOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Really delete everything.")] = False,
) -> None:
    """Delete the store and its attachment copies, unsent reports included (after a revocation,
    or when handing the device over)."""
    client = _open(ctx, store)
    unsent = client.status().ops["pending"]
    if not yes:
        client.close()
        _fail(
            f"this deletes the store{f' and {unsent} UNSENT report change(s)' if unsent else ''}; "
            "run again with --yes",
            EXIT_USAGE,
        )
    destroyed = client.wipe()
    typer.echo(f"store deleted ({destroyed} unsent op(s) destroyed)")
