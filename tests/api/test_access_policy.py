"""Need-to-know over the whole API: the one access policy, proven per endpoint and per role.

SECURITY.md Z1 (BOLA), Z2 (canary), Z3 (BOPLA read), Z4 (mass assignment), Z9 (fail closed),
L1 (audit of sensitive reads) and rule 3 (cells, not points). Sensitive reports carry canary
narratives, names, counts, times, points and fine cells (tests/api/_access_fixtures.py); no
role but the protection officer may receive any of them from any route the API has.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import Uuid, bindparam, text, update

from geo import cells as geo_cells
from server.incidents.models import Incident
from server.reports.models import Report
from server.reports.schemas import ReportRead
from tests.api._access_fixtures import (
    API,
    NON_PROTECTION_USERS,
    REDACTED_INCIDENT_KEYS,
    REDACTED_REPORT_KEYS,
    Canary,
    CanarySet,
    audit_events,
    create_canaries,
    last_audit_seq,
    point,
    redaction_cell,
    report_body,
)
from tests.seed import POINT_A1_1, POINT_A1_2, POINT_B1
from tests.sync.kit import SYNC, SyncDevice

pytestmark = pytest.mark.integration

REPORTS = f"{API}/reports"
INCIDENTS = f"{API}/incidents"

#: Path parameters the sweep knows how to fill. A GET route with any other parameter fails
#: ``test_every_get_route_is_covered_by_the_sweep`` until a substitution is added here.
KNOWN_PATH_PARAMETERS = (
    "report_id",
    "incident_id",
    "unit_id",
    "user_id",
    "device_id",
    "patrol_id",
    "site_id",
    "cell",
    "alert_id",
    "rule_id",
    "silence_id",
    "channel_id",
)
#: Path parameters that name a report or something derived from reports (BOLA targets).
OBJECT_PARAMETERS = ("report_id", "incident_id")
#: Statuses a GET may answer in the sweep; 422 would mean the sweep did not exercise the route.
SWEEP_STATUSES = {200, 403, 404}
MAX_PAGES = 50


# --------------------------------------------------------------------------- the world


@dataclass
class World:
    canaries: CanarySet
    normal_report_id: str
    normal_incident_id: str
    device_id: str
    units: dict[str, int]
    users: dict[str, int]
    substitutions: dict[str, list[str]] = field(default_factory=dict)


@pytest.fixture
def canaries(api: Any) -> CanarySet:
    return create_canaries(api)


@pytest.fixture
def world(api: Any, mission: Any, canaries: CanarySet) -> World:
    officer = api.as_("officer_a")
    normal = report_body(narrative="An ordinary report, visible in full to its unit.")
    created = officer.post(REPORTS, json=normal)
    assert created.status_code == 201, created.text
    device = officer.post(
        f"{API}/devices",
        json={"id": str(uuid.uuid4()), "name": "Patrol phone 1", "platform": "android-14"},
    )
    assert device.status_code == 201, device.text
    units = {code: mission.unit_id(code) for code in mission.units}
    users = {name: user.id for name, user in mission.users.items()}
    patrol = officer.post(f"{API}/patrols", json={"kind": "foot", "status": "underway"})
    assert patrol.status_code == 201, patrol.text
    start = datetime.now(UTC) - timedelta(hours=2)
    fixes = [
        {"t": _iso(start + timedelta(minutes=i)), "lon": 20.12 + 0.001 * i, "lat": 5.75}
        for i in range(5)
    ]
    track = officer.post(
        f"{API}/patrols/{patrol.json()['id']}/track/points", json={"points": fixes}
    )
    assert track.status_code == 200, track.text
    site = api.as_("protection").post(
        f"{API}/sites",
        json={"name": "IDP site", "kind": "idp_camp", "location": point(*POINT_A1_2)},
    )
    assert site.status_code == 201, site.text
    # The canaries raised alerts (sensitive ones among them): every alert, as the sections that
    # see them all find them, plus a silence and a delivery channel.
    alert_ids = sorted(
        {
            str(item["id"])
            for user in ("protection", "conduct")
            for item in api.as_(user).get(f"{API}/alerts?limit=500").json()["items"]
        }
    )
    assert alert_ids, "the canary reports raised no alerts"
    silence = api.as_("commander_a").post(
        f"{API}/alerts/silences",
        json={
            "matchers": ['rule="flash-tension"'],
            "ends_at": _iso(datetime.now(UTC) + timedelta(hours=1)),
            "comment": "sweep",
        },
    )
    assert silence.status_code == 201, silence.text
    channel = api.as_("admin").post(
        f"{API}/alerts/channels",
        json={
            "unit_id": units["bn-a1"],
            "kind": "webhook",
            "address": "http://127.0.0.1:9/hook",
            "secret": "sweep-secret-0123456789",
        },
    )
    assert channel.status_code == 201, channel.text
    out = World(
        canaries=canaries,
        normal_report_id=normal["id"],
        normal_incident_id=created.json()["incident_id"],
        device_id=device.json()["id"],
        units=units,
        users=users,
    )
    out.substitutions = {
        "report_id": [c.id for c in canaries] + [out.normal_report_id],
        "incident_id": [str(c.incident_id) for c in canaries] + [out.normal_incident_id],
        "unit_id": [str(units["bn-a1"]), str(units["mission-hq"])],
        "user_id": [str(users["officer_a"]), str(users["protection"])],
        "device_id": [out.device_id],
        "patrol_id": [patrol.json()["id"]],
        "site_id": [str(site.json()["id"])],
        "cell": [
            geo_cells.cell_to_string(int(geo_cells.point_cells([lat], [lon], 8)[0]))
            for lon, lat in (POINT_A1_2, POINT_B1)
        ],
        "alert_id": alert_ids,
        "rule_id": ["flash-sexual-violence", "flash-misconduct"],
        "silence_id": [str(silence.json()["id"])],
        "channel_id": [str(channel.json()["id"])],
    }
    return out


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _occurred(canary: Canary) -> datetime:
    return datetime.fromisoformat(canary.occurred_at.replace("Z", "+00:00"))


def _tiny_box(longitude: float, latitude: float, half: float = 0.0005) -> str:
    return f"{longitude - half},{latitude - half},{longitude + half},{latitude + half}"


def query_variants(path: str, world: World) -> list[dict[str, Any]]:
    """Query strings each GET route is called with, besides none at all."""
    cs = list(world.canaries)
    windows = [
        {
            "occurred_from": _iso(_occurred(c) - timedelta(seconds=1)),
            "occurred_to": _iso(_occurred(c) + timedelta(seconds=1)),
        }
        for c in cs
    ]
    if path == REPORTS:
        variants: list[dict[str, Any]] = [
            {"format": "geojson"},
            {"limit": 1},
            {"limit": 1, "format": "geojson"},
            {"bbox": "20.0,5.5,21.0,6.0"},
            {"bbox": "20.0,5.5,21.0,6.0", "format": "geojson"},
            {"family": "sexual_violence"},
            {"family": "sexual_violence", "format": "geojson"},
            {"family": ["misconduct", "grave_violations_children"]},
            {"unit": world.units["bn-a1"]},
            {"unit": world.units["coy-a1-1"], "format": "geojson"},
            {"verification_state": ["reported", "under_verification"]},
        ]
        for c, window in zip(cs, windows, strict=True):
            variants.append({"bbox": _tiny_box(c.longitude, c.latitude)})
            variants.append({"bbox": _tiny_box(c.longitude, c.latitude), "format": "geojson"})
            variants.append({"category": c.body["category"]})
            variants.append(window)
        return variants
    if path == INCIDENTS:
        return [
            {"limit": 1},
            {"family": "sexual_violence"},
            {"category": sorted({c.body["category"] for c in cs})},
            {"include_merged": "true"},
            *windows,
        ]
    if path == f"{INCIDENTS}/merge-suggestions":
        return [
            {
                "max_km": 500,
                "max_hours": 2160,
                "occurred_from": "2025-01-01T00:00:00Z",
                "occurred_to": "2026-01-01T00:00:00Z",
                "limit": 500,
            }
        ]
    if path == f"{INCIDENTS}/{{incident_id}}/merge-suggestions":
        return [{"max_km": 500, "max_hours": 2160, "limit": 500}]
    if path == f"{API}/hotspots":
        variants = [{"resolution": r, "window_days": w} for r in (6, 7, 8, 9) for w in (30, 365)]
        variants += [
            {"resolution": 6, "family": "sexual_violence"},
            {"resolution": 6, "family": ["misconduct", "grave_violations_children"]},
            {"resolution": 8, "unit": world.units["bn-a1"]},
            {"resolution": 8, "as_of": _iso(datetime.now(UTC))},
            {"resolution": 8, "half_life_days": 7},
        ]
        variants += [{"resolution": 6, "category": c.body["category"]} for c in cs]
        return variants
    if path == f"{API}/patrols":
        return [
            {"limit": 1},
            {
                "unit": world.units["bn-a1"],
                "status": "underway",
                "kind": "foot",
                "since": _iso(datetime.now(UTC) - timedelta(days=1)),
            },
        ]
    if path == f"{API}/sites":
        return [{"kind": "idp_camp"}]
    if path == f"{API}/alerts":
        return [
            {"limit": 1},
            {"state": "open", "severity": "amber"},
            {"state": "open", "unit_id": world.units["coy-a1-1"]},
            {"severity": "red"},
        ]
    if path == f"{API}/alerts/kpis":
        return [{"since": _iso(datetime.now(UTC) - timedelta(days=1))}]
    if path == f"{API}/alerts/silences":
        return [{"active": "false"}]
    if path == f"{API}/coverage":
        day = datetime.now(UTC)
        return [
            {"resolution": 6},
            {
                "unit": world.units["bn-a1"],
                "resolution": 8,
                "since": _iso(day - timedelta(days=2)),
                "until": _iso(day),
                "patrol_unit": world.units["bn-a1"],
            },
        ]
    if path == f"{API}/gaps":
        return [
            {"resolution": 6},
            {"unit": world.units["bn-a1"], "threat": ["site", "flash"], "resolution": 8},
            {"limit": 5},
        ]
    if path == f"{SYNC}/pull":
        return [{"limit": 1}, {"limit": 500}]
    if path == f"{API}/audit":
        return [
            {"limit": 1000},
            {"limit": 1000, "after_seq": 0, "action": "report_created"},
            *({"object_id": c.id} for c in cs),
        ]
    return []


def get_routes(app: Any) -> dict[str, dict[str, Any]]:
    return {path: ops["get"] for path, ops in app.openapi()["paths"].items() if "get" in ops}


def path_parameters(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


def urls_for(path: str, world: World) -> Iterator[str]:
    names = path_parameters(path)
    unknown = [n for n in names if n not in world.substitutions]
    assert not unknown, (
        f"GET {path} has path parameter(s) {unknown} the canary sweep cannot fill; add them to "
        "KNOWN_PATH_PARAMETERS and World.substitutions so the route is covered"
    )
    for values in itertools.product(*(world.substitutions[n] for n in names)):
        url = path.format(**dict(zip(names, values, strict=True)))
        for query in [{}, *query_variants(path, world)]:
            yield f"{url}?{urlencode(query, doseq=True)}" if query else url


def _decoded_cursor(cursor: str) -> bytes:
    """Cursors are opaque to clients but not to an attacker: scan what they encode too."""
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except ValueError:
        return b""


def fetch_all_pages(client: Any, url: str) -> list[Any]:
    """The response, then every further page its ``next_cursor`` leads to."""
    responses = [client.get(url)]
    for _ in range(MAX_PAGES):
        last = responses[-1]
        if last.status_code != 200 or "json" not in last.headers.get("content-type", ""):
            break
        body = last.json()
        cursor = body.get("next_cursor") if isinstance(body, dict) else None
        if not cursor:
            break
        joiner = "&" if "?" in url else "?"
        responses.append(client.get(f"{url}{joiner}{urlencode({'cursor': cursor})}"))
    return responses


@dataclass
class Sweep:
    calls: int = 0
    problems: list[str] = field(default_factory=list)
    content: list[bytes] = field(default_factory=list)


def sweep_get_routes(api: Any, app: Any, world: World, username: str) -> Sweep:
    """Call every GET route the API has (with every substitution and query variant) as
    ``username``; collect leaks and statuses outside SWEEP_STATUSES."""
    user = api.as_(username)
    device = SyncDevice.for_user(api, username)
    result = Sweep()
    for path in sorted(get_routes(app)):
        # Sync routes answer to the user's device credential, not the user's own token.
        device_route = path.startswith(SYNC) and not path.startswith(f"{SYNC}/reports/")
        client = _DeviceGet(device) if device_route else user
        for url in urls_for(path, world):
            for response in fetch_all_pages(client, url):
                result.calls += 1
                content = response.content
                if response.status_code == 200 and "json" in response.headers.get(
                    "content-type", ""
                ):
                    body = response.json()
                    if isinstance(body, dict) and body.get("next_cursor"):
                        content += b"\n" + _decoded_cursor(body["next_cursor"])
                result.content.append(content)
                if response.status_code not in SWEEP_STATUSES:
                    result.problems.append(
                        f"GET {response.request.url} -> {response.status_code}: "
                        f"{response.text[:200]}"
                    )
                for leak in world.canaries.leaks(content):
                    result.problems.append(f"GET {response.request.url} leaks {leak}")
    return result


@dataclass
class _DeviceGet:
    """GETs with a provisioned device's sync headers (what ``fetch_all_pages`` needs)."""

    device: SyncDevice

    def get(self, url: str) -> Any:
        return self.device.http.get(url, headers=self.device.headers())


