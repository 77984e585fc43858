"""HardwareDevice: a profile with no launch, powered through a (simulated) relay board on a real pty."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.device.hardware import HardwareDevice
from harness.device.operator import OperatorPrompt
from harness.device.profile import parse_profile
from harness.errors import OperatorUnavailable
from harness.faults.power.simulator import RelaySimulator
from harness.timeline import Timeline


@pytest.fixture
def relay_board():  # type: ignore[no-untyped-def]
    sim = RelaySimulator("numato", channels=8).start()
    yield sim
    sim.stop()


def test_relay_powered_device_flips_its_channel(relay_board: RelaySimulator) -> None:
    profile = parse_profile({
        "name": "cam", "kind": "camera", "firmware": "2.0.0",
        "power": {"driver": "relay", "board": "numato", "port": relay_board.port, "channel": 3, "off_time": 0},
        "capture": {"driver": "operator"}, "pairing": {"source": "operator"},
    })
    timeline = Timeline()
    dev = HardwareDevice(profile, prompt=OperatorPrompt(interactive=False), timeline=timeline)
    try:
        dev.start()
        assert relay_board.states[3] is True and dev.power().is_on() is True
        dev.stop()
        assert relay_board.states[3] is False
        assert [e.details["state"] for e in timeline.events if e.layer == "power"] == ["on", "off"]
        assert dev.status() is None and dev.control("mode") is False
        with pytest.raises(OperatorUnavailable):
            dev.capture([Path("A001.MOV")])
        with pytest.raises(OperatorUnavailable):
            dev.pairing_code(1)
    finally:
        dev.close()
    # the board's port (and its lock) is free again: another driver can take it
    again = HardwareDevice(profile, prompt=OperatorPrompt(interactive=False))
    again.close()
