"""Sharded certification: which scenarios may run side by side, and the pytest-xdist arguments.

`c2c-certify run --workers N` runs the suite on N pytest-xdist workers. Each worker's
pytest session builds its own session bench (harness.bdd.session): its own emulator
process with its own data dir, project and ephemeral ports, its own Toxiproxy-compatible
link, media kit and device instance (state dir, watch folder, client id) under its own
`reports/work/run-*` folder. Nothing of that is shared, so scenarios spread freely
(`--dist loadgroup`) — except those that need something the whole machine has only once.
Those get one `xdist_group` each, and xdist runs a group's scenarios one after the other on
one worker (harness.bdd.sharding marks them and hands the groups to xdist's scheduler):

- `power-relay`: power cuts through a relay board (profile `[power] driver = "relay"`): one
  serial port or relay simulator socket, one device plugged into it;
- `netns`: a packet-level network profile (network namespaces, TUN devices and routes are
  root-wide state);
- `tls-interceptor`: the mitmproxy scenarios. Today each takes an ephemeral port and its own
  confdir, so this group guards nothing machine-wide yet; it keeps the three 15-second
  "saw no completed request" windows from overlapping on a loaded 2-core machine, where
  mitmproxy's certificate minting competes for the same cores.

A device without a launch command (hardware, operator) is one physical device: it cannot be
sharded (`check_shardable`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from harness.errors import ConfigError


@dataclass(frozen=True)
class Exclusive:
    """A machine-wide resource: the scenarios whose steps match `steps` hold it."""

    group: str
    steps: re.Pattern[str]
    power_drivers: frozenset[str] = frozenset()  # only with these power drivers (empty: any)


EXCLUSIVE: tuple[Exclusive, ...] = (
    Exclusive("power-relay", re.compile(r"\bpower\b", re.IGNORECASE), frozenset({"relay"})),
    Exclusive("tls-interceptor", re.compile(r"\bTLS interceptor\b")),
)
PACKET_NETWORK = re.compile(r"^(packet|netns)(:|$)")  # --network packet[:PROFILE]: namespaces, TUN, routes


def exclusive_group(steps: Iterable[str], *, power_driver: str, network_profile: str | None) -> str | None:
    """The xdist group of a scenario with these step texts, or None when it may run anywhere."""
    if network_profile and PACKET_NETWORK.match(network_profile):
        return "netns"  # the whole run is on one namespace link: every scenario holds it
    texts = list(steps)
    for rule in EXCLUSIVE:
        if rule.power_drivers and power_driver not in rule.power_drivers:
            continue
        if any(rule.steps.search(text) for text in texts):
            return rule.group
    return None


def check_shardable(workers: int, *, launchable: bool, interactive: bool) -> None:
    """Refuse a sharded run that would put one physical device or one person on N workers."""
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if workers == 1:
        return
    if not launchable:
        raise ConfigError("--workers: the profile has no launch command (one physical device); certify it with one worker")
    if interactive:
        raise ConfigError("--workers: an interactive run asks one person; certify it with one worker")


def xdist_args(workers: int) -> list[str]:
    """pytest-xdist arguments for N workers (none for a serial run)."""
    return [] if workers <= 1 else ["-n", str(workers), "--dist", "loadgroup"]
