"""The Toxiproxy v2.12.0 HTTP API on a small hand-written HTTP/1.1 server.

Hand-written rather than a framework so status codes, headers and bodies match Go's
net/http + gorilla/mux byte for byte: 404 `404 page not found` on unknown paths, empty 405
on a wrong method, text/plain error bodies, `X-Toxiproxy-Request-Id` on matched routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import uuid
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote, urlsplit

from harness.faults.network.registry import ApiError, ProxyRegistry

log = logging.getLogger("harness.faults.network.api")

VERSION = "2.12.0"
MAX_HEADER_BYTES = 1 << 20
MAX_BODY_BYTES = 16 << 20
IDLE_TIMEOUT = 60.0
READ_TIMEOUT = 15.0

TEXT = "text/plain; charset=utf-8"
JSON_TYPE = "application/json"

Response = tuple[int, list[tuple[str, str]], bytes]

ROUTES: list[tuple[tuple[str, ...], frozenset[str]]] = [
    (("version",), frozenset({"GET"})),
    (("metrics",), frozenset({"GET"})),
    (("reset",), frozenset({"POST"})),
    (("populate",), frozenset({"POST"})),
    (("proxies",), frozenset({"GET", "POST"})),
    (("proxies", "*"), frozenset({"GET", "POST", "PATCH", "DELETE"})),
    (("proxies", "*", "toxics"), frozenset({"GET", "POST"})),
    # bench extension (not in Toxiproxy): plain-HTTP requests the proxy trapped
    (("proxies", "*", "plain_http"), frozenset({"GET"})),
    (("proxies", "*", "toxics", "*"), frozenset({"GET", "POST", "PATCH", "DELETE"})),
]

REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def go_json(value: Any) -> bytes:
    """Compact JSON the way Go's encoder writes it (`<`, `>`, `&` escaped, float32 shortest)."""
    text = json.dumps(_go_floats(value), separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text.encode()


def _go_float(value: float) -> float | int:
    """Go writes float32 toxicity in its shortest form: 1 -> `1`, 0.2 -> `0.2`."""
    if value.is_integer() and abs(value) < 1e21:
        return int(value)
    f32 = struct.unpack("f", struct.pack("f", value))[0]
    for digits in range(1, 10):
        text = f"{f32:.{digits}g}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == f32:
            return float(text)
    return value


def _go_floats(value: Any) -> Any:
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, dict):
        return {k: _go_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_go_floats(v) for v in value]
    return value


def error_response(exc: ApiError) -> Response:
    body = {"error": exc.message, "status": exc.status, **exc.extra}
    return (
        exc.status,
        [("Content-Type", TEXT), ("X-Content-Type-Options", "nosniff")],
        go_json(body) + b"\n",
    )


def json_response(status: int, value: Any) -> Response:
    return status, [("Content-Type", JSON_TYPE)], go_json(value)


def match_route(path: str) -> tuple[frozenset[str], list[str]] | None:
    parts = path.split("/")
    if not path.startswith("/"):
        return None
    parts = parts[1:]
    for pattern, methods in ROUTES:
        if len(pattern) != len(parts):
            continue
        params: list[str] = []
        for want, got in zip(pattern, parts, strict=True):
            if want == "*":
                if not got:
                    break
                params.append(got)
            elif want != got:
                break
        else:
            return methods, params
    return None


