"""Blob store under DATA/blobs: part bodies streamed to disk, assets reassembled from parts.

Every path is built from ids the emulator generated (uuid, part number), never from a
name a device sent, so nothing can be written outside the data directory. Files are
written to a temp file, fsync'd and renamed, so a power cut leaves old or new, never half.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import hashlib
import os
import shutil
import threading
import uuid
from collections.abc import Awaitable, Buffer, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

CHUNK = 1024 * 1024
FileId = tuple[int, int]
"""(inode, mtime ns): a file, not a name; a re-PUT renames a new file over a part's name (an
inode alone could be a freed one reused)."""
_SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>: start writeback of dirty pages, do not wait


def _sync_file_range() -> Callable[..., int] | None:
    """libc's sync_file_range where there is one (Linux), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        function: Callable[..., int] = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    return function


_SYNC_FILE_RANGE = _sync_file_range()


class Hasher(Protocol):
    """What `hashlib` objects offer that the blob store uses."""

    def update(self, data: Buffer, /) -> None: ...

    def hexdigest(self) -> str: ...


@dataclass
class Received:
    """What one PUT body delivered."""

    nbytes: int
    md5: str
    complete: bool
    too_long: bool = False
    sha256: str | None = None  # of the body, when asked for (a basic asset of one part)
    file: FileId = (0, 0)  # of the stored file: whose bytes `sha256` describes


@dataclass(frozen=True)
class KnownDigest:
    """A part file's SHA-256 taken as it arrived, valid only for that very file (FileId)."""

    sha256: str
    file: FileId


def _fsync_and_rename(tmp: Path, dest: Path) -> FileId:
    """Make `tmp` durable under the name `dest`; returns its FileId."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
        stored = _file_id(os.fstat(fd))
    finally:
        os.close(fd)
    os.replace(tmp, dest)
    _fsync_dir(dest.parent)
    return stored


def _fsync_dir(path: Path) -> None:
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing this range to disk now (sync_file_range, no wait).

    Why: the fsync before the answer then finds most of the part already on its way, so a
    part's last block is not followed by its whole size of writeback. Durability still comes
    from that fsync; where the call does not exist this is a no-op.
    """
    if _SYNC_FILE_RANGE is not None:
        _SYNC_FILE_RANGE(fd, ctypes.c_int64(offset), ctypes.c_int64(length), _SYNC_FILE_RANGE_WRITE)


def _absorb(hashes: list[Hasher], handle: BinaryIO, chunks: list[bytes], offset: int) -> None:
    """Hash and write one block of a part body (worker thread; both release the GIL).

    The chunks are hashed and written one by one as they came off the socket: no join copy.
    """
    for chunk in chunks:
        for digest in hashes:
            digest.update(chunk)
    handle.writelines(chunks)
    handle.flush()
    _start_writeback(handle.fileno(), offset, sum(len(c) for c in chunks))


def _write_all(out: BinaryIO, block: memoryview) -> None:
    """An unbuffered write may take less than it was given: write the rest."""
    while block:
        written = out.write(block) or 0
        block = block[written:]


def _file_id(stat: os.stat_result) -> FileId:
    return stat.st_ino, stat.st_mtime_ns


def file_id(path: Path) -> FileId:
    """Which file is under `path` now ((-1, -1) when none)."""
    try:
        return _file_id(os.stat(path))
    except OSError:
        return -1, -1


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


def _append(part: Path, out: BinaryIO, digest: Hasher, offset: int) -> tuple[int, FileId]:
    """Append one part file to `out`, hashing it; returns (new end offset, the part's FileId)."""
    buf = bytearray(CHUNK)  # fits in L2: hashed and written while still in cache
    view = memoryview(buf)
    with open(part, "rb", buffering=0) as part_file:
        inode = _file_id(os.fstat(part_file.fileno()))
        while n := part_file.readinto(buf):
            block = view[:n]
            digest.update(block)
            _write_all(out, block)
            _start_writeback(out.fileno(), offset, n)
            offset += n
    return offset, inode


