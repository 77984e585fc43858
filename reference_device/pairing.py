"""The device-code pairing flow (c2c-api.md §3.1–§3.2), cancellable at every step.

`Pairing.run()` blocks until it returns a token answer or raises PairingError. The
`cancel` event is checked before the code request, while the code is shown, between polls
and after approval (tokens obtained after a cancel are revoked, never stored).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from reference_device.api import ApiClient, OAuthError
from reference_device.config import DeviceConfig
from reference_device.credentials import redactor
from reference_device.errors import PairingError, RetryableError
from reference_device.retry import Backoff

log = logging.getLogger(__name__)
SLOW_DOWN_STEP = 5.0


class PairingStatus:
    """What the status page shows about pairing (c2c-status/1 `pairing`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.state = "unpaired"
        self.user_code: str | None = None
        self.verification_uri: str | None = None
        self.verification_uri_complete: str | None = None
        self.expires_at = 0
        self.error: str | None = None

    def set(self, state: str, **fields: Any) -> None:
        with self._lock:
            self.state = state
            if state not in ("showing_code",):
                self.user_code = None
                self.verification_uri = None
                self.verification_uri_complete = None
                self.expires_at = 0
            for key, value in fields.items():
                setattr(self, key, value)
            if "error" not in fields:
                self.error = None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "state": self.state, "user_code": self.user_code,
                "verification_uri": self.verification_uri,
                "verification_uri_complete": self.verification_uri_complete,
                "expires_at": int(self.expires_at), "error": self.error,
            }


class Pairing:
    """One run of the device-code flow."""

    def __init__(
        self,
        config: DeviceConfig,
        api: ApiClient,
        status: PairingStatus,
        cancel: threading.Event,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.api = api
        self.status = status
        self.cancel = cancel
        self.backoff = backoff or Backoff(config.backoff_base, config.backoff_cap)
        self.clock = clock
        self.codes_requested = 0
        self.polls = 0

    def _check(self) -> None:
        if self.cancel.is_set():
            self.status.set("cancelled")
            raise PairingError("cancelled", "pairing cancelled")

    def _wait(self, seconds: float) -> None:
        if self.cancel.wait(max(0.0, seconds)):
            self._check()

    def _secret(self) -> str:
        if not self.config.client_secret:
            self.status.set("error", error="no client_secret configured")
            raise PairingError("invalid_client", "no client_secret configured")
        return self.config.client_secret

    def _request_code(self) -> dict[str, Any]:
        attempt = 0
        while True:
            self._check()
            self.status.set("requesting_code")
            try:
                answer = self.api.request_device_code(self.config.client_id, self._secret())
                self.codes_requested += 1
                redactor.add(str(answer.get("device_code", "")))
                return answer
            except RetryableError as exc:
                attempt += 1
                self.status.set("requesting_code", error=str(exc))
                self._wait(self.backoff.delay(attempt - 1, exc.retry_after))
            except OAuthError as exc:
                self._fail(exc.error)

    def _fail(self, error: str) -> None:
        if error == "invalid_client":
            self.status.set("error", error="invalid_client: the client_secret or client_id is wrong")
            raise PairingError("invalid_client", "the cloud refused the client credentials (invalid_client)")
        if error in ("access_denied", "invalid_grant"):
            self.status.set("denied", error=error)
            raise PairingError("denied", f"pairing denied ({error})")
        self.status.set("error", error=error)
        raise PairingError("invalid_request" if error == "invalid_request" else "error", f"pairing failed ({error})")

    def run(self) -> dict[str, Any]:
        """Return the token answer of an approved pairing, or raise PairingError."""
        while True:
            code = self._request_code()
            expires_at = self.clock() + float(code.get("expires_in") or 120)
            interval = float(code.get("interval") or 5)
            self._check()
            self.status.set(
                "showing_code",
                user_code=str(code.get("user_code", "")),
                verification_uri=code.get("verification_uri"),
                verification_uri_complete=code.get("verification_uri_complete"),
                expires_at=expires_at,
            )
            log.info("pairing code shown (expires in %.0fs)", expires_at - self.clock())
            answer = self._poll(str(code["device_code"]), interval, expires_at)
            if answer is None:
                self.status.set("expired")
                log.info("pairing code expired; requesting a new one")
                continue
            if self.cancel.is_set():
                self.discard(answer)
                self._check()
            self.status.set("approved")
            return answer

    def _poll(self, device_code: str, interval: float, expires_at: float) -> dict[str, Any] | None:
        attempt = 0
        while True:
            self._wait(interval)
            if self.clock() >= expires_at:
                return None
            self._check()
            self.polls += 1
            try:
                return self.api.poll_token(self.config.client_id, self._secret(), device_code)
            except RetryableError as exc:
                attempt += 1
                self._wait(self.backoff.delay(attempt - 1, exc.retry_after))
                continue
            except OAuthError as exc:
                if exc.error == "authorization_pending":
                    continue
                if exc.error == "slow_down":
                    interval += SLOW_DOWN_STEP
                    log.info("slow_down: poll interval now %.0fs", interval)
                    continue
                if exc.error == "expired_token":
                    return None
                self._fail(exc.error)

    def discard(self, answer: dict[str, Any]) -> None:
        """Cancelled after approval: revoke the grant instead of storing it."""
        redactor.add(str(answer.get("access_token", "")), str(answer.get("refresh_token", "")))
        try:
            self.api.revoke(self.config.client_id, self.config.client_secret or "",
                            str(answer.get("refresh_token", "")))
        except Exception as exc:
            log.warning("could not revoke the discarded grant: %s", type(exc).__name__)
