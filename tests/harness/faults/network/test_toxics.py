"""Data-plane behaviour of each toxic on loopback (ports toxics/*_test.go and link_test.go)."""

from __future__ import annotations

import itertools
import os
import random
import socket
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from harness.faults.network.proxy import Link
from harness.faults.network.server import ToxiproxyServer
from harness.faults.network.toxics import slice_points
from tests.harness.faults.network.conftest import (
    EchoServer,
    SinkServer,
    can_connect,
    port_of,
    recv_exact,
    recv_until_eof,
    wait_for,
)

MakeProxy = Callable[..., int]


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def round_trip(conn: socket.socket, payload: bytes = b"x") -> float:
    start = time.perf_counter()
    conn.sendall(payload)
    assert recv_exact(conn, len(payload)) == payload
    return (time.perf_counter() - start) * 1000


def add(
    api: httpx.Client, kind: str, stream: str = "downstream", proxy: str = "p", **body: object
) -> dict:
    response = api.post(f"/proxies/{proxy}/toxics", json={"type": kind, "stream": stream, **body})
    assert response.status_code == 200, response.text
    return response.json()


def test_passthrough_64k_both_ways(make_proxy: MakeProxy, echo: EchoServer) -> None:
    port = make_proxy(echo.address)
    payload = os.urandom(64 * 1024)
    with connect(port) as conn:
        conn.sendall(payload)
        assert recv_exact(conn, len(payload)) == payload


def test_upstream_down_gives_prompt_eof(make_proxy: MakeProxy) -> None:
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = make_proxy(f"127.0.0.1:{dead.getsockname()[1]}")
    dead.close()
    with connect(port, timeout=2) as conn:
        start = time.monotonic()
        assert conn.recv(10) == b""
        assert time.monotonic() - start < 2


@pytest.mark.parametrize("stream", ["upstream", "downstream"])
def test_latency_each_direction(
    api: httpx.Client, make_proxy: MakeProxy, echo: EchoServer, stream: str
) -> None:
    port = make_proxy(echo.address)
    with connect(port) as conn:
        base = min(round_trip(conn) for _ in range(3))
        add(api, "latency", stream, attributes={"latency": 100, "jitter": 10})
        rtts = [round_trip(conn) for _ in range(3)]
    for rtt in rtts:
        # a toxic of 100 +/- 10 ms can never answer sooner than 90 ms, whatever the baseline was
        # (a baseline taken on a loaded machine is noise, so it only widens the upper bound)
        assert rtt >= 100 - 10, rtts
        assert rtt - base <= 100 + 10 + 60, (rtts, base)


def test_latency_is_never_delivered_early(
    api: httpx.Client, make_proxy: MakeProxy, echo: EchoServer
) -> None:
    """The floor holds to the sub-millisecond: the proxy's clock is the precise one.

    (It once used the event loop's clock: uvloop's is cached at whole milliseconds, so a trip
    could come back up to a millisecond before the toxic's latency.)"""
    port = make_proxy(echo.address)
    add(api, "latency", "downstream", attributes={"latency": 3})
    with connect(port) as conn:
        rtts = [round_trip(conn) for _ in range(60)]
    assert min(rtts) >= 3.0, sorted(rtts)[:5]


def test_chained_latencies_add(api: httpx.Client, make_proxy: MakeProxy, echo: EchoServer) -> None:
    port = make_proxy(echo.address)
    add(api, "latency", "upstream", name="a", attributes={"latency": 60})
    add(api, "latency", "upstream", name="b", attributes={"latency": 60})
    add(api, "latency", "downstream", attributes={"latency": 30})
    with connect(port) as conn:
        rtts = [round_trip(conn) for _ in range(3)]
    # every trip carries the three delays; the quickest is the least disturbed by a busy machine,
    # and a toxic applied twice would put even that one at 270 ms or more
    assert min(rtts) >= 150 and min(rtts) <= 150 + 80, rtts


