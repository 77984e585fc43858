"""DuplexTLSSocket: one TLS call at a time, no wait for the network under the lock.

The rules are checked on a stand-in for the TLS object (it records which calls overlap, which
a real race shows only now and then); the real stack is checked with websockets' client
against a loopback TLS 1.3 server, the way the status socket uses it.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import tempfile
import threading
from collections.abc import Buffer, Iterator
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from harness.cloud.ca import CertPaths, ensure_certs
from reference_device.duplex_tls import DuplexTLSConnection, DuplexTLSSocket
from tests.waiting import wait_until

WAIT_S = 10


class StandInTLS(socket.socket):
    """What DuplexTLSSocket calls on an ssl.SSLSocket, on one end of a socketpair.

    recv() can be held inside (OpenSSL busy with a record) or answer "want read" until the
    peer writes; every call notes whether another call was inside at the same time."""

    def __init__(self) -> None:
        mine, self.peer = socket.socketpair()
        super().__init__(mine.family, mine.type, fileno=mine.detach())
        self.inside = 0
        self.overlaps = 0
        self.hold_recv = threading.Event()
        self.recv_entered = threading.Event()
        self.wanted_read = threading.Event()
        self.sent = bytearray()
        self._count = threading.Lock()

    def _enter(self) -> None:
        with self._count:
            self.inside += 1
            if self.inside > 1:
                self.overlaps += 1

    def _leave(self) -> None:
        with self._count:
            self.inside -= 1

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self._enter()
        try:
            self.recv_entered.set()
            if not self.hold_recv.is_set():
                assert self.hold_recv.wait(WAIT_S), "the test never let recv() go"
            try:
                return super().recv(bufsize)
            except BlockingIOError:
                self.wanted_read.set()
                raise ssl.SSLWantReadError("want read") from None
        finally:
            self._leave()

    def send(self, data: Buffer, flags: int = 0) -> int:
        self._enter()
        try:
            self.sent += data
            return len(memoryview(data))
        finally:
            self._leave()

@pytest.fixture
def tls() -> Iterator[StandInTLS]:
    stand_in = StandInTLS()
    yield stand_in
    stand_in.close()
    stand_in.peer.close()


def _duplex(tls: StandInTLS) -> DuplexTLSSocket:
    duplex = DuplexTLSSocket(tls)  # type: ignore[arg-type]  # the calls it makes, on a socketpair
    duplex.wait_slice_s = 3 * WAIT_S  # a wait that held the lock would outlast every join below
    return duplex


def test_a_send_waits_while_a_read_is_inside_the_tls_session(tls: StandInTLS) -> None:
    duplex = _duplex(tls)
    tls.peer.sendall(b"ticket")
    reader = threading.Thread(target=duplex.recv, args=(1024,))
    reader.start()
    assert tls.recv_entered.wait(WAIT_S)
    writer = threading.Thread(target=duplex.sendall, args=(b"GET / HTTP/1.1\r\n\r\n",))
    writer.start()
    writer.join(0.3)  # the writer must still be outside; if the lock let it in, it has finished
    assert writer.is_alive() and not tls.sent, "send entered the TLS session during a read"
    tls.hold_recv.set()
    reader.join(WAIT_S)
    writer.join(WAIT_S)
    assert bytes(tls.sent) == b"GET / HTTP/1.1\r\n\r\n" and tls.overlaps == 0


def test_a_reader_waiting_for_data_does_not_hold_up_a_writer(tls: StandInTLS) -> None:
    duplex = _duplex(tls)
    tls.hold_recv.set()
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(duplex.recv(1024)))
    reader.start()
    assert tls.wanted_read.wait(WAIT_S)  # nothing to read yet: the reader now waits on the socket
    sender = threading.Thread(target=duplex.sendall, args=(b"request",))
    sender.start()
    sender.join(WAIT_S)
    assert not sender.is_alive() and bytes(tls.sent) == b"request"
    tls.peer.sendall(b"answer")
    reader.join(WAIT_S)
    assert got == [b"answer"] and tls.overlaps == 0


def test_a_read_times_out_as_a_blocking_socket_would(tls: StandInTLS) -> None:
    duplex = _duplex(tls)
    tls.hold_recv.set()
    duplex.settimeout(0.2)
    with pytest.raises(TimeoutError):
        duplex.recv(1024)
    duplex.setblocking(False)
    with pytest.raises(ssl.SSLWantReadError):
        duplex.recv(1024)


def _in_poll(thread_id: int) -> bool:
    """The thread sleeps inside poll() (the kernel's wait channel for poll and ppoll)."""
    return "poll" in Path(f"/proc/self/task/{thread_id}/wchan").read_text()


def test_close_ends_a_read_waiting_in_another_thread(tls: StandInTLS) -> None:
    """shutdown() before close(): a poll() on a descriptor another thread closes does not wake
    (on a TCP socket any later packet would end it, by luck; a socketpair has none)."""
    duplex = _duplex(tls)
    tls.hold_recv.set()
    ended = threading.Event()
    reader: list[int] = []

    def read() -> None:
        reader.append(threading.get_native_id())
        with contextlib.suppress(OSError, ValueError):  # a closed session may say so
            duplex.recv(1024)
        ended.set()

    threading.Thread(target=read, daemon=True).start()
    wait_until(lambda: tls.wanted_read.is_set() and _in_poll(reader[0]), WAIT_S, "the read to wait in poll()")
    duplex.close()
    assert ended.wait(WAIT_S), "the reader still waits on a closed connection"


# --- the real stack: websockets' client, TLS 1.3, a server that sends session tickets ---------
def _ticket_server() -> tuple[CertPaths, socket.socket]:
    """Loopback TLS 1.3 server: session tickets right after the handshake (OpenSSL's default),
    then a 403 to whatever upgrade request arrives. Without serialisation the websockets
    client lost about one request in a hundred against it."""
    certs = ensure_certs(Path(tempfile.mkdtemp(prefix="duplex-tls-")))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(certs.server_cert, certs.server_key)
    listener = socket.create_server(("127.0.0.1", 0))

    def answer(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(6 * WAIT_S)  # a client that goes quiet is held open past any test's wait
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    head = b""
                    while b"\r\n\r\n" not in head:
                        chunk = tls.recv(65536)
                        if not chunk:
                            return
                        head += chunk
                    tls.sendall(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            except OSError:
                return

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, name="ticket-server", daemon=True).start()
    return certs, listener


def test_every_upgrade_request_reaches_a_tls13_server() -> None:
    """The race the lock closes: the reader takes the tickets while the request is written.
    300 openings; the unserialised client lost 1-3 of them on this server (each then waited
    for the server's timeout)."""
    certs, server = _ticket_server()
    port = server.getsockname()[1]
    context = ssl.create_default_context(cafile=str(certs.ca_cert))
    refused = 0
    try:
        for _ in range(300):
            with pytest.raises(InvalidStatus) as info, connect(
                    f"wss://127.0.0.1:{port}/", ssl=context, open_timeout=WAIT_S,
                    create_connection=DuplexTLSConnection):
                pass
            refused += info.value.response.status_code == 403
    finally:
        server.close()
    assert refused == 300
