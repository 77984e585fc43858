"""A rig's place on a labgrid coordinator: acquired for a device's whole run, released after it.

A rig of the inventory may name the coordinator and place a lab already uses for it:

    [rigs.bench-a]
    kind = "local"
    coordinator = "127.0.0.1:20408"   # labgrid-coordinator's gRPC address (labgrid >= 24)
    place = "rig-1"                   # a place created there (labgrid-client -p rig-1 create)
    wait = 900                        # seconds to wait while another user holds it

The fleet then acquires the place before the device's run starts and releases it after the run
ends, fails or is interrupted (Ctrl-C), besides the rig's local place lock (places.py). The place
is acquired under labgrid's own identity ("host/user", LG_HOSTNAME / LG_USERNAME override), so
`labgrid-client show` names this run's user as the holder, as it would for a person at the rig.
A place another user holds is polled for up to the rig's `wait` seconds, then the device's row is
a RigBusy bench error naming the holder the coordinator reports; a coordinator that cannot be
reached is a CoordinatorUnreachable bench error naming its address and gRPC's reason.

Driven by `labgrid-client -x ADDR -p PLACE acquire|release` as subprocesses, not labgrid's
Python ClientSession: the session is an asyncio gRPC stream with its own event loop and sync
thread, which would have to live beside the fleet's worker threads for one call before and one
after each run; the command is labgrid's supported interface, carries no secret, answers in half
a second, and its exit code and one-line error are all the fleet needs. Each call runs in a
session of its own so a terminal's Ctrl-C cannot cut the release short. Waiting polls `acquire`
every `poll_s`; labgrid's reservation tokens (`reserve --wait`, a fair queue with priorities) are
not used, so a person at the rig may take the place first when it frees.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.certify.places import FleetCancelled, RigBusy
from harness.errors import BenchFailure, ConfigError

CLIENT_TIMEOUT_S = 30.0  # one labgrid-client call; gRPC refuses at once, a black hole takes this long
HOLDER = re.compile(r"already acquired by (\S+?)\.?(?:\s|$)")
UNREACHABLE = ("Could not connect to coordinator", "coordinator is unavailable")


class CoordinatorUnreachable(BenchFailure):
    """The rig's labgrid coordinator did not answer (down, wrong address, firewall)."""


class CoordinatorError(BenchFailure):
    """The coordinator answered but refused the call (no such place, released by someone else)."""


@dataclass(frozen=True)
class CoordinatorPlace:
    """Where a rig is reserved: a labgrid coordinator's address and a place name on it."""

    address: str
    place: str


def parse_coordinator_place(rig: str, table: Mapping[str, object]) -> CoordinatorPlace | None:
    """The rig's `coordinator` and `place` keys (both or neither); a ConfigError naming the rig."""
    address, place = table.get("coordinator"), table.get("place")
    if address is None and place is None:
        return None
    if not isinstance(address, str) or not re.fullmatch(r"[^\s:]+:\d{1,5}", address):
        raise ConfigError(f"rig {rig!r}: coordinator must be 'host:port' (labgrid-coordinator --listen)")
    if not isinstance(place, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", place):
        raise ConfigError(f"rig {rig!r}: a coordinator needs place = the labgrid place name to acquire")
    return CoordinatorPlace(address, place)


def labgrid_client() -> str:
    """labgrid-client beside this interpreter (the venv), else on PATH; labgrid is an optional extra."""
    beside = Path(sys.executable).parent / "labgrid-client"
    found = str(beside) if beside.exists() else shutil.which("labgrid-client")
    if found is None:
        raise ConfigError("a rig names a labgrid coordinator but labgrid-client is not installed "
                          "(pip install .[labgrid])")
    return found


class LabgridPlace:
    """One place on one coordinator, acquired and released with labgrid-client."""

    def __init__(self, where: CoordinatorPlace, *, client: str | None = None, poll_s: float = 1.0) -> None:
        self.where = where
        self.client = client or labgrid_client()
        self.poll_s = poll_s

    def _call(self, command: str) -> subprocess.CompletedProcess[str]:
        argv = [self.client, "-x", self.where.address, "-p", self.where.place, command]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S,
                                  stdin=subprocess.DEVNULL, start_new_session=True, check=False)
        except subprocess.TimeoutExpired:
            raise CoordinatorUnreachable(f"labgrid coordinator {self.where.address}: no answer to "
                                         f"{command} of place {self.where.place!r} in {CLIENT_TIMEOUT_S:.0f} s") from None
        if done.returncode != 0 and any(mark in done.stderr for mark in UNREACHABLE):
            reason = next((line.split("coordinator is unavailable:", 1)[1].strip()
                           for line in done.stderr.splitlines() if "coordinator is unavailable:" in line),
                          last_line(done.stderr))
            raise CoordinatorUnreachable(f"labgrid coordinator {self.where.address} cannot be reached: {reason}")
        return done

    def try_acquire(self) -> str | None:
        """Acquire the place: None once ours, else the holder the coordinator names."""
        done = self._call("acquire")
        if done.returncode == 0:
            return None
        held = HOLDER.search(done.stderr)
        if held is None:
            raise CoordinatorError(f"labgrid coordinator {self.where.address}: acquire of place "
                                   f"{self.where.place!r} failed: {last_line(done.stderr)}")
        return held.group(1)

    def release(self) -> None:
        done = self._call("release")
        if done.returncode != 0:
            raise CoordinatorError(f"labgrid coordinator {self.where.address}: release of place "
                                   f"{self.where.place!r} failed: {last_line(done.stderr)}")

    @contextlib.contextmanager
    def hold(self, wait: float, *, cancel: threading.Event | None = None) -> Iterator[None]:
        """Hold the place while the body runs (released on any exit, Ctrl-C included); RigBusy naming
        the holder after `wait` s, FleetCancelled as soon as `cancel` is set while waiting."""
        stop = cancel or threading.Event()
        deadline = time.monotonic() + wait
        while (holder := self.try_acquire()) is not None:
            if stop.is_set():
                raise FleetCancelled(f"place {self.where.place!r}: the fleet was stopped while waiting for it")
            if time.monotonic() >= deadline:
                raise RigBusy(f"labgrid place {self.where.place!r} on {self.where.address} is acquired by "
                              f"{holder}; waited {wait:.0f} s")
            stop.wait(min(self.poll_s, max(0.0, deadline - time.monotonic())))
        try:
            if stop.is_set():  # stopped while the acquire was on its way: give the place back at once
                raise FleetCancelled(f"place {self.where.place!r}: the fleet was stopped as it was acquired")
            yield
        finally:
            self.release()


@contextlib.contextmanager
def hold_coordinator_place(where: CoordinatorPlace | None, wait: float,
                           *, cancel: threading.Event | None = None) -> Iterator[None]:
    """The rig's coordinator place for the body, or nothing for a rig without a coordinator."""
    if where is None:
        yield
        return
    with LabgridPlace(where).hold(wait, cancel=cancel):
        yield


def last_line(text: str) -> str:
    """labgrid-client's error: its last non-empty line, without the program's prefix."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1].removeprefix("labgrid-client: ") if lines else "no message"
