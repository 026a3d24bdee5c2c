"""Bad input: every refusal is a 422 (or 413) naming the field and the problem, never a 500,
and nothing stored changes."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.api._builders import API, hours_ago, iso, polygon, report_body

REPORTS = f"{API}/reports"
INCIDENTS = f"{API}/incidents"
UNITS = f"{API}/units"

JSON = {"content-type": "application/json"}


def assert_refused(response: Any, field: str, fragment: str, status: int = 422) -> None:
    """The response is the error body naming ``field`` with a message containing ``fragment``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "errors", "request_id"}
    assert body["code"] == "validation_failed"
    assert body["request_id"] == response.headers["X-Request-Id"]
    messages = {e["field"]: e["message"] for e in body["errors"]}
    assert field in messages, f"{field!r} not among {messages}"
    assert fragment.lower() in messages[field].lower(), messages[field]


def stored_reports(api: Any) -> list[dict[str, Any]]:
    response = api.as_("analyst").get(REPORTS, params={"limit": 1000})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def without(name: str) -> Callable[[dict[str, Any]], None]:
    return lambda body: body.pop(name)


def setting(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = body
        for key in parents:
            target = target.setdefault(key, {})
        # A callable is evaluated when the test runs: times relative to "now" must not age
        # between collection and the test (the suite takes minutes).
        target[last] = value() if callable(value) else value

    return apply


def point(lon: Any, lat: Any) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


SHA = "0" * 64
ATTACHMENT = {"media_type": "image/jpeg", "size_bytes": 10, "sha256": SHA}
SAME_ATTACHMENT_TWICE = [{"id": str(uuid.UUID(int=7)), **ATTACHMENT}] * 2

# --------------------------------------------------------------------------- POST /reports

CREATE_CASES = [
    # coordinates
    ("longitude_out_of_range", setting("location", point(181, 5.75)), "location.coordinates",
     "longitude 181.0 is out of range"),
    ("latitude_out_of_range", setting("location", point(20.1, -91)), "location.coordinates",
     "latitude -91.0 is out of range"),
    ("coordinates_not_numbers", setting("location", point("east", "north")),
     "location.coordinates.0", "valid number"),
    ("one_coordinate", setting("location.coordinates", [20.1]), "location.coordinates",
     "at least 2"),
    ("four_coordinates", setting("location.coordinates", [20.1, 5.7, 1, 2]),
     "location.coordinates", "at most 3"),
    ("null_island", setting("location", point(0, 0)), "location.coordinates", "null island"),
    ("location_not_a_point", setting("location.type", "LineString"), "location.type", "'Point'"),
    ("location_not_an_object", setting("location", "20.1,5.7"), "location", "valid dictionary"),
    # categories
    ("unknown_category", setting("category", "mass_picnic"), "category",
     "unknown incident category 'mass_picnic'"),
    ("category_wrong_type", setting("category", 42), "category", "valid string"),
    # times
    ("occurred_at_in_the_future", setting("occurred_at", lambda: iso(hours_ago(-1))), "occurred_at",
     "in the future"),
    ("occurred_at_just_beyond_tolerance", setting("occurred_at", lambda: iso(hours_ago(-11 / 60))),
     "occurred_at", "more than 10 minutes ahead"),
    ("naive_occurred_at", setting("occurred_at", "2026-11-20T06:30:00"), "occurred_at",
     "timezone"),
    ("occurred_at_not_a_date", setting("occurred_at", "yesterday evening"), "occurred_at",
     "valid datetime"),
    ("unknown_time_precision", setting("time_precision", "fortnight"), "time_precision",
     "Input should be"),
    # required fields
    ("missing_id", without("id"), "id", "Field required"),
    ("missing_category", without("category"), "category", "Field required"),
    ("missing_occurred_at", without("occurred_at"), "occurred_at", "Field required"),
    ("missing_location", without("location"), "location", "Field required"),
    ("null_category", setting("category", None), "category", "valid string"),
    # wrong types and ranges
    ("id_not_a_uuid", setting("id", "report-1"), "id", "valid UUID"),
    ("accuracy_negative", setting("location_accuracy_m", -5), "location_accuracy_m",
     "greater than or equal to 0"),
    ("accuracy_not_a_number", setting("location_accuracy_m", "close"), "location_accuracy_m",
     "valid number"),
    ("killed_not_an_integer", setting("victims.killed.best", "many"), "victims.killed.best",
     "valid integer"),
    ("killed_low_above_best", setting("victims.killed", {"best": 2, "low": 5}), "victims.killed",
     "low (5) must not exceed best (2)"),
    ("negative_injured", setting("victims.injured", -1), "victims.injured",
     "greater than or equal to 0"),
    ("unknown_reliability_grade", setting("source_reliability", "Z"), "source_reliability",
     "'A', 'B', 'C', 'D', 'E' or 'F'"),
    ("dataset_source_from_the_field", setting("source_type", "dataset"), "source_type",
     "reserved for imported datasets"),
    ("consent_not_boolean", setting("consent.referral", "perhaps"), "consent.referral",
     "valid boolean"),
    ("narrative_too_long", setting("narrative", "x" * 20_001), "narrative", "at most 20000"),
    ("unknown_field", setting("priority", "high"), "priority", "Extra inputs are not permitted"),
    ("server_field_from_client", setting("verification_state", "verified"),
     "verification_state", "Extra inputs are not permitted"),
    ("duplicate_attachment_ids", setting("attachments", SAME_ATTACHMENT_TWICE), "attachments",
     "attachment ids must be unique"),
    ("attachment_bad_sha256", setting("attachments", [{**ATTACHMENT, "id": str(uuid.uuid4()),
     "sha256": "abc"}]), "attachments.0.sha256", "should match pattern"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [pytest.param(m, f, msg, id=name) for name, m, f, msg in CREATE_CASES],
)
def test_create_report_refuses(api, mutate, field, fragment):
    body = report_body()
    mutate(body)

    response = api.as_("officer_a").post(REPORTS, json=body)

    assert_refused(response, field, fragment)
    assert stored_reports(api) == []


RAW_BODIES = [
    ("malformed_json", b'{"id": "6f1c7c1e-3a51-4c0e-9d0a-2b1f7d6e9a10", ', "body",
     "not valid JSON"),
    ("trailing_garbage", b'{"category": "abduction"} and more', "body", "not valid JSON"),
    ("single_quotes", b"{'category': 'abduction'}", "body", "not valid JSON"),
    ("invalid_utf8", b'{"narrative": "\xff\xfe"}', "body", "UTF-8"),
    ("empty_body", b"", "body", "Field required"),
    ("array_instead_of_object", b"[]", "body", "valid dictionary"),
    ("string_instead_of_object", b'"report"', "body", "valid dictionary"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("content", "field", "fragment"),
    [pytest.param(c, f, msg, id=name) for name, c, f, msg in RAW_BODIES],
)
def test_create_report_refuses_unparseable_body(api, content, field, fragment):
    response = api.as_("officer_a").post(REPORTS, content=content, headers=JSON)

    assert_refused(response, field, fragment)
    assert stored_reports(api) == []


def test_malformed_json_says_where(api):
    response = api.as_("officer_a").post(REPORTS, content=b'{"id": }', headers=JSON)

    assert_refused(response, "body", "position 7")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(api, value):
    text = json.dumps(report_body(location_accuracy_m=12345.5)).replace("12345.5", value)

    response = api.as_("officer_a").post(REPORTS, content=text.encode(), headers=JSON)

    assert_refused(response, "location_accuracy_m", "finite number")
    assert stored_reports(api) == []


def test_non_finite_coordinates_are_refused(api):
    text = json.dumps(report_body(point=(12345.5, 5.75))).replace("12345.5", "1e400")

    response = api.as_("officer_a").post(REPORTS, content=text.encode(), headers=JSON)

    assert_refused(response, "location.coordinates", "finite")


def test_occurred_at_within_the_clock_skew_tolerance_is_accepted(api):
    body = report_body(occurred_at=iso(hours_ago(0) + timedelta(minutes=5)))

    response = api.as_("officer_a").post(REPORTS, json=body)

    assert response.status_code == 201, response.text


# --------------------------------------------------------------------------- oversized bodies


def oversized_body(settings: Any) -> bytes:
    """A valid report whose narrative pushes it past the body limit."""
    body = report_body(narrative="x" * settings.mission.max_body_bytes)
    return json.dumps(body).encode()


def test_oversized_body_with_content_length_is_413(api, settings):
    content = oversized_body(settings)

    response = api.as_("officer_a").post(REPORTS, content=content, headers=JSON)

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert response.json()["errors"][0]["field"] == "body"
    assert "larger than" in response.json()["errors"][0]["message"]
    assert str(settings.mission.max_body_bytes) in response.json()["message"]
    assert stored_reports(api) == []


def test_oversized_chunked_body_without_content_length_is_413(api, settings):
    content = oversized_body(settings)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(content), 64 * 1024):
            yield content[start : start + 64 * 1024]

    response = api.as_("officer_a").post(REPORTS, content=chunks(), headers=JSON)

    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert response.json()["errors"][0]["field"] == "body"
    assert "larger than" in response.json()["errors"][0]["message"]
    assert stored_reports(api) == []


def test_body_just_under_the_limit_is_read(api, settings):
    body = report_body()
    padding = settings.mission.max_body_bytes - len(json.dumps(body).encode()) - 100
    content = json.dumps(body).encode()[:-1] + b" " * padding + b"}"

    response = api.as_("officer_a").post(REPORTS, content=content, headers=JSON)

    assert response.status_code == 201, response.text


def test_invalid_content_length_is_400(api):
    response = api.as_("officer_a").post(
        REPORTS, content=b"{}", headers={**JSON, "content-length": "lots"}
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "body", "message": "the Content-Length header is not a number"}
    ]
    assert stored_reports(api) == []


# --------------------------------------------------------------------------- PATCH /reports


@pytest.fixture
def filed(api: Any) -> dict[str, Any]:
    response = api.as_("officer_a").post(REPORTS, json=report_body())
    assert response.status_code == 201, response.text
    return response.json()


UPDATE_CASES = [
    ("category_null", {"category": None}, "category", "cannot be set to null"),
    ("location_null", {"location": None}, "location", "cannot be set to null"),
    ("unknown_category", {"category": "mass_picnic"}, "category", "unknown incident category"),
    ("naive_occurred_at", {"occurred_at": "2026-11-20T06:30:00"}, "occurred_at", "timezone"),
    ("occurred_at_in_the_future", {"occurred_at": iso(hours_ago(-2))}, "occurred_at",
     "in the future"),
    ("latitude_out_of_range", {"location": point(20.1, 95)}, "location.coordinates",
     "latitude 95.0 is out of range"),
    ("version_zero", {"version": 0}, "version", "greater than or equal to 1"),
    ("version_not_a_number", {"version": "latest"}, "version", "valid integer"),
    ("verification_state_by_patch", {"verification_state": "verified"}, "verification_state",
     "Extra inputs are not permitted"),
    ("id_by_patch", {"id": str(uuid.uuid4())}, "id", "Extra inputs are not permitted"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [pytest.param(c, f, msg, id=name) for name, c, f, msg in UPDATE_CASES],
)
def test_update_report_refuses(api, filed, changes, field, fragment):
    officer = api.as_("officer_a")
    headers = {} if "version" in changes else {"If-Match": '"1"'}

    response = officer.patch(f"{REPORTS}/{filed['id']}", json=changes, headers=headers)

    assert_refused(response, field, fragment)
    assert officer.get(f"{REPORTS}/{filed['id']}").json() == filed


def test_unparseable_if_match_is_422(api, filed):
    officer = api.as_("officer_a")

    response = officer.patch(
        f"{REPORTS}/{filed['id']}", json={"narrative": "x"}, headers={"If-Match": "yesterday"}
    )

    assert_refused(response, "header:If-Match", "the ETag you read")
    assert officer.get(f"{REPORTS}/{filed['id']}").json() == filed


def test_verification_to_an_unknown_state_is_422(api, filed):
    analyst = api.as_("analyst")

    response = analyst.post(f"{REPORTS}/{filed['id']}/verification", json={"to_state": "true"})

    assert_refused(response, "to_state", "Input should be")
    assert analyst.get(f"{REPORTS}/{filed['id']}/verification").json() == []


# --------------------------------------------------------------------------- ids in paths


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("get", f"{REPORTS}/not-a-uuid", "path:report_id"),
        ("patch", f"{REPORTS}/not-a-uuid", "path:report_id"),
        ("get", f"{REPORTS}/12345/verification", "path:report_id"),
        ("get", f"{INCIDENTS}/not-a-uuid", "path:incident_id"),
        ("get", f"{UNITS}/sector-a", "path:unit_id"),
    ],
    ids=["get-report", "patch-report", "report-history", "get-incident", "unit-by-code"],
)
def test_malformed_path_ids_are_422(api, method, path, field):
    kwargs = {"json": {"version": 1}} if method == "patch" else {}

    response = getattr(api.as_("analyst"), method)(path, **kwargs)

    assert_refused(response, field, "valid")


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("patch", ""), ("get", "/verification"), ("post", "/verification")],
    ids=["get", "patch", "history", "verify"],
)
def test_unknown_report_is_404(api, method, suffix):
    url = f"{REPORTS}/{uuid.uuid4()}{suffix}"
    kwargs = {
        "patch": {"json": {"version": 1, "narrative": "x"}},
        "post": {"json": {"to_state": "under_verification"}},
    }.get(method, {})

    response = getattr(api.as_("analyst"), method)(url, **kwargs)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --------------------------------------------------------------------------- list queries


