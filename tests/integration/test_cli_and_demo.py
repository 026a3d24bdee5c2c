"""The ``vigil`` command and the demo, end to end on the embedded default (SQLite, in-process
jobs, no services) — exactly what the README's first command runs.

These run in the SQLite pass only: they exercise the CLI's own embedded database, which does not
depend on the backend the rest of the suite is testing.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from server.cli import app

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        bool(os.environ.get("VIGIL_TEST_DATABASE_URL")),
        reason="CLI and demo tests use their own embedded SQLite database; they run in the "
        "SQLite pass",
    ),
]

DEMO_PASSWORD = "demo-password-for-tests-42"


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env.update(
        {
            "VIGIL_DATA_DIR": str(data_dir),
            "VIGIL_DEMO_PASSWORD": DEMO_PASSWORD,
            "VIGIL_ARGON2_TIME_COST": "1",
            "VIGIL_ARGON2_MEMORY_KIB": "8192",
            "VIGIL_ARGON2_PARALLELISM": "1",
        }
    )
    return env


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with the demo scenario loaded once (by the real command)."""
    data_dir = tmp_path_factory.mktemp("demo")
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "server", "demo", "--load-only"],
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    print(f"\ndemo load: {time.perf_counter() - started:.1f} s")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "loaded 58 units" in result.stderr
    words = " ".join(result.stderr.split())
    assert "11 protected sites, 12 patrol tracks" in words
    assert "protection gaps now" in result.stderr
    # The worker's first pass: flash alerts from the field reports, routed to the companies.
    found = re.search(r"patrol tracks, (\d+) alerts", words)
    assert found is not None, words
    raised = int(found.group(1))
    assert raised >= 10, words
    assert "RED " in result.stderr and "→ cob-" in result.stderr
    return data_dir


