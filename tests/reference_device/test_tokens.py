"""Token rotation rules with a scripted auth server and the real encrypted store."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from reference_device.api import OAuthError
from reference_device.config import load_config
from reference_device.credentials import CredentialStore
from reference_device.errors import RepairNeeded, RetryableError, UnauthorizedError
from reference_device.tokens import TokenManager
from tests.waiting import wait_until


class AuthServer:
    def __init__(self, script: list[Any] | None = None) -> None:
        self.script = list(script or [])
        self.refreshes: list[str] = []
        self.n = 0
        self.lock = threading.Lock()

    def refresh_token(self, client_id: str, secret: str, refresh_token: str) -> dict[str, Any]:
        with self.lock:
            self.refreshes.append(refresh_token)
            if self.script:
                item = self.script.pop(0)
                if isinstance(item, Exception):
                    raise item
            self.n += 1
            time.sleep(0.05)  # widen the race window for concurrent callers
            return {"access_token": f"acc-{self.n}", "refresh_token": f"ref-{self.n}", "expires_in": 3600}


@pytest.fixture
def config(tmp_path: Path) -> Any:
    (tmp_path / "m").mkdir()
    return load_config(None, env={"C2C_CLIENT_SECRET": "sec-123456"},
                       overrides={"state_dir": tmp_path / "s", "media_dirs": [tmp_path / "m"],
                                  "backoff_base": 0.01, "backoff_cap": 0.02})


def manager(config: Any, server: AuthServer) -> tuple[TokenManager, CredentialStore]:
    store = CredentialStore(config.credentials_path, config.key_path)
    tm = TokenManager(config, server, store, stop=threading.Event())  # type: ignore[arg-type]
    tm.accept({"access_token": "acc-0", "refresh_token": "ref-0", "expires_in": 3600})
    return tm, store


def test_401_refreshes_once_for_all_concurrent_callers(config: Any) -> None:
    server = AuthServer()
    tm, store = manager(config, server)
    seen: list[str] = []

    def resource(token: str) -> str:
        if token == "acc-0":
            raise UnauthorizedError("expired", status=401)
        seen.append(token)
        return token

    threads = [threading.Thread(target=tm.call, args=(resource,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert server.refreshes == ["ref-0"] and seen == ["acc-1"] * 6
    assert store.load()["refresh_token"] == "ref-1"  # durable before use
    assert tm.refresh_count == 1


def test_proactive_refresh_at_margin(config: Any) -> None:
    server = AuthServer()
    tm, _ = manager(config, server)
    assert tm.access_token() == "acc-0"
    tm.accept({"access_token": "acc-x", "refresh_token": "ref-x", "expires_in": 3})  # margin = 1 s
    tm.expires_at = time.time() + 0.5
    assert tm.access_token() == "acc-1" and server.refreshes == ["ref-x"]


def test_the_periodic_refresh_never_repeats_one_another_thread_just_made(config: Any) -> None:
    """Seen in the matrix: the presence thread refreshed an expired token and the auth loop, which
    had found it due a moment before, refreshed again 140 ms later; a power cut then landed in the
    second refresh and the device lost its pair. The auth loop's turn runs while another thread
    refreshes: one refresh in all."""
    from reference_device.engine_auth import DeviceAuth

    server = AuthServer()
    tm, _ = manager(config, server)
    tm.accept({"access_token": "acc-x", "refresh_token": "ref-x", "expires_in": 3})  # margin = 1 s
    tm.expires_at = time.time() + 0.5
    auth = DeviceAuth.__new__(DeviceAuth)
    auth.tokens, auth.project = tm, {"id": "project-1"}  # type: ignore[misc]
    presence = threading.Thread(target=tm.access_token)
    presence.start()
    # the presence thread's refresh is under way (the server holds it 50 ms)
    wait_until(lambda: server.refreshes, 5, "the presence thread's refresh", interval=0.001)
    auth._auth_turn()
    presence.join(5)
    assert server.refreshes == ["ref-x"] and tm.refresh_count == 1


def test_lost_answer_then_dead_token_needs_repair_and_survives_restart(config: Any) -> None:
    server = AuthServer([RetryableError("connection reset after send"), OAuthError("invalid_request", 400)])
    repairs: list[str] = []
    tm, store = manager(config, server)
    tm.on_repair = repairs.append
    with pytest.raises(RepairNeeded):
        tm.refresh()
    assert tm.state == "repair_needed" and repairs
    assert server.refreshes == ["ref-0", "ref-0"]
    again = TokenManager(config, server, store, stop=threading.Event())  # type: ignore[arg-type]
    assert again.state == "repair_needed" and not again.paired
    with pytest.raises(RepairNeeded):
        again.access_token()


def test_revoked_refresh_needs_repair(config: Any) -> None:
    tm, _ = manager(config, AuthServer([OAuthError("unauthorized", 401)]))
    with pytest.raises(RepairNeeded):
        tm.call(lambda t: (_ for _ in ()).throw(UnauthorizedError("revoked", status=401)))
    assert tm.snapshot()["state"] == "repair_needed"
