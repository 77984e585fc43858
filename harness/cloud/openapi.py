"""Hand-written OpenAPI 3.1 description of the control API (served at /_bench/openapi.json)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from harness.cloud.core import FAULT_KINDS

OBJ: dict[str, Any] = {"type": "object"}
LIST: dict[str, Any] = {"type": "array", "items": OBJ}
ERROR = {"description": "refused", "content": {"application/json": {"schema": {
    "type": "object", "properties": {"error": {"type": "string"}}}}}}


def op(summary: str, answer: dict[str, Any] | None = None, body: dict[str, Any] | None = None,
       status: str = "200", params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": summary, "responses": {"400": ERROR, "404": ERROR}}
    if status == "204":
        out["responses"]["204"] = {"description": "done"}
    else:
        out["responses"][status] = {"description": "ok", "content": {"application/json": {
            "schema": answer or OBJ}}}
    if body is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        out["parameters"] = params
    return out


def props(**fields: str) -> dict[str, Any]:
    return {"type": "object", "properties": {k: {"type": v} for k, v in fields.items()}}


def path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def query_param(name: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": {"type": kind}}


FAULT = {
    "type": "object", "required": ["target", "kind"],
    "properties": {
        "target": {"enum": ["s3", "api"]},
        "path": {"type": "string", "description": "regular expression on the request path"},
        "method": {"type": "string"}, "count": {"type": "integer", "minimum": 1, "default": 1},
        "kind": {"enum": list(FAULT_KINDS),  # the emulator's own list: the two cannot drift
                 "description": "slow_down (target api only): the next `count` device-code "
                                "polls (POST /v2/auth/token, device_code grant, for a live "
                                "code) answer 400 {\"error\": \"slow_down\"} and the code's "
                                "interval grows by slow_down_increment, as RFC 8628 says; "
                                "conflict_slow_down / conflict_invalid_client (target api "
                                "only): asset creation answers 409 with that message "
                                "(c2c-api.md §3.8)"},
        "retry_after": {"type": "integer", "minimum": 0},
        "client_id": {"type": "string", "description": "only this device's requests (its OAuth client id); "
                                                       "absent: every device's"},
        "hold_s": {"type": "number", "minimum": 0, "maximum": 300, "default": 10,
                   "description": "kind hold: the request is carried out and its answer kept back until "
                                  "POST /faults/{fault_id}/release, the rule's removal or this many seconds"},
    },
}

JOURNAL_ENTRY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "t": {"type": "number", "description": "emulator time (Unix s) the request was recorded, "
                                               "after its answer"},
        "started_at": {"type": ["number", "null"],
                       "description": "emulator time (Unix s, same clock as t) the request "
                                      "reached the emulator (headers parsed); null on rows "
                                      "written by an emulator older than this field"},
        "duration_ms": {"type": ["number", "null"],
                        "description": "monotonic milliseconds from started_at to the "
                                       "answer's final body message (request body upload "
                                       "included); null on older rows"},
        "scheme": {"type": "string"}, "method": {"type": "string"},
        "path": {"type": "string", "description": "path and query, secrets redacted"},
        "status": {"type": "integer"}, "bytes_in": {"type": "integer"},
        "bytes_out": {"type": "integer"}, "client": {"type": ["string", "null"]},
        "device_id": {"type": ["string", "null"]},
        "client_version": {"type": ["string", "null"]},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

PATHS: dict[str, Any] = {
    "/state": {"get": op("Counts of projects, devices, assets, journal size, clock offset")},
    "/reset": {"post": op("Forget everything but the CA and the client registry", status="204")},
    "/settings": {
        "get": op("Effective settings (harness/cloud/settings.py)"),
        "put": op("Change some settings; unknown names and wrong types are refused", body=OBJ),
    },
    "/clients": {
        "get": op("Registered clients (never their secrets)", LIST),
        "post": op("Register a client; the answer holds its client_secret (only here)",
                   body=props(name="string", min_firmware="string", socket_status="boolean"),
                   status="201"),
    },
    "/projects": {"get": op("Projects", LIST),
                  "post": op("Create a project", body=props(name="string"), status="201")},
    "/projects/{project_id}": {"patch": op("Rename a project", body=props(name="string"),
                                           params=[path_param("project_id")])},
    "/codes": {"get": op("Live pending device codes", LIST)},
    "/codes/{user_code}/approve": {"post": op("Approve a code for a project",
                                              body=props(project_id="string"), status="204",
                                              params=[path_param("user_code")])},
    "/codes/{user_code}/deny": {"post": op("Deny a code (poll answers access_denied)",
                                           status="204", params=[path_param("user_code")])},
    "/devices": {"get": op("Project devices with status, pause windows, firmware seen", LIST)},
    "/devices/{device_id}": {"patch": op("Rename a device", body=props(name="string"),
                                         params=[path_param("device_id")])},
    "/devices/{device_id}/pause": {"post": op("Pause (opens a pause window, pushes status)",
                                              status="204", params=[path_param("device_id")])},
    "/devices/{device_id}/resume": {"post": op("Resume (closes the pause window)", status="204",
                                               params=[path_param("device_id")])},
    "/devices/{device_id}/revoke": {"post": op("Remove the device: its tokens answer 401",
                                               status="204", params=[path_param("device_id")])},
    "/devices/{device_id}/drop-content": {"post": op(
        "Delete the stored bytes of the device's uploads (its ledger rows stay): a retired chaos lane",
        status="204", params=[path_param("device_id")])},
    "/tokens/expire": {"post": op("Access tokens expire now", body=props(device_id="string"),
                                  status="204")},
    "/clock/advance": {"post": op("Move the emulator clock forward",
                                  props(offset="number"), props(seconds="number"))},
    "/faults": {"get": op("Fault rules (one device's with client_id)", LIST, params=[query_param("client_id")]),
                "post": op("Add a fault rule", FAULT, FAULT, status="201"),
                "delete": op("Remove every fault rule (one device's with client_id)", status="204",
                             params=[query_param("client_id")])},
    "/faults/{fault_id}/release": {"post": op("Let a held answer go (kind hold)", FAULT,
                                              params=[path_param("fault_id")])},
    "/faults/{fault_id}": {"get": op("One fault rule", FAULT, params=[path_param("fault_id")]),
                           "delete": op("Remove a fault rule", status="204",
                                        params=[path_param("fault_id")])},
    "/journal": {"get": op("Request journal, secrets redacted",
                           {"type": "array", "items": JOURNAL_ENTRY},
                           params=[query_param("since", "integer"),
                                   query_param("limit", "integer")])},
    "/ledger": {"get": op("Delivery ledger per device and file", LIST,
                          params=[query_param("device_id")])},
    "/assets": {"get": op("Ledger rows with tree_path (Cloud Devices/...)", LIST,
                          params=[query_param("device_id")])},
    "/assets/{asset_id}/content": {"get": {
        "summary": "The reassembled bytes of a complete asset (Range requests work)",
        "parameters": [path_param("asset_id")],
        "responses": {
            "200": {"description": "the file", "headers": {"X-Asset-Sha256": {
                "description": "SHA-256 of the whole file", "schema": {"type": "string"}}},
                "content": {"application/octet-stream": {"schema": {
                    "type": "string", "format": "binary"}}}},
            "206": {"description": "the requested range"},
            "404": ERROR,
        },
    }},
    "/plain-http": {"get": op("Attempts on the plain-HTTP listener", LIST)},
    "/websockets": {"get": op("Status socket sessions", LIST)},
    "/devices/{device_id}/tokens": {"get": op(
        "Token values issued to the device (memory only; for the bench's leak scan)",
        props(device_id="string", tokens="array"), params=[path_param("device_id")])},
    "/token-polls": {"get": op("Device-code polls: client_id, started_at, t, answer", LIST,
                               params=[query_param("client_id")])},
    "/status-beats": {"get": op("A device's socket beats and heartbeats since cloud time `since`",
                                props(device_id="string", now="number", beats="array"),
                                params=[query_param("device_id"),
                                        query_param("since", "number")])},
}

SCHEMA: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "c2c-bench cloud emulator control API", "version": "1"},
    "servers": [{"url": "/_bench/v1"}],
    "paths": PATHS,
}


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(SCHEMA)


# --- the device API (c2c-api.md §3): what a device may send and what it is answered --------
# The fuzzer (harness.cloud.fuzz) generates requests from this document and checks every
# answer against it: the statuses listed per operation, the JSON shapes, never a 5xx.
DETAILED: dict[str, Any] = {
    "type": "object", "required": ["code", "errors", "message"],
    "properties": {
        "code": {"type": "integer"}, "message": {"type": "string"},
        "errors": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["code", "detail", "status", "title"],
            "properties": {"code": {"type": "integer"}, "detail": {"type": "string"},
                           "status": {"type": "integer"}, "title": {"type": "string"}}}},
    },
}
SIMPLE: dict[str, Any] = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}
UUID_STR: dict[str, Any] = {"type": "string"}
NULLABLE_STR: dict[str, Any] = {"type": ["string", "null"]}


def answer(schema: dict[str, Any], description: str = "ok") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def detailed_errors(*statuses: int) -> dict[str, Any]:
    return {str(s): answer(DETAILED, "refused (detailed error, c2c-api.md §2.2)") for s in statuses}


def form_body(fields: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "properties": fields, "required": required}
    return {"required": True, "content": {"multipart/form-data": {"schema": schema},
                                          "application/x-www-form-urlencoded": {"schema": schema}}}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
STR: dict[str, Any] = {"type": "string"}
DEVICE_CODE_ANSWER: dict[str, Any] = {
    "type": "object",
    "required": ["device_code", "user_code", "expires_in", "interval", "verification_uri"],
    "properties": {"device_code": STR, "user_code": {"type": "string", "pattern": "^[0-9]{6}$"},
                   "expires_in": {"type": "number"}, "interval": {"type": "number"},
                   "name": STR, "verification_uri": STR, "verification_uri_complete": STR},
}
TOKEN_ANSWER: dict[str, Any] = {
    "type": "object", "required": ["access_token", "refresh_token", "expires_in", "token_type"],
    "properties": {"access_token": STR, "refresh_token": STR, "expires_in": {"type": "number"},
                   "token_type": STR},
}
PROJECT_DEVICE: dict[str, Any] = {
    "type": "object",
    "required": ["_type", "id", "device_id", "name", "project_id", "project", "status", "channels"],
    "properties": {
        "_type": {"const": "project_device"}, "id": STR, "device_id": STR, "name": STR,
        "project_id": STR, "status": {"enum": ["online", "offline", "paused"]},
        "project": {"type": "object", "required": ["id", "name"],
                    "properties": {"id": STR, "name": STR}},
        "channels": {"type": "array", "items": OBJ}, "channel_count": {"type": "integer"},
    },
}
ASSET_REQUEST: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": STR, "filetype": STR, "filesize": {"type": "integer"}, "extension": STR,
        "offset": {"type": "number"}, "channel": {"type": "integer"},
        "parts": {"type": "integer"}, "is_realtime_upload": {"type": "boolean"},
    },
}
ASSET_ANSWER: dict[str, Any] = {
    "type": "object", "required": ["id", "name"],
    "properties": {
        "id": STR, "name": STR, "filetype": STR, "filesize": {"type": ["integer", "null"]},
        "upload_urls": {"type": "array", "items": {"type": "string", "pattern": "^https://"}},
    },
}
PARTS_REQUEST: dict[str, Any] = {
    "type": "object", "required": ["parts"],
    "properties": {
        "parts": {"type": "array", "items": {
            "type": "object", "required": ["number", "size", "is_final"],
            "properties": {"number": {"type": "integer"}, "size": {"type": "integer"},
                           "is_final": {"type": "boolean"}}}},
        "asset_filesize": {"type": "integer"}, "asset_name": STR,
    },
}
NO_CONTENT = {"204": {"description": "done"}}


def device_op(summary: str, ok: dict[str, Any], refusals: tuple[int, ...], *,
              body: dict[str, Any] | None = None, params: list[dict[str, Any]] | None = None,
              bearer: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": summary, "responses": {**ok, **detailed_errors(*refusals)}}
    if bearer:
        out["security"] = BEARER
        out["responses"].setdefault("401", answer(DETAILED, "no valid access token"))
    if body is not None:
        out["requestBody"] = body
    if params:
        out["parameters"] = params
    return out


def auth_op(summary: str, ok: dict[str, Any], fields: dict[str, Any],
            required: list[str], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    responses = {"200": answer(ok), "400": answer(SIMPLE, "refused (OAuth error)"),
                 "401": answer(DETAILED, "revoked device or dead refresh token"),
                 **(extra or {})}
    return {"summary": summary, "requestBody": form_body(fields, required), "responses": responses}


ASSET_REFUSALS = (400, 404, 409, 413, 422)
DEVICE_PATHS: dict[str, Any] = {
    "/v2/auth/device/code": {"post": auth_op(
        "Ask for a device code (§3.1)", DEVICE_CODE_ANSWER,
        {"client_id": STR, "client_secret": STR, "scope": STR, "name": STR},
        ["client_id", "client_secret", "scope"])},
    "/v2/auth/token": {"post": auth_op(
        "Poll a device code or refresh a token pair (§3.2, §3.3)", TOKEN_ANSWER,
        {"grant_type": STR, "client_id": STR, "client_secret": STR, "device_code": STR,
         "refresh_token": STR}, ["grant_type", "client_id"])},
    "/v2/auth/revoke": {"post": auth_op(
        "Revoke a token's grant (§3.4)",
        {"type": "object", "required": ["success"], "properties": {"success": {"type": "boolean"}}},
        {"client_id": STR, "client_secret": STR, "token": STR}, ["client_id", "client_secret", "token"])},
    "/v2/devices/me": {"get": device_op("The project device (§3.5)", {"200": answer(PROJECT_DEVICE)}, ())},
    "/v2/me": {"get": device_op("The user behind the device's grant (§3.15, [OBS])", {"200": answer(
        {"type": "object", "required": ["_type", "id", "name"],
         "properties": {"_type": {"const": "user"}, "id": STR, "name": STR}})}, ())},
    "/v2/devices/heartbeat": {"post": device_op("Keep the device online (§3.6)", NO_CONTENT, ())},
    "/v2/devices/assets": {"post": device_op(
        "Create an asset (§3.8)", {"200": answer(ASSET_ANSWER)}, ASSET_REFUSALS,
        body=json_body(ASSET_REQUEST))},
    "/v2/devices/assets/{asset_id}/realtime_upload/parts": {"post": device_op(
        "Register real-time parts (§3.10)",
        {"200": answer({"type": "object", "required": ["upload_urls"],
                        "properties": {"upload_urls": {"type": "array", "items": STR}}})},
        ASSET_REFUSALS, body=json_body(PARTS_REQUEST), params=[path_param("asset_id")])},
    "/v2/devices/assets/{asset_id}/comments": {"post": device_op(
        "Comment on an asset (§3.11)", {"200": answer(OBJ)}, (400, 404, 413, 422),
        body=json_body({"type": "object", "properties": {"text": STR, "timestamp": {"type": "number"}}}),
        params=[path_param("asset_id")])},
    "/v2/devices/channels": {"post": device_op(
        "Connect a channel (§3.12)", {"200": answer(OBJ)}, (400, 409, 413, 422),
        body=json_body({"type": "object", "properties": {"client_id": STR, "device_model_id": STR}}))},
    "/v2/devices/channels/disconnect": {"post": device_op("Disconnect every channel", NO_CONTENT, ())},
    "/v2/devices/channels/{channel_id}/disconnect": {"post": device_op(
        "Disconnect one channel", NO_CONTENT, (404,), params=[path_param("channel_id")])},
    "/v2/devices/channels/{channel_id}/inputs/{input_index}/trigger": {"post": device_op(
        "Trigger a channel input (§3.13)", NO_CONTENT, (400, 404, 413),
        body=json_body(OBJ), params=[path_param("channel_id"), path_param("input_index")])},
}

DEVICE_SCHEMA: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "c2c-bench cloud emulator device API (c2c-api.md §3)", "version": "1"},
    "servers": [{"url": "/"}],
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "paths": DEVICE_PATHS,
}
"""The device API as the emulator answers it; the fuzzer's contract."""
