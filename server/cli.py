"""The ``vigil`` command: every operator task, from the demo to migrations and imports."""

from __future__ import annotations

import os
import sys
import threading
import webbrowser
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import SecretStr, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select

from mobile_sync.client.cli import field_app
from server.access.policy import system_actor
from server.alerts_inbox.cli import alerts_app
from server.auth.passwords import PasswordService
from server.db import migrate
from server.db.session import create_engine_for, create_session_factory, is_sqlite, transaction
from server.errors import VigilError
from server.maps.cli import assets_app, map_command
from server.settings import Settings
from server.users.enums import Role

app = typer.Typer(
    help="Vigil: field incident reporting and protection-threat mapping.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
user_app = typer.Typer(help="Accounts.", no_args_is_help=True)
import_app = typer.Typer(
    help="Import conflict-event datasets as context reports.", no_args_is_help=True
)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
sync_app = typer.Typer(help="Offline sync with field devices (server side).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(import_app, name="import")
app.add_typer(audit_app, name="audit")
app.add_typer(field_app, name="field")
app.add_typer(sync_app, name="sync")
app.add_typer(assets_app, name="assets")
app.add_typer(alerts_app, name="alerts")
app.command("map")(map_command)

console = Console(stderr=True)


def _settings() -> Settings:
    try:
        return Settings.load()
    except ValidationError as exc:
        for error in exc.errors():
            console.print(f"[red]configuration error:[/red] {error['msg']}")
        raise typer.Exit(2) from None


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


# --------------------------------------------------------------------------- database


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration (creates the database on first use)."""
    settings = _settings()
    engine = create_engine_for(settings)
    migrate.upgrade(engine)
    console.print(f"database at revision {migrate.current_revision(engine)} (head)")


@db_app.command("current")
def db_current() -> None:
    """Show the database's schema revision and whether it is at head."""
    engine = create_engine_for(_settings())
    current, head = migrate.current_revision(engine), migrate.head_revision()
    console.print(f"current: {current}  head: {head}  {'(at head)' if current == head else ''}")
    if current != head:
        raise typer.Exit(1)


# --------------------------------------------------------------------------- serving


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Upgrade the schema before serving.")
    ] = True,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="API processes (PostgreSQL only): Python runs one request's work on one core, "
            "so a machine with several cores serves more with several processes.",
        ),
    ] = 1,
) -> None:
    """Serve the API (and in embedded mode run jobs in-process)."""
    import uvicorn

    from server.app import create_app

    settings = _settings()  # also writes the embedded secret key once, before any worker reads it
    if workers > 1 and is_sqlite(create_engine_for(settings)):
        raise _fail(
            "--workers needs PostgreSQL (VIGIL_DATABASE_URL): the embedded SQLite database "
            "takes one writer at a time"
        )
    if migrate_first:
        migrate.upgrade(create_engine_for(settings))
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": None,
        "proxy_headers": True,
        "forwarded_allow_ips": "*",
    }
    if workers == 1:
        uvicorn.run(create_app(settings), **options)
        return
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "server.app:app_from_environment", factory=True, workers=workers, **options
    )
    Multiprocess(config, sockets=[tcp_listener(config)]).run()


