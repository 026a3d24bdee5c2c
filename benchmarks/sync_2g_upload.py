"""Benchmark a resumable attachment upload over an emulated 2G link cut every 30 seconds.

A client process in its own network namespace pushes a report whose manifest announces one
attachment, then uploads the file with the reference client's ``ResumableUpload``
(``mobile_sync/client/uploads.py``: tus creation, HEAD, PATCH with a per-chunk sha256, adaptive
chunks) to the server as deployed (``vigil serve`` in a subprocess, own database
``vigil_bench_2g`` with the test mission, attachments on disk). Between them, a 2G-like link:
50 kbit/s, 600 ms RTT, 2 % packet loss each way (netem's default queue of 1,000 packets):

- with ``tc netem`` when the kernel has it: a veth pair, netem on both ends' egress;
- otherwise a userspace emulator of the same (``sync_linkemu.py``): two TUN devices and a
  process forwarding each IP packet with netem's loss, queue, rate and delay. Both ends still run
  the kernel's TCP. The run says which one it used.

Every ``--cut-every`` seconds (30) the connection is cut: both ends' TCP connections on the link
are aborted (``ss -K``) and the link drops every packet for ``--outage`` seconds (2), as when a
phone loses its bearer. The uploader must resume from the server's offset.

Measured: the uploader's own count of chunk bytes sent (``stats.bytes_sent``) and, independently,
the bytes the client's interface transmitted (``/sys/class/net/<if>/statistics/tx_bytes``: IP
packets with TCP/IP and HTTP headers, retransmissions, HEAD and creation requests), each against
the file size (the baseline; target ≤ 1.1×); the upload time against the file's time at the
link rate; the report op's time to acknowledgement. Checked: the upload completes and the file
the server stored hashes to the manifest's sha256. Prints MET/MISSED; exits non-zero only when
the harness itself fails (not when the upload misses a target or does not finish in time).

Needs root (network namespaces, TUN or netem). At 50 kbit/s a 20 MB file takes about an hour:
the default is 1 MiB (about 5 minutes when it completes). The client gives up after three times
the file's time at the link rate (``--deadline``).

    .venv/bin/python benchmarks/sync_2g_upload.py [--size 1MiB] [--max-chunk BYTES]
        [--cut-every 30] [--outage 2] [--no-cuts] [--no-blocks] [--pg-url URL] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import sync_common as common
import sync_linkemu as linkemu
from sqlalchemy.engine import make_url

NETNS = "vigil2g"
PORT = 8000
TARGET_RATIO = 1.1
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1/vigil_bench_2g"
MEDIA_TYPE = "audio/ogg"
NO_IPV6 = "net.ipv6.conf.all.disable_ipv6=1"
BENCH_DIR = Path(__file__).resolve().parent


def parse_size(text: str) -> int:
    units = {"kib": 1024, "mib": 1024**2, "gib": 1024**3, "kb": 1000, "mb": 1000**2, "b": 1}
    lowered = text.strip().lower()
    for suffix, factor in units.items():
        if lowered.endswith(suffix):
            return int(float(lowered[: -len(suffix)]) * factor)
    return int(lowered)


def run_quiet(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603


# --------------------------------------------------------------------------- the link


def netem_available() -> tuple[bool, str]:
    """Whether ``tc … netem`` works here (tried on a veth pair in a scratch namespace)."""
    scratch = f"vigil-netem-probe-{os.getpid()}"
    run_quiet("ip", "netns", "add", scratch)
    try:
        run_quiet("ip", "-n", scratch, "link", "add", "probe0", "type", "veth", "peer", "probe1")
        tried = run_quiet(
            "tc", "-n", scratch, "qdisc", "add", "dev", "probe0", "root", "netem", "delay", "1ms"
        )
        return tried.returncode == 0, (tried.stderr or tried.stdout).strip()
    finally:
        run_quiet("ip", "netns", "del", scratch)


class Link:
    """The emulated 2G link between the client namespace and the root namespace."""

    client_if = linkemu.CLIENT_IF
    server_if = linkemu.SERVER_IF
    server_ip = linkemu.SERVER_IP
    client_ip = linkemu.CLIENT_IP

    def __init__(self, args: argparse.Namespace, work: Path, use_netem: bool) -> None:
        self.args = args
        self.work = work
        self.use_netem = use_netem
        self.emulator: subprocess.Popen[str] | None = None
        self.stats_path = work / "link-stats.json"

    def describe(self) -> str:
        a = self.args
        shape = (
            f"{a.rate_kbit:g} kbit/s, {2 * a.delay_ms:g} ms RTT ({a.delay_ms:g} ms each way), "
            f"{a.loss:.0%} loss each way, queue 1000 packets"
        )
        if self.use_netem:
            return f"tc netem on a veth pair: {shape}"
        return (
            f"userspace emulator over TUN devices (sync_linkemu.py; no netem in this kernel): "
            f"{shape}"
        )

    def up(self) -> None:
        self.down()
        run_quiet("ip", "netns", "add", NETNS)
        if self.use_netem:
            self._up_netem()
        else:
            self._up_emulator()

    def _up_netem(self) -> None:
        a = self.args
        steps = [
            ["ip", "link", "add", self.server_if, "type", "veth", "peer", self.client_if],
            ["ip", "link", "set", self.client_if, "netns", NETNS],
            ["sysctl", "-q", "-w", f"net.ipv6.conf.{self.server_if}.disable_ipv6=1"],
            [
                "ip",
                "netns",
                "exec",
                NETNS,
                "sysctl",
                "-q",
                "-w",
                "net.ipv6.conf.all.disable_ipv6=1",
            ],
            ["ip", "addr", "add", f"{self.server_ip}/30", "dev", self.server_if],
            ["ip", "link", "set", self.server_if, "up"],
            ["ip", "-n", NETNS, "addr", "add", f"{self.client_ip}/30", "dev", self.client_if],
            ["ip", "-n", NETNS, "link", "set", self.client_if, "up"],
            ["ip", "-n", NETNS, "link", "set", "lo", "up"],
        ]
        for step in steps:
            subprocess.run(step, check=True)  # noqa: S603 - fixed ip/sysctl commands
        for prefix, device in (([], self.server_if), (["-n", NETNS], self.client_if)):
            self._netem(prefix, device, "add", loss=a.loss)

    def _netem(self, prefix: list[str], device: str, verb: str, *, loss: float) -> None:
        a = self.args
        command = ["tc", *prefix, "qdisc", verb, "dev", device, "root", "netem"]
        command += ["delay", f"{a.delay_ms:g}ms", "rate", f"{a.rate_kbit:g}kbit"]
        command += ["loss", f"{loss * 100:g}%", "limit", "1000"]
        subprocess.run(command, check=True)  # noqa: S603 - fixed tc command

    def _up_emulator(self) -> None:
        a = self.args
        command = [sys.executable, str(BENCH_DIR / "sync_linkemu.py"), "--netns", NETNS]
        command += ["--stats", str(self.stats_path), "--rate-kbit", str(a.rate_kbit)]
        command += ["--delay-ms", str(a.delay_ms), "--loss", str(a.loss)]
        self.emulator = subprocess.Popen(  # noqa: S603 - our own script
            command, stdout=subprocess.PIPE, text=True
        )
        assert self.emulator.stdout is not None
        line = self.emulator.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"link emulator did not start (said {line!r})")

    def outage(self, on: bool) -> None:
        if self.use_netem:
            for prefix, device in (([], self.server_if), (["-n", NETNS], self.client_if)):
                self._netem(prefix, device, "change", loss=1.0 if on else self.args.loss)
        elif self.emulator is not None:
            self.emulator.send_signal(signal.SIGUSR1 if on else signal.SIGUSR2)

    def cut(self) -> None:
        """Abort every TCP connection on the link at both ends, with an outage around it."""
        self.outage(True)
        run_quiet("ip", "netns", "exec", NETNS, "ss", "-K", "-t", "state", "connected")
        run_quiet("ss", "-K", "-t", "state", "connected", "src", self.server_ip)
        time.sleep(self.args.outage)
        self.outage(False)

    def stats(self) -> dict[str, Any]:
        """The emulator's counters so far ({} with netem)."""
        if self.emulator is None or self.emulator.poll() is not None:
            return {}
        before = self.stats_path.stat().st_mtime_ns if self.stats_path.exists() else 0
        self.emulator.send_signal(signal.SIGHUP)
        for _ in range(100):
            if self.stats_path.exists() and self.stats_path.stat().st_mtime_ns != before:
                return dict(json.loads(self.stats_path.read_text()))
            time.sleep(0.05)
        return {}

    def down(self) -> None:
        if self.emulator is not None and self.emulator.poll() is None:
            self.emulator.send_signal(signal.SIGTERM)
            self.emulator.wait(timeout=10)
        run_quiet("ip", "netns", "del", NETNS)
        run_quiet("ip", "link", "del", self.server_if)


