"""The engine's pairing and token side, mixed into `Engine`: identify, the pairing thread, the auth loop.

Kept apart from the upload workers and the status so each concern reads on its own; the
engine supplies the state (declared below). A failing turn never ends a loop: it logs one
line and backs off (`loop_backoff`: 1, 2, 4 ... 60 s).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from reference_device.api import ApiClient
from reference_device.config import DeviceConfig
from reference_device.errors import AuthError, DeviceError, PairingError, RepairNeeded, UploadError
from reference_device.pairing import Pairing, PairingStatus
from reference_device.tokens import TokenManager

log = logging.getLogger("reference_device.engine")

LOOP_BACKOFF_MIN = 1.0
LOOP_BACKOFF_MAX = 60.0
"""A failing loop turn (auth, identify, pairing, a restarted loop) waits 1, 2, 4 ... 60 s."""


def loop_backoff(failures: int) -> float:
    """Deterministic capped exponential wait after `failures` consecutive failures."""
    return min(LOOP_BACKOFF_MAX, LOOP_BACKOFF_MIN * 2.0 ** max(0, min(failures - 1, 16)))


ENDED_PAIRING = frozenset({"denied", "expired", "error", "cancelled"})
"""Pairing states a flow shows just before its thread ends."""
ENDING_WAIT_S = 2.0

class DeviceAuth:
    """Pairing, identify and proactive refresh; the engine supplies the state."""

    config: DeviceConfig
    api: ApiClient
    tokens: TokenManager
    pairing: PairingStatus
    stop_event: threading.Event
    wake: threading.Event
    project: dict[str, Any]
    device_id: str | None
    cloud_status: str
    _lock: threading.Lock
    _pair_lock: threading.Lock
    _pair_cancel: threading.Event
    _pair_thread: threading.Thread | None

    # --- auth ------------------------------------------------------------------------------
    def identify(self) -> dict[str, Any] | None:
        """GET /v2/devices/me: project (by id), device id, cloud status."""
        me = self.tokens.call(self.api.me)
        if not self.tokens.paired:
            return me  # unpaired while the call ran: show no project from a dropped grant
        project = me.get("project") or {}
        pid = me.get("project_id") or project.get("id")
        self.project = {"id": pid, "name": project.get("name")}
        self.device_id = str(me.get("id") or me.get("device_id") or "") or None
        status = me.get("status")
        if isinstance(status, str):
            self._set_cloud_status(status)
        return me

    def _on_repair(self, why: str) -> None:
        self.pairing.set("repair_needed", error=f"credentials rejected ({why}); pair again")

    def _set_cloud_status(self, status: str) -> None:
        before = self.cloud_status
        self.cloud_status = status if status in ("online", "paused", "offline") else "unknown"
        if before != self.cloud_status:
            log.info("cloud status %s -> %s", before, self.cloud_status)
            self.wake.set()

    def start_pairing(self) -> bool:
        with self._lock:
            ending = self._pair_thread
        if ending is not None and ending.is_alive() and self.pairing.state in ENDED_PAIRING:
            # the flow has shown its end (denied, expired ...) and is on its way out: a user who
            # asks to pair again at that moment is not refused
            ending.join(ENDING_WAIT_S)
        with self._lock:
            if self._pair_thread is not None and self._pair_thread.is_alive():
                return False
            self._pair_cancel = threading.Event()
            self._pair_thread = threading.Thread(target=self._pair, args=(self._pair_cancel,),
                                                 name="pairing", daemon=True)
            self._pair_thread.start()
            return True

    def _pair(self, cancel: threading.Event) -> None:
        """The pairing thread: a bad answer never ends it, the flow starts over after a backoff."""
        failures = 0
        while not cancel.is_set() and not self.stop_event.is_set():
            try:
                self._pair_once(cancel)
                return
            except PairingError as exc:
                log.warning("pairing ended: %s", exc)
                return
            except DeviceError as exc:
                self.pairing.set("error", error=str(exc))
                log.error("pairing failed: %s", exc)
                return
            except Exception as exc:
                failures += 1
                wait = loop_backoff(failures)
                self.pairing.set("error", error=f"{type(exc).__name__}: {exc}")
                log.error("pairing flow error (%s: %s); starting again in %.0fs",
                          type(exc).__name__, exc, wait)
                if cancel.wait(wait):
                    return

    def _pair_once(self, cancel: threading.Event) -> None:
        flow = Pairing(self.config, self.api, self.pairing, cancel)
        answer = flow.run()
        with self._pair_lock:
            if cancel.is_set():
                # cancelled after run() returned: the cancel found no tokens to drop,
                # so the grant is revoked here instead of being stored
                flow.discard(answer)
                self.pairing.set("cancelled")
                log.info("pairing cancelled after approval; grant revoked")
                return
            self.tokens.accept(answer)
            self.pairing.set("paired")
        log.info("paired")
        try:
            self.identify()
        except (UploadError, AuthError) as exc:
            log.warning("identify after pairing failed (the auth loop tries again): %s", exc)
        self.wake.set()

    def _auth_loop(self) -> None:
        """Proactive refresh and identify; a failing turn backs off (1 s ... 60 s), one log line each."""
        failures, next_try = 0, 0.0
        while not self.stop_event.is_set():
            if self.tokens.state == "repair_needed" and self.pairing.state not in (
                "requesting_code", "showing_code", "approved", "repair_needed"
            ):
                self.pairing.set("repair_needed", error="credentials rejected; pair again")
            if time.monotonic() >= next_try:
                try:
                    self._auth_turn()
                    failures = 0
                except RepairNeeded as exc:
                    log.warning("auth: %s", exc)
                except Exception as exc:
                    failures += 1
                    wait = loop_backoff(failures)
                    next_try = time.monotonic() + wait
                    log.warning("auth: %s; next try in %.0fs", exc if isinstance(exc, DeviceError)
                                else f"{type(exc).__name__}: {exc}", wait)
            self.stop_event.wait(0.5)

    def _auth_turn(self) -> None:
        if self.tokens.paired:
            self.tokens.refresh_if_due()
        if self.tokens.paired and self.project["id"] is None:
            self.identify()
