"""Benchmark sync push throughput: batches of 100 create ops through the real HTTP path, against
a raw ``COPY`` of the same rows into the same ``reports`` table.

Ours: the server as deployed (``vigil serve --workers 4``: uvicorn, four processes as
``docker-compose.yml`` runs it on a 2-core host, in a subprocess on 127.0.0.1; one process with
``--profile``) over its own freshly migrated PostgreSQL/PostGIS database (``vigil_bench_sync``, the
test mission seeded), field devices provisioned over HTTP (sign-in, ``POST /api/v1/devices``,
credential), each pushing ``POST /sync/v1/push`` batches of 100 varied create ops (every taxonomy
category, points over the seeded AOR, graded sources, victims, narratives) one batch after the
other; with several devices, they push concurrently. Every op must come back ``applied`` (not
quarantined). Request bodies are encoded before the clock starts.

Baselines, measured in the same run on the same database: the rows the push stored (every column
of ``reports``: geometry, H3 cells, derived fields), under new ids, loaded back into ``reports``
with ``COPY … FROM STDIN (FORMAT BINARY)`` — once as one COPY of all rows, and once as one COPY
and commit per 100 rows (the push's batching). The COPYs run after the push, so they write to a
table that already holds the pushed rows (this slows them slightly; it does not flatter the push).

Then the same push on the embedded SQLite backend (``vigil serve`` on an SQLite file), against a
plain ``executemany`` INSERT of the same rows (one transaction; and one per 100 rows).

Also printed: CPU per report of the server process and of the database's PostgreSQL backends
(from ``/proc``), what those backends were doing (``pg_stat_activity`` sampled every 50 ms: running,
waiting for a lock and on which statement, or idle in the transaction waiting for the app), SQL
statements per op (the app in-process, counted by an engine listener: not timed), and with
``--profile`` py-spy profiles of the server during two more pushes (``--idle``: wall time of the
request's thread; ``--gil``: Python on the CPU), split by component. Targets (issue):
≥ 2,000 reports/s and ≥ 30 % of the raw COPY rate; printed MET/MISSED; asserts nothing.

    .venv/bin/python benchmarks/sync_push_throughput.py [--quick] [--reports N] [--devices 1,4]
        [--profile] [--no-sqlite] [--pg-url URL] [--keep]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import sync_common as common
from psycopg import sql
from sqlalchemy import event
from sqlalchemy.engine import make_url

TARGET_RATE = 2_000.0
TARGET_SHARE = 0.30
BATCH = 100
#: py-spy samples per second (it pauses the server for each: stacks are then exact).
PROFILE_RATE = 100


@dataclass
class PushRun:
    label: str
    devices: int
    reports: int
    seconds: float
    latencies: list[float]
    report_ids: list[str]
    #: CPU seconds used during the timed push by the server process and by the database's
    #: PostgreSQL backends (None on SQLite).
    server_cpu: float = 0.0
    pg_cpu: float | None = None
    #: Share of sampled busy backend states during the timed push (PostgreSQL only).
    activity: list[tuple[str, float]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.reports / self.seconds


# --------------------------------------------------------------------------- push


def _prepared_batches(
    device: common.Device, n: int, batch: int, seed: int
) -> list[tuple[bytes, str, list[str]]]:
    """(body, batch_id, report ids) per batch, encoded ahead of time."""
    bodies = common.report_bodies(n, seed)
    out = []
    for start in range(0, n, batch):
        chunk = bodies[start : start + batch]
        built = device.batch([device.create_op(b) for b in chunk])
        out.append((common.encode_body(built), built["batch_id"], [b["id"] for b in chunk]))
    return out


def _post(http: httpx.Client, device: common.Device, body: bytes, batch_id: str) -> httpx.Response:
    headers = {
        **device.headers(),
        "Idempotency-Key": batch_id,
        "Content-Type": "application/json",
    }
    return http.post(f"{common.SYNC}/push", content=body, headers=headers)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) so far, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree_cpu_seconds(pid: int) -> float:
    """:func:`_cpu_seconds` of a process and its descendants (uvicorn's worker processes)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return _cpu_seconds(pid) + sum(_tree_cpu_seconds(int(c)) for c in children)


def _backend_cpu(pg_url: str | None) -> dict[int, float]:
    """CPU so far of every PostgreSQL backend connected to the benchmark's database."""
    if pg_url is None:
        return {}
    database = make_url(pg_url).database
    with psycopg.connect(common.libpq_uri(pg_url, "postgres"), autocommit=True) as conn:
        pids = [
            int(row[0])
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,)
            )
        ]
    return {pid: _cpu_seconds(pid) for pid in pids}