def tcp_listener(config: Any) -> Any:
    """The listening socket several uvicorn processes share, as ``config.bind_socket()`` makes
    it but created with ``proto=IPPROTO_TCP``.

    uvicorn binds it with proto 0; accepted sockets inherit that, and asyncio sets TCP_NODELAY
    only on sockets whose proto is IPPROTO_TCP. Nagle's algorithm then holds the end of each
    answer until the client's delayed ACK: ~40 ms on every keep-alive request after the first
    (uvicorn issue #3149; measured on sync pushes: batch p50 104-108 ms with two processes,
    59-63 ms with one, before this)."""
    import socket

    listener = config.bind_socket()
    if listener.family not in (socket.AF_INET, socket.AF_INET6):
        return listener  # a Unix socket: no Nagle
    tcp = socket.socket(listener.family, listener.type, socket.IPPROTO_TCP, listener.detach())
    tcp.set_inheritable(True)
    return tcp


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Exit when the queue is empty.")] = False,
    fork: Annotated[
        bool,
        typer.Option(
            "--fork/--no-fork",
            help="Run each job in a forked work horse (rq's default) instead of in the worker.",
        ),
    ] = False,
    queues: Annotated[
        str,
        typer.Option(
            help="Which queues, in priority order: alerts (the alert path), default (analysis: "
            "hotspots, coverage, AOR changes). Give the alert path a worker of its own with "
            "--queues alerts.",
        ),
    ] = "alerts,default",
) -> None:
    """Run an rq worker (with rq's scheduler) for VIGIL_REDIS_URL.

    Jobs run in the worker process by default (rq's SimpleWorker): its connection pool and
    SQLAlchemy's statement cache stay warm. A forked work horse per job starts cold every time;
    measured with benchmarks/bench_alerts.py, that made an alert drain 0.30 s instead of
    0.08 s and capped one worker at a few alerts per second. Run several workers for
    parallelism; ``--fork`` isolates each job in its own process instead.
    """
    from redis import Redis
    from rq import Queue, SimpleWorker, Worker

    from server.logs import configure_logging
    from server.worker import context

    settings = _settings()
    if not settings.queue.redis_url:
        raise _fail("VIGIL_REDIS_URL is not set: without Redis, jobs run inside `vigil serve`")
    configure_logging(settings.log_level)
    from server.worker.queue import RqQueue

    engine = create_engine_for(settings)
    jobs = RqQueue(settings.queue.redis_url, settings.queue.queue_name)
    context.configure(
        context.JobContext(
            settings=settings, session_factory=create_session_factory(engine), queue=jobs
        )
    )
    from server.worker.queue import alerts_queue_name

    connection = Redis.from_url(settings.queue.redis_url)
    queue = Queue(settings.queue.queue_name, connection=connection)
    alerts_queue = Queue(alerts_queue_name(settings.queue.queue_name), connection=connection)
    by_name = {"alerts": alerts_queue, "default": queue}
    chosen = [part.strip() for part in queues.split(",") if part.strip()]
    unknown = [name for name in chosen if name not in by_name]
    if unknown or not chosen:
        raise _fail(f"--queues takes alerts and/or default, not {', '.join(unknown) or 'nothing'}")
    listened = [by_name[name] for name in chosen]
    ticker = None
    if not burst:
        # Periodic jobs (hotspot recomputes, the alert tick) go on their queues at their
        # intervals. Several workers may run tickers: the fixed job ids keep one copy queued.
        from server.worker.schedule import Ticker, enqueue_on, periodic_jobs

        ticker = Ticker(periodic_jobs(settings), enqueue_on(queue, alerts_queue))
        ticker.start()
    from server.worker import tasks

    tasks.preload()
    try:
        worker_class = Worker if fork else SimpleWorker
        worker_class(listened, connection=connection).work(with_scheduler=True, burst=burst)
    finally:
        if ticker is not None:
            ticker.stop()


