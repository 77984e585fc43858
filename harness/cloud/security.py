"""The control plane's lock: bench token, operator sessions, Host/Origin guards, input limits.

Why one guard in front of everything: the control API can approve codes into any project,
revoke devices, move the clock and read stored media, so a route that forgets its check
would be a hole. `BenchGuard` sits in front of the whole app and decides by path prefix,
so a new `/_bench/v1` route is locked the moment it exists (tests/security proves it from
the OpenAPI document).

Credentials, in order:
- `Authorization: Bearer <bench token>`: the harness (`CloudControl`) and `c2c-cloud
  approve`. A fresh random token each emulator run, in `DATA/bench-token` (0600); the
  ready file names the file, never the value.
- the operator's browser: a session cookie (`__Host-`, HttpOnly, Secure, SameSite=Strict)
  made by POSTing the bench token once to `/_bench/session` from the emulator's own login
  page. A state-changing request on a cookie must also come from the emulator's own origin
  (`Origin`), carry the session's CSRF token (`X-C2C-CSRF`) and, when it has a body, be
  `application/json`: a page on another origin (even on the same host, which is the same
  *site*) cannot forge one.

Pages and the control API also refuse a Host that is not a name this emulator serves (DNS
rebinding). Device traffic (/v2, /s3, the socket) is not touched by the auth part: it has
its own OAuth tokens and presigned URLs, and reaches us through proxies under other names.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harness.cloud.responses import detailed

TOKEN_FILE_NAME = "bench-token"
CONTROL_PREFIX = "/_bench"
PUBLIC_CONTROL_PATHS = frozenset({"/_bench/openapi.json"})  # a schema, no data
SESSION_PATH = "/_bench/session"
PAGE_PATHS = ("/", "/pair", "/projects", "/docs", "/login")
CSRF_HEADER = "x-c2c-csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})

# --- limits (README "Security"; server.py hands them to uvicorn) -------------------------
MAX_HEAD_BYTES = 32 * 1024
"""Request line + headers; more is answered 431 and the connection closed."""
MAX_JSON_BODY = 1024 * 1024
"""Bodies of the device API (/v2), the control API and pages; more is 413. Part PUTs are
bounded by their signed part size instead (s3.py: 400 EntityTooLarge, streamed to disk)."""
HEAD_TIMEOUT = 20.0
"""Seconds from a connection's (or a request's) first byte until its headers are complete."""
BODY_IDLE_TIMEOUT = 120.0
"""Seconds a request body may stall without a byte before the connection is closed;
longer than any network outage a scenario plays, so only a dead or hostile peer hits it."""
SESSION_LIFETIME = 12 * 3600.0


# --- the bench token -------------------------------------------------------------------------
def write_secret(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600 from the first byte (never readable by others)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def issue_token(data_dir: Path) -> tuple[str, Path]:
    """A new random bench token for this run, written to DATA/bench-token (0600)."""
    token = secrets.token_urlsafe(32)
    path = Path(data_dir) / TOKEN_FILE_NAME
    write_secret(path, token + "\n")
    return token, path


def read_token(path: Path) -> str:
    """The bench token from its file (what CloudControl and `c2c-cloud approve` send)."""
    return Path(path).read_text(encoding="ascii").strip()


def token_matches(given: str, token: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


# --- operator sessions ------------------------------------------------------------------------
@dataclass
class Session:
    csrf: str
    expires: float


@dataclass
class SessionStore:
    """Browser sessions, in memory only: a restart of the emulator asks the operator again."""

    sessions: dict[str, Session] = field(default_factory=dict)

    def create(self) -> tuple[str, Session]:
        now = time.monotonic()
        for key in [k for k, s in self.sessions.items() if s.expires < now]:
            del self.sessions[key]
        sid = secrets.token_urlsafe(32)
        session = Session(secrets.token_urlsafe(32), now + SESSION_LIFETIME)
        self.sessions[sid] = session
        return sid, session

    def get(self, sid: str | None) -> Session | None:
        session = self.sessions.get(sid or "")
        if session is None or session.expires < time.monotonic():
            return None
        return session

    def drop(self, sid: str | None) -> None:
        self.sessions.pop(sid or "", None)


def cookie_name(scope: Scope) -> str:
    """One cookie per emulator port: cookies ignore ports, two emulators on one host must not clash."""
    server = scope.get("server") or ("", 0)
    return f"__Host-c2c-session-{server[1]}"


def cookies_of(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                name, _, val = part.strip().partition("=")
                out.setdefault(name, val)
    return out


def session_of(scope: Scope, sessions: SessionStore) -> tuple[str | None, Session | None]:
    sid = cookies_of(scope).get(cookie_name(scope))
    return sid, sessions.get(sid)


# --- host names ---------------------------------------------------------------------------
def host_name(value: str) -> str:
    """The name part of a Host header (no port, no IPv6 brackets), lower-cased."""
    try:
        return (urlsplit("//" + value).hostname or "").lower()
    except ValueError:
        return ""


def served_names(bind_host: str, extra: tuple[str, ...] = ()) -> frozenset[str]:
    """Loopback names (the certificate's), the bound address unless a wildcard, and `extra`."""
    names = set(LOOPBACK_NAMES) | {n.lower().strip("[]") for n in extra if n}
    try:
        if not ipaddress.ip_address(bind_host).is_unspecified:
            names.add(bind_host.lower())
    except ValueError:
        names.add(bind_host.lower())
    return frozenset(names)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


def is_page_path(path: str) -> bool:
    return path in PAGE_PATHS or path.startswith("/projects/")


# --- the guard ------------------------------------------------------------------------------
class BenchGuard:
    """One ASGI guard for the control plane and the pages, plus the body-size limit for all.

    Answers: 421 Host not served, 401 no credential, 403 cross-origin or missing CSRF token,
    415 a body that is not JSON, 413 a body over MAX_JSON_BODY (part PUTs excepted).
    """

    def __init__(self, app: ASGIApp, token: str, names: frozenset[str],
                 sessions: SessionStore | None = None) -> None:
        self.app = app
        self.token = token
        self.names = names
        self.sessions = sessions if sessions is not None else SessionStore()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        control = path.startswith(CONTROL_PREFIX)
        if control or is_page_path(path):
            name = host_name(_header(scope, b"host") or "")
            if name not in self.names:
                await _json(send, 421, {"error": f"Host {name!r} is not a name this emulator "
                                                 "serves (DNS rebinding guard)"})
                return
        if control and path not in PUBLIC_CONTROL_PATHS:
            refusal = self._check(scope, path)
            if refusal is not None:
                status, message = refusal
                extra = [(b"www-authenticate", b'Bearer realm="c2c-bench"')] if status == 401 else []
                await _json(send, status, {"error": message}, extra)
                return
            if path == SESSION_PATH:
                await self._session(scope, receive, send)
                return
        if path.startswith("/s3/"):  # bounded by the signed part size in s3.py, streamed
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > MAX_JSON_BODY:
            await _too_large(scope, receive, send)
            return
        await self.app(scope, *self._limited(scope, receive, send))

    def _check(self, scope: Scope, path: str) -> tuple[int, str] | None:
        """None if the request may reach the control API, else (status, reason)."""
        method = scope.get("method", "GET")
        body_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        has_body = (_header(scope, b"content-length") not in (None, "0")
                    or _header(scope, b"transfer-encoding") is not None)
        if method not in SAFE_METHODS and has_body and body_type != "application/json":
            return 415, "control API bodies must be application/json"
        auth = _header(scope, b"authorization") or ""
        if auth[:7].lower() == "bearer ":
            if token_matches(auth[7:].strip(), self.token):
                return None
            return 401, "wrong bench token"
        if path == SESSION_PATH:  # sign in/out: same-origin only; the token is checked inside
            return None if method in SAFE_METHODS else self._same_origin(scope)
        _, session = session_of(scope, self.sessions)
        if session is None:
            return 401, ("the control API needs the bench token (Authorization: Bearer, from "
                         "DATA/bench-token) or an operator session (sign in at /login)")
        if method in SAFE_METHODS:
            return None
        refusal = self._same_origin(scope)
        if refusal is not None:
            return refusal
        if not hmac.compare_digest((_header(scope, CSRF_HEADER.encode()) or "").encode(),
                                   session.csrf.encode()):
            return 403, "missing or wrong CSRF token"
        return None

    @staticmethod
    def _same_origin(scope: Scope) -> tuple[int, str] | None:
        """The request's Origin must be this emulator as the browser reached it."""
        origin = _header(scope, b"origin")
        host = _header(scope, b"host") or ""
        site = _header(scope, b"sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return 403, f"cross-origin request refused (Sec-Fetch-Site: {site})"
        if origin is None or origin != f"https://{host}":
            return 403, f"cross-origin request refused (Origin {origin!r})"
        return None

    async def _session(self, scope: Scope, receive: Receive, send: Send) -> None:
        """POST {token} signs the browser in; GET answers its CSRF token; DELETE signs out."""
        method = scope.get("method")
        name = cookie_name(scope)
        if method == "GET":
            _, session = session_of(scope, self.sessions)
            if session is None:
                await _json(send, 401, {"error": "not signed in"})
            else:
                await _json(send, 200, {"csrf": session.csrf})
            return
        if method == "DELETE":
            sid, _ = session_of(scope, self.sessions)
            self.sessions.drop(sid)
            await _json(send, 204, None, [(b"set-cookie", _cookie(name, "", 0))])
            return
        if method != "POST":
            await _json(send, 405, {"error": f"{method} is not allowed here"})
            return
        raw = await _read_limited(receive, 4096)
        try:
            given = json.loads(raw or b"{}").get("token", "")
        except (ValueError, AttributeError):
            given = ""
        if not isinstance(given, str) or not token_matches(given.strip(), self.token):
            await _json(send, 401, {"error": "wrong bench token"})
            return
        sid, session = self.sessions.create()
        await _json(send, 200, {"csrf": session.csrf},
                    [(b"set-cookie", _cookie(name, sid, int(SESSION_LIFETIME)))])

    def _limited(self, scope: Scope, receive: Receive, send: Send) -> tuple[Receive, Send]:
        """Cut a body that grows past MAX_JSON_BODY (chunked: no length announced up front)."""
        received = 0
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_JSON_BODY and not refused:
                refused = True
                await _too_large(scope, receive, send)
            return {"type": "http.disconnect"} if refused else message

        async def quiet_send(message: Message) -> None:
            if not refused:  # after our 413 the app's own answer goes nowhere
                await send(message)

        return limited_receive, quiet_send


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    """413 in the shape of the API asked: the device API's detailed error, else {"error"}."""
    text = f"body exceeds {MAX_JSON_BODY} bytes"
    if scope.get("path", "").startswith("/v2/"):
        answer = detailed(413, "Payload Too Large", text, {"connection": "close"})
        await answer(scope, receive, send)
        return
    await _json(send, 413, {"error": text}, [(b"connection", b"close")])


def _cookie(name: str, value: str, max_age: int) -> bytes:
    return (f"{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; Secure; "
            "SameSite=Strict").encode("latin-1")


async def _read_limited(receive: Receive, limit: int) -> bytes:
    body = b""
    while True:
        message = await receive()
        chunk: bytes = message.get("body", b"")
        body += chunk
        if len(body) > limit or not message.get("more_body", False):
            return body[: limit + 1]


async def _json(send: Send, status: int, payload: object,
                headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = b"" if payload is None else json.dumps(payload).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})