def cursor_of(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


LIST_CASES = [
    ("cursor_garbage", {"cursor": "not-a-cursor!"}, "query:cursor", "not a cursor"),
    ("cursor_wrong_shape", {"cursor": cursor_of({"a": 1})}, "query:cursor", "not a cursor"),
    ("cursor_naive_time", {"cursor": cursor_of(["2026-11-20T06:30:00", str(uuid.uuid4())])},
     "query:cursor", "not a cursor"),
    ("cursor_bad_id", {"cursor": cursor_of(["2026-11-20T06:30:00+00:00", "x"])},
     "query:cursor", "not a cursor"),
    ("cursor_too_long", {"cursor": "a" * 500}, "query:cursor", "at most 200"),
    ("bbox_three_numbers", {"bbox": "20,5,21"}, "query:bbox", "must be four numbers"),
    ("bbox_not_numbers", {"bbox": "w,s,e,n"}, "query:bbox", "must be a number"),
    ("bbox_longitude_out_of_range", {"bbox": "20,5,181,6"}, "query:bbox",
     "longitude 181.0 is out of range"),
    ("bbox_latitude_out_of_range", {"bbox": "20,-95,21,6"}, "query:bbox",
     "latitude -95.0 is out of range"),
    ("bbox_min_above_max", {"bbox": "21,5,20,6"}, "query:bbox", "minimum must not exceed"),
    ("bbox_not_finite", {"bbox": "nan,5,21,6"}, "query:bbox", "out of range"),
    ("bbox_empty", {"bbox": ""}, "query:bbox", "must be four numbers"),
    ("naive_occurred_from", {"occurred_from": "2026-11-20T06:30:00"}, "query:occurred_from",
     "timezone"),
    ("occurred_to_not_a_date", {"occurred_to": "tomorrow"}, "query:occurred_to",
     "valid datetime"),
    ("window_backwards", {"occurred_from": iso(hours_ago(1)), "occurred_to": iso(hours_ago(5))},
     "query:occurred_to", "later than occurred_from"),
    ("unknown_category", {"category": "mass_picnic"}, "query:category",
     "unknown incident category"),
    ("unknown_family", {"family": "picnics"}, "query:family", "unknown family 'picnics'"),
    ("unknown_verification_state", {"verification_state": "maybe"},
     "query:verification_state.0", "Input should be 'reported'"),
    ("limit_zero", {"limit": 0}, "query:limit", "greater than or equal to 1"),
    ("limit_too_large", {"limit": 100_000}, "query:limit", "less than or equal to 1000"),
    ("unit_not_a_number", {"unit": "sector-a"}, "query:unit", "valid integer"),
    ("unknown_format", {"format": "kml"}, "query:format", "'json' or 'geojson'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("params", "field", "fragment"),
    [pytest.param(p, f, msg, id=name) for name, p, f, msg in LIST_CASES],
)
def test_list_reports_refuses(api, params, field, fragment):
    response = api.as_("analyst").get(REPORTS, params=params)

    assert_refused(response, field, fragment)


INCIDENT_QUERY_CASES = [
    ("cursor_garbage", "", {"cursor": "garbage"}, "query:cursor", "not a cursor"),
    ("naive_occurred_from", "", {"occurred_from": "2026-11-20T06:30"}, "query:occurred_from",
     "timezone"),
    ("unknown_family", "", {"family": "picnics"}, "query:family", "unknown family"),
    ("suggestions_zero_km", "/merge-suggestions", {"max_km": 0}, "query:max_km",
     "greater than 0"),
    ("suggestions_huge_window", "/merge-suggestions", {"max_hours": 10**6}, "query:max_hours",
     "less than or equal to 2160"),
    ("suggestions_not_a_number", "/merge-suggestions", {"max_km": "near"}, "query:max_km",
     "valid number"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("suffix", "params", "field", "fragment"),
    [pytest.param(s, p, f, msg, id=name) for name, s, p, f, msg in INCIDENT_QUERY_CASES],
)
def test_incident_queries_refuse(api, suffix, params, field, fragment):
    response = api.as_("analyst").get(INCIDENTS + suffix, params=params)

    assert_refused(response, field, fragment)


# --------------------------------------------------------------------------- incidents


@pytest.fixture
def two_incidents(api: Any) -> list[str]:
    analyst = api.as_("analyst")
    return [analyst.post(REPORTS, json=report_body()).json()["incident_id"] for _ in range(2)]


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"incident_ids": ["{0}"]}, "incident_ids", "at least 2"),
        ({"incident_ids": ["{0}", "{0}"]}, "incident_ids", "at least two different"),
        ({"incident_ids": ["{0}", "x"]}, "incident_ids.1", "valid UUID"),
        ({"incident_ids": "{0}"}, "incident_ids", "valid list"),
        ({}, "incident_ids", "Field required"),
        ({"incident_ids": ["{0}", "{1}"], "reason": "x"}, "reason", "Extra inputs"),
    ],
    ids=["one-id", "same-id-twice", "not-a-uuid", "not-a-list", "missing", "unknown-field"],
)
def test_merge_refuses(api, two_incidents, body, field, fragment):
    analyst = api.as_("analyst")
    text = json.dumps(body).replace("{0}", two_incidents[0]).replace("{1}", two_incidents[1])

    response = analyst.post(f"{INCIDENTS}/merge", content=text.encode(), headers=JSON)

    assert_refused(response, field, fragment)
    listed = analyst.get(INCIDENTS).json()["items"]
    assert {i["id"] for i in listed} == set(two_incidents)
    assert all(i["report_count"] == 1 for i in listed)