class _Assembly:
    """A basic asset's blob built while its parts arrive: the stored prefix, appended in order.

    Why: copying and hashing a multi-part asset only after its last part leaves the whole
    file's read, hash, write and fsync between the last byte and the answer; appended as
    parts 1, 2, ... come in, only the last few parts are left for then.
    """

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.digest = hashlib.sha256()
        self.size = 0
        self.appended: list[tuple[int, FileId]] = []  # (part number, the file appended)
        self.lock = threading.Lock()
        self.broken = False


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        for sub in ("parts", "assets", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._assemblies: dict[str, _Assembly] = {}
        self._finished: set[str] = set()
        self._guard = threading.Lock()

    def part_path(self, asset_id: str, number: int) -> Path:
        return self.root / "parts" / str(uuid.UUID(asset_id)) / f"{int(number):05d}.part"

    def asset_path(self, asset_id: str) -> Path:
        return self.root / "assets" / f"{uuid.UUID(asset_id)}.bin"

    def reset(self) -> None:
        with self._guard:
            self._assemblies.clear()
            self._finished.clear()
        for sub in ("parts", "assets", "tmp"):
            shutil.rmtree(self.root / sub, ignore_errors=True)
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    async def receive_part(
        self, receive: Callable[[], Awaitable[Mapping[str, Any]]], expected: int, dest: Path,
        *, sha256: bool = False,
    ) -> Received:
        """Stream an ASGI request body to `dest`, hashing as it arrives.

        The body is kept only if exactly `expected` bytes arrive; otherwise the temp file
        is removed and the byte count says how far the sender got. MD5 (and SHA-256 when
        asked: a basic asset of one part needs no second read) and the file write run in a
        worker thread on 1 MiB blocks (hashlib and file writes release the GIL), one block
        at a time and in order, so the event loop keeps decrypting TLS meanwhile; each
        block's writeback starts at once, so the fsync before the answer waits on little.
        """
        tmp = self.root / "tmp" / f"{uuid.uuid4()}.tmp"
        md5 = hashlib.md5(usedforsecurity=False)
        whole = hashlib.sha256() if sha256 else None
        hashes: list[Hasher] = [md5] if whole is None else [md5, whole]
        nbytes = 0
        written = 0
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
                            pending = loop.run_in_executor(None, _absorb, hashes, handle, chunks,
                                                           written)
                            chunks, written, buffered = [], written + buffered, 0
                if not message.get("more_body", False):
                    complete = not too_long and nbytes == expected
                    break
            if pending is not None:
                await pending
                pending = None
            if chunks:
                await loop.run_in_executor(None, _absorb, hashes, handle, chunks, written)
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
        inode = await asyncio.to_thread(_fsync_and_rename, tmp, dest)
        return Received(nbytes, md5.hexdigest(), True,
                        sha256=whole.hexdigest() if whole is not None else None, file=inode)

    def assemble(self, asset_id: str, numbers: list[int], drop_parts: bool,
                 known: Mapping[int, KnownDigest] | None = None) -> tuple[str, int]:
        """Concatenate parts (in the given order) into the asset blob; returns (sha256, size).

        Runs in a worker thread. With `drop_parts` (basic uploads) part files are removed
        once the asset blob is durable; real-time parts stay, since a part number may be
        registered again later and the asset reassembled. A basic upload of one part needs
        no copy: the part file (fsync'd when it arrived) is renamed into place, and when
        `known` holds its SHA-256 (hashed as it arrived) for the very file now under that name
        (same FileId: a concurrent re-PUT may have replaced it), it is not read again.
        """
        dest = self.asset_path(asset_id)
        if drop_parts and len(numbers) == 1:
            part = self.part_path(asset_id, numbers[0])
            hint = (known or {}).get(numbers[0])
            stat = os.stat(part)
            if hint is not None and hint.file == _file_id(stat):
                sha, size = hint.sha256, stat.st_size
            else:
                sha, size = _sha256_of(part)
            os.replace(part, dest)
            _fsync_dir(dest.parent)
            shutil.rmtree(part.parent, ignore_errors=True)
            return sha, size
        with self._guard:
            self._finished.add(asset_id)
            early = self._assemblies.pop(asset_id, None)
        tmp, digest, size, done = self._resume(asset_id, numbers, early)
        with open(tmp, "ab", buffering=0) as out:
            for number in numbers[done:]:
                size, _ = _append(self.part_path(asset_id, number), out, digest, size)
        _fsync_and_rename(tmp, dest)
        if drop_parts:
            self._discard(self.part_path(asset_id, 1).parent)
        return digest.hexdigest(), size

    def _resume(self, asset_id: str, numbers: list[int],
                early: _Assembly | None) -> tuple[Path, Hasher, int, int]:
        """Where an early assembly left off: (file, hash so far, size, parts done), if every
        part it appended is still the very file (FileId) under its name; else from scratch."""
        if early is not None:
            with early.lock:  # an append still running finishes first
                appended = [n for n, _ in early.appended]
                usable = (not early.broken and appended == numbers[:len(appended)]
                          and all(file_id(self.part_path(asset_id, n)) == ino
                                  for n, ino in early.appended))
                # Taken over (or dropped): a job that gets the lock later must not append
                # to this file again (PUT answers never wait for their append jobs).
                early.broken = True
                if usable:
                    return early.tmp, early.digest, early.size, len(appended)
                early.tmp.unlink(missing_ok=True)
        return self.root / "tmp" / f"{uuid.uuid4()}.asm", hashlib.sha256(), 0, 0

    def append_prefix(self, asset_id: str, prefix: list[int]) -> None:
        """Append the parts of `prefix` (stored, numbered from 1, in order) not appended yet
        to the asset's early assembly. Worker thread; `assemble` finishes or discards it."""
        with self._guard:
            if asset_id in self._finished:
                return
            early = self._assemblies.get(asset_id)
            if early is None:
                early = self._assemblies[asset_id] = _Assembly(
                    self.root / "tmp" / f"{uuid.uuid4()}.asm")
        with early.lock:
            appended = [n for n, _ in early.appended]
            common = min(len(appended), len(prefix))  # a job with an older, shorter prefix
            if early.broken or appended[:common] != prefix[:common]:  # may come in late
                early.broken = True
                return
            try:
                with open(early.tmp, "ab", buffering=0) as out:
                    for number in prefix[len(appended):]:
                        early.size, inode = _append(self.part_path(asset_id, number), out,
                                                    early.digest, early.size)
                        early.appended.append((number, inode))
            except OSError:
                early.broken = True  # assemble starts over from the part files

    def _discard(self, directory: Path) -> None:
        """Remove a directory of parts off the answer's path: renamed away now (so it is gone
        at once), deleted by a background thread (freeing GBs of blocks takes a while)."""
        trash = self.root / "tmp" / f"{uuid.uuid4()}.trash"
        try:
            os.replace(directory, trash)
        except OSError:
            return
        threading.Thread(target=shutil.rmtree, args=(trash, True), daemon=True).start()

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
