"""Bearer-authenticated device endpoints (c2c-api.md §3.5-3.13) and /health."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.cloud import assets as rules
from harness.cloud.core import CloudCore
from harness.cloud.responses import CompactJSONResponse, detailed, not_authorized
from harness.cloud.routes_auth import authenticate, base_url, core_of
from harness.cloud.s3 import part_url

MAX_BODY = 1024 * 1024
# Validation answers the contract names (no setting: a bench must not switch a documented status).
REALTIME_INVALID_STATUS = 400  # c2c-api.md §3.10 [SPEC]: bad sizes/numbers, missing asset_filesize
COMMENT_INVALID_STATUS = 400  # c2c-api.md §3.11 [DOC]: errors 400, 401, 404, 429
Handler = Callable[[Request, dict[str, Any]], Awaitable[Response]]


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def device_status(core: CloudCore, device: dict[str, Any]) -> str:
    if device["paused"]:
        return "paused"
    if core.sockets.get(device["id"]):
        return "online"
    seen = device["last_seen_at"]
    if seen is not None and core.now() - seen < core.settings.offline_threshold:
        return "online"
    return "offline"


def channel_object(core: CloudCore, device: dict[str, Any], ch: dict[str, Any],
                   status: str) -> dict[str, Any]:
    return {
        "_type": "project_device_channel", "id": ch["id"], "actor_id": None,
        "asset_type": ch["asset_type"], "device_id": device["device_id"],
        "external_index": ch["external_index"], "name": ch["name"],
        "project_device_id": device["id"], "project_id": device["project_id"],
        "real_time_logging_capable": False,
        "status": "offline" if status == "offline" else "online",
        "inserted_at": iso(ch["created_at"]), "updated_at": iso(ch["updated_at"]),
    }


def project_device(core: CloudCore, device: dict[str, Any]) -> dict[str, Any]:
    project = core.store.project(device["project_id"]) or {"id": device["project_id"],
                                                           "name": ""}
    status = device_status(core, device)
    channels = [channel_object(core, device, ch, status)
                for ch in core.store.channels(device["id"])]
    return {
        "_type": "project_device", "id": device["id"], "asset_type": "video",
        "authorization": {
            "_type": "project_device_authorization", "id": device["authorization_id"],
            "creator": {"_type": "user", "id": device["creator_id"], "name": "Bench Operator"},
            "creator_id": device["creator_id"], "expires_at": None,
            "inserted_at": iso(device["created_at"]), "project_device_id": device["id"],
            "scopes": {"id": device["authorization_id"], "asset_create": True, "offline": True,
                       "asset_read": False, "project_read": False, "comment_create": False,
                       "device_connect": False},
        },
        "channels": channels, "channel_count": len(channels),
        "creator_id": device["creator_id"], "deleted_at": None,
        "device_id": device["device_id"], "inserted_at": iso(device["created_at"]),
        "last_known_firmware_version": device["last_firmware"],
        "last_seen_at": iso(device["last_seen_at"]), "name": device["name"],
        "project": {"_type": "project", "id": project["id"], "name": project["name"]},
        "project_id": device["project_id"], "status": status, "timezone": device["timezone"],
        "updated_at": iso(device["updated_at"]), "path_name": device["name"][:50],
        "path_asset_type": "VIDEO", "required_metadata_attributes": [],
    }


def refused(exc: rules.AssetError) -> Response:
    return detailed(exc.status, exc.title, exc.detail)


def authed(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        device = authenticate(request)
        if device is None:
            return not_authorized()
        return await handler(request, device)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


async def read_json(request: Request) -> Any:
    """Parsed JSON body; raises AssetError 400 with a clear reason otherwise."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY:
        raise rules.AssetError(413, "Payload Too Large", f"body exceeds {MAX_BODY} bytes")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise rules.AssetError(413, "Payload Too Large", f"body exceeds {MAX_BODY} bytes")
    try:
        return json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise rules.AssetError(400, "Bad Request", f"malformed JSON body: {exc}") from None


async def read_body(request: Request) -> tuple[dict[str, Any], bool]:
    """(fields, is_form) of a JSON or urlencoded asset-create body."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = await request.form(max_files=0, max_fields=100, max_part_size=64 * 1024)
        except Exception:
            raise rules.AssetError(400, "Bad Request", "malformed form body") from None
        fields: dict[str, Any] = {}
        for key, value in form.multi_items():
            if not isinstance(value, str):
                raise rules.AssetError(400, "Bad Request", "file fields are not accepted")
            fields[key] = value
        return fields, True
    body = await read_json(request)
    if not isinstance(body, dict):
        raise rules.AssetError(400, "Bad Request", "JSON body must be an object")
    return body, False


def legacy_allowed(core: CloudCore, request: Request) -> bool:
    return core.settings.legacy_paths or request.url.path.startswith("/v2/devices/")


async def me(request: Request, device: dict[str, Any]) -> Response:
    """GET /v2/devices/me: the project_device object (§3.5)."""
    core = core_of(request)
    return JSONResponse(project_device(core, core.store.device(device["id"]) or device))


async def current_user(request: Request, device: dict[str, Any]) -> Response:
    """GET /v2/me: the user behind the device's grant (§3.15: some cameras call it [OBS]; the
    shape is the `creator` user of §3.5's authorization [INF])."""
    return JSONResponse({"_type": "user", "id": device["creator_id"], "name": "Bench Operator"})


