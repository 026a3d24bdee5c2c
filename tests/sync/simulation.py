"""Field devices running the reference client against a real server through injected faults,
and the invariants of SYNC.md §4.11 checked against the server's database (Jepsen style: every
op a device wrote is either on the server exactly once or terminal with a reason on the device).

Used by the seeded schedules and the Hypothesis model in tests/sync/test_fault_schedules.py,
and by benchmarks/sync_long_schedule.py for the ≥ 10,000-op run.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mobile_sync.client import crash
from mobile_sync.client.client import FieldClient
from mobile_sync.client.sync import SyncOutcome
from server.reports.enums import AttachmentState
from server.reports.models import Attachment, Report, ReportRevision, ReportVerification
from server.settings import Settings
from server.sync.models import ReportNote, SyncOp
from tests import seed
from tests.sync.faults import FaultyTransport

#: Where each simulated user works (inside their unit's AOR in tests/seed.py).
HOME = {"officer_a": seed.POINT_A1_1, "officer_b": seed.POINT_B1, "commander_a": seed.POINT_A1_2}
CATEGORIES = ["killing_of_civilians", "abduction", "attack_on_civilians", "forced_displacement"]


class SimulatedCrashError(Exception):
    """Raised at a client crash point: the process "dies" there."""


@dataclass
class SimDevice:
    name: str
    username: str
    store: Path
    client: FieldClient
    reports: list[uuid.UUID] = field(default_factory=list)
    #: Highest server version this device has shown for each report (I7: never goes down).
    seen_versions: dict[str, int] = field(default_factory=dict)


@dataclass
class Simulation:
    api: Any  # tests.conftest.ApiClient: signed-in REST clients on the same server
    settings: Settings
    session: Callable[[], Session]  # a session on the server's database, for the checks
    workdir: Path
    seed: int = 0
    fault_rate: float = 0.3
    #: One device per entry (a user may carry several).
    users: tuple[str, ...] = ("officer_a", "officer_b", "commander_a")
    rng: random.Random = field(init=False)
    transport: FaultyTransport = field(init=False)
    devices: list[SimDevice] = field(default_factory=list)
    ops_written: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    slept_s: float = 0.0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        inner = self.api.http._transport
        self.transport = FaultyTransport(inner, random.Random(self.seed + 1), self.fault_rate)
        self.http = httpx.Client(transport=self.transport, base_url="http://testserver")
        for index, username in enumerate(self.users):
            store = self.workdir / f"device-{index}" / "field.sqlite3"
            store.parent.mkdir(parents=True, exist_ok=True)
            self.transport.enabled = False  # provisioning happens at the base, on good wifi
            client = self._open(store)
            client.sign_in("http://testserver", username.replace("_", "-"), seed.PASSWORD)
            self.transport.enabled = True
            self.devices.append(SimDevice(f"device-{index}", username, store, client))

    # ------------------------------------------------------------------ the device side

    def _sleep(self, seconds: float) -> None:
        self.slept_s += seconds  # backoff and Retry-After are honoured in simulated time

    def _open(self, store: Path) -> FieldClient:
        return FieldClient(
            store, http=self.http, sleep=self._sleep, random=self.rng.random, max_attempts=3
        )

    def _fields(self, device: SimDevice) -> dict[str, Any]:
        lon, lat = HOME[device.username]
        occurred = datetime.now(UTC) - timedelta(hours=self.rng.uniform(1, 24 * 20))
        return {
            "category": self.rng.choice(CATEGORIES),
            "occurred_at": occurred.isoformat().replace("+00:00", "Z"),
            "time_precision": "hour",
            "location": {
                "type": "Point",
                "coordinates": [
                    round(lon + self.rng.uniform(-0.02, 0.02), 5),
                    round(lat + self.rng.uniform(-0.02, 0.02), 5),
                ],
            },
            "location_accuracy_m": 20,
            "source_type": "witness",
            "source_reliability": "C",
            "information_credibility": "3",
            "narrative": f"Simulated report {self.rng.getrandbits(64):x}.",
        }

    def create(self, device: SimDevice, *, attachment_bytes: int = 0) -> None:
        files = []
        if attachment_bytes:
            path = self.workdir / f"capture-{uuid.uuid4().hex}.ogg"
            path.write_bytes(self.rng.randbytes(attachment_bytes))
            files.append(path)
        device.reports.append(device.client.create_report(self._fields(device), files))
        self.ops_written += 1
        self.actions["create"] += 1

    def edit(self, device: SimDevice) -> None:
        if device.reports:
            report_id = self.rng.choice(device.reports)
            device.client.set_fields(report_id, {"place_name": f"p-{self.rng.getrandbits(40):x}"})
            self.ops_written += 1
            self.actions["edit"] += 1

    def note(self, device: SimDevice) -> None:
        if device.reports:
            device.client.add_note(self.rng.choice(device.reports), "seen again at dusk")
            self.ops_written += 1
            self.actions["note"] += 1

    def withdraw(self, device: SimDevice) -> None:
        if device.reports:
            device.client.withdraw(self.rng.choice(device.reports), "entered by mistake")
            self.ops_written += 1
            self.actions["withdraw"] += 1

    def sync(self, device: SimDevice) -> SyncOutcome:
        result = device.client.sync()
        self.actions[f"sync:{result.outcome.value}"] += 1
        self._check_versions_monotone(device)
        return result.outcome

    def crash_during(self, device: SimDevice, point: str, action: Callable[[], object]) -> None:
        """Run ``action`` with the client dying at ``point`` (if it gets there), then start a
        fresh client on the same store file, as the app would after a restart."""

        def die(name: str) -> None:
            if name == point:
                crash.hook = None
                raise SimulatedCrashError(name)

        crash.hook = die
        try:
            action()
        except SimulatedCrashError:
            self.actions[f"crash:{point}"] += 1
        finally:
            crash.hook = None
        device.client.close()
        device.client = self._open(device.store)

    def hq_edit(self) -> None:
        """An analyst changes a synced report at HQ (a concurrent actor for the devices)."""
        candidates = [r for d in self.devices for r in d.reports]
        if not candidates:
            return
        report_id = self.rng.choice(candidates)
        analyst = self.api.as_("analyst")
        current = analyst.get(f"/api/v1/reports/{report_id}")
        if current.status_code != 200:
            return  # not on the server yet
        response = analyst.patch(
            f"/api/v1/reports/{report_id}",
            # admin2 is HQ's alone (devices then edit in parallel); place_name is also edited
            # on the devices, so a device edit on an older base meets a real conflict.
            json={
                "version": current.json()["version"],
                self.rng.choice(["admin2", "place_name"]): f"hq-{self.rng.random():.6f}",
            },
        )
        assert response.status_code in (200, 412), response.text
        self.actions["hq_edit"] += 1

    def random_step(self) -> None:
        device = self.rng.choice(self.devices)
        roll = self.rng.random()
        if roll < 0.30:
            size = self.rng.choice([0, 0, 0, 0, 3000, 70_000])
            self.create(device, attachment_bytes=size)
        elif roll < 0.45:
            self.edit(device)
        elif roll < 0.55:
            self.note(device)
        elif roll < 0.57:
            self.withdraw(device)
        elif roll < 0.62:
            self.hq_edit()
        elif roll < 0.70:
            point = self.rng.choice(sorted(crash.POINTS - {"mid_migration"}))
            if point in ("mid_local_write", "after_local_write"):
                self.crash_during(device, point, lambda: self.edit(device) or self.create(device))
            else:
                self.crash_during(device, point, device.client.sync)
        else:
            self.sync(device)

    # ------------------------------------------------------------------ the end of the run

    def drain(self) -> None:
        """Faults off, then every device syncs until nothing is left to send, then twice more
        (I6: convergence after quiescence and two full syncs)."""
        self.transport.enabled = False
        self.transport.release_held()
        for device in self.devices:
            for _ in range(10):
                outcome = self.sync(device)
                status = device.client.status()
                settled = status.ops.get("pending", 0) == 0 and status.upload_bytes_pending == 0
                if outcome is SyncOutcome.COMPLETED and settled:
                    break
        for _ in range(2):
            for device in self.devices:
                assert self.sync(device) is SyncOutcome.COMPLETED

    # ------------------------------------------------------------------ invariants

    def _check_versions_monotone(self, device: SimDevice) -> None:
        # Straight from the store (no JSON decoding): this runs after every sync.
        with device.client.store.snapshot() as connection:
            rows = connection.execute(
                "SELECT report_id, server_version FROM reports WHERE server_version > 0"
            ).fetchall()
        for report_id, version in rows:
            before = device.seen_versions.get(report_id, 0)
            assert version >= before, f"I7: {report_id} went back on {device.name}"
            device.seen_versions[report_id] = version

    def check_safety(self) -> dict[str, int]:
        """I2, I3, I7 and 'acked ⊆ applied': true at every moment, faults or not."""
        with self.session() as session:
            session.expire_all()
            return self._check_safety(session)

    def _check_safety(self, session: Session) -> dict[str, int]:
        counts = Counter[str]()
        for device in self.devices:
            for entry in device.client.outbox():
                counts["ops"] += 1
                counts[entry.state] += 1
                stored = session.get(SyncOp, uuid.UUID(entry.op_id))
                if entry.state in ("done", "conflict"):
                    assert stored is not None, f"acked op {entry.op_id} is not on the server"
                    assert stored.payload_sha256 == _fingerprint(entry.body)
            for report_id in device.reports:
                rows = session.scalar(select(func.count()).where(Report.id == report_id))
                assert rows in (0, 1)
        for report_id in {r for d in self.devices for r in d.reports}:
            report = session.get(Report, report_id)
            if report is not None:
                assert report.version == _expected_version(session, report), (
                    f"I2: report {report_id} is at version {report.version}: some change was "
                    "applied twice"
                )
        return dict(counts)

    def check_liveness(self) -> dict[str, int]:
        """After :meth:`drain`: I1 (nothing pending; every op applied or terminal with a reason
        on the device), I6 (replicas equal the server), I8 (every attachment complete and
        intact)."""
        with self.session() as session:
            session.expire_all()
            counts = self._check_safety(session)
            assert counts.get("pending", 0) == 0, counts
            return self._check_liveness(session, counts)

    def _check_liveness(self, session: Session, counts: dict[str, int]) -> dict[str, int]:
        for device in self.devices:
            attention = {a.id for a in device.client.needs_attention() if a.item == "op"}
            for entry in device.client.outbox():
                if entry.state in ("rejected", "gone"):
                    assert entry.op_id in attention, f"terminal op {entry.op_id} not shown"
                    assert entry.last_error
            for report_id in device.reports:
                report = session.get(Report, report_id)
                assert report is not None, f"I1: report {report_id} never reached the server"
                view = device.client.report(report_id)
                assert view is not None
                assert view["server_version"] == report.version, (
                    f"I6: {device.name} shows v{view['server_version']} of {report_id}, "
                    f"the server has v{report.version}"
                )
                assert not view["has_unsent_changes"]
        attachments = session.scalars(
            select(Attachment).where(
                Attachment.report_id.in_([r for d in self.devices for r in d.reports])
            )
        ).all()
        for attachment in attachments:
            assert attachment.state is AttachmentState.COMPLETE, f"I8: {attachment.id} incomplete"
            stored = self.settings.attachments_dir / str(attachment.storage_key)
            assert hashlib.sha256(stored.read_bytes()).hexdigest() == attachment.sha256
        counts["attachments"] = len(attachments)
        counts["reports"] = len({r for d in self.devices for r in d.reports})
        return counts

    def measure(self) -> dict[str, int]:
        """Counted, not asserted (for the long-schedule report): ``lost`` = ops on devices that
        are neither on the server nor terminal with a reason, plus created reports missing on
        the server; ``duplicated`` = changes applied more than once (report versions above what
        their recorded changes explain)."""
        lost = duplicated = 0
        with self.session() as session:
            session.expire_all()
            for device in self.devices:
                for entry in device.client.outbox():
                    on_server = session.get(SyncOp, uuid.UUID(entry.op_id)) is not None
                    terminal = entry.state in ("rejected", "gone") and bool(entry.last_error)
                    lost += not (on_server or terminal)
            for report_id in {r for d in self.devices for r in d.reports}:
                report = session.get(Report, report_id)
                if report is None:
                    lost += 1
                else:
                    duplicated += max(0, report.version - _expected_version(session, report))
        return {"lost": lost, "duplicated": duplicated}

    def close(self) -> None:
        for device in self.devices:
            device.client.close()
        self.http.close()


def _fingerprint(body: bytes) -> str:
    import json

    return str(json.loads(body)["payload_sha256"])


def _expected_version(session: Session, report: Report) -> int:
    """A report's version if every change to it took effect exactly once: its creation, each
    field revision (device or HQ), each status step, each note, each arrived attachment."""

    def count(model: Any, *where: Any) -> int:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

    return (
        1
        + count(ReportRevision, ReportRevision.report_id == report.id)
        + count(ReportVerification, ReportVerification.report_id == report.id)
        + count(ReportNote, ReportNote.report_id == report.id)
        + count(
            Attachment,
            Attachment.report_id == report.id,
            Attachment.state == AttachmentState.COMPLETE,
        )
        + (1 if report.deleted_at is not None else 0)
    )
