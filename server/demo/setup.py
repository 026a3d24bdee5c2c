"""Loading the CAR demo scenario into a database, once: units with AORs, users, UCDP events, the
synthetic field reports, protected sites and simulated patrol tracks (with their coverage).
Running it again on a loaded database changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr
from shapely.geometry import mapping
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from server.access.policy import Actor, actor_for, system_actor
from server.auth.passwords import PasswordService
from server.coverage import service as coverage
from server.db.session import transaction
from server.demo import scenario
from server.geojson import PointGeometry, PolygonalGeometry
from server.imports import service as imports
from server.imports.ucdp import read_ucdp
from server.patrols import service as patrols
from server.patrols.enums import PatrolStatus, PatrolType
from server.patrols.models import Patrol
from server.patrols.schemas import PatrolCreate, PatrolUpdate, TrackFix
from server.reports import service as reports
from server.reports.schemas import ReportCreate
from server.settings import Settings
from server.sites import service as sites
from server.sites.enums import SiteKind
from server.sites.schemas import SiteCreate
from server.units import service as units
from server.units.models import Unit
from server.units.schemas import UnitCreate
from server.users import service as users
from server.users.enums import Role
from server.users.models import User
from server.users.schemas import UserCreate

__all__ = ["DemoLoad", "default_ucdp_file", "load", "load_sites", "load_units"]

log = logging.getLogger("vigil.demo")

ROOT_CODE = "mission-hq"


@dataclass(frozen=True)
class DemoLoad:
    already_loaded: bool
    units: int = 0
    users: int = 0
    imported_events: int = 0
    field_reports: int = 0
    sites: int = 0
    patrols: int = 0
    alerts: int = 0


def default_ucdp_file() -> Path:
    """The CAR UCDP extract beside a source checkout (``../shared/data/ucdp``)."""
    return (
        Path(__file__).resolve().parents[2].parent
        / "shared"
        / "data"
        / "ucdp"
        / "car_ucdp_ged_v23_1.geojson"
    )


def is_loaded(session: Session) -> bool:
    return session.scalar(select(Unit.id).where(Unit.code == ROOT_CODE)) is not None


def load_units(session: Session, settings: Settings, say: Callable[[str], None]) -> int:
    """The demo mission's units with their AORs (and AOR cells); returns how many."""
    actor = system_actor("demo")
    ids: dict[str, int] = {}
    demo_units = scenario.mission_units()
    for index, demo in enumerate(demo_units, start=1):
        unit_in = UnitCreate(
            code=demo.code,
            name=demo.name,
            kind=demo.kind,
            component=demo.component,
            parent_id=ids[demo.parent_code] if demo.parent_code else None,
            base_location=(
                PointGeometry(type="Point", coordinates=list(demo.base)) if demo.base else None
            ),
            sees_whole_mission=demo.sees_whole_mission,
            aor=PolygonalGeometry.model_validate(mapping(demo.aor)) if demo.aor else None,
        )
        unit = units.create(session=session, unit_in=unit_in, actor=actor, mission=settings.mission)
        ids[demo.code] = unit.id
        if demo.aor is not None:
            say(
                f"  unit {index}/{len(demo_units)}: {demo.name} (AOR cells at "
                f"res {settings.mission.coarsest_resolution}–{settings.mission.finest_resolution})"
            )
    return len(demo_units)


def _load_users(session: Session, settings: Settings, passwords: PasswordService) -> int:
    unit_ids = {code: id_ for code, id_ in session.execute(select(Unit.code, Unit.id))}
    demo_users = scenario.demo_users()
    for demo in demo_users:
        users.create(
            session=session,
            user_in=UserCreate(
                username=demo.username,
                full_name=demo.full_name,
                role=demo.role,
                unit_id=unit_ids[demo.unit_code],
                password=SecretStr(settings.demo_password),
            ),
            actor=None,
            passwords=passwords,
        )
    return len(demo_users)


def _load_field_reports(session: Session, settings: Settings, now: datetime) -> int:
    count = 0
    for body in scenario.demo_field_reports(now):
        payload = dict(body)
        reporter = payload.pop("reporter")
        user = session.scalars(select(User).where(User.username == reporter)).one()
        actor = actor_for(session, user)
        reports.create(
            session=session,
            report_in=ReportCreate.model_validate(payload),
            actor=actor,
            mission=settings.mission,
        )
        count += 1
    return count