def write_bodies(path: str, method: str, canary: Canary) -> dict[str, Any] | None:
    """A valid body for each write route that takes a report or incident id."""
    known: dict[tuple[str, str], dict[str, Any]] = {
        ("patch", f"{REPORTS}/{{report_id}}"): {"version": 1, "place_name": "probe"},
        ("post", f"{REPORTS}/{{report_id}}/verification"): {"to_state": "under_verification"},
        ("post", f"{INCIDENTS}/{{incident_id}}/unmerge"): {"report_ids": [canary.id]},
        ("post", f"{REPORTS}/{{report_id}}/removal"): {"reason": "probe"},
    }
    return known.get((method, path))


def object_write_routes(app: Any) -> list[tuple[str, str]]:
    out = []
    for path, ops in app.openapi()["paths"].items():
        if not set(path_parameters(path)) & set(OBJECT_PARAMETERS):
            continue
        out.extend((path, method) for method in ops if method != "get")
    return sorted(out)


def _call(client: Any, method: str, url: str, body: dict[str, Any] | None) -> Any:
    if method == "get":
        return client.get(url)
    return getattr(client, method)(url, json=body)


def _fill(path: str, canary: Canary) -> str:
    return path.format(report_id=canary.id, incident_id=canary.incident_id)


# --------------------------------------------------------------------------- 1. canary sweep