def test_latency_shifts_a_stream_instead_of_slowing_it(
    api: httpx.Client, server: ToxiproxyServer, make_proxy: MakeProxy, sink: SinkServer
) -> None:
    port = make_proxy(sink.address)
    add(api, "latency", "upstream", attributes={"latency": 200})
    block = 64 * 1024
    with connect(port) as conn:
        link = live_link(server, "upstream")
        start = time.perf_counter()
        for i in range(10):
            conn.sendall(os.urandom(block))
            # one read per block: wait until the proxy has read it before sending the next
            wait_for(lambda i=i: link.received >= (i + 1) * block)
        wait_for(lambda: sink.conns and len(sink.conns[0]["data"]) == 10 * block, timeout=5)
        elapsed = sink.conns[0]["last"] - start
    assert 0.2 <= elapsed < 0.8  # a serial 200 ms per chunk would take >= 2 s


def test_toxicity_zero_never_applies(
    api: httpx.Client, make_proxy: MakeProxy, echo: EchoServer
) -> None:
    port = make_proxy(echo.address)
    add(api, "latency", attributes={"latency": 2000}, toxicity=0.0)
    with connect(port) as conn:
        assert round_trip(conn) < 1000


@pytest.mark.parametrize(
    ("limit", "sends", "expected"),
    [(100, [50], 50), (100, [100], 100), (100, [150], 100), (100, [90, 20], 100), (0, [10], 0)],
)
def test_limit_data_cuts_at_exact_byte(
    api: httpx.Client,
    make_proxy: MakeProxy,
    sink: SinkServer,
    limit: int,
    sends: list[int],
    expected: int,
) -> None:
    port = make_proxy(sink.address)
    add(api, "limit_data", "upstream", attributes={"bytes": limit})
    payload = os.urandom(sum(sends))
    with connect(port) as conn:
        sent = 0
        for size in sends:
            conn.sendall(payload[sent : sent + size])
            sent += size
            wait_for(
                lambda s=sent: (
                    (sink.conns and len(sink.conns[0]["data"]) >= min(s, limit))
                    or (sink.conns and sink.conns[0]["closed"])
                )
            )
        if expected < sum(sends) or limit == expected:
            wait_for(lambda: sink.conns[0]["closed"])
            assert conn.recv(10) == b""  # the client side is closed too
    assert bytes(sink.conns[0]["data"]) == payload[:expected]


def test_reset_peer_gives_econnreset(
    api: httpx.Client, make_proxy: MakeProxy, echo: EchoServer
) -> None:
    port = make_proxy(echo.address)
    add(api, "reset_peer", "upstream", attributes={"timeout": 100})
    with connect(port) as conn:
        start = time.monotonic()
        conn.sendall(b"hello")
        with pytest.raises(ConnectionResetError):
            conn.recv(10)
        elapsed = time.monotonic() - start
    assert 0.1 <= elapsed < 1.0


def test_reset_peer_on_an_already_open_connection_also_resets(
    api: httpx.Client, make_proxy: MakeProxy, echo: EchoServer
) -> None:
    port = make_proxy(echo.address)
    with connect(port) as conn:
        round_trip(conn)
        add(api, "reset_peer", "upstream", attributes={"timeout": 0})
        conn.sendall(b"x")
        with pytest.raises(ConnectionResetError):
            conn.recv(10)


def test_idle_connection_is_never_reset(
    api: httpx.Client, make_proxy: MakeProxy, echo: EchoServer
) -> None:
    port = make_proxy(echo.address)
    add(api, "reset_peer", "upstream", attributes={"timeout": 0})
    with connect(port, timeout=0.3) as conn, pytest.raises(TimeoutError):
        conn.recv(10)


def test_timeout_holds_data_then_removal_closes(
    api: httpx.Client, server: ToxiproxyServer, make_proxy: MakeProxy, echo: EchoServer
) -> None:
    port = make_proxy(echo.address)
    add(api, "timeout", "upstream", attributes={"timeout": 0})
    with connect(port, timeout=0.4) as conn:
        conn.sendall(b"swallowed")
        link = live_link(server, "upstream")
        wait_for(lambda: link.received == 9)
        with pytest.raises(TimeoutError):
            conn.recv(10)  # held: nothing comes back, nothing closes
        conn.settimeout(5)
        assert api.delete("/proxies/p/toxics/timeout_upstream").status_code == 204
        assert recv_until_eof(conn) == b""  # removal closes what it held


