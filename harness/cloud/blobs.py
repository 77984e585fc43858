"""Blob store under DATA/blobs: part bodies streamed to disk, assets reassembled from parts.

Every path is built from ids the emulator generated (uuid, part number), never from a
name a device sent, so nothing can be written outside the data directory. Files are
written to a temp file, fsync'd and renamed, so a power cut leaves old or new, never half.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHUNK = 1024 * 1024


@dataclass
class Received:
    """What one PUT body delivered."""

    nbytes: int
    md5: str
    complete: bool
    too_long: bool = False


def _fsync_and_rename(tmp: Path, dest: Path) -> None:
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, dest)
    _fsync_dir(dest.parent)


def _fsync_dir(path: Path) -> None:
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _absorb(md5: Any, handle: Any, chunks: list[bytes]) -> None:
    """Hash and write one block of a part body (worker thread; both release the GIL)."""
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    md5.update(data)
    handle.write(data)


def _sha256_of(path: Path) -> tuple[str, int]:
    sha = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as handle:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while n := handle.readinto(buf):
            sha.update(view[:n])
            size += n
    return sha.hexdigest(), size


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        for sub in ("parts", "assets", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def part_path(self, asset_id: str, number: int) -> Path:
        return self.root / "parts" / str(uuid.UUID(asset_id)) / f"{int(number):05d}.part"

    def asset_path(self, asset_id: str) -> Path:
        return self.root / "assets" / f"{uuid.UUID(asset_id)}.bin"

    def reset(self) -> None:
        for sub in ("parts", "assets", "tmp"):
            shutil.rmtree(self.root / sub, ignore_errors=True)
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    async def receive_part(
        self, receive: Callable[[], Awaitable[dict[str, Any]]], expected: int, dest: Path
    ) -> Received:
        """Stream an ASGI request body to `dest`, hashing as it arrives.

        The body is kept only if exactly `expected` bytes arrive; otherwise the temp file
        is removed and the byte count says how far the sender got. MD5 and the file write
        run in a worker thread on 1 MiB blocks (hashlib and file writes release the GIL),
        one block at a time and in order, so the event loop keeps decrypting TLS meanwhile.
        """
        tmp = self.root / "tmp" / f"{uuid.uuid4()}.tmp"
        md5 = hashlib.md5(usedforsecurity=False)
        nbytes = 0
        complete = False
        too_long = False
        loop = asyncio.get_running_loop()
        pending: asyncio.Future[None] | None = None
        chunks: list[bytes] = []
        buffered = 0
        handle = open(tmp, "wb")  # noqa: SIM115 - closed below, also after a late block
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    break
                body = message.get("body", b"")
                if body:
                    nbytes += len(body)
                    if nbytes > expected:
                        too_long = True
                    elif not too_long:
                        chunks.append(body)
                        buffered += len(body)
                        if buffered >= CHUNK:
                            if pending is not None:
                                await pending
                            pending = loop.run_in_executor(None, _absorb, md5, handle, chunks)
                            chunks, buffered = [], 0
                if not message.get("more_body", False):
                    complete = not too_long and nbytes == expected
                    break
            if pending is not None:
                await pending
                pending = None
            if chunks:
                await loop.run_in_executor(None, _absorb, md5, handle, chunks)
            handle.close()
        except BaseException:
            if pending is not None and not pending.done():  # the thread still writes: close after
                pending.add_done_callback(lambda _: handle.close())
            else:
                handle.close()
            tmp.unlink(missing_ok=True)
            raise
        if not complete:
            tmp.unlink(missing_ok=True)
            return Received(nbytes, md5.hexdigest(), False, too_long)
        dest.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(_fsync_and_rename, tmp, dest)
        return Received(nbytes, md5.hexdigest(), True)

    def assemble(self, asset_id: str, numbers: list[int], drop_parts: bool) -> tuple[str, int]:
        """Concatenate parts (in the given order) into the asset blob; returns (sha256, size).

        Runs in a worker thread. With `drop_parts` (basic uploads) part files are removed
        once the asset blob is durable; real-time parts stay, since a part number may be
        registered again later and the asset reassembled. A basic upload of one part needs
        no copy: the part file (fsync'd when it arrived) is renamed into place.
        """
        dest = self.asset_path(asset_id)
        if drop_parts and len(numbers) == 1:
            part = self.part_path(asset_id, numbers[0])
            sha, size = _sha256_of(part)
            os.replace(part, dest)
            _fsync_dir(dest.parent)
            shutil.rmtree(part.parent, ignore_errors=True)
            return sha, size
        sha = hashlib.sha256()
        size = 0
        tmp = self.root / "tmp" / f"{uuid.uuid4()}.asm"
        with open(tmp, "wb", buffering=CHUNK) as out:
            for number in numbers:
                with open(self.part_path(asset_id, number), "rb") as part:
                    while chunk := part.read(CHUNK):
                        sha.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
        _fsync_and_rename(tmp, dest)
        if drop_parts:
            shutil.rmtree(self.part_path(asset_id, 1).parent, ignore_errors=True)
        return sha.hexdigest(), size

    def overwrite_range(self, asset_id: str, offset: int, part: Path) -> str:
        """A re-PUT with new bytes after completion: last PUT wins, then rehash the asset."""
        dest = self.asset_path(asset_id)
        with open(dest, "r+b") as out, open(part, "rb") as src:
            out.seek(offset)
            while chunk := src.read(CHUNK):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        part.unlink(missing_ok=True)
        return self.hash_file(dest)

    @staticmethod
    def hash_file(path: Path) -> str:
        sha = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                sha.update(chunk)
        return sha.hexdigest()
