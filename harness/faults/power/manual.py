"""Power switched by a person on the bench, for devices no relay can reach.

Unattended runs must not hang waiting for someone: without an operator (`prompt` is None:
not an interactive run, CI, a scheduled run) every action raises `OperatorUnavailable` and
the item's verdict is "error", not "fail". A "no" from the operator is the same.

Profile example (the default when `[power]` names no relay):

    [power]
    driver = "manual"
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from harness.errors import OperatorUnavailable
from harness.timeline import Timeline

_WHAT = {"on": "switch the device ON", "off": "cut the device's power abruptly"}


class ManualPower:
    """`harness.protocols.Power` that asks a person, through `prompt` (a yes/no question), to flip it."""

    def __init__(self, prompt: Callable[[str], bool] | None, *, default_off_time: float = 0.0,
                 timeline: Timeline | None = None, name: str = "manual") -> None:
        self.prompt = prompt
        self.default_off_time = default_off_time
        self.timeline = timeline
        self.name = name

    @classmethod
    def at_terminal(cls, *, interactive: bool | None = None, ask: Callable[[str], str] = input,
                    default_off_time: float = 5.0, timeline: Timeline | None = None,
                    name: str = "manual") -> ManualPower:
        """Asks on this terminal and waits for Enter; nobody is asked when stdin is not a tty."""
        if interactive is None:
            interactive = sys.stdin.isatty()

        def press_enter(question: str) -> bool:
            try:
                ask(f"{question} (press Enter) ")
            except EOFError:
                return False
            return True

        return cls(press_enter if interactive else None, default_off_time=default_off_time,
                   timeline=timeline, name=name)

    def _ask(self, state: str) -> None:
        what = _WHAT[state]
        if self.prompt is None:
            raise OperatorUnavailable(f"power: someone must {what} (run with --c2c-interactive)")
        if not self.prompt(f"Please {what}, then confirm."):
            raise OperatorUnavailable(f"power: operator did not {what}")
        if self.timeline is not None:
            self.timeline.record("power", self.name, "flip", state=state)

    def on(self) -> None:
        self._ask("on")

    def off(self) -> None:
        self._ask("off")

    def cycle(self, off_time: float | None = None) -> None:
        """Off, then on: the person decides how long it stays off; `default_off_time` is only
        a pause before the second question (`off_time` is not a person's to keep)."""
        self.off()
        if self.default_off_time > 0:
            time.sleep(self.default_off_time)
        self.on()

    def is_on(self) -> bool | None:
        return None
