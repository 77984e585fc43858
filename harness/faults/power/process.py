"""Power for software devices: the device is a process group, a power cut is SIGKILL.

`on()` starts the command in a new session (its own process group) so everything it spawns
can be cut at once; `off()` SIGKILLs the whole group — never a polite shutdown, because a
real power cut gives the device no chance to flush — and waits until no live member is
left. Group membership is read from /proc, ignoring zombies, because PID 1 in a container
may never reap orphaned grandchildren.

`ProcessGroupPower` is what a software device profile gets: `ProcessPower` plus the files
written before each boot ([launch.files]), the bench's socket drop after a cut, and flips
on the fault timeline.

Profile example (fixtures/devices/reference.toml; needs a [launch] command):

    [power]
    driver = "process"
    off_time = 0.5        # seconds the process group stays dead on a cycle
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from harness.children import spawn
from harness.errors import ConfigError, FaultInjectionError
from harness.timeline import Timeline

KILL_TIMEOUT = 10.0


def live_group_members(pgid: int) -> list[int]:
    """PIDs in process group `pgid` that are not zombies.

    A group with no process at all (not even a zombie) is known from one signal 0, without
    reading every /proc/PID/stat: the power state is polled often, and that scan was ~2 % of a
    bench worker's CPU.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    except PermissionError:
        pass  # someone else's group (a device run as another user): it exists; the scan decides
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) >= 3 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def kill_group(pgid: int, timeout: float = KILL_TIMEOUT) -> None:
    """SIGKILL every process in the group and wait until none is alive."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while live_group_members(pgid):
        if time.monotonic() > deadline:
            raise FaultInjectionError(f"process group {pgid} survived SIGKILL for {timeout:.0f}s")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)  # members forked after the first kill
        time.sleep(0.01)


class ProcessPower:
    """`harness.protocols.Power` for a device that is a command on this machine."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str] | None = None,
                 cwd: Path | None = None, log_path: Path | None = None, *,
                 default_off_time: float = 1.0) -> None:
        if not command:
            raise ConfigError("ProcessPower needs a command to run")
        self.command = list(command)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.log_path = log_path
        self.default_off_time = default_off_time
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """PID of the group leader while powered."""
        return self._proc.pid if self._proc is not None else None

    def on(self) -> None:
        if self.is_on():
            return
        self._reap()
        stdout: IO[bytes] | int = subprocess.DEVNULL
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
            stdout = self._log
        try:
            self._proc = spawn(self.command, env=self.env, cwd=self.cwd,
                               stdin=subprocess.DEVNULL, stdout=stdout,
                               stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            self._close_log()
            raise FaultInjectionError(f"cannot start device command {self.command[0]!r}: {exc}") from None

    def off(self) -> None:
        proc = self._proc
        if proc is None:
            return
        kill_group(proc.pid)  # start_new_session: pgid == leader pid
        self._reap()

    def cycle(self, off_time: float | None = None) -> None:
        self.off()
        time.sleep(self.default_off_time if off_time is None else off_time)
        self.on()

    def is_on(self) -> bool:
        proc = self._proc
        if proc is None:
            return False
        # a running leader says it at once; once it has exited, any member left keeps the power on
        return proc.poll() is None or bool(live_group_members(proc.pid))

    def exit_code(self) -> int | None:
        """The leader's exit code if it has exited (without reaping the group); None otherwise."""
        return self._proc.poll() if self._proc is not None else None

    def _reap(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=KILL_TIMEOUT)
            self._proc = None
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class ProcessGroupPower:
    """A device process whose supply is its process group: `off` is SIGKILL, never a polite stop.

    Wraps `ProcessPower` and adds what a profile needs: files written before each boot
    ([launch.files]) and power flips on the fault timeline.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        console: Path,
        timeline: Timeline | None = None,
        off_time: float = 0.5,
        before_on: Callable[[], None] | None = None,
        after_off: Callable[[], None] | None = None,
    ) -> None:
        self.console = console
        self.timeline = timeline
        self.before_on = before_on
        self.after_off = after_off
        self._inner = ProcessPower(list(argv), env={**os.environ, **dict(env or {})}, cwd=cwd,
                                   log_path=console, default_off_time=off_time)

    @property
    def pid(self) -> int | None:
        return self._inner.pid

    def on(self) -> None:
        if self.is_on():
            return
        if self.before_on:
            self.before_on()
        self._inner.on()
        if self.timeline:
            self.timeline.record("power", "device", "flip", state="on", pid=self._inner.pid)

    def off(self) -> None:
        pid = self._inner.pid
        self._inner.off()
        if self.after_off and pid is not None:
            # SIGKILL leaves the kernel alive, flushing the dead device's socket buffers (MBs
            # of a part) to the cloud; a real power cut loses them. `after_off` drops them.
            self.after_off()
        if self.timeline and pid is not None:
            self.timeline.record("power", "device", "flip", state="off", pid=pid)

    def cycle(self, off_time: float | None = None) -> None:
        if self.timeline:
            with self.timeline.window("power", "cut"):
                self._cycle(off_time)
        else:
            self._cycle(off_time)

    def _cycle(self, off_time: float | None) -> None:
        self.off()
        wait = self._inner.default_off_time if off_time is None else off_time
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:  # the supply stays off for off_time: a real-time wait
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        self.on()

    def is_on(self) -> bool | None:
        return bool(self._inner.is_on())

    def exit_code(self) -> int | None:
        """The group leader's exit code once it died on its own; None while it runs."""
        return self._inner.exit_code()
