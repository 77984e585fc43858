"""HTTPS to the C2C API: pairing (device-code flow), tokens, retries (c2c-api.md §3-§5).

One httpx client with certificate and host name verification against the given CA bundle
and the x-client-version header on every request. Tokens live in a SealedStore and are
refreshed ahead of expiry and on a 401, one refresh at a time, the new pair saved before
it is used (the refresh token is single-use). Secrets and tokens are never logged: errors
name the status and the error code only.
"""

from __future__ import annotations

import random
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.console_device.sealed import SealedStore

VERSION = "1.2.0"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# pairing errors after which the user needs a new code: the device requests one by itself
NEW_CODE_ERRORS = frozenset({"expired_token", "access_denied", "invalid_grant", "invalid_request"})


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def backoff(attempt: int, cap: float = 8.0) -> float:
    """0.5, 1, 2, 4 ... capped, with +-20 % jitter (a link coming back is noticed within `cap`)."""
    return min(cap, 0.5 * 2 ** min(attempt, 10)) * random.uniform(0.8, 1.2)


def retry_after(r: httpx.Response, attempt: int) -> float:
    try:
        return min(60.0, max(0.0, float(r.headers.get("retry-after", ""))))
    except ValueError:
        return backoff(attempt)


class Unpaired(Exception):
    """The grant is gone (refresh refused): the device must pair again."""


class Paused(Exception):
    """409 Channel Paused: the media was captured while the device was paused."""


class Rejected(Exception):
    """The API refused the request for good (400/404/422): do not retry it unchanged."""


class Stopped(Exception):
    """The device is shutting down."""


class Garbled(Exception):
    """A 2xx whose body is not the API's JSON (a captive portal, a cut-off answer): transient."""


def json_object(r: httpx.Response, *required: str) -> dict[str, Any]:
    """The answer's JSON object with `required` keys; Garbled when it is anything else."""
    try:
        body = r.json()
    except ValueError:
        raise Garbled(f"answered {r.status_code} with a body that is not JSON "
                      f"({r.headers.get('content-type', 'no content-type')}, {len(r.content)} bytes)") from None
    if not isinstance(body, dict):
        raise Garbled(f"answered {r.status_code} with JSON that is not an object")
    missing = [k for k in required if k not in body]
    if missing:
        raise Garbled(f"answered {r.status_code} without {', '.join(missing)}")
    return body


def _error_of(r: httpx.Response) -> str:
    """The OAuth `error` or the detailed error's message/title, for decisions and logs (no secrets)."""
    try:
        body = r.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    if "error" in body and isinstance(body["error"], str):
        return body["error"]
    parts = [body.get("message"), body.get("title")]
    errs = body.get("errors")
    if isinstance(errs, list) and errs and isinstance(errs[0], dict):
        parts += [errs[0].get("title"), errs[0].get("detail")]
    return " / ".join(dict.fromkeys(str(p) for p in parts if p))


