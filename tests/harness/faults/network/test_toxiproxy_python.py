"""Level A compatibility: toxiproxy-python 0.1.1 drives our server unmodified."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import NotFound, ProxyExists

from harness.faults.network.server import ToxiproxyServer
from tests.harness.faults.network.conftest import EchoServer, can_connect, port_of, recv_exact


@pytest.fixture
def toxi(server: ToxiproxyServer) -> Iterator[Toxiproxy]:
    """toxiproxy-python keeps host/port in class attributes: point them at this test's server."""
    saved = (APIConsumer.host, APIConsumer.port)
    client = Toxiproxy()
    host, _, port = server.api_url.removeprefix("http://").rpartition(":")
    client.update_api_consumer(host, int(port))
    yield client
    APIConsumer.host, APIConsumer.port = saved


def test_running_version_and_empty(toxi: Toxiproxy) -> None:
    assert toxi.running() is True
    assert toxi.version() == b'{"version": "2.12.0"}\n'
    assert toxi.proxies() == {}


def test_create_list_destroy(toxi: Toxiproxy, echo: EchoServer) -> None:
    proxy = toxi.create(upstream=echo.address, name="cam")
    assert proxy.name == "cam" and proxy.enabled is True
    assert proxy.listen.startswith("127.0.0.1:")
    with pytest.raises(ProxyExists):
        toxi.create(upstream=echo.address, name="cam")
    assert set(toxi.proxies()) == {"cam"}
    assert toxi.get_proxy("cam").listen == proxy.listen
    with socket.create_connection(("127.0.0.1", port_of(proxy.listen)), timeout=5) as conn:
        conn.sendall(b"ping")
        assert recv_exact(conn, 4) == b"ping"
    assert toxi.destroy(proxy) is True
    assert toxi.proxies() == {}


def test_toxics_through_client(toxi: Toxiproxy, echo: EchoServer) -> None:
    proxy = toxi.create(upstream=echo.address, name="t")
    assert proxy.add_toxic(type="latency", attributes={"latency": 100, "jitter": 5}) is None
    proxy.add_toxic(
        type="bandwidth", stream="upstream", name="bw", toxicity=0.5, attributes={"rate": 1000}
    )
    toxics = proxy.toxics()
    assert set(toxics) == {"latency_downstream", "bw"}
    assert toxics["bw"].stream == "upstream" and toxics["bw"].toxicity == 0.5
    assert toxics["latency_downstream"].attributes == {"latency": 100, "jitter": 5}
    assert proxy.get_toxic("bw").type == "bandwidth"
    proxy.destroy_toxic("bw")
    assert proxy.get_toxic("bw") is None
    with pytest.raises(NotFound):
        proxy.destroy_toxic("bw")


def test_disable_enable_and_down(toxi: Toxiproxy, echo: EchoServer) -> None:
    proxy = toxi.create(upstream=echo.address, name="d")
    port = port_of(proxy.listen)
    with proxy.down():
        assert proxy.enabled is False
        assert not can_connect(port)
    assert proxy.enabled is True
    assert can_connect(port)


def test_populate_and_reset(toxi: Toxiproxy, echo: EchoServer) -> None:
    made = toxi.populate([{"name": "a", "upstream": echo.address, "listen": "127.0.0.1:0"}])
    assert [p.name for p in made] == ["a"]
    proxy = toxi.get_proxy("a")
    proxy.add_toxic(type="timeout", attributes={"timeout": 0})
    proxy.disable()
    assert toxi.reset() is True
    again = toxi.get_proxy("a")
    assert again.enabled is True and again.toxics() == {}
    toxi.destroy_all()
    assert toxi.proxies() == {}
