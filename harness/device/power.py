"""Power drivers a profile can name: process (SIGKILL of the process group), relay, manual.

`power_for(profile, ...)` picks the driver. The process driver here is the bench's own
minimal one (spawn in a new session, `off` = SIGKILL to the whole group, the console
captured to a log file); when harness.faults.power provides ProcessPower/RelayPower the
relay driver uses it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from harness.errors import FaultInjectionError, OperatorUnavailable
from harness.faults.power.process import ProcessPower
from harness.protocols import Power
from harness.timeline import Timeline


class ProcessGroupPower:
    """A device process whose supply is its process group: `off` is SIGKILL, never a polite stop.

    Wraps harness.faults.power.process.ProcessPower and adds what a profile needs: files
    written before each boot ([launch.files]) and power flips on the fault timeline.
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
        proc = getattr(self._inner, "_proc", None)
        return proc.poll() if proc is not None else None


class ManualPower:
    """A person switches the supply; without an interactive run this is OperatorUnavailable."""

    def __init__(self, prompt: Callable[[str], bool] | None) -> None:
        self.prompt = prompt

    def _ask(self, what: str) -> None:
        if self.prompt is None:
            raise OperatorUnavailable(f"power: someone must {what} (run with --c2c-interactive)")
        if not self.prompt(f"Please {what}, then confirm."):
            raise OperatorUnavailable(f"power: operator did not {what}")

    def on(self) -> None:
        self._ask("switch the device ON")

    def off(self) -> None:
        self._ask("cut the device's power abruptly")

    def cycle(self, off_time: float | None = None) -> None:
        self.off()
        self.on()

    def is_on(self) -> bool | None:
        return None


def relay_power(port: str, channel: int, board: str | None, timeline: Timeline | None,
                off_time: float = 2.0) -> Power:
    """RelayPower on one channel of a relay board (harness.faults.power), opened by board name."""
    try:
        from harness.faults.power.relay import RelayPower, open_board
    except ImportError as exc:  # pragma: no cover - depends on the colleague's module
        raise FaultInjectionError(f"power: relay driver unavailable: {exc}") from exc
    relay = open_board(board or "lcus", port, channel=channel)
    return RelayPower(relay, channel, min_off_time=off_time, timeline=timeline)
