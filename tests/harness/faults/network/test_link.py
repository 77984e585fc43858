"""NetworkLink through real TLS: the device URL reaches an HTTPS server via the proxy."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import httpx
import pytest

from harness.errors import ConfigError, FaultInjectionError
from harness.faults.network import NetworkLink
from harness.faults.network.client import ToxiproxyClient
from harness.faults.network.server import ToxiproxyServer
from harness.protocols import Network
from tests.harness.faults.network.conftest import (
    EchoServer,
    SinkServer,
    can_connect,
    port_of,
    recv_until_eof,
    wait_for,
)
from tests.harness.faults.network.tls_server import TlsServer


def https_get(link: NetworkLink, tls: TlsServer) -> httpx.Response:
    context = ssl.create_default_context(cafile=str(tls.cert))
    return httpx.get(link.device_api_url + "/", verify=context, timeout=10)


def test_tls_passes_through_untouched(link: NetworkLink, tls: TlsServer) -> None:
    assert isinstance(link, Network)
    assert link.device_api_url.startswith("https://127.0.0.1:")
    response = https_get(link, tls)
    assert response.status_code == 200 and response.content == b"hello over tls"


def test_down_up_and_timeline(link: NetworkLink, tls: TlsServer) -> None:
    link.link_down()
    with pytest.raises(httpx.ConnectError):
        https_get(link, tls)
    link.link_up()
    assert https_get(link, tls).status_code == 200
    windows = [w for w in link.timeline.windows() if w["name"] == "link-down"]
    assert len(windows) == 1 and windows[0]["stop"] is not None and windows[0]["layer"] == "network"


def test_a_down_link_keeps_its_port(link: NetworkLink, tls: TlsServer) -> None:
    """While the link is down the port refuses connections yet stays the link's: a busy machine
    must not hand it to another process before the link comes back (bind: address in use)."""
    port = int(link.device_api_url.rsplit(":", 1)[1])
    link.link_down()
    assert not can_connect(port)  # refused, as a stopped Toxiproxy listener
    with socket.socket() as squatter, pytest.raises(OSError):
        squatter.bind(("127.0.0.1", port))
    link.link_up()
    assert link.device_api_url.endswith(f":{port}") and https_get(link, tls).status_code == 200


def test_profile_applies_toxics_and_clear_removes(
    link: NetworkLink, tls: TlsServer, server: ToxiproxyServer
) -> None:
    link.apply_profile("cellular")
    with ToxiproxyClient(server.api_url) as api:
        toxics = {t["name"]: t for t in api.toxics(link.name)}
        assert toxics["bandwidth_upstream"]["attributes"] == {"rate": 1875}
        assert toxics["latency_downstream"]["attributes"] == {"latency": 25, "jitter": 10}
        response = https_get(link, tls)  # still works, just slower
        assert response.status_code == 200 and response.elapsed.total_seconds() >= 0.05
        link.clear()
        assert api.toxics(link.name) == []
    starts = [e for e in link.timeline.events if e.name == "profile:cellular"]
    assert [e.action for e in starts] == ["start", "stop"]
    assert starts[0].details["toxics"][0]["type"] == "latency"


def test_blackout_then_clear(link: NetworkLink, tls: TlsServer) -> None:
    link.apply_profile("blackout")
    assert not can_connect(port_of(link.listen))
    link.clear()
    assert https_get(link, tls).status_code == 200


def test_switch_path_drops_live_connections(server: ToxiproxyServer, echo: EchoServer) -> None:
    with NetworkLink(echo.address, api_url=server.api_url) as net:
        port = port_of(net.listen)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"a")
            assert conn.recv(1) == b"a"
            net.switch_path()
            assert recv_until_eof(conn) == b""
        with socket.create_connection(("127.0.0.1", port), timeout=5) as again:
            again.sendall(b"b")
            assert again.recv(1) == b"b"
        assert [e.action for e in net.timeline.events if e.name == "switch-path"] == [
            "start",
            "stop",
        ]


def test_drop_connections_loses_the_bytes_still_in_flight(server: ToxiproxyServer, sink: SinkServer) -> None:
    """A power cut's view of the link: what the sender already handed over but the shaped
    link had not delivered never arrives, and the link still takes new connections."""
    payload = b"x" * (4 * 1024 * 1024)
    with NetworkLink(sink.address, api_url=server.api_url) as net:
        net.apply_profile("cellular")  # 15 Mbit/s up: 4 MB takes > 2 s to drain
        port = port_of(net.listen)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(payload)  # all of it accepted into the proxy's queue
            wait_for(lambda: bool(sink.conns) and len(sink.conns[0]["data"]) > 0)  # type: ignore[arg-type]
            net.drop_connections()
            assert recv_until_eof(conn) == b""
        wait_for(lambda: sink.conns[0]["closed"] is True)
        assert 0 < len(sink.conns[0]["data"]) < len(payload)  # type: ignore[arg-type]
        assert can_connect(port)
        assert not [e for e in net.timeline.events if not e.name.startswith("profile")], "not a network fault"


def test_link_starts_its_own_server_and_cleans_up(echo: EchoServer) -> None:
    net = NetworkLink(echo.address)
    port = port_of(net.listen)
    assert can_connect(port)
    net.close()
    wait_for(lambda: not can_connect(port))


def test_unknown_profile_and_bad_api(link: NetworkLink) -> None:
    with pytest.raises(ConfigError, match="unknown"):
        link.apply_profile("carrier-pigeon")
    with pytest.raises(FaultInjectionError):
        NetworkLink("127.0.0.1:1", api_url="http://127.0.0.1:1")


def test_link_in_front_of_the_cloud_emulator(tmp_path: Path, server: ToxiproxyServer) -> None:
    """The real pairing: the emulator's TLS (SAN 127.0.0.1) through the proxy, and a cut."""
    from harness.cloud import runner

    emulator = runner.EmulatorProcess(tmp_path / "cloud").start()
    try:
        upstream = emulator.api_url.removeprefix("https://")
        with NetworkLink(upstream, api_url=server.api_url) as net:
            context = ssl.create_default_context(cafile=str(emulator.ca_bundle))
            assert (
                httpx.get(f"{net.device_api_url}/health", verify=context, timeout=10).status_code
                == 200
            )
            net.link_down()
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{net.device_api_url}/health", verify=context, timeout=5)
            net.link_up()
            assert (
                httpx.get(f"{net.device_api_url}/health", verify=context, timeout=10).status_code
                == 200
            )
    finally:
        emulator.stop()
