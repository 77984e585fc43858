"""C2C-SOCK-01: real-time status through a long idle period, judged from THIS device's beats.

The beats are what the emulator recorded for the device under test (every Phoenix heartbeat
on its status sockets, each socket it opened, each answered POST /v2/devices/heartbeat),
inside the idle window the When-step observed in real time. The longest gap includes the
stretch from the window's start to the first beat and from the last beat to its end, so a
device that beats once, or never, shows the whole silence.
"""

from __future__ import annotations

import itertools

from pytest_bdd import parsers, then

from harness.bdd.bench import Bench
from harness.errors import ConfigError

ITEM = "C2C-SOCK-01"


def longest_gap(beats: list[float], start: float, end: float) -> float:
    """Longest silence in [start, end] given beat times (those outside the window are ignored)."""
    inside = sorted(t for t in beats if start <= t <= end)
    edges = [start, *inside, end]
    return max(b - a for a, b in itertools.pairwise(edges))


@then(parsers.parse("the device kept real-time status with no gap over {limit:d} seconds"))
def _status_kept(bench: Bench, limit: int) -> None:
    """Longest gap between this device's status beats within the idle window (measured)."""
    window = bench.state.idle_window
    if not window:
        raise ConfigError("the scenario observed no idle window (the When-step did not run)")
    start, end = float(window["start"]), float(window["end"])
    beats = [float(b["t"]) for b in window["beats"]]
    gap = round(longest_gap(beats, start, end), 1)
    inside = [t for t in beats if start <= t <= end]
    bench.measure(ITEM, "idle_window_s", round(end - start, 1))
    bench.measure(ITEM, "status_beats", len(inside))
    ok = bench.measure(ITEM, "heartbeat_gap_s", gap)
    assert ok and gap <= limit, (
        f"heartbeat_gap_s={gap} (limit <= {limit} s): the device's real-time status went silent within the "
        f"{end - start:.0f} s idle window ({len(inside)} beat(s) seen)")
