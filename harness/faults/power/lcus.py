"""LC Technology LCUS-1/2/4/8 USB relay boards (CH340 USB-serial, 9600 8N1).

Protocol: a 4-byte frame `A0 <channel> <state> <sum>` switches one relay (channel 1..8,
state 00 off / 01 on, sum = (A0 + channel + state) & FF); the board never answers it.
Multi-channel boards answer a single `FF` byte with ASCII status lines such as
`CH1: ON \\r\\nCH2: OFF\\r\\n` (some firmware prints `CH1:OFF`); the LCUS-1 answers nothing,
so it has no read-back.

Profile configuration (fixtures/devices/NAME.toml):

    [power]
    driver = "lcus"
    port = "/dev/serial/by-id/usb-1a86_USB_Serial-if00-port0"   # or any pyserial URL
    channels = 2          # 1 for the LCUS-1 (no read-back)
    channel = 1           # the relay the device's supply runs through
    min_off_time = 2.0    # seconds the device stays unpowered on a cycle
"""

from __future__ import annotations

import re
import time

from harness.errors import RelayError
from harness.faults.power.base import SerialRelayBoard

FRAME_START = 0xA0
STATUS_QUERY = b"\xff"
_STATUS_LINE = re.compile(rb"CH(\d+)\s*:\s*(ON|OFF)", re.IGNORECASE)


def frame(channel: int, on: bool) -> bytes:
    """The switch frame for one channel."""
    state = 1 if on else 0
    return bytes([FRAME_START, channel, state, (FRAME_START + channel + state) & 0xFF])


def parse_status(text: bytes) -> dict[int, bool]:
    """`CH1: ON \\r\\nCH2: OFF` -> {1: True, 2: False}."""
    return {int(ch): state.upper() == b"ON" for ch, state in _STATUS_LINE.findall(text)}


def status_text(states: dict[int, bool]) -> bytes:
    """What a multi-channel board prints for a status query (state padded to 3 chars)."""
    return b"".join(f"CH{ch}: {'ON ' if on else 'OFF'}\r\n".encode() for ch, on in sorted(states.items()))


class LcusBoard(SerialRelayBoard):
    """An LCUS board. `channels=1` is the LCUS-1, which has no read-back."""

    def set(self, channel: int, on: bool) -> None:
        self._check_channel(channel)
        self._write(frame(channel, on))
        time.sleep(0.05)  # the CH340 firmware drops frames sent back to back

    def get(self, channel: int) -> bool | None:
        self._check_channel(channel)
        if self.channels == 1:
            return None
        states = self.read_all()
        if channel not in states:
            raise RelayError(f"LCUS board on {self.port} did not report channel {channel}")
        return states[channel]

    def read_all(self) -> dict[int, bool]:
        """Every channel's state from one `FF` query (multi-channel boards only)."""
        self._drain()
        self._write(STATUS_QUERY)
        text = b""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            text += self._read_available()
            states = parse_status(text)
            if len(states) >= self.channels and text.endswith(b"\n"):
                return states
        states = parse_status(text)
        if not states:
            raise RelayError(f"LCUS board on {self.port} gave no status answer "
                             f"(got {text[:80]!r}); is it an LCUS-1 (channels = 1)?")
        return states