def test_timeout_closes_after_idle_period(
    api: httpx.Client, make_proxy: MakeProxy, echo: EchoServer
) -> None:
    port = make_proxy(echo.address)
    add(api, "timeout", "downstream", attributes={"timeout": 200})
    with connect(port) as conn:
        start = time.monotonic()
        conn.sendall(b"ping")
        assert recv_until_eof(conn) == b""
        elapsed = time.monotonic() - start
    assert 0.2 <= elapsed < 2.0


def live_link(server: ToxiproxyServer, direction: str, proxy: str = "p") -> Link:
    """The proxy's link for the (only) live connection, once the proxy has accepted it."""
    conns = wait_for(lambda: list(server.registry.proxies[proxy].connections))
    return conns[0].links[direction]  # type: ignore[index]


def test_removing_toxic_in_front_of_timeout_does_not_hang(
    api: httpx.Client, server: ToxiproxyServer, make_proxy: MakeProxy, echo: EchoServer
) -> None:
    port = make_proxy(echo.address)
    add(api, "noop", "upstream")
    add(api, "timeout", "upstream", attributes={"timeout": 0})
    with connect(port, timeout=5) as conn:
        conn.sendall(b"a")
        link = live_link(server, "upstream")
        wait_for(lambda: link.received == 1)  # the timeout toxic holds the connection now
        assert api.delete("/proxies/p/toxics/noop_upstream", timeout=2).status_code == 204
        assert api.delete("/proxies/p/toxics/timeout_upstream", timeout=2).status_code == 204
        assert recv_until_eof(conn) == b""


def test_disabled_refuses_and_drops_live_connections(
    api: httpx.Client, make_proxy: MakeProxy, echo: EchoServer
) -> None:
    port = make_proxy(echo.address)
    with connect(port) as conn:
        round_trip(conn)
        api.patch("/proxies/p", json={"enabled": False})
        assert recv_until_eof(conn) == b""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    api.patch("/proxies/p", json={"enabled": True})
    with connect(port) as again:
        round_trip(again)


def test_slow_close_delays_the_close(
    api: httpx.Client, make_proxy: MakeProxy, sink: SinkServer
) -> None:
    port = make_proxy(sink.address)
    add(api, "slow_close", "upstream", attributes={"delay": 300})
    conn = connect(port)
    conn.sendall(b"data")
    wait_for(lambda: sink.conns and sink.conns[0]["data"] == b"data")
    start = time.perf_counter()
    conn.close()
    wait_for(lambda: sink.conns[0]["closed"])
    assert time.perf_counter() - start >= 0.3


def test_slicer_reassembles_intact(
    api: httpx.Client, make_proxy: MakeProxy, echo: EchoServer
) -> None:
    port = make_proxy(echo.address)
    add(
        api,
        "slicer",
        "upstream",
        attributes={"average_size": 1024, "size_variation": 512, "delay": 10},
    )
    add(
        api,
        "slicer",
        "downstream",
        attributes={"average_size": 700, "size_variation": 0, "delay": 0},
    )
    payload = os.urandom(480 * 1000)
    with connect(port, timeout=10) as conn:
        threading.Thread(target=conn.sendall, args=(payload,), daemon=True).start()
        assert recv_exact(conn, len(payload)) == payload


def test_slice_points_piece_count_and_bounds() -> None:
    points = slice_points(480 * 1000, 1024, 512, random.Random(1))
    sizes = [b - a for a, b in itertools.pairwise(points)]
    assert points[0] == 0 and points[-1] == 480 * 1000
    assert all(s > 0 for s in sizes)
    assert 240 <= len(sizes) <= 720
    assert slice_points(10, 1, 0, random.Random(1)) == list(range(11))  # Go would recurse forever
    assert slice_points(100, 10, 50, random.Random(2))[-1] == 100  # variation >= average is clamped


