"""A device profile's `[power] driver = "labgrid"`: validated with the profile, used as the device's
Power. The software device's supply is labgrid's ExternalPowerDriver (fixtures/devices/labgrid-rig.yaml),
whose off command SIGKILLs the device's process group; the bench boots the device when it is on."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.cloud.runner import EmulatorProcess
from harness.device.profile import PROFILE_DIR, load_profile, parse_profile
from harness.device.software import SoftwareDevice
from harness.errors import ConfigError, RelayError
from harness.faults.power import labgrid
from harness.faults.power.labgrid import LabgridSuppliedProcess, kill_group_in, write_group_file
from harness.faults.power.process import live_group_members
from tests.harness.faults.power.conftest import PART, assert_delivered_once, bytes_done
from tests.waiting import wait_until

pytest.importorskip("labgrid")
REPO = Path(__file__).resolve().parents[4]
RIG = PROFILE_DIR / "labgrid-rig.yaml"


def labgrid_profile(tmp_path: Path, power: dict[str, Any]) -> dict[str, Any]:
    return {"name": "lg", "kind": "app", "firmware": "1", "launch": {"command": ["{python}", "-c", "pass"]},
            "power": {"driver": "labgrid", **power}}


def test_the_labgrid_reference_profile_is_the_reference_profile_but_for_its_power() -> None:
    reference, on_labgrid = load_profile("reference"), load_profile("reference-labgrid")
    assert on_labgrid.power.driver == "labgrid" and on_labgrid.power.env == str(RIG) and on_labgrid.power.target == "main"
    same = {f.name for f in dataclasses.fields(reference)} - {"name", "description", "power", "path"}
    assert {f: getattr(on_labgrid, f) for f in same} == {f: getattr(reference, f) for f in same}


def test_a_labgrid_power_section_is_checked_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "rig.yaml").write_text(RIG.read_text(), encoding="utf-8")
    spec = parse_profile(labgrid_profile(tmp_path, {"env": str(tmp_path / "rig.yaml"), "off_time": 0.2})).power
    assert (spec.env, spec.target, spec.name, spec.off_time) == (str(tmp_path / "rig.yaml"), "main", None, 0.2)
    for power, words in (
        ({}, "'env'"),
        ({"env": str(tmp_path / "absent.yaml")}, "no environment file"),
        ({"env": str(tmp_path / "rig.yaml"), "target": "rig9"}, "no target 'rig9'"),
        ({"env": str(tmp_path / "rig.yaml"), "name": "supply"}, "no usable power driver"),
        ({"env": str(tmp_path / "rig.yaml"), "name": 3}, "'name'"),
    ):
        with pytest.raises(ConfigError, match=words):
            parse_profile(labgrid_profile(tmp_path, power))
    (tmp_path / "bad.yaml").write_text("targets:\n  main:\n    drivers:\n      ExternalPowerDriver:\n"
                                       "        cmd_on: !template \"$LG_NOT_GIVEN\"\n        cmd_off: \"true\"\n")
    with pytest.raises(ConfigError, match="LG_NOT_GIVEN"):
        parse_profile(labgrid_profile(tmp_path, {"env": str(tmp_path / "bad.yaml")}))
    # the CLI's check refuses it too, naming the field
    profile = tmp_path / "dut.toml"
    profile.write_text((PROFILE_DIR / "reference-labgrid.toml").read_text().replace(
        'env = "labgrid-rig.yaml"', f'env = "{RIG}"').replace('target = "main"', 'target = "bench7"'))
    done = subprocess.run([sys.executable, "-m", "harness.certify.cli", "check-profile", str(profile)], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0 and "[power]" in done.stderr and "no target 'bench7'" in done.stderr, done.stderr


def test_kill_group_cuts_the_named_group_and_never_a_reused_pid(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"], start_new_session=True)
    try:
        group = tmp_path / "device.group"
        assert kill_group_in(group) == "no device group: nothing to cut"
        group.write_text(f"{sleeper.pid} 1\n")  # started at tick 1: not this process
        assert "stale" in kill_group_in(group) and live_group_members(sleeper.pid)
        write_group_file(group, sleeper.pid)
        assert kill_group_in(group) == f"process group {sleeper.pid} cut"
        assert not live_group_members(sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_rig_that_does_not_cut_the_device_is_a_relay_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "deaf.yaml").write_text("targets:\n  main:\n    drivers:\n      ExternalPowerDriver:\n"
                                        "        cmd_on: \"true\"\n        cmd_off: \"true\"\n")
    monkeypatch.setattr(labgrid, "CUT_TIMEOUT", 0.5)
    power = LabgridSuppliedProcess([sys.executable, "-c", "import signal; signal.pause()"], env_file=tmp_path / "deaf.yaml",
                                   group_file=tmp_path / "device.group", off_time=0, console=tmp_path / "console.log")
    power.on()
    pid = power.pid
    assert pid is not None and power.is_on() and (tmp_path / "device.group").read_text().startswith(f"{pid} ")
    try:
        with pytest.raises(RelayError, match="left the device running"):
            power.off()
        assert live_group_members(pid)
    finally:
        os.killpg(pid, 9)
        wait_until(lambda: not live_group_members(pid), 10, "the stray device to die")
        power.close()


@pytest.mark.timeout(300)
def test_the_labgrid_profile_s_device_is_cut_by_labgrid_and_delivers_every_file(
    cloud: EmulatorProcess, tmp_path: Path
) -> None:
    """The reference-labgrid profile as the certification uses it: SoftwareDevice, its Power from the profile."""
    control = cloud.control
    assert control is not None
    control.update_settings(serial_ingest_rate=4 * 1024 * 1024)  # parts complete one after another
    device = SoftwareDevice(load_profile("reference-labgrid"), api_url=cloud.api_url, ca_bundle=cloud.ca_bundle,
                            client_secret=control.client_secret, workdir=tmp_path / "device")
    power = device.power()
    assert isinstance(power, LabgridSuppliedProcess)
    rng = random.Random(5)
    files = {f"A003_C00{i}.bin": rng.randbytes(2 * PART + 999 * i) for i in range(1, 3)}
    try:
        device.start()
        project = control.create_project("labgrid profile")
        control.approve(device.pairing_code(60), project["id"])
        wait_until(lambda: (device.status() or {}).get("pairing", {}).get("state") == "paired", 60, "paired")
        for name, data in files.items():
            (tmp_path / name).write_bytes(data)
        device.capture([tmp_path / name for name in files])
        wait_until(lambda: bytes_done(device.status() or {}) >= PART, 60, "the first part acknowledged")
        pid = power.pid
        assert pid is not None
        cut_at = time.monotonic()
        power.cycle(0.5)  # labgrid's off runs kill-group on the device's group; the bench boots it again
        assert not live_group_members(pid), "the old device still runs after the labgrid power cut"
        assert power.pid not in (None, pid) and time.monotonic() - cut_at >= 0.5
        wait_until(lambda: (device.status() or {}).get("queue", {}).get("completed") == len(files), 180,
                   "every file delivered after power came back")
    finally:
        device.close()
        power.close()
    assert_delivered_once(control, files, parts_in_flight=2 * 2)
    flips = [(e.name, e.details["state"]) for e in device.timeline.events if e.layer == "power" and e.action == "flip"]
    assert flips[:4] == [("labgrid", "on"), ("device", "on"), ("labgrid", "off"), ("device", "off")], flips
    assert flips[4:6] == [("labgrid", "on"), ("device", "on")], flips


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_certifying_the_labgrid_profile_cuts_power_through_labgrid_and_passes_the_power_cut_item(tmp_path: Path) -> None:
    """`c2c-certify run` of the labgrid profile, the power-cut item's every scenario (about 70 s)."""
    reports = tmp_path / "reports"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run([sys.executable, "-m", "harness.certify.cli", "run", "--device", "reference-labgrid",
                           "--item", "C2C-QUE-03", "--reports", str(reports), "--quiet"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=880, check=False)
    cert_path = reports / "certificate.json"
    assert cert_path.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    cert = json.loads(cert_path.read_text())
    assert cert["items"]["C2C-QUE-03"]["verdict"] == "pass", cert["items"]["C2C-QUE-03"]
    timelines = [t for t in (json.loads(p.read_text()) for p in (reports / "allure-results").glob("*-attachment.json"))
                 if isinstance(t, dict) and "events" in t]
    windows = [[(e["name"], e["action"], e.get("details", {}).get("state")) for e in t["events"] if e["layer"] == "power"]
               for t in timelines]
    windows = [w for w in windows if ("cut", "start", None) in w]
    assert len(windows) == 3, windows  # the item's three scenarios each cut power
    cut = [("labgrid", "flip", "off"), ("device", "flip", "off"), ("labgrid", "flip", "on"), ("device", "flip", "on")]
    for flips in windows:  # every cut: labgrid's off, then the device found dead; labgrid's on, then the boot
        starts = [n for n, event in enumerate(flips) if event == ("cut", "start", None)]
        assert all(flips[n + 1:n + 5] == cut for n in starts), flips
