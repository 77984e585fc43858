"""Loopback port bridges between the host and a device's network namespace.

A device launched into a namespace serves its status page and local API on its own
127.0.0.1, which the bench (on the host) cannot reach; and it is handed the host's plain-HTTP
trap at the host's 127.0.0.1, which it cannot reach. A bridge relays one such local port
across, byte for byte, without the shaped link in between: these are the device's local
interfaces, not its path to the cloud. The cloud traffic itself never takes a bridge.

A socket belongs to the namespace it was created in, whichever thread later uses it, so a
bridge creates its namespace-side sockets in a thread that has entered the namespace
(`netns.in_namespace`) and relays from ordinary threads.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

from harness.faults.network.packet import netns

CHUNK = 64 * 1024
CONNECT_TIMEOUT_S = 5.0


class PortBridge:
    """Accepts on `listener` and relays each connection to a fresh `connect()` socket."""

    def __init__(self, listener: socket.socket, connect: Callable[[], socket.socket], name: str) -> None:
        self.name = name
        self._listener = listener
        self._connect = connect
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._closed = threading.Event()
        self._listener.settimeout(0.2)
        self._accepter = threading.Thread(target=self._accept, name=f"bridge-{name}", daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                target = self._connect()
            except OSError:
                client.close()  # nothing listens on the far side (yet): the caller sees a reset
                continue
            with self._lock:
                if self._closed.is_set():
                    client.close()
                    target.close()
                    return
                self._sockets.update((client, target))
            for source, sink in ((client, target), (target, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True,
                                 name=f"bridge-{self.name}-pump").start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        source.settimeout(None)
        try:
            while data := source.recv(CHUNK):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            self._forget(source)

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.close()

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._accepter.join(2)
        with self._lock:
            open_sockets, self._sockets = list(self._sockets), set()
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.close()


def into_namespace(namespace: str, port: int) -> PortBridge:
    """Host 127.0.0.1:`port` -> the namespace's 127.0.0.1:`port` (the device's status page)."""
    listener = socket.create_server(("127.0.0.1", port))

    def connect() -> socket.socket:
        def make() -> socket.socket:
            return socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT_S)
        sock: socket.socket = netns.in_namespace(namespace, make)
        return sock

    return PortBridge(listener, connect, f"in-{port}")


def out_of_namespace(namespace: str, port: int) -> PortBridge:
    """The namespace's 127.0.0.1:`port` -> host 127.0.0.1:`port` (a bench service it is given)."""
    def make() -> socket.socket:
        return socket.create_server(("127.0.0.1", port))
    listener: socket.socket = netns.in_namespace(namespace, make)

    def connect() -> socket.socket:
        return socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT_S)

    return PortBridge(listener, connect, f"out-{port}")
