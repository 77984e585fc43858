"""Local storage writes for downloaded camera frames: safe names, atomic writes, hashes."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path


def safe_name(name: str) -> str:
    """A camera-supplied name as one harmless path component."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].replace("\0", "")
    base = re.sub(r"[\x00-\x1f]", "_", base).lstrip(".")
    return base or "unnamed"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def atomic_write(path: Path, data: bytes, mtime: int) -> None:
    tmp = path.with_name(f".{path.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    if mtime > 946684800:
        os.utime(tmp, (mtime, mtime))
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