# --------------------------------------------------------------------------- users


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Argument(help="Login name (lower case).")],
    role: Annotated[Role, typer.Option(help="The user's role.")],
    unit: Annotated[str, typer.Option(help="Code of the user's unit, e.g. mission-hq.")],
    full_name: Annotated[str, typer.Option(help="Name shown to others.")] = "",
) -> None:
    """Create a user. The password is read from VIGIL_NEW_PASSWORD or asked for."""
    from server.units.models import Unit
    from server.users import service as users
    from server.users.schemas import UserCreate

    settings = _settings()
    password = os.environ.get("VIGIL_NEW_PASSWORD") or typer.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    engine = create_engine_for(settings)
    migrate.upgrade(engine)
    factory = create_session_factory(engine)
    try:
        with transaction(factory) as session:
            unit_id = session.scalar(select(Unit.id).where(Unit.code == unit))
            if unit_id is None:
                raise _fail(f"no unit with code {unit!r}")
            user = users.create(
                session=session,
                user_in=UserCreate(
                    username=username,
                    full_name=full_name or username,
                    role=role,
                    unit_id=unit_id,
                    password=SecretStr(password),
                ),
                actor=None,
                passwords=PasswordService(settings.auth),
            )
            console.print(f"created user {user.username} ({user.role.value}) in unit {unit}")
    except ValidationError as exc:
        raise _fail("; ".join(e["msg"] for e in exc.errors())) from None
    except VigilError as exc:
        raise _fail(exc.message) from None


# --------------------------------------------------------------------------- imports


def _run_import(dataset: str, file: Path, unit: str | None) -> None:
    from server.imports import service as imports
    from server.imports.acled import read_acled
    from server.imports.records import DatasetFormatError
    from server.imports.ucdp import read_ucdp

    settings = _settings()
    engine = create_engine_for(settings)
    migrate.upgrade(engine)
    reader = read_ucdp if dataset == "ucdp-ged" else read_acled
    try:
        rows = list(reader(file))
    except (DatasetFormatError, OSError) as exc:
        raise _fail(str(exc)) from None
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task(f"importing {file.name}", total=len(rows))
        try:
            result = imports.import_events(
                session_factory=create_session_factory(engine),
                dataset=dataset,
                rows=rows,
                actor=system_actor(f"import-{dataset}"),
                mission=settings.mission,
                unit_code=unit,
                progress=lambda n: bar.advance(task, n),
            )
        except ValueError as exc:
            raise _fail(str(exc)) from None
    console.print(
        f"{file.name}: {result.read} rows read — {result.imported} imported, "
        f"{result.updated} updated, {result.unchanged} already present, "
        f"{len(result.skipped)} skipped, {len(result.errors)} with errors"
    )
    for skipped in result.skipped[:20]:
        console.print(f"  skipped {skipped.position}: {skipped.reason}")
    for error in result.errors[:50]:
        console.print(f"  [yellow]bad row[/yellow] {error.message}")
    if len(result.errors) > 50:
        console.print(f"  … and {len(result.errors) - 50} more bad rows")


@import_app.command("ucdp")
def import_ucdp(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="UCDP GED GeoJSON or CSV."),
    ],
    unit: Annotated[
        str | None, typer.Option(help="Reporting unit code (default: the root).")
    ] = None,
) -> None:
    """Import UCDP GED events (idempotent on the event id)."""
    _run_import("ucdp-ged", file, unit)


@import_app.command("acled")
def import_acled(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="ACLED export, GeoJSON or CSV."
        ),
    ],
    unit: Annotated[
        str | None, typer.Option(help="Reporting unit code (default: the root).")
    ] = None,
) -> None:
    """Import ACLED events (idempotent on event_id_cnty)."""
    _run_import("acled", file, unit)


# --------------------------------------------------------------------------- hotspots


