"""The data plane: one TCP listener per proxy, two one-way links per connection.

A link reads big chunks from its source and, while its direction has no toxics, writes them
straight to the destination (the fast path). With toxics, chunks are stamped and queued
for a writer task that pushes each one through the chain in order, so latency shifts a
stream instead of slowing it. When a link ends, both sockets are closed (no half-close),
like Toxiproxy.

Toxicity is drawn per link when it first sees a toxic and again whenever that toxic is
updated (Go also redraws neighbours when the chain changes; we keep their draw).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import socket
import struct
import time
from collections import deque
from collections.abc import Callable

from harness.faults.network.listen import ListenError, open_listener, split_host_port
from harness.faults.network.toxics import (
    DIRECTIONS,
    Chunk,
    CloseLink,
    Toxic,
    ToxicRun,
    run_toxic,
    timeout_deadline,
)

log = logging.getLogger("harness.faults.network")

READ_SIZE = 256 * 1024
STREAM_LIMIT = 1024 * 1024
MAX_QUEUED_BYTES = 16 * 1024 * 1024
MAX_QUEUED_CHUNKS = 1024
DIAL_TIMEOUT = 10.0
# The plain-HTTP trap: a client connection whose first bytes are an HTTP request line, not
# a TLS record (0x16 handshake), is a device speaking http:// to the API's own host:port
# (C2C-SEC-01). It is recorded and answered 403, never forwarded; TLS passes untouched.
PLAIN_HTTP = re.compile(rb"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|TRACE|CONNECT|PRI) (\S{1,2048})")
MAX_PLAIN_RECORDS = 1000
PLAIN_ANSWER = (b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 16\r\n"
                b"Connection: close\r\n\r\nHTTPS required.\n")


def plain_http_request(first: bytes) -> tuple[str, str] | None:
    """(method, path without query) when `first` opens a plain-text HTTP request, else None."""
    if not first or first[0] == 0x16:
        return None
    m = PLAIN_HTTP.match(first)
    if m is None:
        return None
    target = m.group(2).decode("latin-1")
    if "://" in target:  # absolute form (a proxy-style request): keep only the path
        target = "/" + target.split("://", 1)[1].partition("/")[2]
    return m.group(1).decode("ascii"), target.split("?", 1)[0][:512]


def set_rst_on_close(writer: asyncio.StreamWriter) -> None:
    """SO_LINGER (on, 0): the next close sends RST instead of FIN."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class Link:
    """One direction of one connection: source reader -> toxic chain -> destination writer."""

    def __init__(
        self,
        conn: Connection,
        direction: str,
        source: asyncio.StreamReader,
        dest: asyncio.StreamWriter,
    ) -> None:
        self.conn = conn
        self.direction = direction
        self.source = source
        self.dest = dest
        self.rng = conn.proxy.rng
        self.runs: dict[int, tuple[Toxic, ToxicRun]] = {}
        self._queue: deque[Chunk] = deque()
        self._queued_bytes = 0
        self._items = asyncio.Event()
        self._space = asyncio.Event()
        self._changed = asyncio.Event()
        self._writer_idle = True
        self.received = 0  # bytes read from the source on this link
        self._totals = conn.proxy.byte_totals[direction]  # [received, sent] for /metrics

    # --- LinkOps for toxics ---------------------------------------------------------
    def now(self) -> float:
        # not loop.time(): uvloop's is libuv's cached millisecond clock, which let a latency
        # toxic deliver up to a millisecond early (a 90 ms floor measured as 89.7 ms)
        return time.monotonic()

    async def sleep(self, seconds: float, toxic: Toxic) -> None:
        deadline = self.now() + seconds
        while True:
            remaining = deadline - self.now()
            if remaining <= 0:
                return
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                continue  # the loop's timers are millisecond-grained: check the deadline again
            if toxic not in self.conn.proxy.toxics[self.direction]:
                return  # removed: whatever it held goes on now

    # --- chain ------------------------------------------------------------------------
    def poke(self) -> None:
        """The chain changed: wake sleeping toxics and the writer."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        self._items.set()

    def active_chain(self) -> list[tuple[Toxic, ToxicRun]]:
        chain: list[tuple[Toxic, ToxicRun]] = []
        live = self.conn.proxy.toxics[self.direction]
        for toxic in live:
            entry = self.runs.get(id(toxic))
            if entry is None or entry[0] is not toxic:
                run = ToxicRun(
                    version=toxic.version,
                    active=self.rng.random() < toxic.toxicity,
                    armed_at=self.now(),
                )
                self.runs[id(toxic)] = (toxic, run)
            else:
                run = entry[1]
                if run.version != toxic.version:
                    run.version = toxic.version
                    run.active = self.rng.random() < toxic.toxicity
                    run.armed_at = self.now()
            if run.active:
                chain.append((toxic, run))
        live_ids = {id(t) for t in live}
        for key in [k for k in self.runs if k not in live_ids]:
            del self.runs[key]
        return chain

    def holds(self, toxic: Toxic) -> bool:
        entry = self.runs.get(id(toxic))
        return entry is not None and entry[0] is toxic and entry[1].active

    # --- tasks ------------------------------------------------------------------------
    async def read_loop(self) -> None:
        source, dest = self.source, self.dest
        proxy_toxics = self.conn.proxy.toxics[self.direction]
        while True:
            try:
                data = await source.read(READ_SIZE)
            except (ConnectionError, OSError):
                data = b""
            if not data:
                self._put(Chunk(b"", self.now(), eof=True))
                return
            if self.received == 0 and self.direction == "upstream" and self.conn.trap_plain_http(data):
                return
            self.received += len(data)
            self._totals[0] += len(data)
            if not proxy_toxics and self._writer_idle and not self._queue:
                dest.write(data)  # fast path: no toxics in this direction
                self._totals[1] += len(data)
                if dest.transport.get_write_buffer_size() > STREAM_LIMIT:
                    try:
                        await dest.drain()
                    except (ConnectionError, OSError):
                        self.conn.close()
                        return
                continue
            self._put(Chunk(data, self.now()))
            while self._queued_bytes > MAX_QUEUED_BYTES or len(self._queue) > MAX_QUEUED_CHUNKS:
                self._space.clear()
                await self._space.wait()

    def _put(self, chunk: Chunk) -> None:
        self._queue.append(chunk)
        self._queued_bytes += len(chunk.data)
        self._items.set()

    async def write_loop(self) -> None:
        try:
            while True:
                chain = self.active_chain()
                deadlines = [d for t, r in chain if (d := timeout_deadline(t, r)) is not None]
                if not self._queue:
                    self._items.clear()
                    if deadlines:
                        wait = min(deadlines) - self.now()
                        if wait <= 0:
                            self.conn.close()
                            return
                        try:
                            await asyncio.wait_for(self._items.wait(), wait)
                        except TimeoutError:
                            continue
                    else:
                        await self._items.wait()
                    continue
                chunk = self._queue.popleft()
                self._queued_bytes -= len(chunk.data)
                self._space.set()
                self._writer_idle = False
                try:
                    await self._push(chain, 0, chunk)
                finally:
                    self._writer_idle = True
        except CloseLink as stop:
            self.conn.close(rst=stop.rst)
        except (ConnectionError, OSError):
            self.conn.close()

    async def _push(self, chain: list[tuple[Toxic, ToxicRun]], index: int, item: Chunk) -> None:
        if index == len(chain):
            if item.eof:
                raise CloseLink()  # source ended: close both sockets, like Go
            self.dest.write(item.data)
            self._totals[1] += len(item.data)
            await self.dest.drain()
            return
        toxic, run = chain[index]

        async def emit(next_item: Chunk) -> None:
            await self._push(chain, index + 1, next_item)

        await run_toxic(toxic, run, item, emit, self)


class Connection:
    """A client connection and its upstream connection, joined by two links."""

    def __init__(
        self,
        proxy: Proxy,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.proxy = proxy
        self.client_writer = client[1]
        self.upstream_writer = upstream[1]
        self.links = {
            "upstream": Link(self, "upstream", client[0], upstream[1]),
            "downstream": Link(self, "downstream", upstream[0], client[1]),
        }
        self.tasks: list[asyncio.Task[None]] = []
        self.closed = False
        sock = self.client_writer.get_extra_info("peername")
        self.client = f"{sock[0]}:{sock[1]}" if isinstance(sock, tuple) and len(sock) >= 2 else None

    def trap_plain_http(self, first: bytes) -> bool:
        """Record and refuse a plain-HTTP request (the client's first bytes); False for anything else."""
        request = plain_http_request(first)
        if request is None:
            return False
        self.proxy.plain_http.append({"t": time.time(), "method": request[0], "path": request[1],
                                      "client": self.client, "listen": self.proxy.listen})
        del self.proxy.plain_http[:-MAX_PLAIN_RECORDS]
        log.warning("proxy %s: plain HTTP %s %s from %s refused", self.proxy.name, request[0],
                    request[1], self.client)
        self.client_writer.write(PLAIN_ANSWER)
        writer = self.client_writer

        async def close_after_answer() -> None:
            with contextlib.suppress(ConnectionError, OSError):
                await writer.drain()
            self.close()
        self.tasks.append(asyncio.ensure_future(close_after_answer()))
        return True

    def start(self) -> None:
        for link in self.links.values():
            self.tasks.append(asyncio.ensure_future(link.read_loop()))
            self.tasks.append(asyncio.ensure_future(link.write_loop()))

    def close(self, rst: bool = False) -> None:
        """Close both sockets (FIN, or RST when `rst`) and stop the link tasks."""
        if self.closed:
            return
        self.closed = True
        self.proxy.connections.discard(self)
        for writer in (self.client_writer, self.upstream_writer):
            if rst:
                set_rst_on_close(writer)
                writer.transport.abort()
            else:
                writer.close()
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()


class Proxy:
    """A named proxy: listen address, upstream, enabled flag and its toxics per direction."""

    def __init__(self, name: str, listen: str, upstream: str, rng: random.Random) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.rng = rng
        self.toxics: dict[str, list[Toxic]] = {d: [] for d in DIRECTIONS}
        self.connections: set[Connection] = set()
        self.byte_totals: dict[str, list[int]] = {d: [0, 0] for d in DIRECTIONS}
        self.plain_http: list[dict[str, object]] = []  # trapped plain-HTTP requests (bench extension)
        self._server: asyncio.Server | None = None
        self._held: socket.socket | None = None  # a disabled proxy's port, bound and not listening

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "Logger": {},
            "toxics": [t.to_json() for t in self.all_toxics()],
        }

    def all_toxics(self) -> list[Toxic]:
        return [*self.toxics["upstream"], *self.toxics["downstream"]]

    def find_toxic(self, name: str) -> Toxic | None:
        return next((t for t in self.all_toxics() if t.name == name), None)

    async def start(self) -> None:
        """Listen on the stored address; `listen` becomes the bound address. Raises ListenError."""
        if self.enabled:
            return
        if self._held is not None:  # the port kept while disabled: listen on it again
            sock, self._held = self._held, None
            sock.listen(1024)
            bound = self.listen
        else:
            sock, bound = open_listener(self.listen)
        self._server = await asyncio.start_server(self._accept, sock=sock, limit=STREAM_LIMIT)
        self.listen = bound
        self.enabled = True
        log.info("proxy %s listening on %s -> %s", self.name, self.listen, self.upstream)

    async def stop(self) -> None:
        """Stop listening (new connects are refused) and close every live connection.

        The port stays held (bound, not listening) until the proxy is enabled again or deleted:
        on a busy machine another process would otherwise take it while the link is down.
        """
        if self._server is not None:
            self._server.close()  # closes the listening socket at once: re-bind in the same breath
            self._server = None
            if self._held is None:
                with contextlib.suppress(ListenError):
                    self._held, _ = open_listener(self.listen, listen=False)
        self.enabled = False
        for conn in list(self.connections):
            conn.close()

    def release(self) -> None:
        """Give up the held port (the proxy is deleted or moves to another address)."""
        if self._held is not None:
            self._held.close()
            self._held = None

    def chain_changed(self, direction: str, on_each: Callable[[Link], None] | None = None) -> None:
        for conn in list(self.connections):
            link = conn.links[direction]
            if on_each is not None:
                on_each(link)
            link.poke()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            host, port = split_host_port(self.upstream)
            host = host or "127.0.0.1"  # Go dials ":P" as the local host
            up = await asyncio.wait_for(
                asyncio.open_connection(host, int(port), limit=STREAM_LIMIT), DIAL_TIMEOUT
            )
        except (OSError, ValueError, TimeoutError) as exc:
            log.warning("proxy %s: upstream %s unreachable: %s", self.name, self.upstream, exc)
            writer.close()
            return
        if not self.enabled:
            up[1].close()
            writer.close()
            return
        conn = Connection(self, (reader, writer), up)
        self.connections.add(conn)
        conn.start()
