"""Control API at /_bench/v1 (CONTRACTS.md §2): how the harness and operators drive the cloud.

Errors are JSON `{"error": "<what is wrong>"}` with 400/404/409 so `CloudControl` can
raise `CloudError` with the emulator's own words.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from harness.cloud import assets as rules
from harness.cloud.core import CloudCore, parse_fault
from harness.cloud.routes_devices import device_status
from harness.cloud.websocket import broadcast_status
from harness.errors import ConfigError

PREFIX = "/_bench/v1"


def core_of(request: Request) -> CloudCore:
    core: CloudCore = request.app.state.core
    return core


def fail(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def body_of(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError("body must be a JSON object")
    return data


def text_field(body: dict[str, Any], name: str, limit: int = 255) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name} is required (a non-empty string)")
    if len(value) > limit:
        raise ConfigError(f"{name} is longer than {limit} characters")
    return value


Handler = Callable[[Request], Awaitable[Response]]


def control(handler: Handler) -> Handler:
    """Turn ConfigError into 400 {"error"} answers."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ConfigError as exc:
            return fail(400, str(exc))

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


async def state(request: Request) -> Response:
    core = core_of(request)
    core.flush_journal()
    count = {t: core.store.one(f"SELECT COUNT(*) AS n FROM {t}")["n"]  # type: ignore[index]
             for t in ("projects", "devices", "assets", "journal", "plain_http", "ws_sessions")}
    return JSONResponse({**count, "journal_size": count["journal"],
                         "clock_offset": core.clock_offset, "now": core.now()})


async def reset(request: Request) -> Response:
    core = core_of(request)
    for peers in list(core.sockets.values()):
        for peer in list(peers):
            try:
                await peer.ws.close(code=1001)
            except Exception:
                pass
    core.sockets.clear()
    core.reset()
    return Response(status_code=204)


async def settings(request: Request) -> Response:
    core = core_of(request)
    if request.method == "PUT":
        core.update_settings(await body_of(request))
    return JSONResponse(core.settings.to_dict())


async def clients(request: Request) -> Response:
    core = core_of(request)
    if request.method == "GET":
        return JSONResponse(core.store.clients())
    body = await body_of(request)
    name = text_field(body, "name")
    min_fw = body.get("min_firmware")
    if min_fw is not None and not isinstance(min_fw, str):
        raise ConfigError("min_firmware must be a string")
    socket_status = body.get("socket_status", True)
    if not isinstance(socket_status, bool):
        raise ConfigError("socket_status must be a boolean")
    secret = secrets.token_urlsafe(32)
    row = core.store.add_client(name, secret, core.now(), min_fw, socket_status)
    out = {k: v for k, v in row.items() if k != "secret_hash"}
    return JSONResponse({**out, "client_secret": secret}, status_code=201)


async def projects(request: Request) -> Response:
    core = core_of(request)
    if request.method == "GET":
        return JSONResponse(core.store.all("SELECT id, name FROM projects ORDER BY created_at"))
    body = await body_of(request)
    row = core.store.create_project(text_field(body, "name"), core.now())
    return JSONResponse({"id": row["id"], "name": row["name"]}, status_code=201)


async def project_patch(request: Request) -> Response:
    core = core_of(request)
    body = await body_of(request)
    name = text_field(body, "name")
    pid = request.path_params["project_id"]
    if not core.store.run("UPDATE projects SET name=? WHERE id=?", name, pid):
        return fail(404, f"no project {pid}")
    return JSONResponse({"id": pid, "name": name})


async def codes(request: Request) -> Response:
    core = core_of(request)
    now = core.now()
    rows = core.store.all(
        "SELECT user_code, client_id, name, created_at, expires_at, interval, state, project_id,"
        " url_pairing, verification_uri_complete FROM codes WHERE expires_at > ? AND state = 'pending' ORDER BY created_at", now)
    return JSONResponse(rows)


async def approve(request: Request) -> Response:
    core = core_of(request)
    body = await body_of(request)
    project_id = text_field(body, "project_id")
    project = core.store.project(project_id)
    if project is None:
        return fail(404, f"no project {project_id}")
    code = core.store.live_code(request.path_params["user_code"], core.now())
    if code is None:
        return fail(404, "no live pending code " + request.path_params["user_code"][:12])
    device = core.store.attach_device(client_id=code["client_id"], client_pk=code["client_pk"],
                                      project_id=project_id, name=code["name"], now=core.now())
    core.store.run("UPDATE codes SET state='approved', project_id=?, device_pk=?"
                   " WHERE device_code_hash=?", project_id, device["id"],
                   code["device_code_hash"])
    return Response(status_code=204)