@app.command()
def hotspots(
    unit: Annotated[
        str | None, typer.Option(help="Unit code (default: the mission's root).")
    ] = None,
    resolution: Annotated[
        int | None, typer.Option(help="H3 resolution (default: finest the AOR allows).")
    ] = None,
    window: Annotated[int, typer.Option(help="Window in days before --as-of.")] = 30,
    as_of: Annotated[str | None, typer.Option(help="ISO date/time (default: now).")] = None,
    family: Annotated[list[str] | None, typer.Option(help="Only this family (repeatable).")] = None,
    audience: Annotated[
        str, typer.Option(help="full (every incident) or general (what non-protection roles see).")
    ] = "full",
    geojson: Annotated[Path | None, typer.Option(help="Also write the cells as GeoJSON.")] = None,
    top: Annotated[int, typer.Option(help="Rows in the table.")] = 20,
) -> None:
    """Show the threat picture of an area: hot cells, emerging patterns, surges, precursors."""
    import json
    from datetime import UTC, datetime

    from rich.table import Table

    from server.hotspots import service
    from server.units.models import Unit

    settings = _settings()
    if audience not in service.AUDIENCES:
        raise _fail("--audience must be full or general")
    moment = None
    if as_of:
        try:
            moment = datetime.fromisoformat(as_of)
        except ValueError:
            raise _fail(f"--as-of {as_of!r} is not an ISO date") from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    engine = create_engine_for(settings)
    migrate.upgrade(engine)
    with transaction(create_session_factory(engine)) as session:
        statement = (
            select(Unit).where(Unit.code == unit)
            if unit
            else select(Unit).where(Unit.parent_id.is_(None))
        )
        unit_obj = session.scalars(statement).first()
        if unit_obj is None:
            raise _fail(f"no unit with code {unit!r}" if unit else "the database has no units")
        aor = service.current_aor_for_unit(session, unit_obj)
        if aor is None:
            raise _fail(f"unit {unit_obj.code} has no area of responsibility")
        families = family or []
        try:
            chosen = resolution or service.default_resolution(
                session,
                aor,
                settings,
                sensitive_general=audience == service.GENERAL
                and service.is_sensitive_selection(service.selected_categories(families, [])),
            )
            result = service.picture(
                session=session,
                aor=aor,
                resolution=chosen,
                window_days=window,
                as_of=moment,
                audience=audience,
                settings=settings,
                families=families,
            )
        except VigilError as exc:
            raise _fail(exc.message) from None
    from geo import cells as geo_cells

    rows = sorted(result.rows, key=lambda r: (-abs(r["z_score"]), -r["count"]))
    table = Table(
        title=f"{unit_obj.name} — res {chosen}, {window} days to "
        f"{result.analysis_key['as_of']:%Y-%m-%d %H:%M} UTC ({result.source})"
    )
    for column in ("cell", "count", "intensity", "z", "class", "emerging", "surge", "precursor"):
        table.add_column(column, justify="left" if column in {"cell", "emerging"} else "right")
    for row in rows[:top]:
        table.add_row(
            geo_cells.cell_to_string(row["cell"]),
            str(row["count"]),
            f"{row['intensity']:.1f}",
            f"{row['z_score']:.2f}",
            f"{row['confidence']:+d}",
            row["emerging"],
            "yes" if row["surge_flag"] else "",
            f"{row['precursor_index']:.2f}",
        )
    Console().print(table)
    console.print(
        f"{result.incidents} incidents over {result.universe_cells} cells; "
        f"{sum(1 for r in rows if r['confidence'] > 0)} hot, "
        f"{sum(1 for r in rows if r['confidence'] < 0)} cold"
    )
    if geojson is not None:
        features = []
        for row in rows:
            ring = geo_cells.cell_boundary(row["cell"])
            properties = {**row, "cell": geo_cells.cell_to_string(row["cell"])}
            features.append(
                {
                    "type": "Feature",
                    "id": properties["cell"],
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                    "properties": properties,
                }
            )
        geojson.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
        console.print(f"wrote {len(features)} cells to {geojson}")


# --------------------------------------------------------------------------- gaps


