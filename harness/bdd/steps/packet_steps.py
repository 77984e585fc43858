"""Steps on a packet-level link the scenario builds for itself (C2C-NETW-01 on a cellular uplink,
C2C-TNET-02..06 on their field links).

A lossy long-RTT cellular link separates good upload behaviour from bad only where the device's
own kernel TCP meets it (harness.faults.network.packet): one loss-based connection stays near
the Mathis bound, several in parallel approach the capacity. So the scenario puts a software
device in a network namespace behind a recorded LTE uplink whatever backend the run uses:

- a run on `--network packet[:PROFILE]` already has its device there: the profile is applied;
- otherwise the scenario gets its own session parts for its duration (`PacketScenario`): the
  same emulator, project, media kit and timeline, a PacketNetwork, and a second instance of the
  device (its own state dir and client id) launched inside the namespace and paired; both are
  torn down when the scenario ends, and the run's own device and link carry on untouched;
- a device the bench does not launch itself (hardware, relay power) cannot be put in a
  namespace: not applicable, with that cause; a bench that cannot make packet links (no root,
  no /dev/net/tun, no pyroute2) is the bench's error, never a pass.

The verdict is relative to the link: the file's bytes over its upload window in the emulator's
ledger (asset created .. complete) against the capacity the trace offered over the same seconds.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pytest_bdd import given, parsers, then

from harness.bdd.bench import Bench
from harness.bdd.session import SessionBench
from harness.bdd.steps.common import cpu_wait, refuse_on_starved_bench
from harness.bdd.steps.device_steps import _paired_device
from harness.device.profile import DeviceProfile
from harness.errors import BenchFailure, ConfigError
from harness.faults.network.packet.link import packet_links_available
from harness.faults.network.packet.network import PacketNetwork, split_backend
from harness.faults.network.packet.profiles import LINK_PROFILES, get_link_profile
from harness.items.verdicts import NOT_APPLICABLE_SKIP
from harness.protocols import ClientIdentity

ITEM = "C2C-NETW-01"
MEASUREMENT = "link_utilization"
PLOT_NAME = "throughput vs link capacity"


@dataclass(frozen=True)
class UploadWindow:
    """The captured files' upload in the emulator's ledger: first asset created to last complete."""

    start: float
    end: float
    nbytes: int

    @property
    def seconds(self) -> float:
        return max(1e-6, self.end - self.start)

    @property
    def mbps(self) -> float:
        return self.nbytes * 8 / 1e6 / self.seconds


def upload_window(rows: list[dict[str, Any]], names: set[str]) -> UploadWindow | None:
    """The window of `names` in ledger rows (GET /_bench/v1/ledger), None unless every one of
    them is complete. A file uploaded under several assets (a re-created asset) counts from its
    first asset's creation: the time lost on the abandoned one is the device's."""
    mine = [r for r in rows if r.get("name") in names and r.get("created_at") is not None]
    done = {str(r["name"]): r for r in mine if r.get("state") == "complete" and r.get("completed_at") is not None}
    if not names or set(done) != names:
        return None
    return UploadWindow(start=min(float(r["created_at"]) for r in mine),
                        end=max(float(r["completed_at"]) for r in done.values()),
                        nbytes=sum(int(r.get("filesize") or 0) for r in done.values()))


class PacketScenario:
    """Session parts for one scenario on its own packet-level link (see the module docstring)."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.original = bench.session
        run = self.original
        self.session = SessionBench(
            profile=run.profile, workdir=run.workdir / f"packet-link-{time.monotonic_ns()}", seed=run.seed,
            prompt=run.prompt, timeline=run.timeline, checklist=run.checklist, network_profile="packet",
            _cloud=run.cloud, _media=run.media, project=run.ensure_project(), journal_cursor=run.journal_cursor,
            captured_names=run.captured_names,  # the same set: later scenarios excuse these files
        )

    def enter(self) -> None:
        """Steps of this scenario see the packet session from now on."""
        self.bench.session = self.session

    def close(self) -> None:
        """Back to the run's session; revoke this scenario's device copy in the cloud (a project
        keeps no stray second device), then stop it, its namespace and its link."""
        launched = self.session.started_device()
        copy = self.bench.cloud_device() if isinstance(launched, ClientIdentity) else None
        self.bench.session = self.original
        if copy is not None:
            with contextlib.suppress(Exception):  # tidying up never changes the scenario's verdict
                self.original.cloud.revoke_device(str(copy["id"]))
        self.session.close()


def why_not_packet(profile: DeviceProfile) -> str | None:
    """Why this device cannot be put behind a packet-level link (None: it can)."""
    launch, power = profile.launch, profile.power.driver
    if launch is None or power != "process":
        return (f"a packet-level link runs the device in a network namespace the bench creates; profile "
                f"{profile.name} is a device the bench does not launch as a process "
                f"(launch: {'yes' if launch else 'none'}, power driver {power!r})")
    return None


@given(parsers.parse('a paired device behind the packet-level network profile "{name}"'))
def _behind_packet_link(bench: Bench, request: pytest.FixtureRequest, name: str) -> None:
    """The device, paired on a clean link, then its uplink shaped by the packet profile `name`."""
    if get_link_profile(name) is None:
        raise ConfigError(f"{name!r} is not a packet-level profile (known: {', '.join(LINK_PROFILES)})")
    if not split_backend(bench.session.network_profile)[0]:
        reason = why_not_packet(bench.profile)
        if reason:
            pytest.skip(f"{NOT_APPLICABLE_SKIP}{reason}")
        unavailable = packet_links_available()
        if unavailable:
            raise BenchFailure(f"the bench cannot build the packet-level link this scenario runs on: {unavailable}")
        _own_packet_link(bench, request)
    _paired_device(bench)  # a new instance pairs; a --network packet run's device may already be
    bench.network.apply_profile(name)
    bench.state.network_profile = name


