"""A seeded long schedule of field work through injected faults and client crashes
(SYNC.md §5.1; the issue asks for at least 10,000 operations): reports ``lost = 0`` and
``duplicated = 0`` or fails.

Several devices running the reference client (``mobile_sync.client``) against a real server on
its own committed database (PostgreSQL when ``--pg-url`` or ``VIGIL_TEST_DATABASE_URL`` is given,
else SQLite), through the fault-injecting transport of the tests (drops before and after commit,
timeouts, duplicates, reordering, truncation, captive portals, 5xx, 429), with crashes at every
client crash point and concurrent HQ edits. The safety invariants (acked ⊆ applied, every change
applied at most once, monotone versions) are checked every ``--check-every`` steps; at the end
the faults stop, every device drains and syncs twice more, and the liveness invariants (nothing
lost, replicas equal the server, attachments intact) are checked.

    .venv/bin/python benchmarks/sync_long_schedule.py [--ops 10000] [--seed 1] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from server.settings import AuthSettings, HotspotSettings, Settings  # noqa: E402
from tests.sync.committed import committed_server  # noqa: E402
from tests.sync.simulation import Simulation  # noqa: E402

DEVICES = ("officer_a", "officer_a", "officer_b", "officer_b", "commander_a", "officer_a")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=10_000, help="operations to write (≥ 10,000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fault-rate", type=float, default=0.3)
    parser.add_argument("--check-every", type=int, default=500, help="steps between checks")
    parser.add_argument("--pg-url", default=os.environ.get("VIGIL_TEST_DATABASE_URL"))
    parser.add_argument("--quick", action="store_true", help="500 ops, for a smoke test")
    args = parser.parse_args()
    target = 500 if args.quick else args.ops
    if args.pg_url:
        os.environ["VIGIL_TEST_DATABASE_URL"] = args.pg_url
    else:
        os.environ.pop("VIGIL_TEST_DATABASE_URL", None)

    with tempfile.TemporaryDirectory(prefix="vigil-long-schedule-") as tmp:
        base = Settings.load(
            data_dir=Path(tmp),
            auth=AuthSettings(
                secret_key="bench-secret-key-with-enough-entropy-0123456789",  # type: ignore[arg-type]  # noqa: S106
                argon2_time_cost=1,
                argon2_memory_kib=8192,
                argon2_parallelism=1,
            ),
            hotspots=HotspotSettings(windows_days=[30], background=False),
        )
        with committed_server(base, Path(tmp)) as server:
            workdir = Path(tmp) / "devices"
            workdir.mkdir()
            sim = Simulation(
                server.api,
                server.settings,
                server.session_factory,
                workdir,
                seed=args.seed,
                fault_rate=args.fault_rate,
                users=DEVICES,
            )
            backend = server.engine.dialect.name
            started = time.perf_counter()
            steps = 0
            while sim.ops_written < target:
                sim.random_step()
                steps += 1
                if steps % args.check_every == 0:
                    sim.check_safety()
                    print(
                        f"  step {steps:>6}  ops {sim.ops_written:>6}  "
                        f"{time.perf_counter() - started:7.1f} s",
                        flush=True,
                    )
            sim.check_safety()
            faulted = time.perf_counter() - started
            sim.drain()
            measured = sim.measure()
            reasons = Counter(
                (entry.last_error or "?").split(":")[0]
                for device in sim.devices
                for entry in device.client.outbox()
                if entry.state in ("rejected", "gone")
            )
            counts = sim.check_liveness()
            elapsed = time.perf_counter() - started
            sim.close()

    injected = {k: v for k, v in sorted(sim.transport.injected.items()) if k != "none"}
    crashes = {k[6:]: v for k, v in sorted(sim.actions.items()) if k.startswith("crash:")}
    syncs = {k[5:]: v for k, v in sorted(sim.actions.items()) if k.startswith("sync:")}
    print()
    print(
        f"backend {backend}; seed {args.seed}; {len(DEVICES)} devices; fault rate {args.fault_rate}"
    )
    print(
        f"steps {steps}; ops written {sim.ops_written}; ops in outboxes {counts['ops']}; "
        f"reports {counts['reports']}; attachments {counts['attachments']}"
    )
    print(
        f"op outcomes: done {counts.get('done', 0)}, conflict {counts.get('conflict', 0)}, "
        f"rejected {counts.get('rejected', 0)}, gone {counts.get('gone', 0)}"
    )
    print(f"terminal reasons: {dict(reasons)}")
    print(f"faults injected: {injected}")
    print(f"client crashes: {crashes}")
    print(f"syncs: {syncs}; simulated backoff {sim.slept_s:.0f} s")
    print(f"time: {faulted:.1f} s under faults, {elapsed:.1f} s with the drain")
    print()
    print(f"lost = {measured['lost']}  duplicated = {measured['duplicated']}")
    return 0 if measured == {"lost": 0, "duplicated": 0} else 1


if __name__ == "__main__":
    sys.exit(main())
