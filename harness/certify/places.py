"""The places of a rig: labgrid's reservation model, without its coordinator.

In labgrid (labgrid/remote/coordinator.py, client.py) a *place* is a rig that one client acquires at a
time: the coordinator records the holder as "host/user", and a second `acquire` is refused
with "Place X is already acquired by host/user"; waiting is a *reservation* (a token in a
queue with a priority, allocated when the place frees, expired unless the client keeps
polling within its timeout); releasing is explicit (`labgrid-client release`). Here each rig
has `slots` places; a device holds one for its whole certification, as an flock on
`<places_dir>/<rig>.<n>.lock` whose text names the holder ("host/user pid N: fleet REPORTS
device NAME"). Devices of one fleet on one rig queue for its places in this process (a
one-place hardware rig certifies its devices one after another); a place held by another run
(another fleet or certification sharing the directory) is polled for up to the rig's `wait`
seconds, then the device's row is a bench error naming the holder (`RigBusy`). The kernel
drops an flock when its process ends, so a crash or Ctrl-C releases the place. Not copied:
the coordinator and its gRPC protocol (a rig may also name a real coordinator's place:
coordinator.py acquires it too), reservation tokens and priorities, tag filters that pick any
matching place, `allow` (sharing an acquired place with another user) and the exporter
resources a labgrid place acquires with it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from harness.errors import BenchFailure
from harness.locks import HolderLock

PLACES_DIR = Path("/tmp/c2c-bench-places")  # beside the relay port locks: shared by every user's runs


class RigBusy(BenchFailure):
    """Every place of a rig stayed held by another run for longer than the rig's `wait`."""


class FleetCancelled(BenchFailure):
    """The fleet was stopped (Ctrl-C) while this device waited for a place."""


class PlaceLock:
    """One place of one rig: a harness.locks.HolderLock on `<dir>/<rig>.<n>.lock`."""

    def __init__(self, path: Path, number: int) -> None:
        self.path = path
        self.number = number
        self._lock = HolderLock(path)

    def try_acquire(self, holder: str) -> bool:
        """Take the place if no one holds it (never blocks)."""
        return self._lock.try_acquire(holder)

    def holder(self) -> str:
        """Who holds the place, as its holder wrote it."""
        return self._lock.holder()

    def release(self) -> None:
        self._lock.release()


class RigPlaces:
    """The places of one rig: this run's devices queue for them, other runs' holds are waited out."""

    def __init__(self, rig: str, slots: int, wait: float, directory: Path, *, poll_s: float = 0.2) -> None:
        self.rig, self.slots, self.wait = rig, slots, wait
        self.directory = directory
        self.poll_s = poll_s
        self._mine: set[int] = set()
        self._turn = threading.Condition()

    def _lock(self, n: int) -> PlaceLock:
        return PlaceLock(self.directory / f"{self.rig}.{n}.lock", n)

    @contextlib.contextmanager
    def hold(self, holder: str, *, cancel: threading.Event | None = None) -> Iterator[PlaceLock]:
        """Hold one place while the body runs; RigBusy once other runs held every free one for `wait` s,
        FleetCancelled as soon as `cancel` is set while waiting."""
        place = self._acquire(holder, cancel or threading.Event())
        try:
            yield place
        finally:
            with self._turn:
                place.release()
                self._mine.discard(place.number)
                self._turn.notify_all()

    def _acquire(self, holder: str, cancel: threading.Event) -> PlaceLock:
        deadline: float | None = None
        with self._turn:
            while True:
                if cancel.is_set():
                    raise FleetCancelled(f"rig {self.rig!r}: the fleet was stopped before a place was free")
                for n in range(1, self.slots + 1):
                    place = self._lock(n)
                    if n not in self._mine and place.try_acquire(holder):
                        self._mine.add(n)
                        return place
                if self._mine:  # this run holds a place of the rig: queue behind it, however long
                    deadline = None
                    self._turn.wait(self.poll_s)
                    continue
                now = time.monotonic()  # every place is another run's: wait out `wait`, then name them
                deadline = deadline if deadline is not None else now + self.wait
                if now >= deadline:
                    held = "; ".join(f"{self._lock(n).path.name} by {self._lock(n).holder()}"
                                     for n in range(1, self.slots + 1))
                    raise RigBusy(f"rig {self.rig!r} is held by another run ({held}); "
                                  f"waited {self.wait:.0f} s")
                self._turn.wait(min(self.poll_s, deadline - now))
