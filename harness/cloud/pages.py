"""The person's side of the emulator: the pairing page and the project view.

These pages stand in for Frame.io's web app on a bench without a Frame.io account. They
hold no state of their own: the browser talks to the control API (`/_bench/v1`, same
origin), so what a person sees is exactly what the harness sees. Everything is
self-contained (inline CSS/JS from `static/`, no CDN), and every API string reaches the
DOM through `textContent`; a strict nonce-based Content-Security-Policy backs that up so a
hostile asset name can never run as script.
"""

from __future__ import annotations

import html
import re
import secrets
from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

__all__ = ["page_routes"]

_USER_CODE = re.compile(r"[0-9]{6}")
_NAV = (("/", "Home"), ("/pair", "Connect a device"), ("/projects", "Projects"), ("/docs", "API"))
# Shown by common.js when the control API answers 401: the operator signs in first.
_SIGNIN = ('<div id="signin" class="msg info" role="alert" hidden>This browser is not signed in '
           'to the bench. <a id="signin-link" href="/login">Sign in with the bench token</a>.</div>')


@cache
def _asset(name: str) -> str:
    """One file of `harness/cloud/static`, read once (package data, works when installed)."""
    return resources.files("harness.cloud.static").joinpath(name).read_text(encoding="utf-8")


def _security_headers(nonce: str) -> dict[str, str]:
    """Only our own inline code runs; fetches stay on this origin; codes never leak via Referer."""
    csp = (
        "default-src 'none'; "
        f"script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    )
    return {
        "content-security-policy": csp,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
        "x-frame-options": "DENY",
    }


def _render(title: str, active: str, body: str, scripts: tuple[str, ...], status_code: int = 200) -> Response:
    """Wrap a page fragment in the shared layout with inlined, nonce-tagged CSS and JS."""
    nonce = secrets.token_urlsafe(16)
    nav = " ".join(
        f'<a href="{href}"{" aria-current=page" if href == active else ""}>{html.escape(label)}</a>'
        for href, label in _NAV
    )
    code = "\n".join(_asset(name) for name in ("common.js", *scripts))
    page = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n<link rel="icon" href="data:,">\n'
        f"<title>{html.escape(title)} — c2c-bench cloud</title>\n"
        f'<style nonce="{nonce}">{_asset("base.css")}</style>\n'
        "</head>\n<body>\n"
        '<header class="top"><a class="brand" href="/">c2c-bench cloud</a>'
        f'<nav aria-label="Main">{nav}</nav></header>\n'
        f"<main>\n{_SIGNIN}\n{body}\n</main>\n"
        "<footer>Local Frame.io Camera-to-Cloud emulator — not connected to Frame.io.</footer>\n"
        f'<script nonce="{nonce}">\n{code}\n</script>\n'
        "</body>\n</html>\n"
    )
    return HTMLResponse(page, status_code=status_code, headers=_security_headers(nonce))


async def home_page(request: Request) -> Response:
    """GET / and /projects: project list and links for people and operators."""
    return _render("Home", request.url.path, _asset("index.html"), ("index.js",))


async def pair_page(request: Request) -> Response:
    """GET /pair[?code=NNNNNN]: the verification_uri (and, with ?code, its _complete form)."""
    raw = request.query_params.get("code", "").strip().replace(" ", "").replace("-", "")
    # Pre-fill only a well-formed code; anything else is shown as typed and flagged by the page.
    prefill = raw if _USER_CODE.fullmatch(raw) else raw[:7]
    body = _asset("pair.html").replace("{{prefill}}", html.escape(prefill, quote=True))
    return _render("Connect a device", "/pair", body, ("pair.js",))


async def project_page(request: Request) -> Response:
    """GET /projects/{id}: the project's Cloud Devices tree, refreshed live by the page."""
    return _render("Project", "/projects", _asset("project.html"), ("project.js",))


async def docs_page(request: Request) -> Response:
    """GET /docs: the control API's OpenAPI schema, readable by a person."""
    return _render("Control API", "/docs", _asset("docs.html"), ("docs.js",))


async def login_page(request: Request) -> Response:
    """GET /login: the operator trades the bench token for a session cookie (login.js)."""
    return _render("Sign in", "/login", _asset("login.html"), ("login.js",))


async def projects_slash(request: Request) -> Response:
    return RedirectResponse("/projects", status_code=308)


def page_routes() -> list[BaseRoute]:
    """Routes the emulator app mounts for people: /, /pair, /projects, /projects/{id}, /docs, /login."""
    return [
        Route("/", home_page, methods=["GET", "HEAD"], name="home"),
        Route("/pair", pair_page, methods=["GET", "HEAD"], name="pair"),
        Route("/projects", home_page, methods=["GET", "HEAD"], name="projects"),
        Route("/projects/", projects_slash, methods=["GET", "HEAD"]),
        Route("/projects/{project_id}", project_page, methods=["GET", "HEAD"], name="project"),
        Route("/docs", docs_page, methods=["GET", "HEAD"], name="docs"),
        Route("/login", login_page, methods=["GET", "HEAD"], name="login"),
    ]
