"""The Central African Republic demo scenario, as pure data.

Vigil's demo needs a mission that looks like one: a country outline, a unit hierarchy whose areas
of responsibility (AORs) tile the country the way a real force lays out sectors, battalions and
company operating bases (COBs), one user per role, and a handful of field reports that exercise
what the system is for (merge suggestions, precursor warnings, sensitive cases, routing by AOR).

Everything here is plain values built from the standard library and shapely only, so the
scenario can be checked by unit tests without a database and loaded by whatever seeds one
(``server.demo`` seeding code, the CLI, end-to-end tests). Nothing here is real: the mission,
its units and every report are fictional; only the town coordinates and the rough shape of the
country are meant to be recognisable.

Determinism matters: the demo is reloaded on many machines and its identifiers (unit codes,
report UUIDs) must not change between runs, so there is no randomness at all.
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import shapely
from shapely import MultiPoint, MultiPolygon, Polygon
from shapely.geometry.polygon import orient

from server.units.enums import Component, UnitKind
from server.users.enums import Role

__all__ = [
    "DEMO_NAMESPACE",
    "DEMO_WINDOW",
    "OFFICER_BATTALION_CODE",
    "TOWNS",
    "DemoPatrol",
    "DemoSite",
    "DemoUnit",
    "DemoUser",
    "as_multipolygon",
    "car_outline",
    "demo_field_reports",
    "demo_patrols",
    "demo_sites",
    "demo_users",
    "mission_units",
    "patrol_id",
    "report_id",
]

#: Namespace of every UUID the demo generates: ids are ``uuid5(DEMO_NAMESPACE, key)`` so loading
#: the demo twice finds the same reports (the API's idempotency key) instead of duplicating them.
DEMO_NAMESPACE = uuid.uuid5(
    uuid.NAMESPACE_URL, "https://vigil.example/demo/central-african-republic"
)

# ---------------------------------------------------------------------------------------------
# Country outline
# ---------------------------------------------------------------------------------------------

#: Vertices (lon, lat) of the outline, clockwise from the DR Congo / South Sudan tripoint, one
#: border stretch a line. Drawn by hand; see :func:`car_outline`.
# fmt: off
_OUTLINE_LONLAT: tuple[tuple[float, float], ...] = (
    # Mbomou river westwards (DR Congo to the south)
    (27.44, 5.07), (27.04, 5.13), (26.40, 5.15), (25.65, 5.26), (25.28, 5.17), (25.13, 4.93),
    (24.81, 4.90), (24.41, 5.02), (24.00, 4.90), (23.30, 4.61), (22.84, 4.69), (22.68, 4.50),
    (22.60, 4.27), (22.41, 4.03),
    # Ubangi river westwards to Bangui, then south to the Republic of Congo
    (21.66, 4.22), (21.17, 4.28), (20.93, 4.32), (20.29, 4.69), (19.98, 4.95), (19.47, 5.03),
    (18.93, 4.71), (18.62, 4.36), (18.54, 4.20), (18.62, 3.77), (18.45, 3.50),
    # Republic of Congo border westwards to the Sangha tip
    (17.81, 3.56), (17.13, 3.73), (16.54, 3.20), (16.20, 2.22), (16.01, 2.27), (15.91, 2.56),
    (15.86, 3.01), (15.41, 3.34),
    # Cameroon border northwards
    (15.04, 3.85), (14.95, 4.21), (14.48, 4.73), (14.56, 5.03), (14.46, 5.45), (14.54, 6.23),
    (14.78, 6.41), (15.05, 6.90), (15.28, 7.42),
    # Chad border eastwards
    (15.50, 7.56), (15.80, 7.54), (16.10, 7.60), (16.45, 7.80), (16.70, 7.66), (17.00, 7.70),
    (17.25, 7.80), (17.65, 7.98), (17.96, 7.98), (18.39, 8.28), (18.91, 8.63), (18.81, 8.98),
    (19.09, 9.07), (20.06, 9.01), (20.50, 9.26), (21.00, 9.48), (21.35, 9.95), (21.72, 10.57),
    (22.23, 10.97), (22.86, 11.14),
    # Sudan, then South Sudan, south-eastwards back to the start
    (22.98, 10.75), (23.33, 10.50), (23.55, 10.09), (23.56, 9.68), (23.39, 9.27), (23.46, 8.95),
    (23.81, 8.67), (24.57, 8.23), (25.11, 7.83), (25.12, 7.50), (25.80, 6.98), (26.21, 6.55),
    (26.47, 5.95), (27.21, 5.55),
)
# fmt: on


@functools.cache
def car_outline() -> Polygon:
    """Return an approximate outline of the Central African Republic (WGS 84 lon/lat).

    This is an approximate outline drawn by hand for the demo, **not an official boundary**:
    76 vertices following Cameroon to the west, Chad to the north, Sudan and South Sudan to the
    north-east and east, DR Congo to the south along the Mbomou and Ubangi rivers (Bangui sits
    on the Ubangi) and the Republic of Congo to the south-west. It was adjusted until it holds
    every event of the UCDP GED 23.1 extract for CAR (1,848 points) and its geodesic area is
    within 1 % of the country's 623,000 km²; border towns such as Bangui, Mobaye, Bangassou
    and Zémio lie a few kilometres inside it. Good enough to clip AORs and draw a map; never
    use it to decide on which side of a border something happened.

    The exterior ring is counter-clockwise, as RFC 7946 GeoJSON wants. Cached (shapely
    geometries are immutable), so every caller shares one object.
    """
    return orient(Polygon(_OUTLINE_LONLAT), sign=1.0)


def as_multipolygon(geometry: shapely.Geometry) -> MultiPolygon:
    """Return the polygonal part of ``geometry`` as a MultiPolygon, rings oriented for GeoJSON.

    AORs are stored as ``geometry(MultiPolygon, 4326)``, and overlay operations return a
    Polygon, a MultiPolygon or (when edges touch) a GeometryCollection with stray lines or
    points; those zero-area leftovers are dropped rather than stored. GEOS overlays emit
    clockwise shells; RFC 7946 asks for counter-clockwise ones, so every part is re-oriented.
    """
    parts = [
        part
        for part in shapely.get_parts(geometry)
        if isinstance(part, Polygon | MultiPolygon) and not part.is_empty
    ]
    polygons: list[Polygon] = []
    for part in parts:
        polygons.extend(
            orient(p, sign=1.0) for p in (part.geoms if isinstance(part, MultiPolygon) else [part])
        )
    return MultiPolygon(polygons)


# ---------------------------------------------------------------------------------------------
# Towns
# ---------------------------------------------------------------------------------------------

#: Towns used by the scenario: (lon, lat), rounded to 0.01° (about 1 km), which is all the
#: demo needs. "Bangui PK12" is the northern exit of the capital (kilometre 12 on the Damara
#: road), used as the second company base of the Bangui task force.
TOWNS: dict[str, tuple[float, float]] = {
    "Bangui": (18.56, 4.36),
    "Bangui PK12": (18.52, 4.47),
    "Damara": (18.70, 4.96),
    "Bossembélé": (17.65, 5.27),
    "Mbaïki": (17.99, 3.87),
    "Bouar": (15.60, 5.93),
    "Baboua": (14.82, 5.79),
    "Bocaranga": (15.64, 7.01),
    "Paoua": (16.44, 7.24),
    "Bozoum": (16.38, 6.32),
    "Berbérati": (15.79, 4.26),
    "Carnot": (15.94, 4.94),
    "Nola": (16.05, 3.53),
    "Bossangoa": (17.45, 6.49),
    "Sibut": (19.08, 5.72),
    "Kaga-Bandoro": (19.18, 6.99),
    "Batangafo": (18.29, 7.30),
    "Kabo": (18.63, 7.70),
    "Ndélé": (20.65, 8.41),
    "Bambari": (20.67, 5.76),
    "Grimari": (20.06, 5.73),
    "Ippy": (21.22, 6.26),
    "Alindao": (21.21, 5.03),
    "Bria": (21.99, 6.54),
    "Ouadda": (22.40, 8.08),
    "Sam Ouandja": (22.79, 9.30),
    "Birao": (22.78, 10.29),
    "Bangassou": (22.82, 4.74),
    "Rafaï": (23.93, 4.97),
    "Mobaye": (21.18, 4.32),
    "Zémio": (25.14, 5.03),
    "Djéma": (25.32, 6.04),
    "Obo": (26.49, 5.40),
}

# ---------------------------------------------------------------------------------------------
# Units
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoUnit:
    """One unit of the demo mission, as the seeding code needs it.

    ``base`` is (lon, lat). ``aor`` is ``None`` for units that have no ground of their own (the
    JOC and the civilian sections see the mission through ``sees_whole_mission`` instead).
    """

    code: str
    name: str
    kind: UnitKind
    component: Component
    parent_code: str | None
    base: tuple[float, float] | None
    aor: MultiPolygon | None
    sees_whole_mission: bool = False


@dataclass(frozen=True)
class _Battalion:
    name: str
    hq: str  # town of the battalion HQ; must be one of its company bases
    companies: tuple[str, ...]  # towns of the company operating bases


@dataclass(frozen=True)
class _Sector:
    code: str
    name: str
    hq: str
    battalions: tuple[_Battalion, ...]


#: The force layout. Company bases are the Voronoi generators, so they were chosen for the
#: shapes they give, not only for realism: Sector West holds the west up to about 17° E (and,
#: through Mbaïki, the Lobaye forest south-west of Bangui); Sector East everything east of
#: about 21.5° E plus the Basse-Kotto along the Ubangi (Alindao, Mobaye); Sector Centre the
#: middle; and Damara, Bossembélé and Mbaïki hem the Bangui task force in to the capital and
#: its outskirts (about 1 % of the country). No real contingent is named or implied.
_FORCE: tuple[_Sector, ...] = (
    _Sector(
        "sector-west",
        "Sector West",
        "Bouar",
        (
            _Battalion("1st Battalion, Sector West", "Bouar", ("Bouar", "Baboua", "Bocaranga")),
            _Battalion("2nd Battalion, Sector West", "Paoua", ("Paoua", "Bozoum")),
            _Battalion(
                "3rd Battalion, Sector West",
                "Berbérati",
                ("Berbérati", "Carnot", "Nola", "Mbaïki"),
            ),
        ),
    ),
    _Sector(
        "sector-centre",
        "Sector Centre",
        "Kaga-Bandoro",
        (
            _Battalion(
                "1st Battalion, Sector Centre",
                "Kaga-Bandoro",
                ("Kaga-Bandoro", "Batangafo", "Kabo", "Ndélé"),
            ),
            _Battalion(
                "2nd Battalion, Sector Centre",
                "Bambari",
                ("Bambari", "Grimari", "Ippy"),
            ),
            _Battalion(
                "3rd Battalion, Sector Centre",
                "Bossangoa",
                ("Bossangoa", "Bossembélé", "Sibut", "Damara"),
            ),
        ),
    ),
    _Sector(
        "sector-east",
        "Sector East",
        "Bria",
        (
            _Battalion(
                "1st Battalion, Sector East",
                "Bria",
                ("Bria", "Ouadda", "Sam Ouandja", "Birao"),
            ),
            _Battalion(
                "2nd Battalion, Sector East",
                "Bangassou",
                ("Bangassou", "Rafaï", "Mobaye", "Alindao"),
            ),
            _Battalion("3rd Battalion, Sector East", "Obo", ("Obo", "Zémio", "Djéma")),
        ),
    ),
    _Sector(
        "jtf-bangui",
        "Joint Task Force Bangui",
        "Bangui",
        (
            _Battalion(
                "1st Battalion, Joint Task Force Bangui", "Bangui", ("Bangui", "Bangui PK12")
            ),
        ),
    ),
)

#: Code of the battalion the demo field officer belongs to (the one around Bambari).
OFFICER_BATTALION_CODE = "sector-centre-bn2"


def _slug(text: str) -> str:
    """ASCII slug of a town name for unit codes: stable, URL- and shell-safe."""
    folded = text.translate(str.maketrans("éèëïî", "eeeii")).lower()
    return "-".join("".join(c if c.isalnum() else " " for c in folded).split())


def _company_aors(outline: Polygon, towns: list[str]) -> dict[str, MultiPolygon]:
    """Voronoi cells of the company bases clipped to the outline.

    Each cell is matched to the base it contains rather than relying on output order, which
    GEOS only guarantees on request and only from 3.12. Coordinates are deliberately not
    rounded: snapping the cells to even a 1e-6° grid moves the points where cell edges cross
    the border off the border, so AORs poke out of the outline by slivers; exporters round
    for display instead.
    """
    points = MultiPoint([TOWNS[town] for town in towns])
    cells = list(shapely.get_parts(shapely.voronoi_polygons(points, extend_to=outline)))
    aors: dict[str, MultiPolygon] = {}
    for town in towns:
        base = shapely.Point(TOWNS[town])
        (cell,) = [c for c in cells if c.contains(base)]
        aors[town] = as_multipolygon(shapely.intersection(cell, outline))
    return aors


@functools.cache
def _mission_units() -> tuple[DemoUnit, ...]:
    """Build the unit list once; the geometry work is the only expensive part."""
    outline = car_outline()
    whole = as_multipolygon(outline)
    bangui = TOWNS["Bangui"]
    company_aor = _company_aors(
        outline, [town for s in _FORCE for b in s.battalions for town in b.companies]
    )

    def beside_force(code: str, name: str, kind: UnitKind, component: Component) -> DemoUnit:
        """A unit at Mission HQ in Bangui with no ground of its own; the civilian ones (JOC,
        analysis, human rights and protection sections) see the whole mission instead."""
        return DemoUnit(
            code=code,
            name=name,
            kind=kind,
            component=component,
            parent_code="mission-hq",
            base=bangui,
            aor=None,
            sees_whole_mission=component is Component.CIVILIAN,
        )

    def military(
        code: str, name: str, kind: UnitKind, parent: str, town: str, aor: MultiPolygon
    ) -> DemoUnit:
        return DemoUnit(code, name, kind, Component.MILITARY, parent, TOWNS[town], aor)

    force: list[DemoUnit] = []
    sector_aors: dict[str, MultiPolygon] = {}
    for sector in _FORCE:
        block: list[DemoUnit] = []
        battalion_aors: list[MultiPolygon] = []
        for index, battalion in enumerate(sector.battalions, start=1):
            battalion_code = f"{sector.code}-bn{index}"
            companies = [
                military(
                    f"cob-{_slug(town)}",
                    f"COB {town} ({battalion.name})",
                    UnitKind.COMPANY,
                    battalion_code,
                    town,
                    company_aor[town],
                )
                for town in battalion.companies
            ]
            battalion_aor = as_multipolygon(shapely.union_all([c.aor for c in companies]))
            battalion_aors.append(battalion_aor)
            block += [
                military(
                    battalion_code,
                    battalion.name,
                    UnitKind.BATTALION,
                    sector.code,
                    battalion.hq,
                    battalion_aor,
                ),
                *companies,
            ]
        sector_aors[sector.code] = as_multipolygon(shapely.union_all(battalion_aors))
        sector_unit = military(
            sector.code,
            sector.name,
            UnitKind.SECTOR,
            "force-hq",
            sector.hq,
            sector_aors[sector.code],
        )
        force += [sector_unit, *block]

    return (
        DemoUnit(
            code="mission-hq",
            name="Mission HQ",
            kind=UnitKind.MISSION_HQ,
            component=Component.CIVILIAN,
            parent_code=None,
            base=bangui,
            aor=whole,
            sees_whole_mission=True,
        ),
        beside_force(
            "joc", "Joint Operations Centre", UnitKind.OPERATIONS_CENTRE, Component.CIVILIAN
        ),
        beside_force(
            "jmac", "Joint Mission Analysis Centre", UnitKind.OPERATIONS_CENTRE, Component.CIVILIAN
        ),
        beside_force(
            "human-rights", "Human Rights Division", UnitKind.CIVILIAN_SECTION, Component.CIVILIAN
        ),
        beside_force(
            "child-protection",
            "Child Protection Section",
            UnitKind.CIVILIAN_SECTION,
            Component.CIVILIAN,
        ),
        beside_force(
            "women-protection", "Women Protection", UnitKind.CIVILIAN_SECTION, Component.CIVILIAN
        ),
        # Misconduct alerts go here and nowhere else (alerts.routing's component routes).
        beside_force(
            "conduct-discipline",
            "Conduct and Discipline Team",
            UnitKind.CIVILIAN_SECTION,
            Component.CIVILIAN,
        ),
        beside_force("police-hq", "Police HQ", UnitKind.POLICE_HQ, Component.POLICE),
        # Formed police units patrol towns the force also holds: their AORs overlap the
        # force's tiling on purpose and sit in the police chain, beside it, not inside it.
        DemoUnit(
            code="fpu-bangui",
            name="Formed Police Unit Bangui",
            kind=UnitKind.POLICE_UNIT,
            component=Component.POLICE,
            parent_code="police-hq",
            base=bangui,
            aor=sector_aors["jtf-bangui"],
        ),
        DemoUnit(
            code="fpu-bambari",
            name="Formed Police Unit Bambari",
            kind=UnitKind.POLICE_UNIT,
            component=Component.POLICE,
            parent_code="police-hq",
            base=TOWNS["Bambari"],
            aor=company_aor["Bambari"],
        ),
        DemoUnit(
            code="force-hq",
            name="Force HQ",
            kind=UnitKind.FORCE_HQ,
            component=Component.MILITARY,
            parent_code="mission-hq",
            base=bangui,
            aor=whole,
        ),
        *force,
    )


def mission_units() -> list[DemoUnit]:
    """Return the demo mission's units, parents always before their children.

    A fictional multidimensional mission: Mission HQ (the root, whole country) with the Joint
    Operations Centre, an analysis centre and the human rights, child protection, women
    protection and conduct and discipline sections beside the force (no AOR of their own;
    they see the whole mission),
    Police HQ with two formed police units, and Force HQ → four sectors (West, Centre, East,
    Joint Task Force Bangui) → battalions → company operating bases at real towns.

    Company AORs are the Voronoi cells of the company bases clipped to :func:`car_outline`;
    every level above is the union of its children, so the AORs tile the country: siblings do
    not overlap, children cover their parent, every point is in exactly one company AOR. That
    is what routing by AOR assumes (one responsible unit per cell, then its chain of command).
    """
    return list(_mission_units())


# ---------------------------------------------------------------------------------------------
# Users
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoUser:
    """One demo login: a person with a role in a unit (``unit_code`` is a :class:`DemoUnit`)."""

    username: str
    full_name: str
    role: Role
    unit_code: str


def demo_users() -> list[DemoUser]:
    """Return exactly one demo user per role, each placed where that role's work happens.

    The field officer is in the Bambari battalion and the commander commands Sector Centre
    above it, so an alert raised by the officer's reports reaches the commander by AOR. Names
    are invented.
    """
    return [
        DemoUser("admin", "Demo Administrator", Role.ADMIN, "mission-hq"),
        DemoUser("analyst", "Amina Demo-Analyst", Role.ANALYST, "joc"),
        DemoUser("commander", "Col. Jonas Demo-Commander", Role.COMMANDER, "sector-centre"),
        DemoUser("protection", "Marie Demo-Protection", Role.PROTECTION_OFFICER, "human-rights"),
        DemoUser(
            "officer", "Capt. Idriss Demo-Officer", Role.FIELD_OFFICER, OFFICER_BATTALION_CODE
        ),
    ]


# ---------------------------------------------------------------------------------------------
# Field reports
# ---------------------------------------------------------------------------------------------

#: Accuracy (metres) stated with each location precision in the demo reports.
_ACCURACY_M = {"exact": 25, "settlement": 1_000, "area": 25_000, "district": 50_000}


def _victims(
    killed: tuple[int, int, int] = (0, 0, 0),
    injured: int = 0,
    abducted: int = 0,
    displaced: int = 0,
    disaggregation: tuple[tuple[str, str, int, int, int, int], ...] = (),
) -> dict[str, Any]:
    """Victims block; ``killed`` is (best, low, high), disaggregation rows are
    (sex, age_group, killed, injured, abducted, displaced)."""
    best, low, high = killed
    return {
        "killed": {"best": best, "low": low, "high": high},
        "injured": injured,
        "abducted": abducted,
        "displaced": displaced,
        "disaggregation": [
            {
                "sex": sex,
                "age_group": age,
                "killed": k,
                "injured": i,
                "abducted": a,
                "displaced": d,
            }
            for sex, age, k, i, a, d in disaggregation
        ],
    }


@dataclass(frozen=True)
class _ReportSpec:
    """The varying part of one demo report; :func:`demo_field_reports` fills in the rest.

    ``grading`` is the Admiralty code as analysts write it ("B2": source reliability B,
    information credibility 2); ``when`` is (days before ``now``'s UTC date, UTC time of day).
    """

    key: str  # stable key the UUID is derived from; never change it once published
    reporter: str
    category: str
    when: tuple[int, time]
    time_precision: str
    where: tuple[float, float]
    location_precision: str
    place_name: str
    admin1: str
    source_type: str
    grading: str
    perpetrator_type: str
    narrative: str
    victims: dict[str, Any] = field(default_factory=_victims)
    protection_concern: bool = False
    consent_aggregate: bool = False
    consent_referral: bool = False


def _when(days_ago: int, hour: int, minute: int = 0) -> tuple[int, time]:
    """When a report's event happened: ``days_ago`` days before the day of ``now``, at this UTC
    time (CAR is UTC+1). Anchoring on the date rather than subtracting hours from ``now`` keeps
    the story's times of day plausible (no market speech at 3 a.m.) whatever time the demo is
    loaded, and ``days_ago >= 1`` keeps every event before ``now``."""
    return (days_ago, time(hour, minute))


#: The scenario. The Bambari area (the field officer's battalion) carries the story: weeks of
#: incitement, threats and armed-group movement (precursors), then one killing reported three
#: times by different sources (merge suggestion), then an attack on the IDP site. The other
#: reports spread across the country so every sector has something on the map.
_REPORTS: tuple[_ReportSpec, ...] = (
    # --- precursors around Bambari ------------------------------------------------------------
    _ReportSpec(
        key="bambari-market-incitement",
        reporter="officer",
        category="hate_speech_incitement",
        when=_when(21, 9),
        time_precision="hour",
        where=(20.672, 5.763),
        location_precision="settlement",
        place_name="Bambari, central market",
        admin1="Ouaka",
        source_type="direct_observation",
        grading="B2",
        perpetrator_type="militia_community_defence",
        narrative="[DEMO] Foot patrol heard a speaker at the central market calling on residents "
        "to drive out 'the foreigners' living across the river and to mark their houses. About "
        "200 people listening; no violence at the time.",
    ),
    _ReportSpec(
        key="bambari-leaflets-threats",
        reporter="officer",
        category="threats_intimidation",
        when=_when(16, 3),
        time_precision="day",
        where=(20.712, 5.794),
        location_precision="settlement",
        place_name="Bambari, northern quarters",
        admin1="Ouaka",
        source_type="witness",
        grading="C3",
        perpetrator_type="militia_community_defence",
        narrative="[DEMO] Community leaders report leaflets pushed under doors overnight giving "
        "families of one community seven days to leave the northern quarters or 'face the "
        "consequences'.",
    ),
    _ReportSpec(
        key="ippy-road-convoy",
        reporter="officer",
        category="armed_group_movement",
        when=_when(11, 14, 20),
        time_precision="exact",
        where=(20.861, 5.948),
        location_precision="exact",
        place_name="Bambari-Ippy road, 28 km north-east of Bambari",
        admin1="Ouaka",
        source_type="direct_observation",
        grading="B2",
        perpetrator_type="non_state_armed_group",
        narrative="[DEMO] Mobile patrol observed about 30 armed men on 12 motorbikes moving "
        "south-west towards Bambari. Assault rifles and one RPG seen. They left the road "
        "before the patrol could follow.",
    ),
    _ReportSpec(
        key="bambari-east-armed-presence",
        reporter="commander",
        category="armed_group_movement",
        when=_when(8, 17),
        time_precision="hour",
        where=(20.781, 5.812),
        location_precision="area",
        place_name="Villages east of Bambari",
        admin1="Ouaka",
        source_type="community_alert_network",
        grading="C3",
        perpetrator_type="non_state_armed_group",
        narrative="[DEMO] Community alert network relays calls from three villages east of "
        "Bambari: armed men have set up camp near the river and ask villagers which families "
        "belong to the other community.",
    ),
    # --- one killing, three reports from three sources (merge-suggestion demo) ----------------
    _ReportSpec(
        key="grimari-road-killing-patrol",
        reporter="officer",
        category="killing_of_civilians",
        when=_when(2, 1),
        time_precision="hour",
        where=(20.402, 5.741),
        location_precision="exact",
        place_name="Village on the Bambari-Grimari road, 30 km west of Bambari",
        admin1="Ouaka",
        source_type="direct_observation",
        grading="B2",
        perpetrator_type="non_state_armed_group",
        narrative="[DEMO] Patrol sent after a night-time alert arrived at first light and found "
        "the bodies of five civilians near the village water point, with gunshot wounds; "
        "several houses burnt. Villagers say the attack began around 02:00 local time. "
        "Survivors fled into the bush. Area secured, bodies handed to the village chief.",
        victims=_victims(
            killed=(5, 5, 6),
            disaggregation=(
                ("male", "adult", 3, 0, 0, 0),
                ("female", "adult", 1, 0, 0, 0),
                ("male", "unknown", 1, 0, 0, 0),
            ),
        ),
    ),
    _ReportSpec(
        key="grimari-road-killing-can",
        reporter="analyst",
        category="killing_of_civilians",
        when=_when(2, 2),
        time_precision="hour",
        where=(20.419, 5.752),
        location_precision="settlement",
        place_name="Village on the Bambari-Grimari road",
        admin1="Ouaka",
        source_type="community_alert_network",
        grading="C3",
        perpetrator_type="non_state_armed_group",
        narrative="[DEMO] Community alert network call to the JOC hotline: armed men on "
        "motorbikes attacked the village during the night and shot people in their homes; the "
        "caller speaks of seven or more dead.",
        victims=_victims(killed=(7, 4, 10)),
    ),
    _ReportSpec(
        key="grimari-road-killing-hro",
        reporter="protection",
        category="killing_of_civilians",
        when=_when(2, 1),
        time_precision="hour",
        where=(20.388, 5.729),
        location_precision="settlement",
        place_name="Village on the Bambari-Grimari road (survivors displaced to Bambari)",
        admin1="Ouaka",
        source_type="witness",
        grading="B2",
        perpetrator_type="non_state_armed_group",
        narrative="[DEMO] Human rights officer interviewed four survivors who fled to Bambari: "
        "about 20 armed men attacked around 02:00 local time; five people were killed, among "
        "them a boy of about 12. Survivors name the group that camped east of Bambari.",
        victims=_victims(
            killed=(5, 5, 5),
            displaced=60,
            disaggregation=(
                ("male", "adult", 3, 0, 0, 0),
                ("female", "adult", 1, 0, 0, 0),
                ("male", "child", 1, 0, 0, 0),
            ),
        ),
        protection_concern=True,
    ),
    # --- the attack on the IDP site -----------------------------------------------------------
    _ReportSpec(
        key="bambari-idp-site-attack",
        reporter="officer",
        category="attack_on_protected_site",
        when=_when(1, 17, 40),
        time_precision="exact",
        where=(20.648, 5.741),
        location_precision="exact",
        place_name="IDP site on the southern edge of Bambari",
        admin1="Ouaka",
        source_type="direct_observation",
        grading="A1",
        perpetrator_type="militia_community_defence",
        narrative="[DEMO] Armed youths threw grenades and set shelters on fire at the IDP site; "
        "the quick reaction force repelled them within 40 minutes. Two residents killed, seven "
        "injured, about 400 people fled towards the company operating base.",
        victims=_victims(
            killed=(2, 2, 2),
            injured=7,
            displaced=400,
            disaggregation=(
                ("female", "elderly", 1, 0, 0, 0),
                ("male", "adult", 1, 3, 0, 0),
                ("female", "child", 0, 2, 0, 0),
            ),
        ),
    ),
    # --- sensitive cases ------------------------------------------------------------------------
    _ReportSpec(
        key="kaga-bandoro-crsv",
        reporter="protection",
        category="sexual_violence",
        when=_when(9, 15),
        time_precision="day",
        where=(19.20, 7.02),
        location_precision="area",
        place_name="Kaga-Bandoro area",
        admin1="Nana-Grébizi",
        source_type="victim",
        grading="B2",
        perpetrator_type="non_state_armed_group",
        narrative="[DEMO] Survivor seen at a health partner's clinic reports rape by two armed "
        "men while collecting firewood outside the IDP site. The survivor consents to referral "
        "for medical and psychosocial care and to being counted in aggregate statistics.",
        protection_concern=True,
        consent_aggregate=True,
        consent_referral=True,
    ),
    _ReportSpec(
        key="ippy-firewood-crsv",
        reporter="officer",
        category="sexual_violence",
        when=_when(6, 8),
        time_precision="day",
        where=(21.15, 6.20),
        location_precision="area",
        place_name="Ippy area, firewood route",
        admin1="Ouaka",
        source_type="witness",
        grading="C3",
        perpetrator_type="unknown",
        narrative="[DEMO] A women's group tells the patrol that two women were assaulted on the "
        "firewood route south of Ippy. The women declined referral; the group agreed to the "
        "case being counted. Patrol proposes firewood escort patrols.",
        protection_concern=True,
        consent_aggregate=True,
        consent_referral=False,
    ),
    _ReportSpec(
        key="ndele-child-recruitment",
        reporter="protection",
        category="recruitment_use_of_children",
        when=_when(13, 12),
        time_precision="week",
        where=(20.70, 8.38),
        location_precision="area",
        place_name="Ndélé area",
        admin1="Bamingui-Bangoran",
        source_type="confidential_informant",
        grading="C3",
        perpetrator_type="non_state_armed_group",
        narrative="[DEMO] Informant reports three boys aged 13 to 15 taken from a village north "
        "of Ndélé and now seen manning an armed group's checkpoint. No contact with the "
        "children or families yet, so no consent: not for aggregate reporting, no referral.",
        victims=_victims(abducted=3, disaggregation=(("male", "child", 0, 0, 3, 0),)),
        protection_concern=True,
        consent_aggregate=False,
        consent_referral=False,
    ),
    _ReportSpec(
        key="bria-misconduct",
        reporter="protection",
        category="sexual_exploitation_abuse",
        when=_when(18, 12),
        time_precision="week",
        where=(21.99, 6.54),
        location_precision="district",
        place_name="Bria",
        admin1="Haute-Kotto",
        source_type="partner",
        grading="C4",
        perpetrator_type="peacekeepers",
        narrative="[DEMO] A partner NGO forwards an allegation of sexual exploitation involving "
        "mission personnel. Details withheld; referred to Conduct and Discipline. Strictly "
        "confidential.",
        protection_concern=True,
        consent_aggregate=False,
        consent_referral=True,
    ),
    # --- elsewhere in the country ---------------------------------------------------------------
    _ReportSpec(
        key="batangafo-displacement",
        reporter="commander",
        category="forced_displacement",
        when=_when(5, 12),
        time_precision="day",
        where=(18.30, 7.29),
        location_precision="settlement",
        place_name="Batangafo",
        admin1="Ouham",
        source_type="partner",
        grading="B2",
        perpetrator_type="non_state_armed_group",
        narrative="[DEMO] Humanitarian partners count about 1,200 people arriving at the "
        "Batangafo site over two days after armed men burned villages on the Kabo axis.",
        victims=_victims(displaced=1200),
    ),
    _ReportSpec(
        key="zemio-abduction",
        reporter="analyst",
        category="abduction",
        when=_when(19, 7),
        time_precision="day",
        where=(25.20, 5.10),
        location_precision="area",
        place_name="Zémio area",
        admin1="Haut-Mbomou",
        source_type="partner",
        grading="C3",
        perpetrator_type="non_state_armed_group",
        narrative="[DEMO] Partner reports four people abducted from fields outside Zémio and "
        "forced to carry loot; one escaped and returned after two days.",
        victims=_victims(
            abducted=4,
            disaggregation=(("male", "adult", 0, 0, 3, 0), ("female", "child", 0, 0, 1, 0)),
        ),
    ),
    _ReportSpec(
        key="paoua-market-attack",
        reporter="analyst",
        category="attack_on_civilians",
        when=_when(26, 15),
        time_precision="day",
        where=(16.43, 7.25),
        location_precision="settlement",
        place_name="Paoua",
        admin1="Ouham-Pendé",
        source_type="media",
        grading="D3",
        perpetrator_type="unknown",
        narrative="[DEMO] Local radio reports an attack on traders returning from the Paoua "
        "market; three people injured by gunfire, goods and motorbikes stolen.",
        victims=_victims(injured=3),
    ),
)


def _to_utc(moment: datetime) -> datetime:
    """``now`` as an aware UTC datetime (naive values are taken to be UTC already)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _truncate(moment: datetime, precision: str) -> datetime:
    """Start of the period a report's ``occurred_at`` names at the given time precision.

    Reports state the start of the period the event lies in ("some day in week W" is the
    Monday of W), so the demo truncates rather than stating a false exact time.
    """
    if precision == "exact":
        return moment.replace(second=0, microsecond=0)
    if precision == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if precision == "day":
        return day
    if precision == "week":
        return day - timedelta(days=day.weekday())
    raise ValueError(f"time precision {precision!r} is too coarse for a 30-day demo")


def report_id(key: str) -> str:
    """Deterministic UUID of the demo report with this key (see :data:`DEMO_NAMESPACE`)."""
    return str(uuid.uuid5(DEMO_NAMESPACE, f"report/{key}"))


#: How far back the demo reports reach; the dashboards' default windows are 30 days.
DEMO_WINDOW = timedelta(days=30)


def demo_field_reports(now: datetime) -> list[dict[str, Any]]:
    """Return the synthetic field reports, as ReportCreate JSON bodies, relative to ``now``.

    All ``occurred_at`` values fall within the 30 days before ``now`` (and not after it), so
    the demo's hotspot and early-warning windows always have something in them whenever it is
    loaded. Ids do not depend on ``now``: reloading the demo on another day re-submits the
    same report ids, so the API's idempotency key recognises them instead of filing copies.
    Every narrative starts with ``[DEMO]`` so no one mistakes them for real incidents. The
    dicts are fresh on every call; callers may mutate them.
    """
    now_utc = _to_utc(now)
    reports: list[dict[str, Any]] = []
    for spec in _REPORTS:
        days_ago, time_of_day = spec.when
        day = datetime.combine(now_utc.date() - timedelta(days=days_ago), time_of_day, UTC)
        occurred = _truncate(day, spec.time_precision)
        if not now_utc - DEMO_WINDOW <= occurred <= now_utc:
            # A scenario edit gone wrong, not a runtime condition: fail loudly.
            raise ValueError(f"demo report {spec.key} falls outside the demo window")
        reports.append(
            {
                "id": report_id(spec.key),
                "category": spec.category,
                "occurred_at": occurred.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "time_precision": spec.time_precision,
                "location": {"type": "Point", "coordinates": list(spec.where)},
                "location_accuracy_m": _ACCURACY_M[spec.location_precision],
                "location_precision": spec.location_precision,
                "place_name": spec.place_name,
                "admin1": spec.admin1,
                "admin2": None,
                "source_type": spec.source_type,
                "source_reliability": spec.grading[0],
                "information_credibility": spec.grading[1],
                "victims": copy.deepcopy(spec.victims),
                "perpetrator_type": spec.perpetrator_type,
                "perpetrator_name": None,
                "narrative": spec.narrative,
                "protection_concern": spec.protection_concern,
                "consent": {
                    "aggregate_reporting": spec.consent_aggregate,
                    "referral": spec.consent_referral,
                },
                "attachments": [],
                "reporter": spec.reporter,
            }
        )
    return reports


# ---------------------------------------------------------------------------------------------
# Protected sites
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSite:
    """A protected site: (lon, lat), kind as in ``server.sites.enums.SiteKind``, population
    where the demo "knows" it. Invented figures at real places."""

    name: str
    kind: str
    where: tuple[float, float]
    population: int | None = None


_SITES: tuple[DemoSite, ...] = (
    DemoSite("IDP site, southern edge of Bambari", "idp_camp", (20.648, 5.741), 8_500),
    DemoSite("Bambari central market", "market", (20.672, 5.763)),
    DemoSite("Bambari river water point", "water_point", (20.662, 5.752)),
    DemoSite("Village water point, Bambari-Grimari road", "water_point", (20.402, 5.741), 600),
    DemoSite("Ippy market", "market", (21.222, 6.258)),
    DemoSite("IDP site, Kaga-Bandoro", "idp_camp", (19.193, 7.003), 21_000),
    DemoSite("IDP site, Batangafo", "idp_camp", (18.296, 7.297), 31_000),
    DemoSite("IDP site PK3, Bria", "idp_camp", (22.006, 6.558), 40_000),
    DemoSite("Refugee site, Sam Ouandja", "refugee_site", (22.781, 9.305), 4_800),
    DemoSite("Protection of civilians site, Alindao", "poc_site", (21.207, 5.038), 12_000),
    DemoSite("Paoua market", "market", (16.436, 7.246)),
)


def demo_sites() -> list[DemoSite]:
    """Return the demo's protected sites: IDP camps where the scenario's attacks and
    displacement happen (Bambari, Kaga-Bandoro, Batangafo, Bria), a refugee site, a POC site,
    markets and water points, one of them in the village of the Grimari-road killing."""
    return list(_SITES)


# ---------------------------------------------------------------------------------------------
# Patrol tracks
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoPatrol:
    """A simulated patrol: a route of waypoints (lon, lat) walked or driven at ``speed_kmh``,
    starting ``days_ago`` days before ``now``'s UTC date at ``hour`` UTC, one fix every
    ``fix_every_s`` seconds. ``there_and_back`` retraces the route to the base."""

    key: str
    unit_code: str
    kind: str
    name: str
    route: tuple[tuple[float, float], ...]
    days_ago: int
    hour: float
    speed_kmh: float
    fix_every_s: int = 30
    there_and_back: bool = False


def _town(name: str) -> tuple[float, float]:
    return TOWNS[name]


#: The patrol story. The Bambari battalion patrols its towns and roads, but not evenly: the
#: IDP site attacked yesterday evening was last patrolled two days ago, the Grimari-road
#: village where five people were killed two days ago last saw a patrol six days ago, and the
#: villages east of Bambari where armed men camp see none. Elsewhere, a few patrols
#: between bases so that every sector has some presence on the map.
_PATROLS: tuple[DemoPatrol, ...] = (
    DemoPatrol(
        "bambari-town-foot-1",
        "cob-bambari",
        "foot",
        "Bambari town, market and IDP site",
        (_town("Bambari"), (20.672, 5.763), (20.648, 5.741), (20.660, 5.752), _town("Bambari")),
        2,
        6.5,
        4.0,
    ),
    DemoPatrol(
        "bambari-town-foot-2",
        "cob-bambari",
        "foot",
        "Bambari town, northern quarters",
        (_town("Bambari"), (20.700, 5.785), (20.712, 5.794), (20.690, 5.775), _town("Bambari")),
        1,
        7.0,
        4.0,
    ),
    DemoPatrol(
        "bambari-idp-night",
        "cob-bambari",
        "night",
        "Night patrol round the IDP site",
        ((20.655, 5.748), (20.640, 5.738), (20.650, 5.733), (20.655, 5.748)),
        3,
        21.0,
        3.0,
    ),
    DemoPatrol(
        "bambari-ippy-road",
        "cob-bambari",
        "mobile",
        "Bambari-Ippy road",
        (_town("Bambari"), (20.861, 5.948), (21.05, 6.12), _town("Ippy")),
        5,
        6.0,
        25.0,
        there_and_back=True,
    ),
    DemoPatrol(
        "grimari-road",
        "cob-grimari",
        "mobile",
        "Grimari-Bambari road",
        (_town("Grimari"), (20.25, 5.74), (20.402, 5.741), (20.55, 5.75), _town("Bambari")),
        6,
        7.0,
        25.0,
        there_and_back=True,
    ),
    DemoPatrol(
        "ippy-town-foot",
        "cob-ippy",
        "foot",
        "Ippy town and market",
        (_town("Ippy"), (21.222, 6.258), (21.235, 6.270), _town("Ippy")),
        1,
        8.0,
        4.0,
    ),
    DemoPatrol(
        "kaga-bandoro-batangafo",
        "cob-kaga-bandoro",
        "long_range",
        "Kaga-Bandoro to Batangafo",
        (_town("Kaga-Bandoro"), (18.90, 7.10), (18.60, 7.22), _town("Batangafo")),
        4,
        5.0,
        25.0,
        fix_every_s=60,
    ),
    DemoPatrol(
        "kaga-bandoro-firewood",
        "cob-kaga-bandoro",
        "escort_firewood",
        "Firewood escort, Kaga-Bandoro IDP site",
        ((19.193, 7.003), (19.215, 7.020), (19.235, 7.030)),
        3,
        7.0,
        3.0,
        there_and_back=True,
    ),
    DemoPatrol(
        "bria-town-foot",
        "cob-bria",
        "foot",
        "Bria town and IDP site PK3",
        (_town("Bria"), (22.006, 6.558), (21.985, 6.530), _town("Bria")),
        2,
        7.0,
        4.0,
    ),
    DemoPatrol(
        "bria-sam-ouandja-air",
        "cob-bria",
        "air",
        "Helicopter reconnaissance Bria to Sam Ouandja",
        (_town("Bria"), (22.40, 8.08), _town("Sam Ouandja")),
        8,
        9.0,
        180.0,
        fix_every_s=60,
        there_and_back=True,
    ),
    DemoPatrol(
        "bangui-pk12-mobile",
        "cob-bangui",
        "mobile",
        "Bangui to PK12",
        (_town("Bangui"), (18.54, 4.42), _town("Bangui PK12")),
        1,
        9.0,
        20.0,
        there_and_back=True,
    ),
    DemoPatrol(
        "paoua-market-escort",
        "cob-paoua",
        "escort_market",
        "Market-day escort, Paoua",
        (_town("Paoua"), (16.436, 7.246), (16.470, 7.265)),
        7,
        8.0,
        4.0,
        there_and_back=True,
    ),
)


def patrol_id(key: str) -> uuid.UUID:
    """Deterministic id of the demo patrol with this key (see :data:`DEMO_NAMESPACE`)."""
    return uuid.uuid5(DEMO_NAMESPACE, f"patrol/{key}")


def _wobble(index: int) -> tuple[float, float]:
    """A deterministic GPS wobble of a few metres (no randomness in the demo)."""
    return (
        0.00012 * math.sin(index * 1.7) + 0.00005 * math.sin(index * 0.31),
        0.00010 * math.cos(index * 1.3) + 0.00004 * math.sin(index * 0.53),
    )


def patrol_fixes(patrol: DemoPatrol, now: datetime) -> list[tuple[datetime, float, float]]:
    """The fixes (time, lon, lat) of one demo patrol: along its route at its speed, one every
    ``fix_every_s`` seconds, starting ``days_ago`` days before ``now``'s date at ``hour``."""
    route = list(patrol.route)
    if patrol.there_and_back:
        route += route[-2::-1]
    start = datetime.combine(
        _to_utc(now).date() - timedelta(days=patrol.days_ago), time(0, 0), UTC
    ) + timedelta(hours=patrol.hour)
    step_km = patrol.speed_kmh * patrol.fix_every_s / 3600.0
    fixes: list[tuple[datetime, float, float]] = []
    elapsed = 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(route):
        km_per_deg_lon = 111.32 * math.cos(math.radians((y0 + y1) / 2))
        length = math.hypot((x1 - x0) * km_per_deg_lon, (y1 - y0) * 110.57)
        steps = max(1, math.ceil(length / step_km))
        for j in range(steps):
            f = j / steps
            dx, dy = _wobble(len(fixes))
            fixes.append(
                (
                    start
                    + timedelta(seconds=round(elapsed + f * length / patrol.speed_kmh * 3600)),
                    round(x0 + f * (x1 - x0) + dx, 6),
                    round(y0 + f * (y1 - y0) + dy, 6),
                )
            )
        elapsed += length / patrol.speed_kmh * 3600
    fixes.append((start + timedelta(seconds=round(elapsed)), route[-1][0], route[-1][1]))
    # Rounding can make two neighbouring times equal on very short legs: keep the first.
    unique: list[tuple[datetime, float, float]] = []
    for fix in fixes:
        if not unique or fix[0] > unique[-1][0]:
            unique.append(fix)
    return unique


def demo_patrols() -> list[DemoPatrol]:
    """Return the simulated patrols (see the comment on ``_PATROLS`` for the story)."""
    return list(_PATROLS)