# --------------------------------------------------------------------------- units and AORs

BOWTIE = {
    "type": "Polygon",
    "coordinates": [[[20, 5.5], [20.5, 6], [20.5, 5.5], [20, 6], [20, 5.5]]],
}
OVERLAPPING = {
    "type": "MultiPolygon",
    "coordinates": [
        polygon(20, 5.5, 20.3, 6)["coordinates"],
        polygon(20.2, 5.5, 20.5, 6)["coordinates"],
    ],
}
HOLE_OUTSIDE = {
    "type": "Polygon",
    "coordinates": [
        polygon(20, 5.5, 20.5, 6)["coordinates"][0],
        polygon(22, 5.5, 22.1, 6)["coordinates"][0],
    ],
}
UNCLOSED = {"type": "Polygon", "coordinates": [[[20, 5.5], [20.5, 5.5], [20.5, 6], [20, 6]]]}
SPIKE = {
    "type": "Polygon",
    "coordinates": [[[20, 5.5], [20.5, 5.5], [20, 5.5], [20.5, 5.5], [20, 5.5]]],
}

AOR_CASES = [
    ("self_intersecting", BOWTIE, "geometry", "Self-intersection"),
    ("overlapping_multipolygon", OVERLAPPING, "geometry", "not valid"),
    ("hole_outside_shell", HOLE_OUTSIDE, "geometry", "Hole lies outside shell"),
    ("zero_area", SPIKE, "geometry", "not valid"),
    ("ring_not_closed", UNCLOSED, "geometry.coordinates", "is not closed"),
    ("too_few_positions", {"type": "Polygon", "coordinates": [[[20, 5.5], [20.5, 6], [20, 5.5]]]},
     "geometry.coordinates", "at least 4 positions"),
    ("longitude_out_of_range", polygon(20, 5.5, 200, 6), "geometry.coordinates",
     "longitude 200.0 is out of range"),
    ("latitude_out_of_range", polygon(20, 5.5, 20.5, 96), "geometry.coordinates",
     "latitude 96.0 is out of range"),
    ("position_not_numbers", {"type": "Polygon", "coordinates": [[["a", "b"]] * 4]},
     "geometry.coordinates", "every position must be [longitude, latitude]"),
    ("empty_multipolygon", {"type": "MultiPolygon", "coordinates": []}, "geometry.coordinates",
     "at least one polygon"),
    ("point_not_polygon", {"type": "Point", "coordinates": [20.1, 5.7]}, "geometry.type",
     "'Polygon' or 'MultiPolygon'"),
    ("coordinates_not_a_list", {"type": "Polygon", "coordinates": "20,5.5,20.5,6"},
     "geometry.coordinates", "valid list"),
    ("missing_geometry", None, "geometry", "Field required"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("geometry", "field", "fragment"),
    [pytest.param(g, f, msg, id=name) for name, g, f, msg in AOR_CASES],
)
def test_replacing_an_aor_refuses(api, geometry, field, fragment):
    admin = api.as_("admin")
    coy = api.mission.unit_id("coy-a1-1")
    before = admin.get(f"{UNITS}/{coy}/aor/versions").json()

    response = admin.put(
        f"{UNITS}/{coy}/aor", json={} if geometry is None else {"geometry": geometry}
    )

    assert_refused(response, field, fragment)
    assert admin.get(f"{UNITS}/{coy}/aor/versions").json() == before


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"aor": BOWTIE}, "aor", "Self-intersection"),
        ({"aor": UNCLOSED}, "aor.coordinates", "is not closed"),
        ({"code": "Coy A1 3"}, "code", "should match pattern"),
        ({"code": "coy-a1-1"}, "code", "already exists"),
        ({"parent_id": 999_999}, "parent_id", "does not exist"),
        ({"parent_id": None}, "parent_id", "already has a root unit"),
        ({"kind": "regiment"}, "kind", "Input should be"),
        ({"base_location": {"type": "Point", "coordinates": [20.1, 100]}},
         "base_location.coordinates", "latitude 100.0 is out of range"),
    ],
    ids=["self-intersecting-aor", "unclosed-aor", "bad-code", "duplicate-code", "unknown-parent",
         "second-root", "unknown-kind", "base-out-of-range"],
)  # fmt: skip
def test_creating_a_unit_refuses(api, overrides, field, fragment):
    admin = api.as_("admin")
    before = admin.get(UNITS).json()
    body = {
        "code": "coy-a1-3",
        "name": "Company A1-3",
        "kind": "company",
        "component": "military",
        "parent_id": api.mission.unit_id("bn-a1"),
        **overrides,
    }

    response = admin.post(UNITS, json=body)

    assert_refused(response, field, fragment)
    assert admin.get(UNITS).json() == before


