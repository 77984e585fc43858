"""When the matrix may start another mutant's certification: by how busy the machine is.

A certification mostly waits: on its device, on a link's trace, on a timeout a defect makes it
wait out. Two at a time left a third of two cores idle, mostly while both runs were in their
tails (one shard still replaying a slow link). A fixed larger number overloads the machine
when all runs are in their busy phases, and a starved bench makes its own errors. So the
matrix always keeps `least` runs going and starts more, up to `most`, while the machine's CPU
had room over the last poll and the newest run has had time to reach its busy phase.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.machine import CpuIdleMark

SPARE_CPU = 0.35
"""Start a run beyond `least` only when at least this share of the machine's CPU went unused
over the last poll (0.35 of two cores: about the 0.6 core a sharded run uses on average)."""
RAMP_S = 60.0
"""Nor within this long of the last start: a new run spends its first half minute starting
pytest and its shards' emulators and devices, and its load is not in the figure yet."""
POLL_S = 30.0
"""How often the matrix looks at the machine (and the window that figure covers)."""


@dataclass
class IdleWindow:
    """The machine's unused CPU share since the previous reading."""

    mark: CpuIdleMark = field(default_factory=CpuIdleMark.now)

    def share(self) -> float | None:
        end = CpuIdleMark.now()
        share, self.mark = self.mark.idle_until(end), end
        return share


@dataclass
class Admission:
    """Whether another run may start now (see the module docstring)."""

    least: int
    most: int
    spare: float = SPARE_CPU
    ramp_s: float = RAMP_S
    clock: Callable[[], float] = time.monotonic
    _last_start: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.least < 1 or self.most < self.least:
            raise ValueError(f"runs at once: need 1 <= least <= most, got least={self.least}, most={self.most}")

    def may_start(self, running: int, idle_share: float | None) -> bool:
        """`running` runs going, `idle_share` of the CPU unused over the last poll (None: unknown)."""
        if running < self.least:
            return True
        if running >= self.most or idle_share is None or idle_share < self.spare:
            return False
        return self._last_start is None or self.clock() - self._last_start >= self.ramp_s

    def started(self) -> None:
        self._last_start = self.clock()
