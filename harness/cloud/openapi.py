"""Hand-written OpenAPI 3.1 description of the control API (served at /_bench/openapi.json)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

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
        "kind": {"enum": ["slowdown", "internal_error", "request_timeout", "expired_url",
                          "too_many_requests", "unauthorized", "drop", "slow_down"],
                 "description": "slow_down (target api only): the next `count` device-code "
                                "polls (POST /v2/auth/token, device_code grant, for a live "
                                "code) answer 400 {\"error\": \"slow_down\"} and the code's "
                                "interval grows by slow_down_increment, as RFC 8628 says"},
        "retry_after": {"type": "integer", "minimum": 0},
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
    "/tokens/expire": {"post": op("Access tokens expire now", body=props(device_id="string"),
                                  status="204")},
    "/clock/advance": {"post": op("Move the emulator clock forward",
                                  props(offset="number"), props(seconds="number"))},
    "/faults": {"get": op("Fault rules", LIST), "post": op("Add a fault rule", FAULT, FAULT,
                                                            status="201"),
                "delete": op("Remove every fault rule", status="204")},
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
