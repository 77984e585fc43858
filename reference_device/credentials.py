"""Secrets at rest and in logs.

The client secret and the token pair live in one Fernet-encrypted file; the key is a 0600
file in the state dir. Every write is atomic and durable (temp + fsync + rename + dir fsync),
so after a power cut either the old or the new token pair is on disk, never a torn one.
`redactor` is a logging filter that replaces every known secret in every record.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from reference_device.errors import DeviceError

REDACTED = "[REDACTED]"


def atomic_write(path: Path, data: bytes, mode: int = 0o600, *, durable: bool = True) -> None:
    """Write `data` so that a crash leaves either the old file or the new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if not durable:
        return
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class SecretRedactor(logging.Filter):
    """Replaces registered secrets (and anything after 'Bearer ') in every log record."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, *secrets: str | None) -> None:
        with self._lock:
            self._secrets.update(s for s in secrets if s and len(s) >= 4)

    def redact(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not crash logging
            message = str(record.msg)
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


redactor = SecretRedactor()


def install_redactor(logger: logging.Logger | None = None) -> None:
    """Attach the redactor to every handler of `logger` (root by default)."""
    logger = logger or logging.getLogger()
    for handler in logger.handlers:
        if redactor not in handler.filters:
            handler.addFilter(redactor)


class CredentialStore:
    """Encrypted key/value store for client_secret and tokens (one file, one key file)."""

    def __init__(self, path: Path, key_path: Path) -> None:
        self.path = path
        self.key_path = key_path
        self._lock = threading.Lock()
        self._fernet = Fernet(self._load_or_create_key())

    def _load_or_create_key(self) -> bytes:
        try:
            key = self.key_path.read_bytes().strip()
            os.chmod(self.key_path, 0o600)
            return key
        except FileNotFoundError:
            key = Fernet.generate_key()
            atomic_write(self.key_path, key, 0o600)
            return key

    def load(self) -> dict[str, Any]:
        with self._lock:
            try:
                blob = self.path.read_bytes()
            except FileNotFoundError:
                return {}
            try:
                data: dict[str, Any] = json.loads(self._fernet.decrypt(blob))
            except (InvalidToken, ValueError):
                raise DeviceError(
                    f"credential store {self.path.name} is unreadable (wrong key or corrupt); "
                    "log out and pair again"
                ) from None
        for value in data.values():
            if isinstance(value, str):
                redactor.add(value)
        return data

    def save(self, data: dict[str, Any]) -> None:
        """Durably replace the whole store; returns only after it is on disk."""
        for key, value in data.items():
            if isinstance(value, str) and key in ("client_secret", "access_token", "refresh_token"):
                redactor.add(value)
        blob = self._fernet.encrypt(json.dumps(data).encode())
        with self._lock:
            atomic_write(self.path, blob, 0o600)

    def update(self, **changes: Any) -> dict[str, Any]:
        data = self.load()
        data.update(changes)
        self.save(data)
        return data

    def wipe(self, keep: tuple[str, ...] = ("client_secret",)) -> None:
        """Forget tokens (logout); the client secret stays unless `keep` is empty."""
        data = {k: v for k, v in self.load().items() if k in keep}
        if data:
            self.save(data)
        else:
            with self._lock:
                try:
                    self.path.unlink()
                except FileNotFoundError:
                    pass
