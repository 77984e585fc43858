"""Pure ASGI middleware (bodies stay streaming): request journal, API faults, version check.

The journal holds device-side traffic only: calls to the control API (/_bench) are not
recorded, so "every request carried x-client-version" can be judged from it directly.

The journal redacts credentials before anything is kept: Authorization headers, tokens
and secrets in header names, and signature/credential/token query parameters.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harness.cloud.core import CloudCore, FaultRule
from harness.cloud.fault_responses import API_ONLY_KINDS, api_error
from harness.cloud.responses import detailed, simple

# Kinds this middleware words itself (below); every other kind is answered from the shared
# table (fault_responses.KINDS): the 409s of asset creation and §5.5's S3 classes.
OWN_API_ANSWERS = frozenset({"slowdown", "internal_error", "request_timeout", "expired_url",
                             "too_many_requests", "unauthorized", "drop"})
REDACTED = "[redacted]"
SECRET_HEADERS = {"authorization", "proxy-authorization", "cookie", "set-cookie"}
SECRET_WORDS = ("secret", "token", "password", "signature", "credential", "authorization")
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)


def is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return lowered in SECRET_HEADERS or any(w in lowered for w in SECRET_WORDS)


def redact_query(query: str) -> str:
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, REDACTED if is_secret_name(k) else v) for k, v in pairs])


@functools.lru_cache(maxsize=1024)
def _header_name(key: bytes) -> tuple[str, bool]:
    """(lower-case name, value redacted?) of a raw header name: the same few names arrive
    on every request, so each is decoded and judged once."""
    name = key.decode("latin-1").lower()
    return name, is_secret_name(name)


def redact_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in raw:
        name, secret = _header_name(key)
        text = REDACTED if secret else value.decode("latin-1")
        out[name] = f"{out[name]}, {text}" if name in out else text
    return out


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            text: str = value.decode("latin-1")
            return text
    return None


def abort_hook(receive: Receive) -> Callable[[], None] | None:
    """Something that drops the TCP connection at once (uvicorn's transport), if reachable."""
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    return transport.abort if transport is not None else None


class JournalMiddleware:
    def __init__(self, app: ASGIApp, core: CloudCore) -> None:
        self.app = app
        self.core = core

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        store = self.core.store

        async def durable_send(message: Message) -> None:
            # Nothing is acknowledged before the writes behind it are committed.
            if message["type"] in ("http.response.start", "websocket.accept", "websocket.send",
                                   "websocket.close"):
                await store.durable()
            await send(message)

        if scope.get("path", "").startswith("/_bench"):
            # The bench's own control calls are not device traffic: not journaled.
            await self.app(scope, receive, durable_send)
            return
        # The request's active interval: from this call (headers parsed) to the response's
        # final body message; monotonic for the length, emulator time for where it starts.
        started_at, started = self.core.now(), time.monotonic()
        finished: list[float] = []
        scope.setdefault("state", {})
        scope["c2c.abort"] = abort_hook(receive)
        counts = {"in": 0, "out": 0, "status": 0}

        async def counting_receive() -> Message:
            message = await receive()
            counts["in"] += len(message.get("body", b"") or message.get("bytes", b"") or b"")
            return message

        async def counting_send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                counts["status"] = message["status"]
            elif kind == "http.response.body":
                counts["out"] += len(message.get("body", b""))
                if not message.get("more_body", False) and not finished:
                    finished.append(time.monotonic())
            elif kind == "websocket.accept":
                counts["status"] = 101
            elif kind == "websocket.close" and not counts["status"]:
                counts["status"] = 403
            await durable_send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            ended = finished[0] if finished else time.monotonic()
            self._record(scope, counts, started_at, (ended - started) * 1000.0)

    def _record(self, scope: Scope, counts: dict[str, int], started_at: float,
                duration_ms: float) -> None:
        query = scope.get("query_string", b"").decode("latin-1")
        path = scope.get("path", "")
        redacted = redact_query(query)
        client = scope.get("client")
        state = scope.get("state", {})
        self.core.journal_buffer.append((
            self.core.now(), scope.get("scheme", "https"), scope.get("method", "WS"),
            path + ("?" + redacted if redacted else ""), counts["status"] or 0,
            counts["in"], counts["out"], f"{client[0]}:{client[1]}" if client else None,
            state.get("device_id"), header(scope, b"x-client-version"),
            json.dumps(redact_headers(scope.get("headers", []))), started_at,
            round(duration_ms, 3),
        ))
        if len(self.core.journal_buffer) >= 64:  # small batches: no long stall of the loop
            self.core.flush_journal()


class FaultMiddleware:
    """Answers API calls matching a `target: api` fault rule instead of the real handler.

    A rule for one device (`client_id`) is matched against who sent the request: the bearer
    token's device, or the `client_id` of an auth form (device code, poll, refresh, revoke),
    read here and handed on to the route unchanged. A `hold` rule lets the request through
    and keeps its answer back until the bench releases it (or the rule's `hold_s` ends).
    """

    def __init__(self, app: ASGIApp, core: CloudCore) -> None:
        self.app = app
        self.core = core

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        # Device API only: not the control API, the fake S3 (its own target) or the pages.
        if (scope["type"] != "http" or not self.core.faults
                or not (path.startswith("/v2/") or path in ("/health", "/devices/websocket"))):
            await self.app(scope, receive, send)
            return
        client_id: str | None = None
        if self.core.scoped_faults("api", scope["method"], path):
            client_id, receive = await requester(self.core, scope, receive)
        rule = self.core.take_fault("api", scope["method"], path, client_id=client_id)
        if rule is None:
            await self.app(scope, receive, send)
            return
        if rule.kind == "hold":
            await self.app(scope, receive, held_send(self.core, rule, send))
            return
        if rule.kind == "drop" and scope.get("c2c.abort"):
            scope["c2c.abort"]()
            return
        if rule.kind in API_ONLY_KINDS or rule.kind not in OWN_API_ANSWERS:  # the shared table
            status, body, headers = api_error(rule.kind, path, retry_after=rule.retry_after)
            await Response(body, status_code=status, headers=headers)(scope, receive, send)
            return
        auth = path.startswith("/v2/auth/")
        retry = {"Retry-After": str(rule.retry_after or 1)}
        response = {
            "slowdown": lambda: detailed(503, "Service Unavailable", "Please slow down.", retry),
            "internal_error": lambda: detailed(500, "Internal Server Error",
                                               "An internal error occurred."),
            "request_timeout": lambda: detailed(408, "Request Timeout", "Request timed out."),
            "expired_url": lambda: detailed(403, "Forbidden", "Request has expired"),
            "too_many_requests": lambda: detailed(429, "Too Many Requests",
                                                  "Rate limit exceeded.", retry),
            "unauthorized": lambda: simple("invalid_client", 401) if auth else detailed(
                401, "Not Authorized", "You are not allowed to access that resource"),
            "drop": lambda: detailed(500, "Internal Server Error", "connection dropped"),
        }[rule.kind]()
        await response(scope, receive, send)


def held_send(core: CloudCore, rule: FaultRule, send: Send) -> Send:
    """`send` whose answer waits at its first message for the rule's release or timeout: the
    request is carried out at once, only the device learns of it later (or never)."""
    gate = core.hold_gate(rule)
    waited = False

    async def send_when_released(message: Message) -> None:
        nonlocal waited
        if not waited:
            waited = True
            try:
                await asyncio.wait_for(gate.wait(), timeout=rule.hold_s)
            except TimeoutError:
                rule.released_at = core.now()
        await send(message)

    return send_when_released


FORM_LIMIT = 64 * 1024
"""Largest auth body read to learn its client_id (the routes take 64 KiB form fields at most)."""


async def requester(core: CloudCore, scope: Scope, receive: Receive) -> tuple[str | None, Receive]:
    """(client id of the device that sent this request or None, `receive` for the route).

    A bearer token names its device; an auth call (no token) carries the client_id in its
    form, so its body is read here and replayed to the route byte for byte."""
    value = header(scope, b"authorization") or ""
    scheme, _, presented = value.partition(" ")
    if scheme.lower() == "bearer" and presented.strip():
        row = core.store.token(presented.strip())
        return (None if row is None else str(row["client_id"])), receive
    if scope.get("method") == "GET":
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        return query.get("client_id"), receive
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if not message.get("more_body", False) or size > FORM_LIMIT:
            break
    replay = deque(messages)

    async def replayed() -> Message:
        return replay.popleft() if replay else await receive()

    complete = messages[-1]["type"] == "http.request" and not messages[-1].get("more_body", False)
    if not complete:
        return None, replayed
    body = b"".join(m.get("body", b"") for m in messages)
    return await form_client_id(scope, body), replayed


async def form_client_id(scope: Scope, body: bytes) -> str | None:
    """The `client_id` field of a urlencoded or multipart body; None if it has none."""
    async def once() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(dict(scope), once).form(max_files=0, max_fields=50)
    except Exception:  # python-multipart raises several types for broken bodies
        return None
    value = form.get("client_id")
    return value if isinstance(value, str) else None


class ClientVersionMiddleware:
    """Strict mode: reject API calls with a missing or non-semver x-client-version."""

    def __init__(self, app: ASGIApp, core: CloudCore) -> None:
        self.app = app
        self.core = core

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (scope["type"] == "http" and self.core.settings.strict_client_version
                and (path.startswith("/v2/") or path == "/health")):
            version = header(scope, b"x-client-version")
            if version is None or not SEMVER.match(version.strip()):
                text = ("x-client-version header is missing" if version is None
                        else f"x-client-version {version[:40]!r} is not a semantic version")
                if path.startswith("/v2/auth/"):
                    response = simple("invalid_request", 400, text)
                else:
                    response = detailed(400, "Bad Request", text)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
