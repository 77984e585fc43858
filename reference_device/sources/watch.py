"""Watch folders by polling: recursive, stable-size rule, hidden and temp files ignored.

Polling is deliberate: it works on every filesystem a recorder writes to (exFAT cards,
network shares) where inotify does not. A file is handed over once its size and mtime have
been unchanged for `quiet_period`; with real-time on, a file seen growing is handed over at
once with `growing=True`. A file that grows for longer than `max_growth_time` is reported to
`on_problem` (quarantine) instead of waiting forever.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reference_device.sources.base import CapturedFile, OnFile

log = logging.getLogger(__name__)
TEMP_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp", ".download", "~")
OnProblem = Callable[[Path, str], None]


def is_ignored(name: str) -> bool:
    lowered = name.lower()
    return name.startswith(".") or name.startswith("~$") or lowered.endswith(TEMP_SUFFIXES)


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    first_seen: float
    last_change: float
    captured_at: float
    ctime: float = 0.0  # when the file was last placed or changed in storage
    changes: int = 0
    emitted: tuple[int, int] | None = None
    emitted_growing: bool = False
    problem: bool = False


class WatchSource:
    """A `Source` over one or more directories."""

    name = "watch"

    def __init__(
        self,
        dirs: Sequence[Path],
        *,
        interval: float = 0.5,
        quiet_period: float = 2.0,
        realtime: bool = False,
        max_growth_time: float = 4 * 3600.0,
        on_problem: OnProblem | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.dirs = [Path(d) for d in dirs]
        self.interval = interval
        self.quiet_period = quiet_period
        self.realtime = realtime
        self.max_growth_time = max_growth_time
        self.on_problem = on_problem
        self.clock = clock
        self._seen: dict[str, _Seen] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_file: OnFile | None = None
        self._scan_lock = threading.Lock()  # a scan and its hand-overs are one step for settled()
        self.last_scan_at = 0.0
        self.errors: list[str] = []

    def start(self, on_file: OnFile) -> None:
        self._on_file = on_file
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def status(self) -> dict[str, Any]:
        return {"kind": "watch", "dirs": [str(d) for d in self.dirs],
                "tracked": len(self._seen), "last_scan_at": self.last_scan_at}

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.scan()
            except Exception:
                log.exception("watch scan failed")
            self._stop.wait(self.interval)

    def _walk(self) -> list[Path]:
        found: list[Path] = []
        for root in self.dirs:
            if not root.is_dir():
                continue
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                found.extend(Path(dirpath) / f for f in filenames if not is_ignored(f))
        return found

    def settled(self, before: float) -> bool:
        """Every file in storage before `before` has been handed over (or reported).

        Manual "upload all" waits for this, so files still in their quiet period at the
        moment the user selected everything are part of the selection, and the upload order
        (priorities) is decided over all of them rather than over whichever settled first.
        """
        if not self._scan_lock.acquire(blocking=False):
            return False  # a scan is handing files over right now
        try:
            if self.last_scan_at < before:
                return False
            return not any(s.emitted is None and not s.emitted_growing and not s.problem
                           and s.ctime <= before for s in self._seen.values())
        finally:
            self._scan_lock.release()

    def scan(self) -> list[CapturedFile]:
        """One pass; returns (and hands over) the files that became ready."""
        with self._scan_lock:
            return self._scan()

    def _scan(self) -> list[CapturedFile]:
        now = self.clock()
        ready: list[CapturedFile] = []
        present: set[str] = set()
        for path in self._walk():
            key = str(path)
            try:
                st = path.stat()
            except OSError:
                continue
            if not os.path.isfile(path):
                continue
            present.add(key)
            seen = self._seen.get(key)
            if seen is None:
                captured = min(st.st_mtime, now)
                self._seen[key] = _Seen(st.st_size, st.st_mtime_ns, now, now, captured, st.st_ctime)
                continue
            seen.ctime = st.st_ctime
            if (st.st_size, st.st_mtime_ns) != (seen.size, seen.mtime_ns):
                seen.size, seen.mtime_ns, seen.last_change = st.st_size, st.st_mtime_ns, now
                seen.changes += 1
                if seen.emitted is not None and not seen.emitted_growing:
                    seen.emitted = None  # rewritten after hand-over: a new capture
                    seen.captured_at = min(st.st_mtime, now)
            growing_for = now - seen.first_seen
            if seen.changes and now - seen.last_change < self.quiet_period:
                if self.realtime and not seen.emitted_growing and seen.emitted is None:
                    seen.emitted_growing = True
                    ready.append(CapturedFile(path, seen.captured_at, growing=True))
                elif (not self.realtime and growing_for > self.max_growth_time and not seen.problem):
                    seen.problem = True
                    if self.on_problem is not None:
                        self.on_problem(path, "endlessly_growing")
                continue
            if now - seen.last_change >= self.quiet_period and seen.emitted is None:
                seen.emitted = (seen.size, seen.mtime_ns)
                if seen.emitted_growing:
                    continue  # the real-time uploader already owns it
                ready.append(CapturedFile(path, seen.captured_at, growing=False))
        for key in set(self._seen) - present:
            del self._seen[key]
        self.last_scan_at = now
        if self._on_file is not None:
            for cf in ready:
                self._on_file(cf)
        return ready
