"""C2C-AUTH-03 "cancel after approval": the device drops the grant it already holds.

Against the real emulator over real TLS: in-process (both race windows of the pairing
thread) and as a real process driven through its local control API. A grant is dead when
its access token answers 401 on /v2/devices/me and its refresh token cannot be refreshed.
"""

from __future__ import annotations

import ssl
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from reference_device.credentials import CredentialStore
from reference_device.pairing import Pairing
from reference_device.testing import DeviceProcess
from reference_device.tokens import TokenManager
from tests.reference_device.conftest import approve_pending, device_config, wait_until
from tests.reference_device.test_engine_e2e import make_engine, pair


def _grant_alive(cloud: Any, client_id: str, secret: str, access: str, refresh: str) -> dict[str, int]:
    """Status codes the cloud gives the grant's two tokens (401 = dead)."""
    with httpx.Client(base_url=cloud.api_url, verify=ssl.create_default_context(cafile=str(cloud.ca_bundle)), timeout=10,
                      headers={"x-client-version": "1.4.0"}) as http:
        me = http.get("/v2/devices/me", headers={"Authorization": f"Bearer {access}"})
        ref = http.post("/v2/auth/token", files={
            "grant_type": (None, "refresh_token"), "client_id": (None, client_id),
            "client_secret": (None, secret), "refresh_token": (None, refresh)})
    return {"me": me.status_code, "refresh": ref.status_code}


def _revokes(control: Any) -> list[dict[str, Any]]:
    return [j for j in control.journal() if j["path"] == "/v2/auth/revoke"]


def _used_after(control: Any, device_id: str, since_t: float) -> list[str]:
    """Calls the cloud attributed to the device, or that carried a bearer, after `since_t`."""
    return [f"{j['method']} {j['path']} {j['status']}" for j in control.journal()
            if j["t"] > since_t and j["method"] != "WS"
            and (j.get("device_id") == device_id or "authorization" in {k.lower() for k in j.get("headers", {})})]


def test_forget_hands_back_the_pair_and_wipes(tmp_path: Path) -> None:
    from reference_device.config import load_config

    (tmp_path / "m").mkdir()
    cfg = load_config(None, env={"C2C_CLIENT_SECRET": "sec-123456"},
                      overrides={"state_dir": tmp_path / "s", "media_dirs": [tmp_path / "m"]})
    store = CredentialStore(cfg.credentials_path, cfg.key_path)
    tm = TokenManager(cfg, object(), store, stop=threading.Event())  # type: ignore[arg-type]
    tm.accept({"access_token": "acc-0", "refresh_token": "ref-0", "expires_in": 3600})
    assert tm.forget() == ("acc-0", "ref-0")
    assert not tm.paired and tm.state == "none" and tm.current_tokens() == (None, None)
    assert not store.load().get("access_token")
    assert tm.forget() == (None, None)


def test_cancel_after_pairing_revokes_forgets_and_closes_the_socket(cloud: Any, control: Any, tmp_path: Path) -> None:
    engine = make_engine(cloud, control, tmp_path)
    engine.start()
    try:
        pair(engine, control)
        wait_until(lambda: engine.snapshot()["socket"]["connected"], 20, "status socket joined")
        access, refresh = engine.tokens.current_tokens()
        assert access and refresh
        device = next(d for d in control.devices() if d["client_id"] == engine.config.client_id)
        assert _grant_alive(cloud, engine.config.client_id, control.client_secret(), access, refresh)["me"] == 200
        assert not _revokes(control)

        assert engine.control("pairing/cancel") == {"ok": True, "revoked": True}
        snap = engine.snapshot()
        assert snap["pairing"]["state"] == "cancelled" and snap["token"]["state"] == "none"
        assert snap["project"] == {"id": None, "name": None}
        assert not CredentialStore(engine.config.credentials_path, engine.config.key_path).load().get("access_token")
        revoke = _revokes(control)
        assert [r["status"] for r in revoke] == [200]
        # the socket opened with the grant closes; the cloud then sees the device use nothing
        wait_until(lambda: all(s["closed_at"] for s in control.websockets()), 10, "the status socket to close")
        seen = next(d for d in control.devices() if d["id"] == device["id"])["last_seen_at"]
        with pytest.raises(AssertionError):  # 3 s window: more than two beat/identify periods
            wait_until(lambda: _used_after(control, device["id"], revoke[0]["t"]), 3.0, "a call with the grant")
        assert next(d for d in control.devices() if d["id"] == device["id"])["last_seen_at"] == seen
        # only now probe the grant ourselves (the probe itself is a call with the grant)
        assert _grant_alive(cloud, engine.config.client_id, control.client_secret(), access, refresh) == \
            {"me": 401, "refresh": 401}
        # a second cancel has nothing left to drop
        assert engine.control("pairing/cancel") == {"ok": True}
        assert len(_revokes(control)) == 1
    finally:
        engine.stop()