def test_every_get_route_is_covered_by_the_sweep(app: Any, world: World) -> None:
    """A new GET route (or query parameter) the sweep cannot exercise fails here, so that
    future endpoints are covered by the canary test or flagged."""
    problems = []
    for path, operation in get_routes(app).items():
        unknown = [p for p in path_parameters(path) if p not in KNOWN_PATH_PARAMETERS]
        if unknown:
            problems.append(f"GET {path}: no substitution for path parameter(s) {unknown}")
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        exercised = {name for v in query_variants(path, world) for name in v}
        if "limit" in exercised:
            exercised.add("cursor")  # followed page by page
        if declared - exercised:
            problems.append(
                f"GET {path}: query parameter(s) {sorted(declared - exercised)} are not "
                "exercised by query_variants()"
            )
    for path, method in object_write_routes(app):
        if write_bodies(path, method, world.canaries.canaries[0]) is None:
            problems.append(f"{method.upper()} {path}: no probe body in write_bodies()")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("username", NON_PROTECTION_USERS)
def test_canary_absent_from_every_get_route(
    api: Any, app: Any, world: World, username: str
) -> None:
    sweep = sweep_get_routes(api, app, world, username)
    assert sweep.calls > 100, sweep.calls
    assert not sweep.problems, f"{len(sweep.problems)} problem(s):\n" + "\n".join(
        sweep.problems[:60]
    )