@app.command()
def gaps(
    unit: Annotated[
        str | None, typer.Option(help="Unit code: its gaps and its subunits' (default: all).")
    ] = None,
    threat: Annotated[
        list[str] | None,
        typer.Option(help="Only gaps with this reason (repeatable): hot, emerging, surge, …"),
    ] = None,
    resolution: Annotated[
        int | None, typer.Option(help="H3 resolution (default: the coverage resolution).")
    ] = None,
    audience: Annotated[
        str, typer.Option(help="full (every incident) or general (what non-protection roles see).")
    ] = "full",
    top: Annotated[int, typer.Option(help="Rows in the table.")] = 20,
    geojson: Annotated[Path | None, typer.Option(help="Also write the gaps as GeoJSON.")] = None,
) -> None:
    """Show the protection gaps: threatened cells nobody has patrolled lately, ranked."""
    import json

    from rich.table import Table

    from geo import cells as geo_cells
    from geo.gaps import ThreatReason
    from server.coverage import service as coverage
    from server.hotspots.service import AUDIENCES
    from server.units import service as units_service
    from server.units.models import Unit

    settings = _settings()
    if audience not in AUDIENCES:
        raise _fail("--audience must be full or general")
    try:
        reasons = [ThreatReason.parse(name) for name in threat or []]
        chosen = coverage.check_resolution(settings, resolution, "--resolution")
    except (ValueError, VigilError) as exc:
        raise _fail(getattr(exc, "message", str(exc))) from None
    engine = create_engine_for(settings)
    migrate.upgrade(engine)
    with transaction(create_session_factory(engine)) as session:
        unit_ids = None
        if unit:
            unit_obj = session.scalars(select(Unit).where(Unit.code == unit)).first()
            if unit_obj is None:
                raise _fail(f"no unit with code {unit!r}")
            unit_ids = units_service.subtree_ids(session=session, unit=unit_obj)
        picture = coverage.gaps(
            session,
            settings=settings,
            resolution=chosen,
            audience=audience,
            unit_ids=unit_ids,
            reasons=reasons,
            limit=None,
        )
        codes = dict(session.execute(select(Unit.id, Unit.code)).all())
    table = Table(
        title=f"Protection gaps — res {chosen}, {picture.now:%Y-%m-%d %H:%M} UTC ({audience})"
    )
    for column in ("#", "cell", "score", "threat", "reasons", "uncovered h", "allowed h", "unit",
                   "sites"):  # fmt: skip
        table.add_column(
            column, justify="left" if column in {"cell", "reasons", "unit", "sites"} else "right"
        )
    for row in picture.rows[:top]:
        table.add_row(
            str(row.rank),
            geo_cells.cell_to_string(row.cell),
            f"{row.score:.0f}",
            f"{row.threat:g}",
            ",".join(row.reasons),
            "never" if row.last_presence_at is None else f"{row.hours_uncovered:.0f}",
            f"{row.allowed_hours:.0f}",
            codes.get(row.unit_id, "") if row.unit_id is not None else "",
            "; ".join(s.name for s in row.sites),
        )
    Console().print(table)
    console.print(
        f"{picture.total} gaps among {picture.threatened_cells} threatened cells; threat picture "
        + (
            f"as of {picture.threat_as_of:%Y-%m-%d %H:%M} UTC"
            if picture.threat_as_of
            else "not stored yet (the server or worker computes it): sites and flash incidents only"
        )
    )
    if geojson is not None:
        features = [
            {
                "type": "Feature",
                "id": geo_cells.cell_to_string(row.cell),
                "geometry": {"type": "Polygon", "coordinates": [geo_cells.cell_boundary(row.cell)]},
                "properties": {
                    "rank": row.rank,
                    "cell": geo_cells.cell_to_string(row.cell),
                    "score": row.score,
                    "threat": row.threat,
                    "reasons": row.reasons,
                    "exposure": row.exposure,
                    "hours_uncovered": row.hours_uncovered,
                    "allowed_hours": row.allowed_hours,
                    "last_presence_at": row.last_presence_at.isoformat()
                    if row.last_presence_at
                    else None,
                    "unit": codes.get(row.unit_id) if row.unit_id is not None else None,
                    "sites": [s.name for s in row.sites],
                },
            }
            for row in picture.rows
        ]
        geojson.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
        console.print(f"wrote {len(features)} gaps to {geojson}")


