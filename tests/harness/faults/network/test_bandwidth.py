"""Bandwidth toxic within ±10 % from 1 to 100 Mbps.

Timing-based, so made robust for a loaded 2-core machine: the rate is taken at the
receiver from first byte to last byte (connection setup and the sender's own speed do
not count), each transfer lasts about 1 s, and a point outside tolerance is measured once
more before failing — a real fault is outside tolerance both times.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from tests.harness.faults.network.conftest import EchoServer, SinkServer, wait_for

TOLERANCE = 0.10


def measure_upstream(api: httpx.Client, port: int, sink: SinkServer, size: int) -> float:
    """Bytes/s seen by the sink for one transfer of `size` bytes through the proxy."""
    index = len(sink.conns)
    payload = os.urandom(size)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(payload)
        wait_for(
            lambda: len(sink.conns) > index and len(sink.conns[index]["data"]) == size, timeout=30
        )
    record = sink.conns[index]
    assert bytes(record["data"]) == payload
    return size / (record["last"] - record["first"])


def within(measured: float, expected: float) -> bool:
    return abs(measured - expected) <= TOLERANCE * expected


def check_rate(measure: Callable[[], float], expected: float) -> None:
    first = measure()
    if within(first, expected):
        return
    second = measure()  # one retry: a loaded machine, not a broken toxic
    assert within(second, expected), (
        f"expected {expected:.0f} B/s ±10 %, measured {first:.0f} then {second:.0f}"
    )


@pytest.mark.parametrize("megabits", [1, 10, 100])
def test_upstream_bandwidth_within_ten_percent(
    api: httpx.Client, make_proxy: Callable[..., int], sink: SinkServer, megabits: int
) -> None:
    port = make_proxy(sink.address)
    rate_kbs = megabits * 125  # KB/s, 1 KB = 1000 B
    api.post(
        "/proxies/p/toxics",
        json={"type": "bandwidth", "stream": "upstream", "attributes": {"rate": rate_kbs}},
    )
    expected = rate_kbs * 1000.0
    check_rate(lambda: measure_upstream(api, port, sink, int(expected)), expected)


def test_downstream_bandwidth_within_ten_percent(
    api: httpx.Client, make_proxy: Callable[..., int], echo: EchoServer
) -> None:
    port = make_proxy(echo.address)
    rate_kbs = 10 * 125
    api.post("/proxies/p/toxics", json={"type": "bandwidth", "attributes": {"rate": rate_kbs}})
    expected = rate_kbs * 1000.0
    size = int(expected)

    def measure() -> float:
        payload = os.urandom(size)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            threading.Thread(target=conn.sendall, args=(payload,), daemon=True).start()
            got = 0
            first = last = 0.0
            while got < size:
                chunk = conn.recv(262144)
                assert chunk, "closed early"
                last = time.perf_counter()
                first = first or last
                got += len(chunk)
        return size / (last - first)

    check_rate(measure, expected)
