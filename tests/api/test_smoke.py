from tests.seed import POINT_A1_1


def test_smoke(api):
    officer = api.as_("officer_a")
    r = officer.get("/api/v1/auth/me")
    assert r.status_code == 200, r.text
    body = {
        "id": "6f1c7c1e-3a51-4c0e-9d0a-2b1f7d6e9a10",
        "category": "killing_of_civilians",
        "occurred_at": "2026-11-20T06:30:00Z",
        "location": {"type": "Point", "coordinates": list(POINT_A1_1)},
        "location_accuracy_m": 30,
        "narrative": "canary",
    }
    r = officer.post("/api/v1/reports", json=body)
    assert r.status_code == 201, r.text
    print(r.json())
    r = officer.post("/api/v1/reports", json=body)
    assert r.status_code == 200, r.text
    r = officer.get("/api/v1/reports")
    assert r.status_code == 200, r.text
    print(r.json())
