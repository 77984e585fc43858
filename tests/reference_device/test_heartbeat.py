"""The presence thread: it outlives a bad answer and beats at once after pairing again.

Fakes for tokens and API (the real socket and heartbeat paths are covered end to end in
test_engine_e2e.py and by the certification scenarios); HTTP-heartbeat mode, so the timing
under test is the loop's own.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from reference_device.config import DeviceConfig
from reference_device.heartbeat import Presence
from tests.waiting import wait_until


class FakeTokens:
    def __init__(self) -> None:
        self.paired = True

    def call(self, fn: Any) -> Any:
        return fn("token")


class FakeApi:
    def __init__(self) -> None:
        self.beats = 0

    def heartbeat(self, token: str) -> None:
        self.beats += 1


def _presence(tmp_path: Path, identify: Any) -> tuple[Presence, FakeTokens, FakeApi, threading.Event]:
    config = DeviceConfig(state_dir=tmp_path, websocket=False, heartbeat_interval=120.0, me_poll_interval=0.0)
    tokens, api, stop = FakeTokens(), FakeApi(), threading.Event()
    presence = Presence(config, api, tokens, stop, identify=identify,  # type: ignore[arg-type]
                        device_id=lambda: "dev-1", on_status=lambda status: None)
    return presence, tokens, api, stop


def test_an_unexpected_error_does_not_end_presence(tmp_path: Path) -> None:
    calls = {"n": 0}

    def identify() -> dict[str, Any]:
        calls["n"] += 1
        raise RuntimeError("a cloud answer the device did not expect")

    presence, _tokens, api, stop = _presence(tmp_path, identify)
    presence.start()
    try:
        wait_until(lambda: calls["n"] >= 2, 10, "identify to be retried after it raised")
        assert presence._thread is not None and presence._thread.is_alive()
        assert api.beats >= 1
    finally:
        stop.set()
        presence.join()


def test_a_device_paired_again_beats_at_once(tmp_path: Path) -> None:
    presence, tokens, api, stop = _presence(tmp_path, lambda: {})
    presence.start()
    try:
        wait_until(lambda: api.beats == 1, 10, "the first heartbeat")
        tokens.paired = False  # logout
        wait_until(lambda: not presence.connected or api.beats > 1, 10, "presence to notice the logout")
        tokens.paired = True  # paired again: the next beat must not wait out heartbeat_interval (120 s)
        wait_until(lambda: api.beats == 2, 10, "a heartbeat right after pairing again")
    finally:
        stop.set()
        presence.join()
