"""What every relay-board driver shares: the driver protocol, port opening and the port lock.

labgrid's split, in our own code: a *resource* is the serial port (a device path or any
pyserial URL: `/dev/ttyUSB0`, `/dev/pts/7`, `loop://`, `socket://host:port`), a *driver*
is a `RelayBoard` that speaks one board's protocol over it, and `RelayPower` adapts one
channel of a board to the `harness.protocols.Power` protocol the Gherkin steps use.

Only one process may drive a port: it is opened exclusively (pyserial `exclusive=True`,
an flock on the tty) and a lock file under /tmp/c2c-bench-relay-locks/ names the holder,
so a second harness gets `RelayInUse` instead of fighting over the relay.

`MinOffTimePower` is the on/off/cycle bookkeeping every switched supply shares (a relay
channel, a labgrid power driver): a backend gives `_flip` and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import termios
import time
from pathlib import Path
from typing import Protocol, runtime_checkable

import serial

from harness.errors import ConfigError, RelayError, RelayInUse
from harness.locks import HolderLock

LOCK_DIR = Path("/tmp/c2c-bench-relay-locks")
LINK_ERRORS = (serial.SerialException, OSError, termios.error)
"""What a serial link raises when the board is unplugged or the pty master is gone."""


@runtime_checkable
class HeldPower(Protocol):
    """A power switch that holds something until closed (a relay board's port lock, labgrid's drivers)."""

    def close(self) -> None: ...


@runtime_checkable
class RelayBoard(Protocol):
    """One relay board on one port. Channels use the numbers printed on the board."""

    port: str
    channels: int

    def set(self, channel: int, on: bool) -> None: ...
    def get(self, channel: int) -> bool | None:
        """The relay's state read back from the board, or None if the board cannot tell."""
        ...

    def close(self) -> None: ...


class MinOffTimePower:
    """`harness.protocols.Power` with a minimum off-time over one switch; `_flip` is the backend.

    The minimum off-time protects the device (supplies and flash controllers need time to
    discharge before a clean restart) and the meaning of a test (a 50 ms glitch is not a
    power cut): `on()` waits until the supply has been off at least `min_off_time`.
    """

    def __init__(self, min_off_time: float) -> None:
        if min_off_time < 0:
            raise ConfigError(f"min_off_time must be >= 0, got {min_off_time}")
        self.min_off_time = min_off_time
        self._off_since: float | None = None

    def on(self) -> None:
        if self._off_since is not None:
            remaining = self.min_off_time - (time.monotonic() - self._off_since)
            if remaining > 0:
                time.sleep(remaining)
        self._flip(True)
        self._off_since = None

    def off(self) -> None:
        self._flip(False)
        if self._off_since is None:
            self._off_since = time.monotonic()

    def cycle(self, off_time: float | None = None) -> None:
        """Off, stay off for max(off_time, min_off_time), then on (our timing, never a driver's delay)."""
        self.off()
        wanted = self.min_off_time if off_time is None else max(off_time, self.min_off_time)
        remaining = wanted - (time.monotonic() - (self._off_since or time.monotonic()))
        if remaining > 0:
            time.sleep(remaining)
        self.on()

    def _flip(self, on: bool) -> None:
        """Switch the supply (and record it): the one thing a backend implements."""
        raise NotImplementedError


class PortLock:
    """A driver's hold on a relay port while it has it open (harness.locks.HolderLock on a
    per-port file under /tmp/c2c-bench-relay-locks/, the holder's pid inside)."""

    def __init__(self, port: str) -> None:
        self.port = port
        self.path = LOCK_DIR / f"{_lock_name(port)}.lock"
        self._lock = HolderLock(self.path)

    def acquire(self) -> None:
        if not self._lock.try_acquire(str(os.getpid())):
            holder = self._lock.holder("another process")
            raise RelayInUse(f"relay port {self.port} is in use (held by pid {holder})")

    def release(self) -> None:
        self._lock.release()


def _lock_name(port: str) -> str:
    """A file name for the port: real path for devices (symlinks share a lock), URL otherwise."""
    key = port if "://" in port else os.path.realpath(port)
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("_")[-60:]
    return f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def open_port(port: str, *, baudrate: int = 9600, timeout: float = 1.0) -> tuple[serial.SerialBase, PortLock | None]:
    """Open `port` (device path or pyserial URL) exclusively, with its lock file held."""
    if not port:
        raise ConfigError("relay port is empty: give a device path or a pyserial URL")
    lock = None if port.startswith("loop://") else PortLock(port)  # loop:// is private per open
    if lock is not None:
        lock.acquire()
    try:
        kwargs: dict[str, object] = {"baudrate": baudrate, "timeout": timeout, "write_timeout": timeout}
        if "://" not in port:
            kwargs["exclusive"] = True
        link = serial.serial_for_url(port, **kwargs)
    except serial.SerialException as exc:
        if lock is not None:
            lock.release()
        if "lock" in str(exc).lower():
            raise RelayInUse(f"relay port {port} is in use: {exc}") from None
        raise RelayError(f"cannot open relay port {port}: {exc}") from None
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return link, lock


class SerialRelayBoard:
    """Base for boards driven over a serial link: owns the port and its lock."""

    baudrate = 9600
    max_channels = 8

    def __init__(self, port: str, channels: int, *, timeout: float = 1.0) -> None:
        if not 1 <= channels <= self.max_channels:
            raise ConfigError(
                f"{type(self).__name__}: channels must be 1..{self.max_channels}, got {channels}"
            )
        self.port = port
        self.channels = channels
        self.timeout = timeout
        self._link, self._lock = open_port(port, baudrate=self.baudrate, timeout=timeout)

    def _check_channel(self, channel: int, first: int = 1) -> None:
        last = first + self.channels - 1
        if not first <= channel <= last:
            raise ConfigError(f"{type(self).__name__} on {self.port}: channel {channel} "
                              f"is not on this board ({first}..{last})")

    def _write(self, data: bytes) -> None:
        try:
            self._link.write(data)
            self._link.flush()
        except LINK_ERRORS as exc:
            raise RelayError(f"relay board on {self.port} did not accept a command: {exc}") from None

    def _read(self, size: int) -> bytes:
        try:
            return bytes(self._link.read(size))
        except LINK_ERRORS as exc:
            raise RelayError(f"relay board on {self.port} stopped answering: {exc}") from None

    def _read_available(self) -> bytes:
        """Wait (up to the timeout) for one byte, then take whatever else has arrived."""
        first = self._read(1)
        if not first:
            return b""
        try:
            waiting = self._link.in_waiting
        except (*LINK_ERRORS, ValueError):
            waiting = 0
        return first + (self._read(waiting) if waiting else b"")

    def _read_until(self, terminator: bytes) -> bytes:
        try:
            return bytes(self._link.read_until(terminator))
        except LINK_ERRORS as exc:
            raise RelayError(f"relay board on {self.port} stopped answering: {exc}") from None

    def _drain(self) -> None:
        with contextlib.suppress(*LINK_ERRORS):
            self._link.reset_input_buffer()

    def close(self) -> None:
        with contextlib.suppress(*LINK_ERRORS):
            self._link.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> SerialRelayBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
