"""The C2C API client: HTTPS only, TLS verified, `x-client-version` on every request.

Maps both error shapes of c2c-api.md §2.2 and the S3 XML errors of §5.5 onto the
retry taxonomy in reference_device.errors. After a connection error the pool is closed and
recreated, so a network change gets fresh connections (and never a re-pair).
"""

from __future__ import annotations

import logging
import re
import ssl
import threading
from collections.abc import Iterable
from typing import Any

import httpx

from reference_device.config import DeviceConfig
from reference_device.errors import (
    ChannelPaused,
    ExpiredUrlError,
    FatalUploadError,
    RetryableError,
    UnauthorizedError,
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
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    if not isinstance(body, dict):
        return str(body)[:200]
    parts = [str(body.get("message") or body.get("error") or "")]
    for err in body.get("errors") or []:
        if isinstance(err, dict):
            parts.append(str(err.get("title") or ""))
            parts.append(str(err.get("detail") or ""))
    return " | ".join(p for p in parts if p)


def classify_api_error(resp: httpx.Response) -> UploadError:
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
    return FatalUploadError(f"HTTP {status}: {message}", status=status)


_S3_CODE = re.compile(r"<Code>([^<]+)</Code>")
_S3_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")
_S3_RETRYABLE = {
    "InternalError", "SlowDown", "ServiceUnavailable", "RequestTimeout", "IncompleteBody",
    "BadDigest", "RequestTimeTooSkewed", "OperationAborted", "Throttling",
}


def classify_s3_error(resp: httpx.Response) -> UploadError:
    """Map an S3 XML error (c2c-api.md §5.5) to retry / expired URL / fatal."""
    status = resp.status_code
    text = resp.text[:2000]
    m = _S3_CODE.search(text)
    code = m.group(1) if m else ""
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


class ApiClient:
    """Thin typed client over httpx; one pool, recreated after transport failures."""

    def __init__(self, config: DeviceConfig, stats: NetworkStats | None = None) -> None:
        self.config = config
        self.stats = stats or NetworkStats(config.network_type)
        self.base = config.api_url.rstrip("/")
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None

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
        """Drop every pooled connection (network change): the next call reconnects."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:
                pass

    def close(self) -> None:
        self.reset_connections()

    def send(
        self,
        method: str,
        url: str,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request; transport failures become RetryableError after a pool reset."""
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        full = url if url.startswith("https://") else self.base + url
        if not full.startswith("https://"):
            raise FatalUploadError("refusing a non-HTTPS URL")
        try:
            resp = self._get().request(method, full, headers=hdrs, **kwargs)
        except httpx.TimeoutException as exc:
            self.stats.record(False, f"timeout: {type(exc).__name__}")
            self.reset_connections()
            raise RetryableError(f"timeout on {method}", timeout=True) from None
        except httpx.TransportError as exc:
            self.stats.record(False, f"connection: {type(exc).__name__}")
            self.reset_connections()
            raise RetryableError(f"connection error on {method}: {type(exc).__name__}") from None
        self.stats.record(resp.status_code < 500)
        return resp

    # --- auth (simple error shape, multipart form) -----------------------------------------
    def _auth(self, path: str, fields: dict[str, str], headers: dict[str, str] | None = None) -> dict[str, Any]:
        files = {k: (None, v) for k, v in fields.items()}
        resp = self.send("POST", path, files=files, headers=headers)
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code >= 500:
            raise RetryableError(f"HTTP {resp.status_code} on {path}", status=resp.status_code)
        if resp.status_code == 401:
            raise OAuthError("unauthorized", 401)
        if resp.status_code >= 400 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            if resp.status_code == 429:
                raise RetryableError(f"HTTP 429 on {path}", status=429, retry_after=_retry_after(resp))
            raise OAuthError(str(error or f"http_{resp.status_code}"), resp.status_code)
        return body

    def request_device_code(self, client_id: str, client_secret: str) -> dict[str, Any]:
        return self._auth(
            "/v2/auth/device/code",
            {"client_id": client_id, "client_secret": client_secret, "scope": SCOPE},
            headers={"x-client-platypus-enabled": "true"},
        )

    def poll_token(self, client_id: str, client_secret: str, device_code: str) -> dict[str, Any]:
        return self._auth(
            "/v2/auth/token",
            {"grant_type": DEVICE_CODE_GRANT, "client_id": client_id,
             "client_secret": client_secret, "device_code": device_code},
        )

    def refresh_token(self, client_id: str, client_secret: str, refresh_token: str) -> dict[str, Any]:
        return self._auth(
            "/v2/auth/token",
            {"grant_type": "refresh_token", "client_id": client_id,
             "client_secret": client_secret, "refresh_token": refresh_token},
        )

    def revoke(self, client_id: str, client_secret: str, token: str) -> None:
        self._auth(
            "/v2/auth/revoke",
            {"client_id": client_id, "client_secret": client_secret, "token": token},
        )

    # --- resource endpoints (detailed error shape) -----------------------------------------
    def _resource(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        resp = self.send(method, path, token=token, **kwargs)
        if resp.status_code >= 300:
            raise classify_api_error(resp)
        return resp

    def me(self, token: str) -> dict[str, Any]:
        return self._resource("GET", "/v2/devices/me", token).json()

    def heartbeat(self, token: str) -> None:
        self._resource("POST", "/v2/devices/heartbeat", token)

    def create_asset(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._resource("POST", "/v2/devices/assets", token, json=body).json()

    def register_parts(self, token: str, asset_id: str, body: dict[str, Any]) -> list[str]:
        resp = self._resource(
            "POST", f"/v2/devices/assets/{asset_id}/realtime_upload/parts", token, json=body
        )
        urls = resp.json().get("upload_urls")
        if not isinstance(urls, list) or len(urls) != len(body["parts"]):
            raise FatalUploadError("real-time parts answer has the wrong number of URLs")
        return [str(u) for u in urls]

    # --- S3 --------------------------------------------------------------------------------
    def put_part(self, url: str, body: Iterable[bytes], length: int, content_type: str) -> None:
        """PUT one part: exact Content-Length, no Authorization, streamed body."""
        headers = {
            "Content-Type": content_type,
            "Content-Length": str(length),
            "x-amz-acl": "private",
        }
        resp = self.send("PUT", url, content=body, headers=headers)
        if resp.status_code != 200:
            raise classify_s3_error(resp)