class Api:
    """The device's side of the contract, minus uploads' byte handling."""

    def __init__(self, base: str, ca_bundle: str, client_id: str, secret: str, store: SealedStore,
                 stop: threading.Event) -> None:
        if not base.startswith("https://"):
            raise SystemExit("the API URL must be https://")
        ctx = ssl.create_default_context(cafile=ca_bundle)  # chain and host name verified
        self.base, self.client_id, self._secret = base.rstrip("/"), client_id, secret
        self.http = httpx.Client(verify=ctx, timeout=httpx.Timeout(30.0, connect=10.0),
                                 headers={"x-client-version": VERSION}, follow_redirects=False)
        self.store, self.stop = store, stop
        self._lock = threading.Lock()
        self._tokens: dict[str, Any] | None = store.load()
        self.refreshes = 0
        self.on_identity: Callable[[dict[str, Any]], None] | None = None

    # --- pairing -----------------------------------------------------------------------------
    @property
    def paired(self) -> bool:
        return self._tokens is not None

    def _form(self, **fields: str) -> dict[str, tuple[None, str]]:
        return {k: (None, v) for k, v in {"client_id": self.client_id, "client_secret": self._secret, **fields}.items()}

    def _wait(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Stopped

    def pair(self) -> None:
        """Device-code flow until tokens arrive; a denied or expired code is replaced by a new one."""
        attempt = 0
        while True:
            try:
                r = self.http.post(f"{self.base}/v2/auth/device/code", files=self._form(scope="asset_create offline"))
            except httpx.HTTPError as exc:
                log(f"pairing: cannot reach the API ({type(exc).__name__}); retrying")
                self._wait(backoff(attempt))
                attempt += 1
                continue
            if r.status_code != 200:
                log(f"pairing: code request answered {r.status_code} {_error_of(r)}; retrying")
                self._wait(retry_after(r, attempt) if r.status_code in (429, 503) else backoff(attempt + 3))
                attempt += 1
                continue
            try:
                code = json_object(r, "user_code", "device_code")
            except Garbled as exc:
                log(f"pairing: code request {exc}; retrying")
                self._wait(backoff(attempt + 3))
                attempt += 1
                continue
            attempt = 0
            log(f"PAIRING CODE: {code['user_code']}  (enter it at {code.get('verification_uri', 'Frame.io')})")
            if self._poll(code):
                return
            self._wait(1.0)

    def _poll(self, code: dict[str, Any]) -> bool:
        """Poll for tokens every `interval` s (+5 s per slow_down); False when a new code is needed."""
        interval = float(code.get("interval") or 5)
        deadline = time.monotonic() + float(code.get("expires_in") or 120)
        while True:
            self._wait(interval)
            if time.monotonic() > deadline + interval:
                log("pairing: the code expired; requesting a new one")
                return False
            try:
                r = self.http.post(f"{self.base}/v2/auth/token",
                                   files=self._form(grant_type=DEVICE_GRANT, device_code=str(code["device_code"])))
            except httpx.HTTPError as exc:
                log(f"pairing: poll failed ({type(exc).__name__}); polling on")
                continue
            if r.status_code == 200:
                try:
                    self._accept(json_object(r, "access_token", "refresh_token"))
                except Garbled as exc:
                    log(f"pairing: poll {exc}; polling on")
                    continue
                log("paired")
                return True
            error = _error_of(r)
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval += 5.0
                log(f"pairing: slow_down; polling every {interval:.0f} s")
                continue
            if error in NEW_CODE_ERRORS:
                log(f"pairing: {error}; requesting a new code")
                return False
            if r.status_code == 429 or r.status_code >= 500:
                continue
            log(f"pairing: poll answered {r.status_code} {error or 'error'}; requesting a new code")
            self._wait(5.0)
            return False

    # --- tokens ------------------------------------------------------------------------------
    def _accept(self, body: dict[str, Any]) -> None:
        """Persist the new pair (sealed, durable) before anyone uses it."""
        lifetime = float(body.get("expires_in") or 28800)
        tokens = {"access": str(body["access_token"]), "refresh": str(body["refresh_token"]),
                  "expires_at": time.time() + lifetime, "lifetime": lifetime}
        self.store.save(tokens)
        self._tokens = tokens

    def forget(self) -> None:
        with self._lock:
            self._tokens = None
            self.store.clear()

    def access(self) -> str:
        tokens = self._tokens
        if tokens is None:
            raise Unpaired("no tokens")
        return str(tokens["access"])

    def due(self) -> bool:
        """Refresh ahead of expiry: at 80 % of the lifetime, at most 10 minutes early."""
        t = self._tokens
        if t is None:
            return False
        margin = min(600.0, 0.2 * float(t.get("lifetime") or 28800))
        return time.time() >= float(t["expires_at"]) - margin

    def refresh(self, used: str | None = None) -> None:
        """One refresh at a time; skipped when another thread already replaced `used`."""
        with self._lock:
            t = self._tokens
            if t is None:
                raise Unpaired("no tokens")
            if used is not None and t["access"] != used:
                return
            attempt = 0
            while True:
                try:
                    r = self.http.post(f"{self.base}/v2/auth/token",
                                       files=self._form(grant_type="refresh_token", refresh_token=str(t["refresh"])))
                except httpx.HTTPError as exc:
                    log(f"token refresh: {type(exc).__name__}; retrying")
                    self._wait(backoff(attempt))
                    attempt += 1
                    continue
                if r.status_code == 200:
                    try:
                        self._accept(json_object(r, "access_token", "refresh_token"))
                    except Garbled as exc:  # the pair on disk is still the one the cloud expects
                        log(f"token refresh {exc}; retrying")
                        self._wait(backoff(attempt))
                        attempt += 1
                        continue
                    self.refreshes += 1
                    break
                error = _error_of(r)
                # c2c-api.md §3.3: a used refresh token (invalid_request) or a 401 means the grant
                # is gone; anything else (a portal's 403, a 404 from an intermediary, 429, 5xx)
                # did not consume the refresh token: keep it and try again
                if not (r.status_code == 401 or (r.status_code == 400 and error in NEW_CODE_ERRORS | {"invalid_client"})):
                    log(f"token refresh answered {r.status_code} {error or 'without an API error'}; retrying")
                    self._wait(retry_after(r, attempt) if r.status_code in (429, 503) else backoff(attempt))
                    attempt += 1
                    continue
                log(f"token refresh refused ({r.status_code} {error}): pairing again")
                self._tokens = None
                self.store.clear()
                raise Unpaired("refresh refused")
        self.identify()

    def identify(self) -> None:
        """GET /v2/devices/me after every new authorization or refresh (project by id, name shown)."""
        try:
            r = self.call("GET", "/v2/devices/me", identify=False)
        except (Rejected, Paused):
            return
        if r.status_code == 200 and self.on_identity is not None:
            try:
                self.on_identity(json_object(r))
            except Garbled as exc:
                log(f"GET me {exc}; the project name is kept")

    # --- resource calls ----------------------------------------------------------------------
    def call(self, method: str, path: str, *, json: Any = None, identify: bool = True,
             answer: tuple[str, ...] | None = None) -> httpx.Response:
        """An authorized call, retried on network errors, 5xx and 429 (Retry-After honoured);
        a 401 refreshes and replays; 409 slow_down backs off, invalid_client refreshes. With
        `answer`, a 2xx must be a JSON object with those keys, else it is retried (Garbled)."""
        attempt = 0
        while True:
            if self.stop.is_set():
                raise Stopped
            if self.due():
                self.refresh()
            token = self.access()
            try:
                r = self.http.request(method, self.base + path, json=json, headers={"Authorization": f"Bearer {token}"})
            except httpx.HTTPError as exc:
                log(f"{method} {path.split('/')[-1]}: {type(exc).__name__}; retrying")
                self._wait(backoff(attempt))
                attempt += 1
                continue
            if r.status_code < 300:
                if answer is None:
                    return r
                try:
                    json_object(r, *answer)
                    return r
                except Garbled as exc:
                    wait = backoff(attempt + 1)
                    log(f"{method} {path.split('/')[-1]}: {exc}; retrying in {wait:.1f} s")
                    self._wait(wait)
                    attempt += 1
                    continue
            error = _error_of(r)
            if r.status_code == 401:
                self.refresh(used=token)
                attempt += 1
                continue
            if r.status_code == 409 and "paused" in error.lower():
                raise Paused(error)
            if r.status_code == 409 and "invalid_client" in error:
                self.refresh(used=token)
                attempt += 1
                continue
            if r.status_code in (409, 429) or r.status_code >= 500:
                wait = retry_after(r, attempt) if r.status_code in (429, 503) else backoff(attempt + 1)
                log(f"{method} {path.split('/')[-1]}: {r.status_code} {error}; retrying in {wait:.1f} s")
                self._wait(wait)
                attempt += 1
                continue
            raise Rejected(f"{r.status_code} {error}")

    def heartbeat(self) -> None:
        self.call("POST", "/v2/devices/heartbeat")