async def deny(request: Request) -> Response:
    core = core_of(request)
    code = core.store.live_code(request.path_params["user_code"], core.now())
    if code is None:
        return fail(404, "no live pending code " + request.path_params["user_code"][:12])
    core.store.run("UPDATE codes SET state='denied' WHERE device_code_hash=?",
                   code["device_code_hash"])
    return Response(status_code=204)


def device_row(core: CloudCore, d: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": d["id"], "device_id": d["device_id"], "client_id": d["client_id"],
        "name": d["name"], "project_id": d["project_id"], "status": device_status(core, d),
        "paused": bool(d["paused"]), "firmware_versions": json.loads(d["firmware_versions"]),
        "last_firmware": d["last_firmware"], "last_seen_at": d["last_seen_at"],
        "revoked": bool(d["revoked"]),
        "pause_windows": core.store.all(
            "SELECT start, end FROM pause_windows WHERE device_pk=? ORDER BY id", d["id"]),
    }


async def devices(request: Request) -> Response:
    core = core_of(request)
    return JSONResponse([device_row(core, d) for d in
                         core.store.all("SELECT * FROM devices ORDER BY created_at")])


async def device_patch(request: Request) -> Response:
    core = core_of(request)
    body = await body_of(request)
    name = text_field(body, "name")
    device = core.store.device_by_any_id(request.path_params["device_id"])
    if device is None:
        return fail(404, "no such device")
    core.store.run("UPDATE devices SET name=?, updated_at=? WHERE id=?", name, core.now(),
                   device["id"])
    return JSONResponse(device_row(core, core.store.device(device["id"]) or device))


async def device_action(request: Request) -> Response:
    core = core_of(request)
    device = core.store.device_by_any_id(request.path_params["device_id"])
    action = request.path_params["action"]
    if device is None:
        return fail(404, "no such device")
    now = core.now()
    pk = device["id"]
    if action == "pause":
        if not device["paused"]:
            with core.store.tx() as db:
                db.execute("UPDATE devices SET paused=1 WHERE id=?", (pk,))
                db.execute("INSERT INTO pause_windows (device_pk, start) VALUES (?, ?)", (pk, now))
            await broadcast_status(core, pk, "paused")
    elif action == "resume":
        if device["paused"]:
            with core.store.tx() as db:
                db.execute("UPDATE devices SET paused=0 WHERE id=?", (pk,))
                db.execute("UPDATE pause_windows SET end=? WHERE device_pk=? AND end IS NULL",
                           (now, pk))
            await broadcast_status(core, pk, "online")
    elif action == "revoke":
        with core.store.tx() as db:
            db.execute("UPDATE devices SET revoked=1 WHERE id=?", (pk,))
            db.execute("UPDATE grants SET revoked=1 WHERE device_pk=?", (pk,))
        for peer in list(core.sockets.get(pk, ())):
            try:
                await peer.ws.close(code=1008)
            except Exception:
                pass
    elif action == "drop-content":  # a retired chaos lane's device: its ledger rows stay
        ids = [r["id"] for r in core.store.all("SELECT id FROM assets WHERE device_pk=?", pk)]
        await asyncio.to_thread(drop_blobs, core, ids)
    else:
        return fail(404, f"unknown device action {action[:20]!r}")
    return Response(status_code=204)


def drop_blobs(core: CloudCore, asset_ids: list[str]) -> None:
    """Delete the stored bytes (asset file, part files) of these assets; worker thread."""
    for asset_id in asset_ids:
        core.blobs.asset_path(asset_id).unlink(missing_ok=True)
        shutil.rmtree(core.blobs.part_path(asset_id, 1).parent, ignore_errors=True)


async def expire_tokens(request: Request) -> Response:
    core = core_of(request)
    body = await body_of(request)
    device_id = body.get("device_id")
    now = core.now() - 0.001
    if device_id is None:
        core.store.run("UPDATE tokens SET expires_at=? WHERE kind='access' AND expires_at > ?",
                       now, now)
    else:
        device = core.store.device_by_any_id(str(device_id))
        if device is None:
            return fail(404, "no such device")
        core.store.run("UPDATE tokens SET expires_at=? WHERE kind='access' AND device_pk=?"
                       " AND expires_at > ?", now, device["id"], now)
    return Response(status_code=204)


