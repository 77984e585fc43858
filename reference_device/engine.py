"""The device engine: pairing, tokens, queue, uploads, presence and sources in threads.

The status server and the CLI wrap exactly two methods:

- `Engine.snapshot() -> dict`: the c2c-status/1 document of harness/CONTRACTS.md §3.
- `Engine.control(action, **args) -> dict`: the actions of CONTRACTS.md §4. Returns
  `{"ok": True, ...}` or `{"ok": False, "error": "..."}` (never raises for bad input).

No thread may die from a bad answer: every long-lived loop catches per turn, logs one line,
backs off and goes on, and a supervisor restarts a loop that still exits (counted in the
status under `loops`). A file whose upload fails transiently is requeued with a per-file
backoff, so it never holds a worker while later captures wait.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reference_device import __version__
from reference_device.api import ApiClient
from reference_device.config import DeviceConfig
from reference_device.controls import ACTIVE, UserActions
from reference_device.credentials import CredentialStore, atomic_write, redactor
from reference_device.engine_auth import DeviceAuth, loop_backoff
from reference_device.errors import (
    AuthError,
    Cancelled,
    ChannelPaused,
    FatalUploadError,
    MediaError,
    RetryableError,
)
from reference_device.heartbeat import Presence
from reference_device.logsetup import setup_logging
from reference_device.media_check import check_file, filetype_for
from reference_device.netstats import NetworkStats
from reference_device.pairing import PairingStatus
from reference_device.part_pool import PartPool
from reference_device.queue import FileQueue, FileRecord
from reference_device.retry import RetryBudget
from reference_device.sources.base import CapturedFile, Source
from reference_device.sources.registry import build_sources, confirm_upload, sources_status
from reference_device.tokens import TokenManager
from reference_device.uploader import Uploader

log = logging.getLogger(__name__)
__all__ = ["Engine", "loop_backoff", "run_device", "setup_logging"]
MAX_FILES_IN_STATUS = 1000


class Engine(DeviceAuth, UserActions):
    """One reference device. `start()` returns at once; `stop()` is graceful."""

    def __init__(self, config: DeviceConfig, sources: Sequence[Source] | None = None) -> None:
        self.config = config
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.store = CredentialStore(config.credentials_path, config.key_path)
        self._init_secret()
        self.stats = NetworkStats(config.network_type)
        self.api = ApiClient(config, self.stats)
        self.tokens = TokenManager(config, self.api, self.store, stop=self.stop_event,
                                   on_refreshed=self.identify, on_repair=self._on_repair)
        self.queue = FileQueue(config.queue_path)
        self.budget = RetryBudget(config.retry_budget)
        self.uploader = Uploader(config, self.api, self.tokens, self.queue, self.stats,
                                 pool=PartPool(config.parallelism, on_drained=self.wake.set),
                                 budget=self.budget)
        self.pairing = PairingStatus()
        self.presence = Presence(config, self.api, self.tokens, self.stop_event,
                                 identify=self.identify, device_id=lambda: self.device_id,
                                 on_status=self._set_cloud_status)
        self.sources: list[Source] = (list(sources) if sources is not None
                                      else build_sources(config, self._on_problem))
        self.mode = self.queue.get_setting("mode") or config.mode
        self.project: dict[str, Any] = {"id": None, "name": None}
        self.device_id: str | None = None
        self.cloud_status = "unknown"
        self._lock = threading.Lock()
        self._inflight: dict[str, threading.Event] = {}
        self._user_cancelled: set[str] = set()
        self._pair_cancel = threading.Event()
        self._pair_thread: threading.Thread | None = None
        # storing a pairing's tokens and a cancel/logout dropping them never interleave
        self._pair_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.loop_restarts = 0
        self.loop_last_error: str | None = None
        # per-file backoff after a transient failure: file id -> (failures, not before)
        self._deferred: dict[str, tuple[int, float]] = {}
        self._closed = False
        self._last_snapshot: dict[str, Any] | None = None
        self.started_at = 0.0
        # manual "upload all": files in storage before this moment are selected, also those
        # the sources hand over later (still in their quiet period when the user chose)
        self._select_all_before = float(self.queue.get_setting("select_all_before") or 0.0)
        self._settle_deadline = 0.0  # until then (or until sources settle) nothing is claimed

    def _init_secret(self) -> None:
        data = self.store.load()
        if self.config.client_secret:
            redactor.add(self.config.client_secret)
            if data.get("client_secret") != self.config.client_secret:
                self.store.update(client_secret=self.config.client_secret)
        elif data.get("client_secret"):
            self.config.client_secret = str(data["client_secret"])

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.started_at = time.time()
        n = self.queue.reconcile()
        if n:
            log.info("reconciled %d interrupted upload(s) after restart", n)
        if self.tokens.state == "repair_needed":
            self.pairing.set("repair_needed", error="credentials rejected; pair again")
        elif self.tokens.paired:
            self.pairing.set("paired")
        for target, name in ((self._auth_loop, "auth"), (self._status_file_loop, "status-file")):
            self._spawn(target, name)
        # parallel_files files feed the part slots; a file whose parts are all on the wire
        # no longer counts, so up to `parallelism` more may be finishing meanwhile
        for i in range(self.config.parallel_files + self.config.parallelism):
            self._spawn(self._worker, f"upload-{i}")
        self.presence.start()
        for source in self.sources:
            source.start(self.on_file)
        if not self.tokens.paired and self.tokens.state != "repair_needed":
            self.start_pairing()

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=self._supervise, args=(target, name), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _supervise(self, target: Any, name: str) -> None:
        """Run a long-lived loop; restart it (after a backoff) if it raises or returns early."""
        failures = 0
        while not self.stop_event.is_set():
            try:
                target()
                if self.stop_event.is_set():
                    return
                why = "returned"
            except Exception as exc:
                why = f"{type(exc).__name__}: {exc}"
            failures += 1
            self.loop_restarts += 1
            self.loop_last_error = f"{name}: {why}"
            wait = loop_backoff(failures)
            log.error("%s loop ended (%s); restarted in %.0fs", name, why, wait)
            self.stop_event.wait(wait)

    def stop(self) -> None:
        self.stop_event.set()
        self._pair_cancel.set()
        self.wake.set()
        for source in self.sources:
            try:
                source.stop()
            except Exception:
                log.exception("source stop failed")
        with self._lock:
            for ev in self._inflight.values():
                ev.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.uploader.pool.close()
        self.presence.join()
        if self._pair_thread is not None:
            self._pair_thread.join(timeout=5)
        self._write_status_file()
        self._closed = True
        self.api.close()
        self.queue.close()

    # --- intake ----------------------------------------------------------------------------
    def on_file(self, captured: CapturedFile) -> None:
        """Source callback: queue (or quarantine) a captured file, once."""
        path = captured.path
        try:
            st = path.stat()
        except OSError:
            return
        if captured.reannounced and self.queue.known(path, size=st.st_size, mtime_ns=st.st_mtime_ns,
                                                     inode=st.st_ino):
            return  # handed over again after a restart: no media check, no queue write
        realtime = captured.growing and self.config.realtime
        selected = self._select_all_before > 0 and st.st_ctime <= self._select_all_before
        state, reason = "queued", None
        if not realtime:
            try:
                check_file(path)
            except MediaError as exc:
                state, reason = "quarantined", exc.reason + (f": {exc.detail}" if exc.detail else "")
        _rec, created = self.queue.add(
            path, size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino,
            captured_at=captured.captured_at, filetype=filetype_for(path), realtime=realtime,
            origin=captured.origin, state=state, reason=reason, selected=selected,
        )
        if created:
            log.info("captured %s (%s%s)", path.name, state, ", real-time" if realtime else "")
        self.wake.set()

    def _on_problem(self, path: Path, reason: str) -> None:
        try:
            st = path.stat()
        except OSError:
            return
        self.queue.add(path, size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino,
                       captured_at=st.st_mtime, filetype=filetype_for(path),
                       state="quarantined", reason=reason)

    # --- upload workers --------------------------------------------------------------------
    def _can_upload(self) -> bool:
        return self.tokens.paired and self.cloud_status != "paused"

    def _settling(self) -> bool:
        """A manual "upload all" waits until the sources handed over what was in storage."""
        if not self._settle_deadline:
            return False
        if time.time() < self._settle_deadline and not all(
            source.settled(self._select_all_before)
            for source in self.sources if hasattr(source, "settled")
        ):
            return True
        self._settle_deadline = 0.0
        return False

    def _feeding(self) -> int:
        """Files in flight with parts still waiting for a slot (or no parts yet)."""
        return sum(1 for fid in self._inflight if not self.uploader.pool.draining(fid))

    def _claim(self) -> tuple[FileRecord, threading.Event] | None:
        """The next file by priority, while fewer than `parallel_files` files feed the slots."""
        with self._lock:
            if self._feeding() >= self.config.parallel_files:
                return None
            if self.mode == "manual" and self._settling():
                return None
            now = time.monotonic()
            waiting = {fid for fid, (_, not_before) in self._deferred.items() if not_before > now}
            rec = self.queue.next_ready(self.config.filetype_priorities,
                                        manual=self.mode == "manual", exclude=set(self._inflight) | waiting)
            if rec is None or not self.queue.transition(rec.id, ("queued",), "uploading"):
                return None
            cancel = threading.Event()
            self._inflight[rec.id] = cancel
            return self.queue.get(rec.id) or rec, cancel

    def _worker(self) -> None:
        while not self.stop_event.is_set():
            try:
                claimed = self._claim() if self._can_upload() else None
            except Exception as exc:  # e.g. the queue database briefly locked
                log.warning("upload worker: claim failed (%s: %s)", type(exc).__name__, exc)
                self.stop_event.wait(1.0)
                continue
            if claimed is None:
                self.wake.wait(0.5)
                self.wake.clear()
                continue
            rec, cancel = claimed
            try:
                self._upload_one(rec, cancel)
            finally:
                with self._lock:
                    self._inflight.pop(rec.id, None)
                    self._user_cancelled.discard(rec.id)
                self.wake.set()

    def _defer(self, rec: FileRecord, why: str) -> None:
        """Requeue a file after a transient failure, not to be claimed before its backoff."""
        failures = self._deferred.get(rec.id, (0, 0.0))[0] + 1
        base = max(self.config.backoff_base, 0.05)
        wait = min(max(self.config.backoff_cap * 4, 1.0), base * 2 ** min(failures, 16))
        with self._lock:
            self._deferred[rec.id] = (failures, time.monotonic() + wait)
        self.queue.transition(rec.id, ("uploading",), "queued")
        log.warning("upload of %s deferred %.1fs (try %d): %s", rec.name, wait, failures, why)

    def _upload_one(self, rec: FileRecord, cancel: threading.Event) -> None:
        try:
            self.uploader.upload(rec, cancel)
            with self._lock:
                self._deferred.pop(rec.id, None)
            if self.queue.transition(rec.id, ("uploading",), "done"):
                confirm_upload(self.sources, Path(rec.path), rec.origin)
            log.info("uploaded %s", rec.name)
        except RetryableError as exc:  # a garbled answer, an unreachable URL: transient
            self._defer(rec, str(exc))
        except MediaError as exc:
            self.queue.transition(rec.id, ("uploading",), "quarantined", str(exc))
            log.warning("quarantined %s: %s", rec.name, exc)
        except ChannelPaused:
            self.queue.transition(rec.id, ("uploading",), "held", "captured while the device was paused")
            log.info("held %s: captured while paused", rec.name)
        except FatalUploadError as exc:
            self.queue.transition(rec.id, ("uploading",), "failed", str(exc))
            log.error("upload of %s failed: %s", rec.name, exc)
        except Cancelled:
            if rec.id in self._user_cancelled:
                self.queue.transition(rec.id, ("uploading",), "cancelled", "cancelled by user")
            else:
                self.queue.transition(rec.id, ("uploading",), "queued")
        except AuthError as exc:
            self.queue.transition(rec.id, ("uploading",), "queued")
            log.warning("upload of %s waits for credentials: %s", rec.name, exc)
        except Exception as exc:  # never fail a file for good on something unforeseen
            log.debug("unexpected error uploading %s", rec.name, exc_info=True)
            self._defer(rec, f"unexpected {type(exc).__name__}: {exc}")

    # --- status ----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The c2c-status/1 document (harness/CONTRACTS.md §3); the last one after stop()."""
        if self._closed and self._last_snapshot is not None:
            return self._last_snapshot
        snap = self._build_snapshot()
        self._last_snapshot = snap
        return snap

    def _build_snapshot(self) -> dict[str, Any]:
        records = self.queue.all()
        done_bytes = self.queue.bytes_done()
        counts = self.queue.counts()
        files: list[dict[str, Any]] = []
        remaining_bytes, current, current_done = 0, None, -1
        for rec in records:
            live = self.uploader.progress(rec.id)
            done = rec.size if rec.state == "done" else (live if live is not None else done_bytes.get(rec.id, 0))
            if rec.state in ACTIVE:
                remaining_bytes += max(0, rec.size - done)
            if rec.state == "uploading" and done > current_done:
                current_done = done
                current = {"file_id": rec.id, "name": rec.name, "bytes_done": done, "size": rec.size,
                           "progress": round(done / rec.size, 4) if rec.size else 0.0}
            files.append({"id": rec.id, "name": rec.name, "path": rec.path, "size": rec.size,
                          "state": rec.state, "reason": rec.reason, "priority": rec.priority,
                          "asset_id": rec.asset_id or None, "bytes_done": done})
        network = self.stats.snapshot()
        cloud = self.cloud_status if network["online"] else "offline"
        return {
            "schema": "c2c-status/1",
            "device": {"name": self.config.name, "firmware": self.config.firmware_version,
                       "kind": self.config.kind, "software": __version__},
            "pairing": self.pairing.snapshot(),
            "project": dict(self.project),
            "token": self.tokens.snapshot(),
            "mode": self.mode,
            "queue": {
                "remaining_count": counts["queued"] + counts["uploading"] + counts["paused"],
                "remaining_bytes": remaining_bytes, "completed": counts["done"],
                "queued": counts["queued"], "uploading": counts["uploading"],
                "failed": counts["failed"], "quarantined": counts["quarantined"],
                "paused": counts["paused"], "cancelled": counts["cancelled"], "held": counts["held"],
            },
            "current": current or {"file_id": None, "name": None, "bytes_done": 0, "size": 0, "progress": 0.0},
            "files": files[-MAX_FILES_IN_STATUS:],
            "network": network,
            "socket": self.presence.snapshot(),
            "cloud_status": cloud,
            "sources": sources_status(self.sources),
            "loops": {"restarts": self.loop_restarts, "last_error": self.loop_last_error},
        }

    def _write_status_file(self) -> None:
        if self.config.status_file is None:
            return
        try:
            data = json.dumps(self.snapshot()).encode()
            atomic_write(self.config.status_file, data, 0o644, durable=False)
        except Exception as exc:
            log.debug("status file write failed: %s", exc)

    def _status_file_loop(self) -> None:
        while not self.stop_event.is_set():
            self._write_status_file()
            self.stop_event.wait(0.3)


def run_device(config: DeviceConfig, *, engine: Engine | None = None) -> int:
    """Run the device until SIGTERM/SIGINT: used by the CLI (`c2c-device run`)."""
    engine = engine or Engine(config)
    done = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    engine.start()
    log.info("device %s running (firmware %s)", config.name, config.firmware_version)
    while not done.wait(1.0):
        pass
    engine.stop()
    return 0
