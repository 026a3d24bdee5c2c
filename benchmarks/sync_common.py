"""Shared set-up of the sync benchmarks (``sync_*.py``): a migrated and seeded database, the real
server (``vigil serve``, uvicorn) in a subprocess, a field device provisioned over HTTP, and
varied report bodies over the seeded mission area.

Not a benchmark itself. The seed is the test mission of ``tests/seed.py`` (units with AORs
around Bambari and one user per role), built through the real services.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from mobile_sync.protocol.models import payload_sha256
from server.auth.passwords import PasswordService
from server.db import migrate
from server.db.session import create_engine_for, transaction
from server.settings import HotspotSettings, Settings
from server.taxonomy.codes import TAXONOMY

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # the seed lives with the tests, which are not installed
    sys.path.insert(0, str(REPO_ROOT))

from tests import seed as test_seed  # noqa: E402 - needs the repository root on sys.path (above)

T = TypeVar("T")

SYNC = "/sync/v1"
API = "/api/v1"
#: The field officer whose device pushes (unit bn-a1; may create reports anywhere).
FIELD_USER = "officer_a"
#: The seeded mission-HQ AOR (west, south, east, north): every unit's AOR lies inside it.
MISSION_BOX = (20.0, 5.5, 21.0, 6.0)
DEFAULT_PG_URL = os.environ.get(
    "VIGIL_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1/vigil_bench_sync"
)


# --------------------------------------------------------------------------- database

#: FORCE: a server a crashed run left behind must not keep the database alive.
DROP_DATABASE = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")


def libpq_uri(url: str, database: str | None = None) -> str:
    """A libpq URI (for psycopg) from a SQLAlchemy URL, optionally for another database."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def recreate_postgres(url: str) -> None:
    """Drop and create the URL's database, with PostGIS (as ``bench_sql_groupby.py`` does)."""
    name = make_url(url).database
    assert name, f"no database name in {url}"
    with psycopg.connect(libpq_uri(url, "postgres"), autocommit=True) as admin:
        admin.execute(DROP_DATABASE.format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(libpq_uri(url), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")


def drop_postgres(url: str) -> None:
    name = make_url(url).database
    assert name
    with psycopg.connect(libpq_uri(url, "postgres"), autocommit=True) as admin:
        admin.execute(DROP_DATABASE.format(sql.Identifier(name)))


def server_env(url: str, data_dir: Path) -> dict[str, str]:
    """Environment of ``vigil serve`` (and of :func:`load_settings`): the database, the data
    directory (attachments, the kept secret key), no in-process hotspot loop and no in-process
    alert drain — in production both run in the workers, not in the API process whose push
    path is measured. The push still writes each report's alert outbox row, in its own
    transaction, as in production."""
    return {
        "VIGIL_DATABASE_URL": url,
        "VIGIL_DATA_DIR": str(data_dir),
        "VIGIL_HOTSPOT_BACKGROUND": "false",
        "VIGIL_ALERTS_ENABLED": "false",
        "VIGIL_LOG_LEVEL": "INFO",
    }


def load_settings(url: str, data_dir: Path) -> Settings:
    return Settings.load(
        data_dir=data_dir,
        database={"url": url},
        hotspots=HotspotSettings(background=False),
        alerts={"enabled": False},
    )


def prepare_database(settings: Settings) -> None:
    """Schema by the migrations (as ``vigil db upgrade`` and the tests make it), then the test
    mission: units with AORs and one user per role."""
    engine = create_engine_for(settings)
    try:
        migrate.upgrade(engine)
        factory = sessionmaker(bind=engine, expire_on_commit=False)
        with transaction(factory) as session:
            test_seed.build(session, settings, PasswordService(settings.auth))
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- server


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class ServerProcess:
    """``python -m server serve`` (uvicorn; one process unless ``workers``) in a subprocess."""

    url: str
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    workers: int = 1

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 60.0) -> None:
        self.port = self.port or free_port(self.host)
        self.log_path = self.data_dir / f"server-{self.port}.log"
        env = {**os.environ, **server_env(self.url, self.data_dir)}
        command = [sys.executable, "-m", "server", "serve", "--no-migrate"]
        command += ["--host", self.host, "--port", str(self.port), "--workers", str(self.workers)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                command, env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early; see {self.log_path}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not up after {timeout_s:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


@contextmanager
def running_server(
    url: str, data_dir: Path, host: str = "127.0.0.1", workers: int = 1
) -> Iterator[ServerProcess]:
    server = ServerProcess(url=url, data_dir=data_dir, host=host, workers=workers)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- device


def provision_device(
    http: httpx.Client, username: str = FIELD_USER, password: str = test_seed.PASSWORD
) -> tuple[uuid.UUID, str]:
    """Sign in as ``username``, register a device and issue its sync credential, over HTTP."""
    login = http.post(
        f"{API}/auth/token", data={"username": username.replace("_", "-"), "password": password}
    )
    login.raise_for_status()
    auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
    device_id = uuid.uuid4()
    registered = http.post(
        f"{API}/devices",
        json={"id": str(device_id), "name": "bench phone", "platform": "bench"},
        headers=auth,
    )
    assert registered.status_code == 201, registered.text
    issued = http.post(f"{API}/devices/{device_id}/credential", headers=auth)
    assert issued.status_code == 201, issued.text
    return device_id, str(issued.json()["token"])


@dataclass
class Device:
    """A field device speaking /sync/v1 by hand (the ops and headers of ``tests/sync/kit.py``)."""

    device_id: uuid.UUID
    token: str
    boot_id: uuid.UUID = field(default_factory=uuid.uuid4)
    next_seq: int = 1
    started: float = field(default_factory=time.monotonic)
    client_version: str = "1.0.0"

    def device_time_ms(self) -> int:
        return int(time.time() * 1000)

    def uptime_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000) + 1_000_000

    def headers(self) -> dict[str, str]:
        """The headers every sync request carries."""
        return {
            "Authorization": f"Bearer {self.token}",
            "X-Device-Time-Ms": str(self.device_time_ms()),
            "X-Device-Uptime-Ms": str(self.uptime_ms()),
            "X-Boot-Id": str(self.boot_id),
            "X-Client-Version": self.client_version,
        }

    def create_op(self, body: dict[str, Any]) -> dict[str, Any]:
        """A ``create`` op for a report body (its ``id`` becomes the op's report_id)."""
        payload = {k: v for k, v in body.items() if k != "id"}
        seq = self.next_seq
        self.next_seq += 1
        return {
            "op_id": str(uuid.uuid4()),
            "device_id": str(self.device_id),
            "device_seq": seq,
            "report_id": body["id"],
            "kind": "create",
            "base_version": 0,
            "schema_version": 1,
            "device_time_ms": self.device_time_ms(),
            "device_uptime_ms": self.uptime_ms(),
            "boot_id": str(self.boot_id),
            "payload": payload,
            "payload_sha256": payload_sha256(payload),
        }

    def batch(self, ops: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "batch_id": str(uuid.uuid4()),
            "device_id": str(self.device_id),
            "device_time_ms": self.device_time_ms(),
            "device_uptime_ms": self.uptime_ms(),
            "boot_id": str(self.boot_id),
            "client_version": self.client_version,
            "ops": ops,
        }


def encode_body(body: dict[str, Any]) -> bytes:
    """Compact JSON, UTF-8: what a bandwidth-minded client sends."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def push_request(device: Device, batch: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The body and headers of ``POST /sync/v1/push`` for a batch."""
    headers = {
        **device.headers(),
        "Idempotency-Key": batch["batch_id"],
        "Content-Type": "application/json",
    }
    return encode_body(batch), headers


def check_results(response: httpx.Response, expected: int) -> None:
    """Every op of the batch was applied, none quarantined (raises otherwise)."""
    if response.status_code != 200:
        raise RuntimeError(f"push answered {response.status_code}: {response.text[:500]}")
    results = response.json()["results"]
    bad = [r for r in results if r["status"] != "applied" or r.get("quarantined")]
    if len(results) != expected or bad:
        raise RuntimeError(f"push: {len(results)} results, not applied: {bad[:3]}")


# --------------------------------------------------------------------------- report bodies

_PLACES = [
    # (name, lon, lat): settlements in and around the seeded AOR (Ouaka prefecture).
    ("Bambari", 20.67, 5.76),
    ("Ippy road PK12", 20.55, 5.85),
    ("Kidjigra", 20.66, 5.74),
    ("Awatché", 20.70, 5.78),
    ("Kouango road PK20", 20.80, 5.62),
    ("Grimari road PK30", 20.30, 5.70),
    ("Liwa", 20.12, 5.75),
    ("Ndjoubissi", 20.40, 5.90),
    ("Tagbara", 20.90, 5.95),
    ("Yéwa", 20.22, 5.58),
]
_NARRATIVE = [
    "Armed men on motorbikes entered the village at dawn.",
    "Witnesses report shots fired near the market.",
    "Houses were burnt and livestock taken.",
    "The community alert network relayed the report by HF radio.",
    "Families fled towards the IDP site; numbers are being confirmed.",
    "The patrol found the road blocked by a checkpoint manned by an armed group.",
    "Local authorities confirmed the incident by phone.",
    "Victims were taken to the district hospital.",
    "Threats against the village chief were reported the week before.",
    "The source asked that their identity not be shared.",
]


def report_bodies(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` valid, varied ``ReportCreate`` bodies (with ``id``): every taxonomy category, points
    clustered on settlements of the seeded AOR (80 %, σ ≈ 2 km) or spread over it, times over
    the last 60 days at mixed precisions, graded sources, victims with and without sex/age
    breakdowns, narratives of 0–10 sentences. Deterministic for ``seed``."""
    rng = random.Random(seed)
    west, south, east, north = MISSION_BOX
    categories = [c.code for c in TAXONOMY]
    now = datetime.now(UTC) - timedelta(minutes=5)
    bodies = []
    for _ in range(n):
        if rng.random() < 0.8:
            place, lon, lat = rng.choice(_PLACES)
            lon = min(max(lon + rng.gauss(0, 0.02), west + 1e-4), east - 1e-4)
            lat = min(max(lat + rng.gauss(0, 0.02), south + 1e-4), north - 1e-4)
        else:
            place, lon, lat = None, rng.uniform(west, east), rng.uniform(south, north)
        precision = rng.choices(["exact", "settlement", "area"], [6, 3, 1])[0]
        time_precision = rng.choices(["exact", "hour", "day"], [6, 3, 1])[0]
        occurred = now - timedelta(seconds=rng.uniform(0, 60 * 86_400))
        killed = rng.choices([0, 1, 2, 5, 12], [5, 3, 2, 1, 0.3])[0]
        body: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "category": rng.choice(categories),
            "occurred_at": occurred.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "time_precision": time_precision,
            "location": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]},
            "location_accuracy_m": {"exact": 15, "settlement": 500, "area": 5000}[precision],
            "location_precision": precision,
            "source_type": rng.choice(
                ["direct_observation", "victim", "witness", "community_alert_network", "partner"]
            ),
            "source_reliability": rng.choice("ABCDEF"),
            "information_credibility": rng.choice("123456"),
            "perpetrator_type": rng.choice(
                ["state_forces", "non_state_armed_group", "militia_community_defence", "unknown"]
            ),
        }
        if place:
            body["place_name"] = place
            body["admin1"] = "Ouaka"
            body["admin2"] = "Bambari"
        victims: dict[str, Any] = {}
        if killed:
            victims["killed"] = {"best": killed, "low": max(0, killed - 1), "high": killed + 2}
        if rng.random() < 0.4:
            victims["injured"] = rng.randint(1, 8)
        if rng.random() < 0.15:
            victims["displaced"] = rng.randint(10, 800)
        if rng.random() < 0.2:
            victims["disaggregation"] = [
                {"sex": "female", "age_group": "adult", "injured": 1},
                {"sex": "male", "age_group": rng.choice(["adult", "child"]), "killed": killed},
            ]
        if victims:
            body["victims"] = victims
        if rng.random() < 0.3:
            body["perpetrator_name"] = rng.choice(["UPC", "3R", "Anti-balaka", "MPC", "FPRC"])
        sentences = rng.randint(0, 10)
        if sentences:
            body["narrative"] = " ".join(rng.choice(_NARRATIVE) for _ in range(sentences))
        if rng.random() < 0.05:
            body["protection_concern"] = True
        if rng.random() < 0.3:
            body["consent"] = {"aggregate_reporting": True, "referral": rng.random() < 0.5}
        bodies.append(body)
    return bodies


def minimal_body(rng: random.Random | None = None) -> dict[str, Any]:
    """The smallest valid create body: category, occurred_at and location (and ``id``): a
    normal-tier category at a point of bn-a1, the field user's unit, an hour ago. With
    ``rng``, a point anywhere in the seeded AOR (GPS precision, 6 decimals) and a time in the
    last week, so that a batch of them does not compress better than real ones would."""
    now = datetime.now(UTC).replace(microsecond=0)
    if rng is None:
        (lon, lat), occurred = test_seed.POINT_A1_1, now - timedelta(hours=1)
    else:
        west, south, east, north = MISSION_BOX
        lon = round(rng.uniform(west, east), 6)
        lat = round(rng.uniform(south, north), 6)
        occurred = now - timedelta(seconds=rng.randint(60, 7 * 86_400))
    return {
        "id": str(uuid.uuid4()),
        "category": "killing_of_civilians",
        "occurred_at": occurred.isoformat().replace("+00:00", "Z"),
        "location": {"type": "Point", "coordinates": [lon, lat]},
    }


# --------------------------------------------------------------------------- printing


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def met(ok: bool) -> str:
    return "MET" if ok else "MISSED"