async def clock_advance(request: Request) -> Response:
    core = core_of(request)
    body = await body_of(request)
    seconds = body.get("seconds")
    if (isinstance(seconds, bool) or not isinstance(seconds, int | float)
            or not 0 <= seconds <= 10 * 365 * 86400):
        raise ConfigError("seconds must be a number within 0..315360000 (the clock only moves "
                          "forward, at most ten years at a time)")
    return JSONResponse({"offset": core.advance(float(seconds))})


async def faults(request: Request) -> Response:
    """GET lists, DELETE removes, POST adds; `?client_id=`: that device's rules only."""
    core = core_of(request)
    client_id = request.query_params.get("client_id") or None
    if request.method == "GET":
        return JSONResponse([f.to_dict() for f in core.faults
                             if client_id is None or f.client_id == client_id])
    if request.method == "DELETE":
        core.delete_faults(client_id=client_id)
        return Response(status_code=204)
    rule = parse_fault(await body_of(request))
    core.add_fault(rule)
    return JSONResponse(rule.to_dict(), status_code=201)


async def fault_one(request: Request) -> Response:
    core = core_of(request)
    fault_id = request.path_params["fault_id"]
    if request.method == "DELETE":
        if not core.delete_faults(fault_id):
            return fail(404, "no such fault")
        return Response(status_code=204)
    for rule in core.faults:
        if rule.id == fault_id:
            return JSONResponse(rule.to_dict())
    return fail(404, "no such fault")


async def fault_release(request: Request) -> Response:
    """Let the answers a `hold` rule keeps back go: {"released": true} if one was held."""
    core = core_of(request)
    fault_id = request.path_params["fault_id"]
    for rule in core.faults:
        if rule.id == fault_id:
            if rule.kind != "hold":
                return fail(409, f"fault {fault_id} is a {rule.kind} rule, not a hold")
            return JSONResponse({"released": core.release_hold(rule), **rule.to_dict()})
    return fail(404, "no such fault")


