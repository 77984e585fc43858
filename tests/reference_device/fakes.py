"""A stand-in engine for the faces' unit tests: the same two methods as reference_device.engine."""

from __future__ import annotations

import copy
import threading
from typing import Any

HOSTILE = '<script>alert("x")</script>&.mov'


def sample_snapshot() -> dict[str, Any]:
    return {
        "schema": "c2c-status/1",
        "device": {"name": "REF-1", "firmware": "1.4.0", "kind": "camera"},
        "pairing": {
            "state": "showing_code",
            "user_code": "482913",
            "verification_uri": "https://127.0.0.1:8443/pair",
            "verification_uri_complete": "https://127.0.0.1:8443/pair?code=482913",
            "expires_at": 4102444800,
            "error": None,
        },
        "project": {"id": "11111111-2222-3333-4444-555555555555", "name": "Night Shoot"},
        "token": {"state": "valid", "expires_at": 4102444800, "refresh_count": 2,
                  "access_token": "SECRET-ACCESS-TOKEN"},
        "mode": "auto",
        "queue": {"remaining_count": 3, "remaining_bytes": 3 * 1024**3, "completed": 7, "queued": 2,
                  "uploading": 1, "failed": 1, "quarantined": 1, "paused": 0, "cancelled": 0},
        "current": {"file_id": "f1", "name": "A001_C002.mov", "bytes_done": 512, "size": 1024,
                    "progress": 0.5},
        "files": [
            {"id": "f1", "name": "A001_C002.mov", "path": "/m/A001_C002.mov", "size": 1024,
             "state": "uploading", "reason": None, "priority": 30, "asset_id": "a1", "bytes_done": 512},
            {"id": "f2", "name": HOSTILE, "path": "/m/x", "size": 10, "state": "failed",
             "reason": "<b>broken</b>", "priority": 0, "asset_id": None, "bytes_done": 0},
            {"id": 'f3"><img src=x>', "name": "bad.jpg", "path": "/m/bad.jpg", "size": 0,
             "state": "quarantined", "reason": "zero_length", "priority": 0, "asset_id": None,
             "bytes_done": 0},
        ],
        "network": {"online": True, "type": "ethernet", "throughput_bps": 80_000_000,
                    "health": "good", "last_error": None},
        "socket": {"connected": True, "kind": "websocket", "last_beat_at": 1},
        "cloud_status": "online",
        "client_secret": "SECRET-CLIENT",
    }


class FakeEngine:
    """Records control calls; `fail_with` makes the next control call raise."""

    def __init__(self, snapshot: dict[str, Any] | None = None) -> None:
        self.state = snapshot if snapshot is not None else sample_snapshot()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_with: BaseException | None = None
        self.lock = threading.Lock()

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.state)

    def control(self, action: str, **args: Any) -> dict[str, Any]:
        with self.lock:
            self.calls.append((action, args))
            if self.fail_with is not None:
                exc, self.fail_with = self.fail_with, None
                raise exc
            if action == "mode":
                self.state["mode"] = args["mode"]
            if action == "pairing/cancel":
                self.state["pairing"]["state"] = "cancelled"
            return {"ok": True}
