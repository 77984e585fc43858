"""A request body that stalls is cut (issue #17 point 4: slow clients cut off in bounded time).

The emulator's deadline is BODY_IDLE_TIMEOUT (120 s, longer than any outage a scenario plays),
too long for a test; this runs the emulator's own protocol class (harness/cloud/limits.py)
under uvicorn over real TLS with the bench CA and a 1 s deadline, the app reading the body
as the emulator's handlers do. A body that keeps flowing, however slowly, is not cut.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
import uvloop
from starlette.types import Receive, Scope, Send

from harness.cloud.ca import CertPaths, ensure_certs
from harness.cloud.limits import GuardedHttpToolsProtocol
from tests.waiting import wait_until

IDLE = 1.0


class ShortDeadlines(GuardedHttpToolsProtocol):
    head_timeout = IDLE
    body_idle_timeout = IDLE


class Records(logging.Handler):
    """uvicorn's loggers do not propagate to the root logger caplog listens on."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class BodyReader:
    """Reads each body to its end and answers its length; remembers how each read ended."""

    def __init__(self) -> None:
        self.endings: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.endings.append("disconnect")
                return
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        self.endings.append("complete")
        body = str(size).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertPaths:
    return ensure_certs(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def server_log() -> Iterator[Records]:
    records = Records()
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(records)
    try:
        yield records
    finally:
        logger.removeHandler(records)


def closed_by_server(tls: ssl.SSLSocket) -> tuple[bool, float]:
    started = time.monotonic()
    try:
        closed = tls.recv(1024) == b""
    except (ConnectionError, ssl.SSLError):
        closed = True
    return closed, time.monotonic() - started


@pytest.fixture(params=["asyncio", "uvloop"])
def server(certs: CertPaths, request: pytest.FixtureRequest) -> Iterator[tuple[int, BodyReader]]:
    """The limits on both loops: the emulator runs on uvloop, whose SSL transport is its own."""
    loop_factory = uvloop.new_event_loop if request.param == "uvloop" else asyncio.new_event_loop
    app = BodyReader()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, ssl_certfile=str(certs.server_cert),
                            ssl_keyfile=str(certs.server_key), http=ShortDeadlines, lifespan="off",
                            log_level="warning", access_log=False)
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(uv.serve(sockets=[sock]), loop_factory=loop_factory),
                              daemon=True)
    thread.start()
    wait_until(lambda: uv.started or not thread.is_alive(), 30, "uvicorn to start")
    assert uv.started, "uvicorn stopped before it started"
    try:
        yield sock.getsockname()[1], app
    finally:
        uv.should_exit = True
        thread.join(10)
        sock.close()


def connect(port: int, certs: CertPaths) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(certs.ca_cert))
    raw = socket.create_connection(("127.0.0.1", port), timeout=IDLE + 20)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def head(length: int) -> bytes:
    return (f"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/octet-stream\r\n"
            f"content-length: {length}\r\n\r\n").encode()


def test_a_stalled_body_is_cut_and_the_app_sees_a_disconnect(
        server: tuple[int, BodyReader], certs: CertPaths, server_log: Records) -> None:
    port, app = server
    with connect(port, certs) as tls:
        tls.sendall(head(1000) + b"x" * 10)  # then nothing
        closed, waited = closed_by_server(tls)
    assert closed, "the stalled connection was answered instead of closed"
    assert waited < IDLE + 15, waited  # bounded: the 1 s deadline, with room for a loaded CI
    wait_until(lambda: app.endings, what="the app to see the body end")
    assert app.endings == ["disconnect"]
    assert any("its request body sent nothing for 1 s" in line for line in server_log.lines), server_log.lines


def test_an_unfinished_head_is_cut_and_the_log_says_how_much_came(
        server: tuple[int, BodyReader], certs: CertPaths, server_log: Records) -> None:
    """A connection the emulator cuts is logged as its doing, with what had arrived: a client
    that never sent its request reads differently from one whose request stopped halfway."""
    port, app = server
    partial = head(10)[:20]
    with connect(port, certs) as tls:
        tls.sendall(partial)  # then nothing
        closed, waited = closed_by_server(tls)
    assert closed and waited < IDLE + 15, waited
    wait_until(lambda: server_log.lines, what="the server to log the cut")
    assert any("no complete request head within 1 s" in line and f"({len(partial)} bytes of it received)" in line
               and "not handed to it: 0 bytes unread in the kernel, 0 bytes held in the TLS layer" in line
               for line in server_log.lines), server_log.lines
    assert app.endings == []


def test_a_slow_but_flowing_body_is_not_cut(server: tuple[int, BodyReader],
                                            certs: CertPaths) -> None:
    """Each byte re-arms the deadline: a body that takes 3x the deadline in all still lands."""
    port, app = server
    with connect(port, certs) as tls:
        tls.sendall(head(6))
        for _ in range(6):
            time.sleep(IDLE / 2)  # pacing the sender (a dribbling client), not waiting on a condition
            tls.sendall(b"y")
        answer = b""
        while not answer.endswith(b"\r\n\r\n6") and (chunk := tls.recv(1024)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"6"), answer
    assert app.endings == ["complete"]

