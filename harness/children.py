"""Child processes that end with the bench process that started them.

Emulators, devices, forwarders and browsers run in sessions of their own: a power cut kills a
device's process group, and a Ctrl-C reaches the bench, which tears them down in order. A bench
process killed outright (a CI job's SIGTERM, a SIGKILL, `kill` of a stuck run) never tears
down, and its children used to run on: ports held, devices still uploading, CPU taken from the
next run. Linux's parent-death signal ends each child with its parent instead; `setpriv`
(util-linux) sets it in the child just before the command's own exec, so no Python runs
between fork and exec.

The kernel sends that signal when the *thread* that forked the child ends, not the process.
Every spawn therefore runs on one long-lived thread: a device started from a short-lived thread
(a chaos lane, a pool worker) lives as long as the bench process, not as long as that thread.

    proc = spawn(["python", "-m", "reference_device", "run", "--config", cfg],
                 start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
"""

from __future__ import annotations

import ctypes
import os
import queue
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any


def _guard() -> list[str]:
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


GUARD = _guard()
"""The argv prefix that binds a child to its parent; empty where util-linux's setpriv is missing."""


class _SpawnThread:
    """One daemon thread per process that runs every Popen (the children's parent thread)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="c2c-spawn", daemon=True).start()

    def _serve(self) -> None:
        while True:
            job, done = self._jobs.get()
            if not done.set_running_or_notify_cancel():
                continue
            try:
                done.set_result(job())
            except BaseException as exc:  # handed to the caller, whatever it is
                done.set_exception(exc)

    def run[T](self, job: Callable[[], T]) -> T:
        done: Future[T] = Future()
        self._jobs.put((job, done))
        return done.result()


_spawner: _SpawnThread | None = None
_spawner_lock = threading.Lock()


def _spawn_thread() -> _SpawnThread:
    global _spawner
    with _spawner_lock:
        if _spawner is None or _spawner.pid != os.getpid():  # a forked child has no such thread
            _spawner = _SpawnThread()
        return _spawner


def _check_command(argv0: str, env: Mapping[str, str] | None, cwd: str | os.PathLike[str] | None) -> None:
    """Raise what Popen raises for a command that cannot run: once `setpriv` runs it, a missing
    command would only show as exit status 127, and callers name the command from the OSError."""
    if os.sep in argv0:
        path = Path(cwd or ".") / argv0
        if not path.is_file():
            raise FileNotFoundError(2, "No such file or directory", argv0)
        if not os.access(path, os.X_OK):
            raise PermissionError(13, "Permission denied", argv0)
        return
    search = (env if env is not None else os.environ).get("PATH", os.defpath)
    if shutil.which(argv0, path=search) is None:
        raise FileNotFoundError(2, "No such file or directory", argv0)


def spawn(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """subprocess.Popen(argv, **kwargs) whose child is SIGKILLed when this process ends.

    The returned Popen is the command's own process (setpriv execs it, so pid, process group and
    exit status are the command's). Raises OSError as Popen does for a command that cannot run.
    Where setpriv is missing the child is started plainly (it then outlives a killed bench).
    """
    argv = [os.fspath(a) for a in argv]
    if not argv:
        raise ValueError("spawn: empty argv")
    if GUARD and not kwargs.get("shell"):
        _check_command(argv[0], kwargs.get("env"), kwargs.get("cwd"))
        argv = [*GUARD, *argv]
    return _spawn_thread().run(lambda: subprocess.Popen(argv, **kwargs))


def end_with_parent() -> bool:
    """Bind this process to the one that started it: SIGKILL when that one ends.

    For processes a library starts, not `spawn`: pytest-xdist's workers (started by execnet). A
    killed run's pytest left them running, each with its emulator and devices (which `spawn`
    bound to the worker, not to pytest). Set from inside, so a parent that died before the call
    is caught by comparing the parent pid before and after. False where prctl is unavailable.
    """
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # orphaned already: the signal will never come
        os.kill(os.getpid(), signal.SIGKILL)
    return True
