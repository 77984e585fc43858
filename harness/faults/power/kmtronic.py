"""KMTronic USB relay boards (FTDI USB-serial, 9600 8N1).

Protocol: 3 bytes `FF <channel> <state>` switch a relay (channel 1..8, state 00 off /
01 on). Read-back differs by size: 1–2 channel boards answer `FF <channel> 03` with
`FF <channel> 00|01`; 4 and 8 channel boards answer `FF 09 00` with 4 or 8 bytes, one
`00`/`01` per relay.

Profile configuration (fixtures/devices/NAME.toml):

    [power]
    driver = "kmtronic"
    port = "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A1B2C3-if00-port0"
    channels = 4          # 1, 2, 4 or 8
    channel = 1
    min_off_time = 2.0
"""

from __future__ import annotations

from harness.errors import ConfigError, RelayError
from harness.faults.power.base import SerialRelayBoard

START = 0xFF
QUERY_ONE = 0x03
QUERY_ALL = bytes([0xFF, 0x09, 0x00])


def frame(channel: int, on: bool) -> bytes:
    return bytes([START, channel, 1 if on else 0])


class KmtronicBoard(SerialRelayBoard):
    """A KMTronic board with 1, 2, 4 or 8 relays."""

    def __init__(self, port: str, channels: int, *, timeout: float = 1.0) -> None:
        if channels not in (1, 2, 4, 8):
            raise ConfigError(f"KMTronic boards have 1, 2, 4 or 8 relays, not {channels}")
        super().__init__(port, channels, timeout=timeout)

    def set(self, channel: int, on: bool) -> None:
        self._check_channel(channel)
        self._write(frame(channel, on))

    def get(self, channel: int) -> bool:
        self._check_channel(channel)
        self._drain()
        if self.channels <= 2:
            self._write(bytes([START, channel, QUERY_ONE]))
            answer = self._read(3)
            if len(answer) != 3 or answer[0] != START or answer[1] != channel or answer[2] > 1:
                raise RelayError(f"KMTronic board on {self.port} answered {answer.hex(' ')!r} "
                                 f"to a status query for relay {channel}")
            return answer[2] == 1
        return self.read_all()[channel]

    def read_all(self) -> dict[int, bool]:
        """Every relay's state (4 and 8 channel boards)."""
        if self.channels <= 2:
            return {ch: self.get(ch) for ch in range(1, self.channels + 1)}
        self._drain()
        self._write(QUERY_ALL)
        answer = self._read(self.channels)
        if len(answer) != self.channels or any(b > 1 for b in answer):
            raise RelayError(f"KMTronic board on {self.port} answered {answer.hex(' ')!r} "
                             f"to a status query (expected {self.channels} bytes of 00/01)")
        return {i + 1: b == 1 for i, b in enumerate(answer)}
