"""Seeded defects of the tethered camera source (features/tethered_camera.feature).

- tether-refetch-after-restart: a few seconds after the rig boots again on a state that
  already holds downloaded frames, the source fetches its newest frame once more and hands
  it over under a new local name (NAME_1.JPG): one camera frame uploaded twice under two
  names. The old delivery check returned as soon as the captured names were intact, before
  the late copy arrived, and never counted the camera's frames against the cloud's assets.

Why each `also`: QUE-03 and RES-01 share the tethered scenario with UPL-01.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.mutants.patching import Mutant, replace

REFETCH_AFTER_S = 3.0


def _refetch_after_restart() -> None:
    """After the first camera connection of a process whose ledger already held downloaded
    frames (a restart), hand the newest one over again REFETCH_AFTER_S later, renamed."""
    from reference_device.sources import tether_files
    from reference_device.sources.base import CapturedFile
    from reference_device.sources.tether_ledger import LedgerEntry

    def refetch(source: Any) -> None:
        done = [e for e in source.ledger.downloaded() if e.local and Path(e.local).is_file()]
        if not done or source._on_file is None:
            return
        last = done[-1]
        data = Path(last.local).read_bytes()
        local = source._local_path(Path(last.local).name, "a name the ledger does not own")
        tether_files.atomic_write(local, data, int(Path(last.local).stat().st_mtime))
        source._on_file(CapturedFile(path=local, captured_at=Path(last.local).stat().st_mtime,
                                     growing=False, origin="tether"))
        source.ledger.record(LedgerEntry(last.key, last.camera_path, "downloaded", str(local), last.sha256,
                                         last.size))

    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def connect(self: Any) -> bool:
            first = not getattr(self, "_mutant_connected", False)
            ok = orig(self)
            if ok and first:
                self._mutant_connected = True
                if self.ledger.downloaded():  # a restart: this state already downloaded frames
                    timer = threading.Timer(REFETCH_AFTER_S, refetch, args=(self,))
                    timer.daemon = True
                    timer.start()
            return bool(ok)
        return connect
    replace("reference_device.sources.tether:TetherSource._connect", wrap)


TETHER_MUTANTS: tuple[Mutant, ...] = (
    Mutant("tether-refetch-after-restart", "C2C-UPL-01",
           "after a restart, fetches its newest camera frame again and uploads it under a new name",
           "reference_device.sources.tether:TetherSource._connect", _refetch_after_restart,
           also=("C2C-QUE-03", "C2C-RES-01"), quick_k="Tethered"),
)
