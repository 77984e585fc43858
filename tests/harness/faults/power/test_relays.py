"""Each relay driver against the simulated board over a real pty, and the port lock."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError, RelayError, RelayInUse
from harness.faults.power import lcus, numato
from harness.faults.power.kmtronic import KmtronicBoard
from harness.faults.power.lcus import LcusBoard
from harness.faults.power.modemlines import ModemLineRelay
from harness.faults.power.numato import NumatoBoard
from harness.faults.power.relay import RelayPower, relay_power_from_config
from harness.faults.power.simulator import RelaySimulator
from harness.timeline import Timeline
from tests.waiting import wait_until as wait_for


@pytest.mark.parametrize("channels", [2, 4])
def test_lcus_switches_and_reads_back(channels: int) -> None:
    with RelaySimulator("lcus", channels) as sim, LcusBoard(sim.port, channels) as board:
        board.set(2, True)
        wait_for(lambda: sim.state(2))
        assert board.get(2) is True and board.get(1) is False
        assert board.read_all() == {ch: ch == 2 for ch in range(1, channels + 1)}
        board.set(2, False)
        wait_for(lambda: not sim.state(2))
        assert board.get(2) is False


def test_lcus1_has_no_readback() -> None:
    with RelaySimulator("lcus1") as sim, LcusBoard(sim.port, 1) as board:
        board.set(1, True)
        wait_for(lambda: sim.state(1))
        assert board.get(1) is None


def test_lcus_frames_and_status_parsing() -> None:
    assert lcus.frame(1, True) == bytes.fromhex("A00101A2")
    assert lcus.frame(2, False) == bytes.fromhex("A00200A2")
    assert lcus.parse_status(b"CH1: ON \r\nCH2: OFF\r\n") == {1: True, 2: False}
    assert lcus.parse_status(b"CH1:OFF\r\n") == {1: False}


def test_lcus_board_that_stays_silent_is_reported() -> None:
    with RelaySimulator("lcus1") as sim, LcusBoard(sim.port, 2, timeout=0.3) as board, \
            pytest.raises(RelayError, match="no status answer"):
        board.get(1)


def test_numato_switches_and_reads_back() -> None:
    with RelaySimulator("numato", 16) as sim, NumatoBoard(sim.port, 16) as board:
        assert board.version() == "00000008"
        board.set(10, True)  # relay "A"
        assert sim.state(10) is True
        assert board.get(10) is True and board.get(0) is False
        board.set(10, False)
        assert board.get(10) is False and sim.state(10) is False
        with pytest.raises(ConfigError, match="channel 16"):
            board.set(16, True)


def test_numato_index_and_answer_parsing() -> None:
    assert [numato.relay_index(i) for i in (0, 9, 10, 15)] == ["0", "9", "A", "F"]
    assert numato.parse_answer(b"relay read 0\n\ron\n\r>", "relay read 0") == "on"
    with pytest.raises(RelayError, match="no prompt"):
        numato.parse_answer(b"relay read 0\n\r", "relay read 0")


@pytest.mark.parametrize("channels", [1, 2, 4, 8])
def test_kmtronic_switches_and_reads_back(channels: int) -> None:
    with RelaySimulator("kmtronic", channels) as sim, KmtronicBoard(sim.port, channels) as board:
        board.set(channels, True)
        wait_for(lambda: sim.state(channels))
        assert board.get(channels) is True
        if channels > 1:
            assert board.get(1) is False
        board.set(channels, False)
        wait_for(lambda: not sim.state(channels))
        assert board.get(channels) is False


def test_second_open_of_a_port_is_refused() -> None:
    with RelaySimulator("lcus", 2) as sim, LcusBoard(sim.port, 2):
        with pytest.raises(RelayInUse, match="in use"):
            LcusBoard(sim.port, 2)
        with pytest.raises(RelayInUse):
            NumatoBoard(sim.port, 2)
    # released on close: a new harness can take it
    with RelaySimulator("lcus", 2) as sim:
        LcusBoard(sim.port, 2).close()
        LcusBoard(sim.port, 2).close()


def test_missing_port_is_a_clear_error() -> None:
    with pytest.raises(RelayError, match="/dev/does-not-exist"):
        LcusBoard("/dev/does-not-exist", 2)


def test_modem_line_relay_on_loop() -> None:
    relay = ModemLineRelay("loop://", "rts", feedback="cts")
    try:
        relay.set(1, True)
        assert relay._link.rts is True and relay.get(1) is True
        relay.set(1, False)
        assert relay.get(1) is False
    finally:
        relay.close()
    inverted = ModemLineRelay("loop://", "dtr", invert=True, feedback="dsr")
    try:
        inverted.set(1, True)
        assert inverted._link.dtr is False  # closes with the line deasserted
        assert inverted.get(1) is True
    finally:
        inverted.close()
    assert ModemLineRelay("loop://").get(1) is None  # no feedback wired: no read-back


def test_modem_line_relay_on_pty_explains_missing_lines() -> None:
    with RelaySimulator("lcus1") as sim:
        relay = ModemLineRelay(sim.port, "dtr")
        try:
            with pytest.raises(RelayError, match="modem lines"):
                relay.set(1, True)
        finally:
            relay.close()


def test_relay_power_enforces_min_off_time_and_records_flips() -> None:
    timeline = Timeline()
    with RelaySimulator("kmtronic", 2) as sim:
        power = RelayPower(KmtronicBoard(sim.port, 2), channel=2, min_off_time=0.4,
                           timeline=timeline, name="dut")
        try:
            power.on()
            wait_for(lambda: sim.state(2))
            assert power.is_on() is True
            power.off()
            power.on()  # too soon: must wait out the off-time before closing the relay
            wait_for(lambda: sim.state(2))
            power.cycle(off_time=0.1)  # shorter than the minimum: the minimum wins
            wait_for(lambda: len(sim.flips) == 5)
        finally:
            power.close()
    times = [t for t, ch, _ in sim.flips]
    states = [s for _, _, s in sim.flips]
    assert states == [True, False, True, False, True]
    assert times[2] - times[1] >= 0.4 - 0.02
    assert times[4] - times[3] >= 0.4 - 0.02
    flips = [(e.action, e.details["state"]) for e in timeline.events]
    assert flips == [("flip", "on"), ("flip", "off"), ("flip", "on"), ("flip", "off"), ("flip", "on")]


def test_relay_power_from_profile_config() -> None:
    with RelaySimulator("lcus", 2) as sim:
        power = relay_power_from_config({"driver": "lcus", "port": sim.port, "channel": 2,
                                         "min_off_time": 0})
        try:
            assert isinstance(power.board, LcusBoard) and power.board.channels == 2
            power.on()
            wait_for(lambda: sim.state(2))
            assert power.is_on() is True
        finally:
            power.close()
    with pytest.raises(ConfigError, match=r"unknown key.*chanel"):
        relay_power_from_config({"driver": "lcus", "port": "loop://", "chanel": 1})
    with pytest.raises(ConfigError, match="unknown relay driver 'usbrelay'"):
        relay_power_from_config({"driver": "usbrelay", "port": "loop://"})
    power = relay_power_from_config({"driver": "modemlines", "port": "loop://", "signal": "rts",
                                     "feedback": "cts", "min_off_time": 0})
    try:
        power.on()
        assert power.is_on() is True
    finally:
        power.close()


def test_unplugged_board_is_a_relay_error() -> None:
    sim = RelaySimulator("numato", 2).start()
    port = sim.port
    board = NumatoBoard(port, 2, timeout=0.5)
    try:
        assert board.get(0) is False
        sim.stop()  # the board's USB link goes away
        with pytest.raises(RelayError, match=r"did not accept|stopped answering") as failure:
            board.get(0)
        assert port in str(failure.value)
    finally:
        board.close()
