"""A userspace stand-in for ``tc netem``: a 2G-like IP link between two TUN devices.

Used by ``sync_2g_upload.py`` when the kernel has no netem qdisc. It opens one TUN device in a
network namespace (the client's side) and one in the root namespace (the server's side), gives
them point-to-point addresses, and forwards every IP packet between them the way netem would
with ``rate R delay D loss P limit L`` on each side's egress: a packet is dropped with
probability P, otherwise queued (tail drop beyond L packets), serialised at R bit/s and delivered
D later. Both ends run the kernel's own TCP, unchanged, so retransmissions, slow start and
timeouts are real. ``SIGUSR1`` starts an outage (every packet dropped, the queues and packets in
flight lost), ``SIGUSR2`` ends it; ``SIGHUP`` writes the counters so far as JSON, ``SIGTERM``
writes them and exits.

    python benchmarks/sync_linkemu.py --netns NS --stats FILE [--rate-kbit 50 --delay-ms 300
        --loss 0.02 --limit 1000]

Prints ``ready`` on stdout once both interfaces are up.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import heapq
import json
import os
import random
import select
import signal
import struct
import subprocess
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000

CLIENT_IF = "v2g_cli"
SERVER_IF = "v2g_srv"
CLIENT_IP = "10.77.0.2"
SERVER_IP = "10.77.0.1"


def open_tun(name: str, netns: str | None = None) -> int:
    """Create (and attach to) TUN device ``name``, inside ``netns`` if given."""
    libc = ctypes.CDLL(None, use_errno=True)
    own = None
    if netns is not None:
        own = os.open("/proc/self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
        try:
            if libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {netns}")
        finally:
            os.close(target)
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    finally:
        if own is not None:
            libc.setns(own, CLONE_NEWNET)
            os.close(own)
    return fd


def ip(*args: str, netns: str | None = None) -> None:
    prefix = ["ip", "-n", netns] if netns else ["ip"]
    subprocess.run([*prefix, *args], check=True)  # noqa: S603 - fixed ip(8) commands


def disable_ipv6(name: str, netns: str | None = None) -> None:
    """No IPv6 on the link: no router solicitations or DAD packets in the byte counts."""
    setting = f"net.ipv6.conf.{name}.disable_ipv6=1"
    prefix = ["ip", "netns", "exec", netns] if netns else []
    subprocess.run([*prefix, "sysctl", "-q", "-w", setting], check=False)  # noqa: S603


def write_atomically(path: Path, text: str) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    partial.replace(path)


@dataclass
class Direction:
    name: str
    packets_in: int = 0
    bytes_in: int = 0
    delivered_packets: int = 0
    delivered_bytes: int = 0
    lost_random: int = 0
    lost_queue_full: int = 0
    lost_outage: int = 0
    wire_free_at: float = 0.0
    backlog: deque[float] = field(default_factory=deque)


class Link:
    def __init__(self, args: argparse.Namespace) -> None:
        self.rate_bps = args.rate_kbit * 1000.0
        self.delay_s = args.delay_ms / 1000.0
        self.loss = args.loss
        self.limit = args.limit
        self.random = random.Random(args.seed)
        self.outage = False
        self.outages = 0
        self.stop = False
        self.dump = False
        self.in_flight: list[tuple[float, int, int, bytes]] = []
        self.counter = 0
        self.up = Direction("client_to_server")
        self.down = Direction("server_to_client")

    def on_signal(self, number: int, _frame: FrameType | None) -> None:
        if number == signal.SIGUSR1:
            self.outage = True
            self.outages += 1
            lost = len(self.in_flight)
            self.in_flight.clear()
            for direction in (self.up, self.down):
                direction.backlog.clear()
                direction.wire_free_at = 0.0
            self.up.lost_outage += lost  # attributed upward: the counts are for reading only
        elif number == signal.SIGUSR2:
            self.outage = False
        elif number == signal.SIGHUP:
            self.dump = True
        else:
            self.stop = True

    def counters(self, args: argparse.Namespace) -> dict[str, object]:
        out: dict[str, object] = {
            "rate_kbit": args.rate_kbit,
            "delay_ms": args.delay_ms,
            "loss": args.loss,
            "limit": args.limit,
            "outages": self.outages,
        }
        for direction in (self.up, self.down):
            state = asdict(direction)
            state.pop("backlog")
            state.pop("wire_free_at")
            out[direction.name] = state
        return out

    def offer(self, direction: Direction, packet: bytes, out_fd: int) -> None:
        now = time.monotonic()
        direction.packets_in += 1
        direction.bytes_in += len(packet)
        if self.outage:
            direction.lost_outage += 1
            return
        if self.random.random() < self.loss:
            direction.lost_random += 1
            return
        backlog = direction.backlog
        while backlog and backlog[0] <= now:
            backlog.popleft()
        if len(backlog) >= self.limit:
            direction.lost_queue_full += 1
            return
        start = max(now, direction.wire_free_at)
        done = start + len(packet) * 8 / self.rate_bps
        direction.wire_free_at = done
        backlog.append(done)
        self.counter += 1
        heapq.heappush(self.in_flight, (done + self.delay_s, self.counter, out_fd, packet))

    def deliver_due(self, fds: dict[int, Direction]) -> None:
        now = time.monotonic()
        while self.in_flight and self.in_flight[0][0] <= now:
            _at, _n, out_fd, packet = heapq.heappop(self.in_flight)
            direction = fds[out_fd]
            direction.delivered_packets += 1
            direction.delivered_bytes += len(packet)
            with contextlib.suppress(OSError):  # the interface went away (shutting down)
                os.write(out_fd, packet)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--netns", required=True, help="the client's network namespace")
    parser.add_argument("--stats", type=Path, required=True, help="JSON counters on SIGTERM")
    parser.add_argument("--rate-kbit", type=float, default=50.0)
    parser.add_argument("--delay-ms", type=float, default=300.0, help="one way (RTT / 2)")
    parser.add_argument("--loss", type=float, default=0.02, help="per packet, each way")
    parser.add_argument("--limit", type=int, default=1000, help="queue, packets (netem's default)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    client_fd = open_tun(CLIENT_IF, args.netns)
    server_fd = open_tun(SERVER_IF)
    disable_ipv6(CLIENT_IF, args.netns)
    disable_ipv6(SERVER_IF)
    ip("addr", "add", CLIENT_IP, "peer", SERVER_IP, "dev", CLIENT_IF, netns=args.netns)
    ip("link", "set", CLIENT_IF, "up", netns=args.netns)
    ip("link", "set", "lo", "up", netns=args.netns)
    ip("addr", "add", SERVER_IP, "peer", CLIENT_IP, "dev", SERVER_IF)
    ip("link", "set", SERVER_IF, "up")

    link = Link(args)
    for number in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(number, link.on_signal)
    # Packets read from the client's TUN go up to the server's, and the other way round.
    routes = {client_fd: (link.up, server_fd), server_fd: (link.down, client_fd)}
    by_out = {server_fd: link.up, client_fd: link.down}
    print("ready", flush=True)
    while not link.stop:
        timeout = 0.5
        if link.in_flight:
            timeout = max(0.0, min(timeout, link.in_flight[0][0] - time.monotonic()))
        try:
            readable, _, _ = select.select(list(routes), [], [], timeout)
        except InterruptedError:
            continue
        for fd in readable:
            direction, out_fd = routes[fd]
            try:
                packet = os.read(fd, 65_536)
            except BlockingIOError:
                continue
            link.offer(direction, packet, out_fd)
        link.deliver_due(by_out)
        if link.dump:
            link.dump = False
            write_atomically(args.stats, json.dumps(link.counters(args), indent=1))

    write_atomically(args.stats, json.dumps(link.counters(args), indent=1))
    os.close(client_fd)
    os.close(server_fd)
    sys.exit(0)


if __name__ == "__main__":
    main()
