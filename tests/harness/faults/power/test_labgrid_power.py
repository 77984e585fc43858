"""Power through labgrid: labgrid's ExternalPowerDriver -> our switch command -> simulated LCUS
board on a pty -> the reference device as a process group, cut mid-upload and brought back.

The verdict is the power-cut item's (C2C-QUE-03): every file delivered once, intact, and the
bytes re-sent per cut bounded by the parts in flight.
"""

from __future__ import annotations

import os
import random
import shlex
import sys
from pathlib import Path

import pytest

from harness.cloud.runner import EmulatorProcess
from harness.errors import ConfigError, RelayError
from harness.faults.power.labgrid import LabgridPower, labgrid_power_from_config, switch
from harness.faults.power.process import live_group_members
from harness.faults.power.simulator import RelaySimulator
from harness.timeline import Timeline
from tests.harness.faults.power.conftest import (
    PART,
    assert_delivered_once,
    pair_and_capture,
    read_status,
    reference_device,
)
from tests.waiting import wait_until

pytest.importorskip("labgrid")
REPO = Path(__file__).resolve().parents[4]


def rig_yaml(path: Path, port: str) -> Path:
    """A labgrid environment whose one target's power is a command switching relay channel 1."""
    cmd = f"{shlex.quote(sys.executable)} -m harness.faults.power.labgrid switch --board lcus --channels 2 --port {port} --channel 1"
    path.write_text("targets:\n  main:\n    drivers:\n      ExternalPowerDriver:\n"
                    f"        cmd_on: \"{cmd} on\"\n        cmd_off: \"{cmd} off\"\n", encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _repo_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """labgrid runs the switch command as a subprocess: it must find harness/ from any cwd."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))


@pytest.mark.timeout(300)
def test_power_cut_through_labgrid_reaches_the_power_cut_verdict(cloud: EmulatorProcess, tmp_path: Path) -> None:
    control = cloud.control
    assert control is not None
    device = reference_device(tmp_path, cloud)
    timeline = Timeline()
    rng = random.Random(11)
    files = {f"A002_C00{i}.bin": rng.randbytes(2 * PART + 777 * i) for i in range(1, 3)}

    with RelaySimulator("lcus", channels=2, device_channel=1, device_command=device.command,
                        device_env=device.env, device_log=tmp_path / "device.out") as board_sim:
        rig_yaml(tmp_path / "rig.yaml", board_sim.port)
        power = labgrid_power_from_config({"env": "rig.yaml", "target": "main"}, base=tmp_path,
                                          timeline=timeline, off_time=0.5)
        try:
            power.on()
            assert power.is_on() is None  # a command-driven driver has no read-back
            pair_and_capture(control, device, files)
            pid = board_sim.device.pid if board_sim.device else None
            assert pid is not None
            power.cycle(0.5)  # off through labgrid (the group is SIGKILLed), then on again
            assert not live_group_members(pid), "the old device still runs after the labgrid power cut"
            wait_until(lambda: read_status(device.status_file).get("queue", {}).get("completed") == len(files),
                       120, "every file delivered after power came back")
        finally:
            power.off()
            power.close()

    assert_delivered_once(control, files, parts_in_flight=2 * 2)
    flips = [e.details["state"] for e in timeline.events if e.layer == "power"]
    assert flips[:3] == ["on", "off", "on"] and all(e.details["env"].endswith("rig.yaml")
                                                     for e in timeline.events if e.layer == "power"), flips


def test_a_failing_power_command_is_a_relay_error_and_bad_yaml_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(
        "targets:\n  main:\n    drivers:\n      ExternalPowerDriver:\n"
        "        cmd_on: \"false\"\n        cmd_off: \"true\"\n", encoding="utf-8")
    power = LabgridPower(tmp_path / "broken.yaml", min_off_time=0)
    try:
        power.off()
        with pytest.raises(RelayError, match="labgrid power on failed"):
            power.on()
    finally:
        power.close()
    with pytest.raises(ConfigError, match="no target 'rig9'"):
        LabgridPower(tmp_path / "broken.yaml", target="rig9")
    with pytest.raises(ConfigError, match="needs env"):
        labgrid_power_from_config({}, base=tmp_path)
    with pytest.raises(ConfigError, match="no environment file"):
        LabgridPower(tmp_path / "absent.yaml")


def test_switch_command_refuses_an_unknown_board(capsys: pytest.CaptureFixture[str]) -> None:
    assert switch(["switch", "--board", "nope", "--port", "loop://", "on"]) == 1
    assert "unknown relay driver" in capsys.readouterr().err
