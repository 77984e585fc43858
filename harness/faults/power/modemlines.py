"""A relay driven by a serial port's DTR or RTS line (labgrid's SerialPortDigitalOutput).

Many bench setups wire a relay module's input to a USB-UART's DTR or RTS pin; asserting
the line closes the relay (or opens it, with `invert`). The port carries no data. There is
no read-back unless the relay's contact is wired back to an input line (`feedback` = cts,
dsr, cd or ri). A pty has no modem lines; pyserial's `loop://` mirrors RTS->CTS and
DTR->DSR, which is how this driver is tested.

Profile configuration (fixtures/devices/NAME.toml):

    [power]
    driver = "modemlines"
    port = "/dev/ttyUSB1"
    signal = "dtr"        # or "rts"
    invert = false        # true when the relay closes with the line deasserted
    feedback = "dsr"      # optional input line wired to the relay contact
    min_off_time = 2.0
"""

from __future__ import annotations

from harness.errors import ConfigError, RelayError
from harness.faults.power.base import open_port

SIGNALS = ("dtr", "rts")
FEEDBACK = ("cts", "dsr", "cd", "ri")


class ModemLineRelay:
    """One relay (channel 1) switched by DTR or RTS."""

    def __init__(self, port: str, signal: str = "dtr", *, invert: bool = False,
                 feedback: str | None = None, feedback_invert: bool | None = None) -> None:
        if signal not in SIGNALS:
            raise ConfigError(f"modem-line relay signal must be one of {SIGNALS}, got {signal!r}")
        if feedback is not None and feedback not in FEEDBACK:
            raise ConfigError(f"modem-line relay feedback must be one of {FEEDBACK}, got {feedback!r}")
        self.port = port
        self.channels = 1
        self.signal = signal
        self.invert = invert
        self.feedback = feedback
        self.feedback_invert = invert if feedback_invert is None else feedback_invert
        self._link, self._lock = open_port(port)

    def _check(self, channel: int) -> None:
        if channel != 1:
            raise ConfigError(f"a modem-line relay has one channel (1), not {channel}")

    def set(self, channel: int, on: bool) -> None:
        self._check(channel)
        try:
            setattr(self._link, self.signal, on != self.invert)
        except OSError as exc:
            raise RelayError(f"cannot set {self.signal.upper()} on {self.port} "
                             f"(a pty has no modem lines): {exc}") from None

    def get(self, channel: int) -> bool | None:
        self._check(channel)
        if self.feedback is None:
            return None
        try:
            level = bool(getattr(self._link, self.feedback))
        except OSError as exc:
            raise RelayError(f"cannot read {self.feedback.upper()} on {self.port}: {exc}") from None
        return level != self.feedback_invert

    def close(self) -> None:
        self._link.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None
