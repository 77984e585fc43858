"""The error shapes Frame.io answers with (c2c-api.md §2.2) and S3's XML errors (§5.5)."""

from __future__ import annotations

import json
import secrets
from typing import Any
from xml.sax.saxutils import escape

from starlette.responses import JSONResponse, Response

_COMPACT = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))


class CompactJSONResponse(JSONResponse):
    """Starlette's JSONResponse byte for byte (the same json options), with one encoder built
    once: json.dumps with options builds a new encoder on every call (the asset-create path)."""

    def render(self, content: Any) -> bytes:
        return _COMPACT.encode(content).encode("utf-8")


STATUS_TITLES = {
    400: "Bad Request", 401: "Not Authorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict",
    413: "Payload Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Entity",
    429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable",
}


def detailed(status: int, title: str | None = None, detail: str | None = None,
             headers: dict[str, str] | None = None) -> JSONResponse:
    """Frame.io's detailed error: {code, errors: [{code, detail, status, title}], message}."""
    title = title or STATUS_TITLES.get(status, "Error")
    body = {
        "code": status,
        "errors": [{"code": status, "detail": detail or title, "status": status, "title": title}],
        "message": title,
    }
    return JSONResponse(body, status_code=status, headers=headers)


def not_authorized() -> JSONResponse:
    return detailed(401, "Not Authorized", "You are not allowed to access that resource")


def simple(error: str, status: int = 400, description: str | None = None) -> JSONResponse:
    """OAuth-style error of the /v2/auth/* endpoints: {"error": "..."}."""
    body: dict[str, Any] = {"error": error}
    if description:
        body["error_description"] = description
    return JSONResponse(body, status_code=status)


def s3_error(status: int, code: str, message: str,
             headers: dict[str, str] | None = None, **extra: str) -> Response:
    request_id = secrets.token_hex(8).upper()
    host_id = secrets.token_urlsafe(24)
    fields = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in extra.items())
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>{fields}"
        f"<RequestId>{request_id}</RequestId><HostId>{host_id}</HostId></Error>"
    )
    all_headers = {"x-amz-request-id": request_id, "x-amz-id-2": host_id}
    all_headers.update(headers or {})
    return Response(body, status_code=status, media_type="application/xml", headers=all_headers)
