"""Seeded defects of bad-media handling (features/upload.feature, "Corrupted or unreadable
media does not block other uploads").

- stalls-behind-bad-media: the only upload worker retries the first file it cannot read
  (vanished, unreadable, not a regular file) once a second, before anything else, instead of
  quarantining it and going on. The bad file is captured first, so every good file waits
  behind it. The stall is bounded (STALL_S, longer than the scenario's 90 s wait plus its
  25 % grace) so the scenarios after it in the same session are not all blocked too.
  Before the bad file was captured first and made to hold as root (a mode-000 file is
  readable by root; the good files went up before the bad one), this device passed.

Why each `also`: RES-04 shares the very scenario outline with CTL-04.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from tests.mutants.patching import Mutant, replace

STALL_S = 150.0


def _stalls_behind_bad_media() -> None:
    from reference_device.errors import MediaError

    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def upload(self: Any, rec: Any, cancel: threading.Event) -> None:
            stalled = 0.0
            while True:
                try:
                    return orig(self, rec, cancel)
                except MediaError:
                    if stalled >= STALL_S or cancel.is_set():
                        raise
                    cancel.wait(1.0)  # the same file again; nothing else moves meanwhile
                    stalled += 1.0
        return upload
    replace("reference_device.uploader:Uploader.upload", wrap)


MEDIA_MUTANTS: tuple[Mutant, ...] = (
    Mutant("stalls-behind-bad-media", "C2C-CTL-04",
           "its only upload worker retries the first unreadable file for 150 s before anything else",
           "reference_device.uploader:Uploader.upload", _stalls_behind_bad_media,
           # one worker is part of the defect: a full run also fails parallel uploads (OPT-05) and
           # the lossy-cellular throughput (NETW-01), as no-parallel does
           also=("C2C-RES-04", "C2C-OPT-05", "C2C-NETW-01"),
           env={"C2C_DEVICE_PARALLELISM": "1", "C2C_DEVICE_PARALLEL_FILES": "1"},
           quick_k="not corrupted or vanish"),
)
