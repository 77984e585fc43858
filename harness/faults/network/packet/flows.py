"""Bulk TCP flows for measuring a packet-level link with the kernel's own TCP.

`BulkReceiver` listens on the host side and timestamps every byte it reads; the sender
(`python -m harness.faults.network.packet.flows HOST PORT --flows N --seconds T`, run inside
the link's namespace) writes as fast as TCP lets it on N connections and prints one JSON line:
the smoothed RTT samples the kernel kept for each connection (TCP_INFO) and the bytes sent.
Goodput is measured where the bytes arrive, after a warm-up, so slow start is not averaged in.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import struct
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from harness.errors import FaultInjectionError
from harness.faults.network.packet.goodput import goodput_bps

if TYPE_CHECKING:
    from harness.faults.network.packet.link import PacketLink

TCP_INFO_RTT_OFFSET = 68  # struct tcp_info: tcpi_rtt (smoothed RTT, microseconds)
CHUNK = 64 * 1024


class BulkReceiver:
    """Accepts connections on (address, 0) and records (monotonic time, bytes) per read."""

    def __init__(self, address: str) -> None:
        self._server = socket.create_server((address, 0))
        self.address, self.port = self._server.getsockname()[:2]
        self._lock = threading.Lock()
        self.samples: list[tuple[float, int]] = []
        self.connections = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, name="bulk-accept", daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            thread = threading.Thread(target=self._drain, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _drain(self, conn: socket.socket) -> None:
        conn.settimeout(0.5)
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(256 * 1024)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                now = time.monotonic()
                with self._lock:
                    self.samples.append((now, len(data)))

    def goodput_bps(self, *, warmup_s: float, window_s: float) -> float:
        """Payload bits per second received in [first byte + warm-up, + window]."""
        with self._lock:
            samples = list(self.samples)
        if not samples:
            return 0.0
        start = samples[0][0] + warmup_s
        end = start + window_s
        total = sum(n for t, n in samples if start <= t < end)
        return total * 8 / window_s

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        self._accepter.join(2)
        for thread in self._threads:
            thread.join(2)

    def __enter__(self) -> BulkReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_bulk_flows(
    link: PacketLink, *, flows: int, seconds: float, warmup_s: float, congestion_control: str | None = None
) -> dict[str, Any]:
    """N bulk flows from the link's namespace to a host-side receiver; goodput and RTT.

    `goodput_bps` is measured at the link (unique payload bytes it delivered) from the first
    received byte + `warmup_s` to the first byte + `seconds`; `app_goodput_bps` is the same
    window as the receiving application saw it (bursty after losses, see goodput.py).
    """
    with BulkReceiver(link.host_address) as receiver:
        started = time.monotonic()
        result = link.run_in_namespace(
            [sys.executable, "-m", "harness.faults.network.packet.flows", receiver.address,
             str(receiver.port), "--flows", str(flows), "--seconds", str(seconds),
             *(["--cc", congestion_control] if congestion_control else [])],
            timeout=seconds + 30,
        )
        if result.returncode != 0:
            raise FaultInjectionError(f"bulk sender failed ({result.returncode}): {result.stderr.strip()[-500:]}")
        report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        report["app_goodput_bps"] = receiver.goodput_bps(warmup_s=warmup_s, window_s=seconds - warmup_s)
        report["connections"] = receiver.connections
    first_byte = receiver.samples[0][0] if receiver.samples else started
    series = link.series(since=first_byte)["up"]
    report["goodput_bps"] = goodput_bps(series, first_byte + warmup_s, first_byte + seconds)
    report["first_byte_at"] = first_byte  # time.monotonic(): where the measured window starts, less warm-up
    report["series"] = series
    rtts = [s for per_flow in report["rtt_us"] for s in per_flow[len(per_flow) // 2 :]]
    report["rtt_loaded_ms"] = statistics.median(rtts) / 1000 if rtts else None
    return report


def _send(host: str, port: int, seconds: float, cc: str | None, rtt_samples: list[int], sent: list[int]) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if cc:  # before connect, so the handshake and slow start already use it
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc.encode())
    sock.settimeout(10)
    sock.connect((host, port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # stop at once
    payload = b"\0" * CHUNK
    deadline = time.monotonic() + seconds
    next_sample = time.monotonic()
    sock.settimeout(0.05)
    try:
        while (now := time.monotonic()) < deadline:
            if now >= next_sample:
                info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
                rtt_samples.append(struct.unpack_from("I", info, TCP_INFO_RTT_OFFSET)[0])
                next_sample = now + 0.05
            try:
                sent[0] += sock.send(payload)
            except TimeoutError:
                continue
    finally:
        sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="bulk TCP sender for a packet-level link")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--flows", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--cc", help="TCP congestion control per socket (reno, cubic, bbr); default: the system's")
    args = parser.parse_args(argv)
    rtts: list[list[int]] = [[] for _ in range(args.flows)]
    sent: list[list[int]] = [[0] for _ in range(args.flows)]
    threads = [threading.Thread(target=_send, args=(args.host, args.port, args.seconds, args.cc, rtts[i], sent[i]))
               for i in range(args.flows)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"rtt_us": rtts, "sent_bytes": [s[0] for s in sent]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
