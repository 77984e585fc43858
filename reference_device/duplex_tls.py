"""One TLS session read by one thread and written by another, made safe.

Why: OpenSSL forbids SSL_read and SSL_write on one SSL object at the same time, and CPython
3.12's ssl module does not serialise them. websockets' sync client does exactly that: its
reader thread sits in recv() from the moment the connection exists, while the caller sends the
upgrade request and later its frames. Under TLS 1.3 the reader takes the server's session
tickets in the same instant the caller writes the request; in one opening in 100 to 650
(measured on loopback) the request never reaches the wire, or the session is garbled. The
server then waits for a request and the client for an answer until one of them times out.
That was the emulator's WebSocket test flake (the emulator's log: 0 bytes of a request
arrived, none waiting in the kernel or in TLS), and it fits the device's earlier presence
stall, a server that "never answered the upgrade".

Here every TLS call on the session holds one lock, the socket underneath is non-blocking, and
every wait for the network happens outside the lock, so a reader waiting for data never holds
up a writer (nor the other way round).
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from websockets.client import ClientProtocol
from websockets.sync.client import ClientConnection


class DuplexTLSSocket:
    """The socket calls websockets' sync connection makes, on an ssl.SSLSocket, one at a time.

    The caller's timeout (settimeout) bounds each call as a blocking socket's would; the
    wrapped socket itself stays non-blocking. shutdown() and close() act on the TCP connection
    without touching the TLS object, so they also end a wait in another thread."""

    # A wait for the network lasts at most this long before the call is tried again: a write
    # that had to read (a TLS 1.2 renegotiation, a 1.3 key update) may have taken the bytes a
    # reader was waiting for.
    wait_slice_s = 1.0

    def __init__(self, tls: ssl.SSLSocket) -> None:
        self._tls = tls
        self._lock = threading.Lock()
        self._timeout: float | None = tls.gettimeout()
        tls.setblocking(False)

    # --- data --------------------------------------------------------------------------------
    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        return self._call(lambda: self._tls.recv(bufsize, flags))

    def send(self, data: bytes | bytearray | memoryview, flags: int = 0) -> int:
        return self._call(lambda: self._tls.send(data, flags))

    def sendall(self, data: bytes | bytearray | memoryview, flags: int = 0) -> None:
        with memoryview(data) as view, view.cast("B") as octets:
            sent = 0
            while sent < len(octets):
                sent += self.send(octets[sent:], flags)

    def _call[T](self, op: Callable[[], T]) -> T:
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while True:
            with self._lock:
                try:
                    return op()
                except ssl.SSLWantReadError:
                    if self._timeout == 0.0:
                        raise
                    events = select.POLLIN
                except ssl.SSLWantWriteError:
                    if self._timeout == 0.0:
                        raise
                    events = select.POLLOUT
            self._wait(events, deadline)

    def _wait(self, events: int, deadline: float | None) -> None:
        slice_s = self.wait_slice_s
        left = slice_s if deadline is None else min(slice_s, deadline - time.monotonic())
        if left <= 0:
            raise TimeoutError("timed out")
        poll = select.poll()
        poll.register(self._tls.fileno(), events)
        poll.poll(left * 1000)

    # --- the socket's state ------------------------------------------------------------------
    def settimeout(self, value: float | None) -> None:
        self._timeout = value

    def gettimeout(self) -> float | None:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def shutdown(self, how: int) -> None:
        # socket.socket's own shutdown: ssl.SSLSocket.shutdown drops the TLS object under a
        # reader in another thread, which would then read the server's records as plain bytes.
        socket.socket.shutdown(self._tls, how)

    def close(self) -> None:
        """Shut the TCP connection down first: that ends a poll() in another thread, which
        closing the descriptor alone does not."""
        with contextlib.suppress(OSError):
            self.shutdown(socket.SHUT_RDWR)
        with self._lock:
            self._tls.close()

    def fileno(self) -> int:
        return self._tls.fileno()

    def getsockname(self) -> Any:
        return self._tls.getsockname()

    def getpeername(self) -> Any:
        return self._tls.getpeername()

    @property
    def tls(self) -> ssl.SSLSocket:
        """The wrapped socket, for what it knows (version(), cipher(), getpeercert())."""
        return self._tls


class DuplexTLSConnection(ClientConnection):
    """websockets' sync client connection over a DuplexTLSSocket.

    Pass as `connect(..., create_connection=DuplexTLSConnection)`: websockets hands the
    connection its TLS socket before it starts the reader thread."""

    def __init__(self, sock: socket.socket, protocol: ClientProtocol, **kwargs: Any) -> None:
        if isinstance(sock, ssl.SSLSocket):
            sock = cast(socket.socket, DuplexTLSSocket(sock))  # the calls websockets makes
        super().__init__(sock, protocol, **kwargs)