def int_param(request: Request, name: str, default: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    if not text.isdigit():
        raise ConfigError(f"{name} must be a non-negative integer")
    return int(text)


async def journal(request: Request) -> Response:
    core = core_of(request)
    core.flush_journal()
    since = int_param(request, "since", 0)
    limit = min(int_param(request, "limit", 10000), 100000)
    return JSONResponse(core.store.journal(since, limit))


async def ledger(request: Request) -> Response:
    core = core_of(request)
    return JSONResponse(rules.ledger(core.store, request.query_params.get("device_id"),
                                     with_tree=False))


async def assets(request: Request) -> Response:
    core = core_of(request)
    return JSONResponse(rules.ledger(core.store, request.query_params.get("device_id"),
                                     with_tree=True))


async def asset_content(request: Request) -> Response:
    """The reassembled bytes of a complete asset, for media probes (timecode, codec, bitrate).

    Streamed from the blob store (Range requests work); `X-Asset-Sha256` lets the reader
    check it got the whole file.
    """
    core = core_of(request)
    asset_id = request.path_params["asset_id"]
    asset = core.store.one("SELECT id, state, sha256, filesize FROM assets WHERE id=?", asset_id)
    if asset is None:
        return fail(404, f"no asset {asset_id[:64]!r}")
    path = core.blobs.asset_path(asset["id"])
    if asset["state"] != "complete" or not path.is_file():
        counts = core.store.one("SELECT COUNT(*) AS n, COALESCE(SUM(stored), 0) AS s FROM parts"
                                " WHERE asset_id=?", asset["id"]) or {"n": 0, "s": 0}
        return fail(404, f"asset {asset['id']} has no content yet: state {asset['state']}, "
                         f"{counts['s']} of {counts['n']} registered parts stored")
    return FileResponse(path, media_type="application/octet-stream",
                        headers={"X-Asset-Sha256": asset["sha256"] or ""})


async def plain_http(request: Request) -> Response:
    core = core_of(request)
    rows = core.store.all("SELECT * FROM plain_http ORDER BY id")
    for row in rows:
        row["headers"] = json.loads(row["headers"] or "{}")
    return JSONResponse(rows)


async def websockets(request: Request) -> Response:
    core = core_of(request)
    rows = core.store.all("SELECT s.*, d.device_id AS device_uuid FROM ws_sessions s"
                          " LEFT JOIN devices d ON d.id = s.device_pk ORDER BY s.id")
    return JSONResponse([{"id": r["id"], "device_id": r["device_pk"],
                          "device_uuid": r["device_uuid"], "topic": r["topic"],
                          "connected_at": r["connected_at"],
                          "last_heartbeat_at": r["last_heartbeat_at"],
                          "closed_at": r["closed_at"], "close_reason": r["close_reason"]}
                         for r in rows])


async def device_tokens(request: Request) -> Response:
    """The access and refresh token values issued to one device since the emulator started.

    For the bench's own leak scan (C2C-SEC-04): it searches the device's logs, state and
    console for these exact values and reports only where one was found. Kept in memory
    only; a restarted emulator knows none (the list is then empty).
    """
    core = core_of(request)
    device = core.store.device_by_any_id(request.path_params["device_id"])
    if device is None:
        return fail(404, "no such device")
    issued = list(core.issued_tokens.get(device["id"], ()))
    return JSONResponse({"device_id": device["id"], "tokens": issued},
                        headers={"Cache-Control": "no-store"})


async def token_polls(request: Request) -> Response:
    """Device-code polls the emulator answered (oldest first), optionally of one client id."""
    core = core_of(request)
    client_id = request.query_params.get("client_id")
    rows = [p for p in core.token_polls if client_id is None or p["client_id"] == client_id]
    return JSONResponse(rows)


async def status_beats(request: Request) -> Response:
    """A device's real-time status beats since cloud time `since`: status-socket opens and
    Phoenix heartbeats, and answered POST /v2/devices/heartbeat calls; with the cloud's `now`
    so the bench can bound an observation window on the same clock."""
    core = core_of(request)
    core.flush_journal()
    device = core.store.device_by_any_id(request.query_params.get("device_id") or "")
    if device is None:
        return fail(404, "no such device")
    try:
        since = float(request.query_params.get("since") or 0)
    except ValueError:
        raise ConfigError("since must be a number (cloud time)") from None
    pk = device["id"]
    beats = [{"t": r["t"], "kind": "socket", "session_id": r["session_id"]} for r in core.store.all(
        "SELECT t, session_id FROM ws_beats WHERE device_pk=? AND t >= ? ORDER BY t", pk, since)]
    beats += [{"t": r["connected_at"], "kind": "socket-open", "session_id": r["id"]}
              for r in core.store.all("SELECT id, connected_at FROM ws_sessions WHERE device_pk=?"
                                      " AND connected_at >= ?", pk, since)]
    beats += [{"t": r["t"], "kind": "heartbeat", "session_id": None} for r in core.store.all(
        "SELECT t FROM journal WHERE device_id=? AND t >= ? AND method='POST'"
        " AND path LIKE '/v2/devices/heartbeat%' AND status BETWEEN 200 AND 299", pk, since)]
    beats.sort(key=lambda b: b["t"])
    return JSONResponse({"device_id": pk, "now": core.now(), "beats": beats})


def control_routes() -> list[Route]:
    r = [
        ("/state", state, ["GET"]),
        ("/reset", reset, ["POST"]),
        ("/settings", settings, ["GET", "PUT"]),
        ("/clients", clients, ["GET", "POST"]),
        ("/projects", projects, ["GET", "POST"]),
        ("/projects/{project_id}", project_patch, ["PATCH"]),
        ("/codes", codes, ["GET"]),
        ("/codes/{user_code}/approve", approve, ["POST"]),
        ("/codes/{user_code}/deny", deny, ["POST"]),
        ("/devices", devices, ["GET"]),
        ("/devices/{device_id}", device_patch, ["PATCH"]),
        ("/devices/{device_id}/{action}", device_action, ["POST"]),
        ("/devices/{device_id}/tokens", device_tokens, ["GET"]),
        ("/token-polls", token_polls, ["GET"]),
        ("/status-beats", status_beats, ["GET"]),
        ("/tokens/expire", expire_tokens, ["POST"]),
        ("/clock/advance", clock_advance, ["POST"]),
        ("/faults", faults, ["GET", "POST", "DELETE"]),
        ("/faults/{fault_id}", fault_one, ["GET", "DELETE"]),
        ("/faults/{fault_id}/release", fault_release, ["POST"]),
        ("/journal", journal, ["GET"]),
        ("/ledger", ledger, ["GET"]),
        ("/assets", assets, ["GET"]),
        ("/assets/{asset_id}/content", asset_content, ["GET"]),
        ("/plain-http", plain_http, ["GET"]),
        ("/websockets", websockets, ["GET"]),
    ]
    return [Route(PREFIX + path, control(fn), methods=methods) for path, fn, methods in r]
