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
import uuid
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
from mobile_sync.client.outbox import AttentionItem, OutboxEntry
from mobile_sync.client.sync import SyncOutcome, SyncResult
from mobile_sync.client.tracks import PATROL_KINDS, read_track_file

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


# --------------------------------------------------------------------------- more ops


def _report_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a report id (a UUID)") from None


def _queue(ctx: typer.Context, store: Path | None, write: Callable[[FieldClient], Any]) -> Any:
    """Run one offline write; errors the officer can act on exit 2 (4 when revoked), and
    nothing is queued (each write is one local transaction)."""
    client = _open(ctx, store)
    try:
        return write(client), client.status().ops["pending"], {e.op_id: e for e in client.outbox()}
    except DeviceRevokedError as exc:
        _fail(str(exc), EXIT_REVOKED)
    except (FieldClientError, ValueError) as exc:
        _fail(str(exc), EXIT_USAGE)
    finally:
        client.close()


def _seq(entry: OutboxEntry) -> str:
    return f"op #{entry.device_seq} {entry.kind}"


@field_app.command("attach")
def attach(
    ctx: typer.Context,
    report_id: Annotated[str, typer.Argument(help="A report on this device.")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    media_type: Annotated[
        str | None, typer.Option(help="e.g. image/jpeg (default: guessed from the name).")
    ] = None,
    store: StoreOption = None,
) -> None:
    """Add a file to a report (offline; `vigil field sync` sends the manifest, then the file)."""
    target = _report_id(report_id)
    op_id, unsent, ops = _queue(
        ctx, store, lambda client: client.attach(target, file, media_type=media_type)
    )
    entry = ops[op_id]
    (item,) = json.loads(entry.body)["payload"]["attachments"]
    typer.echo(
        f"attachment {item['id']} ({file.name}, {item['size_bytes']} bytes, {item['media_type']}) "
        f"queued on report {target} as {_seq(entry)} ({unsent} unsent in the outbox)"
    )


@field_app.command("track")
def track(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="A .gpx or .geojson track."
        ),
    ],
    patrol_id: Annotated[
        str | None, typer.Option(help="Append to this patrol (default: a new patrol).")
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option(
            help=f"The patrol's kind: {', '.join(PATROL_KINDS)} (default: foot for a new "
            "patrol, the kind given before for one this device knows)."
        ),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Queue a patrol's GPS track from a GPX or GeoJSON file (offline)."""
    if kind is not None and kind not in PATROL_KINDS:
        raise typer.BadParameter(
            f"{kind!r}: use one of {', '.join(PATROL_KINDS)}", param_hint="--kind"
        )
    patrol = _report_id(patrol_id) if patrol_id else uuid.uuid4()
    try:
        fixes = read_track_file(file)
    except FieldClientError as exc:
        _fail(str(exc), EXIT_USAGE)

    def write(client: FieldClient) -> list[str]:
        # A patrol this device already tracked keeps its kind; a new one is a foot patrol
        # unless told otherwise.
        given = kind or (None if _knows_patrol(client, patrol) else "foot")
        return client.append_track(patrol, fixes, patrol=given)

    op_ids, unsent, ops = _queue(ctx, store, write)
    first, last = fixes[0].t.isoformat(), fixes[-1].t.isoformat()
    typer.echo(
        f"track of {len(fixes)} fix(es) ({first} to {last}) queued for patrol {patrol} in "
        f"{len(op_ids)} op(s) ({', '.join(_seq(ops[o]) for o in op_ids)}; {unsent} unsent "
        "in the outbox)"
    )


def _knows_patrol(client: FieldClient, patrol_id: uuid.UUID) -> bool:
    return any(e.report_id == str(patrol_id) and e.kind == "track_append" for e in client.outbox())


@field_app.command("note")
def note(
    ctx: typer.Context,
    report_id: Annotated[str, typer.Argument(help="A report on this device.")],
    text: Annotated[str, typer.Argument(help="The note (appended; notes are never edited).")],
    store: StoreOption = None,
) -> None:
    """Add a note to a report (offline)."""
    target = _report_id(report_id)
    if not text.strip() or len(text) > 10_000:
        _fail("a note is 1 to 10,000 characters", EXIT_USAGE)

    def write(client: FieldClient) -> str:
        client.require_report(target)
        return client.add_note(target, text)

    op_id, unsent, ops = _queue(ctx, store, write)
    typer.echo(
        f"note queued on report {target} as {_seq(ops[op_id])} ({unsent} unsent in the outbox)"
    )


@field_app.command("withdraw")
def withdraw(
    ctx: typer.Context,
    report_id: Annotated[str, typer.Argument(help="A report on this device.")],
    note: Annotated[str | None, typer.Option(help="Why it is withdrawn.")] = None,
    store: StoreOption = None,
) -> None:
    """Withdraw a report (offline; the server decides whether its state allows it)."""
    target = _report_id(report_id)

    def write(client: FieldClient) -> str:
        client.require_report(target)
        return client.withdraw(target, note)

    op_id, unsent, ops = _queue(ctx, store, write)
    typer.echo(
        f"withdrawal queued for report {target} as {_seq(ops[op_id])} ({unsent} unsent in the "
        "outbox)"
    )


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
    if status.sealed_wiped:
        typer.echo(
            f"sealed payloads: {status.sealed_wiped} wiped from this device after the server "
            "applied them"
        )
    for item in status.unsent:
        error = f" — last error: {item.last_error}" if item.last_error else ""
        target = "patrol" if item.kind == "track_append" else "report"
        typer.echo(
            f"  unsent #{item.device_seq} {item.kind} {target} {item.report_id} "
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