class ApiServer:
    """Serves the control API for one `ProxyRegistry`."""

    def __init__(self, registry: ProxyRegistry) -> None:
        self.registry = registry
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._serve, host, port, limit=MAX_HEADER_BYTES)
        sockname = self._server.sockets[0].getsockname()
        return sockname[0], sockname[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._clients):
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT)
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                    return
                except asyncio.LimitOverrunError:
                    await self._write(
                        writer,
                        431,
                        [("Content-Type", TEXT)],
                        b"431 Request Header Fields Too Large",
                        close=True,
                    )
                    return
                parsed = self._parse_head(head)
                if parsed is None:
                    await self._write(
                        writer, 400, [("Content-Type", TEXT)], b"400 Bad Request", close=True
                    )
                    return
                method, target, version, headers = parsed
                if headers.get("expect", "").lower() == "100-continue":
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl waits 1 s otherwise
                try:
                    body = await asyncio.wait_for(self._read_body(reader, headers), READ_TIMEOUT)
                except (ValueError, asyncio.IncompleteReadError, TimeoutError):
                    await self._write(
                        writer, 400, [("Content-Type", TEXT)], b"400 Bad Request", close=True
                    )
                    return
                status, out_headers, out_body = await self.dispatch(method, target, headers, body)
                connection = headers.get("connection", "").lower()
                close = connection == "close" or (
                    version == "HTTP/1.0" and connection != "keep-alive"
                )
                await self._write(
                    writer, status, out_headers, out_body, close=close, head=method == "HEAD"
                )
                if close:
                    return
        except (ConnectionError, asyncio.CancelledError):
            return  # shutting down or the client went away
        finally:
            self._clients.discard(writer)
            writer.close()

    @staticmethod
    def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]] | None:
        try:
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ")
        except ValueError:
            return None
        if not version.startswith("HTTP/1."):
            return None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            key, sep, value = line.partition(":")
            if not sep:
                return None
            headers[key.strip().lower()] = value.strip()
        return method, target, version, headers

    @staticmethod
    async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parts: list[bytes] = []
            total = 0
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass
                    return b"".join(parts)
                total += size
                if total > MAX_BODY_BYTES:
                    raise ValueError("body too large")
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
        length = int(headers.get("content-length", "0") or "0")
        if length < 0 or length > MAX_BODY_BYTES:
            raise ValueError("bad content-length")
        return await reader.readexactly(length) if length else b""

    @staticmethod
    async def _write(
        writer: asyncio.StreamWriter,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        close: bool,
        head: bool = False,
    ) -> None:
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}"]
        lines.extend(f"{k}: {v}" for k, v in headers)
        lines.append(f"Date: {formatdate(usegmt=True)}")
        if status != 204:
            lines.append(f"Content-Length: {len(body)}")
        if close:
            lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if body and not head and status != 204:
            writer.write(body)
        with contextlib.suppress(ConnectionError):
            await writer.drain()

    async def dispatch(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> Response:
        path = unquote(urlsplit(target).path)
        route = match_route(path)
        if path == "/metrics" and not self.registry.metrics:
            route = None
        if route is None:
            return (
                404,
                [("Content-Type", TEXT), ("X-Content-Type-Options", "nosniff")],
                b"404 page not found\n",
            )
        methods, params = route
        if method not in methods:
            return 405, [], b""
        extra = [("X-Toxiproxy-Request-Id", uuid.uuid4().hex)]
        if headers.get("user-agent", "").startswith("Mozilla/"):
            return (
                403,
                [("Content-Type", TEXT), ("X-Content-Type-Options", "nosniff"), *extra],
                b"User agent not allowed\n",
            )
        try:
            status, out_headers, out_body = await self._handle(method, path, params, body)
        except ApiError as exc:
            status, out_headers, out_body = error_response(exc)
        except Exception as exc:  # a bug must answer 500, never kill the server
            log.exception("API handler failed")
            status, out_headers, out_body = error_response(
                ApiError(500, f"internal error: {type(exc).__name__}")
            )
        if method == "POST" and len(params) == 1 and path.count("/") == 2:
            log.warning("POST /proxies/{proxy} is deprecated, use PATCH")
        return status, [*out_headers, *extra], out_body

    @staticmethod
    def _decode(body: bytes, *, empty: Any = ...) -> Any:
        if not body.strip():
            if empty is not ...:
                return empty
            raise ApiError(400, "bad request body: EOF")
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else "invalid UTF-8"
            raise ApiError(400, f"bad request body: {detail}") from None

    async def _handle(self, method: str, path: str, params: list[str], body: bytes) -> Response:
        reg = self.registry
        head = path.split("/")[1]
        if head == "version":
            return (
                200,
                [("Content-Type", "application/json;charset=utf-8")],
                f'{{"version": "{VERSION}"}}\n'.encode(),
            )
        if head == "metrics":
            return (
                200,
                [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                reg.metrics_text().encode(),
            )
        if head == "reset":
            await reg.reset()
            return 204, [], b""
        if head == "populate":
            try:
                proxies = await reg.populate(self._decode(body))
            except ApiError as exc:
                exc.extra.setdefault("proxies", None)
                raise
            return json_response(201, {"proxies": [p.to_json() for p in proxies] or None})
        if len(params) == 0:
            if method == "GET":
                return json_response(200, reg.index())
            proxy = await reg.create(self._decode(body))
            return json_response(201, proxy.to_json())
        if len(params) == 1 and path.endswith("/plain_http"):
            return json_response(200, list(reg.get(params[0]).plain_http))
        if len(params) == 1 and not path.endswith("/toxics"):
            name = params[0]
            if method == "GET":
                return json_response(200, reg.get(name).to_json())
            if method == "DELETE":
                await reg.delete(name)
                return 204, [], b""
            reg.get(name)
            proxy = await reg.update(name, self._decode(body))
            return json_response(200, proxy.to_json())
        if len(params) == 1:
            name = params[0]
            if method == "GET":
                return json_response(200, [t.to_json() for t in reg.get(name).all_toxics()])
            reg.get(name)
            return json_response(200, reg.add_toxic(name, self._decode(body)).to_json())
        name, toxic = params
        if method == "GET":
            return json_response(200, reg.get_toxic(name, toxic).to_json())
        if method == "DELETE":
            reg.remove_toxic(name, toxic)
            return 204, [], b""
        reg.get_toxic(name, toxic)
        return json_response(200, reg.update_toxic(name, toxic, self._decode(body)).to_json())
