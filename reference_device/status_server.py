"""The device's local status and control port (CONTRACTS.md §3 and §4), loopback only.

`GET /status.json` is what the harness reads; `GET /` is the operator's page; `POST
/api/<action>` is the local control API the CLI and the page use. Requests are checked
here (clear 400s naming the problem) before the engine sees them, and the page is built
with every value escaped (file names are hostile input).

Browsers are kept out of the control API unless they are on the page itself: the Host
header must be a loopback name (DNS rebinding) and POSTs must be `application/json`
(a cross-site form or no-cors fetch cannot send that without a CORS preflight).

Loopback by default. Listening beyond loopback (a rig where the harness runs on another
host) needs a token: every request then carries `Authorization: Bearer <token>`, and the
Host may also be the address listened on. The token never comes from argv (cli.py reads
it from C2C_STATUS_TOKEN or a file).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import secrets
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

from reference_device.status_page import render_page, render_panel, render_qr_svg
from reference_device.status_view import redact

__all__ = [
    "ACTIONS",
    "BadRequest",
    "DeviceEngine",
    "StatusServer",
    "validate_action",
]

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
MAX_IDS = 10_000
MAX_ID_LEN = 512

# action -> keys it accepts (CONTRACTS.md §4)
ACTIONS: dict[str, frozenset[str]] = {
    "mode": frozenset({"mode"}),
    "upload": frozenset({"ids", "all"}),
    "cancel": frozenset({"ids", "all"}),
    "retry": frozenset({"ids", "all"}),
    "priority": frozenset({"id", "filetype", "priority"}),
    "pairing/start": frozenset(),
    "pairing/cancel": frozenset(),
    "logout": frozenset(),
    "shutter": frozenset({"count"}),  # tethered camera: fire the shutter N times
}
MAX_SHUTTER = 100


class DeviceEngine(Protocol):
    """What the faces need from the engine."""

    def snapshot(self) -> dict[str, Any]: ...
    def control(self, action: str, **args: Any) -> dict[str, Any]: ...


class BadRequest(ValueError):
    """A control request the device refuses; the message names the problem."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _selection(action: str, body: dict[str, Any]) -> dict[str, Any]:
    has_ids, has_all = "ids" in body, "all" in body
    if has_ids == has_all:
        raise BadRequest(f"{action}: give exactly one of 'ids' (a list of file ids) or 'all': true")
    if has_all:
        if body["all"] is not True:
            raise BadRequest(f"{action}: 'all' must be true")
        return {"all": True}
    ids = body["ids"]
    if not isinstance(ids, list) or not ids:
        raise BadRequest(f"{action}: 'ids' must be a non-empty list of file ids")
    if len(ids) > MAX_IDS:
        raise BadRequest(f"{action}: 'ids' has {len(ids)} entries, at most {MAX_IDS} allowed")
    for i in ids:
        if not isinstance(i, str) or not i or len(i) > MAX_ID_LEN:
            raise BadRequest(f"{action}: every id in 'ids' must be a non-empty string")
    return {"ids": list(dict.fromkeys(ids))}