def test_cancel_between_approval_and_storing_never_stores(
    cloud: Any, control: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cancel lands after the flow got its tokens but before the engine stored them."""
    engine = make_engine(cloud, control, tmp_path)
    got: dict[str, Any] = {}
    original_run = Pairing.run

    def run_then_cancel(self: Pairing) -> dict[str, Any]:
        answer = original_run(self)
        got.update(answer)
        got["cancel"] = engine.control("pairing/cancel")  # nothing stored yet: nothing to drop
        return answer

    monkeypatch.setattr(Pairing, "run", run_then_cancel)
    project = control.create_project("P")
    engine.start()
    try:
        wait_until(lambda: engine.snapshot()["pairing"]["state"] == "showing_code", 20, "code shown")
        approve_pending(control, project["id"])
        wait_until(lambda: engine.snapshot()["pairing"]["state"] == "cancelled", 20, "cancelled")
        assert got["cancel"] == {"ok": True}
        wait_until(lambda: _revokes(control), 10, "the discarded grant revoked")
        assert engine.snapshot()["token"]["state"] == "none"
        assert not CredentialStore(engine.config.credentials_path, engine.config.key_path).load().get("access_token")
        assert _grant_alive(cloud, engine.config.client_id, control.client_secret(),
                            got["access_token"], got["refresh_token"]) == {"me": 401, "refresh": 401}
    finally:
        engine.stop()


def test_device_process_cancel_after_approval(cloud: Any, control: Any, tmp_path: Path) -> None:
    """The real process: approve, cancel through the local API, end unpaired with a dead grant."""
    values = device_config(cloud, tmp_path)
    secret = control.client_secret()
    project = control.create_project("Cancel after approval")
    dev = DeviceProcess(values, client_secret=secret)
    try:
        dev.start()
        st = dev.wait_for(lambda s: s["pairing"]["state"] == "showing_code", 30, "code shown")
        control.approve(st["pairing"]["user_code"], project["id"])
        dev.wait_for(lambda s: s["pairing"]["state"] == "paired", 30, "paired")
        creds = CredentialStore(dev.state_dir / "credentials.enc", dev.state_dir / "key").load()
        access, refresh = creds["access_token"], creds["refresh_token"]
        client_id = next(d["client_id"] for d in control.devices() if d["project_id"] == project["id"])
        url = wait_until(lambda: (dev.state_dir / "status-url").exists()
                         and (dev.state_dir / "status-url").read_text().strip(), 10, "status url")
        answer = httpx.post(f"{url}/api/pairing/cancel", json={}, timeout=30).json()
        assert answer == {"ok": True, "revoked": True}
        dev.wait_for(lambda s: s["pairing"]["state"] == "cancelled" and s["token"]["state"] == "none",
                     10, "not paired, no token")
        assert [r["status"] for r in _revokes(control)] == [200]
        assert _grant_alive(cloud, client_id, secret, access, refresh) == {"me": 401, "refresh": 401}
        wait_until(lambda: all(s["closed_at"] for s in control.websockets()), 10, "the status socket to close")
        stored = CredentialStore(dev.state_dir / "credentials.enc", dev.state_dir / "key").load()
        assert not stored.get("access_token") and not stored.get("refresh_token")
    finally:
        dev.stop()
