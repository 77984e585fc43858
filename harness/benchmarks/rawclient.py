"""The benchmarks' raw HTTP/1.1 client: one keep-alive TLS connection, bytes in, bytes out.

Why its own module: the cloud benchmark's load clients and the loopback-limit benchmark
(harness.benchmarks.limit) send with the same thin client, so the emulator's figures and
the limit are measured with the same costs on the sending side.
"""

from __future__ import annotations

import re
import socket
import ssl
from typing import Any

_QUERY = re.compile(r"\?[^\s'\"]*")
"""A URL's query string in an error text: part URLs carry their signature there."""


def _tls_context(ca_bundle: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_bundle)


def _describe(exc: Exception) -> str:
    """An error for the report, without query strings: part URLs carry their signature there."""
    return f"{type(exc).__name__}: {_QUERY.sub('?[redacted]', str(exc))[:300]}"


class _HttpError(Exception):
    """A non-2xx answer: the status and the start of the body, for the report."""


class _Connection:
    """One keep-alive HTTP/1.1 connection over TLS on a blocking socket.

    A device keeps its connection, so the TLS handshake is not part of a create. The client
    is this thin (bytes in, bytes out, `sendall` of the part body straight from the payload)
    so the load side costs little CPU and leaves the 2 cores to the emulator; blocking
    sockets release the GIL for the whole TLS write of a part.
    """

    def __init__(self, host: str, port: int, tls: ssl.SSLContext) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.sock: ssl.SSLSocket | None = None
        self.reader: Any = None

    def connect(self) -> None:
        self.close()
        raw = socket.create_connection((self.host, self.port), timeout=120)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)
        self.reader = self.sock.makefile("rb", buffering=1 << 16)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
        if self.sock is not None:
            self.sock.close()
        self.sock = self.reader = None

    def request(self, head: bytes, body: bytes | memoryview = b"") -> bytes:
        """Send one request; return the body of a 2xx answer, else raise _HttpError."""
        if self.sock is None:
            self.connect()
        assert self.sock is not None
        if len(body) < 65536:
            self.sock.sendall(head + bytes(body))
        else:
            self.sock.sendall(head)
            self.sock.sendall(body)
        status_line = self.reader.readline(65536)
        if not status_line:
            raise ConnectionError("the emulator closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        headers: dict[bytes, bytes] = {}
        while (line := self.reader.readline(65536)) not in (b"\r\n", b"\n", b""):
            key, _, value = line.partition(b":")
            headers[key.strip().lower()] = value.strip()
        if b"content-length" not in headers:
            self.close()
            raise _HttpError(f"HTTP {status} without Content-Length")
        data = self.reader.read(int(headers[b"content-length"]))
        if headers.get(b"connection") == b"close":
            self.close()
        if status >= 300:
            raise _HttpError(f"HTTP {status}: {data[:200].decode('utf-8', 'replace')}")
        return bytes(data)


def _head(method: str, target: str, host: str, length: int, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"host: {host}", f"content-length: {length}"]
    lines.extend(f"{k}: {v}" for k, v in headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
