"""Seeded defects of a FAST device for the power-cut scenarios (issue #14 point 2).

The reference device configured to be fast (16 part PUTs in flight, 5 MiB parts: a 40 MB file
goes up as 8 parts at once) finished the file before the old cut step could cut it, so the
power-cut items ended as bench errors and these defects hid behind "error". With the cloud
taking parts in one at a time (`serial_ingest_rate`) the cut lands mid-file for them too:
- fast-restart-from-zero: never records finished parts, so after a cut it re-sends the whole
  file; fails C2C-CTL-01 (re-sent bytes per cut over one part).
- fast-loses-queue: drops its queue at boot after a cut; the file is never finished. Its `also`
  is the same as loses-queue's: the power-cut scenarios are shared by QUE-03, RTY-02, CTL-01
  and RES-01, and a file dropped from the queue is neither retried, nor resumed, nor survives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.mutants.patching import Mutant, replace

# A fast but correct configuration of the reference device: every part of a 40 MB file at once.
FAST = {"C2C_DEVICE_PARALLELISM": "16", "C2C_DEVICE_PARALLEL_FILES": "2",
        "C2C_DEVICE_PART_SIZE": str(5 * 1024 * 1024)}


def restart_from_zero() -> None:
    """Finished parts are never recorded: after a cut the whole file is sent again (C2C-CTL-01)."""
    replace("reference_device.queue:FileQueue.ack_part", lambda orig: lambda self, file_id, number: None)


def loses_queue() -> None:
    """A restart cancels whatever was queued or uploading: the queue is forgotten (C2C-QUE-03)."""
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def reconcile(self: Any) -> int:
            with self._tx() as db:
                return db.execute("UPDATE files SET state='cancelled' WHERE state IN ('queued','uploading')").rowcount
        return reconcile
    replace("reference_device.queue:FileQueue.reconcile", wrap)


POWER_MUTANTS: tuple[Mutant, ...] = (
    Mutant("fast-restart-from-zero", "C2C-CTL-01",
           "16 part PUTs in flight and never records finished parts: re-uploads the whole file after a cut",
           "reference_device.queue:FileQueue.ack_part", restart_from_zero, env=FAST),
    Mutant("fast-loses-queue", "C2C-QUE-03", "16 part PUTs in flight and drops the queue after a power cut",
           "reference_device.queue:FileQueue.reconcile", loses_queue,
           also=("C2C-RTY-02", "C2C-CTL-01", "C2C-RES-01"), env=FAST),
)
