"""The ``vigil`` command: every operator task, from the demo to migrations and imports."""

from __future__ import annotations

import os
import sys
import threading
import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select

from server.access.policy import system_actor
from server.auth.passwords import PasswordService
from server.db import migrate
from server.db.session import create_engine_for, create_session_factory, transaction
from server.errors import VigilError
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
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(import_app, name="import")
app.add_typer(audit_app, name="audit")

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
) -> None:
    """Serve the API (and in embedded mode run jobs in-process)."""
    import uvicorn

    from server.app import create_app

    settings = _settings()
    if migrate_first:
        migrate.upgrade(create_engine_for(settings))
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips="*",
    )


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Exit when the queue is empty.")] = False,
) -> None:
    """Run an rq worker (with rq's scheduler) for VIGIL_REDIS_URL."""
    from redis import Redis
    from rq import Queue, Worker

    from server.logs import configure_logging
    from server.worker import context

    settings = _settings()
    if not settings.queue.redis_url:
        raise _fail("VIGIL_REDIS_URL is not set: without Redis, jobs run inside `vigil serve`")
    configure_logging(settings.log_level)
    engine = create_engine_for(settings)
    context.configure(
        context.JobContext(settings=settings, session_factory=create_session_factory(engine))
    )
    connection = Redis.from_url(settings.queue.redis_url)
    queue = Queue(settings.queue.queue_name, connection=connection)
    Worker([queue], connection=connection).work(with_scheduler=True, burst=burst)


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
            f"{loaded.imported_events} UCDP events, {loaded.field_reports} field reports"
        )
    console.print("users: admin, analyst, commander, protection, officer")
    engine.dispose()
    if load_only:
        return
    url = f"http://{host}:{port}/docs"
    console.print(f"serving on http://{host}:{port} — API docs at {url}")
    if not no_browser:
        threading.Timer(1.5, lambda: webbrowser.open(url)).start()
    import uvicorn

    from server.app import create_app

    uvicorn.run(create_app(settings), host=host, port=port, log_config=None)


def main() -> None:  # pragma: no cover - console entry point
    app(sys.argv[1:])
