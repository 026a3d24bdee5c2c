"""SYNC.md §6 scenario 39: many devices with queued reports syncing at once (default 500
devices × 200 reports). Checks I2 (every report stored once, one ledger row per op) and I5
(pullers running during the storm, then once more after it, hold every pushed report: no
change skipped), and records push latency.

The server as deployed (``python -m server serve --workers 4``, uvicorn, four processes as
``docker-compose.yml`` runs it on a 2-core host; ``--server-workers``) on its own freshly
migrated PostgreSQL/PostGIS database (the test mission seeded). Devices are registered over HTTP
for one field officer (one sign-in, then one device and credential each). Each device pushes its
queue in batches of 100 as the reference client does: a 429/503 is retried after its
``Retry-After`` (with jitter), a transport error or timeout resends the same batch unchanged.
All devices start together behind a barrier. Meanwhile ``--pullers`` other devices of an
analyst pull continuously; after the storm they pull to the end once more.

Latency is per push request, from first send to its 200 (retries and admission waits
included), so the tail shows what a device in the storm waits. Nothing here is asserted in CI;
the script exits 1 if I2 or I5 is violated.

    .venv/bin/python benchmarks/sync_load.py [--devices 500] [--reports 200] [--pullers 4]
        [--concurrency 500] [--pg-url URL] [--keep]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import sync_common as common

BATCH = 100
PULLER_USER = "analyst"


def _register(http: httpx.Client, username: str, count: int) -> list[common.Device]:
    login = http.post(
        f"{common.API}/auth/token",
        data={"username": username.replace("_", "-"), "password": common.test_seed.PASSWORD},
    )
    login.raise_for_status()
    auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
    devices = []
    for _ in range(count):
        device_id = uuid.uuid4()
        registered = http.post(
            f"{common.API}/devices",
            json={"id": str(device_id), "name": "load phone", "platform": "bench"},
            headers=auth,
        )
        registered.raise_for_status()
        issued = http.post(f"{common.API}/devices/{device_id}/credential", headers=auth)
        issued.raise_for_status()
        devices.append(common.Device(device_id, str(issued.json()["token"])))
    return devices


def _push_until_answered(
    http: httpx.Client, device: common.Device, body: bytes, batch_id: str, latencies: list[float]
) -> dict[str, Any]:
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        headers = {
            **device.headers(),
            "Idempotency-Key": batch_id,
            "Content-Type": "application/json",
        }
        try:
            response = http.post(f"{common.SYNC}/push", content=body, headers=headers)
        except httpx.TransportError:
            time.sleep(random.uniform(0, min(30, 2**attempt)))
            continue
        if response.status_code in (429, 503):
            wait = float(response.headers.get("Retry-After", "1"))
            time.sleep(wait + random.uniform(0, wait))
            continue
        if response.status_code != 200:
            raise RuntimeError(f"push answered {response.status_code}: {response.text[:300]}")
        latencies.append(time.monotonic() - started)
        result: dict[str, Any] = response.json()
        return result


class Puller:
    """An analyst's device pulling all the time; collects the report ids it was sent."""

    def __init__(self, base_url: str, device: common.Device) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=120)
        self.device = device
        self.cursor: str | None = None
        self.seen: set[str] = set()
        self.pages = 0

    def pull_to_end(self) -> None:
        while True:
            params: dict[str, Any] = {"limit": 500}
            if self.cursor:
                params["cursor"] = self.cursor
            response = self.http.get(
                f"{common.SYNC}/pull", params=params, headers=self.device.headers()
            )
            if response.status_code in (429, 503):
                time.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            response.raise_for_status()
            page = response.json()
            self.pages += 1
            self.seen.update(c["report_id"] for c in page["changes"])
            self.cursor = page["next_cursor"]
            if not page["has_more"]:
                return

    def run_until(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.pull_to_end()
            time.sleep(0.2)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--reports", type=int, default=200, help="queued reports per device")
    parser.add_argument("--pullers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=500, help="client threads")
    parser.add_argument("--pg-url", default=common.DEFAULT_PG_URL, help="created and dropped")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--seed", type=int, default=39)
    parser.add_argument(
        "--server-workers",
        type=int,
        default=4,
        help="`vigil serve --workers` (default 4, as docker-compose.yml on a 2-core host)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-load-"))
    common.recreate_postgres(args.pg_url)
    try:
        settings = common.load_settings(args.pg_url, work)
        common.prepare_database(settings)
        with common.running_server(args.pg_url, work, workers=args.server_workers) as server:
            ok = run(args, server.base_url)
    finally:
        if not args.keep:
            common.drop_postgres(args.pg_url)
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


def run(args: argparse.Namespace, base_url: str) -> bool:
    total = args.devices * args.reports
    print(
        f"{args.devices} devices × {args.reports} reports = {total:,} reports, batches of "
        f"{BATCH}; {args.pullers} pullers; {args.concurrency} client threads"
    )
    with httpx.Client(base_url=base_url, timeout=120) as http:
        started = time.perf_counter()
        devices = _register(http, common.FIELD_USER, args.devices)
        pullers = [Puller(base_url, d) for d in _register(http, PULLER_USER, args.pullers)]
        print(
            f"registered {len(devices) + len(pullers)} devices in "
            f"{time.perf_counter() - started:.1f} s"
        )
    bodies = common.report_bodies(total, args.seed)
    plans: list[list[tuple[bytes, str]]] = []
    for index, device in enumerate(devices):
        mine = bodies[index * args.reports : (index + 1) * args.reports]
        plan = []
        for start in range(0, len(mine), BATCH):
            built = device.batch([device.create_op(b) for b in mine[start : start + BATCH]])
            plan.append((common.encode_body(built), built["batch_id"]))
        plans.append(plan)
    pushed_ids = {b["id"] for b in bodies}

    latencies: list[float] = []
    statuses: dict[str, int] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(min(args.concurrency, len(devices)))

    def device_sync(index: int) -> None:
        if index < args.concurrency:
            barrier.wait()
        with httpx.Client(base_url=base_url, timeout=60) as http:
            mine: list[float] = []
            for body, batch_id in plans[index]:
                answer = _push_until_answered(http, devices[index], body, batch_id, mine)
                with lock:
                    for result in answer["results"]:
                        statuses[result["status"]] = statuses.get(result["status"], 0) + 1
            with lock:
                latencies.extend(mine)

    stop = threading.Event()
    puller_threads = [threading.Thread(target=p.run_until, args=(stop,)) for p in pullers]
    for thread in puller_threads:
        thread.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        list(pool.map(device_sync, range(len(devices))))
    seconds = time.perf_counter() - started
    stop.set()
    for thread in puller_threads:
        thread.join()
    for puller in pullers:
        puller.pull_to_end()  # once more after the storm: everything must have arrived

    with psycopg.connect(common.libpq_uri(args.pg_url)) as conn:
        reports, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT id) FROM reports WHERE origin = 'field'"
        ).fetchone() or (0, 0)
        ledger = (conn.execute("SELECT count(*) FROM sync_ops").fetchone() or (0,))[0]
        incidents = (conn.execute("SELECT count(*) FROM incident_reports").fetchone() or (0,))[0]
    print(f"\npushed in {seconds:.1f} s = {total / seconds:,.0f} reports/s; answers {statuses}")
    print(
        f"push latency per batch (first send → 200, retries included): "
        f"p50 {statistics.median(latencies):.2f} s, p95 {_pct(latencies, 0.95):.2f} s, "
        f"max {max(latencies):.2f} s over {len(latencies)} batches"
    )
    i2 = reports == distinct == total and ledger == total and incidents == total
    print(
        f"I2 no duplication: reports {reports:,} (distinct {distinct:,}), ledger rows "
        f"{ledger:,}, incident links {incidents:,}, expected {total:,}: "
        f"{'holds' if i2 else 'VIOLATED'}"
    )
    i5 = True
    for number, puller in enumerate(pullers, 1):
        missing = pushed_ids - puller.seen
        i5 = i5 and not missing
        print(
            f"I5 puller {number}: {puller.pages} pages, {len(puller.seen & pushed_ids):,} of "
            f"{total:,} pushed reports received, {len(missing)} missing"
        )
    print(f"I5 gap-free pull: {'holds' if i5 else 'VIOLATED'}")
    return i2 and i5


if __name__ == "__main__":
    main()
