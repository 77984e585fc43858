"""Error responses as the real services send them, one table shared by every injector.

The same fault kinds are used by the emulator's `/faults` rules (CONTRACTS.md §2), by
mitmproxy's `ErrorInjector` and by the vocabulary, so a scenario reads the same whatever
layer produces it. S3 kinds answer with AWS's XML envelope, API kinds with Frame.io's
detailed JSON error (c2c-api.md §2.2), auth endpoints with the simple OAuth shape.
Some kinds exist only on the API (the 409s of asset creation, §3.8): S3 never sends them,
so asking for them with target `s3` is a ConfigError rather than an invented XML error.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from xml.sax.saxutils import escape

from harness.errors import ConfigError

TARGETS = ("s3", "api")


@dataclass(frozen=True)
class ErrorKind:
    """One injectable failure: its HTTP status, S3 code/message and API title/detail.

    `s3_code` None marks an API-only kind. The detailed body's `message` is `api_title`.
    """

    status: int
    s3_code: str | None
    s3_message: str
    api_title: str
    api_detail: str


KINDS: dict[str, ErrorKind] = {
    "slowdown": ErrorKind(503, "SlowDown", "Please reduce your request rate.",
                          "Service Unavailable", "The service is temporarily unavailable."),
    "internal_error": ErrorKind(500, "InternalError",
                                "We encountered an internal error. Please try again.",
                                "Internal Server Error", "An internal error occurred."),
    "request_timeout": ErrorKind(
        400, "RequestTimeout",
        "Your socket connection to the server was not read from or written to within "
        "the timeout period.",
        "Request Timeout", "The request was not completed in time."),
    "expired_url": ErrorKind(403, "AccessDenied", "Request has expired",
                             "Forbidden", "The upload URL has expired."),
    "too_many_requests": ErrorKind(429, "SlowDown", "Please reduce your request rate.",
                                   "Too Many Requests", "Rate limit exceeded."),
    "unauthorized": ErrorKind(401, "ExpiredToken", "The provided token has expired.",
                              "Not Authorized", "You are not allowed to access that resource"),
    # c2c-api.md §5.5: the other S3 answers a device must sort into retry / new URL / fatal
    # (on the API they answer the nearest detailed error)
    "service_unavailable": ErrorKind(503, "ServiceUnavailable", "Please reduce your request rate.",
                                     "Service Unavailable", "The service is temporarily unavailable."),
    "incomplete_body": ErrorKind(400, "IncompleteBody", "You did not provide the number of "
                                 "bytes specified by the Content-Length HTTP header.",
                                 "Bad Request", "The request body was incomplete."),
    "bad_digest": ErrorKind(400, "BadDigest", "The Content-MD5 you specified did not match what "
                            "we received.", "Bad Request", "The request body was damaged."),
    "time_skewed": ErrorKind(403, "RequestTimeTooSkewed", "The difference between the request "
                             "time and the current time is too large.",
                             "Forbidden", "The request time is too far from the server's."),
    "no_such_upload": ErrorKind(404, "NoSuchUpload", "The specified upload does not exist. The "
                                "upload ID may be invalid, or the upload may have been aborted "
                                "or completed.", "Not Found", "No such upload."),
    # c2c-api.md §3.8 / §11.7: the spec's other 409 messages on asset creation (semantics
    # undocumented; inferred: slow_down = back off and retry, invalid_client = refresh).
    "conflict_slow_down": ErrorKind(409, None, "", "slow_down",
                                    "Too many requests from this device: slow down and retry later."),
    "conflict_invalid_client": ErrorKind(409, None, "", "invalid_client",
                                         "The client credentials were not accepted."),
}
"""Kinds answered with a response. `drop` (close without answering) is handled by injectors."""

ALL_KINDS = (*KINDS, "drop")
API_ONLY_KINDS = tuple(name for name, spec in KINDS.items() if spec.s3_code is None)
"""conflict_slow_down, conflict_invalid_client: refused for target `s3`."""


def check_kind(kind: str, target: str | None = None) -> ErrorKind | None:
    """The kind's definition (None for `drop`); ConfigError naming the kind if unknown,
    or if `target` is given and the kind cannot come from that target."""
    if kind == "drop":
        return None
    try:
        spec = KINDS[kind]
    except KeyError:
        raise ConfigError(
            f"unknown fault kind {kind!r}; known kinds: {', '.join(ALL_KINDS)}"
        ) from None
    if target == "s3" and spec.s3_code is None:
        raise ConfigError(
            f"fault kind {kind!r} is an API answer (HTTP {spec.status} {spec.api_title!r} on "
            "asset creation) that S3 never sends: use target 'api'"
        )
    return spec


def s3_error(kind: str, resource: str = "/", *, retry_after: float | None = None
             ) -> tuple[int, bytes, dict[str, str]]:
    """(status, body, headers) of an S3 XML error for `kind`."""
    spec = check_kind(kind, "s3")
    if spec is None or spec.s3_code is None:
        raise ConfigError("the 'drop' kind has no response body")
    request_id = secrets.token_hex(8).upper()
    host_id = secrets.token_urlsafe(24)
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{spec.s3_code}</Code><Message>{escape(spec.s3_message)}</Message>"
        f"<Resource>{escape(resource)}</Resource><RequestId>{request_id}</RequestId>"
        f"<HostId>{host_id}</HostId></Error>"
    ).encode()
    headers = {"Content-Type": "application/xml", "x-amz-request-id": request_id,
               "x-amz-id-2": host_id}
    _add_retry_after(headers, spec, retry_after)
    return spec.status, body, headers


def api_error(kind: str, path: str = "/", *, retry_after: float | None = None
              ) -> tuple[int, bytes, dict[str, str]]:
    """(status, body, headers) of a Frame.io API error: simple shape on /v2/auth/*, else detailed."""
    spec = check_kind(kind, "api")
    if spec is None:
        raise ConfigError("the 'drop' kind has no response body")
    headers = {"Content-Type": "application/json"}
    if path.startswith("/v2/auth/"):
        error = "invalid_grant" if spec.status in (400, 401, 403) else "server_error"
        if kind == "unauthorized":
            error = "invalid_request"
        elif kind in API_ONLY_KINDS:
            error = spec.api_title  # slow_down / invalid_client are OAuth error codes too
        payload: dict[str, object] = {"error": error}
    else:
        payload = {
            "code": spec.status,
            "errors": [{"code": spec.status, "detail": spec.api_detail, "status": spec.status,
                        "title": spec.api_title}],
            "message": spec.api_title,
        }
    if spec.status == 401:
        headers["WWW-Authenticate"] = (
            'Bearer error="invalid_token", error_description="The access token expired"'
        )
    _add_retry_after(headers, spec, retry_after)
    return spec.status, json.dumps(payload).encode(), headers


def error_response(target: str, kind: str, path: str = "/", *, retry_after: float | None = None
                   ) -> tuple[int, bytes, dict[str, str]]:
    """Dispatch on target: `s3` gives XML, `api` gives Frame.io JSON."""
    if target == "s3":
        return s3_error(kind, path, retry_after=retry_after)
    if target == "api":
        return api_error(kind, path, retry_after=retry_after)
    raise ConfigError(f"unknown fault target {target!r}; known targets: {', '.join(TARGETS)}")


def _add_retry_after(headers: dict[str, str], spec: ErrorKind, retry_after: float | None) -> None:
    if retry_after is not None:
        headers["Retry-After"] = str(max(0, round(retry_after)))
    elif spec.status in (429, 503):
        headers["Retry-After"] = "1"
