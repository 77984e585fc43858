"""Corruptors: what goes wrong with media on a set, each returning a record.

In-place damage (truncate, bitflip, zero_length, header_damage) keeps a pristine copy of
the original in a stash directory first, so no data is ever lost by the bench. Timed
faults (vanish, rename, grow) are plain callables the harness schedules with
`ScheduledFault` (after a delay or when a condition becomes true, e.g. "upload started").

Permission denied when running as root: root has CAP_DAC_OVERRIDE, so `chmod 000` does
not stop it reading. `permission_denied` therefore chmods first, probes whether the file
is still readable, and if so (root) moves the original to the stash and puts a
*directory* of the same name in its place: `open()` then fails with EISDIR, an
unreadable entry that cannot hang the device (a FIFO would block open() forever, and a
dangling symlink reads as "file vanished", which is a different fault). The record says
which strategy took effect; `restore()` puts the original back.
"""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import MediaError
from harness.faults.media.generate import sha256_file

HOWS: tuple[str, ...] = (
    "truncate",
    "bitflip",
    "zero_length",
    "header_damage",
    "vanish",
    "permission_denied",
    "grow",
    "rename",
)
ALIASES = {
    "bit_flip": "bitflip",
    "zero": "zero_length",
    "empty": "zero_length",
    "header": "header_damage",
    "delete": "vanish",
    "chmod": "permission_denied",
    "grow_forever": "grow",
    "truncated": "truncate",
}


def normalise_how(how: str) -> str:
    h = how.strip().lower().replace("-", "_").replace(" ", "_")
    h = ALIASES.get(h, h)
    if h not in HOWS:
        raise MediaError(f"unknown corruption {how!r}; known: {', '.join(HOWS)}")
    return h


def _base_record(path: Path, how: str) -> dict[str, Any]:
    if not path.is_file():
        raise MediaError(f"cannot corrupt {str(path)!r}: not an existing regular file")
    size = path.stat().st_size
    return {
        "how": how,
        "path": str(path),
        "name": path.name,
        "original_size": size,
        "original_sha256": sha256_file(path),
        "at": time.time(),
    }


def _finish(record: dict[str, Any], path: Path) -> dict[str, Any]:
    if path.is_file() and os.access(path, os.R_OK):
        try:
            record["size"] = path.stat().st_size
            record["sha256"] = sha256_file(path)
        except OSError:
            record["size"] = record["sha256"] = None
    else:
        record["size"] = record["sha256"] = None
    return record


def stash_copy(path: Path, stash_dir: Path) -> Path:
    """Keep the original bytes next to nothing the device watches."""
    stash_dir.mkdir(parents=True, exist_ok=True)
    dest = stash_dir / f"{uuid.uuid4().hex[:12]}-{path.name}"
    shutil.copy2(path, dest)
    return dest


def truncate(path: Path, stash_dir: Path, *, keep: int | float = 0.5) -> dict[str, Any]:
    """Cut the file: `keep` < 1 is a fraction, >= 1 a byte count to keep."""
    rec = _base_record(path, "truncate")
    size = rec["original_size"]
    new_size = int(size * keep) if isinstance(keep, float) and keep < 1 else int(keep)
    if not 0 < new_size < size:
        raise MediaError(
            f"truncate {path.name}: keep={keep} gives {new_size} bytes of {size}; must cut something"
        )
    rec["stash"] = str(stash_copy(path, stash_dir))
    os.truncate(path, new_size)
    rec["params"] = {"keep_bytes": new_size}
    return _finish(rec, path)


