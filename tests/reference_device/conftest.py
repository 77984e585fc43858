"""Fixtures for the reference device against the real cloud emulator over real TLS."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.waiting import wait_until

FAST_CLOUD = {"device_code_interval": 1, "slow_down_increment": 1}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    runner = pytest.importorskip("harness.cloud.runner")
    emu = runner.EmulatorProcess(tmp_path_factory.mktemp("cloud"), settings=dict(FAST_CLOUD))
    emu.start()
    try:
        yield emu
    finally:
        emu.kill()  # a test emulator needs no orderly shutdown
        emu.close()


@pytest.fixture
def control(cloud: Any) -> Any:
    ctl = cloud.control
    ctl.reset()
    ctl.update_settings(**FAST_CLOUD)
    return ctl


def device_config(cloud: Any, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    media = tmp_path / "media"
    media.mkdir(exist_ok=True)
    values: dict[str, Any] = {
        "api_url": cloud.api_url, "ca_bundle": str(cloud.ca_bundle),
        "state_dir": str(tmp_path / "state"), "media_dirs": [str(media)],
        "firmware_version": "1.4.0", "scan_interval": 0.2, "quiet_period": 0.6,
        "heartbeat_interval": 60.0, "backoff_base": 0.05, "backoff_cap": 0.5,
        "status_file": str(tmp_path / "state" / "status.json"), "me_poll_interval": 1.0,
        "name": "REF-TEST",
    }
    values.update(extra)
    return values


def approve_pending(control: Any, project_id: str, timeout: float = 20) -> str:
    codes = wait_until(lambda: [c for c in control.pending_codes() if c.get("state") in (None, "pending")],
                       timeout, "a pending device code")
    code = codes[-1]["user_code"]
    control.approve(code, project_id)
    return code
