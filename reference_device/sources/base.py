"""The interface every media source implements.

A source finds new media and hands it to the device as a `CapturedFile`. The file is
always in user-accessible local storage when handed over (a tethered camera downloads
first); the queue decides whether and when it is uploaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class CapturedFile:
    path: Path
    captured_at: float  # Unix seconds when the media was created (drives the API `offset`)
    growing: bool = False  # still being written: eligible for real-time upload
    origin: str = "watch"  # watch | tether | manual
    reannounced: bool = False  # handed over again at start-up (the queue already may have it)


OnFile = Callable[[CapturedFile], None]


class Source(Protocol):
    name: str

    def start(self, on_file: OnFile) -> None:
        """Begin delivering files; returns at once (the source runs its own thread/task)."""
        ...

    def stop(self) -> None: ...

    def status(self) -> dict[str, Any]:
        """A small dict for the status page, e.g. {"kind": "tether", "state": "connected"}."""
        ...

    # Optional: `settled(before: float) -> bool`, True once every file in storage before
    # `before` has been handed over. A manual "upload all" waits for it (WatchSource has it).
