"""Builders for the access-policy tests: valid report bodies, and a set of sensitive reports
whose narrative, names, victim counts, exact time, exact point and fine cells are canaries that
must never reach a reader without need-to-know.

Every canary is chosen so that a chance match elsewhere in a response is impossible: strings
carry a fresh uuid, counts are six-digit numbers matched as whole tokens (a uuid group has 4, 8
or 12 hex digits, a timestamp's fraction follows a dot), coordinates have six unusual decimals,
and times carry their date.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from geo import LocationPrecision
from server.reports.derived import REDACTION_RESOLUTION, placement
from tests.seed import POINT_A1_1

API = "/api/v1"

#: Keys of a report shown without need-to-know (ReportRedacted): nothing else may appear.
REDACTED_REPORT_KEYS = frozenset({"detail", "id", "category", "family", "day", "h3_res6"})
#: Keys of an incident shown without need-to-know (IncidentRedacted).
REDACTED_INCIDENT_KEYS = REDACTED_REPORT_KEYS | {"report_count"}

#: The roles that never see a sensitive report in full (everyone but the protection officer).
NON_PROTECTION_USERS = ("admin", "analyst", "commander_a", "officer_a", "officer_b")


def point(longitude: float, latitude: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [longitude, latitude]}


def report_body(**overrides: Any) -> dict[str, Any]:
    """A valid ``ReportCreate`` body (a normal report at POINT_A1_1) with ``overrides`` applied."""
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "category": "killing_of_civilians",
        "occurred_at": "2025-06-14T09:00:00Z",
        "time_precision": "exact",
        "location": point(*POINT_A1_1),
        "location_accuracy_m": 10,
        "location_precision": "exact",
        "source_type": "witness",
        "narrative": "Routine report for the access-policy tests.",
    }
    body.update(overrides)
    return body


def fine_cells(longitude: float, latitude: float) -> list[str]:
    """The point's cells finer than the redaction resolution (hex strings): each would locate
    the point better than the res-6 cell a redacted reader may know."""
    from geo import cells as geo_cells

    place = placement(longitude, latitude, LocationPrecision.EXACT, 10)
    return [
        geo_cells.cell_to_string(cell)
        for resolution, cell in sorted(place.cells.items())
        if cell and resolution > REDACTION_RESOLUTION
    ]


def redaction_cell(longitude: float, latitude: float) -> int:
    place = placement(longitude, latitude, LocationPrecision.EXACT, 10)
    cell = place.cells[REDACTION_RESOLUTION]
    assert cell
    return cell


def _four_decimals(value: float) -> str:
    text = repr(value)
    return text[: text.index(".") + 5]


def _whole_number(value: int) -> re.Pattern[bytes]:
    return re.compile(rb"(?<![0-9A-Za-z.])" + str(value).encode() + rb"(?![0-9A-Za-z.])")


@dataclass
class Canary:
    """One sensitive report and everything about it that only need-to-know may see."""

    name: str
    tier: str
    body: dict[str, Any]
    created_by: str
    strings: dict[str, str]
    numbers: dict[str, int]
    longitude: float
    latitude: float
    occurred_at: str
    incident_id: str | None = None

    @property
    def id(self) -> str:
        return str(self.body["id"])

    def tokens(self) -> dict[str, re.Pattern[bytes]]:
        """label → pattern; a match anywhere in a response body is a leak."""
        out: dict[str, re.Pattern[bytes]] = {}
        for label, text in self.strings.items():
            out[label] = re.compile(re.escape(text.encode()))
        for label, value in self.numbers.items():
            out[label] = _whole_number(value)
        for label, coordinate in (("longitude", self.longitude), ("latitude", self.latitude)):
            out[label] = re.compile(re.escape(repr(coordinate).encode()))
        # Also the point rounded to 4 decimals (~11 m, far finer than a res-6 cell), as a pair
        # in either order: one rounded number alone can match a hexagon vertex by chance.
        lon4, lat4 = (re.escape(_four_decimals(c)) for c in (self.longitude, self.latitude))
        out["point~4dp"] = re.compile(rf"{lon4}\d*\s*,\s*{lat4}|{lat4}\d*\s*,\s*{lon4}".encode())
        out["exact time"] = re.compile(re.escape(self.occurred_at[:19].encode()))
        for resolution, cell in zip(
            range(7, 11), fine_cells(self.longitude, self.latitude), strict=True
        ):
            out[f"res-{resolution} cell"] = re.compile(re.escape(cell.encode()))
        return out

    def leaks(self, content: bytes) -> list[str]:
        return [label for label, pattern in self.tokens().items() if pattern.search(content)]


@dataclass
class CanarySet:
    canaries: list[Canary] = field(default_factory=list)

    def __iter__(self) -> Iterator[Canary]:
        return iter(self.canaries)

    def by_name(self, name: str) -> Canary:
        return next(c for c in self.canaries if c.name == name)

    def leaks(self, content: bytes) -> list[str]:
        return [f"{c.name}: {label}" for c in self.canaries for label in c.leaks(content)]


#: name, ReportCreate overrides, expected tier, (lon, lat), author. Points lie well inside the
#: AOR of the author's battalion (bn-a1: lon 20.0-20.5, bn-b1: lon 20.5-21.0; lat 5.5-6.0), and
#: several kilometres from the seed's POINT_* where the tests file normal reports (whose own
#: fine cells are rightly visible), so no fine cell is shared.
SENSITIVE_SPECS: list[tuple[str, dict[str, Any], str, tuple[float, float], str]] = [
    (
        "sexual_violence",
        {"category": "sexual_violence"},
        "restricted",
        (20.093457, 5.681234),
        "officer_a",
    ),
    (
        "child_recruitment",
        {"category": "recruitment_use_of_children"},
        "restricted",
        (20.181937, 5.632871),
        "officer_a",
    ),
    (
        "informant",
        {"category": "killing_of_civilians", "source_type": "confidential_informant"},
        "restricted",
        (20.314159, 5.826535),
        "officer_a",
    ),
    (
        "child_victim",
        {"category": "killing_of_civilians"},
        "restricted",
        (20.271828, 5.718281),
        "officer_a",
    ),
    (
        "sexual_exploitation_abuse",
        {"category": "sexual_exploitation_abuse", "perpetrator_type": "peacekeepers"},
        "strictly_confidential",
        (20.412373, 5.577216),
        "officer_a",
    ),
    (
        "protection_concern",
        {"category": "armed_clash", "protection_concern": True},
        "restricted",
        (20.161803, 5.898979),
        "officer_a",
    ),
    ("sexual_violence_b1", {"category": "rape"}, "restricted", (20.693147, 5.707107), "officer_b"),
]

_TIMES = [
    "2025-06-14T14:37:12Z",
    "2025-06-13T11:23:58Z",
    "2025-06-12T07:41:33Z",
    "2025-06-11T16:09:47Z",
    "2025-06-10T21:52:19Z",
    "2025-06-09T05:18:26Z",
    "2025-06-08T13:44:51Z",
]


def make_canary(
    name: str,
    overrides: dict[str, Any],
    tier: str,
    where: tuple[float, float],
    author: str,
    occurred_at: str,
    rng: random.Random,
) -> Canary:
    tag = uuid.uuid4().hex
    strings = {
        "narrative": f"CANARY-NARRATIVE-{tag}",
        "place_name": f"CANARY-PLACE-{tag}",
        "perpetrator_name": f"CANARY-PERPETRATOR-{tag}",
        "admin2": f"CANARY-ADMIN2-{tag}",
    }
    n = rng.sample(range(100_000, 1_000_000), 7)
    numbers = {
        "killed.low": n[0],
        "killed.best": n[0] + 1,
        "killed.high": n[0] + 2,
        "injured": n[1],
        "abducted": n[2],
        "displaced": n[3],
        "disaggregation.injured": n[4],
        "disaggregation.abducted": n[5],
    }
    age_group = "child" if name == "child_victim" else "adult"
    body = report_body(
        occurred_at=occurred_at,
        location=point(*where),
        place_name=strings["place_name"],
        admin2=strings["admin2"],
        perpetrator_name=strings["perpetrator_name"],
        narrative=strings["narrative"],
        victims={
            "killed": {"low": n[0], "best": n[0] + 1, "high": n[0] + 2},
            "injured": n[1],
            "abducted": n[2],
            "displaced": n[3],
            "disaggregation": [
                {
                    "sex": "female",
                    "age_group": age_group,
                    "injured": n[4],
                    "abducted": n[5],
                }
            ],
        },
        **overrides,
    )
    return Canary(
        name=name,
        tier=tier,
        body=body,
        created_by=author,
        strings=strings,
        numbers=numbers,
        longitude=where[0],
        latitude=where[1],
        occurred_at=occurred_at,
    )


def create_canaries(api: Any) -> CanarySet:
    """File every sensitive report through the API (as its author) and note its incident."""
    rng = random.Random(uuid.uuid4().int)
    out = CanarySet()
    protection = api.as_("protection")
    for (name, overrides, tier, where, author), occurred_at in zip(
        SENSITIVE_SPECS, _TIMES, strict=True
    ):
        canary = make_canary(name, overrides, tier, where, author, occurred_at, rng)
        response = api.as_(author).post(f"{API}/reports", json=canary.body)
        assert response.status_code == 201, response.text
        full = protection.get(f"{API}/reports/{canary.id}")
        assert full.status_code == 200, full.text
        assert full.json()["sensitivity"] == tier, (name, full.json()["sensitivity"])
        canary.incident_id = full.json()["incident_id"]
        out.canaries.append(canary)
    return out


def audit_events(api: Any, action: str, *, after_seq: int = 0) -> list[dict[str, Any]]:
    """Audit events with ``action`` after ``after_seq``, read through the API as admin."""
    events: list[dict[str, Any]] = []
    while True:
        response = api.as_("admin").get(
            f"{API}/audit", params={"action": action, "after_seq": after_seq, "limit": 1000}
        )
        assert response.status_code == 200, response.text
        page = response.json()
        events.extend(page)
        if len(page) < 1000:
            return events
        after_seq = page[-1]["seq"]


def last_audit_seq(api: Any) -> int:
    after = 0
    while True:
        response = api.as_("admin").get(f"{API}/audit", params={"after_seq": after, "limit": 1000})
        assert response.status_code == 200, response.text
        page = response.json()
        if not page:
            return after
        after = page[-1]["seq"]