async def heartbeat(request: Request, device: dict[str, Any]) -> Response:
    """POST /v2/devices/heartbeat: 204, keeps the device online."""
    return Response(status_code=204)


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def create_asset(request: Request, device: dict[str, Any]) -> Response:
    """POST /v2/devices/assets and /v2/assets (§3.8)."""
    core = core_of(request)
    if not legacy_allowed(core, request):
        return detailed(404, "Not Found", "legacy path /v2/assets is switched off")
    try:
        body, is_form = await read_body(request)
        req = rules.parse_asset_request(body, form=is_form, settings=core.settings)
        if req.channel and not any(ch["external_index"] == req.channel
                                   for ch in core.store.channels(device["id"])):
            raise rules.invalid(f"channel {req.channel} is not connected to this device")
        asset = rules.create_asset(core.store, device, req, core.now(), core.settings)
    except rules.AssetError as exc:
        return refused(exc.answered_as(core.settings.asset_create_invalid_status))
    if asset["realtime"]:
        return JSONResponse({"id": asset["id"], "name": asset["name"]})
    base = base_url(request)
    urls = [part_url(core, base=base, asset=asset, number=n, gen=1,
                     part_count=asset["parts_expected"])
            for n in range(1, (asset["parts_expected"] or 0) + 1)]
    return CompactJSONResponse(asset_object(asset, device, urls))


def asset_object(asset: dict[str, Any], device: dict[str, Any], urls: list[str]) -> dict[str, Any]:
    created = iso(asset["created_at"])
    return {
        "_type": "file", "type": "file", "id": asset["id"], "name": asset["name"],
        "filetype": asset["filetype"], "filesize": asset["filesize"], "status": "created",
        "project_id": asset["project_id"], "parent_id": None, "creator_id": device["creator_id"],
        "inserted_at": created, "updated_at": created, "uploaded_at": created,
        "upload_completed_at": None, "realtime_upload": None, "label": "none", "index": -1.0,
        "upload_urls": urls, "original_upload": urls[0] if urls else None,
    }


def own_asset(core: CloudCore, request: Request, device: dict[str, Any]) -> dict[str, Any] | None:
    asset_id = request.path_params["asset_id"]
    try:
        uuid.UUID(asset_id)
    except ValueError:
        return None
    asset = core.store.one("SELECT * FROM assets WHERE id=?", asset_id)
    if asset is None or asset["device_pk"] != device["id"]:
        return None
    return asset


async def realtime_parts(request: Request, device: dict[str, Any]) -> Response:
    """POST .../assets/{id}/realtime_upload/parts (§3.10): one fresh URL per part."""
    core = core_of(request)
    if not legacy_allowed(core, request):
        return detailed(404, "Not Found", "legacy path /v2/assets is switched off")
    asset = own_asset(core, request, device)
    if asset is None:
        return detailed(404, "Not Found", "no such asset for this device")
    try:
        body = await read_json(request)
        async with core.asset_lock(asset["id"]):
            asset = core.store.one("SELECT * FROM assets WHERE id=?", asset["id"]) or asset
            specs, filesize, name = rules.parse_realtime_parts(body, asset, core.store,
                                                               core.settings)
            gens = rules.register_parts(core.store, asset, specs, filesize, name, device)
    except rules.AssetError as exc:
        return refused(exc.answered_as(REALTIME_INVALID_STATUS))
    asset = core.store.one("SELECT * FROM assets WHERE id=?", asset["id"]) or asset
    base = base_url(request)
    urls = [part_url(core, base=base, asset=asset, number=n, gen=g, part_count=None)
            for n, g in gens]
    return JSONResponse({"upload_urls": urls})


async def comment(request: Request, device: dict[str, Any]) -> Response:
    """POST /v2/devices/assets/{id}/comments (§3.11)."""
    core = core_of(request)
    asset = own_asset(core, request, device)
    if asset is None:
        return detailed(404, "Not Found", "no such asset for this device")
    try:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise rules.AssetError(400, "Bad Request", "JSON body must be an object")
        text = rules.as_str("text", body.get("text"))
        stamp = rules.as_number("timestamp", body.get("timestamp"), form=False)
        if not text:
            raise rules.invalid("text is required")
    except rules.AssetError as exc:
        return refused(exc.answered_as(COMMENT_INVALID_STATUS))
    now = core.now()
    row = {"id": str(uuid.uuid4()), "asset_id": asset["id"], "device_pk": device["id"],
           "text": text, "timestamp": stamp, "created_at": now}
    core.store.run("INSERT INTO comments VALUES (?,?,?,?,?,?)", *row.values())
    return JSONResponse({"_type": "comment", "id": row["id"], "asset_id": asset["id"],
                         "text": text, "timestamp": stamp, "inserted_at": iso(now),
                         "updated_at": iso(now), "deleted_at": None, "owner_id": device["id"]})


