"""Bad media objects in a device's capture folder: faults that hold when the bench is root.

Root reads a mode-000 file (CAP_DAC_OVERRIDE), so "unreadable" by chmod tests nothing on
these rigs and in CI. What no user can read as a clip, root included:

- dangling-symlink  a clip name that points at nothing (open: ENOENT)
- directory         a folder named like a clip (open for reading a file: EISDIR)
- fifo              a named pipe named like a clip: open() for reading blocks until a
                    writer comes, so a device that opens it blocks there; the bench never
                    opens it for reading, and releases a blocked reader (non-blocking writer
                    open + close: the reader sees end of file) when the object is removed
- vanish            a real clip deleted the moment the device opens it (see fswatch.py)
- unreadable        mode 000, only when the bench is not root (`not_applicable`)

Each object is made under a temporary name beside the folder and renamed in, so the device
never sees half of one. The original bytes of a clip stay where the bench generated them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import MediaError

OBJECTS = ("dangling-symlink", "directory", "fifo", "unreadable")
# objects with no bytes a device could read: any complete asset for one was made of nothing
NO_CONTENT = frozenset(OBJECTS)
WATCH_FOLDER_ONLY = frozenset({*OBJECTS, "vanish"})


def not_applicable(how: str, euid: int | None = None) -> str | None:
    """Why `how` cannot be made on this bench (None: it can)."""
    uid = os.geteuid() if euid is None else euid
    if how == "unreadable" and uid == 0:
        return ("the bench runs as root, which reads a mode-000 file anyway (CAP_DAC_OVERRIDE): an "
                "unreadable file cannot be made here; the dangling-symlink, directory, fifo and vanish "
                "cases stand in for it")
    return None


@dataclass
class BadObject:
    """One bad object in the capture folder, and how to take it away again."""

    how: str
    path: Path
    original: Path | None = None  # the generated clip the object was made from, kept by the bench
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    def remove(self) -> list[str]:
        """Take the object out of the folder; returns what the bench found doing so."""
        found: list[str] = []
        if self.how == "fifo" and self.path.is_fifo() and release_fifo_readers(self.path):
            found.append(f"{self.name}: a reader was blocked opening the FIFO (the device opened it and "
                         "waited); the bench released it")
        if self.path.is_symlink() or self.path.is_fifo():
            self.path.unlink(missing_ok=True)
        elif self.path.is_dir():
            self.path.chmod(0o700)
            shutil.rmtree(self.path, ignore_errors=True)
        elif self.path.exists():
            with contextlib.suppress(OSError):
                self.path.chmod(0o600)
            self.path.unlink(missing_ok=True)
        self.notes.extend(found)
        return found


def release_fifo_readers(path: Path) -> bool:
    """Unblock any process stuck opening the FIFO for reading; True if there was one.

    A non-blocking write-only open fails with ENXIO when nobody has the FIFO open for
    reading, and never blocks: the bench cannot hang on its own fault.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.ENOENT):
            return False
        raise MediaError(f"cannot check the FIFO {path} for readers: {exc.strerror}") from exc
    os.close(fd)
    return True


def _staging_name(staging: Path, name: str) -> Path:
    staging.mkdir(parents=True, exist_ok=True)
    return staging / f".{uuid.uuid4().hex[:12]}-{name}.making"


def place(how: str, folder: Path, name: str, *, staging: Path, original: Path | None = None,
          euid: int | None = None) -> BadObject:
    """Put a `how` object named `name` into `folder` in one rename.

    `staging` must be on the folder's filesystem (the rename is atomic) and outside it.
    `original` is a generated clip (needed for unreadable; kept for the record otherwise).
    """
    if how not in OBJECTS:
        raise MediaError(f"unknown bad media object {how!r}; known: {', '.join(OBJECTS)}")
    reason = not_applicable(how, euid)
    if reason:
        raise MediaError(f"{how}: {reason}")
    if "/" in name or name in ("", ".", ".."):
        raise MediaError(f"bad media object name {name!r}: not a plain file name")
    dest = Path(folder) / name
    if dest.exists() or dest.is_symlink():
        raise MediaError(f"cannot place a {how} at {dest}: something of that name is already there")
    tmp = _staging_name(Path(staging), name)
    if how == "dangling-symlink":
        target = Path(staging) / f"missing-{uuid.uuid4().hex[:12]}-{name}"
        os.symlink(target, tmp)
    elif how == "directory":
        tmp.mkdir()
    elif how == "fifo":
        os.mkfifo(tmp, 0o644)
    else:  # unreadable
        if original is None or not original.is_file():
            raise MediaError(f"unreadable {name}: needs the generated clip to copy, got {original}")
        shutil.copyfile(original, tmp)
        os.chmod(tmp, 0)
        try:
            with open(tmp, "rb"):
                pass
        except PermissionError:
            pass
        else:
            tmp.chmod(0o600)
            tmp.unlink()
            raise MediaError(f"unreadable {name}: mode 000 does not stop this user (uid {os.geteuid()}) reading it")
    try:
        os.rename(tmp, dest)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.rmdir() if tmp.is_dir() and not tmp.is_symlink() else tmp.unlink()
        raise MediaError(f"cannot move the {how} into {folder}: {exc.strerror} (staging {staging} must be on "
                         "the same filesystem)") from exc
    made = BadObject(how, dest, original)
    mode = os.lstat(dest).st_mode
    expect = {"dangling-symlink": stat.S_ISLNK, "directory": stat.S_ISDIR, "fifo": stat.S_ISFIFO,
              "unreadable": stat.S_ISREG}[how]
    if not expect(mode) or (how == "dangling-symlink" and dest.exists()):
        made.remove()
        raise MediaError(f"{dest} is not the {how} the bench made (mode {stat.filemode(mode)})")
    return made


@dataclass
class Vanish:
    """A captured clip deleted the moment the device first opens it (armed on a FolderWatch).

    Deleting it later lets a device that read it whole upload it; deleting it before the
    device opened it tests nothing (the device never knew it). The bench keeps the original.
    """

    path: Path
    fired_at: float | None = None  # time.monotonic() of the deletion

    def fire(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self.fired_at = time.monotonic()
