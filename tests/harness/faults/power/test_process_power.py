"""Power cuts of software devices: a SIGKILLed process group, directly and through a relay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import ConfigError, OperatorUnavailable
from harness.faults.power.lcus import LcusBoard
from harness.faults.power.manual import ManualPower
from harness.faults.power.numato import NumatoBoard
from harness.faults.power.process import ProcessPower, live_group_members
from harness.faults.power.relay import RelayPower
from harness.faults.power.simulator import RelaySimulator
from harness.protocols import Power
from harness.timeline import Timeline
from tests.processes import alive
from tests.waiting import wait_until as wait_for

REPO = Path(__file__).resolve().parents[4]

# A "device": writes its pid, spawns a grandchild that writes its own pid, then beats.
DEVICE = """
import os, subprocess, sys, time
out = sys.argv[1]
child = subprocess.Popen([sys.executable, "-c",
    "import os, sys, time\\nopen(sys.argv[1], 'w').write(str(os.getpid()))\\nwhile True: time.sleep(0.05)",
    out + ".grandchild"])
beat = 0
while True:
    beat += 1
    with open(out + ".tmp", "w") as f:
        f.write(f"{os.getpid()} {beat}")
    os.replace(out + ".tmp", out)
    time.sleep(0.05)
"""


def pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def device_command(tmp_path: Path) -> tuple[list[str], Path]:
    script = tmp_path / "device.py"
    script.write_text(DEVICE)
    beat = tmp_path / "heartbeat"
    return [sys.executable, str(script), str(beat)], beat


def started_pids(beat: Path, previous: int | None = None) -> tuple[int, int]:
    grand = beat.with_name(beat.name + ".grandchild")
    wait_for(lambda: pid_in(beat) not in (None, previous) and pid_in(grand) not in (None, previous))
    wait_for(lambda: pid_in(grand) != previous)
    return pid_in(beat), pid_in(grand)  # type: ignore[return-value]


def test_process_power_kills_whole_group_and_restarts(tmp_path: Path) -> None:
    command, beat = device_command(tmp_path)
    power = ProcessPower(command, log_path=tmp_path / "device.log")
    assert isinstance(power, Power)
    power.on()
    try:
        leader, grandchild = started_pids(beat)
        assert power.is_on()
        power.off()
        assert not alive(leader) and not alive(grandchild)
        assert not power.is_on() and live_group_members(leader) == []
        beat.unlink()
        beat.with_name("heartbeat.grandchild").unlink()
        power.on()
        new_leader, new_grandchild = started_pids(beat)
        assert new_leader != leader and alive(new_grandchild)
    finally:
        power.off()


def test_power_stays_on_while_a_member_outlives_its_leader(tmp_path: Path) -> None:
    """The leader's exit alone is not a cut: a forked helper still running keeps the device on."""
    script = tmp_path / "orphaning.py"
    script.write_text(
        "import subprocess, sys\n"
        "subprocess.Popen([sys.executable, '-c', 'import signal; signal.pause()'])\n")
    power = ProcessPower([sys.executable, str(script)], log_path=tmp_path / "device.log")
    power.on()
    try:
        wait_for(lambda: power.exit_code() is not None)
        assert power.is_on()  # the helper holds the group
    finally:
        power.off()
    assert not power.is_on()


def test_a_gone_group_is_known_without_reading_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    """Polled often: a group with no process left answers from one signal 0."""
    done = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    done.wait()

    def no_scan(path: str) -> None:
        raise AssertionError(f"scanned {path}")
    monkeypatch.setattr(os, "scandir", no_scan)
    assert live_group_members(done.pid) == []


def test_a_group_of_only_zombies_has_no_live_member() -> None:
    zombie = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    wait_for(lambda: _state(zombie.pid) == "Z")
    try:
        assert live_group_members(zombie.pid) == []
    finally:
        zombie.wait()


def _state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2:].split()[0]


def test_process_power_cycle_and_bad_command(tmp_path: Path) -> None:
    command, beat = device_command(tmp_path)
    power = ProcessPower(command, default_off_time=0.05)
    power.on()
    try:
        first, _ = started_pids(beat)
        power.cycle()
        second, _ = started_pids(beat, previous=first)
        assert not alive(first) and alive(second)
    finally:
        power.off()
    with pytest.raises(ConfigError):
        ProcessPower([])
    from harness.errors import FaultInjectionError
    with pytest.raises(FaultInjectionError, match="no-such-binary"):
        ProcessPower(["/nonexistent/no-such-binary"]).on()


def test_lcus_relay_power_cuts_a_software_device(tmp_path: Path) -> None:
    """The full chain: harness driver -> pty -> simulated LCUS -> relay contact -> device."""
    command, beat = device_command(tmp_path)
    timeline = Timeline()
    with RelaySimulator("lcus", 2, device_channel=1, device_command=command,
                        device_log=tmp_path / "device.log") as sim:
        power = RelayPower(LcusBoard(sim.port, channels=2), channel=1, min_off_time=0.2,
                           timeline=timeline)
        try:
            assert power.is_on() is False
            power.on()
            leader, grandchild = started_pids(beat)
            assert power.is_on() is True
            power.off()
            wait_for(lambda: not alive(leader) and not alive(grandchild))
            assert power.is_on() is False
            power.on()
            started_pids(beat, previous=leader)
            assert power.is_on() is True
        finally:
            power.off()
            power.close()
    assert [e.details["state"] for e in timeline.events] == ["on", "off", "on", "off"]


def test_simulator_cli_powers_device(tmp_path: Path) -> None:
    """`c2c-relay-sim` as its own process, driven through a Numato driver."""
    command, beat = device_command(tmp_path)
    port_file = tmp_path / "port"
    sim = subprocess.Popen(
        [sys.executable, "-m", "harness.faults.power.simulator", "--protocol", "numato",
         "--channels", "4", "--port-file", str(port_file), "--channel", "2", "--", *command],
        cwd=REPO, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(port_file.exists)
        power = RelayPower(NumatoBoard(port_file.read_text().strip(), 4), channel=2,
                           min_off_time=0.1)
        try:
            power.on()
            leader, _ = started_pids(beat)
            assert power.is_on() is True
            power.off()
            wait_for(lambda: not alive(leader))
        finally:
            power.close()
    finally:
        sim.send_signal(signal.SIGTERM)
        assert sim.wait(10) == 0
    with pytest.raises(ProcessLookupError):
        os.killpg(sim.pid, 0)


def test_manual_power_refuses_when_nobody_is_there() -> None:
    with pytest.raises(OperatorUnavailable, match="run with --c2c-interactive"):
        ManualPower(None).off()
    with pytest.raises(OperatorUnavailable, match="--c2c-interactive"):
        ManualPower.at_terminal(interactive=False).off()
    with pytest.raises(OperatorUnavailable, match="operator did not cut"):
        ManualPower(lambda question: False).off()
    asked: list[str] = []
    timeline = Timeline()
    power = ManualPower.at_terminal(interactive=True, ask=asked.append, timeline=timeline,
                                    default_off_time=0)
    power.cycle()
    assert "cut the device's power" in asked[0] and "switch the device ON" in asked[1]
    assert power.is_on() is None
    assert [e.details["state"] for e in timeline.events] == ["off", "on"]


def test_simulator_cli_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.faults.power.simulator import main

    with pytest.raises(SystemExit):
        main(["--protocol", "lcus", "--channels", "2", "--channel", "3", "--", "true"])
    assert "device channel 3" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--protocol", "usbrelay"])
    assert "invalid choice" in capsys.readouterr().err
