"""Network faults: a named link profile, the link going down, the path switching."""

from __future__ import annotations

from functools import partial

from harness.faults.network.profiles import PROFILES
from harness.faults.vocabulary.language import Fault, StartFn, StopFn, register, until_stopped
from harness.faults.vocabulary.targets import FaultTargets


def _profile(name: str) -> StartFn:
    def start(t: FaultTargets, f: Fault) -> StopFn:
        network = t.network_for(f)
        return until_stopped(partial(network.apply_profile, name), network.clear)

    return start


for _name in PROFILES:
    register("network", _name)(_profile(_name))


@register("network", "link-down")
def _link_down(t: FaultTargets, f: Fault) -> StopFn:
    network = t.network_for(f)
    return until_stopped(network.link_down, network.link_up)


@register("network", "switch-path")
def _switch_path(t: FaultTargets, f: Fault) -> None:
    t.network_for(f).switch_path()


@register("network", "clear")
def _network_clear(t: FaultTargets, f: Fault) -> None:
    t.network_for(f).clear()
