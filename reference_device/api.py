"""The C2C API client: HTTPS only, TLS verified, `x-client-version` on every request.

Maps both error shapes of c2c-api.md §2.2 and the S3 XML errors of §5.5 onto the
retry taxonomy in reference_device.errors. After a connection error the pool is closed and
recreated, so a network change gets fresh connections (and never a re-pair). Every answer is
streamed through reference_device.answers (status, content-type and size checked before
decoding, at most MAX_ANSWER_BYTES read): a garbled answer is a transient BadAnswer.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import ssl
import threading
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from reference_device.answers import (
    MAX_ANSWER_BYTES,
    BadAnswer,
    create_answer_cap,
    media_type,
    parse_json_object,
    read_capped,
    require_str,
    token_answer,
)
from reference_device.config import DeviceConfig
from reference_device.errors import (
    ChannelPaused,
    ExpiredUrlError,
    FatalUploadError,
    RetryableError,
    UnauthorizedError,
    UnusableUrlError,
    UploadError,
)
from reference_device.netstats import NetworkStats

log = logging.getLogger(__name__)
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SCOPE = "asset_create offline"
SLOW_DOWN_MIN_S = 1.0
"""A 409 slow_down on asset creation is never retried sooner (c2c-api.md §11.7: throttling)."""


class OAuthError(Exception):
    """A `/v2/auth/*` call answered with the simple error shape `{"error": ...}`."""

    def __init__(self, error: str, status: int) -> None:
        super().__init__(f"{error} (HTTP {status})")
        self.error = error
        self.status = status


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _detailed_message(resp: httpx.Response) -> str:
    """The detailed error's message/title/detail; for a non-JSON body only its kind and size
    (a portal page in the log says nothing and could echo what the device sent)."""
    if not resp.content:
        return "empty body"
    try:
        body = resp.json()
    except ValueError:
        return f"{media_type(resp.headers.get('content-type')) or 'no content-type'} body, {len(resp.content)} bytes"
    if not isinstance(body, dict):
        return f"JSON {type(body).__name__} body"
    parts = [str(body.get("message") or body.get("error") or "")]
    errors = body.get("errors")
    for err in errors if isinstance(errors, list) else []:
        if isinstance(err, dict):
            parts.append(str(err.get("title") or ""))
            parts.append(str(err.get("detail") or ""))
    return " | ".join(p for p in parts if p)[:300]


VALIDATION_STATUSES = (400, 413, 415, 422)
"""The only 4xx a resource endpoint fails a file for (c2c-api.md §2.4 "Validation"); any
other unlisted 4xx or 3xx may come from an intermediary (§2.3) and is retried."""


def classify_api_error(resp: httpx.Response, endpoint: str = "API") -> UploadError:
    """Turn a non-2xx resource-endpoint answer into the device's taxonomy."""
    status = resp.status_code
    message = _detailed_message(resp)
    lowered = message.lower()
    if status == 401 or "not authorized" in lowered or (status == 409 and "invalid_client" in lowered):
        return UnauthorizedError(f"HTTP {status}: {message}", status=status)
    if status == 409 and "paused" in lowered:
        return ChannelPaused(f"HTTP 409: {message}", status=status, code="channel_paused")
    if status == 409 and "slow_down" in lowered:
        hint = max(_retry_after(resp) or 0.0, SLOW_DOWN_MIN_S)
        return RetryableError(f"HTTP 409: {message}", status=status, code="slow_down", retry_after=hint)
    if status in (408, 429) or status >= 500:
        return RetryableError(f"HTTP {status}: {message}", status=status, retry_after=_retry_after(resp))
    if status in VALIDATION_STATUSES:
        return FatalUploadError(f"HTTP {status}: {message}", status=status)
    return BadAnswer(endpoint, status, f"status not in the contract ({message}); intermediary?",
                     retry_after=_retry_after(resp))


_S3_CODE = re.compile(r"<Code>([^<]+)</Code>")
_S3_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")
_S3_RETRYABLE = {
    "InternalError", "SlowDown", "ServiceUnavailable", "RequestTimeout", "IncompleteBody",
    "BadDigest", "RequestTimeTooSkewed", "OperationAborted", "Throttling",
}


