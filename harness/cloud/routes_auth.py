"""/v2/auth/*: device code, token polling, refresh rotation, revoke (c2c-api.md §3.1-3.4).

Every answer uses the simple OAuth error shape except the two 401 cases the docs give
the detailed shape (revoked device / dead refresh token).
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.cloud.core import CloudCore
from harness.cloud.paths import TOKEN_PATH
from harness.cloud.responses import not_authorized, simple
from harness.cloud.store import digest

ALLOWED_SCOPES = {"asset_create", "offline"}
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def core_of(request: Request) -> CloudCore:
    core: CloudCore = request.app.state.core
    return core


async def read_form(request: Request) -> dict[str, str] | None:
    """Fields of a multipart or urlencoded body; None when the body is not a valid form."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method == "GET":
        return dict(request.query_params)
    if ctype not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return None
    try:
        form = await request.form(max_files=0, max_fields=50, max_part_size=64 * 1024)
    except Exception:  # python-multipart raises several types for broken bodies
        return None
    out: dict[str, str] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            return None
        out[key] = value
    return out


def base_url(request: Request) -> str:
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"https://{host}"


def legacy_refused(core: CloudCore, request: Request) -> bool:
    """Legacy spellings (GET /v2/auth/token, /v2/device/code) when `legacy_paths` is off."""
    legacy = request.method == "GET" or request.url.path == "/v2/device/code"
    return legacy and not core.settings.legacy_paths


async def device_code(request: Request) -> Response:
    core = core_of(request)
    if legacy_refused(core, request):
        return simple("invalid_request", 404, "legacy path switched off")
    form = await read_form(request)
    if form is None:
        return simple("invalid_request", description="body must be multipart/form-data")
    client_id = form.get("client_id", "").strip()
    secret = form.get("client_secret", "")
    scope = form.get("scope", "")
    if not client_id or len(client_id) > 255 or not secret:
        return simple("invalid_request", description="client_id and client_secret are required")
    client = core.store.client_by_secret(secret)
    if client is None:
        return simple("invalid_client")
    scopes = set(scope.split())
    if not scopes or not scopes <= ALLOWED_SCOPES:
        return simple("invalid_scope", description="scope must be 'asset_create offline'")
    name = form.get("name", "").strip()[:255] or f"C2C-{client_id[-12:]}"
    settings = core.settings
    url_pairing = (request.headers.get("x-client-platypus-enabled", "").lower() == "true"
                   and settings.url_pairing)
    now = core.now()
    code, user_code = core.store.create_code(
        client_id=client_id, client_pk=client["id"], name=name, now=now,
        lifetime=settings.device_code_lifetime, interval=settings.device_code_interval,
        url_pairing=url_pairing,
    )
    base = base_url(request)
    body: dict[str, Any] = {
        "device_code": code, "user_code": user_code,
        "expires_in": settings.device_code_lifetime, "interval": settings.device_code_interval,
        "name": name, "verification_uri": f"{base}/pair",
    }
    if url_pairing:
        body["verification_uri_complete"] = f"{base}/pair?code={user_code}"
        # what was issued, so the bench can compare it with what the device offers (AUTH-02)
        core.store.run("UPDATE codes SET verification_uri_complete=? WHERE device_code_hash=?",
                       body["verification_uri_complete"], digest(code))
    return JSONResponse(body)


def token_body(core: CloudCore, access: str, refresh: str) -> JSONResponse:
    return JSONResponse({
        "access_token": access, "expires_in": core.settings.access_token_lifetime,
        "refresh_token": refresh, "token_type": "bearer",
    }, headers={"Cache-Control": "no-store"})


async def token(request: Request) -> Response:
    core = core_of(request)
    if legacy_refused(core, request):
        return simple("invalid_request", 405, "GET is a legacy spelling, switched off")
    form = await read_form(request)
    if form is None:
        return simple("invalid_request", description="body must be multipart/form-data")
    grant = form.get("grant_type", "")
    if grant == DEVICE_GRANT:
        return poll_device_code(core, form, request.scope, request.method)
    if grant == "refresh_token":
        return refresh(core, form, request.scope)
    return simple("invalid_request", description="grant_type must be the device_code URN or "
                                                 "refresh_token")


def poll_device_code(core: CloudCore, form: dict[str, str], scope: MutableMapping[str, Any],
                     method: str = "POST") -> Response:
    """Answer a device-code poll and note it (client, arrival, answer) for the bench."""
    started_at = core.now()
    response = answer_poll(core, form, scope, method)
    core.note_poll(form.get("client_id", ""), started_at, poll_answer(response))
    return response


def poll_answer(response: Response) -> str:
    """"ok" for a token answer, else the OAuth error code the answer carries."""
    if response.status_code == 200:
        return "ok"
    try:
        return str(json.loads(bytes(response.body)).get("error") or response.status_code)
    except (ValueError, AttributeError):
        return str(response.status_code)


