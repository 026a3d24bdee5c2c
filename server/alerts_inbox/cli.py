"""``vigil alerts``: the inbox from a terminal (list, show, acknowledge), the alert clock (tick),
delivery channels and the default rules."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.access.policy import Actor, actor_for
from server.alerts_inbox import service
from server.db.base import utcnow
from server.db.session import create_engine_for, create_session_factory, transaction
from server.errors import VigilError
from server.settings import Settings
from server.units.models import Unit
from server.users.models import User

__all__ = ["alerts_app"]

console = Console(stderr=True)
out = Console()
alerts_app = typer.Typer(
    help="Alerts: the inbox, acknowledgement, the alert clock.", no_args_is_help=True
)


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    from server.worker import context as job_context

    engine = create_engine_for(settings)
    factory = create_session_factory(engine)
    job_context.configure(job_context.JobContext(settings=settings, session_factory=factory))
    try:
        with transaction(factory) as session:
            yield session
    except VigilError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None
    finally:
        engine.dispose()


def _actor(session: Session, username: str) -> Actor:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active:
        console.print(f"[red]error:[/red] no active user {username!r}")
        raise typer.Exit(1)
    return actor_for(session, user)


AsUser = Annotated[str, typer.Option("--as", help="Act as this user (need-to-know applies).")]


@alerts_app.command("list")
def list_command(
    username: AsUser,
    state: Annotated[str | None, typer.Option(help="open, acknowledged or resolved")] = "open",
    limit: int = 50,
) -> None:
    """The alerts USER's unit and chain see, newest first."""
    settings = Settings.load()
    with _session(settings) as session:
        actor = _actor(session, username)
        codes = {u.id: u.code for u in session.scalars(select(Unit))}
        table = Table("id", "sev", "state", "unit (level)", "title", "count", "created")
        for alert in service.list_(session=session, actor=actor, state=state, limit=limit):
            table.add_row(
                str(alert.id),
                alert.severity,
                alert.state,
                f"{codes.get(alert.chain[alert.level], '?')} ({alert.level})",
                alert.title,
                str(alert.count),
                alert.created_at.strftime("%Y-%m-%d %H:%M"),
            )
        out.print(table)


@alerts_app.command("show")
def show_command(alert_id: int, username: AsUser) -> None:
    """One alert, its coverage picture and its timeline."""
    settings = Settings.load()
    with _session(settings) as session:
        alert = service.get_or_raise(
            session=session, alert_id=alert_id, actor=_actor(session, username)
        )
        out.print(f"[bold]{alert.title}[/bold]  ({alert.severity}, {alert.state})")
        out.print(alert.summary)
        out.print(f"Coverage: {alert.coverage}")
        out.print(f"Routed: {alert.route_reason}")
        for event in service.timeline(session, alert):
            out.print(f"  {event.at:%Y-%m-%d %H:%M:%S}  {event.kind:<14} {event.detail}")


@alerts_app.command("ack")
def ack_command(
    alert_id: int,
    username: AsUser,
    note: Annotated[str | None, typer.Option(help="What is being done")] = None,
) -> None:
    """Acknowledge an alert (stops its escalation; the units told so far hear it)."""
    settings = Settings.load()
    with _session(settings) as session:
        alert = service.acknowledge(
            session=session,
            alert_id=alert_id,
            actor=_actor(session, username),
            note=note,
            now=utcnow(),
        )
        out.print(f"alert {alert.id} acknowledged")


@alerts_app.command("tick")
def tick_command() -> None:
    """Run the alert clock once: drain the outbox, escalate, auto-resolve, send what is due."""
    from server.worker import context as job_context
    from server.worker import tasks

    settings = Settings.load()
    engine = create_engine_for(settings)
    job_context.configure(
        job_context.JobContext(settings=settings, session_factory=create_session_factory(engine))
    )
    try:
        done = tasks.alerts_tick()
    finally:
        engine.dispose()
    out.print(", ".join(f"{k}: {v}" for k, v in done.items()) or "alerts are disabled")


@alerts_app.command("channel")
def channel_command(
    unit: Annotated[str, typer.Argument(help="Unit code")],
    kind: Annotated[str, typer.Argument(help="webhook or email")],
    address: Annotated[str, typer.Argument(help="URL or e-mail address")],
    secret: Annotated[str | None, typer.Option(help="Webhook signing secret")] = None,
) -> None:
    """Deliver UNIT's alerts to a webhook or an e-mail address too (the inbox always has them)."""
    settings = Settings.load()
    with _session(settings) as session:
        unit_row = session.scalar(select(Unit).where(Unit.code == unit))
        if unit_row is None:
            console.print(f"[red]error:[/red] no unit {unit!r}")
            raise typer.Exit(1)
        channel = service.add_channel(
            session=session, unit_id=unit_row.id, kind=kind, address=address, secret=secret
        )
        out.print(f"channel {channel.id}: {kind} for {unit}")


@alerts_app.command("restore-rules")
def restore_rules_command() -> None:
    """Put back any default rule that is missing (edited rules are left as they are)."""
    settings = Settings.load()
    with _session(settings) as session:
        added = service.ensure_default_rules(session)
    out.print(f"{added} default rule(s) restored")