class Cutter(threading.Thread):
    """Cuts the link every ``every`` seconds until stopped; remembers when."""

    def __init__(self, link: Link, every: float) -> None:
        super().__init__(daemon=True)
        self.link = link
        self.every = every
        self.halt = threading.Event()
        self.times: list[float] = []

    def run(self) -> None:
        started = time.monotonic()
        while not self.halt.wait(self.every):
            self.times.append(time.monotonic() - started)
            self.link.cut()


# --------------------------------------------------------------------------- the client process


class DeadlineError(Exception):
    pass


def client_main(config_path: Path) -> None:
    """Runs inside the client namespace: push the report, then upload the attachment with the
    reference client's uploader; writes what it saw as JSON."""
    from mobile_sync.client.uploads import ResumableUpload
    from mobile_sync.protocol.models import UploadBlocks

    config = json.loads(config_path.read_text())
    device = common.Device(
        uuid.UUID(config["device_id"]), config["token"], boot_id=uuid.UUID(config["boot_id"])
    )
    stats_dir = Path("/sys/class/net") / config["interface"] / "statistics"

    def counters() -> tuple[int, int]:
        tx = int((stats_dir / "tx_bytes").read_text())
        rx = int((stats_dir / "rx_bytes").read_text())
        return tx, rx

    timeout = httpx.Timeout(config["timeout_s"], connect=config["connect_timeout_s"])
    http = httpx.Client(base_url=config["base_url"], timeout=timeout)
    started = time.monotonic()
    deadline = started + config["deadline_s"]
    result: dict[str, Any] = {"counters_start": counters()}

    # The report first: its manifest announces the attachment. Resent unchanged until acked.
    body = config["push_body"].encode()
    headers = {"Idempotency-Key": config["batch_id"], "Content-Type": "application/json"}
    attempts = 0
    while True:
        attempts += 1
        try:
            response = http.post(
                f"{common.SYNC}/push", content=body, headers={**device.headers(), **headers}
            )
            if response.status_code == 200:
                status = response.json()["results"][0]["status"]
                if status not in ("applied", "duplicate"):
                    raise RuntimeError(f"report op {status}: {response.text[:300]}")
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise DeadlineError("the report op was never acknowledged")
        time.sleep(min(30.0, 2.0**attempts) * random.random())
    result["push_ack_s"] = time.monotonic() - started
    result["push_attempts"] = attempts
    result["counters_after_push"] = counters()

    progress: list[tuple[float, int, int]] = []
    uploader: Any = None
    last_print = [time.monotonic()]

    def on_offset(offset: int) -> None:
        now = time.monotonic()
        progress.append((now - started, offset, uploader.chunk_bytes if uploader else 0))
        if now - last_print[0] >= 60:
            last_print[0] = now
            print(
                f"  [{now - started:6.0f} s] offset {offset:,} / {config['size']:,} "
                f"({offset / config['size']:.0%}), chunk {uploader.chunk_bytes:,} B, "
                f"failures {uploader.stats.chunk_failures}",
                file=sys.stderr,
                flush=True,
            )

    def sleep(seconds: float) -> None:
        if time.monotonic() + seconds > deadline:
            raise DeadlineError(f"not complete after {config['deadline_s']:.0f} s")
        time.sleep(seconds)

    uploader = ResumableUpload(
        http,
        device.headers,
        attachment_id=uuid.UUID(config["attachment_id"]),
        report_id=uuid.UUID(config["report_id"]),
        path=Path(config["path"]),
        sha256_hex=config["sha256"],
        media_type=MEDIA_TYPE,
        max_chunk_bytes=config["max_chunk_bytes"],
        start_chunk_bytes=config["start_chunk_bytes"],
        min_chunk_bytes=config["min_chunk_bytes"],
        # As the sync loop does: block checksums when hello offers them (--no-blocks: not).
        blocks=UploadBlocks.model_validate(config["upload_blocks"])
        if config["upload_blocks"]
        else None,
        on_offset=on_offset,
    )
    upload_started = time.monotonic()
    try:
        result["final_offset"] = uploader.run(attempts=config["attempts"], sleep=sleep)
        result["completed"] = True
    except Exception as exc:  # reported, not raised: the harness prints what happened
        result["completed"] = False
        result["error"] = f"{type(exc).__name__}: {exc}"
    result["upload_s"] = time.monotonic() - upload_started
    result["counters_end"] = counters()
    result["stats"] = {
        "bytes_kept_from_cuts": uploader.stats.bytes_kept_from_cuts,
        "block_algorithm": uploader.block_algorithm,
        "bytes_sent": uploader.stats.bytes_sent,
        "requests": uploader.stats.requests,
        "restarts": uploader.stats.restarts,
        "chunk_failures": uploader.stats.chunk_failures,
    }
    result["progress"] = progress
    Path(config["result_path"]).write_text(json.dumps(result))
    http.close()


