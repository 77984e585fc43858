"""Power faults: the relay cut until stopped, a cycle, or a plain on/off."""

from __future__ import annotations

from harness.faults.vocabulary.language import Fault, StopFn, register, until_stopped
from harness.faults.vocabulary.targets import FaultTargets


@register("power", "cut")
def _power_cut(t: FaultTargets, f: Fault) -> StopFn:
    power = t.power_for(f)
    return until_stopped(power.off, power.on)


@register("power", "cycle")
def _power_cycle(t: FaultTargets, f: Fault) -> None:
    off_time = f.params.get("off_time", f.params.get("duration"))
    t.power_for(f).cycle(None if off_time is None else float(off_time))


@register("power", "on")
def _power_on(t: FaultTargets, f: Fault) -> None:
    t.power_for(f).on()


@register("power", "off")
def _power_off(t: FaultTargets, f: Fault) -> None:
    t.power_for(f).off()
