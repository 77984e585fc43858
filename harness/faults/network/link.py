"""`NetworkLink`: the device's path to the cloud, as one proxy on a Toxiproxy server.

Implements `harness.protocols.Network`. TLS passes through untouched (the proxy is TCP), so
the device talks to `https://127.0.0.1:<proxy port>` and sees the emulator's certificate
(SAN 127.0.0.1). Every change is recorded on the timeline under layer ``network``.

    link = NetworkLink("127.0.0.1:8443", timeline=timeline)   # starts its own server
    device_url = link.device_api_url
    link.apply_profile("cellular"); ...; link.clear(); link.close()
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from harness.errors import FaultInjectionError
from harness.faults.network.client import ToxiproxyClient, ToxiproxyProcess, launch_toxiproxy
from harness.faults.network.profiles import (
    NetworkProfile,
    Phase,
    ProfileScheduler,
    ToxicSpec,
    get_profile,
    shaped,
)
from harness.faults.network.server import ToxiproxyServer
from harness.timeline import Timeline, TimelineEvent

LAYER = "network"


class NetworkLink:
    """One proxied path from the device to an upstream host:port, with named profiles."""

    def __init__(
        self,
        upstream: str,
        *,
        api_url: str | None = None,
        timeline: Timeline | None = None,
        name: str = "c2c_api",
        listen: str = "127.0.0.1:0",
        seed: int | None = None,
        prefer_real_server: bool = False,
    ) -> None:
        self.upstream = upstream
        self.name = name
        self.timeline = timeline if timeline is not None else Timeline()
        self._own_server: ToxiproxyServer | ToxiproxyProcess | None = None
        if api_url is None:  # our in-process server, or a real toxiproxy-server if asked
            self._own_server = launch_toxiproxy(prefer_real=prefer_real_server, seed=seed)
            api_url = self._own_server.api_url
        self.api = ToxiproxyClient(api_url)
        self._lock = threading.RLock()
        self._profile: NetworkProfile | None = None
        self._scheduler: ProfileScheduler | None = None
        self._phase: Phase | None = None
        self._down = False
        self._generation = 0
        try:
            info = self.api.create_proxy(name, upstream, listen)
        except FaultInjectionError:
            self.close()
            raise
        self._listen = str(info["listen"])

    # --- Network protocol ---------------------------------------------------------------
    @property
    def device_api_url(self) -> str:
        host, _, port = self._listen.rpartition(":")
        if host in ("", "[::]", "0.0.0.0"):
            host = "127.0.0.1"
        return f"https://{host}:{port}"

    @property
    def listen(self) -> str:
        return self._listen

    @property
    def profile(self) -> str | None:
        return self._profile.name if self._profile else None

    def apply_profile(self, name: str | NetworkProfile) -> None:
        """Replace whatever is active with this profile (a name from PROFILES or a profile)."""
        profile = name if isinstance(name, NetworkProfile) else get_profile(name)
        with self._lock:
            self._stop_profile()
            self._remove_toxics()
            self._set_enabled(True)
            for spec in profile.toxics:
                self._add(spec)
            if not profile.enabled:
                self._set_enabled(False)
            self._profile = profile
            self.timeline.record(
                LAYER, f"profile:{profile.name}", "start", **self._describe(profile)
            )
            if profile.phases:
                self._generation += 1
                generation = self._generation
                self._scheduler = ProfileScheduler(
                    profile, lambda phase: self._enter_phase(phase, generation), self._phase_failed
                ).start()

    def link_down(self) -> None:
        with self._lock:
            if self._down:
                return
            self._set_enabled(False)
            self._down = True
            self.timeline.record(LAYER, "link-down", "start", proxy=self.name)

    def link_up(self) -> None:
        with self._lock:
            if not self._down:
                return
            self._set_enabled(True)
            self._down = False
            self.timeline.record(LAYER, "link-down", "stop", proxy=self.name)

    def switch_path(self) -> None:
        """Drop every live connection and come straight back, like roaming to another network."""
        with self._lock:
            self.timeline.record(LAYER, "switch-path", "start", proxy=self.name)
            self._set_enabled(False)
            self._set_enabled(True)
            self.timeline.record(LAYER, "switch-path", "stop", proxy=self.name)

    def drop_connections(self) -> None:
        """Close every live connection, discarding what the proxy still held; the link stays up.

        Not a network fault, so nothing goes on the timeline: the power cut that asks for
        it is already there.
        """
        with self._lock:
            if self._down:
                return  # a disabled proxy holds no connections
            self._set_enabled(False)
            self._set_enabled(True)

    def limit_rate(self, mbps: int) -> str:
        """A fixed uplink rate per connection, 20 ms latency (harness.protocols.RateLimitedLink)."""
        profile = NetworkProfile(f"limited-{mbps}mbps", f"{mbps} Mbps up per connection / 20 ms",
                                 shaped(mbps, 100, 20))
        self.apply_profile(profile)
        return profile.name

    def reroute(self, upstream: str | None = None) -> None:
        """Send the link's traffic to `upstream` (a TLS interceptor), None: back to the cloud
        (harness.protocols.ReroutableLink)."""
        self.api.update_proxy(self.name, upstream=upstream or self.upstream)

    def plain_http_attempts(self) -> list[dict[str, Any]]:
        """Plain-HTTP requests sent to the device's API address (harness.protocols.PlainHttpTrap).

        Raises FaultInjectionError when the server has no trap (a real toxiproxy-server).
        """
        return self.api.plain_http(self.name)

    def clear(self) -> None:
        """Stop any profile, remove every toxic and bring the link up.

        Raises FaultInjectionError afterwards if a timed phase change had failed meanwhile,
        so a profile that silently stopped cutting the link cannot pass unnoticed.
        """
        with self._lock:
            failures = self._stop_profile()
            self._remove_toxics()
            self._set_enabled(True)
            if self._down:
                self._down = False
                self.timeline.record(LAYER, "link-down", "stop", proxy=self.name)
        if failures:
            raise FaultInjectionError(f"network profile phase change failed: {failures[0]}")

    def close(self) -> None:
        """Clear, delete the proxy and stop the server this link started (if any)."""
        with self._lock:
            try:
                if hasattr(self, "_listen"):
                    self.clear()
                    self.api.delete_proxy(self.name)
            finally:
                self.api.close()
                if self._own_server is not None:
                    self._own_server.stop()
                    self._own_server = None

    def __enter__(self) -> NetworkLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals -------------------------------------------------------------------
    def _describe(self, profile: NetworkProfile) -> dict[str, Any]:
        data = profile.to_dict()
        return {
            "backend": "proxy",
            "proxy": self.name,
            "summary": data["summary"],
            "toxics": data["toxics"],
            "enabled": data["enabled"],
            "phases": data["phases"],
            "repeat": data["repeat"],
        }

    def _add(self, spec: ToxicSpec) -> None:
        self.api.add_toxic(
            self.name,
            spec.type,
            name=spec.toxic_name,
            stream=spec.stream,
            toxicity=spec.toxicity,
            attributes=dict(spec.attributes),
        )

    def _set_enabled(self, enabled: bool) -> None:
        info = self.api.update_proxy(self.name, enabled=enabled)
        if enabled:
            self._listen = str(info["listen"])

    def _remove_toxics(self) -> None:
        for toxic in self.api.toxics(self.name):
            self.api.remove_toxic(self.name, toxic["name"])

    def _stop_profile(self) -> list[BaseException]:
        scheduler, self._scheduler = self._scheduler, None
        self._generation += 1  # a phase change already waiting for the lock is dropped
        if scheduler is not None:
            scheduler.stop(join=False)
        self._leave_phase()
        if self._profile is not None:
            self.timeline.record(LAYER, f"profile:{self._profile.name}", "stop", proxy=self.name)
            self._profile = None
        return list(scheduler.errors) if scheduler is not None else []

    def _leave_phase(self) -> None:
        phase, self._phase = self._phase, None
        if phase is None:
            return
        for spec in phase.toxics:
            try:
                self.api.remove_toxic(self.name, spec.toxic_name)
            except FaultInjectionError:
                pass  # already gone (e.g. a reset)
        if not phase.enabled and not self._down:
            self._set_enabled(True)
        self.timeline.record(LAYER, f"phase:{phase.name}", "stop", proxy=self.name)

    def _enter_phase(self, phase: Phase | None, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return
            self._leave_phase()
            if phase is None:
                return
            for spec in phase.toxics:
                self._add(spec)
            if not phase.enabled:
                self._set_enabled(False)
            self._phase = phase
            self.timeline.record(
                LAYER,
                f"phase:{phase.name}",
                "start",
                proxy=self.name,
                seconds=phase.seconds,
                enabled=phase.enabled,
                toxics=[
                    {"type": s.type, "stream": s.stream, "attributes": s.attributes}
                    for s in phase.toxics
                ],
            )

    def _phase_failed(self, exc: BaseException) -> None:
        self.timeline.record(LAYER, "profile-error", "mark", proxy=self.name, error=str(exc))


def applied_profiles(events: Iterable[TimelineEvent]) -> list[dict[str, Any]]:
    """The network profiles these timeline events applied, in order: name, backend ("proxy" or
    "packet") and parameters (toxics; or trace, capacity, RTT, queue, loss, congestion control).

    What a certificate or report names per scenario: pass the events of the scenario's span.
    """
    return [{"profile": e.name.removeprefix("profile:"), **e.details} for e in events
            if e.layer == LAYER and e.name.startswith("profile:") and e.action == "start"]


# what a certificate names of a link: enough to redo the run's conditions, not the toxics' details
LINK_FIELDS = ("backend", "profile", "summary", "trace", "up_capacity_mbps", "up_rate_mbps", "rtt_ms",
               "queue_packets", "loss", "congestion_control")


def scenario_links(events: Iterable[TimelineEvent], since: float) -> list[dict[str, Any]]:
    """The links a scenario ran on: each network profile applied from `since` (wall clock) on,
    once, with backend, profile, trace and parameters (LINK_FIELDS); [] on an unshaped link."""
    found: list[dict[str, Any]] = []
    for applied in applied_profiles(e for e in events if e.at >= since):
        link = {key: applied[key] for key in LINK_FIELDS if applied.get(key) is not None}
        if link not in found:
            found.append(link)
    return found
