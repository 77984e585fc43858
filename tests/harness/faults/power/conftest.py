"""What every power-cut test through the real stack shares: the emulator, the reference device's
config on a metered link, pairing, and the delivery check (C2C-QUE-03's verdict: every file
delivered once and intact, the bytes re-sent per cut bounded by the parts in flight)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.cloud.control import CloudControl
from harness.cloud.runner import EmulatorProcess
from reference_device.testing import write_config
from tests.waiting import wait_until

PART = 5 * 1024 * 1024


def read_status(path: Path) -> dict[str, Any]:
    """The device's status file, or {} while it is absent or half-written."""
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, ValueError):
        return {}


def bytes_done(status: Mapping[str, Any]) -> int:
    """Bytes the device says the cloud has acknowledged, over every file."""
    return sum(int(f.get("bytes_done", 0)) for f in status.get("files", []))


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[EmulatorProcess]:
    emu = EmulatorProcess(tmp_path / "cloud", settings={"device_code_interval": 1})
    emu.start()
    try:
        yield emu
    finally:
        if emu.control is not None:
            emu.control.close()
        emu.kill()
        emu.close()


@dataclass(frozen=True)
class ReferenceDevice:
    """The reference device's command line, environment (the secret) and folders for one test."""

    command: list[str]
    env: dict[str, str]
    media: Path
    status_file: Path


def reference_device(tmp_path: Path, cloud: EmulatorProcess) -> ReferenceDevice:
    """A reference device on a metered link (6 MB/s), so a cut lands mid-transfer."""
    control = cloud.control
    assert control is not None
    media, status_file = tmp_path / "media", tmp_path / "status.json"
    media.mkdir()
    config = write_config(tmp_path / "device.toml", {
        "api_url": cloud.api_url, "ca_bundle": str(cloud.ca_bundle), "state_dir": str(tmp_path / "state"),
        "media_dirs": [str(media)], "status_file": str(status_file), "status_port": 0,
        "part_size": PART, "parallelism": 2, "parallel_files": 2, "quiet_period": 0.3,
        "max_upload_rate": 6_000_000,
    })
    return ReferenceDevice(
        command=[sys.executable, "-m", "reference_device", "run", "--config", str(config), "--no-tui"],
        env={**os.environ, "C2C_CLIENT_SECRET": control.client_secret()}, media=media, status_file=status_file)


def pair_and_capture(control: CloudControl, device: ReferenceDevice, files: Mapping[str, bytes]) -> None:
    """Approve the device's code, drop the files in its folder, return once the first part is acknowledged."""
    project = control.create_project("power rig")
    code = wait_until(lambda: read_status(device.status_file).get("pairing", {}).get("user_code"), 60, "a pairing code")
    control.approve(code, project["id"])
    wait_until(lambda: read_status(device.status_file).get("pairing", {}).get("state") == "paired", 60, "paired")
    for name, data in files.items():
        (device.media / name).write_bytes(data)
    wait_until(lambda: bytes_done(read_status(device.status_file)) >= PART, 60, "the first part acknowledged")


def assert_delivered_once(control: CloudControl, files: Mapping[str, bytes], *, parts_in_flight: int) -> None:
    """Every file complete exactly once with its sha256, and the re-sent bytes at most the parts in
    flight at the cut (resumed from the last acknowledged part, never a re-upload from zero)."""
    ledger = control.ledger()
    resent = sum(r["bytes_received"] for r in ledger) - sum(len(d) for d in files.values())
    assert resent <= parts_in_flight * PART, f"{resent} bytes re-sent, more than {parts_in_flight} parts"
    complete = [r for r in ledger if r["state"] == "complete"]
    for name, data in files.items():
        rows = [r for r in complete if r["name"] == name]
        assert len(rows) == 1, f"{name} delivered {len(rows)} times"
        assert rows[0]["sha256"] == hashlib.sha256(data).hexdigest(), name