# --------------------------------------------------------------------------- the harness


@dataclass
class Outcome:
    label: str
    result: dict[str, Any]
    link: dict[str, Any]
    cuts: list[float]
    stored_ok: bool
    stored_detail: str


def write_file(path: Path, size: int, seed: int) -> str:
    """Random bytes (an encrypted recording does not compress); returns the sha256 hex."""
    rng = random.Random(seed)
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        left = size
        while left:
            block = rng.randbytes(min(left, 1 << 20))
            handle.write(block)
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def stored_file(url: str, data_dir: Path, attachment_id: str, sha256: str) -> tuple[bool, str]:
    """Whether the server holds the attachment complete, and its stored bytes hash right."""
    with psycopg.connect(common.libpq_uri(url)) as conn:
        row = conn.execute(
            "SELECT state, received_bytes, size_bytes, storage_key FROM attachments WHERE id = %s",
            (attachment_id,),
        ).fetchone()
    if row is None:
        return False, "no attachment row"
    state, received, size, key = row
    if key is None:
        return False, f"state {state}, {received:,} of {size:,} bytes received"
    digest = hashlib.sha256()
    with (data_dir / "attachments" / key).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    ok = state == "complete" and digest.hexdigest() == sha256
    return ok, f"state {state}; stored file sha256 {digest.hexdigest()[:16]}… " + (
        "= manifest" if digest.hexdigest() == sha256 else f"≠ manifest {sha256[:16]}…"
    )