# --------------------------------------------------------------------------- users and devices


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"role": "warlord"}, "role", "Input should be"),
        ({"unit_id": 999_999}, "unit_id", "unit 999999 does not exist"),
        ({"unit_id": "joc"}, "unit_id", "valid integer"),
        ({"password": "short"}, "password", "at least 10 characters"),
        ({"password": "unitednations"}, "password", "well-known password"),
        ({"password": "x-new-officer-x"}, "password", "must not contain the username"),
        ({"username": "New Officer"}, "username", "should match pattern"),
        ({"full_name": ""}, "full_name", "at least 1 character"),
    ],
    ids=["unknown-role", "unknown-unit", "unit-not-int", "short-password", "common-password",
         "password-has-username", "username-pattern", "empty-name"],
)  # fmt: skip
def test_creating_a_user_refuses(api, overrides, field, fragment):
    admin = api.as_("admin")
    before = admin.get(f"{API}/users").json()
    body = {
        "username": "new-officer",
        "full_name": "New Officer",
        "role": "field_officer",
        "unit_id": api.mission.unit_id("coy-a1-1"),
        "password": "a long enough passphrase",
        **overrides,
    }

    response = admin.post(f"{API}/users", json=body)

    assert_refused(response, field, fragment)
    assert admin.get(f"{API}/users").json() == before


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"id": "phone-3", "name": "Phone", "platform": "android"}, "id", "valid UUID"),
        ({"id": "{id}", "name": "", "platform": "android"}, "name", "at least 1 character"),
        ({"id": "{id}", "name": "Phone"}, "platform", "Field required"),
    ],
    ids=["id-not-uuid", "empty-name", "missing-platform"],
)
def test_registering_a_device_refuses(api, body, field, fragment):
    officer = api.as_("officer_a")
    text = json.dumps(body).replace("{id}", str(uuid.uuid4()))

    response = officer.post(f"{API}/devices", content=text.encode(), headers=JSON)

    assert_refused(response, field, fragment)
    assert officer.get(f"{API}/devices").json() == []


