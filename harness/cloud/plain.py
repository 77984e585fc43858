"""Plain-HTTP listener: never serves the API, records every attempt (evidence for HTTPS-only)."""

from __future__ import annotations

import asyncio
import json

from harness.cloud.core import CloudCore
from harness.cloud.middleware import redact_headers, redact_query

MAX_HEAD = 64 * 1024
BODY = b"HTTPS required: this cloud does not serve plain HTTP. This attempt was recorded.\n"


def record_attempt(core: CloudCore, head: bytes, client: str | None) -> None:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ") if lines else []
    method = parts[0][:16] if parts else ""
    target = parts[1] if len(parts) > 1 else ""
    path, _, query = target.partition("?")
    redacted = redact_query(query)
    raw_headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            raw_headers.append((name.strip().encode("latin-1"), value.strip().encode("latin-1")))
    core.store.run(
        "INSERT INTO plain_http (t, method, path, headers, client) VALUES (?,?,?,?,?)",
        core.now(), method, (path + ("?" + redacted if redacted else ""))[:2048],
        json.dumps(redact_headers(raw_headers)), client,
    )


async def handle(core: CloudCore, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
    peer = writer.get_extra_info("peername")
    client = f"{peer[0]}:{peer[1]}" if peer else None
    head = b""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    except asyncio.LimitOverrunError:
        head = await reader.read(MAX_HEAD)
    except (asyncio.IncompleteReadError, TimeoutError, ConnectionError) as exc:
        head = getattr(exc, "partial", b"") or b""
    try:
        record_attempt(core, head, client)
        await core.store.durable()
        writer.write(
            b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: " + str(len(BODY)).encode() + b"\r\nConnection: close\r\n\r\n"
            + BODY
        )
        await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def start_plain_listener(core: CloudCore, host: str, port: int) -> asyncio.Server:
    return await asyncio.start_server(
        lambda r, w: handle(core, r, w), host, port, limit=MAX_HEAD
    )
