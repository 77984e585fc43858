"""The tethered camera's card side, mixed into `TetherSource`: list, download, hand over, delete.

Kept apart from the connection and session handling of reference_device/sources/tether.py:
this is the path every frame takes (camera -> local copy written atomically -> the queue
-> the ledger -> off the card), and the one camera-call wrapper both sides share (one
lock, "busy" retried with backoff). The source supplies the state declared below.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from reference_device.sources.base import CapturedFile, OnFile
from reference_device.sources.camera import CameraAdapter, CameraError, CameraFileInfo, CameraPath
from reference_device.sources.tether_config import TetherConfig
from reference_device.sources.tether_files import atomic_write, safe_name, sha256_file
from reference_device.sources.tether_ledger import LedgerEntry, TetherLedger, identity

T = TypeVar("T")
BASELINE_KEY = "__baseline__"


class TetherCard:
    """Frames from the card to the queue, exactly once per camera session."""

    config: TetherConfig
    adapter: CameraAdapter
    ledger: TetherLedger
    _lock: threading.Lock
    _status_lock: threading.Lock
    _status: dict[str, Any]
    _stop: threading.Event
    _on_file: OnFile | None
    _session_keys: set[str]
    _failed: set[str]
    _generation: int
    _downloaded_in: dict[str, int]
    _pending_deletes: list[LedgerEntry]

    def _bump(self, key: str, n: int = 1) -> None:
        with self._status_lock:
            self._status[key] += n

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """One camera call under the lock; busy (-110) is retried with exponential backoff."""
        delay = self.config.busy_backoff
        for attempt in range(self.config.busy_retries + 1):
            try:
                with self._lock:
                    return fn(*args)
            except CameraError as exc:
                if exc.kind != "busy" or attempt == self.config.busy_retries:
                    raise
                self._bump("busy_retries")
                if self._stop.wait(delay):
                    raise
                delay = min(delay * 2, self.config.busy_backoff_max)
        raise AssertionError("unreachable")

    def _scan_card(self) -> None:
        """Download whatever is on the card and not in the ledger (shot while we were away)."""
        paths = self._call(self.adapter.list_files)
        baseline = not self.ledger.has(BASELINE_KEY)
        for path in paths:
            if self._stop.is_set():
                return
            info = self._call(self.adapter.file_info, path)
            key = identity(path, info)
            if self.ledger.has(key):
                self._session_keys.add(key)
                continue
            if baseline and not self.config.import_existing:
                self.ledger.record(LedgerEntry(key, path.full, "preexisting", size=info.size))
                self._session_keys.add(key)
                continue
            self._download(path, info)
        if baseline:
            self.ledger.record(LedgerEntry(BASELINE_KEY, "", "baseline"))

    def _download(self, path: CameraPath, info: CameraFileInfo | None = None) -> None:
        key: str | None = None
        try:
            if info is None:
                info = self._call(self.adapter.file_info, path)
            key = identity(path, info)
            if key in self._session_keys or key in self._failed:
                return  # already handled in this session (a scan and an event both saw it)
            self._session_keys.add(key)
            data = self._call(self.adapter.download, path)
        except CameraError as exc:
            if key is not None:
                self._session_keys.discard(key)
            if exc.kind in ("disconnected", "claim", "session", "busy"):
                raise  # retried by the next scan after reconnecting
            self._failed.add(key or path.full)
            with self._status_lock:
                self._status["last_error"] = f"cannot download {path.full}: {exc}"
            return
        if len(data) != info.size:
            self._session_keys.discard(key)
            raise CameraError(
                -7, f"short download of {path.full}: {len(data)} of {info.size} bytes"
            )
        assert key is not None  # set whenever the download succeeded
        digest = hashlib.sha256(data).hexdigest()
        local = self._local_path(path.name, digest)
        if not local.exists():
            atomic_write(local, data, info.mtime)
        captured_at = float(info.mtime) if info.mtime > 946684800 else time.time()
        if self._on_file is not None:
            self._on_file(
                CapturedFile(path=local, captured_at=captured_at, growing=False, origin="tether")
            )
        entry = LedgerEntry(key, path.full, "downloaded", str(local), digest, len(data))
        self.ledger.record(entry)
        with self._status_lock:
            self._downloaded_in[str(local)] = self._generation
            self._status["downloaded"] += 1
            self._status["last_file"] = local.name
        if self.config.card_files == "delete":
            self._delete(entry)

    def _local_path(self, camera_name: str, digest: str) -> Path:
        """dest/NAME, or NAME_n when NAME was already given to another frame.

        Cameras reuse names (the virtual camera after every re-init), so a name the ledger
        ever gave out is never reused, even after the device removed that file: every frame
        reaches the cloud under its own name. A local file with the same bytes that no
        ledger entry owns is a download finished just before a power cut: reuse it.
        """
        safe = safe_name(camera_name)
        stem, suffix = os.path.splitext(safe)
        for n in range(10000):
            candidate = self.config.dest / (safe if n == 0 else f"{stem}_{n}{suffix}")
            if self.ledger.owns(candidate):
                continue
            if not candidate.exists() or sha256_file(candidate) == digest:
                return candidate
        raise CameraError(-115, f"no free local name for {camera_name!r} in {self.config.dest}")

    def _delete(self, entry: LedgerEntry) -> None:
        folder, _, name = entry.camera_path.rpartition("/")
        self._call(self.adapter.delete, CameraPath(folder or "/", name))
        self.ledger.record(
            LedgerEntry(
                entry.key, entry.camera_path, "deleted", entry.local, entry.sha256, entry.size
            )
        )
        self._bump("deleted_from_card")

    def _delete_pending(self) -> None:
        while True:
            with self._status_lock:
                if not self._pending_deletes:
                    return
                entry = self._pending_deletes[0]
            try:
                self._delete(entry)
            except CameraError as exc:
                if exc.kind != "error":
                    raise
                with self._status_lock:
                    self._status["last_error"] = (
                        f"cannot delete {entry.camera_path} from the card: {exc}"
                    )
            with self._status_lock:
                self._pending_deletes.pop(0)
                self._status["pending_deletes"] = len(self._pending_deletes)