def validate_action(action: str, body: Any) -> dict[str, Any]:
    """The engine.control arguments for `action`, or BadRequest naming what is wrong."""
    if action not in ACTIONS:
        raise BadRequest(
            f"unknown action {action!r}; known: {', '.join(sorted(ACTIONS))}", status=404
        )
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise BadRequest(f"{action}: the JSON body must be an object, not {type(body).__name__}")
    unknown = sorted(set(body) - ACTIONS[action])
    if unknown:
        raise BadRequest(f"{action}: unknown field(s) {', '.join(map(repr, unknown))}")
    if action == "mode":
        if body.get("mode") not in ("auto", "manual"):
            raise BadRequest("mode: 'mode' must be \"auto\" or \"manual\"")
        return {"mode": body["mode"]}
    if action in ("upload", "cancel", "retry"):
        return _selection(action, body)
    if action == "priority":
        prio = body.get("priority")
        if isinstance(prio, bool) or not isinstance(prio, int):
            raise BadRequest("priority: 'priority' must be an integer")
        if not -1_000_000 <= prio <= 1_000_000:
            raise BadRequest("priority: 'priority' is out of range (-1000000..1000000)")
        if ("id" in body) == ("filetype" in body):
            raise BadRequest("priority: give exactly one of 'id' (a file id) or 'filetype' (e.g. \".mov\")")
        if "id" in body:
            if not isinstance(body["id"], str) or not body["id"] or len(body["id"]) > MAX_ID_LEN:
                raise BadRequest("priority: 'id' must be a non-empty string")
            return {"id": body["id"], "priority": prio}
        ft = body["filetype"]
        if not isinstance(ft, str) or not ft.strip(".") or len(ft) > 32 or "/" in ft:
            raise BadRequest("priority: 'filetype' must be an extension like \".mov\"")
        ft = ft.strip().lower()
        return {"filetype": ft if ft.startswith(".") else "." + ft, "priority": prio}
    if action == "shutter":
        count = body.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SHUTTER:
            raise BadRequest(f"shutter: 'count' must be an integer from 1 to {MAX_SHUTTER}")
        return {"count": count}
    return {}


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "c2c-reference-device"
    sys_version = ""

    # -- plumbing -------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("status %s - " + format, self.client_address[0], *args)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            # Say so: a client that reuses the connection would find it closed under it.
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload, separators=(",", ":"), default=str).encode()
        self._send(status, body, "application/json")

    def _error(self, status: int, message: str) -> None:
        if self.command == "POST" and not getattr(self, "_body_read", False):
            self.close_connection = True  # the unread body must not become the next request
        self._json(status, {"ok": False, "error": message})

    def _host_ok(self) -> bool:
        host = self.headers.get("Host", "")
        name = urlsplit("//" + host).hostname or ""
        token = self.server.token
        if token is not None:
            given = self.headers.get("Authorization", "")
            if not (given[:7].lower() == "bearer "
                    and hmac.compare_digest(given[7:].strip().encode(), token.encode())):
                self._error(401, "this status port listens beyond loopback: send "
                                 "Authorization: Bearer <status token>")
                return False
        if not _is_loopback_host(name) and name != self.server.bind_name:
            self._error(403, f"Host {host!r} is not a loopback address; use 127.0.0.1")
            return False
        origin = self.headers.get("Origin")
        if origin and origin != "null":
            oname = urlsplit(origin).hostname or ""
            if not _is_loopback_host(oname):
                self._error(403, f"cross-site request from {origin!r} refused")
                return False
        return True

    def _snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = redact(self.server.engine.snapshot())
        return snap

    # -- GET ------------------------------------------------------------------------------
    def do_GET(self) -> None:
        if not self._host_ok():
            return
        path = urlsplit(self.path).path
        try:
            if path == "/status.json":
                self._json(200, self._snapshot())
            elif path in ("/", "/index.html"):
                nonce = self.server.nonce()
                page = render_page(self._snapshot(), nonce=nonce).encode()
                csp = (
                    f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
                    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'"
                )
                self._send(200, page, "text/html; charset=utf-8", {"Content-Security-Policy": csp})
            elif path == "/panel":
                self._send(200, render_panel(self._snapshot()).encode(), "text/html; charset=utf-8",
                           {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})
            elif path == "/qr.svg":
                svg = render_qr_svg(self._snapshot())
                if svg is None:
                    self._error(404, "no pairing link to show (device is not showing a code)")
                else:
                    self._send(200, svg.encode(), "image/svg+xml")
            elif path == "/favicon.ico":
                self._send(204, b"", "image/x-icon")
            elif path == "/health":
                self._json(200, {"ok": True})
            else:
                self._error(404, f"no such page {path!r}; try /status.json or /")
        except Exception as exc:  # the engine failed; the page must say so, not hang
            log.exception("status page failed")
            self._error(500, f"device status unavailable ({type(exc).__name__})")

    do_HEAD = do_GET

    # -- POST -----------------------------------------------------------------------------
    def _read_body(self) -> Any:
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise BadRequest(
                f"Content-Type must be application/json (got {ctype or 'none'!r})", status=415
            )
        if self.headers.get("Transfer-Encoding"):
            raise BadRequest("send the JSON body with a Content-Length, not chunked", status=411)
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise BadRequest("Content-Length is not a number") from None
        if length < 0:
            raise BadRequest("Content-Length is negative")
        if length > MAX_BODY:
            raise BadRequest(f"request body too large ({length} bytes, max {MAX_BODY})", status=413)
        raw = self.rfile.read(length) if length else b""
        self._body_read = True
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRequest(f"request body is not valid JSON: {exc}") from None

    def do_POST(self) -> None:
        self._body_read = False
        if not self._host_ok():
            return
        path = urlsplit(self.path).path
        if not path.startswith("/api/"):
            self._error(404, f"no such endpoint {path!r}; control actions are POST /api/<action>")
            return
        action = path[len("/api/"):].strip("/")
        try:
            body = self._read_body()
            args = validate_action(action, body)
        except BadRequest as exc:
            self._error(exc.status, str(exc))
            return
        try:
            result = self.server.engine.control(action, **args)
        except (ValueError, LookupError) as exc:
            # Unknown file id, action not possible in this state...: the user's problem.
            msg = exc.args[0] if exc.args else type(exc).__name__
            self._error(400 if isinstance(exc, ValueError) else 404, f"{action}: {msg}")
            return
        except Exception as exc:
            log.exception("control action %s failed", action)
            self._error(500, f"{action}: device failed ({type(exc).__name__})")
            return
        result = redact(result) if isinstance(result, dict) else {}
        if result.get("ok") is False:
            self._json(409, {"ok": False, "error": str(result.get("error") or f"{action} refused")})
            return
        self._json(200, {**result, "ok": True})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], engine: DeviceEngine,
                 token: str | None = None) -> None:
        self.engine = engine
        self.token = token
        self.bind_name = address[0].strip("[]").lower()
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)

    def nonce(self) -> str:
        return secrets.token_urlsafe(16)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer is not news; never print tracebacks to stderr.
        log.debug("status request from %s failed", client_address, exc_info=True)


class StatusServer:
    """The status/control HTTP server, in a background thread.

    >>> with StatusServer(engine, port=0) as srv:
    ...     httpx.get(srv.url + "/status.json")
    """

    def __init__(self, engine: DeviceEngine, *, host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None) -> None:
        if not _is_loopback_host(host) and not token:
            raise ValueError(f"status server host {host!r} is not loopback; it must stay local "
                             "unless a status token is configured")
        if token is not None and len(token) < 16:
            raise ValueError("a status token must be at least 16 characters")
        self._engine = engine
        self._token = token
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("status server is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self._address[0]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Bind (port 0 = any free port) and serve in a daemon thread."""
        if self._server is not None:
            return
        try:
            self._server = _Server(self._address, self._engine, self._token)
        except OSError as exc:
            raise OSError(
                exc.errno, f"cannot listen on {self._address[0]}:{self._address[1]}: {exc.strerror}"
            ) from None
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # how fast stop() returns
            name="status-server",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> StatusServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