async def connect_channel(request: Request, device: dict[str, Any]) -> Response:
    """POST /v2/devices/channels (§3.12): connect a sub-device channel."""
    core = core_of(request)
    try:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise rules.AssetError(400, "Bad Request", "JSON body must be an object")
        client_id = rules.as_str("client_id", body.get("client_id"))
        model_id = rules.as_str("device_model_id", body.get("device_model_id"))
        if not client_id or not model_id:
            raise rules.invalid("client_id and device_model_id are required")
    except rules.AssetError as exc:
        return refused(exc.answered_as(core.settings.channel_invalid_status))
    channels = core.store.channels(device["id"], connected_only=False)
    if any(ch["client_id"] == client_id and ch["connected"] for ch in channels):
        return detailed(409, "Conflict", "this channel is already connected")
    index = max(ch["external_index"] for ch in channels) + 1 if channels else 0
    if index > 100:
        return detailed(409, "Conflict", "a device has at most 100 channels")
    now = core.now()
    ch_id = str(uuid.uuid4())
    core.store.run(
        "INSERT INTO channels (id, device_pk, external_index, name, asset_type, client_id,"
        " device_model_id, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
        ch_id, device["id"], index, f"{device['name']} #{index}", "video", client_id[:255],
        model_id[:255], now, now,
    )
    ch = core.store.one("SELECT * FROM channels WHERE id=?", ch_id)
    assert ch is not None
    return JSONResponse(channel_object(core, device, ch, device_status(core, device)))


async def disconnect_channel(request: Request, device: dict[str, Any]) -> Response:
    core = core_of(request)
    changed = core.store.run(
        "UPDATE channels SET connected=0 WHERE id=? AND device_pk=? AND connected=1"
        " AND external_index > 0", request.path_params["channel_id"], device["id"])
    if not changed:
        return detailed(404, "Not Found", "no such connected channel")
    return Response(status_code=204)


async def disconnect_all(request: Request, device: dict[str, Any]) -> Response:
    core = core_of(request)
    core.store.run("UPDATE channels SET connected=0 WHERE device_pk=? AND external_index > 0",
                   device["id"])
    return Response(status_code=204)


async def trigger(request: Request, device: dict[str, Any]) -> Response:
    """POST /v2/devices/channels/{id}/inputs/{n}/trigger (§3.13): recorded, 204."""
    core = core_of(request)
    channel = core.store.one("SELECT * FROM channels WHERE id=? AND device_pk=? AND connected=1",
                             request.path_params["channel_id"], device["id"])
    index = request.path_params["input_index"]
    if channel is None:
        return detailed(404, "Not Found", "no such connected channel")
    if not index.isdigit() or int(index) > 100:
        return detailed(404, "Not Found", "no such input")
    try:
        body = await read_json(request)
    except rules.AssetError as exc:
        return detailed(exc.status, exc.title, exc.detail)
    if not isinstance(body, dict):
        return detailed(400, "Bad Request", "JSON body must be an object")
    core.store.run("INSERT INTO triggers (device_pk, channel_id, input_index, body, created_at)"
                   " VALUES (?,?,?,?,?)", device["id"], channel["id"], int(index),
                   json.dumps(body), core.now())
    return Response(status_code=204)


def device_routes() -> list[Route]:
    # The router tries routes in order: asset creation, the busiest call, comes first (no two
    # of these paths overlap, so the order decides nothing else).
    return [
        Route("/v2/devices/assets", authed(create_asset), methods=["POST"]),
        Route("/v2/assets", authed(create_asset), methods=["POST"]),
        Route("/health", health, methods=["GET", "HEAD"]),
        Route("/v2/health", health, methods=["GET", "HEAD"]),
        Route("/v2/devices/me", authed(me), methods=["GET"]),
        Route("/v2/me", authed(current_user), methods=["GET"]),
        Route("/v2/devices/heartbeat", authed(heartbeat), methods=["POST"]),
        Route("/v2/devices/assets/{asset_id}/realtime_upload/parts", authed(realtime_parts),
              methods=["POST"]),
        Route("/v2/assets/{asset_id}/realtime_upload/parts", authed(realtime_parts),
              methods=["POST"]),
        Route("/v2/devices/assets/{asset_id}/comments", authed(comment), methods=["POST"]),
        Route("/v2/devices/channels", authed(connect_channel), methods=["POST"]),
        Route("/v2/devices/channels/disconnect", authed(disconnect_all), methods=["POST"]),
        Route("/v2/devices/channels/{channel_id}/disconnect", authed(disconnect_channel),
              methods=["POST"]),
        Route("/v2/devices/channels/{channel_id}/inputs/{input_index}/trigger", authed(trigger),
              methods=["POST"]),
    ]