def load_sites(session: Session, settings: Settings) -> int:
    """The demo's protected sites; returns how many."""
    actor = system_actor("demo")
    for demo in scenario.demo_sites():
        sites.create(
            session=session,
            site_in=SiteCreate(
                name=demo.name,
                kind=SiteKind(demo.kind),
                location=PointGeometry(type="Point", coordinates=list(demo.where)),
                population=demo.population,
            ),
            actor=actor,
            mission=settings.mission,
        )
    return len(scenario.demo_sites())


def _patrol_actor() -> Actor:
    """Records the simulated patrols as a commander of the whole mission would (the system
    actor is an administrator, and administrators do not record patrols)."""
    return Actor(
        user_id=None,
        username="system:demo",
        role=Role.COMMANDER,
        unit_id=None,
        scope_unit_ids=None,
    )


def _load_patrols(session: Session, settings: Settings, now: datetime) -> int:
    actor = _patrol_actor()
    unit_ids = {code: id_ for code, id_ in session.execute(select(Unit.code, Unit.id))}
    demo_patrols = scenario.demo_patrols()
    for demo in demo_patrols:
        patrol = patrols.create(
            session=session,
            patrol_in=PatrolCreate(
                id=scenario.patrol_id(demo.key),
                kind=PatrolType(demo.kind),
                unit_id=unit_ids[demo.unit_code],
                name=demo.name,
            ),
            actor=actor,
        )
        fixes = [
            TrackFix(t=t, lon=x, lat=y, accuracy_m=10)
            for t, x, y in scenario.patrol_fixes(demo, now)
        ]
        patrols.append_fixes(
            session=session, patrol_id=patrol.id, fixes=fixes, actor=actor, mission=settings.mission
        )
        patrols.update(
            session=session,
            patrol_id=patrol.id,
            patrol_in=PatrolUpdate(status=PatrolStatus.COMPLETED),
            actor=actor,
        )
        stored = session.get(Patrol, patrol.id)
        assert stored is not None
        stored.ended_at = fixes[-1].t
    session.flush()
    coverage.recompute_dirty(session, settings=settings, limit=len(demo_patrols) + 10)
    return len(demo_patrols)


def _raise_alerts(session_factory: sessionmaker[Session], settings: Settings, now: datetime) -> int:
    """What the worker would do after the scenario arrived: drain the alert outbox (the field
    reports' rows, written with them), then put the coverage gaps on it and drain again. The
    sites and patrols are in by now, so alerts carry their coverage picture and camp labels."""
    from server.alerts_inbox import service as alerts
    from server.alerts_inbox.models import Alert

    with transaction(session_factory) as session:
        while alerts.drain_outbox(session, settings=settings, now=now).processed:
            pass
        alerts.record_gaps(session, alerts.gap_facts(session, settings=settings, now=now))
        while alerts.drain_outbox(session, settings=settings, now=now).processed:
            pass
        return int(session.scalar(select(func.count()).select_from(Alert)) or 0)


def load(
    *,
    session_factory: sessionmaker[Session],
    settings: Settings,
    passwords: PasswordService,
    ucdp_file: Path | None,
    say: Callable[[str], None] = log.info,
    now: datetime | None = None,
) -> DemoLoad:
    """Load the scenario unless the database already holds it."""
    with transaction(session_factory) as session:
        if is_loaded(session):
            return DemoLoad(already_loaded=True)
    say("Creating the mission hierarchy and computing AOR cells (first run only)…")
    with transaction(session_factory) as session:
        unit_count = load_units(session, settings, say)
        user_count = _load_users(session, settings, passwords)
    imported = 0
    if ucdp_file is not None and ucdp_file.exists():
        say(f"Importing UCDP events from {ucdp_file.name}…")
        result = imports.import_events(
            session_factory=session_factory,
            dataset="ucdp-ged",
            rows=read_ucdp(ucdp_file),
            actor=system_actor("demo"),
            mission=settings.mission,
        )
        imported = result.imported + result.unchanged
    else:
        say("UCDP file not found; the demo starts without the CAR event history.")
    moment = now or datetime.now(UTC)
    with transaction(session_factory) as session:
        field = _load_field_reports(session, settings, moment)
    say("Adding protected sites and simulated patrol tracks…")
    with transaction(session_factory) as session:
        site_count = load_sites(session, settings)
        patrol_count = _load_patrols(session, settings, moment)
    say("Raising alerts: field reports, coverage gaps (routed by AOR, with coverage)…")
    alert_count = _raise_alerts(session_factory, settings, moment)
    return DemoLoad(
        already_loaded=False,
        units=unit_count,
        users=user_count,
        imported_events=imported,
        field_reports=field,
        sites=site_count,
        patrols=patrol_count,
        alerts=alert_count,
    )