def bitflip(
    path: Path, stash_dir: Path, *, offset: int | None = None, bit: int = 0
) -> dict[str, Any]:
    """Flip one bit (middle of the file by default). Often undetectable by decoders: use SHA-256."""
    rec = _base_record(path, "bitflip")
    size = rec["original_size"]
    off = size // 2 if offset is None else offset
    if not 0 <= off < size or not 0 <= bit < 8:
        raise MediaError(f"bitflip {path.name}: offset {off} bit {bit} outside a {size}-byte file")
    rec["stash"] = str(stash_copy(path, stash_dir))
    with open(path, "r+b") as f:
        f.seek(off)
        byte = f.read(1)[0]
        f.seek(off)
        f.write(bytes([byte ^ (1 << bit)]))
        f.flush()
        os.fsync(f.fileno())
    rec["params"] = {"offset": off, "bit": bit}
    return _finish(rec, path)


def zero_length(path: Path, stash_dir: Path) -> dict[str, Any]:
    rec = _base_record(path, "zero_length")
    rec["stash"] = str(stash_copy(path, stash_dir))
    os.truncate(path, 0)
    rec["params"] = {}
    return _finish(rec, path)


def header_damage(path: Path, stash_dir: Path, *, length: int = 32) -> dict[str, Any]:
    """Invert the first `length` bytes: magic numbers, RIFF size, ftyp box all break."""
    rec = _base_record(path, "header_damage")
    n = min(length, rec["original_size"])
    if n == 0:
        raise MediaError(f"header_damage {path.name}: the file is empty")
    rec["stash"] = str(stash_copy(path, stash_dir))
    with open(path, "r+b") as f:
        head = f.read(n)
        f.seek(0)
        f.write(bytes(b ^ 0xFF for b in head))
        f.flush()
        os.fsync(f.fileno())
    rec["params"] = {"length": n}
    return _finish(rec, path)


def vanish(path: Path, stash_dir: Path) -> dict[str, Any]:
    """The file disappears (card pulled, operator deleted it). Original kept in the stash."""
    rec = _base_record(path, "vanish")
    stash_dir.mkdir(parents=True, exist_ok=True)
    dest = stash_dir / f"{uuid.uuid4().hex[:12]}-{path.name}"
    shutil.move(path, dest)
    rec["stash"] = str(dest)
    rec["params"] = {}
    return _finish(rec, path)


def rename(path: Path, stash_dir: Path, *, new_name: str | None = None) -> dict[str, Any]:
    rec = _base_record(path, "rename")
    target = path.with_name(new_name or f"{path.stem}_renamed{path.suffix}")
    if target.exists():
        raise MediaError(f"rename {path.name}: {target.name!r} already exists")
    os.rename(path, target)
    rec["params"] = {"new_path": str(target), "new_name": target.name}
    rec["size"] = target.stat().st_size
    rec["sha256"] = rec["original_sha256"]
    return rec


def permission_denied(path: Path, stash_dir: Path, *, strategy: str = "auto") -> dict[str, Any]:
    """Make the file unreadable to the device; see the module docstring for root."""
    if strategy not in ("auto", "chmod", "directory"):
        raise MediaError(f"permission_denied strategy {strategy!r}: use auto, chmod or directory")
    rec = _base_record(path, "permission_denied")
    rec["params"] = {"original_mode": stat.S_IMODE(path.stat().st_mode)}
    effective = "chmod"
    if strategy in ("auto", "chmod"):
        os.chmod(path, 0)
        if _still_readable(path):
            if strategy == "chmod":
                rec["params"]["warning"] = "chmod 000 does not stop this user (root) from reading"
            else:
                effective = "directory"
    else:
        effective = "directory"
    if effective == "directory":
        os.chmod(path, rec["params"]["original_mode"])
        stash_dir.mkdir(parents=True, exist_ok=True)
        dest = stash_dir / f"{uuid.uuid4().hex[:12]}-{path.name}"
        shutil.move(path, dest)
        path.mkdir(mode=0)
        rec["stash"] = str(dest)
    rec["params"]["effective"] = effective
    rec["size"] = rec["sha256"] = None
    return rec


