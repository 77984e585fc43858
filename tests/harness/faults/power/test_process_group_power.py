"""ProcessGroupPower: a power cut is SIGKILL of the group, then the bench drops its sockets."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.faults.power.process import ProcessGroupPower
from harness.timeline import Timeline


def test_off_kills_the_group_then_runs_after_off(tmp_path: Path) -> None:
    seen: list[bool | None] = []
    power = ProcessGroupPower(
        [sys.executable, "-c", "import signal; print('up', flush=True); signal.pause()"],
        console=tmp_path / "console.log", timeline=Timeline(), off_time=0.0,
    )
    power.after_off = lambda: seen.append(power.is_on())
    power.on()
    try:
        assert power.is_on()
        power.off()
        assert seen == [False], "after_off runs once, after the process is gone"
        power.off()  # already off: nothing was cut, nothing to drop
        assert seen == [False]
        flips = [e.details["state"] for e in power.timeline.events if e.name == "device"]  # type: ignore[union-attr]
        assert flips == ["on", "off"]
    finally:
        power.off()
