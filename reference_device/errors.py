"""The reference device's own exception tree.

Kept apart from harness.errors: the device is a product that must run without the bench.
Messages never carry secrets (tokens, client_secret, device codes).
"""

from __future__ import annotations


class DeviceError(Exception):
    """Base of every error the reference device raises."""


class ConfigError(DeviceError):
    """The configuration is invalid; the message names the field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"config field {field!r}: {problem}")
        self.field = field
        self.problem = problem


class PairingError(DeviceError):
    """The device-code flow ended without tokens. `reason` is machine-readable."""

    REASONS = ("cancelled", "expired", "denied", "invalid_client", "invalid_request", "error")

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message or f"pairing ended: {reason}")
        self.reason = reason


class AuthError(DeviceError):
    """An authenticated call could not be authorised (after one refresh)."""


class RepairNeeded(AuthError):
    """Credentials are dead (revoked, or a refresh answer was lost): pair again."""


class UploadError(DeviceError):
    """An upload step failed."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class RetryableError(UploadError):
    """Transient: retry with backoff. `retry_after` is a server hint in seconds."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        timeout: bool = False,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after
        self.timeout = timeout


class UnauthorizedError(RetryableError):
    """401 on a resource call: refresh once and replay."""


class ExpiredUrlError(UploadError):
    """A pre-signed URL is dead: re-create the asset (basic) or fresh part URLs (real-time)."""


class UnusableUrlError(ExpiredUrlError):
    """An upload URL the device must not or cannot use (not HTTPS, or it kept failing past
    its expiry): handled like an expired URL, with a fresh asset create (c2c-api.md §5.3)."""


class ChannelPaused(UploadError):
    """409 Channel Paused: the media was captured in a pause window. Never retried."""


class FatalUploadError(UploadError):
    """Not retried unchanged (validation, signature): fail this file, continue the queue."""


class MediaError(DeviceError):
    """A media file is unusable; `reason` goes to the status page (quarantine)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Cancelled(DeviceError):
    """The user cancelled this file or the device is stopping."""