def one_upload(
    args: argparse.Namespace,
    server: common.ServerProcess,
    link: Link,
    work: Path,
    *,
    label: str,
    cuts: bool,
    seed: int,
) -> Outcome:
    http = httpx.Client(base_url=server.base_url, timeout=60)
    device_id, token = common.provision_device(http)
    device = common.Device(device_id, token)
    hello = http.get(f"{common.SYNC}/hello", headers=device.headers())
    hello.raise_for_status()
    http.close()
    path = work / f"attachment-{seed}.bin"
    sha256 = write_file(path, args.size, seed)
    attachment_id = str(uuid.uuid4())
    # A normal-tier report in the device user's own unit (until 585c8a2 the server took
    # attachments only for reports their uploader may read in full).
    body = common.minimal_body()
    body["attachments"] = [
        {
            "id": attachment_id,
            "media_type": MEDIA_TYPE,
            "size_bytes": args.size,
            "sha256": sha256,
            "role": "audio",
        }
    ]
    batch = device.batch([device.create_op(body)])
    ideal = args.size * 8 / (args.rate_kbit * 1000)
    result_path = work / f"client-result-{seed}.json"
    config = {
        "base_url": f"http://{link.server_ip}:{server.port}",
        "device_id": str(device_id),
        "token": token,
        "boot_id": str(device.boot_id),
        "interface": link.client_if,
        "push_body": common.encode_body(batch).decode(),
        "batch_id": batch["batch_id"],
        "attachment_id": attachment_id,
        "report_id": body["id"],
        "path": str(path),
        "sha256": sha256,
        "size": args.size,
        "max_chunk_bytes": args.max_chunk or hello.json()["max_chunk_bytes"],
        "upload_blocks": None if args.no_blocks else hello.json().get("upload_blocks"),
        "start_chunk_bytes": args.start_chunk,
        "min_chunk_bytes": args.min_chunk,
        "timeout_s": args.timeout,
        "connect_timeout_s": args.connect_timeout,
        "attempts": 100_000,
        "deadline_s": args.deadline or max(300.0, 3 * ideal),
        "result_path": str(result_path),
    }
    first_chunk = min(config["start_chunk_bytes"], config["max_chunk_bytes"])  # as the uploader
    config_path = work / f"client-config-{seed}.json"
    config_path.write_text(json.dumps(config))
    print(
        f"\n{label}: {args.size:,} B; chunks {first_chunk:,} B, growing after accepted ones up "
        f"to {config['max_chunk_bytes']:,} B and the time bound; block checksums "
        f"{'on' if config['upload_blocks'] else 'off'}; ideal time at the link rate "
        f"{ideal:,.0f} s; gives up after {config['deadline_s']:,.0f} s",
        flush=True,
    )
    cutter = Cutter(link, args.cut_every)
    command = ["ip", "netns", "exec", NETNS, sys.executable, str(Path(__file__).resolve())]
    command += ["--client", str(config_path)]
    client = subprocess.Popen(command, cwd=common.REPO_ROOT)  # noqa: S603 - our own script
    if cuts:
        cutter.start()
    try:
        client.wait(timeout=config["deadline_s"] + 600)
    finally:
        cutter.halt.set()
        if client.poll() is None:
            client.kill()
            client.wait()
    if cutter.is_alive():
        cutter.join()
    if not result_path.exists():
        raise RuntimeError(f"the client process failed (exit {client.returncode})")
    result = json.loads(result_path.read_text())
    ok, detail = stored_file(args.pg_url, server.data_dir, attachment_id, sha256)
    return Outcome(label, result, {}, cutter.times, ok, detail)


