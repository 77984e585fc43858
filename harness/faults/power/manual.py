"""Power switched by a person on the bench, for devices no relay can reach.

Unattended runs must not hang waiting for someone: when stdin is not a terminal (CI, a
scheduled run) every action raises `OperatorUnavailable` and the item's verdict is
"error", not "fail".
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from harness.errors import OperatorUnavailable
from harness.timeline import Timeline


class ManualPower:
    """Asks the operator to switch the device's power and waits for Enter."""

    def __init__(self, device_name: str = "the device", *, interactive: bool | None = None,
                 ask: Callable[[str], str] = input, default_off_time: float = 5.0,
                 timeline: Timeline | None = None) -> None:
        self.device_name = device_name
        self.interactive = sys.stdin.isatty() if interactive is None else interactive
        self.ask = ask
        self.default_off_time = default_off_time
        self.timeline = timeline

    def _prompt(self, instruction: str, state: str) -> None:
        if not self.interactive:
            raise OperatorUnavailable(
                f"power for {self.device_name} is switched by hand and no operator is "
                f"available (not an interactive run): {instruction}")
        try:
            self.ask(f"{instruction}, then press Enter: ")
        except EOFError:
            raise OperatorUnavailable(f"no operator answered: {instruction}") from None
        if self.timeline is not None:
            self.timeline.record("power", "manual", "flip", state=state, device=self.device_name)

    def on(self) -> None:
        self._prompt(f"Switch ON the power of {self.device_name}", "on")

    def off(self) -> None:
        self._prompt(f"Cut the power of {self.device_name} (pull the plug or battery)", "off")

    def cycle(self, off_time: float | None = None) -> None:
        self.off()
        time.sleep(self.default_off_time if off_time is None else off_time)
        self.on()

    def is_on(self) -> bool | None:
        return None
