"""``vigil assets`` (the map's browser libraries) and ``vigil map`` (a briefing page)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy import func, select

from server.access.policy import actor_for
from server.audit import service as audit
from server.db.session import create_engine_for, create_session_factory, transaction
from server.errors import VigilError
from server.maps import assets, render
from server.maps.service import MapQuery, threat_map
from server.settings import Settings
from server.units.models import Unit
from server.users.models import User

__all__ = ["assets_app", "map_command"]

console = Console(stderr=True)
assets_app = typer.Typer(
    help="The browser libraries of the map and JOC pages (fetched once, served offline).",
    no_args_is_help=True,
)


@assets_app.command("fetch")
def fetch() -> None:
    """Download the pinned Leaflet, marker-cluster and h3-js packages from the npm registry,
    check their checksums and install them for the pages (a no-op when already installed)."""
    settings = Settings.load()
    root = settings.maps.assets_dir
    try:
        installed = assets.fetch(root)
    except Exception as exc:  # network, checksum: say what failed, exit non-zero
        console.print(f"[red]error:[/red] could not install the map's libraries: {exc}")
        raise typer.Exit(1) from None
    if installed:
        console.print(f"installed {', '.join(installed)} in {root}")
    else:
        console.print(f"map libraries already installed in {root}")


@assets_app.command("check")
def check() -> None:
    """Exit non-zero unless every pinned library is installed."""
    settings = Settings.load()
    try:
        assets.check_installed(settings.maps.assets_dir)
    except assets.AssetsMissingError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"map libraries installed in {settings.maps.assets_dir}")


def map_command(
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")],
    as_user: Annotated[
        str,
        typer.Option("--as", help="Whose need-to-know the page follows (the briefing's audience)."),
    ],
    unit: Annotated[str | None, typer.Option(help="Zoom to this unit's AOR (its code).")] = None,
    window_hours: Annotated[int, typer.Option(help="Incidents and tracks of these hours.")] = 72,
    hotspot_days: Annotated[int, typer.Option(help="Hotspots over these days.")] = 30,
    family: Annotated[list[str], typer.Option(help="Only these families (repeatable).")] = [],  # noqa: B006
) -> None:
    """Write the threat map as one self-contained page (every script and style inlined) for a
    briefing laptop with no network. The export is recorded in the audit log."""
    settings = Settings.load()
    engine = create_engine_for(settings)
    try:
        with transaction(create_session_factory(engine)) as session:
            user = session.scalars(
                select(User).where(func.lower(User.username) == as_user.strip().lower())
            ).one_or_none()
            if user is None or not user.is_active:
                console.print(f"[red]error:[/red] no active user {as_user!r}")
                raise typer.Exit(1)
            actor = actor_for(session, user)
            unit_id = None
            if unit is not None:
                unit_id = session.scalar(select(Unit.id).where(Unit.code == unit))
                if unit_id is None:
                    console.print(f"[red]error:[/red] no unit with code {unit!r}")
                    raise typer.Exit(1)
            query = MapQuery(unit_id, window_hours, hotspot_days, tuple(family))
            data = threat_map(session=session, actor=actor, settings=settings, query=query)
            html = render.render_threat_map(data, settings.maps, inline=True)
            audit.record(
                session,
                actor=actor,
                action="map_exported",
                object_type="map",
                details={
                    "unit_id": unit_id,
                    "families": ",".join(family),
                    "window_hours": window_hours,
                    "incidents": len(data.incidents),
                    "hotspot_cells": len(data.hotspots),
                },
            )
            out.write_text(html, encoding="utf-8")
    except (VigilError, assets.AssetsMissingError) as exc:
        message = exc.message if isinstance(exc, VigilError) else str(exc)
        console.print(f"[red]error:[/red] {message}")
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    console.print(
        f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): {len(data.hotspots)} hotspot cells, "
        f"{len(data.incidents)} incidents, {len(data.gaps)} gaps — as seen by {user.username}"
    )
