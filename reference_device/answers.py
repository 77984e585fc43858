"""One answer-parsing layer for every endpoint the device calls.

A device on hotel or venue Wi-Fi meets captive portals and proxies that answer in the
cloud's place: an HTML page with status 200, an empty 200, truncated JSON, a 50 MB body,
wrongly typed fields. Every such answer is checked here, in this order, BEFORE anything is
decoded: status, content-type, size (the declared Content-Length, then the bytes actually
streamed, never more than `MAX_ANSWER_BYTES` kept in memory), then the JSON body against
what c2c-api.md promises. Whatever does not fit becomes a `BadAnswer`: a RetryableError, so
it takes the same path as a network error (backoff, the file stays queued) and its message
is one line naming the endpoint, the status and what was wrong (never the body: it could
echo a secret).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from reference_device.errors import RetryableError

MAX_ANSWER_BYTES = 1024 * 1024
"""Cap on any answer body the device reads (1 MiB). The largest legitimate answer, a
`/v2/devices/me` with 100 channels, is a few tens of KiB; S3 error documents are < 1 KiB."""
URL_ANSWER_BYTES = 2048
"""Room per upload URL in an asset-create answer: a pre-signed URL is under 1 KiB (2 KiB
with a session token). A 20 GiB file in 8 MiB parts asks 2,560 URLs, about 1.7 MB: the
1 MiB cap alone refused every create of a file over ~12 GiB."""


def create_answer_cap(parts: int) -> int:
    """The answer cap for an asset create asking `parts` upload URLs."""
    return MAX_ANSWER_BYTES + max(0, parts) * URL_ANSWER_BYTES


class BadAnswer(RetryableError):
    """A garbled or unexpected answer (intermediary, truncation, wrong types): transient."""

    def __init__(self, endpoint: str, status: int | None, problem: str,
                 *, retry_after: float | None = None) -> None:
        where = f"{endpoint} answered {status}" if status is not None else endpoint
        super().__init__(f"{where}: {problem}", status=status, code="bad_answer",
                         retry_after=retry_after)
        self.endpoint = endpoint
        self.problem = problem


def read_capped(chunks: Iterator[bytes], endpoint: str, status: int,
                declared_length: str | None, cap: int = MAX_ANSWER_BYTES) -> bytes:
    """Read a streamed body, refusing it as soon as it is known to be larger than `cap`."""
    if declared_length is not None:
        try:
            declared = int(declared_length)
        except ValueError:
            declared = -1
        if declared > cap:
            raise BadAnswer(endpoint, status, f"answer too large ({declared} bytes, cap {cap})")
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        if len(buf) > cap:
            raise BadAnswer(endpoint, status, f"answer too large (over the {cap}-byte cap)")
    return bytes(buf)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def is_json_type(content_type: str | None) -> bool:
    kind = media_type(content_type)
    return kind == "application/json" or kind.endswith("+json")


def parse_json_object(endpoint: str, status: int, content_type: str | None, body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or BadAnswer saying what it was instead."""
    if not body:
        raise BadAnswer(endpoint, status, "empty body instead of JSON")
    if not is_json_type(content_type):
        kind = media_type(content_type) or "no content-type"
        raise BadAnswer(endpoint, status, f"{kind} instead of JSON ({len(body)} bytes; captive portal?)")
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise BadAnswer(endpoint, status, f"invalid JSON ({len(body)} bytes; truncated?)") from None
    if not isinstance(value, dict):
        raise BadAnswer(endpoint, status, f"JSON {type(value).__name__} instead of an object")
    return value


def require_str(body: dict[str, Any], key: str, endpoint: str, status: int) -> str:
    """A non-empty string field, or BadAnswer naming the field and what it was."""
    value = body.get(key)
    if not isinstance(value, str) or not value:
        what = "missing" if value is None else f"a {type(value).__name__}, not a non-empty string"
        raise BadAnswer(endpoint, status, f"field {key!r} is {what}")
    return value


def number_or_none(value: Any) -> float | None:
    """A finite positive number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number > 0 else None


def token_answer(body: dict[str, Any], endpoint: str, status: int) -> tuple[dict[str, Any], str | None]:
    """(access_token, refresh_token, expires_in) of a token answer, and what was repaired.

    A wrongly typed `expires_in` never loses a usable rotated pair: the server has already
    consumed the old refresh token, so the pair is kept with the contract's 8 h lifetime
    (a 401 refreshes early if that was too long). Without two usable tokens there is no
    pair to keep: BadAnswer.
    """
    access = require_str(body, "access_token", endpoint, status)
    refresh = require_str(body, "refresh_token", endpoint, status)
    lifetime = number_or_none(body.get("expires_in"))
    note = None
    if lifetime is None:
        if body.get("expires_in") is not None:
            note = f"{endpoint}: expires_in is not a positive number; assuming 28800 s"
        lifetime = 28800.0
    return {"access_token": access, "refresh_token": refresh, "expires_in": lifetime}, note
