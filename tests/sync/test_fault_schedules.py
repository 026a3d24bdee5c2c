"""The reference client against the real server through a fault-injecting transport, with
client crashes, checked against SYNC.md's invariants (I1 no loss, I2 no duplication, I3 ack ⇒
durable, I6 convergence, I7 monotone versions, I8 attachment integrity):

- every fault kind on its own, on every request of a sync, then a clean drain;
- seeded random schedules mixing all faults, crashes and HQ edits, checked after every step;
- a Hypothesis state machine doing the same with shrinking.

The ≥ 10,000-op schedule runs as benchmarks/sync_long_schedule.py (same harness).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy.orm import Session

from mobile_sync.client import crash
from mobile_sync.client.sync import SyncOutcome
from tests.sync.faults import FAULTS, Fault
from tests.sync.simulation import Simulation


@pytest.fixture
def simulation_factory(api: Any, session: Session, settings: Any, tmp_path: Path) -> Iterator[Any]:
    made: list[Simulation] = []

    def make(**options: Any) -> Simulation:
        workdir = tmp_path / f"sim-{len(made)}"
        workdir.mkdir()
        simulation = Simulation(api, settings, lambda: session, workdir, **options)
        made.append(simulation)
        return simulation

    yield make
    for simulation in made:
        simulation.close()


@pytest.mark.parametrize("fault", FAULTS, ids=[f.value for f in FAULTS])
def test_every_fault_on_every_request_loses_and_duplicates_nothing(
    simulation_factory: Any, fault: Fault
) -> None:
    sim = simulation_factory(seed=11, fault_rate=1.0, users=("officer_a",))
    sim.transport.faults = [fault]
    # hello gets through; every push, pull and upload request meets the fault.
    sim.transport.paths = ("/push", "/pull", "/uploads")
    (device,) = sim.devices
    sim.create(device)
    sim.create(device, attachment_bytes=70_000)
    sim.create(device)
    outcome = sim.sync(device)
    # A duplicated delivery is absorbed (the second copy answers "duplicate"); every other
    # fault on every request leaves the sync unfinished.
    expected_complete = fault is Fault.DUPLICATE
    assert (outcome is SyncOutcome.COMPLETED) is expected_complete, outcome
    sim.check_safety()
    sim.edit(device)
    sim.note(device)
    sim.sync(device)
    assert sim.transport.injected[fault.value] > 0
    sim.drain()
    counts = sim.check_liveness()
    assert counts["done"] == counts["ops"] == 5, counts
    assert counts["attachments"] == 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_seeded_schedules_keep_every_invariant(simulation_factory: Any, seed: int) -> None:
    sim = simulation_factory(seed=seed, fault_rate=0.35)
    for _ in range(70):
        sim.random_step()
        sim.check_safety()
    sim.drain()
    counts = sim.check_liveness()
    # An op committed just before a crash at "after_local_write" exists though the write never
    # returned; one torn at "mid_local_write" does not exist at all.
    committed_unseen = sim.actions["crash:after_local_write"]
    assert sim.ops_written <= counts["ops"] <= sim.ops_written + committed_unseen, counts
    assert len([k for k, n in sim.transport.injected.items() if n and k != "none"]) >= 6, (
        sim.transport.injected
    )


def test_a_crash_at_every_point_of_a_sync_then_restart(simulation_factory: Any) -> None:
    sim = simulation_factory(seed=5, fault_rate=0.0, users=("officer_a",))
    (device,) = sim.devices
    for point in sorted(crash.POINTS - {"mid_migration"}):
        sim.create(device, attachment_bytes=70_000)
        sim.create(device)
        if point in ("mid_local_write", "after_local_write"):
            sim.crash_during(device, point, lambda d=device: sim.create(d))
        else:
            sim.crash_during(device, point, device.client.sync)
        sim.check_safety()
    sim.drain()
    sim.check_liveness()
    assert sum(n for k, n in sim.actions.items() if k.startswith("crash:")) >= 5, sim.actions


class SyncModel(RuleBasedStateMachine):
    """Random interleavings of field work, faults, crashes and HQ edits; the safety invariants
    after every step, liveness after a final drain (in :meth:`teardown`)."""

    api: Any
    settings_: Any
    session: Session

    @initialize(seed=st.integers(0, 2**16))
    def start(self, seed: int) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="vigil-model-"))
        self.sim = Simulation(
            self.api,
            self.settings_,
            lambda: self.session,
            self.workdir,
            seed=seed,
            fault_rate=0.0,
            users=("officer_a", "officer_b"),
        )

    @rule(device=st.integers(0, 1), attachment=st.sampled_from([0, 0, 5000]))
    def create_report(self, device: int, attachment: int) -> None:
        self.sim.create(self.sim.devices[device], attachment_bytes=attachment)

    @rule(device=st.integers(0, 1))
    def edit(self, device: int) -> None:
        self.sim.edit(self.sim.devices[device])

    @rule(device=st.integers(0, 1))
    def note(self, device: int) -> None:
        self.sim.note(self.sim.devices[device])

    @rule()
    def hq_edit(self) -> None:
        self.sim.hq_edit()

    @rule(
        device=st.integers(0, 1),
        fault=st.sampled_from([Fault.NONE, *FAULTS]),
        rate=st.sampled_from([0.3, 1.0]),
    )
    def sync_through(self, device: int, fault: Fault, rate: float) -> None:
        transport = self.sim.transport
        transport.faults, transport.rate = (
            ([fault] if fault is not Fault.NONE else FAULTS),
            (rate if fault is not Fault.NONE else 0.0),
        )
        self.sim.sync(self.sim.devices[device])

    @precondition(lambda self: hasattr(self, "sim"))
    @rule(device=st.integers(0, 1), point=st.sampled_from(sorted(crash.POINTS - {"mid_migration"})))
    def crash_and_restart(self, device: int, point: str) -> None:
        target = self.sim.devices[device]
        if point in ("mid_local_write", "after_local_write"):
            self.sim.crash_during(target, point, lambda: self.sim.create(target))
        else:
            self.sim.crash_during(target, point, target.client.sync)

    @invariant()
    def safe(self) -> None:
        if hasattr(self, "sim"):
            self.sim.check_safety()

    def teardown(self) -> None:
        if hasattr(self, "sim"):
            try:
                self.sim.drain()
                self.sim.check_liveness()
            finally:
                self.sim.close()


def test_hypothesis_model_of_devices_faults_and_crashes(
    api: Any, session: Session, settings: Any
) -> None:
    SyncModel.api, SyncModel.settings_, SyncModel.session = api, settings, session
    run_state_machine_as_test(
        SyncModel,
        settings=settings_for_ci(),
    )


def settings_for_ci() -> settings:
    # A small budget in CI (each step runs real requests); raise max_examples for a soak run.
    return settings(
        max_examples=8,
        stateful_step_count=20,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