@pytest.mark.parametrize("username", NON_PROTECTION_USERS)
def test_canary_absent_from_write_routes_on_sensitive_ids(
    api: Any, app: Any, world: World, username: str
) -> None:
    """Every write route that takes a report or incident id, tried on each sensitive id, is
    refused without echoing anything of the report (and changes nothing)."""
    client = api.as_(username)
    problems = []
    for canary in world.canaries:
        for path, method in object_write_routes(app):
            body = write_bodies(path, method, canary)
            response = _call(client, method, _fill(path, canary), body)
            if response.status_code not in (403, 404):
                problems.append(
                    f"{method.upper()} {path} ({canary.name}) -> {response.status_code}"
                )
            problems.extend(
                f"{method.upper()} {path} ({canary.name}) leaks {leak}"
                for leak in world.canaries.leaks(response.content)
            )
        merge = client.post(
            f"{INCIDENTS}/merge",
            json={"incident_ids": [canary.incident_id, world.normal_incident_id]},
        )
        if merge.status_code not in (403, 404):
            problems.append(f"POST /incidents/merge ({canary.name}) -> {merge.status_code}")
        problems.extend(f"merge leaks {leak}" for leak in world.canaries.leaks(merge.content))
    assert not problems, "\n".join(problems)
    protection = api.as_("protection")
    for canary in world.canaries:
        stored = protection.get(f"{REPORTS}/{canary.id}").json()
        assert stored["version"] == 1
        assert stored["verification_state"] == "reported"
        assert stored["place_name"] == canary.strings["place_name"]


def test_protection_officer_receives_every_canary(api: Any, app: Any, world: World) -> None:
    """The sweep can see what it looks for: as protection officer every token of every
    sensitive report turns up, the detail endpoint carrying them all."""
    protection = api.as_("protection")
    for canary in world.canaries:
        response = protection.get(f"{REPORTS}/{canary.id}")
        assert response.status_code == 200, response.text
        assert canary.strings["narrative"] in response.text
        missing = set(canary.tokens()) - set(canary.leaks(response.content))
        assert not missing, f"{canary.name}: tokens not found in the full report: {missing}"
    sweep = sweep_get_routes(api, app, world, "protection")
    assert sweep.problems, "the sweep found nothing for the protection officer"
    found = set(world.canaries.leaks(b"\n".join(sweep.content)))
    expected = {f"{c.name}: {label}" for c in world.canaries for label in c.tokens()}
    assert found == expected


# --------------------------------------------------------------------------- 2. shapes (BOPLA)


def _in_scope(username: str, canary: Canary) -> bool:
    if username in ("admin", "analyst", "protection"):
        return True
    if username in ("officer_a", "commander_a"):
        return canary.created_by == "officer_a"
    if username in ("officer_b", "commander_b"):
        return canary.created_by == "officer_b"
    raise AssertionError(username)


def _hexagon(canary: Canary) -> list[list[float]]:
    ring = geo_cells.cell_boundary(redaction_cell(canary.longitude, canary.latitude))
    return [[round(x, 6), round(y, 6)] for x, y in ring]


@pytest.mark.parametrize("username", NON_PROTECTION_USERS)
def test_sensitive_reports_have_exactly_the_redacted_keys(
    api: Any, world: World, username: str
) -> None:
    client = api.as_(username)
    ids = {c.id: c for c in world.canaries}
    visible = {c.id for c in world.canaries if _in_scope(username, c)}
    assert visible, "every role sees at least one sensitive report in redacted form"

    for canary in world.canaries:
        response = client.get(f"{REPORTS}/{canary.id}")
        if canary.id not in visible:
            assert response.status_code == 404, (canary.name, response.text)
            continue
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == REDACTED_REPORT_KEYS, (canary.name, set(body) - REDACTED_REPORT_KEYS)
        assert body["detail"] == "redacted"
        assert body["day"] == canary.occurred_at[:10]
        expected_cell = geo_cells.cell_to_string(redaction_cell(canary.longitude, canary.latitude))
        assert body["h3_res6"] == expected_cell
        assert "ETag" not in response.headers

        incident = client.get(f"{INCIDENTS}/{canary.incident_id}")
        assert incident.status_code == 200, incident.text
        assert set(incident.json()) == REDACTED_INCIDENT_KEYS

    listed = client.get(REPORTS, params={"limit": 1000}).json()["items"]
    in_list = {item["id"]: item for item in listed if item["id"] in ids}
    assert set(in_list) == visible
    for item in in_list.values():
        assert set(item) == REDACTED_REPORT_KEYS

    incidents = client.get(INCIDENTS, params={"limit": 1000}).json()["items"]
    sensitive_incidents = {str(c.incident_id) for c in world.canaries}
    for item in incidents:
        if item["id"] in sensitive_incidents:
            assert set(item) == REDACTED_INCIDENT_KEYS

    collection = client.get(REPORTS, params={"limit": 1000, "format": "geojson"}).json()
    features = {f["id"]: f for f in collection["features"] if f["id"] in ids}
    assert set(features) == visible
    for report_id, feature in features.items():
        assert set(feature["properties"]) == REDACTED_REPORT_KEYS
        geometry = feature["geometry"]
        assert geometry["type"] == "Polygon", geometry
        assert geometry["coordinates"] == [_hexagon(ids[report_id])]


@pytest.mark.parametrize("username", ["analyst", "commander_a", "officer_a", "officer_b"])
def test_create_answers_a_sensitive_report_in_redacted_form(api: Any, username: str) -> None:
    where = POINT_B1 if username == "officer_b" else POINT_A1_2
    body = report_body(category="sexual_violence", location=point(*where), narrative="CANARY-x")
    response = api.as_(username).post(REPORTS, json=body)
    assert response.status_code == 201, response.text
    assert set(response.json()) == REDACTED_REPORT_KEYS
    assert "CANARY-x" not in response.text
    assert "ETag" not in response.headers