# --------------------------------------------------------------------------- audit


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the audit log's hash chain and report the first break, if any."""
    from server.audit import service as audit

    engine = create_engine_for(_settings())
    with transaction(create_session_factory(engine)) as session:
        broken = audit.verify_chain(session)
    if broken is not None:
        raise _fail(f"audit chain broken at event {broken.seq}: {broken.problem}")
    console.print("audit chain intact")


# --------------------------------------------------------------------------- sync


@sync_app.command("new-epoch")
def sync_new_epoch(
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: every device will re-download its reports.")
    ] = False,
) -> None:
    """After restoring the database from a backup: start a new sync epoch. Every device's next
    pull gets 410 and does a replacement sync, re-pushing whatever the restore lost (devices
    keep their outboxes)."""
    from server.sync import service as sync

    if not yes:
        raise _fail("this makes every device re-download its reports; pass --yes to confirm")
    engine = create_engine_for(_settings())
    with transaction(create_session_factory(engine)) as session:
        epoch = sync.new_epoch(session)
    console.print(f"new sync epoch {epoch}: devices will do a replacement sync on their next pull")


@sync_app.command("housekeeping")
def sync_housekeeping() -> None:
    """Drop tombstones past the horizon and discard expired unfinished uploads now (the worker
    also does this every six hours)."""
    from server.worker import context as job_context
    from server.worker import tasks

    settings = _settings()
    engine = create_engine_for(settings)
    job_context.configure(
        job_context.JobContext(settings=settings, session_factory=create_session_factory(engine))
    )
    done = tasks.sync_housekeeping()
    console.print(
        f"tombstones pruned: {done['tombstones_pruned']}; "
        f"expired uploads discarded: {done['uploads_discarded']}"
    )


# --------------------------------------------------------------------------- demo


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8000,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Do not open a browser.")
    ] = False,
    ucdp_file: Annotated[
        Path | None,
        typer.Option(help="CAR UCDP GeoJSON (default: ../shared/data/ucdp beside the checkout)."),
    ] = None,
    load_only: Annotated[
        bool, typer.Option("--load-only", help="Load the scenario, then exit.")
    ] = False,
) -> None:
    """Create the embedded database, load the CAR scenario (first run only) and serve Vigil."""
    from server.demo import setup

    settings = _settings()
    console.print(f"Vigil demo — data in {settings.data_dir}")
    if not os.environ.get("VIGIL_DEMO_PASSWORD"):
        console.print(
            f"demo password (set VIGIL_DEMO_PASSWORD to change it): "
            f"[bold]{settings.demo_password}[/bold]"
        )
    engine = create_engine_for(settings)
    migrate.upgrade(engine)
    loaded = setup.load(
        session_factory=create_session_factory(engine),
        settings=settings,
        passwords=PasswordService(settings.auth),
        ucdp_file=ucdp_file or setup.default_ucdp_file(),
        say=console.print,
    )
    if loaded.already_loaded:
        console.print("scenario already loaded; reusing the database")
    else:
        console.print(
            f"loaded {loaded.units} units, {loaded.users} users, "
            f"{loaded.imported_events} UCDP events, {loaded.field_reports} field reports, "
            f"{loaded.sites} protected sites, {loaded.patrols} patrol tracks, "
            f"{loaded.alerts} alerts"
        )
    console.print("users: admin, analyst, commander, protection, officer")
    _print_history_hotspots(engine, settings)
    _print_gaps(engine, settings)
    _print_alerts(engine)
    engine.dispose()
    if load_only:
        return
    url = f"http://{host}:{port}/login?next=/maps/threat"
    console.print(
        f"serving on http://{host}:{port} — threat map at {url}, JOC page at /joc, "
        "API docs at /docs"
    )
    if not no_browser:
        threading.Timer(1.5, lambda: webbrowser.open(url)).start()
    import uvicorn

    from server.app import create_app

    uvicorn.run(create_app(settings), host=host, port=port, log_config=None)


