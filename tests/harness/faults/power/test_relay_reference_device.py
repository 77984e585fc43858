"""The whole power chain on a real device: LCUS driver -> pty -> simulated board -> reference device.

The relay contact of the simulated board powers the reference device as a real process
group; opening it is a SIGKILL of that group. The device is cut mid-upload and brought
back, and the cloud's ledger must show every file once, intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.cloud.runner import EmulatorProcess
from harness.faults.power import LcusBoard, RelayPower
from harness.faults.power.process import live_group_members
from harness.faults.power.simulator import RelaySimulator
from harness.timeline import Timeline
from reference_device.testing import write_config
from tests.waiting import wait_until as _wait

PART = 5 * 1024 * 1024


def _status(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[EmulatorProcess]:
    emu = EmulatorProcess(tmp_path / "cloud", settings={"device_code_interval": 1})
    emu.start()
    try:
        yield emu
    finally:
        emu.control.close()
        emu.kill()
        emu.close()


def test_reference_device_power_cut_through_simulated_lcus_board(
    cloud: EmulatorProcess, tmp_path: Path
) -> None:
    control = cloud.control
    media, state = tmp_path / "media", tmp_path / "state"
    media.mkdir()
    status_file = tmp_path / "status.json"
    config = write_config(tmp_path / "device.toml", {
        "api_url": cloud.api_url, "ca_bundle": str(cloud.ca_bundle), "state_dir": str(state),
        "media_dirs": [str(media)], "status_file": str(status_file), "status_port": 0,
        "part_size": PART, "parallelism": 2, "parallel_files": 2, "quiet_period": 0.3,
        "max_upload_rate": 6_000_000,  # a metered link, so the cut lands mid-transfer
    })
    env = {**os.environ, "C2C_CLIENT_SECRET": control.client_secret()}
    command = [sys.executable, "-m", "reference_device", "run", "--config", str(config), "--no-tui"]
    timeline = Timeline()
    rng = random.Random(7)
    files = {f"A001_C00{i}.bin": rng.randbytes(3 * PART + 1234 * i) for i in range(1, 4)}

    with RelaySimulator("lcus", channels=2, device_channel=1, device_command=command,
                        device_env=env, device_log=tmp_path / "device.out") as board_sim:
        power = RelayPower(LcusBoard(board_sim.port, channels=2), channel=1, min_off_time=0.5,
                           timeline=timeline)
        try:
            power.on()
            assert power.is_on() is True  # read-back over the pty
            project = control.create_project("Relay bench")
            st = _wait(lambda: _status(status_file).get("pairing", {}).get("user_code")
                       and _status(status_file), 60, "a pairing code")
            control.approve(st["pairing"]["user_code"], project["id"])
            _wait(lambda: _status(status_file).get("pairing", {}).get("state") == "paired", 60,
                  "paired")
            for name, data in files.items():
                (media / name).write_bytes(data)

            def progress() -> int:
                return sum(f.get("bytes_done", 0) for f in _status(status_file).get("files", []))

            _wait(lambda: progress() >= PART, 60, "the first part acknowledged")
            pid = board_sim.device.pid if board_sim.device else None
            assert pid is not None
            power.off()  # the relay opens: SIGKILL of the device's process group
            assert power.is_on() is False
            assert not live_group_members(pid), "device still running after the relay opened"
            before_cut = progress()
            assert before_cut < sum(len(d) for d in files.values()), "cut came too late"

            power.on()
            _wait(lambda: _status(status_file).get("queue", {}).get("completed") == len(files),
                  120, "every file delivered after power came back")
        finally:
            power.off()
            power.close()

    full_ledger = control.ledger()
    resent = sum(r["bytes_received"] for r in full_ledger) - sum(len(d) for d in files.values())
    # resumed from the last acknowledged part: at most the parts in flight at the cut
    # (2 files x 2 parts each here), never a re-upload from zero
    assert resent <= 2 * 2 * PART, resent
    ledger = [r for r in full_ledger if r["state"] == "complete"]
    for name, data in files.items():
        rows = [r for r in ledger if r["name"] == name]
        assert len(rows) == 1, f"{name} delivered {len(rows)} times"
        assert rows[0]["sha256"] == hashlib.sha256(data).hexdigest(), name
    flips = [(e.details["state"]) for e in timeline.events if e.layer == "power"]
    assert flips[:3] == ["on", "off", "on"], flips
