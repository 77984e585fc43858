"""A lock a run holds on a shared bench resource (a relay port, a rig's place): an flock on a
file that names its holder. The kernel drops an flock when its process ends, so a crash or
Ctrl-C never leaves a resource held; the holder's words say who has it meanwhile."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class HolderLock:
    """An flock on `path` (made shareable by every user's runs, like /tmp), never blocking."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self, holder: str) -> bool:
        """Take the lock and write `holder` into its file; False if someone else holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            self.path.parent.chmod(0o1777)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        with contextlib.suppress(OSError):  # the umask took some of 0o666: another user's run
            os.fchmod(fd, 0o666)            # (or root's) must open it too; only its owner can
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{holder}\n".encode(), 0)
        self._fd = fd
        return True

    def holder(self, unknown: str = "another run") -> str:
        """Who holds the lock, as its holder wrote it."""
        try:
            return self.path.read_text(encoding="utf-8", errors="replace").strip() or unknown
        except OSError:
            return unknown

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = None
