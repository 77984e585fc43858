"""`PacketNetwork`: the Network protocol on a packet-level link, for a device in a namespace.

    device (namespace)  --TUN, shaped by the forwarder-->  fault proxy on the host side  --> emulator
        https://localhost:<proxy port>              (listens on the link's host address)

The device's own kernel TCP crosses the shaped link (trace, delay, queue, loss, roaming gaps);
the fault proxy (harness.faults.network.link.NetworkLink) sits after the link on the host, so
every fault the proxy knows (link down = refused, path switch, dropped connections, toxics,
reroute to an interceptor, the plain-HTTP trap) means the same on both backends. A profile of
harness.faults.network.packet.profiles shapes the link; any other (hardline, isp-outage,
blackout, a rate limit) is the proxy's, on an unshaped path: a veth pair the kernel forwards,
beside the TUN pair (the Python forwarder would cap hardline below its 50 Mbps).

`localhost` resolves to the link's host address inside the namespace (the emulator's
certificate names localhost); the device's status port is bridged out to the host's loopback
and the plain-HTTP trap's port in (harness.faults.network.packet.bridge).
"""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import urlsplit

from harness.errors import FaultInjectionError
from harness.faults.network.link import LAYER, NetworkLink
from harness.faults.network.packet import bridge, netns
from harness.faults.network.packet.link import PacketLink
from harness.faults.network.packet.plot import CapacityPlot, rebin
from harness.faults.network.packet.profiles import (
    BACKEND,
    DEVICE_CONGESTION_CONTROL,
    LinkProfile,
    get_link_profile,
    passthrough,
)
from harness.faults.network.profiles import NetworkProfile, Phase, ProfileScheduler
from harness.timeline import Timeline

PACKET_PREFIX = "packet:"  # `--network packet:cellular`: the packet backend for the whole run


def split_backend(profile: str | None) -> tuple[bool, str | None]:
    """(packet backend asked, the profile name without the prefix); `packet` alone asks for the
    backend with no run-wide profile (each scenario's own profiles then run on packet links)."""
    if profile == PACKET_PREFIX.rstrip(":"):
        return True, None
    if profile and profile.startswith(PACKET_PREFIX):
        return True, profile[len(PACKET_PREFIX):] or None
    return False, profile


