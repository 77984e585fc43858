"""Network-fault benchmark: throughput through our Toxiproxy-compatible proxy with no toxics,
against a direct loopback baseline.

Issue 4's target: >= 1 Gbps (125 MB/s) through a proxy on loopback. The proxy runs as its
own process (`python -m harness.faults.network.server`) so the number is the proxy's, not
this process's GIL; sender and sink are threads on blocking sockets (which release the GIL).
Rate = bytes received / (last byte - first byte) at the sink. Reported, never asserted.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

from harness.benchmarks import machine_params, result, write_report
from harness.faults.network.client import ToxiproxyClient, ToxiproxyProcess, our_server_command

TARGET_MBPS = 125.0  # megabytes per second = 1 Gbps
BLOCK = 1 << 20


class Sink:
    """Accepts one connection and counts what arrives, timing first and last byte."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.received = 0
        self.first = 0.0
        self.last = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn, _ = self._sock.accept()
        view = memoryview(bytearray(BLOCK))
        with conn:
            while n := conn.recv_into(view):
                now = time.perf_counter()
                if not self.received:
                    self.first = now
                self.last = now
                self.received += n

    def wait(self, timeout: float) -> float:
        """MB/s once the sender closed."""
        self._thread.join(timeout)
        self._sock.close()
        span = self.last - self.first
        return self.received / span / 1e6 if span > 0 else 0.0


def send_for(port: int, seconds: float) -> None:
    payload = b"\x5a" * BLOCK
    with socket.create_connection(("127.0.0.1", port), timeout=30) as out:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            out.sendall(payload)
        out.shutdown(socket.SHUT_WR)


def measure_direct(seconds: float) -> float:
    sink = Sink()
    send_for(sink.port, seconds)
    return sink.wait(30)


def measure_proxied(api_url: str, seconds: float) -> float:
    sink = Sink()
    with ToxiproxyClient(api_url) as api:
        info = api.create_proxy("bench", f"127.0.0.1:{sink.port}")
        port = int(info["listen"].rpartition(":")[2])
        send_for(port, seconds)
        rate = sink.wait(30)
        api.delete_proxy("bench")
    return rate


def run(out_dir: Path, seconds: float = 3.0) -> dict[str, Any]:
    """Measure direct and proxied loopback throughput; write `<out_dir>/faults.json`."""
    direct = measure_direct(seconds)
    with ToxiproxyProcess(our_server_command()) as server:
        proxied = measure_proxied(server.api_url, seconds)
    common = {"seconds": seconds, "block_bytes": BLOCK, **machine_params()}
    return write_report(
        out_dir,
        "faults",
        [
            result(
                "proxy_MBps",
                round(proxied, 1),
                "MB/s",
                toxics=0,
                target_MBps=TARGET_MBPS,
                meets_target=proxied >= TARGET_MBPS,
                **common,
            ),
            result("direct_MBps", round(direct, 1), "MB/s", **common),
        ],
    )
