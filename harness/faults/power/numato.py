"""Numato Lab USB relay modules (USB CDC-ACM, ASCII commands ending in CR).

Protocol: `relay on N\\r`, `relay off N\\r`, `relay read N\\r` with N `0`..`9` then `A`..`V`
(the labels on the board start at 0). The module echoes each command, sends its answer
wrapped in CR/LF and ends with a `>` prompt; `relay read` answers `on` or `off`, so every
Numato board has read-back. Baud rate is ignored by the CDC-ACM link.

Profile configuration (fixtures/devices/NAME.toml):

    [power]
    driver = "numato"
    port = "/dev/serial/by-id/usb-Numato_Systems_Pvt._Ltd._Numato_Lab_8_Channel_USB_Relay_Module-if00"
    channels = 8
    channel = 0           # Numato numbers relays from 0
    min_off_time = 2.0
"""

from __future__ import annotations

from harness.errors import ConfigError, RelayError
from harness.faults.power.base import SerialRelayBoard

PROMPT = b">"
_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUV"


def relay_index(channel: int) -> str:
    """Numato's one-character relay index: 0..9 then A.. (10 = A)."""
    if not 0 <= channel < len(_DIGITS):
        raise ConfigError(f"Numato relay index {channel} out of range 0..{len(_DIGITS) - 1}")
    return _DIGITS[channel]


def parse_index(text: str) -> int:
    try:
        return _DIGITS.index(text.strip().upper())
    except ValueError:
        raise ValueError(f"not a Numato relay index: {text!r}") from None


def parse_answer(raw: bytes, command: str) -> str:
    """Strip the echo, CR/LF and the prompt from a Numato reply, leaving the answer."""
    text = raw.decode("ascii", errors="replace")
    if not text.endswith(">"):
        raise RelayError(f"Numato board gave no prompt after {command!r} (got {text[:80]!r})")
    body = text[:-1]
    if body.lstrip("\r\n").startswith(command):
        body = body.lstrip("\r\n")[len(command):]
    return body.strip("\r\n ")


class NumatoBoard(SerialRelayBoard):
    """A Numato relay module (1..32 channels numbered from 0)."""

    baudrate = 19200
    max_channels = 32

    def _check(self, channel: int) -> None:
        self._check_channel(channel, first=0)

    def command(self, command: str) -> str:
        """Send one command, return its answer (echo and prompt removed)."""
        self._drain()
        self._write(command.encode("ascii") + b"\r")
        return parse_answer(self._read_until(PROMPT), command)

    def set(self, channel: int, on: bool) -> None:
        self._check(channel)
        self.command(f"relay {'on' if on else 'off'} {relay_index(channel)}")

    def get(self, channel: int) -> bool:
        self._check(channel)
        answer = self.command(f"relay read {relay_index(channel)}").lower()
        if answer not in ("on", "off"):
            raise RelayError(f"Numato board on {self.port} answered {answer!r} to relay read")
        return answer == "on"

    def version(self) -> str:
        return self.command("ver")