@given(parsers.parse('a paired device on the "{name}" link, packet-level where the bench can build it'))
def _on_field_link(bench: Bench, request: pytest.FixtureRequest, name: str) -> None:
    """The device on the network profile `name` (C2C-TNET-*): behind a packet-level link, so its
    own kernel TCP meets the trace, whenever the profile has one and the bench can put the device
    in a namespace; else on the fault proxy's shaping, and the scenario says which and why
    (a hardware device meets a real router or the proxy; a profile like "hardline" has no trace).
    Either way the certificate names the link per item (timeline -> record)."""
    packet = get_link_profile(name) is not None
    if packet and not split_backend(bench.session.network_profile)[0]:
        reason = why_not_packet(bench.profile) or packet_links_available()
        if reason:
            packet = False
            bench.exercised(f"the {name!r} profile ran on the fault proxy's shaping, not a packet-level link: "
                            f"{reason}")
        else:
            _own_packet_link(bench, request)
    _paired_device(bench)
    bench.network.apply_profile(name)
    bench.state.network_profile = name
    if packet:
        request.addfinalizer(lambda: _plot_captures(bench))  # LIFO: before the scenario's link goes


def _own_packet_link(bench: Bench, request: pytest.FixtureRequest) -> None:
    """This scenario's own packet-level link and device instance, torn down when it ends."""
    scenario = PacketScenario(bench)
    request.addfinalizer(scenario.close)  # runs before the bench fixture's own cleanup
    scenario.enter()


def _captures_window(bench: Bench) -> UploadWindow | None:
    """The ledger's upload window of the scenario's captures, None until every one is complete."""
    return upload_window(bench.cloud.ledger(bench.cloud_device_id()), {c.name for c in bench.state.captures})


def _plot_captures(bench: Bench) -> None:
    """Attach the captures' throughput against the trace's capacity (evidence only)."""
    network = bench.network
    if not isinstance(network, PacketNetwork):
        return
    with contextlib.suppress(Exception):
        window = _captures_window(bench)
        offered = network.offered_mbps(window.start, window.end) if window is not None else None
        if window is not None and offered:
            _attach_plot(bench, network, window, f"{window.mbps:.2f} of {offered:.2f} Mbit/s offered")


@then(parsers.parse("the upload throughput is at least {percent:d} % of the capacity the link offered"))
def _share_of_capacity(bench: Bench, percent: int) -> None:
    """Bytes over the ledger's upload window against the capacity the trace offered meanwhile."""
    network = bench.network
    if not isinstance(network, PacketNetwork):
        raise BenchFailure("the link is not a packet-level link: it knows no capacity it offered")
    limit = bench.session.checklist[ITEM].measurement(MEASUREMENT).low
    if not isinstance(limit, int | float) or abs(float(limit) * 100 - percent) > 1e-6:
        raise ConfigError(f"the scenario says {percent} % but the checklist's {MEASUREMENT} limit is {limit}")
    window = _captures_window(bench)
    assert window is not None, f"not every captured file is complete in the cloud: {sorted(c.name for c in bench.state.captures)}"
    offered = network.offered_mbps(window.start, window.end)
    if not offered:
        raise BenchFailure("the packet-level link offered no capacity over the upload window (no profile active)")
    ratio = window.mbps / offered
    starved = bench.state.cpu_mark.share_since()
    passed = bench.measure(ITEM, MEASUREMENT, round(ratio, 3), device_Mbps=round(window.mbps, 2),
                           offered_Mbps=round(offered, 2), window_s=round(window.seconds, 2),
                           file_bytes=window.nbytes, **cpu_wait(starved))
    _attach_plot(bench, network, window, f"{window.mbps:.2f} of {offered:.2f} Mbit/s offered = {ratio:.0%}")
    if not passed:  # the forwarder and the device share the bench's CPUs: a starved bench is no verdict
        refuse_on_starved_bench(starved, f"{ratio:.0%} of the capacity offered, below {percent} %")
    assert passed, (f"{window.mbps:.2f} Mbit/s over the upload window ({window.nbytes} bytes in "
                    f"{window.seconds:.1f} s) is {ratio:.0%} of the {offered:.2f} Mbit/s the link offered "
                    f"meanwhile, below {percent} %")


def _attach_plot(bench: Bench, network: PacketNetwork, window: UploadWindow, note: str) -> None:
    """The throughput-vs-capacity SVG: an Allure attachment of the scenario, and a file in the
    run's work folder (evidence, never a verdict: a plot that cannot be drawn changes nothing)."""
    with contextlib.suppress(Exception):
        plot = network.capacity_plot(window.start, window.end, note=note)
        if plot is None:
            return
        items = ", ".join(bench.state.items) or ITEM
        svg = plot.svg(f"{items}: upload throughput vs the capacity of {plot.profile}")
        path = Path(bench.session.workdir) / f"throughput-vs-capacity-{int(window.start)}.svg"
        path.write_text(svg, encoding="utf-8")
        import allure
        from allure_commons.types import AttachmentType

        allure.attach(svg, name=PLOT_NAME, attachment_type=AttachmentType.SVG)