@pytest.mark.parametrize("rate", [0, -5])
def test_bandwidth_zero_or_negative_is_unlimited(
    api: httpx.Client, make_proxy: MakeProxy, echo: EchoServer, rate: int
) -> None:
    port = make_proxy(echo.address)
    add(api, "bandwidth", "downstream", attributes={"rate": rate})
    payload = os.urandom(256 * 1024)
    with connect(port) as conn:
        threading.Thread(target=conn.sendall, args=(payload,), daemon=True).start()
        assert recv_exact(conn, len(payload)) == payload


def test_live_add_remove_loses_no_data(
    api: httpx.Client, make_proxy: MakeProxy, echo: EchoServer
) -> None:
    port = make_proxy(echo.address)
    payload = os.urandom(4 * 1024 * 1024)
    received = bytearray()
    with connect(port, timeout=20) as conn:

        def pump() -> None:
            view = memoryview(payload)
            for offset in range(0, len(payload), 16384):
                conn.sendall(view[offset : offset + 16384])

        sender = threading.Thread(target=pump, daemon=True)
        sender.start()
        toxics = [
            ("latency", {"latency": 5, "jitter": 2}),
            ("noop", {}),
            ("slicer", {"average_size": 4096, "size_variation": 1024, "delay": 0}),
            ("bandwidth", {"rate": 50_000}),
        ]
        step = 0
        while len(received) < len(payload):
            kind, attrs = toxics[step % len(toxics)]
            stream = "upstream" if step % 2 else "downstream"
            if step % 3 == 2:
                api.post("/reset")
            else:
                api.post(
                    "/proxies/p/toxics", json={"type": kind, "stream": stream, "attributes": attrs}
                )
                if step % 2:
                    api.delete(f"/proxies/p/toxics/{kind}_{stream}")
            step += 1
            chunk = conn.recv(262144)
            assert chunk, "connection closed while toxics changed"
            received += chunk
        sender.join(10)
    assert step > 5
    assert bytes(received) == payload


def test_persistent_connection_survives_toxic_changes(
    api: httpx.Client, make_proxy: MakeProxy, echo: EchoServer
) -> None:
    port = make_proxy(echo.address)
    with connect(port) as conn:
        round_trip(conn, b"a")
        add(api, "noop", "upstream")
        round_trip(conn, b"b")
        api.delete("/proxies/p/toxics/noop_upstream")
        round_trip(conn, b"c")
        api.post("/reset")
        round_trip(conn, b"d")


def _pattern(seed: int, sink: SinkServer) -> list[int]:
    with (
        ToxiproxyServer(seed=seed) as server,
        httpx.Client(base_url=server.api_url, timeout=10) as api,
    ):
        body = api.post(
            "/proxies", json={"name": "s", "upstream": sink.address, "listen": "127.0.0.1:0"}
        ).json()
        api.post(
            "/proxies/s/toxics",
            json={
                "type": "limit_data",
                "stream": "upstream",
                "toxicity": 0.5,
                "attributes": {"bytes": 1},
            },
        )
        first = len(sink.conns)
        for _ in range(16):
            index = len(sink.conns)
            with connect(port_of(body["listen"])) as conn:
                conn.sendall(b"abcd")
                wait_for(
                    lambda i=index: (
                        len(sink.conns) > i
                        and len(sink.conns[i]["data"]) in (1, 4)
                        and (len(sink.conns[i]["data"]) == 4 or sink.conns[i]["closed"])
                    )
                )
        return [len(c["data"]) for c in sink.conns[first:]]


def test_seed_makes_toxicity_repeatable(sink: SinkServer) -> None:
    first = _pattern(7, sink)
    second = _pattern(7, sink)
    assert first == second
    assert set(first) == {1, 4}  # toxicity 0.5 hits some connections and spares others


def test_proxy_port_closed_after_server_stop(echo: EchoServer) -> None:
    server = ToxiproxyServer().start()
    with httpx.Client(base_url=server.api_url) as api:
        port = port_of(
            api.post(
                "/proxies", json={"name": "x", "upstream": echo.address, "listen": "127.0.0.1:0"}
            ).json()["listen"]
        )
    assert can_connect(port)
    server.stop()
    server.stop()  # idempotent
    assert not can_connect(port)