def answer_poll(core: CloudCore, form: dict[str, str], scope: MutableMapping[str, Any],
                method: str = "POST") -> Response:
    client_id = form.get("client_id", "")
    code_text = form.get("device_code", "")
    secret = form.get("client_secret")
    if not client_id or not code_text:
        return simple("invalid_request", description="client_id and device_code are required")
    if secret is None and core.settings.strict_poll_secret:
        return simple("invalid_request", description="client_secret is required")
    client = core.store.client_by_secret(secret) if secret is not None else None
    if secret is not None and client is None:
        return simple("invalid_client")
    code = core.store.code_by_device_code(code_text)
    if code is None or code["client_id"] != client_id:
        return simple("invalid_grant")
    if client is not None and client["id"] != code["client_pk"]:
        return simple("invalid_client")
    now = core.now()
    if code["state"] == "used":
        return simple("invalid_grant")
    if code["state"] == "denied":
        return simple("access_denied")
    if now >= code["expires_at"]:
        return simple("expired_token")
    if core.take_fault("api", method, TOKEN_PATH, in_handler=True, client_id=client_id) is not None:
        # Forced slow_down (fault kind "slow_down"): answered like a too-fast poll,
        # interval grown, so a device that keeps its old pace meets a real slow_down next.
        core.store.run(
            "UPDATE codes SET last_poll_at=?, interval=interval+? WHERE device_code_hash=?",
            now, core.settings.slow_down_increment, code["device_code_hash"],
        )
        return simple("slow_down")
    last = code["last_poll_at"]
    if last is not None and now - last < code["interval"]:
        core.store.run(
            "UPDATE codes SET last_poll_at=?, interval=interval+? WHERE device_code_hash=?",
            now, core.settings.slow_down_increment, code["device_code_hash"],
        )
        return simple("slow_down")
    if code["state"] != "approved":
        core.store.run("UPDATE codes SET last_poll_at=? WHERE device_code_hash=?",
                       now, code["device_code_hash"])
        return simple("authorization_pending")
    core.store.run("UPDATE codes SET last_poll_at=?, state='used' WHERE device_code_hash=?",
                   now, code["device_code_hash"])
    scope.setdefault("state", {})["device_id"] = code["device_pk"]
    access, refresh_token = core.store.issue_tokens(
        device_pk=code["device_pk"], client_id=client_id, grant_id=None, now=now,
        access_lifetime=core.settings.access_token_lifetime,
        refresh_lifetime=core.settings.refresh_token_lifetime,
    )
    core.remember_tokens(code["device_pk"], access, refresh_token)
    return token_body(core, access, refresh_token)


def refresh(core: CloudCore, form: dict[str, str], scope: MutableMapping[str, Any]) -> Response:
    client_id = form.get("client_id", "")
    secret = form.get("client_secret", "")
    presented = form.get("refresh_token", "")
    if not client_id or not secret or not presented:
        return simple("invalid_request",
                      description="client_id, client_secret and refresh_token are required")
    if core.store.client_by_secret(secret) is None:
        return simple("invalid_client")
    row = core.store.token(presented)
    if row is None or row["kind"] != "refresh":
        return simple("invalid_grant")
    if row["client_id"] != client_id:
        return simple("invalid_client")
    scope.setdefault("state", {})["device_id"] = row["device_pk"]
    now = core.now()
    if row["grant_revoked"] or row["device_revoked"] or now >= row["expires_at"]:
        return not_authorized()
    if row["used_at"] is not None:
        return simple("invalid_request", core.settings.refresh_reuse_status)
    access, new_refresh = core.store.issue_tokens(
        device_pk=row["device_pk"], client_id=client_id, grant_id=row["grant_id"], now=now,
        access_lifetime=core.settings.access_token_lifetime,
        refresh_lifetime=core.settings.refresh_token_lifetime,
    )
    core.remember_tokens(row["device_pk"], access, new_refresh)
    return token_body(core, access, new_refresh)


async def revoke(request: Request) -> Response:
    core = core_of(request)
    form = await read_form(request)
    if form is None:
        return simple("invalid_request", description="body must be multipart/form-data")
    client_id = form.get("client_id", "")
    secret = form.get("client_secret", "")
    presented = form.get("token", "")
    if not client_id or not secret or not presented:
        return simple("invalid_request",
                      description="client_id, client_secret and token are required")
    if core.store.client_by_secret(secret) is None:
        return simple("invalid_client")
    row = core.store.token(presented)
    if row is not None and row["client_id"] == client_id:
        request.scope.setdefault("state", {})["device_id"] = row["device_pk"]  # journal: whose revoke
        core.store.run("UPDATE grants SET revoked=1 WHERE id=?", row["grant_id"])
    return JSONResponse({"success": True})


def auth_routes() -> list[Route]:
    return [
        Route("/v2/auth/device/code", device_code, methods=["POST"]),
        Route("/v2/auth/token", token, methods=["POST", "GET"]),
        Route("/v2/auth/revoke", revoke, methods=["POST"]),
        Route("/v2/device/code", device_code, methods=["POST"]),
    ]


def authenticate(request: Request) -> dict[str, Any] | None:
    """The project device behind a valid Bearer access token, or None (→ 401)."""
    core = core_of(request)
    value = request.headers.get("authorization", "")
    scheme, _, presented = value.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return None
    return device_for_token(core, presented.strip(), request.headers.get("x-client-version"),
                            request.scope)


def device_for_token(core: CloudCore, presented: str, version: str | None,
                     scope: MutableMapping[str, Any]) -> dict[str, Any] | None:
    row = core.store.token(presented)
    now = core.now()
    if (row is None or row["kind"] != "access" or row["used_at"] is not None
            or row["grant_revoked"] or row["device_revoked"] or now >= row["expires_at"]):
        return None
    device = core.store.note_seen(row["device_pk"], now, version)
    scope.setdefault("state", {})["device_id"] = row["device_pk"]
    return device