def classify_s3_error(resp: httpx.Response) -> UploadError:
    """Map an S3 XML error (c2c-api.md §5.5) to retry / expired URL / fatal.

    An answer without an S3 error document did not come from S3 (a portal, a proxy): it is
    transient whatever its status, and the log says so instead of "S3 418 :".
    """
    status = resp.status_code
    text = resp.text[:2000]
    m = _S3_CODE.search(text)
    code = m.group(1) if m else ""
    if not code:
        kind = media_type(resp.headers.get("content-type")) or "no content-type"
        return BadAnswer("PUT part", status,
                         f"no S3 error document ({kind}, {len(resp.content)} bytes); not from S3?",
                         retry_after=_retry_after(resp))
    mm = _S3_MESSAGE.search(text)
    msg = f"S3 {status} {code}: {mm.group(1) if mm else ''}".strip()
    if code in _S3_RETRYABLE or status in (408, 429) or status >= 500:
        return RetryableError(msg, status=status, code=code, retry_after=_retry_after(resp))
    if status == 403 and code == "AccessDenied" and "expired" in text.lower():
        return ExpiredUrlError(msg, status=status, code="expired_url")
    if status == 404 and code in ("NoSuchUpload", "NoSuchKey"):
        return ExpiredUrlError(msg, status=status, code=code)
    if status == 401:
        return UnauthorizedError(msg, status=status, code=code)
    return FatalUploadError(msg, status=status, code=code)


_PLAIN_MD5 = re.compile(r'^"?([0-9a-fA-F]{32})"?$')


def _close_quietly(client: httpx.Client | None) -> None:
    if client is not None:
        with contextlib.suppress(Exception):
            client.close()


class _Hashing:
    """Wraps a part's byte iterator and keeps the MD5 of what was actually sent."""

    def __init__(self, body: Iterable[bytes]) -> None:
        self.body = body
        self.md5 = hashlib.md5(usedforsecurity=False)

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.body:
            self.md5.update(chunk)
            yield chunk


