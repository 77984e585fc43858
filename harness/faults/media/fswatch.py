"""Watch what a device does in its capture folder (Linux inotify, through ctypes).

A vanishing file is only a test once the device has seen it: deleting a file the device
never opened tests nothing. The kernel tells us when any process opens an entry of the
folder (IN_OPEN) or lists the folder itself (IN_OPEN / IN_ACCESS with IN_ISDIR and no
name), so the bench can act the moment the device starts reading, without guessing times
and without ever opening the device's files itself (a FIFO would block the bench too).

One reader thread per watch; actions registered with `on_open` run in that thread right
after the event, so a deletion lands while the device is still reading.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from harness.errors import MediaError

IN_ACCESS = 0x00000001
IN_CLOSE_NOWRITE = 0x00000010
IN_OPEN = 0x00000020
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_Q_OVERFLOW = 0x00004000
IN_ISDIR = 0x40000000
MASK = IN_ACCESS | IN_OPEN | IN_MOVED_TO | IN_CREATE | IN_DELETE
_EVENT = struct.Struct("iIII")


@dataclass(frozen=True)
class FsEvent:
    at: float  # time.monotonic() when the bench read it
    name: str  # "" for the watched folder itself
    mask: int

    @property
    def is_listing(self) -> bool:
        """Someone opened the folder itself: one directory scan (its reads come as IN_ACCESS)."""
        return not self.name and bool(self.mask & IN_ISDIR) and bool(self.mask & IN_OPEN)

    def opened(self, name: str) -> bool:
        return self.name == name and bool(self.mask & IN_OPEN)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class FolderWatch:
    """inotify on one folder: records events, runs `on_open` actions in its reader thread."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.events: list[FsEvent] = []
        self.overflowed = False
        self.errors: list[str] = []
        self._actions: dict[str, Callable[[], None]] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._fd = -1
        self._thread: threading.Thread | None = None

    def start(self) -> FolderWatch:
        if not self.folder.is_dir():
            raise MediaError(f"cannot watch {self.folder}: not a directory")
        libc = _libc()
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise MediaError(f"inotify_init1 failed: {os.strerror(ctypes.get_errno())}")
        if libc.inotify_add_watch(fd, os.fsencode(self.folder), MASK) < 0:
            err = ctypes.get_errno()
            os.close(fd)
            raise MediaError(f"cannot watch {self.folder} with inotify: {os.strerror(err)} "
                             "(fs.inotify.max_user_watches reached?)")
        self._fd = fd
        self._thread = threading.Thread(target=self._run, name=f"fswatch:{self.folder.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> FolderWatch:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def on_open(self, name: str, action: Callable[[], None]) -> None:
        """Run `action` once, in the reader thread, the first time `name` is opened from now on."""
        with self._cond:
            self._actions[name] = action

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self._fd, 64 * 1024)
            except BlockingIOError:
                continue
            except OSError as exc:
                self.errors.append(f"inotify read failed: {exc}")
                return
            self._parse(data)

    def _parse(self, data: bytes) -> None:
        pos, now = 0, time.monotonic()
        while pos + _EVENT.size <= len(data):
            _wd, mask, _cookie, length = _EVENT.unpack_from(data, pos)
            raw = data[pos + _EVENT.size:pos + _EVENT.size + length]
            pos += _EVENT.size + length
            name = os.fsdecode(raw.split(b"\0", 1)[0])
            if mask & IN_Q_OVERFLOW:
                self.overflowed = True
            event = FsEvent(now, name, mask)
            action = None
            with self._cond:
                self.events.append(event)
                if mask & IN_OPEN and name in self._actions:
                    action = self._actions.pop(name)
            if action is not None:
                try:
                    action()
                except Exception as exc:  # reported by wait_for; the reader keeps going
                    self.errors.append(f"action on opening {name}: {type(exc).__name__}: {exc}")
            with self._cond:
                self._cond.notify_all()

    def wait_for(self, pred: Callable[[list[FsEvent]], bool], timeout: float) -> bool:
        """Until `pred(events)` holds (True) or `timeout` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred(self.events):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    def opened(self, name: str, *, since: float = 0.0) -> bool:
        with self._cond:
            return any(e.opened(name) and e.at >= since for e in self.events)

    def listings(self, *, since: float = 0.0) -> int:
        """How many times the folder itself was opened or read since `since` (monotonic)."""
        with self._cond:
            return sum(1 for e in self.events if e.is_listing and e.at >= since)
