"""Pairing logic with a scripted API (every branch), then against the real emulator."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from reference_device.api import OAuthError
from reference_device.config import load_config
from reference_device.errors import PairingError
from reference_device.pairing import Pairing, PairingStatus


class ScriptedApi:
    """Answers device-code and poll calls from scripts; records calls."""

    def __init__(self, codes: list[Any], polls: list[Any]) -> None:
        self.codes = list(codes)
        self.polls = list(polls)
        self.calls: list[str] = []
        self.revoked: list[str] = []
        self.before_poll: Any = None

    def request_device_code(self, client_id: str, secret: str) -> dict[str, Any]:
        self.calls.append("code")
        item = self.codes.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    def poll_token(self, client_id: str, secret: str, device_code: str) -> dict[str, Any]:
        self.calls.append(f"poll:{device_code}")
        if self.before_poll:
            self.before_poll()
        item = self.polls.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    def revoke(self, client_id: str, secret: str, token: str) -> None:
        self.revoked.append(token)


def code(n: int = 1, interval: float = 0.01, expires_in: float = 60) -> dict[str, Any]:
    return {"device_code": f"dc{n}", "user_code": f"{n:06d}", "expires_in": expires_in,
            "interval": interval, "verification_uri": "https://x/pair",
            "verification_uri_complete": f"https://x/pair?code={n:06d}"}


TOKENS = {"access_token": "acc-1234", "refresh_token": "ref-1234", "expires_in": 60}


@pytest.fixture
def config(tmp_path: Path) -> Any:
    (tmp_path / "m").mkdir()
    return load_config(None, env={"C2C_CLIENT_SECRET": "secret-xyz"},
                       overrides={"state_dir": tmp_path / "s", "media_dirs": [tmp_path / "m"],
                                  "backoff_base": 0.01, "backoff_cap": 0.02})


def run(config: Any, api: ScriptedApi, cancel: threading.Event | None = None) -> tuple[Pairing, PairingStatus, Any]:
    status = PairingStatus()
    pairing = Pairing(config, api, status, cancel or threading.Event())  # type: ignore[arg-type]
    try:
        return pairing, status, pairing.run()
    except PairingError as exc:
        return pairing, status, exc


def test_happy_path_with_pending(config: Any) -> None:
    api = ScriptedApi([code()], [OAuthError("authorization_pending", 400)] * 2 + [TOKENS])
    pairing, status, result = run(config, api)
    assert result == TOKENS and status.state == "approved" and pairing.polls == 3


def test_slow_down_adds_five_seconds(config: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(Pairing, "_wait", lambda self, s: waits.append(s))
    api = ScriptedApi([code(interval=2)], [OAuthError("slow_down", 400), OAuthError("slow_down", 400), TOKENS])
    _, _, result = run(config, api)
    assert result == TOKENS
    assert waits == [2, 7, 12]


def test_expired_code_gets_a_new_code(config: Any) -> None:
    api = ScriptedApi([code(1), code(2)], [OAuthError("expired_token", 400), TOKENS])
    pairing, _, result = run(config, api)
    assert result == TOKENS and pairing.codes_requested == 2
    assert api.calls == ["code", "poll:dc1", "code", "poll:dc2"]


def test_local_expiry_gets_a_new_code(config: Any) -> None:
    api = ScriptedApi([code(1, expires_in=0.001), code(2)], [TOKENS])
    _pairing, _, result = run(config, api)
    assert result == TOKENS and api.calls == ["code", "code", "poll:dc2"]


@pytest.mark.parametrize(("error", "reason", "state"), [
    ("access_denied", "denied", "denied"),
    ("invalid_grant", "denied", "denied"),
    ("invalid_client", "invalid_client", "error"),
    ("invalid_request", "invalid_request", "error"),
])
def test_terminal_poll_errors(config: Any, error: str, reason: str, state: str) -> None:
    api = ScriptedApi([code()], [OAuthError(error, 400)])
    _, status, result = run(config, api)
    assert isinstance(result, PairingError) and result.reason == reason
    assert status.state == state
    assert "secret-xyz" not in str(result)


def test_invalid_client_on_code_request(config: Any) -> None:
    api = ScriptedApi([OAuthError("invalid_client", 400)], [])
    _, status, result = run(config, api)
    assert isinstance(result, PairingError) and result.reason == "invalid_client"
    assert "invalid_client" in (status.error or "")


def test_cancel_before_request(config: Any) -> None:
    cancel = threading.Event()
    cancel.set()
    api = ScriptedApi([code()], [])
    _, status, result = run(config, api, cancel)
    assert isinstance(result, PairingError) and result.reason == "cancelled"
    assert api.calls == [] and status.state == "cancelled"


def test_cancel_while_polling(config: Any) -> None:
    cancel = threading.Event()
    api = ScriptedApi([code()], [OAuthError("authorization_pending", 400)] * 3 + [TOKENS])
    api.before_poll = lambda: len(api.calls) >= 3 and cancel.set()
    _, status, result = run(config, api, cancel)
    assert isinstance(result, PairingError) and result.reason == "cancelled"
    assert status.state == "cancelled" and api.calls.count("poll:dc1") == 2


def test_cancel_after_approval_revokes(config: Any) -> None:
    cancel = threading.Event()
    api = ScriptedApi([code()], [TOKENS])
    api.before_poll = cancel.set
    _, status, result = run(config, api, cancel)
    assert isinstance(result, PairingError) and result.reason == "cancelled"
    assert api.revoked == ["ref-1234"] and status.state == "cancelled"
