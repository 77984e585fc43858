"""The whole power chain on a real device: LCUS driver -> pty -> simulated board -> reference device.

The relay contact of the simulated board powers the reference device as a real process
group; opening it is a SIGKILL of that group. The device is cut mid-upload and brought
back, and the cloud's ledger must show every file once, intact (conftest's delivery check).
"""

from __future__ import annotations

import random
from pathlib import Path

from harness.cloud.runner import EmulatorProcess
from harness.faults.power import LcusBoard, RelayPower
from harness.faults.power.process import live_group_members
from harness.faults.power.simulator import RelaySimulator
from harness.timeline import Timeline
from tests.harness.faults.power.conftest import (
    PART,
    assert_delivered_once,
    bytes_done,
    pair_and_capture,
    read_status,
    reference_device,
)
from tests.waiting import wait_until


def test_reference_device_power_cut_through_simulated_lcus_board(
    cloud: EmulatorProcess, tmp_path: Path
) -> None:
    control = cloud.control
    assert control is not None
    device = reference_device(tmp_path, cloud)
    timeline = Timeline()
    rng = random.Random(7)
    files = {f"A001_C00{i}.bin": rng.randbytes(3 * PART + 1234 * i) for i in range(1, 4)}

    with RelaySimulator("lcus", channels=2, device_channel=1, device_command=device.command,
                        device_env=device.env, device_log=tmp_path / "device.out") as board_sim:
        power = RelayPower(LcusBoard(board_sim.port, channels=2), channel=1, min_off_time=0.5,
                           timeline=timeline)
        try:
            power.on()
            assert power.is_on() is True  # read-back over the pty
            pair_and_capture(control, device, files)
            pid = board_sim.device.pid if board_sim.device else None
            assert pid is not None
            power.off()  # the relay opens: SIGKILL of the device's process group
            assert power.is_on() is False
            assert not live_group_members(pid), "device still running after the relay opened"
            before_cut = bytes_done(read_status(device.status_file))
            assert before_cut < sum(len(d) for d in files.values()), "cut came too late"

            power.on()
            wait_until(lambda: read_status(device.status_file).get("queue", {}).get("completed") == len(files),
                       120, "every file delivered after power came back")
        finally:
            power.off()
            power.close()

    assert_delivered_once(control, files, parts_in_flight=2 * 2)  # 2 files x 2 parts each in flight
    flips = [(e.details["state"]) for e in timeline.events if e.layer == "power"]
    assert flips[:3] == ["on", "off", "on"], flips
