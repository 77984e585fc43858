"""The status port a software device keeps for its whole life, power cuts included.

A device is off between a cut and its boot, and its port is free then. A port from the kernel's
ephemeral range (what binding port 0 gives) can be taken meanwhile by any outgoing connection
on the machine as its local port, and the device's next boot fails with "Address already in
use" (seen in the full mutant matrix: sixteen devices and their emulators at once). So the bench
reserves a port below the ephemeral range, which no outgoing connection takes, and holds an
flock on /tmp/c2c-bench-ports/<port>.lock while the device lives (harness.locks.HolderLock, as
relay ports and rig places are held), so no other bench run on the machine, whoever runs it,
reserves it too. The lock goes with the process, whatever ends it.
"""

from __future__ import annotations

import logging
import os
import random
import socket
from pathlib import Path

from harness.locks import HolderLock

log = logging.getLogger(__name__)

LOCK_DIR = Path("/tmp/c2c-bench-ports")
LOWEST_PORT = 10000
"""Ports below this are left to services (and to ports a person configures by hand)."""
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
ATTEMPTS = 200


def ephemeral_low() -> int:
    """The first port the kernel hands to outgoing connections (32768 unless configured)."""
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the device's server will
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PortReservation:
    """A loopback port held for one device: `port`, and `release()` when the device is done."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._lock: HolderLock | None = None
        self.port = self._reserve(rng or random.Random())

    def _reserve(self, rng: random.Random) -> int:
        top = ephemeral_low()
        if top - LOWEST_PORT >= 100:
            for _ in range(ATTEMPTS):
                port = rng.randrange(LOWEST_PORT, top)
                lock = HolderLock(LOCK_DIR / f"{port}.lock")
                try:
                    if not lock.try_acquire(f"pid {os.getpid()}"):
                        continue
                except OSError:  # a lock file left by an older run we may not open: taken
                    continue
                if _bindable(port):
                    self._lock = lock
                    return port
                lock.release()
        # no room below the ephemeral range (a host that configured it so): a port as before
        log.warning("no status port below the ephemeral range (%d); using an ephemeral one", top)
        return _ephemeral_port()

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