def test_protection_officer_gets_full_keys_and_the_exact_point(api: Any, world: World) -> None:
    client = api.as_("protection")
    full_keys = set(ReportRead.model_fields)
    ids = {c.id: c for c in world.canaries}
    for canary in world.canaries:
        body = client.get(f"{REPORTS}/{canary.id}").json()
        assert set(body) == full_keys
        assert body["location"]["coordinates"] == [canary.longitude, canary.latitude]
    listed = client.get(REPORTS, params={"limit": 1000}).json()["items"]
    assert {i["id"] for i in listed} >= set(ids)
    for item in listed:
        if item["id"] in ids:
            assert set(item) == full_keys
    collection = client.get(REPORTS, params={"limit": 1000, "format": "geojson"}).json()
    for feature in collection["features"]:
        if feature["id"] in ids:
            canary = ids[feature["id"]]
            assert set(feature["properties"]) == full_keys - {"location"}
            assert feature["geometry"] == point(canary.longitude, canary.latitude)


# --------------------------------------------------------------------------- 3. scope (BOLA)


def _denials(api: Any, after_seq: int, object_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in audit_events(api, "authz_denied", after_seq=after_seq)
        if e["object_id"] == object_id
    ]


def test_officer_of_another_battalion_gets_404_on_every_object_route(
    api: Any, app: Any, world: World
) -> None:
    """Z1: every route that takes a report or incident id, called by officer_b with bn-a1's
    ids, answers 404 (or, for a function officers may not use at all, the same 403 a random id
    gets), never a 2xx, and each 404 leaves exactly one ``authz_denied`` audit event."""
    intruder = api.as_("officer_b")
    targets = [c for c in world.canaries if c.created_by == "officer_a"]
    normal = Canary(
        name="normal",
        tier="normal",
        body={"id": world.normal_report_id},
        created_by="officer_a",
        strings={},
        numbers={},
        longitude=POINT_A1_1[0],
        latitude=POINT_A1_1[1],
        occurred_at="",
        incident_id=world.normal_incident_id,
    )
    routes = [
        (path, "get")
        for path in get_routes(app)
        if set(path_parameters(path)) & set(OBJECT_PARAMETERS)
    ]
    routes += object_write_routes(app)
    assert len(routes) >= 6, routes
    problems = []
    for target in [normal, *targets]:
        for path, method in routes:
            url = _fill(path, target)
            body = write_bodies(path, method, target) if method != "get" else None
            before = last_audit_seq(api)
            response = _call(intruder, method, url, body)
            label = f"{method.upper()} {path} ({target.name})"
            if response.status_code == 403:
                random_url = path.format(report_id=uuid.uuid4(), incident_id=uuid.uuid4())
                same = _call(intruder, method, random_url, body)
                if (same.status_code, same.json()["message"]) != (403, response.json()["message"]):
                    problems.append(f"{label}: 403 differs from a random id's answer")
                continue
            if response.status_code != 404:
                problems.append(f"{label} -> {response.status_code}")
                continue
            object_id = target.incident_id if "{incident_id}" in path else target.id
            denials = _denials(api, before, str(object_id))
            if len(denials) != 1 or denials[0]["actor_username"] != "officer-b":
                problems.append(f"{label}: {len(denials)} authz_denied events, expected 1")
    assert not problems, "\n".join(problems)

    all_ids = {world.normal_report_id, *(t.id for t in targets)}
    for params in ({}, {"unit": world.units["bn-a1"]}, {"format": "geojson"}):
        body = intruder.get(REPORTS, params={"limit": 1000, **params}).json()
        seen = {i["id"] for i in body.get("items", body.get("features", []))}
        assert not seen & all_ids, params
    incident_ids = {world.normal_incident_id, *(str(t.incident_id) for t in targets)}
    seen = {i["id"] for i in intruder.get(INCIDENTS, params={"limit": 1000}).json()["items"]}
    assert not seen & incident_ids


def test_out_of_scope_and_missing_ids_answer_alike(api: Any, world: World) -> None:
    """No existence oracle: a missing id and an out-of-scope id answer alike."""
    intruder = api.as_("officer_b")
    hidden = intruder.get(f"{REPORTS}/{world.normal_report_id}")
    missing = intruder.get(f"{REPORTS}/{uuid.uuid4()}")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["code"] == missing.json()["code"]
    assert hidden.json()["message"].replace(world.normal_report_id, "X") == missing.json()[
        "message"
    ].replace(missing.request.url.path.rsplit("/", 1)[-1], "X")


def test_commanders_and_analysts_see_by_unit_subtree(api: Any, world: World) -> None:
    officer_b_report = report_body(location=point(*POINT_B1))
    assert api.as_("officer_b").post(REPORTS, json=officer_b_report).status_code == 201
    a_id, b_id = world.normal_report_id, officer_b_report["id"]

    def listed(username: str) -> set[str]:
        items = api.as_(username).get(REPORTS, params={"limit": 1000}).json()["items"]
        return {i["id"] for i in items}

    expectations = {
        "commander_a": {a_id},
        "officer_a": {a_id},
        "commander_b": {b_id},
        "officer_b": {b_id},
        "analyst": {a_id, b_id},
        "admin": {a_id, b_id},
        "protection": {a_id, b_id},
    }
    for username, visible in expectations.items():
        client = api.as_(username)
        for report_id in (a_id, b_id):
            response = client.get(f"{REPORTS}/{report_id}")
            if report_id in visible:
                assert response.status_code == 200, (username, response.text)
                assert response.json()["detail"] == "full"
            else:
                assert response.status_code == 404, (username, report_id)
        assert listed(username) & {a_id, b_id} == visible, username
    # The analyst's JOC sees the whole mission, sensitive reports included (redacted).
    analyst_sees = listed("analyst")
    assert {c.id for c in world.canaries} <= analyst_sees