def push_reports(
    base_url: str,
    *,
    devices: int,
    reports: int,
    batch: int,
    seed: int,
    label: str,
    server_pid: int,
    pg_url: str | None,
) -> PushRun:
    """Provision ``devices`` devices, warm up, then push ``reports`` create ops split evenly
    between them, each device one batch at a time, all devices at once. Timed from the first
    request to the last response."""
    per_device = reports // devices
    clients, plans = [], []
    for index in range(devices):
        http = httpx.Client(base_url=base_url, timeout=300)
        device_id, token = common.provision_device(http)
        device = common.Device(device_id, token)
        warm = _prepared_batches(device, 2 * batch, batch, seed + 1000 + index)
        for body, batch_id, _ids in warm:
            common.check_results(_post(http, device, body, batch_id), batch)
        clients.append((http, device))
        plans.append(_prepared_batches(device, per_device, batch, seed + index))
    latencies: list[list[float]] = [[] for _ in range(devices)]
    errors: list[BaseException] = []
    start_line = threading.Barrier(devices + 1)

    def work(index: int) -> None:
        http, device = clients[index]
        start_line.wait()
        try:
            for body, batch_id, ids in plans[index]:
                started = time.perf_counter()
                response = _post(http, device, body, batch_id)
                latencies[index].append(time.perf_counter() - started)
                common.check_results(response, len(ids))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(devices)]
    for thread in threads:
        thread.start()
    server_before, pg_before = _tree_cpu_seconds(server_pid), _backend_cpu(pg_url)
    sampler = ActivitySampler(pg_url) if pg_url else None
    if sampler is not None:
        sampler.start()
    start_line.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if sampler is not None:
        sampler.halt.set()
        sampler.join()
    server_cpu = _tree_cpu_seconds(server_pid) - server_before
    pg_after = _backend_cpu(pg_url)
    own = sampler.backend_pid if sampler is not None else 0
    pg_cpu = sum(cpu - pg_before.get(pid, 0.0) for pid, cpu in pg_after.items() if pid != own)
    for http, _device in clients:
        http.close()
    if errors:
        raise errors[0]
    ids = [i for plan in plans for _b, _k, batch_ids in plan for i in batch_ids]
    flat = [x for per in latencies for x in per]
    return PushRun(
        label,
        devices,
        len(ids),
        seconds,
        flat,
        ids,
        server_cpu,
        pg_cpu if pg_url else None,
        sampler.summary() if sampler is not None else [],
    )


# --------------------------------------------------------------------------- baselines


def _columns_pg(conn: psycopg.Connection[Any]) -> list[str]:
    return [
        row[0]
        for row in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = 'reports' ORDER BY ordinal_position"
        )
    ]


def _export_pg(conn: psycopg.Connection[Any], columns: list[str], ids: list[str]) -> bytes:
    """The stored rows of ``ids``, every column, new ids, as one binary COPY stream."""
    select_list = sql.SQL(", ").join(
        sql.SQL("gen_random_uuid()") if c == "id" else sql.Identifier(c) for c in columns
    )
    query = sql.SQL(
        "COPY (SELECT {} FROM reports WHERE id = ANY({}::uuid[])) TO STDOUT (FORMAT BINARY)"
    ).format(select_list, sql.Literal(ids))
    data = bytearray()
    with conn.cursor() as cursor, cursor.copy(query) as copy:
        for block in copy:
            data += block
    return bytes(data)


