"""The test mission: a small hierarchy around Bambari (CAR) with AORs that tile, and one user per
role. Built through the real services, so the seed itself exercises AOR cells and the audit log.

    mission-hq (root, sees whole mission) ── AOR: lon 20.0–21.0, lat 5.5–6.0
    ├── joc (operations centre, sees whole mission)              users: analyst
    ├── human-rights (civilian section, sees whole mission)       users: protection
    ├── women-protection, child-protection (sections, see whole mission)
    ├── conduct-discipline (section; misconduct alerts go here only)  users: conduct
    └── force-hq ── AOR: whole box
        ├── sector-a ── lon 20.0–20.5                              users: commander_a
        │   └── bn-a1 ── lon 20.0–20.5                             users: officer_a
        │       ├── coy-a1-1 ── lon 20.0–20.25
        │       └── coy-a1-2 ── lon 20.25–20.5
        └── sector-b ── lon 20.5–21.0                              users: commander_b
            └── bn-b1 ── lon 20.5–21.0                             users: officer_b
    admin belongs to mission-hq.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import SecretStr
from shapely.geometry import box, mapping
from sqlalchemy.orm import Session

from server.access.policy import system_actor
from server.auth.passwords import PasswordService
from server.geojson import PointGeometry, PolygonalGeometry
from server.settings import Settings
from server.units import service as units
from server.units.enums import Component, UnitKind
from server.units.models import Unit
from server.units.schemas import UnitCreate
from server.users import service as users
from server.users.enums import Role
from server.users.models import User
from server.users.schemas import UserCreate

PASSWORD = "correct horse battery staple"

#: Points inside each company's / battalion's AOR, for placing test reports.
POINT_A1_1 = (20.12, 5.75)
POINT_A1_2 = (20.37, 5.75)
POINT_B1 = (20.75, 5.75)
POINT_OUTSIDE = (25.0, 8.0)


@dataclass
class Mission:
    units: dict[str, Unit] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)

    def unit_id(self, code: str) -> int:
        return self.units[code].id


def _polygon(min_lon: float, min_lat: float, max_lon: float, max_lat: float) -> PolygonalGeometry:
    return PolygonalGeometry.model_validate(mapping(box(min_lon, min_lat, max_lon, max_lat)))


UNITS = [
    # code, name, kind, component, parent, bbox, sees_whole_mission
    (
        "mission-hq",
        "Mission HQ",
        UnitKind.MISSION_HQ,
        Component.CIVILIAN,
        None,
        (20.0, 5.5, 21.0, 6.0),
        True,
    ),
    (
        "joc",
        "Joint Operations Centre",
        UnitKind.OPERATIONS_CENTRE,
        Component.CIVILIAN,
        "mission-hq",
        None,
        True,
    ),
    (
        "human-rights",
        "Human Rights Division",
        UnitKind.CIVILIAN_SECTION,
        Component.CIVILIAN,
        "mission-hq",
        None,
        True,
    ),
    (
        "women-protection",
        "Women Protection Advisers",
        UnitKind.CIVILIAN_SECTION,
        Component.CIVILIAN,
        "mission-hq",
        None,
        True,
    ),
    (
        "child-protection",
        "Child Protection Section",
        UnitKind.CIVILIAN_SECTION,
        Component.CIVILIAN,
        "mission-hq",
        None,
        True,
    ),
    (
        "conduct-discipline",
        "Conduct and Discipline",
        UnitKind.CIVILIAN_SECTION,
        Component.CIVILIAN,
        "mission-hq",
        None,
        False,
    ),
    (
        "force-hq",
        "Force HQ",
        UnitKind.FORCE_HQ,
        Component.MILITARY,
        "mission-hq",
        (20.0, 5.5, 21.0, 6.0),
        False,
    ),
    (
        "sector-a",
        "Sector A",
        UnitKind.SECTOR,
        Component.MILITARY,
        "force-hq",
        (20.0, 5.5, 20.5, 6.0),
        False,
    ),
    (
        "bn-a1",
        "1st Battalion, Sector A",
        UnitKind.BATTALION,
        Component.MILITARY,
        "sector-a",
        (20.0, 5.5, 20.5, 6.0),
        False,
    ),
    (
        "coy-a1-1",
        "Company A1-1",
        UnitKind.COMPANY,
        Component.MILITARY,
        "bn-a1",
        (20.0, 5.5, 20.25, 6.0),
        False,
    ),
    (
        "coy-a1-2",
        "Company A1-2",
        UnitKind.COMPANY,
        Component.MILITARY,
        "bn-a1",
        (20.25, 5.5, 20.5, 6.0),
        False,
    ),
    (
        "sector-b",
        "Sector B",
        UnitKind.SECTOR,
        Component.MILITARY,
        "force-hq",
        (20.5, 5.5, 21.0, 6.0),
        False,
    ),
    (
        "bn-b1",
        "1st Battalion, Sector B",
        UnitKind.BATTALION,
        Component.MILITARY,
        "sector-b",
        (20.5, 5.5, 21.0, 6.0),
        False,
    ),
]

USERS = [
    ("admin", Role.ADMIN, "mission-hq"),
    ("analyst", Role.ANALYST, "joc"),
    ("protection", Role.PROTECTION_OFFICER, "human-rights"),
    ("commander_a", Role.COMMANDER, "sector-a"),
    ("commander_b", Role.COMMANDER, "sector-b"),
    ("conduct", Role.ANALYST, "conduct-discipline"),
    ("officer_a", Role.FIELD_OFFICER, "bn-a1"),
    ("officer_b", Role.FIELD_OFFICER, "bn-b1"),
]


def build(session: Session, settings: Settings, passwords: PasswordService) -> Mission:
    mission = Mission()
    actor = system_actor("test-seed")
    for code, name, kind, component, parent, bbox, whole in UNITS:
        parent_id = mission.units[parent].id if parent else None
        unit_in = UnitCreate(
            code=code,
            name=name,
            kind=kind,
            component=component,
            parent_id=parent_id,
            sees_whole_mission=whole,
            base_location=(
                PointGeometry(
                    type="Point", coordinates=[(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2]
                )
                if bbox
                else None
            ),
            aor=_polygon(*bbox) if bbox else None,
        )
        mission.units[code] = units.create(
            session=session, unit_in=unit_in, actor=actor, mission=settings.mission
        )
    for username, role, unit_code in USERS:
        user_in = UserCreate(
            username=username.replace("_", "-"),
            full_name=username.title(),
            role=role,
            unit_id=mission.units[unit_code].id,
            password=SecretStr(PASSWORD),
        )
        mission.users[username] = users.create(
            session=session, user_in=user_in, actor=None, passwords=passwords
        )
    session.flush()
    return mission