#: The CAR history the demo summarises: the five years to the end of the UCDP extract.
DEMO_HISTORY_AS_OF = "2023-01-01T00:00:00+00:00"
DEMO_HISTORY_WINDOW_DAYS = 1826


def _print_history_hotspots(engine: object, settings: Settings) -> None:
    """The demo's first look at the threat picture: Gi* hot spots of 2018–2022 at res 6."""
    from datetime import datetime

    from geo import cells as geo_cells
    from server.hotspots import service
    from server.units.models import Unit

    as_of = datetime.fromisoformat(DEMO_HISTORY_AS_OF)
    with transaction(create_session_factory(engine)) as session:  # type: ignore[arg-type]
        root = session.scalars(select(Unit).where(Unit.parent_id.is_(None))).first()
        aor = service.current_aor_for_unit(session, root) if root else None
        if aor is None:
            return
        result = service.picture(
            session=session,
            aor=aor,
            resolution=6,
            window_days=DEMO_HISTORY_WINDOW_DAYS,
            as_of=as_of,
            audience=service.FULL,
            settings=settings,
        )
    hot = sorted((r for r in result.rows if r["confidence"] > 0), key=lambda r: -r["z_score"])
    console.print(
        f"hot spots 2018–2022 (UCDP, res 6): {len(hot)} hot cells among "
        f"{result.universe_cells} — `vigil hotspots --as-of 2023-01-01 --window "
        f"{DEMO_HISTORY_WINDOW_DAYS} --resolution 6` for the table"
    )
    for row in hot[:5]:
        lat, lng = geo_cells.cell_center(row["cell"])
        console.print(
            f"  {lat:6.2f} N {lng:6.2f} E  {row['count']:3d} incidents, z {row['z_score']:5.1f}"
        )


def _print_gaps(engine: object, settings: Settings) -> None:
    """The demo's first look at coverage: the top protection gaps right now."""
    from server.coverage import service as coverage
    from server.units.models import Unit

    with transaction(create_session_factory(engine)) as session:  # type: ignore[arg-type]
        picture = coverage.gaps(
            session,
            settings=settings,
            resolution=settings.coverage_resolution,
            audience="general",
            limit=5,
        )
        codes = dict(session.execute(select(Unit.id, Unit.code)).all())
    console.print(
        f"protection gaps now (res {picture.resolution}): {picture.total} — `vigil gaps` for "
        "the table"
    )
    for row in picture.rows:
        where = "; ".join(s.name for s in row.sites) or "threatened cell"
        seen = (
            "never patrolled"
            if row.last_presence_at is None
            else (f"last patrol {row.hours_uncovered:.0f} h ago")
        )
        console.print(
            f"  {where} ({','.join(row.reasons)}): {seen}, "
            f"{codes.get(row.unit_id, 'no unit') if row.unit_id else 'no unit'}"
        )


def _print_alerts(engine: object) -> None:
    """The demo's open alerts: who must act, and whether anyone has."""
    from server.alerts_inbox.models import Alert
    from server.units.models import Unit

    with transaction(create_session_factory(engine)) as session:  # type: ignore[arg-type]
        codes = dict(session.execute(select(Unit.id, Unit.code)).all())
        rank = {"red": 0, "amber": 1, "yellow": 2}
        open_alerts = sorted(
            session.scalars(select(Alert).where(Alert.state == "open")),
            key=lambda a: (rank.get(a.severity, 3), a.id),
        )
    console.print(
        f"open alerts: {len(open_alerts)} — `vigil alerts list --as commander` for the inbox"
    )
    for alert in open_alerts[:6]:
        unit = codes.get(alert.chain[0], "?")
        console.print(f"  {alert.severity.upper():6} {alert.title} → {unit}", markup=False)


def main() -> None:  # pragma: no cover - console entry point
    app(sys.argv[1:])