def test_revoking_without_a_reason_is_422(api):
    officer = api.as_("officer_a")
    device_id = str(uuid.uuid4())
    officer.post(f"{API}/devices", json={"id": device_id, "name": "Phone", "platform": "ios"})

    response = officer.post(f"{API}/devices/{device_id}/revoke", json={"reason": ""})

    assert_refused(response, "reason", "at least 3 characters")
    assert officer.get(f"{API}/devices/{device_id}").json()["revoked_at"] is None


def test_an_aor_across_the_antimeridian_is_refused(api):
    unit_id = api.mission.unit_id("coy-a1-1")
    ring = [[179.5, 5.0], [-179.5, 5.0], [-179.5, 6.0], [179.5, 6.0], [179.5, 5.0]]
    response = api.as_("admin").put(
        f"{API}/units/{unit_id}/aor", json={"geometry": {"type": "Polygon", "coordinates": [ring]}}
    )
    assert response.status_code == 422, response.text
    assert "antimeridian" in response.json()["message"]
    versions = api.as_("admin").get(f"{API}/units/{unit_id}/aor/versions").json()
    assert len(versions) == 1


def test_an_unknown_unit_filter_is_422(api):
    response = api.as_("analyst").get(REPORTS, params={"unit": 999_999})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query:unit"


def test_usernames_are_stored_lower_case(api):
    response = api.as_("admin").post(
        f"{API}/users",
        json={
            "username": "New.Officer",
            "full_name": "New Officer",
            "role": "field_officer",
            "unit_id": api.mission.unit_id("bn-a1"),
            "password": "a fine long passphrase",
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["username"] == "new.officer"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/alerts/99999999999999999999",
        "/api/v1/alerts/99999999999999999999.cap",
        "/api/v1/alerts/silences/99999999999999999999",
        "/api/v1/alerts?unit_id=99999999999999999999",
        "/api/v1/units/99999999999999999999",
    ],
)
def test_ids_beyond_the_database_range_are_a_clear_422(api, path) -> None:
    response = api.as_("admin").get(path)
    assert response.status_code == 422, response.text
    assert response.json()["message"] == "A number in this request is out of range."