def test_report_filed_by_joc_is_visible_through_its_aor_unit(api: Any, mission: Any) -> None:
    body = report_body(location=point(*POINT_A1_2), narrative="Filed by the JOC.")
    created = api.as_("analyst").post(REPORTS, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["reporting_unit_id"] == mission.unit_id("joc")
    assert created.json()["aor_unit_id"] == mission.unit_id("coy-a1-2")
    officer_a = api.as_("officer_a")
    assert officer_a.get(f"{REPORTS}/{body['id']}").status_code == 200
    items = officer_a.get(REPORTS, params={"limit": 1000}).json()["items"]
    assert body["id"] in {i["id"] for i in items}
    assert api.as_("officer_b").get(f"{REPORTS}/{body['id']}").status_code == 404
    assert api.as_("commander_a").get(f"{REPORTS}/{body['id']}").status_code == 200


# --------------------------------------------------------------------------- 4. no finer oracle


ORACLE_POINT = (20.187654, 5.803217)
ORACLE_TIME = datetime(2025, 5, 20, 15, 45, 30, tzinfo=UTC)


@pytest.fixture
def oracle_reports(api: Any) -> dict[str, str]:
    """A sensitive and a normal report at the same point and time, plus normal reports
    around that day for ordering."""
    officer = api.as_("officer_a")
    ids = {}
    specs = {
        "sensitive": ("sexual_violence", ORACLE_TIME),
        "normal_same": ("killing_of_civilians", ORACLE_TIME),
        "normal_20h": ("killing_of_civilians", ORACLE_TIME.replace(hour=20, minute=0)),
        "normal_10h": ("killing_of_civilians", ORACLE_TIME.replace(hour=10, minute=0)),
        "normal_03h": ("killing_of_civilians", ORACLE_TIME.replace(hour=3, minute=0)),
        "normal_eve": ("killing_of_civilians", datetime(2025, 5, 19, 23, 59, tzinfo=UTC)),
    }
    for name, (category, moment) in specs.items():
        body = report_body(
            category=category, occurred_at=_iso(moment), location=point(*ORACLE_POINT)
        )
        response = officer.post(REPORTS, json=body)
        assert response.status_code == 201, response.text
        ids[name] = body["id"]
    return ids


def _listed_ids(client: Any, **params: Any) -> list[str]:
    response = client.get(REPORTS, params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    return [i["id"] for i in response.json()["items"]]


def test_bbox_locates_a_redacted_report_by_its_cell_centre_only(
    api: Any, oracle_reports: dict[str, str]
) -> None:
    lat_c, lon_c = geo_cells.cell_center(redaction_cell(*ORACLE_POINT))
    lon_p, lat_p = ORACLE_POINT
    half = 0.0005
    around_point = _tiny_box(lon_p, lat_p, half)
    around_centre = _tiny_box(lon_c, lat_c, half)
    # The two boxes are disjoint: the point is well away from its cell's centre.
    assert abs(lon_c - lon_p) > 2 * half or abs(lat_c - lat_p) > 2 * half

    analyst = api.as_("analyst")
    sensitive, normal = oracle_reports["sensitive"], oracle_reports["normal_same"]
    at_point = _listed_ids(analyst, bbox=around_point)
    at_centre = _listed_ids(analyst, bbox=around_centre)
    assert normal in at_point
    assert normal not in at_centre
    assert sensitive not in at_point, "a bbox around the exact point finds the redacted report"
    assert sensitive in at_centre, "a bbox around the cell centre misses the redacted report"
    geo_at_point = analyst.get(REPORTS, params={"bbox": around_point, "format": "geojson"}).json()
    assert sensitive not in {f["id"] for f in geo_at_point["features"]}
    # The protection officer reads it in full, so finds it at its point.
    protection = api.as_("protection")
    assert sensitive in _listed_ids(protection, bbox=around_point)


def test_time_window_matches_a_redacted_report_by_its_day_only(
    api: Any, oracle_reports: dict[str, str]
) -> None:
    analyst = api.as_("analyst")
    sensitive, normal = oracle_reports["sensitive"], oracle_reports["normal_same"]
    midnight = ORACLE_TIME.replace(hour=0, minute=0, second=0)
    next_day = midnight + timedelta(days=1)

    def window(start: datetime, end: datetime) -> list[str]:
        return _listed_ids(analyst, occurred_from=_iso(start), occurred_to=_iso(end))

    for start in (midnight + timedelta(seconds=1), ORACLE_TIME - timedelta(minutes=1)):
        found = window(start, next_day)
        assert normal in found  # the filter works on exact times
        assert sensitive not in found, f"a window from {start} reveals the report's time"
    assert sensitive in window(midnight, next_day)
    # Any window inside its day that holds midnight finds it, whatever its exact time.
    assert sensitive in window(midnight, midnight + timedelta(seconds=1))
    assert normal not in window(midnight, midnight + timedelta(seconds=1))
    assert sensitive not in window(midnight - timedelta(days=1), midnight)

    incidents = analyst.get(
        INCIDENTS,
        params={"occurred_from": _iso(midnight + timedelta(seconds=1)), "limit": 1000},
    ).json()["items"]
    report = analyst.get(f"{REPORTS}/{sensitive}").json()
    sensitive_incident_day = [
        i for i in incidents if i["detail"] == "redacted" and i["day"] == report["day"]
    ]
    assert not sensitive_incident_day, "the incidents list has the same oracle"


def test_redacted_report_sorts_at_the_start_of_its_day(
    api: Any, oracle_reports: dict[str, str]
) -> None:
    ids = oracle_reports
    expected = [
        ids["normal_20h"],
        ids["normal_same"],
        ids["normal_10h"],
        ids["normal_03h"],
        ids["sensitive"],
        ids["normal_eve"],
    ]
    params = {"occurred_from": "2025-05-19T00:00:00Z", "occurred_to": "2025-05-21T00:00:00Z"}
    for username in ("analyst", "protection"):
        client = api.as_(username)
        order = _listed_ids(client, **params)
        assert order == expected, username
        # Page by page: the cursor after the sensitive report holds only its day.
        paged, cursor = [], None
        while True:
            page = client.get(
                REPORTS, params={**params, "limit": 1, **({"cursor": cursor} if cursor else {})}
            ).json()
            paged.extend(i["id"] for i in page["items"])
            cursor = page["next_cursor"]
            if page["items"] and page["items"][0]["id"] == ids["sensitive"]:
                sort_at, _ = json.loads(_decoded_cursor(cursor))
                assert sort_at == "2025-05-20T00:00:00+00:00"
            if not cursor:
                break
        assert paged == expected, username


# --------------------------------------------------------------------------- 5. fail closed


def test_report_without_units_is_seen_only_by_whole_mission_users(api: Any, session: Any) -> None:
    body = report_body(narrative="CANARY-UNITLESS")
    created = api.as_("officer_a").post(REPORTS, json=body)
    assert created.status_code == 201, created.text
    report_id = uuid.UUID(body["id"])
    incident_id = uuid.UUID(created.json()["incident_id"])
    session.execute(
        update(Report)
        .where(Report.id == report_id)
        .values(reporting_unit_id=None, aor_unit_id=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Incident)
        .where(Incident.id == incident_id)
        .values(aor_unit_id=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()

    for username in ("admin", "analyst", "protection"):
        client = api.as_(username)
        assert client.get(f"{REPORTS}/{body['id']}").status_code == 200, username
        assert body["id"] in _listed_ids(client), username
    for username in ("commander_a", "commander_b", "officer_a", "officer_b"):
        client = api.as_(username)
        response = client.get(f"{REPORTS}/{body['id']}")
        assert response.status_code == 404, (username, response.text)
        assert body["id"] not in _listed_ids(client), username
        assert body["id"] not in _listed_ids(client, unit=api.mission.unit_id("bn-a1"))
        assert client.get(f"{INCIDENTS}/{incident_id}").status_code == 404, username
        items = client.get(INCIDENTS, params={"limit": 1000}).json()["items"]
        assert str(incident_id) not in {i["id"] for i in items}, username
        assert "CANARY-UNITLESS" not in response.text


@pytest.mark.parametrize(
    "stored", ["bogus_tier", "", "Normal", " normal"], ids=["unknown", "empty", "case", "space"]
)
def test_unknown_sensitivity_is_redacted_for_all_but_protection(
    api: Any, session: Any, stored: str
) -> None:
    body = report_body(narrative="CANARY-TIERLESS", location=point(20.222222, 5.666666))
    created = api.as_("officer_a").post(REPORTS, json=body)
    assert created.status_code == 201, created.text
    incident_id = created.json()["incident_id"]
    for table, key in (("reports", body["id"]), ("incidents", incident_id)):
        session.execute(
            text(f"UPDATE {table} SET sensitivity = :tier WHERE id = :id").bindparams(
                bindparam("id", type_=Uuid())
            ),
            {"tier": stored, "id": uuid.UUID(key)},
        )
    session.commit()

    for username in ("admin", "analyst", "commander_a", "officer_a"):
        client = api.as_(username)
        response = client.get(f"{REPORTS}/{body['id']}")
        assert response.status_code == 200, (username, response.status_code, response.text)
        assert set(response.json()) == REDACTED_REPORT_KEYS, username
        listed = client.get(REPORTS, params={"limit": 1000})
        assert listed.status_code == 200, listed.text
        item = next(i for i in listed.json()["items"] if i["id"] == body["id"])
        assert set(item) == REDACTED_REPORT_KEYS, username
        geo = client.get(REPORTS, params={"limit": 1000, "format": "geojson"}).json()
        feature = next(f for f in geo["features"] if f["id"] == body["id"])
        assert feature["geometry"]["type"] == "Polygon"
        incident = client.get(f"{INCIDENTS}/{incident_id}")
        assert incident.status_code == 200, incident.text
        assert set(incident.json()) == REDACTED_INCIDENT_KEYS
        incidents = client.get(INCIDENTS, params={"limit": 1000})
        assert incidents.status_code == 200, incidents.text
        # A verification-state filter never matches a report read without need-to-know.
        filtered = _listed_ids(client, verification_state="reported")
        assert body["id"] not in filtered
        for text_ in (response.text, listed.text, json.dumps(geo), incident.text, incidents.text):
            assert "CANARY-TIERLESS" not in text_
            assert "20.222222" not in text_
    protection = api.as_("protection").get(f"{REPORTS}/{body['id']}")
    assert protection.status_code == 200, protection.text
    assert protection.json()["narrative"] == "CANARY-TIERLESS"
    assert protection.json()["sensitivity"] == "strictly_confidential"
    # The list's SQL agrees with the detail's Python: full for protection, so its filters work
    # on the exact point and on the verification state.
    protection_client = api.as_("protection")
    assert body["id"] in _listed_ids(protection_client, verification_state="reported")
    assert body["id"] in _listed_ids(protection_client, bbox=_tiny_box(20.222222, 5.666666))


# --------------------------------------------------------------------------- 6. mass assignment


MASS_ASSIGNMENT_FIELDS = [
    "unit_id",
    "reporting_unit_id",
    "owner_id",
    "sensitivity",
    "created_by_user_id",
    "verification_state",
    "verified",
]


def _forged_value(field_name: str, mission: Any) -> Any:
    return {
        "unit_id": mission.unit_id("bn-b1"),
        "reporting_unit_id": mission.unit_id("bn-b1"),
        "owner_id": mission.users["analyst"].id,
        "sensitivity": "normal",
        "created_by_user_id": mission.users["analyst"].id,
        "verification_state": "verified",
        "verified": True,
    }[field_name]


def _error_fields(response: Any) -> set[str]:
    return {e["field"] for e in response.json()["errors"]}


@pytest.mark.parametrize("field_name", MASS_ASSIGNMENT_FIELDS)
def test_create_refuses_server_set_fields(api: Any, mission: Any, field_name: str) -> None:
    body = report_body(category="sexual_violence")
    body[field_name] = _forged_value(field_name, mission)
    response = api.as_("officer_a").post(REPORTS, json=body)
    assert response.status_code == 422, response.text
    assert field_name in _error_fields(response)
    assert api.as_("protection").get(f"{REPORTS}/{body['id']}").status_code == 404


@pytest.mark.parametrize("field_name", MASS_ASSIGNMENT_FIELDS)
def test_update_refuses_server_set_fields(api: Any, mission: Any, field_name: str) -> None:
    officer = api.as_("officer_a")
    body = report_body()
    assert officer.post(REPORTS, json=body).status_code == 201
    before = officer.get(f"{REPORTS}/{body['id']}").json()
    patch = {"version": 1, "narrative": "changed", field_name: _forged_value(field_name, mission)}
    response = officer.patch(f"{REPORTS}/{body['id']}", json=patch)
    assert response.status_code == 422, response.text
    assert field_name in _error_fields(response)
    assert officer.get(f"{REPORTS}/{body['id']}").json() == before


def test_protection_officer_cannot_lower_a_tier_by_patch(api: Any, canaries: CanarySet) -> None:
    canary = canaries.by_name("sexual_violence")
    protection = api.as_("protection")
    before = protection.get(f"{REPORTS}/{canary.id}").json()
    response = protection.patch(
        f"{REPORTS}/{canary.id}", json={"version": 1, "sensitivity": "normal"}
    )
    assert response.status_code == 422, response.text
    assert protection.get(f"{REPORTS}/{canary.id}").json() == before
    # Changing what the tier derives from cannot lower it below the category's either.
    response = protection.patch(
        f"{REPORTS}/{canary.id}", json={"version": 1, "protection_concern": False}
    )
    assert response.status_code == 200, response.text
    assert response.json()["sensitivity"] == "restricted"


# --------------------------------------------------------------------------- 7. audit (L1)


def test_protection_detail_read_writes_one_audit_event(api: Any, canaries: CanarySet) -> None:
    canary = canaries.by_name("sexual_violence")
    before = last_audit_seq(api)
    response = api.as_("protection").get(f"{REPORTS}/{canary.id}")
    assert response.status_code == 200
    events = audit_events(api, "report_read_sensitive", after_seq=before)
    assert len(events) == 1, events
    event = events[0]
    assert event["object_id"] == canary.id
    assert event["details"]["report_ids"] == [canary.id]
    assert event["actor_username"] == "protection"
    assert event["request_id"]


@pytest.mark.parametrize("fmt", ["json", "geojson"])
def test_protection_listing_writes_one_audit_event_naming_the_ids(
    api: Any, canaries: CanarySet, fmt: str
) -> None:
    before = last_audit_seq(api)
    response = api.as_("protection").get(
        REPORTS, params={"family": "sexual_violence", "limit": 1000, "format": fmt}
    )
    assert response.status_code == 200
    events = audit_events(api, "reports_listed_sensitive", after_seq=before)
    assert len(events) == 1, events
    expected = {c.id for c in canaries if c.body["category"] in ("sexual_violence", "rape")}
    assert len(expected) == 2
    assert set(events[0]["details"]["report_ids"]) == expected
    assert not audit_events(api, "report_read_sensitive", after_seq=before)


def test_reads_without_sensitive_detail_write_no_audit_event(api: Any, canaries: CanarySet) -> None:
    normal = report_body()
    assert api.as_("officer_a").post(REPORTS, json=normal).status_code == 201
    before = last_audit_seq(api)
    protection, analyst = api.as_("protection"), api.as_("analyst")
    assert protection.get(f"{REPORTS}/{normal['id']}").status_code == 200
    assert protection.get(REPORTS, params={"family": "property"}).status_code == 200
    sensitive = canaries.by_name("sexual_violence").id
    assert analyst.get(f"{REPORTS}/{sensitive}").json()["detail"] == "redacted"
    assert analyst.get(REPORTS, params={"limit": 1000}).status_code == 200
    for action in ("report_read_sensitive", "reports_listed_sensitive"):
        assert not audit_events(api, action, after_seq=before), action