def difference(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """Counters of one upload: ``after − before`` for each direction's counts."""
    if not after:
        return {}
    out: dict[str, Any] = {}
    for key, value in after.items():
        if isinstance(value, dict):
            earlier = before.get(key, {})
            out[key] = {
                k: v - earlier.get(k, 0) if isinstance(v, int) else v for k, v in value.items()
            }
        else:
            out[key] = value
    return out


def print_outcome(args: argparse.Namespace, outcome: Outcome) -> None:
    r = outcome.result
    size = args.size
    ideal = size * 8 / (args.rate_kbit * 1000)
    tx0, rx0 = r["counters_after_push"]
    tx1, rx1 = r["counters_end"]
    tx_push = tx0 - r["counters_start"][0]
    sent = r["stats"]["bytes_sent"]
    print(f"\n{outcome.label}")
    print(f"  completed: {r['completed']}" + (f" ({r.get('error')})" if not r["completed"] else ""))
    print(f"  server: {outcome.stored_detail}; {'OK' if outcome.stored_ok else 'NOT STORED'}")
    print(
        f"  report op (with the attachment manifest) acknowledged after {r['push_ack_s']:.1f} s "
        f"({r['push_attempts']} attempt{'s' if r['push_attempts'] > 1 else ''}; "
        f"{tx_push:,} B sent by the interface)"
    )
    cut_count = sum(1 for t in outcome.cuts if t >= r["push_ack_s"])
    print(
        f"  cuts during the upload: {cut_count} (every {args.cut_every:g} s: ss -K both ends + "
        f"{args.outage:g} s outage)"
        if outcome.cuts
        else "  no cuts"
    )
    rows = [
        ("file size (baseline)", size),
        ("uploader stats.bytes_sent (chunk bodies)", sent),
        ("client interface tx_bytes (IP, all of it)", tx1 - tx0),
        ("client interface rx_bytes (ACKs, answers)", rx1 - rx0),
    ]
    print(f"  {'upload phase':<44} {'bytes':>12} {'× file':>8}")
    for name, value in rows:
        print(f"  {name:<44} {value:>12,} {value / size:>7.3f}×")
    print(
        f"  target ≤ {TARGET_RATIO}× the file: uploader {common.met(sent / size <= TARGET_RATIO)} "
        f"({sent / size:.3f}×), interface {common.met((tx1 - tx0) / size <= TARGET_RATIO)} "
        f"({(tx1 - tx0) / size:.3f}×); completes and hashes right: "
        f"{common.met(bool(r['completed']) and outcome.stored_ok)}"
    )
    s = r["stats"]
    print(
        f"  uploader: {s['requests']} requests, {s['restarts']} restarts, "
        f"{s['chunk_failures']} chunk failures; block checksums "
        f"{s.get('block_algorithm') or 'off'}, {s.get('bytes_kept_from_cuts', 0):,} B of cut "
        "chunks kept by the server"
    )
    chunks = sorted({c for _t, _o, c in r["progress"] if c})
    if chunks:
        print(f"  chunk sizes used: {', '.join(f'{c:,}' for c in chunks)} B")
    reached = r.get("final_offset") or max((o for _t, o, _c in r["progress"]), default=0)
    print(
        f"  time: upload {r['upload_s']:,.0f} s; file at the link rate {ideal:,.0f} s; "
        f"ratio {r['upload_s'] / ideal:.2f}×; goodput {reached * 8 / r['upload_s'] / 1000:.1f} "
        f"kbit/s ({reached:,} B confirmed by the server)"
    )
    if outcome.link:
        up, down = outcome.link["client_to_server"], outcome.link["server_to_client"]
        print(
            f"  emulator (this upload, push included), up: {up['packets_in']:,} packets, "
            f"{up['bytes_in']:,} B; "
            f"lost {up['lost_random']} at random, {up['lost_outage']} in outages, "
            f"{up['lost_queue_full']} queue full. down: {down['packets_in']:,} packets, "
            f"{down['bytes_in']:,} B; lost {down['lost_random']} at random, "
            f"{down['lost_outage']} in outages"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=parse_size, default=parse_size("1MiB"), help="e.g. 20MB")
    parser.add_argument("--rate-kbit", type=float, default=50.0)
    parser.add_argument("--delay-ms", type=float, default=300.0, help="one way")
    parser.add_argument("--loss", type=float, default=0.02)
    parser.add_argument("--cut-every", type=float, default=30.0, help="seconds")
    parser.add_argument("--outage", type=float, default=2.0, help="seconds of no link per cut")
    parser.add_argument("--no-cuts", action="store_true", help="only the link, never cut")
    parser.add_argument("--baseline-no-cuts", action="store_true", help="also run without cuts")
    parser.add_argument(
        "--max-chunk", type=parse_size, default=0, help="uploader max_chunk_bytes (default: hello)"
    )
    parser.add_argument("--start-chunk", type=parse_size, default=64 * 1024)
    parser.add_argument("--min-chunk", type=parse_size, default=4 * 1024)
    parser.add_argument(
        "--no-blocks", action="store_true", help="no block checksums even if hello offers them"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="httpx read/write timeout")
    parser.add_argument("--connect-timeout", type=float, default=20.0)
    parser.add_argument(
        "--deadline", type=float, default=0.0, help="give up after (s; default 3× the ideal)"
    )
    parser.add_argument("--force-emulator", action="store_true", help="even if netem works")
    parser.add_argument("--pg-url", default=DEFAULT_URL, help="created and dropped")
    parser.add_argument("--keep", action="store_true", help="keep the database and data dir")
    args = parser.parse_args()
    if args.client is not None:
        client_main(args.client)
        return
    if os.geteuid() != 0:
        sys.exit("needs root: network namespaces and TUN devices (or tc netem)")
    try:
        from mobile_sync.client.uploads import ResumableUpload  # noqa: F401
    except ImportError:
        sys.exit("mobile_sync/client/uploads.py (the reference client's uploader) is missing")

    netem, why = netem_available()
    use_netem = netem and not args.force_emulator
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-2g-"))
    link = Link(args, work, use_netem)
    print(f"Python {sys.version.split()[0]}; {os.cpu_count()} CPUs; work dir {work}")
    if not netem:
        print(f"tc netem: unavailable here ({why or 'no netem qdisc'}), so the link is emulated")
    print(f"link: {link.describe()}")
    common.recreate_postgres(args.pg_url)
    outcomes: list[Outcome] = []
    try:
        link.up()
        common.prepare_database(common.load_settings(args.pg_url, work))
        server = common.ServerProcess(
            url=args.pg_url, data_dir=work, host=link.server_ip, port=PORT
        )
        server.start()
        try:
            plans = [("upload, connection cut", not args.no_cuts, 1)]
            if args.no_cuts:
                plans = [("upload, no cuts", False, 1)]
            elif args.baseline_no_cuts:
                plans.append(("baseline: the same upload, no cuts", False, 2))
            for label, cuts, seed in plans:
                before = link.stats()
                outcome = one_upload(args, server, link, work, label=label, cuts=cuts, seed=seed)
                outcome.link = difference(link.stats(), before)
                outcomes.append(outcome)
        finally:
            server.stop()
        for outcome in outcomes:
            print_outcome(args, outcome)
    finally:
        link.down()
        if not args.keep:
            common.drop_postgres(args.pg_url)
            shutil.rmtree(work, ignore_errors=True)
            print(f"\ndropped database {make_url(args.pg_url).database} and {work}")


if __name__ == "__main__":
    main()
