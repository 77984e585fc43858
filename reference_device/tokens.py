"""Access/refresh tokens: proactive and reactive refresh, serialised, durable before use.

Refresh tokens are single-use. The new pair is written (encrypted, fsync'd, renamed) before
the old pair is dropped from memory. If the refresh answer was lost and the old refresh
token is dead (`invalid_request`), or the device was revoked (401), the state becomes
`repair_needed`: uploads stop, the queue stays intact, and a new pairing is needed.

Only the refusals c2c-api.md §3.3 names kill the credentials: `invalid_request` /
`invalid_grant` (a used or unknown refresh token) and 401. Any other answer (another 4xx,
an intermediary's page, a garbled 200) keeps the pair: the refresh token was never consumed
by a refusal, and §2.3 warns that 4xx/404 can come from intermediaries. A refresh that keeps
failing gives up after REFRESH_ATTEMPTS tries as a RetryableError (the caller backs off, the
file stays queued); the state never stays "refreshing" and only a stored new pair counts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from reference_device.api import ApiClient, OAuthError
from reference_device.config import DeviceConfig
from reference_device.credentials import CredentialStore
from reference_device.errors import AuthError, RepairNeeded, RetryableError, UnauthorizedError
from reference_device.retry import Backoff, RetryBudget

log = logging.getLogger(__name__)
T = TypeVar("T")
TOKEN_KEYS = ("access_token", "refresh_token", "expires_at", "lifetime", "refresh_count")
REPAIR_ERRORS = ("invalid_request", "invalid_grant")
"""OAuth errors of a refresh that mean the refresh token is dead (c2c-api.md §3.2, §3.3)."""
REFRESH_ATTEMPTS = 3
"""Tries per refresh() call before the failure goes back to the caller as transient."""


class TokenManager:
    """Owns the token pair. `call(fn)` runs fn(access_token) with refresh-once-and-replay."""

    def __init__(
        self,
        config: DeviceConfig,
        api: ApiClient,
        store: CredentialStore,
        *,
        stop: threading.Event,
        on_refreshed: Callable[[], object] | None = None,
        on_repair: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.api = api
        self.store = store
        self.stop = stop
        self.on_refreshed = on_refreshed
        self.on_repair = on_repair
        self._lock = threading.RLock()
        self._access: str | None = None
        self._refresh: str | None = None
        self.expires_at = 0.0
        self.lifetime = 0.0
        self.refresh_count = 0
        self.state = "none"
        self.backoff = Backoff(config.backoff_base, config.backoff_cap)
        self.budget = RetryBudget(config.retry_budget)
        data = store.load()
        if data.get("repair_needed"):
            self.state = "repair_needed"
        elif data.get("access_token") and data.get("refresh_token"):
            self._set(data)

    def _set(self, data: dict[str, Any]) -> None:
        self._access = data["access_token"]
        self._refresh = data["refresh_token"]
        self.expires_at = float(data.get("expires_at", 0))
        self.lifetime = float(data.get("lifetime", 0))
        self.refresh_count = int(data.get("refresh_count", self.refresh_count))
        self.state = "valid"

    # --- public ----------------------------------------------------------------------------
    @property
    def paired(self) -> bool:
        return self._access is not None and self.state in ("valid", "refreshing")

    def snapshot(self) -> dict[str, Any]:
        return {"state": self.state, "expires_at": int(self.expires_at), "refresh_count": self.refresh_count}

    def accept(self, answer: dict[str, Any], refresh_count: int | None = None) -> None:
        """Store a fresh token answer (pairing or refresh) durably, then start using it.

        The answer was checked by the API layer (answers.token_answer); the old pair stays
        in use until the new one is stored, and the refresh count only moves with it.
        """
        lifetime = float(answer.get("expires_in") or 28800)
        data = {
            "access_token": str(answer["access_token"]),
            "refresh_token": str(answer["refresh_token"]),
            "expires_at": time.time() + lifetime,
            "lifetime": lifetime,
            "refresh_count": self.refresh_count if refresh_count is None else refresh_count,
            "repair_needed": False,
        }
        with self._lock:
            self.store.update(**data)  # durable before the old pair is dropped
            self._set(data)

    def margin(self) -> float:
        lifetime = self.lifetime or 28800.0
        return min(self.config.refresh_margin, lifetime / 3)

    def refresh_due_at(self) -> float:
        return self.expires_at - self.margin()

    def refresh_if_due(self) -> None:
        """The periodic refresh: refresh only when due, with the guard `refresh` keeps against a
        refresh another thread made meanwhile. Each refresh rotates the single-use refresh token,
        so a second one right after the first doubles the window in which a power cut loses the
        pair (the cloud rotated it, the answer died with the device)."""
        self.access_token()

    def access_token(self) -> str:
        """Current access token, refreshed first when within the margin of expiry."""
        with self._lock:
            if self.state == "repair_needed":
                raise RepairNeeded("credentials are no longer valid; pair again")
            if self._access is None:
                raise AuthError("not paired")
            token = self._access
            due = time.time() >= self.refresh_due_at()
        if due:
            return self.refresh(token)
        return token

    def call(self, fn: Callable[[str], T]) -> T:
        """Run fn(token); on 401 refresh once (shared with concurrent callers) and replay."""
        token = self.access_token()
        try:
            return fn(token)
        except UnauthorizedError:
            fresh = self.refresh(token)
            return fn(fresh)

    def refresh(self, seen_token: str | None = None) -> str:
        """Refresh unless another thread already did since `seen_token` was read."""
        with self._lock:
            if self.state == "repair_needed":
                raise RepairNeeded("credentials are no longer valid; pair again")
            if self._access is None or self._refresh is None:
                raise AuthError("not paired")
            if seen_token is not None and seen_token != self._access and time.time() < self.refresh_due_at():
                return self._access
            self.state = "refreshing"
            try:
                token = self._refresh_locked()
            finally:
                if self.state == "refreshing":
                    self.state = "valid"  # a failed refresh keeps the pair we have
        if self.on_refreshed is not None:
            try:
                self.on_refreshed()
            except Exception as exc:
                log.warning("after-refresh identify failed: %s", exc)
        assert token is not None
        return token

    def _refresh_locked(self) -> str:
        """One refresh under the lock: the new pair is parsed, then stored, then used."""
        refresh_token = self._refresh
        assert refresh_token is not None
        secret = self.config.client_secret or ""
        attempt = 0
        while True:
            if self.stop.is_set():
                raise AuthError("stopping during refresh")
            try:
                answer = self.api.refresh_token(self.config.client_id, secret, refresh_token)
                break
            except RetryableError as exc:
                attempt += 1
                if attempt >= REFRESH_ATTEMPTS:
                    log.warning("token refresh failed %d times (%s); credentials kept, "
                                "retrying later", attempt, exc)
                    raise RetryableError(f"token refresh failed: {exc}", status=exc.status,
                                         retry_after=exc.retry_after) from None
                wait = self.backoff.delay(attempt - 1, exc.retry_after, self.budget.acquire(exc.timeout))
                log.warning("token refresh failed (%s); retrying in %.1fs", exc, wait)
                self.stop.wait(wait)
            except OAuthError as exc:
                if exc.status == 401 or exc.error in REPAIR_ERRORS:
                    self._enter_repair(f"refresh refused: {exc.error}")
                    raise RepairNeeded(f"token refresh refused ({exc.error}); pair again") from None
                log.warning("token refresh answered %s (HTTP %d): not a reason to re-pair; "
                            "credentials kept, retrying later", exc.error, exc.status)
                raise RetryableError(f"token refresh answered {exc.error} (HTTP {exc.status})",
                                     status=exc.status, retry_after=max(5.0, self.backoff.cap)) from None
        self.accept(answer, refresh_count=self.refresh_count + 1)
        log.info("token refreshed (count=%d)", self.refresh_count)
        assert self._access is not None
        return self._access

    def _enter_repair(self, why: str) -> None:
        log.error("re-pair needed: %s", why)
        self.state = "repair_needed"
        self._access = None
        self._refresh = None
        self.store.update(access_token=None, refresh_token=None, repair_needed=True)
        if self.on_repair is not None:
            self.on_repair(why)

    def wipe(self) -> None:
        """Forget the tokens (logout)."""
        with self._lock:
            self._access = None
            self._refresh = None
            self.expires_at = 0.0
            self.state = "none"
            self.refresh_count = 0
            self.store.wipe()

    def forget(self) -> tuple[str | None, str | None]:
        """Forget the tokens and hand back the last pair, so the caller can revoke it.

        One step under the lock: no other thread can read (or refresh) the pair after it is
        handed out, so nothing uses a grant that is being revoked.
        """
        with self._lock:
            pair = (self._access, self._refresh)
            self.wipe()
            return pair

    def current_tokens(self) -> tuple[str | None, str | None]:
        with self._lock:
            return self._access, self._refresh