def test_demo_reuses_its_database(demo_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "demo", "--load-only"],
        env=_env(demo_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "already loaded" in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_demo_serves_the_car_scenario(demo_dir: Path) -> None:
    port = _free_port()
    log_path = demo_dir / "serve.log"
    log = log_path.open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "server", "demo", "--no-browser", "--port", str(port)],
        env=_env(demo_dir),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("the demo server did not come up:\n" + log_path.read_text()[-3000:])
        assert httpx.get(f"{base}/readyz").json()["status"] == "ready"
        assert httpx.get(f"{base}/docs").status_code == 200
        tokens = {}
        for username in ("admin", "analyst", "commander", "protection", "officer"):
            response = httpx.post(
                f"{base}/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD}
            )
            assert response.status_code == 200, (username, response.text)
            tokens[username] = {"Authorization": f"Bearer {response.json()['access_token']}"}
        everything = httpx.get(
            f"{base}/api/v1/reports", params={"limit": 1000}, headers=tokens["analyst"]
        ).json()
        assert len(everything["items"]) == 1000 and everything["next_cursor"]
        # the officer (a battalion around Bambari) sees far less than the JOC
        officer = httpx.get(
            f"{base}/api/v1/reports", params={"limit": 1000}, headers=tokens["officer"]
        ).json()
        assert 0 < len(officer["items"]) < 1000
        # demo SGBV cases: redacted for the analyst, full for protection
        sgbv = httpx.get(
            f"{base}/api/v1/reports",
            params={"family": "sexual_violence"},
            headers=tokens["analyst"],
        ).json()["items"]
        assert sgbv and all(item["detail"] == "redacted" for item in sgbv)
        full = httpx.get(
            f"{base}/api/v1/reports/{sgbv[0]['id']}", headers=tokens["protection"]
        ).json()
        assert full["detail"] == "full" and full["narrative"].startswith("[DEMO]")
        # the three reports of one killing near Bambari are suggested for merging
        suggestions = httpx.get(
            f"{base}/api/v1/incidents/merge-suggestions", headers=tokens["analyst"]
        ).json()
        assert suggestions and suggestions[0]["same_category"]
        # the threat picture of the CAR history: Gi* hot spots of 2018–2022 at res 6
        history = httpx.get(
            f"{base}/api/v1/hotspots",
            params={"resolution": 6, "window_days": 1826, "as_of": "2023-01-01T00:00:00Z"},
            headers=tokens["analyst"],
            timeout=60,
        )
        assert history.status_code == 200, history.text
        hot = [f for f in history.json()["features"] if f["properties"]["confidence"] > 0]
        assert len(hot) >= 20
        # the current picture of the officer's battalion (the demo's recent Bambari reports)
        current = httpx.get(
            f"{base}/api/v1/hotspots",
            params={"resolution": 7},
            headers=tokens["officer"],
            timeout=60,
        )
        assert current.status_code == 200, current.text
        assert current.json()["metadata"]["incidents"] > 0
        # the simulated patrols left real gaps: the Grimari-road village, two days after the
        # killing there, last saw a patrol six days ago
        gaps = httpx.get(f"{base}/api/v1/gaps", headers=tokens["commander"], timeout=60).json()
        by_site = {
            site["name"]: feature["properties"]
            for feature in gaps["features"]
            for site in feature["properties"]["sites"]
        }
        village = by_site["Village water point, Bambari-Grimari road"]
        assert set(village["reasons"]) >= {"flash", "site"}
        assert village["hours_uncovered"] > 5 * 24 and village["unit_code"] == "cob-bambari"
        coverage = httpx.get(
            f"{base}/api/v1/coverage", headers=tokens["officer"], timeout=60
        ).json()
        assert coverage["metadata"]["km"] > 100 and coverage["metadata"]["cells"] > 100
        plan = httpx.post(
            f"{base}/api/v1/tasking",
            headers=tokens["commander"],
            json={
                "unit_id": next(g["unit_id"] for g in [village]),
                "patrols": [{"kind": "mobile", "max_range_km": 150, "max_duration_hours": 10}],
            },
            timeout=60,
        )
        assert plan.status_code == 200, plan.text
        assert plan.json()["summary"]["threat_covered"] > 0
        # the commander of Sector Centre has the alerts of the Bambari companies to act on,
        # each with its coverage picture; the officer (a field role) may not acknowledge
        inbox = httpx.get(
            f"{base}/api/v1/alerts", params={"state": "open"}, headers=tokens["commander"]
        ).json()["items"]
        assert inbox and all(a["coverage"] for a in inbox)
        assert any(a["responsible_unit"] == "cob-bambari" for a in inbox)
        attack = next(a for a in inbox if a["severity"] == "red")
        refused = httpx.post(
            f"{base}/api/v1/alerts/{attack['id']}/acknowledgement",
            json={},
            headers=tokens["officer"],
        )
        assert refused.status_code in (403, 404)
        acked = httpx.post(
            f"{base}/api/v1/alerts/{attack['id']}/acknowledgement",
            json={"note": "patrol tasked"},
            headers=tokens["commander"],
        )
        assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
        cap_doc = httpx.get(f"{base}/api/v1/alerts/{attack['id']}.cap", headers=tokens["commander"])
        assert cap_doc.status_code == 200 and b"<scope>Restricted</scope>" in cap_doc.content
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()
    served = log_path.read_text()
    assert "Traceback" not in served and "[DEMO]" not in served  # no stack traces or narratives


def test_cli_imports_ucdp_idempotently(tmp_path: Path, shared_data: Path) -> None:
    runner = CliRunner()
    path = shared_data / "ucdp" / "car_ucdp_ged_v23_1.geojson"
    first = runner.invoke(app, ["import", "ucdp", str(path)], env=_env(tmp_path))
    assert first.exit_code == 0, first.output
    assert "1848 imported" in first.output
    second = runner.invoke(app, ["import", "ucdp", str(path)], env=_env(tmp_path))
    assert second.exit_code == 0
    text = " ".join(second.output.split())  # rich wraps long lines
    assert "0 imported" in text and "1848 already present" in text


