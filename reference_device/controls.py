"""The user's actions on a device (harness/CONTRACTS.md §4), mixed into `Engine`.

Kept apart from the engine's threads so the contract a status server, CLI or harness
drives is one readable place. Every action is validated here: bad input becomes
`{"ok": False, "error": ...}`, never an exception out of `control()`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from reference_device.api import ApiClient, OAuthError
from reference_device.config import DeviceConfig
from reference_device.errors import UploadError
from reference_device.pairing import PairingStatus
from reference_device.queue import FileQueue
from reference_device.sources.base import Source
from reference_device.sources.registry import shutter
from reference_device.tokens import TokenManager

log = logging.getLogger(__name__)
# file states that still owe the cloud bytes
ACTIVE = ("queued", "uploading", "paused")


class UserActions:
    """`control(action, **args)` and the actions behind it; the engine supplies the state."""

    config: DeviceConfig
    api: ApiClient
    queue: FileQueue
    tokens: TokenManager
    pairing: PairingStatus
    sources: list[Source]
    stop_event: threading.Event
    wake: threading.Event
    mode: str
    project: dict[str, Any]
    device_id: str | None
    _lock: threading.Lock
    _pair_lock: threading.Lock
    _pair_cancel: threading.Event
    _inflight: dict[str, threading.Event]
    _user_cancelled: set[str]
    _select_all_before: float
    _settle_deadline: float
    start_pairing: Callable[[], bool]

    def control(self, action: str, **args: Any) -> dict[str, Any]:
        """Run a user action (CONTRACTS.md §4).

        mode(mode="auto"|"manual"); upload(ids=[...] | all=True); cancel(ids | all);
        priority(id=..., priority=N | filetype=".mov", priority=N); retry(ids | all);
        pairing/start; pairing/cancel; logout; shutter(count=N) (tethered camera).
        """
        action = action.strip("/").replace("_", "/")
        handlers: dict[str, Callable[..., dict[str, Any]]] = {
            "mode": self._c_mode, "upload": self._c_upload, "cancel": self._c_cancel,
            "priority": self._c_priority, "retry": self._c_retry,
            "pairing/start": self._c_pair_start, "pairing/cancel": self._c_pair_cancel,
            "cancel/pairing": self._c_pair_cancel, "logout": self._c_logout,
            "shutter": self._c_shutter,
        }
        handler = handlers.get(action)
        if handler is None:
            return {"ok": False, "error": f"unknown action {action!r}"}
        try:
            result = handler(**args)
        except (TypeError, ValueError, KeyError) as exc:
            return {"ok": False, "error": f"bad arguments for {action}: {exc}"}
        self.wake.set()
        return {"ok": True, **result}

    @staticmethod
    def _ids(ids: Any) -> list[str]:
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError("ids must be a list of file ids")
        return ids

    def _c_mode(self, mode: str) -> dict[str, Any]:
        if mode not in ("auto", "manual"):
            raise ValueError("mode must be auto or manual")
        self.mode = mode
        self.queue.put_setting("mode", mode)
        return {"mode": mode}

    def _c_upload(self, ids: Any = None, all: bool = False) -> dict[str, Any]:
        if not all:
            return {"selected": self.queue.select(self._ids(ids))}
        stamp = time.time()
        self.queue.put_setting("select_all_before", repr(stamp))
        with self._lock:
            self._select_all_before = stamp
            # a file placed just before the stamp is seen within one scan and handed over
            # after the quiet period; allow that plus margin, never wait forever
            self._settle_deadline = stamp + self.config.quiet_period + 3 * self.config.scan_interval + 5.0
        return {"selected": self.queue.select(None)}

    def _c_cancel(self, ids: Any = None, all: bool = False) -> dict[str, Any]:
        targets = self.queue.ids_in((*ACTIVE, "failed", "quarantined")) if all else self._ids(ids)
        count = 0
        for fid in targets:
            # under the claim lock: a worker cannot pick the file up between check and change.
            # The new state is committed before the parts are stopped, so a power cut right
            # after the answer does not bring the file back (reconcile re-queues 'uploading').
            with self._lock:
                ev = self._inflight.get(fid)
                if self.queue.transition(fid, (*ACTIVE, "failed", "quarantined"), "cancelled",
                                         "cancelled by user"):
                    count += 1
                if ev is not None:
                    self._user_cancelled.add(fid)
                    ev.set()
        return {"cancelled": count}

    def _c_priority(self, priority: int, id: str | None = None, filetype: str | None = None) -> dict[str, Any]:
        priority = int(priority)
        if id is not None:
            if not self.queue.set_priority(id, priority):
                raise ValueError(f"no file with id {id!r}")
        elif filetype:
            ext = filetype.lower() if filetype.startswith(".") else "." + filetype.lower()
            self.queue.set_filetype_priority(ext, priority)
        else:
            raise ValueError("give id or filetype")
        return {}

    def _c_retry(self, ids: Any = None, all: bool = False) -> dict[str, Any]:
        targets = self.queue.ids_in(("failed", "quarantined")) if all else self._ids(ids)
        n = sum(self.queue.transition(fid, ("failed", "quarantined"), "queued") for fid in targets)
        return {"retried": n}

    def _c_shutter(self, count: int = 1) -> dict[str, Any]:
        return {"triggered": shutter(self.sources, count, self.stop_event)}

    def _c_pair_start(self) -> dict[str, Any]:
        if self.tokens.paired:
            raise ValueError("already paired; log out first")
        return {"started": self.start_pairing()}

    def _c_pair_cancel(self) -> dict[str, Any]:
        """Cancel pairing at any step (C2C-AUTH-03).

        Before approval this stops the flow. After approval the device already holds the
        grant: cancelling then undoes the pairing (forget, revoke, not paired) instead of
        leaving the device paired behind the user's back.
        """
        self._pair_cancel.set()
        with self._pair_lock:
            if not any(self.tokens.current_tokens()):
                return {}
            revoked = self._drop_grant()
            self.pairing.set("cancelled")
        log.info("pairing cancelled after approval (revoked=%s)", revoked)
        return {"revoked": revoked}

    def _c_logout(self) -> dict[str, Any]:
        self._pair_cancel.set()
        with self._pair_lock:
            revoked = self._drop_grant()
            self.pairing.set("unpaired")
        return {"revoked": revoked}

    def _drop_grant(self) -> bool:
        """Forget the tokens, stop what uses them, then revoke the grant in the cloud.

        Forgotten first, so no thread sends the grant again once the revoke is on its way.
        True when the cloud accepted the revoke.
        """
        access, refresh = self.tokens.forget()
        with self._lock:
            for ev in self._inflight.values():
                ev.set()
        self.project = {"id": None, "name": None}
        self.device_id = None
        if not (access or refresh):
            return False
        try:
            self.api.revoke(self.config.client_id, self.config.client_secret or "", refresh or access or "")
            return True
        except (OAuthError, UploadError) as exc:
            log.warning("revoke failed (%s); credentials forgotten anyway", exc)
            return False
