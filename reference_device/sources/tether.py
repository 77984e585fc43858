"""Tethered camera source: download every frame a USB/PTP camera shoots, lose none.

The source owns one camera through a `CameraAdapter` (python-gphoto2 in production, a
fake in tests). A worker thread connects, lists the card once per connection (anything
shot while unplugged or while the rig was off is downloaded then), and pumps camera
events in wall-time-bounded slices: a FILE_ADDED event downloads the new file, writes
it atomically into `dest`, hands it over as `CapturedFile(origin="tether")` and records
it in a durable ledger. Every camera call goes through one lock and retries "busy" (-110)
with backoff. Disconnects (-7, -52, -105, I/O errors) and "could not claim" (-53) turn
into a status message and a re-detect every `redetect_interval` seconds.

Delivery to the queue is at-least-once: the file is written, handed over, then recorded.
After a power cut between hand-over and record the same local path is handed over again,
so the queue must treat a re-enqueue of the same path and content as a no-op.

The card side (scan, download, hand-over, card deletes, the camera-call wrapper) is in
reference_device/sources/tether_card.py; this module keeps the worker, the connection and
the camera session.

Bench use (VCAMERADIR selects libgphoto2's virtual camera; set it in the environment):
    python -m reference_device.sources.tether_cli --dest DIR --state DIR [--trigger-every S] [--max N]
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from reference_device.sources.base import CapturedFile, OnFile
from reference_device.sources.camera import CameraAdapter, CameraError, Gphoto2Camera
from reference_device.sources.tether_card import TetherCard
from reference_device.sources.tether_config import TetherConfig
from reference_device.sources.tether_ledger import LedgerEntry, TetherLedger

log = logging.getLogger(__name__)
CLAIM_MESSAGE = "another program holds the camera (gvfs-gphoto2-volume-monitor?): could not claim the USB device"


class TetherError(Exception):
    """A request to the tether source that cannot be done now (e.g. trigger while unplugged)."""


class TetherRetry(TetherError):
    """The camera session is being re-initialised by the worker: trigger again shortly."""


class TetherNotReady(TetherError):
    """No camera session right now (searching, unplugged, claim failed): try again later."""


class TetherSource(TetherCard):
    """`Source` for a tethered camera (see the module docstring)."""

    name = "tether"

    def __init__(self, config: TetherConfig, *, adapter: CameraAdapter | None = None) -> None:
        self.config = config
        self.adapter: CameraAdapter = adapter or Gphoto2Camera(config.camera, config.port)
        self.ledger = TetherLedger(config.state_dir)
        config.dest.mkdir(parents=True, exist_ok=True)
        for stale in config.dest.glob(".*.part"):  # a download cut by a power loss
            stale.unlink(missing_ok=True)
        self._lock = threading.Lock()  # one camera user at a time
        self._status_lock = threading.Lock()
        self._stop = threading.Event()
        self._reinit_requested = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_file: OnFile | None = None
        self._connected = False
        self._ever_connected = False
        self._session_keys: set[str] = set()
        self._generation = 0  # bumped at every (re)connect and re-init: a new camera session
        self._downloaded_in: dict[str, int] = {}  # local path -> session it was downloaded in
        self._failed: set[str] = set()
        self._pending_deletes: list[LedgerEntry] = []
        self._next_trigger = 0.0
        self._info: dict[str, Any] = {}
        self._status: dict[str, Any] = {
            "kind": "tether",
            "state": "stopped",
            "message": "not started",
            "camera": None,
            "port": None,
            "downloaded": 0,
            "deleted_from_card": 0,
            "pending_deletes": 0,
            "busy_retries": 0,
            "reconnects": 0,
            "reinits": 0,
            "triggers": 0,
            "last_file": None,
            "last_error": None,
        }

    # --- Source ---------------------------------------------------------------------------
    def start(self, on_file: OnFile) -> None:
        if self._thread is not None:
            raise TetherError("tether source already started")
        self._on_file = on_file
        self._stop.clear()
        self._set("starting", "looking for a camera")
        self._thread = threading.Thread(target=self._run, name="tether", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with self._lock:
            self.adapter.close()
        self._connected = False
        self._set("stopped", "stopped")

    def status(self) -> dict[str, Any]:
        with self._status_lock:
            return dict(self._status)

    # --- requests from the device -----------------------------------------------------------
    def trigger(self) -> None:
        """Fire the shutter remotely; the frame arrives as a normal FILE_ADDED download."""
        if not self._connected:
            raise TetherNotReady(
                f"cannot trigger: camera is {self._status['state']} ({self._status['message']})"
            )
        wedged: CameraError | None = None
        try:
            self._call(self.adapter.trigger)
        except CameraError as exc:
            if exc.kind != "session":
                raise TetherError(f"trigger failed: {exc}") from exc
            wedged = CameraError(
                exc.code, exc.message
            )  # no traceback: it would pin the old session
        if wedged is not None:
            if threading.current_thread() is not self._thread:
                # Only the worker re-initialises, so no download is cut in half by a new session.
                self._reinit_requested.set()
                raise TetherRetry(
                    f"camera session wedged ({wedged}); re-initialising, trigger again"
                )
            self._reinit(wedged)
            try:
                self._call(self.adapter.trigger)
            except CameraError as exc2:
                raise TetherError(f"trigger failed after re-init: {exc2}") from exc2
        self._bump("triggers")

    def on_confirmed(self, path: Path) -> bool:
        """The cloud has the file: with card_files=until_confirmed, delete it from the card."""
        if self.config.card_files != "until_confirmed":
            return False
        entry = self.ledger.by_local(Path(path))
        if entry is None:
            return False
        with self._status_lock:
            # Only a frame of the current camera session: cameras (the virtual one after every
            # re-init) reuse names, so an older path may now name a frame not yet downloaded.
            if self._downloaded_in.get(str(path)) != self._generation:
                return False
            self._pending_deletes.append(entry)
            self._status["pending_deletes"] = len(self._pending_deletes)
        return True

    # --- worker ---------------------------------------------------------------------------
    def _set(self, state: str, message: str, **extra: Any) -> None:
        with self._status_lock:
            self._status.update(state=state, message=message, **extra)

    def _run(self) -> None:
        self._reannounce()
        while not self._stop.is_set():
            try:
                if not self._connected and not self._connect():
                    self._stop.wait(self.config.redetect_interval)
                    continue
                if self._reinit_requested.is_set():
                    self._reinit_requested.clear()
                    self._reinit(CameraError(-1, "re-init requested"))
                self._periodic_trigger()
                self._delete_pending()
                self._pump_events()
            except CameraError as exc:
                self._on_camera_error(exc)
            except Exception as exc:  # e.g. local disk full: never let the worker die
                log.exception("tether worker error")
                self._connected = False
                with self._lock:
                    self.adapter.close()
                self._set("error", f"{type(exc).__name__}: {exc}; reconnecting in "
                          f"{self.config.redetect_interval:g} s", last_error=f"{type(exc).__name__}: {exc}")
                self._stop.wait(self.config.redetect_interval)

    def _reannounce(self) -> None:
        """Hand over every frame already in `dest` again (the queue ignores ones it has).

        Covers a power cut after a frame was written but before the queue took it: the
        camera may be gone or reset by then, the local copy is the only one.
        """
        if self._on_file is None:
            return
        try:
            entries = sorted(self.config.dest.iterdir())
        except OSError as exc:
            self._set("error", f"cannot read {self.config.dest}: {exc.strerror}", last_error=str(exc))
            return
        for local in entries:
            if local.name.startswith(".") or not local.is_file():
                continue
            try:
                captured_at = local.stat().st_mtime
                self._on_file(CapturedFile(path=local, captured_at=captured_at, growing=False,
                                          origin="tether", reannounced=True))
            except Exception:
                log.exception("re-announcing %s failed", local.name)

    def _connect(self) -> bool:
        try:
            with self._lock:
                info = self.adapter.open()
        except CameraError as exc:
            if exc.kind == "claim":
                self._set(
                    "claim_failed",
                    f"{CLAIM_MESSAGE}; retrying every {self.config.redetect_interval:g} s",
                    last_error=str(exc),
                )
            elif exc.kind == "disconnected":
                state = "disconnected" if self._ever_connected else "searching"
                self._set(
                    state,
                    f"no camera detected ({exc.message}); re-detecting every "
                    f"{self.config.redetect_interval:g} s",
                )
            else:
                self._set("error", f"camera init failed: {exc}", last_error=str(exc))
            with self._lock:
                self.adapter.close()
            return False
        if self._ever_connected:
            self._bump("reconnects")
        self._ever_connected = True
        self._connected = True
        self._info = info
        self._session_keys = set()
        self._new_session()
        self._set(
            "connected",
            f"connected to {info.get('model')}",
            camera=info.get("model"),
            port=info.get("port"),
        )
        try:
            self._scan_card()
        except CameraError as exc:
            self._on_camera_error(exc)
            return self._connected
        return True

    def _on_camera_error(self, exc: CameraError) -> None:
        if exc.kind in ("disconnected", "claim"):
            self._connected = False
            with self._lock:
                self.adapter.close()
            msg = CLAIM_MESSAGE if exc.kind == "claim" else f"camera disconnected ({exc.message})"
            self._set(
                "disconnected",
                f"{msg}; re-detecting every {self.config.redetect_interval:g} s",
                last_error=str(exc),
            )
        elif exc.kind == "session":
            self._reinit(exc)
        elif exc.kind == "busy":
            self._set(
                "busy",
                "camera busy (another program or thread is using it); retrying",
                last_error=str(exc),
            )
        else:
            with self._status_lock:
                self._status["last_error"] = str(exc)

    def _reinit(self, exc: CameraError) -> None:
        """New camera session (the virtual camera wedges after 26 captures; real ones rarely)."""
        self._bump("reinits")
        with self._lock:
            self.adapter.close()
            try:
                self.adapter.open()
            except CameraError as again:
                self._connected = False
                self._set(
                    "disconnected", f"re-init after {exc} failed: {again}", last_error=str(again)
                )
                return
        self._session_keys = set()
        self._new_session()
        self._set("connected", f"connected to {self._info.get('model')} (session re-initialised)")

    def _new_session(self) -> None:
        """Card paths of the old session mean nothing now: forget pending card deletions."""
        with self._status_lock:
            self._generation += 1
            self._downloaded_in.clear()
            self._pending_deletes.clear()
            self._status["pending_deletes"] = 0

    def _periodic_trigger(self) -> None:
        every = self.config.trigger_every
        if every is None or time.monotonic() < self._next_trigger:
            return
        self._next_trigger = time.monotonic() + every
        try:
            self.trigger()
        except TetherError as exc:
            with self._status_lock:
                self._status["last_error"] = str(exc)

    def _pump_events(self) -> None:
        deadline = time.monotonic() + self.config.event_budget
        while not self._stop.is_set() and time.monotonic() < deadline:
            asked = time.monotonic()
            event = self._call(self.adapter.wait_event, self.config.event_timeout_ms)
            if event.kind == "file_added" and event.path is not None:
                # An event means a new frame: no ledger check, because cameras reuse
                # folder/name/size/mtime (the virtual camera does after every re-init).
                self._download(event.path)
            elif event.kind == "timeout":
                # Some drivers (libgphoto2's virtual camera, some PTP stacks) answer "timeout"
                # at once instead of waiting: wait out the rest here, or the loop spins a core.
                self._stop.wait(max(0.0, asked + self.config.event_timeout_ms / 1000 - time.monotonic()))
                return
