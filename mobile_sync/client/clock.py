"""The device's clocks as the protocol reports them, and the NTP-style offset estimate.

Every sync request says what the device's wall clock reads (``X-Device-Time-Ms``), how long the
device has been up (``X-Device-Uptime-Ms``) and which boot that uptime counts from
(``X-Boot-Id``). The wall clock may be wrong by years; uptime never jumps within one boot, which
is what lets the server correct capture times measured in the same boot (SYNC.md §4.8).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mobile_sync.protocol.models import ClockProbe

__all__ = [
    "BootState",
    "DeviceClock",
    "Exchange",
    "SystemClock",
    "next_boot_state",
]

_LINUX_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


class DeviceClock(Protocol):
    def wall_ms(self) -> int:
        """Wall-clock Unix milliseconds, as the device believes them."""

    def uptime_ms(self) -> int:
        """Milliseconds since boot; monotonic within one boot."""

    def system_boot_id(self) -> uuid.UUID | None:
        """The operating system's id of this boot, where it has one."""


class SystemClock:
    """The real clocks. Uptime is CLOCK_BOOTTIME where it exists (it keeps counting while the
    phone sleeps), else the monotonic clock."""

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def uptime_ms(self) -> int:
        boottime = getattr(time, "CLOCK_BOOTTIME", None)
        if boottime is not None:
            return time.clock_gettime_ns(boottime) // 1_000_000
        return time.monotonic_ns() // 1_000_000

    def system_boot_id(self) -> uuid.UUID | None:
        try:
            return uuid.UUID(_LINUX_BOOT_ID.read_text().strip())
        except (OSError, ValueError):
            return None


@dataclass(frozen=True)
class BootState:
    """The boot the store last saw: its id and the highest uptime read in it."""

    boot_id: uuid.UUID
    last_uptime_ms: int


def next_boot_state(previous: BootState | None, clock: DeviceClock) -> BootState:
    """The current boot. Without an OS boot id a reboot shows as uptime going backwards."""
    uptime = clock.uptime_ms()
    system = clock.system_boot_id()
    if system is not None:
        return BootState(system, uptime)
    if previous is None or uptime < previous.last_uptime_ms:
        return BootState(uuid.uuid4(), uptime)
    return BootState(previous.boot_id, uptime)


@dataclass(frozen=True)
class Exchange:
    """One request/response pair as both clocks saw it: the device sent at ``t0`` and received
    at ``t3`` (its wall clock); the server received at ``t1`` and answered at ``t2`` (its
    ``X-Server-Received-Ms``/``X-Server-Time-Ms``)."""

    t0_ms: int
    t1_ms: int
    t2_ms: int
    t3_ms: int
    boot_id: uuid.UUID

    @property
    def offset_ms(self) -> int:
        """server − device: add it to a device time to get server time."""
        return ((self.t1_ms - self.t0_ms) + (self.t2_ms - self.t3_ms)) // 2

    @property
    def rtt_ms(self) -> int:
        return (self.t3_ms - self.t0_ms) - (self.t2_ms - self.t1_ms)

    def probe(self) -> ClockProbe:
        return ClockProbe(t0_ms=self.t0_ms, t1_ms=self.t1_ms, t2_ms=self.t2_ms, t3_ms=self.t3_ms)

    def to_json(self) -> dict[str, object]:
        return {
            "t0_ms": self.t0_ms,
            "t1_ms": self.t1_ms,
            "t2_ms": self.t2_ms,
            "t3_ms": self.t3_ms,
            "boot_id": str(self.boot_id),
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Exchange:
        return cls(
            t0_ms=int(str(data["t0_ms"])),
            t1_ms=int(str(data["t1_ms"])),
            t2_ms=int(str(data["t2_ms"])),
            t3_ms=int(str(data["t3_ms"])),
            boot_id=uuid.UUID(str(data["boot_id"])),
        )
