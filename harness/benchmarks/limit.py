"""The loopback TLS limit: what a null sink with the emulator's certificate takes, same bytes.

Why: "device / emulator" hides which one sets the ceiling. The sink is an HTTP/1.1 server
on its own process (a thread per connection, blocking TLS sockets, `recv_into` one reused
buffer, nothing hashed, nothing written) serving the certificate `ensure_certs` makes for
the emulator; the load is the cloud benchmark's raw client PUTting the same part sizes.
So every throughput figure of a run can be set beside `limit_MBps` at 1 and 4 streams.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

from harness.benchmarks import machine_params, result, write_report
from harness.benchmarks.cloud import cpu_seconds
from harness.benchmarks.rawclient import _Connection, _head
from harness.cloud.ca import CertPaths, ensure_certs
from harness.errors import BenchFailure

MIB = 1024 * 1024
_RECV = 1 << 20
_OK = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\netag: \"null\"\r\n\r\n"


@dataclass(frozen=True)
class LimitConfig:
    """Streams to measure, how long each point runs, and the part size each PUT carries."""

    streams: tuple[int, ...] = (1, 4)
    duration: float = 3.0
    part_size: int = 16 * MIB


# -- the sink (its own process) --------------------------------------------------------------
def _read_head(conn: ssl.SSLSocket, spill: bytearray) -> int | None:
    """Read one request head; return its Content-Length (None at end of stream)."""
    while b"\r\n\r\n" not in spill:
        data = conn.recv(65536)
        if not data:
            return None
        spill.extend(data)
    head, _, rest = bytes(spill).partition(b"\r\n\r\n")
    spill[:] = rest
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def _serve_connection(conn: ssl.SSLSocket) -> None:
    """Discard request bodies; answer each with an empty 200, keep-alive."""
    buf = bytearray(_RECV)
    view = memoryview(buf)
    spill = bytearray()
    with contextlib.suppress(OSError), conn:
        while (length := _read_head(conn, spill)) is not None:
            left = length - len(spill)
            spill.clear()  # a head and body start arrive together: that start counts
            while left > 0:
                n = conn.recv_into(view, min(left, _RECV))
                if not n:
                    return
                left -= n
            conn.sendall(_OK)


def _sink_main(certs: CertPaths, pipe: Pipe) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certs.server_cert), str(certs.server_key))
    server = socket.create_server(("127.0.0.1", 0), backlog=64)
    pipe.send(server.getsockname()[1])
    while True:
        raw, _ = server.accept()
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            conn = context.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            continue
        threading.Thread(target=_serve_connection, args=(conn,), daemon=True).start()


@dataclass(frozen=True)
class Sink:
    """A running null sink: where it listens and its process (for its CPU time)."""

    port: int
    pid: int


@contextlib.contextmanager
def null_sink(certs: CertPaths) -> Iterator[Sink]:
    """A null TLS sink process serving `certs`; killed on exit."""
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=_sink_main, args=(certs, theirs), daemon=True)
    proc.start()
    try:
        if not ours.poll(30):
            raise BenchFailure("the null TLS sink did not start within 30 s")
        assert proc.pid is not None
        yield Sink(int(ours.recv()), proc.pid)
    finally:
        proc.kill()
        proc.join(10)


# -- the load (this process, a thread per stream) ---------------------------------------------
def measure_limit(certs: CertPaths, port: int, streams: int,
                  config: LimitConfig) -> tuple[float, int]:
    """(MB/s, bytes) of whole PUTs of `part_size` bytes over `streams` keep-alive TLS
    connections."""
    tls = ssl.create_default_context(cafile=str(certs.ca_cert))
    payload = os.urandom(config.part_size)
    counts = [0] * streams
    start = threading.Barrier(streams + 1)
    threads = []
    for i in range(streams):
        thread = threading.Thread(target=_stream, daemon=True,
                                  args=(port, tls, payload, counts, i, start, config))
        threads.append(thread)
        thread.start()
    start.wait(60)
    t0 = time.monotonic()
    for thread in threads:
        thread.join(config.duration + 120)
    elapsed = time.monotonic() - t0
    return (sum(counts) / 1e6 / elapsed if elapsed > 0 else 0.0), sum(counts)


def _stream(port: int, tls: ssl.SSLContext, payload: bytes, counts: list[int], at: int,
            start: threading.Barrier, config: LimitConfig) -> None:
    """One keep-alive stream PUTting `payload` until `duration` after every stream connected."""
    conn = _Connection("127.0.0.1", port, tls)
    conn.connect()
    head = _head("PUT", "/s3/parts/null", f"127.0.0.1:{port}", len(payload),
                 {"content-type": "application/octet-stream", "x-amz-acl": "private"})
    start.wait(60)
    deadline = time.monotonic() + config.duration
    try:
        while time.monotonic() < deadline:
            conn.request(head, payload)
            counts[at] += len(payload)
    finally:
        conn.close()


def negotiated(certs: CertPaths, port: int) -> str:
    """The TLS version and cipher the sink and client agree on (the emulator's are alike)."""
    tls = ssl.create_default_context(cafile=str(certs.ca_cert))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            tls.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
        cipher = conn.cipher()
        return f"{conn.version()} {cipher[0] if cipher else '?'}"


def measure(config: LimitConfig | None = None, certs_dir: Path | None = None) -> list[dict[str, Any]]:
    """`limit_MBps` per stream count, with the emulator's certificate from `certs_dir`."""
    config = config or LimitConfig()
    with contextlib.ExitStack() as stack:
        if certs_dir is None:
            certs_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="c2c-limit-")))
        certs = ensure_certs(certs_dir)
        sink = stack.enter_context(null_sink(certs))
        cipher = negotiated(certs, sink.port)
        points = []
        for n in config.streams:
            cpu_before = cpu_seconds(sink.pid)
            rate, moved = measure_limit(certs, sink.port, n, config)
            cpu_per_gb = (cpu_seconds(sink.pid) - cpu_before) / (moved / 1e9) if moved else None
            points.append((n, rate, cpu_per_gb))
    return [
        result("limit_MBps", round(rate, 1), "MB/s", streams=n, part_MiB=config.part_size / MIB,
               duration_s=config.duration, sink="null TLS sink (no hashing, no disk)",
               sink_cpu_s_per_GB=round(cpu_per_gb, 2) if cpu_per_gb is not None else None,
               tls=cipher, **machine_params())
        for n, rate, cpu_per_gb in points
    ]


def run(out_dir: Path, config: LimitConfig | None = None) -> dict[str, Any]:
    """Measure the loopback TLS limit and write `<out_dir>/limit.json`."""
    return write_report(out_dir, "limit", measure(config))