def _still_readable(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            f.read(1)
        return True
    except OSError:
        return False


def restore(record: dict[str, Any]) -> None:
    """Undo a corruption from its record (the stash holds the original bytes)."""
    path = Path(record["path"])
    how = record["how"]
    if how == "rename":
        os.rename(record["params"]["new_path"], path)
        return
    if how == "permission_denied" and record["params"].get("effective") == "chmod":
        os.chmod(path, record["params"]["original_mode"])
        return
    if how == "permission_denied" and path.is_dir():
        path.chmod(0o700)
        path.rmdir()
    stash = record.get("stash")
    if not stash:
        raise MediaError(f"cannot restore {path.name}: the {how} record has no stash copy")
    shutil.copy2(stash, path)


class Grower:
    """Appends to a file until stopped: a recording that never ends, or a runaway writer."""

    def __init__(
        self,
        path: Path,
        *,
        chunk: int = 64 * 1024,
        interval: float = 0.05,
        max_bytes: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.chunk = chunk
        self.interval = interval
        self.max_bytes = max_bytes
        self.appended = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"grow:{self.path.name}", daemon=True
        )

    def start(self) -> Grower:
        self._thread.start()
        return self

    def _run(self) -> None:
        block = bytes(range(256)) * (self.chunk // 256 + 1)
        try:
            with open(self.path, "ab") as f:
                while not self._stop.is_set():
                    n = (
                        self.chunk
                        if self.max_bytes is None
                        else min(self.chunk, self.max_bytes - self.appended)
                    )
                    if n <= 0:
                        break
                    f.write(block[:n])
                    f.flush()
                    self.appended += n
                    self._stop.wait(self.interval)
        except OSError as exc:
            self.error = f"{self.path.name}: writer stopped: {exc.strerror or exc}"

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> int:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return self.appended


def grow(path: Path, stash_dir: Path, **params: Any) -> tuple[dict[str, Any], Grower]:
    rec = _base_record(path, "grow")
    rec["params"] = {k: v for k, v in params.items()}
    grower = Grower(path, **params).start()
    rec["size"] = rec["sha256"] = None  # still changing; see the grower
    return rec, grower


ONE_SHOT: dict[str, Callable[..., dict[str, Any]]] = {
    "truncate": truncate, "bitflip": bitflip, "zero_length": zero_length,
    "header_damage": header_damage, "vanish": vanish, "permission_denied": permission_denied,
    "rename": rename,
}
"""Every corruption of HOWS but `grow` (which keeps running): name -> function(path, stash_dir, **params)."""


class ScheduledFault:
    """Runs `action` once, after `delay` seconds or when `when()` turns true, in a thread.

    The harness schedules e.g. `vanish` to fire when the cloud ledger shows the upload has
    started. `wait()` returns the action's record (or raises what it raised).
    """

    def __init__(
        self,
        action: Callable[[], dict[str, Any]],
        *,
        delay: float | None = None,
        when: Callable[[], bool] | None = None,
        poll: float = 0.02,
        timeout: float = 60.0,
    ) -> None:
        if delay is None and when is None:
            raise MediaError("a scheduled fault needs a delay or a trigger condition")
        self.action = action
        self.delay = delay
        self.when = when
        self.poll = poll
        self.timeout = timeout
        self.record: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self._done = threading.Event()
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scheduled-media-fault", daemon=True)

    def start(self) -> ScheduledFault:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            deadline = time.monotonic() + self.timeout
            if self.delay is not None and self._cancel.wait(self.delay):
                return
            while self.when is not None and not self.when():
                if time.monotonic() > deadline:
                    raise MediaError(
                        f"scheduled media fault: trigger not met within {self.timeout}s"
                    )
                if self._cancel.wait(self.poll):
                    return
            self.record = self.action()
            self.record["fired_at"] = time.time()
        except BaseException as exc:
            self.error = exc
        finally:
            self._done.set()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def fired(self) -> bool:
        return self.record is not None

    def wait(self, timeout: float | None = None) -> dict[str, Any] | None:
        if not self._done.wait(timeout):
            raise MediaError(f"scheduled media fault did not finish within {timeout}s")
        if self.error is not None:
            raise self.error
        return self.record
