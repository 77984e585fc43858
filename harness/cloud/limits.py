"""uvicorn's httptools protocol with the limits it lacks: head size, head and body deadlines.

Why: uvicorn's only timer is the keep-alive one, cancelled by the first byte of the next
request, and httptools buffers headers without a cap. A client that dribbles a header a
byte at a time (slowloris), or sends megabytes of headers, would hold a connection and
memory forever. Here the request head must be complete within HEAD_TIMEOUT of its first
byte (or of the connection) and within MAX_HEAD_BYTES (else 431), and a request body must
not stall for BODY_IDLE_TIMEOUT. Everything runs on the event loop's timers, so other
clients are served meanwhile.
"""

from __future__ import annotations

import asyncio
import fcntl
import ssl
import struct
import termios
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from harness.cloud.security import BODY_IDLE_TIMEOUT, HEAD_TIMEOUT, MAX_HEAD_BYTES


class HeadTooLarge(Exception):
    """The request line and headers went past MAX_HEAD_BYTES."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol + 431 over MAX_HEAD_BYTES + head deadline + body idle deadline."""

    head_timeout = HEAD_TIMEOUT
    body_idle_timeout = BODY_IDLE_TIMEOUT
    max_head_bytes = MAX_HEAD_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._in_head = True  # between requests or inside a request line + headers
        self._in_body = False
        self._head_bytes = 0  # raw bytes received while the head was incomplete
        self._parsed_head = 0  # bytes of the URL and headers the parser handed us

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.head_timeout)  # a connection that never sends a request is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._in_head:
            self._head_bytes += len(data)
        elif self._in_body:
            self._arm(self.body_idle_timeout)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, HeadTooLarge):
                self._refuse_head()
                return
            raise
        except httptools.HttpParserError:
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self._disarm()
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._in_head and self._head_bytes > self.max_head_bytes:
            self._refuse_head()  # an unfinished head already too big (httptools buffers it)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._in_body, self._parsed_head = True, False, 0
        self._arm(self.head_timeout)  # from the request's first byte

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head, self._in_body = False, True
        self._arm(self.body_idle_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head, self._in_body, self._head_bytes = True, False, 0
        self._disarm()  # uvicorn's keep-alive timer takes over once the answer is sent
        super().on_message_complete()

    def _count(self, n: int) -> None:
        self._parsed_head += n
        if self._parsed_head > self.max_head_bytes:
            raise HeadTooLarge

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        """Deadline passed: close the connection (a request in flight sees a disconnect).

        Logged, with what had arrived: a client cut off by the emulator (a device, or a test's
        own client) must be told apart from one the network or the client itself gave up on."""
        self._deadline = None
        if self.transport.is_closing():
            return
        peer = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        if self._in_head:  # the head deadline is the one armed while the head is incomplete
            self.logger.warning("closed the connection from %s: no complete request head within %.0f s "
                                "(%d bytes of it received); not handed to it: %s", peer, self.head_timeout,
                                self._head_bytes, self._undelivered())
        else:
            self.logger.warning("closed the connection from %s: its request body sent nothing for %.0f s",
                                peer, self.body_idle_timeout)
        self.transport.close()

    def _undelivered(self) -> str:
        """Bytes of this connection that had arrived but never reached the protocol: unread in the
        kernel's socket buffer (the loop did not read them), or decrypted by TLS and kept there.
        Either one means a request the emulator cut off was really waiting. (Reading the TLS
        layer consumes them: only for a connection about to be closed.)"""
        found = []
        sock = self.transport.get_extra_info("socket")
        try:
            raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
            found.append(f"{struct.unpack('i', raw)[0]} bytes unread in the kernel")
        except (AttributeError, OSError, ValueError):
            found.append("kernel buffer unknown")
        tls = self.transport.get_extra_info("ssl_object")
        if isinstance(tls, ssl.SSLObject):
            try:
                found.append(f"{len(tls.read(1 << 16))} bytes held in the TLS layer")
            except ssl.SSLWantReadError:
                found.append("0 bytes held in the TLS layer")
            except ssl.SSLError as exc:
                found.append(f"TLS layer unreadable ({exc.__class__.__name__})")
        return ", ".join(found)

    def _refuse_head(self) -> None:
        self._disarm()
        msg = b"request header fields too large"
        self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                             b"content-type: text/plain; charset=utf-8\r\n"
                             b"content-length: " + str(len(msg)).encode() + b"\r\n"
                             b"connection: close\r\n\r\n" + msg)
        self.transport.close()
