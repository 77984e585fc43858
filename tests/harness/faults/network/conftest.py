"""Fixtures: our Toxiproxy server in-process, a raw API client, and loopback TCP peers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from harness.faults.network.link import NetworkLink
from harness.faults.network.server import ToxiproxyServer
from harness.timeline import Timeline
from tests.harness.faults.network.tls_server import TlsServer
from tests.waiting import wait_until as wait_for  # noqa: F401 - re-exported to the tests


def port_of(listen: str) -> int:
    return int(listen.rpartition(":")[2])


def can_connect(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def recv_exact(sock: socket.socket, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def recv_until_eof(sock: socket.socket) -> bytes:
    buf = bytearray()
    while chunk := sock.recv(65536):
        buf += chunk
    return bytes(buf)


class EchoServer:
    """Threaded TCP echo server on loopback."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.accepted = 0
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            try:
                while data := conn.recv(262144):
                    conn.sendall(data)
            except OSError:
                pass

    def close(self) -> None:
        self._closed = True
        self.sock.close()


class SinkServer:
    """Accepts connections and records every byte per connection, with arrival times."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.conns: list[dict[str, object]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            record: dict[str, object] = {
                "data": bytearray(),
                "first": 0.0,
                "last": 0.0,
                "closed": False,
                "error": None,
            }
            self.conns.append(record)
            threading.Thread(target=self._read, args=(conn, record), daemon=True).start()

    @staticmethod
    def _read(conn: socket.socket, record: dict[str, object]) -> None:
        data = record["data"]
        assert isinstance(data, bytearray)
        with conn:
            try:
                while chunk := conn.recv(262144):
                    now = time.perf_counter()
                    if not data:
                        record["first"] = now
                    record["last"] = now
                    data += chunk
            except OSError as exc:
                record["error"] = exc
        record["closed"] = True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server() -> Iterator[ToxiproxyServer]:
    srv = ToxiproxyServer(seed=1234).start()
    yield srv
    srv.stop()


@pytest.fixture
def api(server: ToxiproxyServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.api_url, timeout=10) as client:
        yield client


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    srv = EchoServer()
    yield srv
    srv.close()


@pytest.fixture
def sink() -> Iterator[SinkServer]:
    srv = SinkServer()
    yield srv
    srv.close()


@pytest.fixture
def make_proxy(api: httpx.Client) -> Callable[..., int]:
    """Create a proxy to `upstream`; returns its port."""

    def make(upstream: str, name: str = "p", **extra: object) -> int:
        response = api.post(
            "/proxies", json={"name": name, "upstream": upstream, "listen": "127.0.0.1:0", **extra}
        )
        assert response.status_code == 201, response.text
        return port_of(response.json()["listen"])

    return make


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[TlsServer]:
    """A TLS server with the bench CA's certificate: the upstream a NetworkLink fronts."""
    srv = TlsServer(tmp_path)
    yield srv
    srv.close()


@pytest.fixture
def link(server: ToxiproxyServer, tls: TlsServer) -> Iterator[NetworkLink]:
    with NetworkLink(tls.address, api_url=server.api_url, timeline=Timeline()) as net:
        yield net
