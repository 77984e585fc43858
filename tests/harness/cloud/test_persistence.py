"""State survives a power cut (SIGKILL of the emulator's process group) and a restart."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from harness.cloud.runner import EmulatorProcess
from harness.cloud.testing import api_client, pair_device
from harness.errors import CloudError, ConfigError

HEADERS = {"content-type": "video/mp4", "x-amz-acl": "private"}
MIB = 1024 * 1024


def test_sigkill_and_restart_keep_everything(tmp_path: Path) -> None:
    with EmulatorProcess(tmp_path / "cloud") as emulator:
        cloud = emulator.control
        assert cloud is not None
        device = pair_device(cloud, client_id="survivor")
        done, half = os.urandom(1000), os.urandom(40 * MIB + 3)
        with api_client(emulator.api_url, emulator.ca_bundle) as api:
            first = api.post("/v2/devices/assets", headers=device.headers, json={
                "name": "done.mp4", "filetype": "video/mp4", "filesize": len(done)}).json()
            assert api.put(first["upload_urls"][0], content=done, headers=HEADERS).status_code == 200
            second = api.post("/v2/devices/assets", headers=device.headers, json={
                "name": "half.mp4", "filetype": "video/mp4", "filesize": len(half)}).json()
            chunk = -(-len(half) // len(second["upload_urls"]))
            assert api.put(second["upload_urls"][0], content=half[:chunk],
                           headers=HEADERS).status_code == 200
            cloud.pause_device(device.device_id)
        ledger_before = cloud.ledger()
        journal_before = cloud.journal()
        api_url, pid = emulator.api_url, emulator.proc.pid if emulator.proc else 0

        emulator.kill()
        with pytest.raises(CloudError):
            cloud.state()
        emulator.restart()
        cloud = emulator.control
        assert cloud is not None
        assert emulator.api_url == api_url and emulator.proc and emulator.proc.pid != pid

        assert cloud.ledger() == ledger_before
        assert cloud.journal()[: len(journal_before)] == journal_before
        assert next(d for d in cloud.devices())["paused"] is True
        with api_client(emulator.api_url, emulator.ca_bundle) as api:
            me = api.get("/v2/devices/me", headers=device.headers)
            assert me.status_code == 200 and me.json()["status"] == "paused"
            # The rest of the interrupted upload goes to the same, still valid, URL.
            for i, url in enumerate(second["upload_urls"][1:], 1):
                body = half[i * chunk:(i + 1) * chunk]
                assert api.put(url, content=body, headers=HEADERS).status_code == 200
            refreshed = api.post("/v2/auth/token", data={
                "grant_type": "refresh_token", "client_id": device.client_id,
                "client_secret": device.client_secret, "refresh_token": device.refresh_token})
            assert refreshed.status_code == 200
        rows = {r["name"]: r for r in cloud.ledger()}
        assert rows["done.mp4"]["sha256"] == hashlib.sha256(done).hexdigest()
        assert rows["half.mp4"]["state"] == "complete"
        assert rows["half.mp4"]["sha256"] == hashlib.sha256(half).hexdigest()

        # The CA and the client secret were reused, not regenerated.
        ca_dir = emulator.data_dir / "ca"
        assert stat.S_IMODE((ca_dir / "ca-key.pem").stat().st_mode) == 0o600
        assert stat.S_IMODE(emulator.client_secret_file.stat().st_mode) == 0o600
        secret = tomllib.loads(emulator.client_secret_file.read_text())["client_secret"]
        assert secret == device.client_secret
        log = emulator.log_file.read_text()
        assert "pairing page" in log and "CA bundle" in log and secret not in log


def test_startup_lines_and_approve_command(tmp_path: Path) -> None:
    with EmulatorProcess(tmp_path / "cloud", settings={"device_code_interval": 1}) as emulator:
        log = emulator.log_file.read_text()
        assert f"pairing page     {emulator.api_url}/pair" in log
        assert str(emulator.ca_bundle) in log and "Traceback" not in log
        cloud = emulator.control
        assert cloud is not None and cloud.settings()["device_code_interval"] == 1
        with api_client(emulator.api_url, emulator.ca_bundle) as api:
            code = api.post("/v2/auth/device/code", data={
                "client_id": "cli-cam", "client_secret": cloud.client_secret(),
                "scope": "asset_create offline"}).json()
        done = subprocess.run(
            [sys.executable, "-m", "harness.cloud.cli", "approve", code["user_code"],
             "--project", "CLI Project", "--data-dir", str(emulator.data_dir)],
            capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        assert "approved" in done.stdout
        assert [d["client_id"] for d in cloud.devices()] == ["cli-cam"]
        failed = subprocess.run(
            [sys.executable, "-m", "harness.cloud.cli", "approve", "000000",
             "--project", "CLI Project", "--data-dir", str(emulator.data_dir)],
            capture_output=True, text=True, timeout=60, check=False)
        assert failed.returncode == 2 and "no live pending code" in failed.stderr
        api_calls = len(cloud.journal())
        emulator.stop()  # SIGTERM: an orderly stop flushes and exits 0
        assert emulator.proc is not None and emulator.proc.returncode == 0
        emulator.start()
        assert emulator.control is not None and len(emulator.control.journal()) >= api_calls


def test_bad_settings_are_refused_before_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="offset_sign"):
        EmulatorProcess(tmp_path, settings={"offset_sign": "sideways"})
    bad = tmp_path / "bad.toml"
    bad.write_text("device_code_lifetime = [\n")
    done = subprocess.run(
        [sys.executable, "-m", "harness.cloud.cli", "serve", "--data-dir", str(tmp_path / "d"),
         "--settings", str(bad)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "not valid TOML" in done.stderr


def test_an_interrupted_start_leaves_no_emulator_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while the emulator comes up: it runs in its own session, so only start() can stop it."""
    def interrupted(self: EmulatorProcess) -> bool:
        raise KeyboardInterrupt
    monkeypatch.setattr(EmulatorProcess, "_healthy", interrupted)
    emulator = EmulatorProcess(tmp_path / "cloud")
    with pytest.raises(KeyboardInterrupt):
        emulator.start()
    assert emulator.proc is not None and emulator.proc.poll() is not None  # reaped: the group was killed
