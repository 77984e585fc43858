"""The reference device's local surfaces (issue #17 point 5): the status/control port stays on
loopback unless a token guards it, and its state is private to its user."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.cloud.control import CloudControl
from reference_device.status_server import StatusServer
from reference_device.testing import DeviceProcess
from tests.reference_device.conftest import approve_pending, device_config

TOKEN = "t" * 8 + "-status-token-for-tests"


class Engine:
    """The two calls the status server makes."""

    def snapshot(self) -> dict[str, Any]:
        return {"schema": "c2c-status/1", "pairing": {"state": "paired"}}

    def control(self, action: str, **args: Any) -> dict[str, Any]:
        return {"ok": True}


def test_beyond_loopback_needs_a_token() -> None:
    with pytest.raises(ValueError, match="token"):
        StatusServer(Engine(), host="0.0.0.0")
    with pytest.raises(ValueError, match="16"):
        StatusServer(Engine(), host="0.0.0.0", token="short")


def test_token_guards_every_request_and_the_guards_stay() -> None:
    # 127.0.0.2 stands for "an address beyond 127.0.0.1": the token path, not loopback's
    with StatusServer(Engine(), host="127.0.0.1", port=0, token=TOKEN) as server:
        url = server.url
        with httpx.Client(trust_env=False) as http:
            assert http.get(f"{url}/status.json").status_code == 401
            assert http.get(f"{url}/status.json", headers={"authorization": "Bearer wrong"}).status_code == 401
            good = {"authorization": f"Bearer {TOKEN}"}
            assert http.get(f"{url}/status.json", headers=good).status_code == 200
            assert http.post(f"{url}/api/mode", json={"mode": "auto"}).status_code == 401
            assert http.post(f"{url}/api/mode", json={"mode": "auto"}, headers=good).status_code == 200
            # Host and content-type guards still apply with the token
            assert http.get(f"{url}/status.json", headers={**good, "host": "evil.example"}).status_code == 403
            assert http.post(f"{url}/api/mode", content=b'{"mode": "auto"}',
                             headers={**good, "content-type": "text/plain"}).status_code == 415


def test_loopback_default_without_token() -> None:
    with StatusServer(Engine(), port=0) as server, httpx.Client(trust_env=False) as http:
        assert server.url.startswith("http://127.0.0.1:")
        assert http.get(f"{server.url}/status.json").status_code == 200
        assert http.get(f"{server.url}/status.json", headers={"host": "evil.example"}).status_code == 403


def modes(state_dir: Path) -> dict[str, int]:
    return {str(p.relative_to(state_dir)): stat.S_IMODE(os.stat(p).st_mode)
            for p in [state_dir, *state_dir.rglob("*")]}


def test_state_dir_0700_and_state_files_0600(cloud: CloudControl, tmp_path: Path) -> None:
    """A paired device's state dir is 0700 and holds no file others can read."""
    values = device_config(cloud, tmp_path)
    values["status_file"] = str(tmp_path / "status.json")  # the harness's copy, outside the state
    project = cloud.create_project("Perms")
    dev = DeviceProcess(values, client_secret=cloud.client_secret())
    try:
        dev.start()
        approve_pending(cloud, project["id"])
        dev.wait_for(lambda s: s["pairing"]["state"] == "paired", 30, "paired")
    finally:
        dev.stop()
    found = modes(dev.state_dir)
    assert found["."] == 0o700, found
    loose = {name: oct(mode) for name, mode in found.items()
             if name not in (".", "process.out")  # process.out: the test rig's, not the device's
             and (dev.state_dir / name).is_file() and mode & 0o077}
    assert not loose, loose
