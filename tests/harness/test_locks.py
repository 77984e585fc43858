"""Locks on shared bench resources (harness/locks.py): one holder at a time, named, and shared
between users: a bench run as root must not lock everyone else out of a relay port, a rig's
place or a status port."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.locks import HolderLock

NOBODY = 65534


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory like /tmp's: every user may pass through it (pytest's tmp_path is 0700)."""
    with tempfile.TemporaryDirectory(prefix="c2c-locks-test-") as tmp:
        os.chmod(tmp, 0o755)
        yield Path(tmp)


def test_a_held_lock_refuses_a_second_taker_and_names_its_holder(shared_dir: Path) -> None:
    first, second = HolderLock(shared_dir / "x.lock"), HolderLock(shared_dir / "x.lock")
    assert first.try_acquire("pid 1 (rig A)")
    try:
        assert not second.try_acquire("pid 2")
        assert not second.held
        assert second.holder() == "pid 1 (rig A)"
    finally:
        first.release()
    assert second.try_acquire("pid 2")
    second.release()
    assert second.holder("nobody") == "nobody"  # a released lock names no one


def _made_under_the_usual_umask(path: Path, holder: str) -> HolderLock:
    """The lock taken once and let go, as a run whose umask is 022 leaves it."""
    lock = HolderLock(path)
    old = os.umask(0o022)
    try:
        assert lock.try_acquire(holder)
    finally:
        os.umask(old)
        lock.release()
    return lock


def test_the_lock_directory_and_file_are_open_to_every_user(shared_dir: Path) -> None:
    lock = _made_under_the_usual_umask(shared_dir / "locks" / "x.lock", "me")
    assert stat.S_IMODE((shared_dir / "locks").stat().st_mode) == 0o1777
    assert stat.S_IMODE(lock.path.stat().st_mode) == 0o666  # not the umask's 0o644


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_another_user_takes_a_lock_root_made(shared_dir: Path) -> None:
    lock = _made_under_the_usual_umask(shared_dir / "locks" / "x.lock", "root's run")
    pid = os.fork()
    if pid == 0:  # the child: become nobody, then take the same lock
        code = 1
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            theirs = HolderLock(lock.path)
            code = 0 if theirs.try_acquire("nobody's run") else 2
        except BaseException:
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "another user could not take the lock root made"