class ApiClient:
    """Thin typed client over httpx; one pool, replaced after a transport failure.

    The pool is replaced, not closed under its users: a failed connection says nothing about
    the sibling part uploads on the pool's other connections (an S3 front end drops one), and
    closing them would re-send parts the cloud is storing. The old pool is closed once its
    last request in flight ends."""

    def __init__(self, config: DeviceConfig, stats: NetworkStats | None = None) -> None:
        self.config = config
        self.stats = stats or NetworkStats(config.network_type)
        self.base = config.api_url.rstrip("/")
        self._lock = threading.RLock()  # _pool takes the pool and counts it in one hold
        self._client: httpx.Client | None = None
        self._in_flight: dict[httpx.Client, int] = {}
        self._retired: set[httpx.Client] = set()

    # --- transport -------------------------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(
            cafile=str(self.config.ca_bundle) if self.config.ca_bundle else None
        )
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def _get(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                timeout = self.config.request_timeout
                self._client = httpx.Client(
                    verify=self.ssl_context(),
                    timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
                    headers={"x-client-version": self.config.firmware_version},
                    limits=httpx.Limits(max_connections=self.config.parallelism + 4),
                    follow_redirects=False,
                    trust_env=False,
                )
            return self._client

    def reset_connections(self) -> None:
        """New requests reconnect on a new pool; the old one is closed once no request uses it."""
        with self._lock:
            client, self._client = self._client, None
            if client is not None and self._in_flight.get(client):
                self._retired.add(client)
                client = None
        _close_quietly(client)

    @contextlib.contextmanager
    def _pool(self) -> Iterator[httpx.Client]:
        """The current pool, counted as in use until the request's answer has been read."""
        with self._lock:  # no reset may close the pool between taking it and counting it
            client = self._get()
            self._in_flight[client] = self._in_flight.get(client, 0) + 1
        try:
            yield client
        finally:
            with self._lock:
                left = self._in_flight[client] - 1
                if left:
                    self._in_flight[client] = left
                else:
                    del self._in_flight[client]
                idle_retired = not left and client in self._retired
                if idle_retired:
                    self._retired.discard(client)
            if idle_retired:
                _close_quietly(client)

    def close(self) -> None:
        self.reset_connections()
        with self._lock:
            retired, self._retired = list(self._retired), set()
        for client in retired:
            _close_quietly(client)

    def full_url(self, url: str) -> str:
        """An API path joined to the base, or an absolute URL that must be HTTPS."""
        if "://" in url:
            scheme = url.split("://", 1)[0].lower()
            if scheme != "https":
                raise UnusableUrlError(f"{scheme}:// URL refused: not HTTPS", code="not_https")
            return url
        full = self.base + url
        if not full.startswith("https://"):
            raise FatalUploadError("refusing a non-HTTPS API base URL")
        return full

    @staticmethod
    def endpoint_name(method: str, full: str) -> str:
        """`METHOD /path` for logs: never the query (a signed URL's query is a credential)."""
        parts = urlsplit(full)
        if parts.path.startswith("/v2/") or parts.path == "/health":
            return f"{method} {parts.path}"
        return f"{method} upload URL on {parts.hostname}:{parts.port or 443}"

    def send(
        self,
        method: str,
        url: str,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        answer_cap: int = MAX_ANSWER_BYTES,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request, its answer streamed and capped (answers.MAX_ANSWER_BYTES) before
        anything is decoded; transport failures become RetryableError after a pool reset.

        The returned Response holds the (bounded) body already read.
        """
        hdrs = {"Accept-Encoding": "identity", **(headers or {})}  # no decompression bombs
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        full = self.full_url(url)
        name = self.endpoint_name(method, full)
        try:
            with self._pool() as pool, pool.stream(method, full, headers=hdrs, **kwargs) as streamed:
                content = read_capped(streamed.iter_bytes(), name, streamed.status_code,
                                      streamed.headers.get("content-length"), answer_cap)
                kept = [(k, v) for k, v in streamed.headers.multi_items()
                        if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
                resp = httpx.Response(streamed.status_code, headers=kept, content=content,
                                      request=streamed.request)
        except BadAnswer as exc:
            self.stats.record(False, exc.problem)
            raise
        except httpx.TimeoutException as exc:
            self.stats.record(False, f"timeout: {type(exc).__name__}")
            self.reset_connections()
            raise RetryableError(f"timeout on {name}", timeout=True) from None
        except httpx.TransportError as exc:
            self.stats.record(False, f"connection: {type(exc).__name__}")
            self.reset_connections()
            raise RetryableError(f"connection error on {name}: {type(exc).__name__}") from None
        self.stats.record(resp.status_code < 500)
        return resp

    # --- auth (simple error shape, multipart form) -----------------------------------------
    def _auth(self, path: str, fields: dict[str, str], headers: dict[str, str] | None = None) -> dict[str, Any]:
        """A `/v2/auth/*` call: the 2xx JSON object, OAuthError for the simple error shape,
        RetryableError/BadAnswer for everything else (5xx, 429, a 4xx that is not the
        OAuth shape: an intermediary's page never counts as the cloud's refusal)."""
        files = {k: (None, v) for k, v in fields.items()}
        resp = self.send("POST", path, files=files, headers=headers)
        name = f"POST {path}"
        status = resp.status_code
        ctype = resp.headers.get("content-type")
        if status >= 500:
            raise RetryableError(f"{name} answered {status}", status=status, retry_after=_retry_after(resp))
        if status == 429:
            raise RetryableError(f"{name} answered 429", status=429, retry_after=_retry_after(resp))
        if 200 <= status < 300:
            return parse_json_object(name, status, ctype, resp.content)
        if status == 401:
            raise OAuthError("unauthorized", 401)
        if 400 <= status < 500:
            body = parse_json_object(name, status, ctype, resp.content)
            error = body.get("error")
            if not isinstance(error, str) or not error:
                raise BadAnswer(name, status, "no OAuth error code in the answer")
            raise OAuthError(error, status)
        raise BadAnswer(name, status, "status not in the contract (redirect? captive portal?)")

    def request_device_code(self, client_id: str, client_secret: str) -> dict[str, Any]:
        """The device-code answer with its fields checked (c2c-api.md §3.1)."""
        name = "POST /v2/auth/device/code"
        body = self._auth(
            "/v2/auth/device/code",
            {"client_id": client_id, "client_secret": client_secret, "scope": SCOPE},
            headers={"x-client-platypus-enabled": "true"},
        )
        require_str(body, "device_code", name, 200)
        code = body.get("user_code")
        if isinstance(code, int) and not isinstance(code, bool):
            body["user_code"] = str(code)
        require_str(body, "user_code", name, 200)
        for key in ("expires_in", "interval"):
            value = body.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise BadAnswer(name, 200, f"field {key!r} is a {type(value).__name__}, not a number")
        for key in ("verification_uri", "verification_uri_complete"):
            if body.get(key) is not None and not isinstance(body.get(key), str):
                body[key] = None
        return body

    def poll_token(self, client_id: str, client_secret: str, device_code: str) -> dict[str, Any]:
        body = self._auth(
            "/v2/auth/token",
            {"grant_type": DEVICE_CODE_GRANT, "client_id": client_id,
             "client_secret": client_secret, "device_code": device_code},
        )
        answer, note = token_answer(body, "POST /v2/auth/token", 200)
        if note:
            log.warning("%s", note)
        return answer

    def refresh_token(self, client_id: str, client_secret: str, refresh_token: str) -> dict[str, Any]:
        body = self._auth(
            "/v2/auth/token",
            {"grant_type": "refresh_token", "client_id": client_id,
             "client_secret": client_secret, "refresh_token": refresh_token},
        )
        answer, note = token_answer(body, "POST /v2/auth/token (refresh)", 200)
        if note:
            log.warning("%s", note)
        return answer

    def revoke(self, client_id: str, client_secret: str, token: str) -> None:
        files = {k: (None, v) for k, v in
                 {"client_id": client_id, "client_secret": client_secret, "token": token}.items()}
        resp = self.send("POST", "/v2/auth/revoke", files=files)
        if resp.status_code >= 300:
            raise RetryableError(f"POST /v2/auth/revoke answered {resp.status_code}", status=resp.status_code)

    # --- resource endpoints (detailed error shape) -----------------------------------------
    def _resource(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        resp = self.send(method, path, token=token, **kwargs)
        if not 200 <= resp.status_code < 300:
            raise classify_api_error(resp, f"{method} {path.split('?')[0]}")
        return resp

    def _resource_json(self, method: str, path: str, token: str, **kwargs: Any) -> dict[str, Any]:
        resp = self._resource(method, path, token, **kwargs)
        return parse_json_object(f"{method} {path}", resp.status_code,
                                 resp.headers.get("content-type"), resp.content)

    def me(self, token: str) -> dict[str, Any]:
        """GET /v2/devices/me (c2c-api.md §3.5): BadAnswer unless a project id is in it."""
        name = "GET /v2/devices/me"
        body = self._resource_json("GET", "/v2/devices/me", token)
        project = body.get("project")
        if not isinstance(project, dict):
            body["project"] = project = {}
        pid = body.get("project_id") or project.get("id")
        if not isinstance(pid, str) or not pid:
            raise BadAnswer(name, 200, "no project id (project_id / project.id)")
        body["project_id"] = pid
        if not isinstance(project.get("name"), str):
            project["name"] = None
        for key in ("id", "device_id", "status"):
            if body.get(key) is not None and not isinstance(body.get(key), str):
                body[key] = None
        return body

    def heartbeat(self, token: str) -> None:
        """204 (or any 2xx without a body / with JSON); an HTML 200 is a portal, not the cloud."""
        resp = self._resource("POST", "/v2/devices/heartbeat", token)
        ctype = resp.headers.get("content-type")
        if resp.content and not media_type(ctype).endswith("json"):
            raise BadAnswer("POST /v2/devices/heartbeat", resp.status_code,
                            f"{media_type(ctype) or 'no content-type'} body instead of 204 (captive portal?)")

    def create_asset(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """The asset answer with `id` (and, for a basic asset, `upload_urls`) checked (§3.8)."""
        name = "POST /v2/devices/assets"
        parts = body.get("parts")
        cap = create_answer_cap(parts if isinstance(parts, int) else 1)
        asset = self._resource_json("POST", "/v2/devices/assets", token, json=body, answer_cap=cap)
        require_str(asset, "id", name, 200)
        if not body.get("is_realtime_upload"):
            urls = asset.get("upload_urls")
            if not isinstance(urls, list) or not urls or not all(isinstance(u, str) and u for u in urls):
                raise BadAnswer(name, 200, "upload_urls is not a non-empty list of URLs")
        return asset

    def register_parts(self, token: str, asset_id: str, body: dict[str, Any]) -> list[str]:
        path = f"/v2/devices/assets/{asset_id}/realtime_upload/parts"
        answer = self._resource_json("POST", path, token, json=body)
        urls = answer.get("upload_urls")
        if not isinstance(urls, list) or len(urls) != len(body["parts"]) or not all(
            isinstance(u, str) and u for u in urls
        ):
            raise BadAnswer(f"POST {path}", 200, "upload_urls does not hold one URL per registered part")
        return [str(u) for u in urls]

    # --- S3 --------------------------------------------------------------------------------
    def put_part(self, url: str, body: Iterable[bytes], length: int, content_type: str) -> None:
        """PUT one part: exact Content-Length, no Authorization, streamed body.

        200 is "stored" only with an ETag (S3 always sends one); a plain-MD5 ETag (a simple
        PUT's) must be the MD5 of the bytes sent. Otherwise the part is re-sent.
        """
        headers = {
            "Content-Type": content_type,
            "Content-Length": str(length),
            "x-amz-acl": "private",
        }
        hashing = _Hashing(body)
        resp = self.send("PUT", url, content=iter(hashing), headers=headers)
        if resp.status_code != 200:
            raise classify_s3_error(resp)
        etag = resp.headers.get("etag")
        if not etag:
            raise BadAnswer("PUT part", 200, "no ETag: the part was not stored")
        plain = _PLAIN_MD5.match(etag.strip())
        if plain and plain.group(1).lower() != hashing.md5.hexdigest():
            raise BadAnswer("PUT part", 200, "ETag is not the MD5 of the part sent")
