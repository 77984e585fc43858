"""The emulator's ASGI application: device API, fake S3, socket, control API, pages."""

from __future__ import annotations

import html
import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from harness.cloud.core import CloudCore
from harness.cloud.middleware import ClientVersionMiddleware, FaultMiddleware, JournalMiddleware
from harness.cloud.openapi import openapi
from harness.cloud.pages import page_routes
from harness.cloud.responses import detailed
from harness.cloud.routes_auth import auth_routes
from harness.cloud.routes_control import control_routes
from harness.cloud.routes_devices import device_routes
from harness.cloud.s3 import s3_routes
from harness.cloud.security import BenchGuard, SessionStore
from harness.cloud.websocket import websocket_routes

log = logging.getLogger("harness.cloud")


async def fallback_pair(request: Request) -> Response:
    """Minimal pairing page, used only when harness/cloud/pages.py is absent."""
    code = html.escape(request.query_params.get("code", "")[:6])
    return HTMLResponse(
        "<!doctype html><title>c2c-bench pairing</title><h1>Pair a device</h1>"
        f"<p>Code: <b>{code or '(enter the 6-digit code)'}</b></p>"
        "<p>Approve with <code>c2c-cloud approve CODE --project NAME</code> or "
        "POST /_bench/v1/codes/CODE/approve.</p>"
    )


def page_routes_or_fallback() -> list[BaseRoute]:
    try:
        return list(page_routes())
    except Exception:  # a broken page module must not take the API down
        log.exception("harness.cloud.pages.page_routes() failed; serving the fallback /pair")
        return [Route("/pair", fallback_pair, methods=["GET"])]


async def not_found(request: Request, exc: Exception) -> Response:
    if request.url.path.startswith("/_bench"):
        return JSONResponse({"error": f"no control endpoint {request.url.path}"}, 404)
    return detailed(404, "Not Found", "no such endpoint")


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    return detailed(405, "Method Not Allowed", f"{request.method} is not allowed here")


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return detailed(500, "Internal Server Error", "the emulator hit an internal error")


def build_app(core: CloudCore, *, token: str, names: frozenset[str]) -> ASGIApp:
    """The whole emulator; `token` unlocks the control plane, `names` are the Hosts it serves.

    BenchGuard sits inside the journal (a refused device call is still device traffic on
    record) and outside everything else, so no route is reached before it decided.
    """
    routes: list[BaseRoute] = [
        *device_routes(),  # first: asset creation is the busiest call (no path here overlaps)
        *auth_routes(),
        *s3_routes(),
        *websocket_routes(),
        *control_routes(),
        Route("/_bench/openapi.json", openapi, methods=["GET"]),
        *page_routes_or_fallback(),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={404: not_found, 405: method_not_allowed, 500: server_error},
    )
    app.state.core = core
    app.state.sessions = SessionStore()
    inner: ASGIApp = ClientVersionMiddleware(FaultMiddleware(app, core), core)
    return JournalMiddleware(BenchGuard(inner, token, names, app.state.sessions), core)