def test_cli_reports_a_file_that_is_not_a_dataset(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("this is not a dataset\n")
    result = CliRunner().invoke(app, ["import", "acled", str(bad)], env=_env(tmp_path))
    assert result.exit_code == 1
    assert "error" in result.output


def test_cli_user_create_db_commands_and_audit(tmp_path: Path) -> None:
    runner = CliRunner()
    env = _env(tmp_path)
    upgrade = runner.invoke(app, ["db", "upgrade"], env=env)
    assert upgrade.exit_code == 0 and "head" in upgrade.output
    assert runner.invoke(app, ["db", "current"], env=env).exit_code == 0
    # no unit yet: a clear error, not a traceback
    missing = runner.invoke(
        app,
        ["user", "create", "ops", "--role", "admin", "--unit", "hq"],
        env={**env, "VIGIL_NEW_PASSWORD": "a long enough passphrase"},
    )
    assert missing.exit_code == 1 and "no unit with code 'hq'" in missing.output
    weak = runner.invoke(
        app,
        ["user", "create", "ops", "--role", "admin", "--unit", "hq"],
        env={**env, "VIGIL_NEW_PASSWORD": "short"},
    )
    assert weak.exit_code == 1
    verify = runner.invoke(app, ["audit", "verify"], env=env)
    assert verify.exit_code == 0 and "intact" in verify.output


def test_cli_hotspots_prints_the_picture_and_writes_geojson(demo_dir: Path, tmp_path: Path):
    out = tmp_path / "hot.geojson"
    result = CliRunner().invoke(
        app,
        [
            "hotspots",
            "--as-of",
            "2023-01-01",
            "--window",
            "1826",
            "--resolution",
            "6",
            "--geojson",
            str(out),
        ],
        env=_env(demo_dir),
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "hot," in text and "incidents over" in text
    import json

    features = json.loads(out.read_text())["features"]
    assert any(f["properties"]["confidence"] > 0 for f in features)
    bad = CliRunner().invoke(app, ["hotspots", "--window", "0"], env=_env(demo_dir))
    assert bad.exit_code == 1 and "window" in bad.output


def test_cli_gaps_prints_the_ranked_gaps_and_writes_geojson(demo_dir: Path, tmp_path: Path):
    out = tmp_path / "gaps.geojson"
    wide = {**_env(demo_dir), "COLUMNS": "240"}  # the table is wide; rich wraps to the terminal
    result = CliRunner().invoke(
        app, ["gaps", "--unit", "sector-centre", "--geojson", str(out)], env=wide
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Protection gaps" in text and "gaps among" in text
    assert "Village water point, Bambari-Grimari road" in text
    import json

    features = json.loads(out.read_text())["features"]
    assert features and features[0]["properties"]["rank"] == 1
    assert all(f["properties"]["unit"].startswith("cob-") for f in features)
    assert any(
        "Village water point, Bambari-Grimari road" in f["properties"]["sites"] for f in features
    )
    scores = [f["properties"]["score"] for f in features]
    assert scores == sorted(scores, reverse=True)
    only_flash = CliRunner().invoke(
        app, ["gaps", "--threat", "flash", "--audience", "general"], env=wide
    )
    assert only_flash.exit_code == 0, only_flash.output
    assert "IDP site, southern edge" not in only_flash.output  # restricted: protection only
    bad = CliRunner().invoke(app, ["gaps", "--threat", "rumour"], env=_env(demo_dir))
    assert bad.exit_code == 1 and "unknown threat" in bad.output
    no_unit = CliRunner().invoke(app, ["gaps", "--unit", "nowhere"], env=_env(demo_dir))
    assert no_unit.exit_code == 1 and "no unit" in no_unit.output


def test_cli_serve_refuses_several_workers_on_the_embedded_database(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--workers", "2"], env=_env(tmp_path))
    assert result.exit_code == 1
    assert "--workers needs PostgreSQL" in result.output