def copy_baseline(url: str, ids: list[str], batch: int) -> tuple[float, float, int]:
    """Seconds for (one COPY of all rows; one COPY + commit per ``batch`` rows), and the rows
    loaded by each."""
    with psycopg.connect(common.libpq_uri(url), autocommit=True) as conn:
        columns = _columns_pg(conn)
        everything = _export_pg(conn, columns, ids)
        pieces = [_export_pg(conn, columns, ids[i : i + batch]) for i in range(0, len(ids), batch)]
        copy_in = sql.SQL("COPY reports ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        )
        before = conn.execute("SELECT count(*) FROM reports").fetchone()
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cursor, cursor.copy(copy_in) as copy:
            copy.write(everything)
        t_one = time.perf_counter() - started
        started = time.perf_counter()
        for piece in pieces:
            with conn.transaction(), conn.cursor() as cursor, cursor.copy(copy_in) as copy:
                copy.write(piece)
        t_batched = time.perf_counter() - started
        after = conn.execute("SELECT count(*) FROM reports").fetchone()
        assert before is not None
        assert after is not None
        assert after[0] - before[0] == 2 * len(ids), (before, after)
    return t_one, t_batched, len(ids)


def insert_baseline_sqlite(path: Path, ids: list[str], batch: int) -> tuple[float, float]:
    """Seconds for an ``executemany`` INSERT of the stored rows (new ids) into ``reports``:
    one transaction; one transaction per ``batch`` rows. Same pragmas as the server's engine."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=FULL")
        columns = [row[1] for row in conn.execute("PRAGMA table_info(reports)")]
        sample = conn.execute("SELECT id FROM reports LIMIT 1").fetchone()[0]
        as_hex = len(sample) == 32

        def key(text: str) -> str:
            return uuid.UUID(text).hex if as_hex else str(uuid.UUID(text))

        id_at = columns.index("id")
        rows: list[list[Any]] = []
        wanted = [key(i) for i in ids]
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            rows += [
                list(r)
                for r in conn.execute(
                    f"SELECT * FROM reports WHERE id IN ({marks})",  # noqa: S608 - placeholders
                    part,
                )
            ]
        assert len(rows) == len(ids)
        insert = (
            f"INSERT INTO reports ({', '.join(columns)}) "  # noqa: S608 - names from the schema
            f"VALUES ({', '.join('?' * len(columns))})"
        )

        def fresh() -> list[list[Any]]:
            out = []
            for row in rows:
                copy = list(row)
                copy[id_at] = key(str(uuid.uuid4()))
                out.append(copy)
            return out

        one, batched = fresh(), fresh()
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(insert, one)
        conn.execute("COMMIT")
        t_one = time.perf_counter() - started
        started = time.perf_counter()
        for start in range(0, len(batched), batch):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(insert, batched[start : start + batch])
            conn.execute("COMMIT")
        t_batched = time.perf_counter() - started
    finally:
        conn.close()
    return t_one, t_batched


# --------------------------------------------------------------------------- diagnostics

_TABLE = re.compile(r"^(?:INSERT INTO|UPDATE|DELETE FROM)\s+(\w+)|\bFROM\s+(\w+)", re.I)


def _statement_kind(statement: str) -> str:
    text = " ".join(statement.split())
    upper = text.upper()
    if upper.startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO")):
        return upper.split()[0] if not upper.startswith("RELEASE") else "RELEASE SAVEPOINT"
    if "PG_ADVISORY_XACT_LOCK" in upper:
        return "SELECT pg_advisory_xact_lock"
    if "NEXTVAL" in upper:
        return "SELECT nextval('change_seq')"
    verb = upper.split()[0] if upper else "?"
    match = _TABLE.search(text)
    table = (match.group(1) or match.group(2)) if match else ""
    lock = " FOR UPDATE" if upper.endswith("FOR UPDATE") else ""
    return f"{verb} {table}{lock}".strip()


def count_statements(settings: Any, batch: int, seed: int) -> tuple[int, collections.Counter[str]]:
    """Statements the app sends to the database for one push batch of ``batch`` creates: the
    same app in-process (Starlette's TestClient), one warm-up batch first. Counts, not times."""
    with warnings.catch_warnings():  # Starlette's note that its TestClient will change
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from server.app import create_app
    from server.db.session import create_engine_for

    settings = settings.model_copy(update={"log_level": "WARNING"})
    engine = create_engine_for(settings)
    counted: collections.Counter[str] = collections.Counter()
    active = {"on": False}

    @event.listens_for(engine, "before_cursor_execute")
    def _count(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if active["on"]:
            counted[_statement_kind(statement)] += 1

    @event.listens_for(engine, "commit")
    def _commit(_conn: Any) -> None:
        if active["on"]:
            counted["COMMIT"] += 1

    app = create_app(settings, engine=engine)
    try:
        with TestClient(app) as http:
            device_id, token = common.provision_device(http)
            device = common.Device(device_id, token)
            plans = _prepared_batches(device, 2 * batch, batch, seed)
            common.check_results(_post(http, device, *plans[0][:2]), batch)
            active["on"] = True
            common.check_results(_post(http, device, *plans[1][:2]), batch)
            active["on"] = False
    finally:
        engine.dispose()
    return batch, counted


#: Where a server stack sample is attributed: the innermost frame matching one of these
#: (path fragment, function) pairs names the component.
COMPONENTS: list[tuple[str, str, str]] = [
    # Innermost wins: rows an op left pending are written when a later query autoflushes them,
    # inside whatever component made that query; counted apart so that component is not blamed.
    (
        "sqlalchemy/orm/session.py",
        "Session._autoflush",
        "ORM autoflush: pending rows written before a query",
    ),
    ("server/audit/service.py", "record_many", "audit log: hash chain, head FOR UPDATE, COPY"),
    ("server/sync/changes.py", "*", "change log: advisory lock, nextval, delete + COPY"),
    ("server/hotspots/service.py", "mark_dirty_many", "hotspot dirty marks (per batch)"),
    ("server/incidents/fusion.py", "derive", "incident fields from the report (fusion)"),
    ("server/incidents/service.py", "create_for_new_reports", "incidents + links: rows, COPY"),
    ("server/units/service.py", "route_many", "AOR routing (one query per batch)"),
    ("server/reports/derived.py", "placements_of", "H3 cells / coarse location (vectorised)"),
    ("server/reports/service.py", "fingerprint", "content fingerprint (canonical JSON sha256)"),
    ("server/db/bulk.py", "insert_rows", "binary COPY: encode columns, write rows, wait"),
    ("server/reports/service.py", "create_many", "reports: row build (other)"),
    ("server/sync/clock.py", "*", "capture times: clock samples per batch"),
    ("server/sync/ops.py", "bulk_creatable", "ReportCreate validation per op"),
    ("server/sync/ops.py", "create_reports", "batch create: existing ids, capture columns"),
    ("server/sync/ops.py", "apply", "one op alone in its savepoint (not a plain create)"),
    ("server/sync/service.py", "_locked_cursor", "device cursor: one upsert locking the row"),
    ("server/sync/service.py", "_PushBatch.__init__", "op ledger lookup (one query per batch)"),
    ("server/sync/service.py", "_PushBatch._record", "op result + ledger row"),
    ("server/sync/service.py", "_PushBatch.finish", "ledger COPY, cursor update"),
    ("server/sync/service.py", "parse_ops", "op validation (pydantic Op per op)"),
    ("server/sync/service.py", "push", "push service (other)"),
    ("server/sync/views.py", "_remember_batch", "batch Idempotency-Key row"),
    ("server/sync/views.py", "push", "push view: json.loads + PushRequest validation"),
    ("server/sync/views.py", "get_device_context", "device credential + actor"),
    ("sqlalchemy/orm/session.py", "Session.commit", "request commit: last flush, COMMIT + fsync"),
    ("fastapi/routing.py", "serialize_response", "response validation + serialisation"),
]


#: Which library a sample's leaf frame is in: waiting on PostgreSQL shows as psycopg.
LAYERS = [
    ("psycopg/", "psycopg"),
    ("sqlalchemy/", "SQLAlchemy"),
    ("geoalchemy2/", "SQLAlchemy"),
    ("pydantic", "pydantic"),
]
LAYER_NAMES = ["psycopg", "SQLAlchemy", "pydantic", "other"]


def _frame_parts(frame: str) -> tuple[str, str]:
    # py-spy raw frames look like "function (path/to/file.py:123)".
    name, _, where = frame.partition(" (")
    return name.strip(), where.rstrip(")")


def _layer(frame: str) -> str:
    where = _frame_parts(frame)[1]
    for fragment, layer in LAYERS:
        if fragment in where:
            return layer
    return "other"


def attribute(stack: list[str]) -> tuple[str, str]:
    """(component, layer of the leaf frame) for one sample, frames root → leaf."""
    layer = _layer(stack[-1]) if stack else "other"
    for frame in reversed(stack):
        name, where = _frame_parts(frame)
        for fragment, function, label in COMPONENTS:
            # py-spy names methods Class.method: a rule without a class matches any class.
            short = name if "." in function else name.rpartition(".")[2]
            if function in (short, "*") and fragment in where:
                return label, layer
    return "FastAPI / anyio / SQLAlchemy plumbing (other)", layer


def parse_profile(path: Path) -> tuple[collections.Counter[tuple[str, str]], int, int, int]:
    """Samples of the request handlers by (component, leaf layer), their total, samples whose
    stack py-spy could not unwind to a thread root (unattributed), and samples of the event
    loop thread that were not idle."""
    by: collections.Counter[tuple[str, str]] = collections.Counter()
    handler = broken = loop = 0
    for line in path.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack_text.split(";")
        if any("server/sync/views.py" in f or "fastapi/routing.py" in f for f in frames):
            by[attribute(frames)] += count
            handler += count
        elif frames and frames[0].startswith("_run_module_as_main"):
            if "EpollSelector.select" not in frames[-1]:
                loop += count
        elif frames and not frames[0].startswith("Thread._bootstrap"):
            broken += count
    return by, handler, broken, loop


def profile_push(
    server: common.ServerProcess, batches: int, seed: int, out: Path, mode: str
) -> tuple[Path, float] | None:
    """py-spy over ``batches`` more push batches from one device: ``mode`` "--idle" samples every
    thread whether running or waiting (wall time), "--gil" only the thread holding the GIL
    (Python on the CPU). Returns the raw samples and the wall time; None without py-spy."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("  (py-spy not found: .venv/bin/pip install py-spy)")
        return None
    http = httpx.Client(base_url=server.base_url, timeout=300)
    device_id, token = common.provision_device(http)
    device = common.Device(device_id, token)
    plans = _prepared_batches(device, batches * BATCH, BATCH, seed)
    raw = out / f"push-profile{mode.replace('--', '-')}.txt"
    command = [spy, "record", "--pid", str(server.pid), "--rate", str(PROFILE_RATE), mode]
    command += ["--format", "raw", "--output", str(raw)]
    spy_process = subprocess.Popen(  # noqa: S603 - py-spy from the venv
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(1.5)
    started = time.perf_counter()
    for body, batch_id, ids in plans:
        common.check_results(_post(http, device, body, batch_id), len(ids))
    seconds = time.perf_counter() - started
    spy_process.send_signal(signal.SIGINT)
    spy_process.wait(timeout=60)
    http.close()
    print(f"  py-spy {mode}: {batches} batches ({batches * BATCH:,} ops) in {seconds:.2f} s")
    return (raw, seconds) if raw.exists() else None


class ActivitySampler(threading.Thread):
    """Samples what the benchmark database's backends are doing (``pg_stat_activity``) every
    ``interval`` seconds: running, waiting for a lock (on which statement), or idle in a
    transaction (waiting for the app to send the next statement)."""

    def __init__(self, pg_url: str, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pg_url = pg_url
        self.interval = interval
        self.halt = threading.Event()
        self.samples: collections.Counter[str] = collections.Counter()
        self.backend_pid = 0  # its own backend, left out of the CPU count

    def run(self) -> None:
        database = make_url(self.pg_url).database
        with psycopg.connect(common.libpq_uri(self.pg_url), autocommit=True) as conn:
            self.backend_pid = conn.info.backend_pid
            while not self.halt.wait(self.interval):
                rows = conn.execute(
                    "SELECT state, wait_event_type, wait_event, query FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid() "
                    "AND backend_type = 'client backend'",
                    (database,),
                ).fetchall()
                for state, wait_type, wait_event, query in rows:
                    self.samples[_activity(state, wait_type, wait_event, query)] += 1

    def summary(self) -> list[tuple[str, float]]:
        busy = {k: v for k, v in self.samples.items() if not k.startswith("idle (")}
        total = sum(busy.values()) or 1
        return [(k, v / total) for k, v in sorted(busy.items(), key=lambda kv: -kv[1])]


def _activity(state: str | None, wait_type: str | None, wait_event: str | None, query: str) -> str:
    if state == "idle in transaction":
        return "idle in transaction: waiting for the app's next statement"
    if state != "active":
        return f"idle ({state})"
    if wait_type == "Lock":
        return f"waiting for a lock ({wait_event}) in: {_statement_kind(query)}"
    if wait_type in (None, "CPU"):
        return "running a statement"
    return f"waiting on {wait_type}:{wait_event}"


# --------------------------------------------------------------------------- printing


def _components(raw: Path) -> tuple[collections.Counter[str], dict[str, collections.Counter[str]]]:
    by, _handler, _broken, _loop = parse_profile(raw)
    totals: collections.Counter[str] = collections.Counter()
    layers: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for (label, layer), count in by.items():
        totals[label] += count
        layers[label][layer] += count
    return totals, layers


def print_profile(wall: tuple[Path, float], gil: tuple[Path, float] | None, ops: int) -> None:
    """Per component: wall ms/op (every sample of the request's thread, running or waiting) and
    Python-on-CPU ms/op (samples holding the GIL), split by the leaf frame's library."""
    totals, _layers = _components(wall[0])
    handler = sum(totals.values())
    if not handler:
        print("  no samples in the request handler")
        return
    cpu, cpu_layers = _components(gil[0]) if gil else (collections.Counter(), {})
    per = 1000 / PROFILE_RATE / ops  # ms per op of one sample
    width = max(len(k) for k in totals)
    layer_head = "".join(f"{n:>11}" for n in LAYER_NAMES)
    title = "component (innermost matching frame)"
    print(f"  {title:<{width}}   wall ms/op   CPU ms/op  {layer_head}")
    for label, count in totals.most_common():
        held = cpu.get(label, 0)
        split = "".join(
            f"{cpu_layers[label][n] / held:>11.0%}" if held else f"{'':>11}" for n in LAYER_NAMES
        )
        print(
            f"  {label:<{width}}  {count * per:6.2f} {count / handler:4.0%}  {held * per:6.2f}  "
            f"  {split}"
        )
    overall: collections.Counter[str] = collections.Counter()
    for counter in cpu_layers.values():
        overall.update(counter)
    held_total = sum(cpu.values())
    print(
        f"  {'total in the request handler':<{width}}  {handler * per:6.2f} 100%  "
        f"{held_total * per:6.2f}    (wall during the py-spy runs: {wall[1] * 1000 / ops:.2f} and "
        f"{(gil[1] if gil else 0) * 1000 / ops:.2f} ms/op)"
    )
    if held_total:
        split = ", ".join(f"{n} {overall[n] / held_total:.0%}" for n in LAYER_NAMES)
        print(f"  Python on the CPU (holding the GIL), by the leaf frame's library: {split}")
    print(
        "  wall: every sample of the request's thread (py-spy --idle), running or waiting; "
        "CPU: samples holding the GIL (py-spy --gil).\n  wall − CPU = the thread waiting: for "
        "PostgreSQL's answer, or for the GIL or a core (2 cores shared with PostgreSQL and the "
        "client); the backend sampling above says which"
    )
    print(f"  raw py-spy samples: {wall[0]}" + (f", {gil[0]}" if gil else ""))


def print_runs(runs: list[PushRun], baselines: list[tuple[str, float]], target: bool) -> None:
    best_baseline = baselines[0][1]
    versus = "vs " + baselines[0][0]
    print(f"  {'':<46} {'reports':>8} {'seconds':>8} {'reports/s':>10} {versus:>16}")
    for run in runs:
        latencies = sorted(run.latencies)
        p50 = statistics.median(latencies) * 1000
        p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] * 1000
        name = f"{run.label}, {run.devices} device{'s' if run.devices > 1 else ''}"
        print(
            f"  {name:<46} {run.reports:>8,} {run.seconds:>8.2f} {run.rate:>10,.0f} "
            f"{run.rate / best_baseline:>15.1%}   batch p50 {p50:.0f} ms, p95 {p95:.0f} ms"
        )
        cpu = f"server process {run.server_cpu / run.reports * 1000:.2f} ms"
        if run.pg_cpu is not None:
            cpu += f", PostgreSQL backends {run.pg_cpu / run.reports * 1000:.2f} ms"
        print(f"  {'':<46} per report: wall {run.seconds / run.reports * 1000:.2f} ms; CPU {cpu}")
        if run.activity:
            shown = "; ".join(f"{share:.0%} {what}" for what, share in run.activity[:4])
            print(f"  {'':<46} PostgreSQL backends in a transaction, sampled: {shown}")
    for label, rate in baselines:
        print(f"  {label:<46} {'':>8} {'':>8} {rate:>10,.0f} {rate / best_baseline:>15.1%}")
    if target:
        best = max(runs, key=lambda r: r.rate)
        print(
            f"  target ≥ {TARGET_RATE:,.0f} reports/s: {common.met(best.rate >= TARGET_RATE)} "
            f"(best {best.rate:,.0f}); target ≥ {TARGET_SHARE:.0%} of raw COPY: "
            f"{common.met(best.rate / best_baseline >= TARGET_SHARE)} "
            f"({best.rate / best_baseline:.1%})"
        )


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=5_000, help="create ops per run")
    parser.add_argument("--quick", action="store_true", help="2,000 reports, one device")
    parser.add_argument("--devices", default="1,4", help="concurrent devices per run, e.g. 1,4")
    parser.add_argument("--pg-url", default=common.DEFAULT_PG_URL, help="created and dropped")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite backend")
    parser.add_argument("--profile", action="store_true", help="py-spy the server (PostgreSQL)")
    parser.add_argument("--profile-batches", type=int, default=40)
    parser.add_argument("--keep", action="store_true", help="keep the database and data dir")
    parser.add_argument(
        "--server-workers",
        type=int,
        default=None,
        help="`vigil serve --workers` on PostgreSQL (default: 4, as docker-compose.yml deploys "
        "it on a 2-core host; 1 with --profile)",
    )
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args()
    if args.server_workers is None:
        args.server_workers = 1 if args.profile else 4
    reports = 2_000 if args.quick else args.reports
    device_counts = [1] if args.quick else [int(x) for x in args.devices.split(",")]
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-sync-"))
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; batches of {BATCH} creates")
    processes = f"--workers {args.server_workers}" if args.server_workers > 1 else "1 process"
    print(
        f"server: `python -m server serve` (uvicorn, {processes}) in a subprocess; data in {work}"
    )
    if args.profile and args.server_workers > 1:
        parser.error("--profile samples one server process: use it with --server-workers 1")
    try:
        run_postgres(args, reports, device_counts, work / "pg")
        if not args.no_sqlite:
            run_sqlite(args, reports, device_counts, work / "sqlite")
    finally:
        if not args.keep:
            common.drop_postgres(args.pg_url)
            shutil.rmtree(work, ignore_errors=True)
            print(f"\ndropped database {make_url(args.pg_url).database} and {work}")


def run_postgres(
    args: argparse.Namespace, reports: int, device_counts: list[int], data_dir: Path
) -> None:
    data_dir.mkdir(parents=True)
    common.recreate_postgres(args.pg_url)
    settings = common.load_settings(args.pg_url, data_dir)
    common.prepare_database(settings)
    with psycopg.connect(common.libpq_uri(args.pg_url)) as conn:
        row = conn.execute("SELECT version(), postgis_lib_version()").fetchone()
        assert row is not None
        database = make_url(args.pg_url).database
        print(f"{row[0].split(',')[0]}, PostGIS {row[1]}; database {database}")
    runs: list[PushRun] = []
    with common.running_server(args.pg_url, data_dir, workers=args.server_workers) as server:
        for count in device_counts:
            runs.append(
                push_reports(
                    server.base_url,
                    devices=count,
                    reports=reports,
                    batch=BATCH,
                    seed=args.seed + 17 * count,
                    label="PostgreSQL: HTTP push",
                    server_pid=server.pid,
                    pg_url=args.pg_url,
                )
            )
        t_one, t_batched, copied = copy_baseline(args.pg_url, runs[0].report_ids, BATCH)
        wall = gil = None
        if args.profile:
            print("\nprofiling the server (py-spy) during two extra pushes, after the timed runs")
            wall = profile_push(server, args.profile_batches, args.seed + 99, data_dir, "--idle")
            gil = profile_push(server, args.profile_batches, args.seed + 98, data_dir, "--gil")
    with psycopg.connect(common.libpq_uri(args.pg_url)) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM reports), (SELECT count(*) FROM sync_ops), "
            "(SELECT count(*) FROM incidents), (SELECT count(*) FROM audit_events), "
            "(SELECT count(*) FROM changes)"
        ).fetchone()
    assert counts is not None
    print(f"\nPostgreSQL: push vs raw COPY into the same `reports` table ({copied:,} rows)")
    print_runs(
        runs,
        [
            ("raw COPY, one statement", copied / t_one),
            (f"raw COPY, one COPY + commit per {BATCH} rows", copied / t_batched),
        ],
        target=True,
    )
    print(
        f"  rows after the run: reports {counts[0]:,} (pushed + 2 × COPY), sync_ops {counts[1]:,}, "
        f"incidents {counts[2]:,}, audit_events {counts[3]:,}, changes {counts[4]:,}"
    )
    batch, counted = count_statements(settings, BATCH, args.seed + 7)
    total = sum(counted.values())
    print(f"\nSQL statements for one push of {batch} creates (app in-process, counted, not timed)")
    print(f"  {total:,} statements = {total / batch:.1f} per op, one round trip each")
    for kind, count in counted.most_common():
        print(f"  {count / batch:6.2f}/op  {count:5d}  {kind}")
    if wall is not None:
        print("\nwhere the server's time goes (py-spy, the worker thread running the request)")
        print_profile(wall, gil, args.profile_batches * BATCH)


def run_sqlite(
    args: argparse.Namespace, reports: int, device_counts: list[int], data_dir: Path
) -> None:
    data_dir.mkdir(parents=True)
    path = data_dir / "vigil.sqlite3"
    url = f"sqlite:///{path}"
    settings = common.load_settings(url, data_dir)
    common.prepare_database(settings)
    runs = []
    with common.running_server(url, data_dir) as server:
        for count in device_counts:
            runs.append(
                push_reports(
                    server.base_url,
                    devices=count,
                    reports=reports,
                    batch=BATCH,
                    seed=args.seed + 31 * count,
                    label="SQLite: HTTP push",
                    server_pid=server.pid,
                    pg_url=None,
                )
            )
    t_one, t_batched = insert_baseline_sqlite(path, runs[0].report_ids, BATCH)
    n = len(runs[0].report_ids)
    print(
        "\nSQLite (embedded backend, WAL, synchronous=FULL): push vs executemany INSERT "
        f"({n:,} rows)"
    )
    print_runs(
        runs,
        [
            ("executemany INSERT, one transaction", n / t_one),
            (f"executemany INSERT, commit per {BATCH} rows", n / t_batched),
        ],
        target=False,
    )


if __name__ == "__main__":
    main()