class PacketNetwork:
    """A PacketLink with the fault proxy on its host side; implements harness.protocols.Network."""

    def __init__(self, upstream: str, *, timeline: Timeline | None = None, seed: int = 1) -> None:
        self.timeline = timeline if timeline is not None else Timeline()
        self.link = PacketLink(passthrough())
        self.link.open()
        self._bridges: list[bridge.PortBridge] = []
        self._bridged: set[tuple[str, int]] = set()
        self._lock = threading.RLock()
        self._profile: LinkProfile | None = None
        self._scheduler: ProfileScheduler | None = None
        self._phase: Phase | None = None
        self._generation = 0
        self._applied_at = 0.0  # wall clock (the journal's) and monotonic (the forwarder's series)
        self._applied_mono = 0.0
        try:
            self.proxy = NetworkLink(upstream, timeline=self.timeline, seed=seed,
                                     listen=f"{self.link.host_address}:0")
            netns.write_namespace_hosts(self.link.namespace, {"localhost": self.link.host_address})
            self.congestion_control = netns.set_congestion_control(self.link.namespace, DEVICE_CONGESTION_CONTROL)
            self.link.fast_path(True)
        except BaseException:
            self.link.close()
            raise
        self.timeline.record(LAYER, "packet-link", "mark", backend=BACKEND, namespace=self.link.namespace,
                             host_address=self.link.host_address, congestion_control=self.congestion_control)

    # --- what a software device needs (harness.protocols.DeviceNamespace) -------------------
    def exec_prefix(self) -> list[str]:
        """Prefix of a device's argv: it runs in the link's namespace, same pid, same group."""
        return self.link.namespace_exec_prefix()

    def bridge_local_port(self, port: int) -> None:
        """The device's 127.0.0.1:`port` (status page, local API) reachable at the host's.
        Once per port: a fresh device in the same namespace reuses the bridge."""
        if ("into", port) not in self._bridged:
            self._bridges.append(bridge.into_namespace(self.link.namespace, port))
            self._bridged.add(("into", port))

    def bridge_host_url(self, url: str) -> None:
        """A host service on 127.0.0.1 given to the device (the plain-HTTP trap) reachable from it.
        Once per port: a fresh device in the same namespace reuses the bridge."""
        parts = urlsplit(url)
        if parts.hostname in ("127.0.0.1", "localhost") and parts.port and ("out", parts.port) not in self._bridged:
            self._bridges.append(bridge.out_of_namespace(self.link.namespace, parts.port))
            self._bridged.add(("out", parts.port))

    # --- Network protocol ---------------------------------------------------------------
    @property
    def device_api_url(self) -> str:
        port = self.proxy.listen.rpartition(":")[2]
        return f"https://localhost:{port}"

    @property
    def profile(self) -> str | None:
        return self._profile.name if self._profile is not None else self.proxy.profile

    def apply_profile(self, name: str | NetworkProfile) -> None:
        """A packet profile shapes the link; any other is the proxy's on an unshaped link."""
        proxy_profile: str | NetworkProfile = name
        found: LinkProfile | None = None
        if isinstance(name, str):
            bare = split_backend(name)[1]
            if bare is None:  # `packet` alone: the backend, no profile
                self.clear()
                return
            proxy_profile = bare
            found = get_link_profile(bare)
        with self._lock:
            self._stop_profile()
            if found is None:
                self._unshaped()
                self.proxy.apply_profile(proxy_profile)
                return
            self.proxy.clear()
            self.link.apply(found.spec())
            self.link.fast_path(False)
            self._applied_at, self._applied_mono = time.time(), time.monotonic()
            self._profile = found
            self.timeline.record(LAYER, f"profile:{found.name}", "start", **self.describe(found))
            if found.phases:
                self._generation += 1
                generation = self._generation
                plan = NetworkProfile(found.name, found.summary, phases=found.phases, repeat=found.repeat)
                self._scheduler = ProfileScheduler(plan, lambda phase: self._enter_phase(phase, generation),
                                                   self._phase_failed).start()

    def _unshaped(self) -> None:
        """No packet profile: the kernel-forwarded veth path (the forwarder would cost CPU and cap
        the rate), the forwarder reset to its passthrough spec for when it carries traffic again."""
        self.link.apply(passthrough())
        self.link.fast_path(True)

    def describe(self, profile: LinkProfile) -> dict[str, Any]:
        """Backend, trace and parameters as the timeline and the certificate carry them."""
        return profile.describe() | {"congestion_control": self.congestion_control,
                                     "namespace": self.link.namespace}

    def offered_mbps(self, start: float, end: float) -> float | None:
        """Uplink capacity the active packet profile offered between two wall-clock times (the
        journal's), for a throughput verdict relative to the link; None on an unshaped link."""
        with self._lock:
            profile, applied = self._profile, self._applied_at
        if profile is None:
            return None
        return profile.offered_mbps(start - applied, end - applied)

    def capacity_plot(self, start: float, end: float, *, bin_s: float = 1.0, note: str = "") -> CapacityPlot | None:
        """The active packet profile's capacity and the goodput the link delivered, per `bin_s`
        since the profile was applied, with [start, end] (wall clock, the journal's) as the
        window; None on an unshaped link."""
        with self._lock:
            profile, applied, applied_mono = self._profile, self._applied_at, self._applied_mono
        if profile is None:
            return None
        upto = max(1.0, min(time.time() - applied, end - applied + 5.0))
        series = self.series(applied_mono)
        goodput = rebin(series.get("up") or [], applied_mono, bin_s, upto=upto)
        return CapacityPlot(profile.name, "+".join(profile.traces) or None, profile.capacity_series(upto, bin_s),
                            goodput, (start - applied, end - applied), note)

    def link_down(self) -> None:
        self.proxy.link_down()

    def link_up(self) -> None:
        self.proxy.link_up()

    def switch_path(self) -> None:
        self.proxy.switch_path()

    def drop_connections(self) -> None:
        self.proxy.drop_connections()

    def limit_rate(self, mbps: int) -> str:
        """harness.protocols.RateLimitedLink: the proxy's per-connection rate, link unshaped."""
        with self._lock:
            self._stop_profile()
            self._unshaped()
        return self.proxy.limit_rate(mbps)

    def reroute(self, upstream: str | None = None) -> None:
        self.proxy.reroute(upstream)

    def plain_http_attempts(self) -> list[dict[str, Any]]:
        return self.proxy.plain_http_attempts()

    def series(self, since: float = 0.0) -> dict[str, Any]:
        """Payload bytes the link delivered per 100 ms, per direction (for throughput plots)."""
        return self.link.series(since)

    def stats(self) -> dict[str, Any]:
        return self.link.stats()

    def clear(self) -> None:
        """Unshaped link, no proxy toxics, link up; raises afterwards if a phase change had failed."""
        with self._lock:
            failures = self._stop_profile()
            self._unshaped()
            self.link.up()
        self.proxy.clear()
        if failures:
            raise FaultInjectionError(f"packet profile phase change failed: {failures[0]}")

    def close(self) -> None:
        """Proxy, bridges, then the link (namespace, its processes, TUN devices, forwarder)."""
        try:
            with self._lock:
                self._stop_profile()
            self.proxy.close()
        finally:
            for port_bridge in self._bridges:
                port_bridge.close()
            self._bridges.clear()
            self._bridged.clear()
            self.link.close()

    def __enter__(self) -> PacketNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- timed phases (mesh-roam's gaps) ----------------------------------------------------
    def _stop_profile(self) -> list[BaseException]:
        scheduler, self._scheduler = self._scheduler, None
        self._generation += 1
        if scheduler is not None:
            scheduler.stop(join=False)
        self._leave_phase()
        if self._profile is not None:
            self.timeline.record(LAYER, f"profile:{self._profile.name}", "stop", backend=BACKEND)
            self._profile = None
        return list(scheduler.errors) if scheduler is not None else []

    def _leave_phase(self) -> None:
        phase, self._phase = self._phase, None
        if phase is None:
            return
        if not phase.enabled:
            self.link.up()
        self.timeline.record(LAYER, f"phase:{phase.name}", "stop", backend=BACKEND)

    def _enter_phase(self, phase: Phase | None, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return
            self._leave_phase()
            if phase is None:
                return
            if not phase.enabled:
                self.link.down()
            self._phase = phase
            self.timeline.record(LAYER, f"phase:{phase.name}", "start", backend=BACKEND, seconds=phase.seconds,
                                 enabled=phase.enabled)

    def _phase_failed(self, exc: BaseException) -> None:
        self.timeline.record(LAYER, "profile-error", "mark", backend=BACKEND, error=str(exc))
