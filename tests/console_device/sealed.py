"""Tokens encrypted at rest with the standard library only (no third-party crypto).

The key never touches the disk: it is derived (PBKDF2-HMAC-SHA256) from the client secret,
which comes from the environment, and a random per-device salt kept beside the file. The
cipher is HMAC-SHA256 in counter mode as a keystream (encrypt) and HMAC-SHA256 over nonce
and ciphertext as the tag (then MAC), so a reader of the state folder learns nothing and a
torn or edited file is refused instead of being half-read. Writes are atomic and durable.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

ITERATIONS = 100_000


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write temp + fsync + rename + fsync(dir): after a power cut the file is old or new, never torn."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hmac.new(key, nonce + counter.to_bytes(8, "big"), hashlib.sha256).digest()
        counter += 1
    return bytes(out[:length])


class SealedStore:
    """One JSON document, sealed with a key derived from the client secret."""

    def __init__(self, path: Path, secret: str) -> None:
        self.path = path
        salt_file = path.with_name("seal.salt")
        if not salt_file.exists():
            atomic_write(salt_file, secrets.token_bytes(16))
        salt = salt_file.read_bytes()
        master = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, ITERATIONS, dklen=64)
        self._enc, self._mac = master[:32], master[32:]

    def save(self, doc: dict[str, Any]) -> None:
        plain = json.dumps(doc).encode()
        nonce = secrets.token_bytes(16)
        ct = bytes(a ^ b for a, b in zip(plain, _keystream(self._enc, nonce, len(plain)), strict=True))
        tag = hmac.new(self._mac, nonce + ct, hashlib.sha256).hexdigest()
        atomic_write(self.path, json.dumps({"v": 1, "nonce": nonce.hex(), "ct": ct.hex(), "tag": tag}).encode())

    def load(self) -> dict[str, Any] | None:
        """The document, or None when absent, torn, edited or sealed under another secret."""
        try:
            box = json.loads(self.path.read_bytes())
            nonce, ct = bytes.fromhex(box["nonce"]), bytes.fromhex(box["ct"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        tag = hmac.new(self._mac, nonce + ct, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(tag, str(box.get("tag"))):
            return None
        plain = bytes(a ^ b for a, b in zip(ct, _keystream(self._enc, nonce, len(ct)), strict=True))
        doc = json.loads(plain)
        return doc if isinstance(doc, dict) else None

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
