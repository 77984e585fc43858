"""Named network profiles: the links a camera or recorder really uploads over, as toxics.

Directions follow Toxiproxy: ``upstream`` = device -> cloud (requests and media bodies,
what limits an upload), ``downstream`` = cloud -> device (responses). Round-trip times are
split evenly between the two directions; jitter likewise. Bandwidth ``rate`` is in KB/s
with 1 KB = 1000 bytes (Toxiproxy's unit): 1 Mbps = 125 KB/s.

Figures are typical values, not worst cases; each profile's docstring says where they come
from. A profile is data (`NetworkProfile.to_dict()` is TOML/JSON-able); profiles with time
behaviour (mesh-roam cuts, isp-outage phases) list `phases` that `ProfileScheduler` plays.
"""

from __future__ import annotations

import threading
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.faults.network.toxics import TOXIC_TYPES, ToxicSpecError, parse_attributes


def mbps(value: float) -> int:
    """Megabits per second -> Toxiproxy bandwidth rate (KB/s, 1 KB = 1000 B)."""
    return round(value * 125)


@dataclass(frozen=True)
class ToxicSpec:
    """One toxic to add: what the API's POST /proxies/{p}/toxics takes."""

    type: str
    stream: str = "downstream"
    attributes: dict[str, int] = field(default_factory=dict)
    toxicity: float = 1.0
    name: str | None = None

    def __post_init__(self) -> None:
        if self.type not in TOXIC_TYPES:
            raise ConfigError(f"toxic type {self.type!r} unknown (one of {sorted(TOXIC_TYPES)})")
        if self.stream not in ("upstream", "downstream"):
            raise ConfigError(f"toxic stream {self.stream!r} must be upstream or downstream")
        known = {key for key, _ in TOXIC_TYPES[self.type][1]}
        unknown = set(self.attributes) - known
        if unknown:
            raise ConfigError(
                f"{self.type} toxic: unknown attributes {sorted(unknown)} (has {sorted(known)})"
            )
        try:
            parse_attributes(self.type, dict(self.attributes))
        except ToxicSpecError as exc:
            raise ConfigError(f"{self.type} toxic attributes: {exc}") from None

    @property
    def toxic_name(self) -> str:
        return self.name or f"{self.type}_{self.stream}"


@dataclass(frozen=True)
class Phase:
    """A stretch of time with the link up or down and extra toxics on top of the base ones."""

    name: str
    seconds: float
    enabled: bool = True
    toxics: tuple[ToxicSpec, ...] = ()


@dataclass(frozen=True)
class NetworkProfile:
    """A named link: base toxics, the link state, and optional timed phases."""

    name: str
    summary: str
    toxics: tuple[ToxicSpec, ...] = ()
    enabled: bool = True
    phases: tuple[Phase, ...] = ()
    repeat: bool = False  # phases loop (mesh-roam) or play once then stay on the base (isp-outage)

    def to_dict(self) -> dict[str, Any]:
        """Plain data without None (TOML has no null), lists for tuples."""
        data: dict[str, Any] = _strip_none(asdict(self))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkProfile:
        """Build from TOML/JSON data; raises ConfigError naming the bad field."""
        try:
            toxics = tuple(ToxicSpec(**t) for t in data.get("toxics", ()))
            phases = tuple(
                Phase(
                    name=p["name"],
                    seconds=float(p["seconds"]),
                    enabled=bool(p.get("enabled", True)),
                    toxics=tuple(ToxicSpec(**t) for t in p.get("toxics", ())),
                )
                for p in data.get("phases", ())
            )
            return cls(
                name=str(data["name"]),
                summary=str(data.get("summary", "")),
                toxics=toxics,
                enabled=bool(data.get("enabled", True)),
                phases=phases,
                repeat=bool(data.get("repeat", False)),
            )
        except ConfigError as exc:
            raise ConfigError(f"network profile {data.get('name', '?')!r}: {exc}") from None
        except KeyError as exc:
            raise ConfigError(
                f"network profile {data.get('name', '?')!r}: missing field {exc}"
            ) from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(
                f"network profile {data.get('name', '?')!r}: bad field: {exc}"
            ) from None


def _strip_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_strip_none(v) for v in value]
    return value


def load_profiles(path: Path) -> dict[str, NetworkProfile]:
    """Profiles from a TOML file of `[[profile]]` tables (same keys as `to_dict()`).

    Raises ConfigError naming the file and the problem.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"network profiles file {path}: {exc}") from None
    entries = data.get("profile", [])
    if not isinstance(entries, list):
        raise ConfigError(f"network profiles file {path}: 'profile' must be an array of tables")
    out: dict[str, NetworkProfile] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise ConfigError(f"network profiles file {path}: every [[profile]] must be a table")
        profile = NetworkProfile.from_dict(entry)
        out[profile.name] = profile
    return out


def shaped(
    up_mbps: float, down_mbps: float, rtt_ms: int, jitter_ms: int = 0
) -> tuple[ToxicSpec, ...]:
    """Latency (half the RTT each way, jitter split too) plus bandwidth per direction."""
    half, half_jitter = rtt_ms // 2, jitter_ms // 2
    return (
        ToxicSpec("latency", "upstream", {"latency": half, "jitter": half_jitter}),
        ToxicSpec(
            "latency", "downstream", {"latency": rtt_ms - half, "jitter": jitter_ms - half_jitter}
        ),
        ToxicSpec("bandwidth", "upstream", {"rate": mbps(up_mbps)}),
        ToxicSpec("bandwidth", "downstream", {"rate": mbps(down_mbps)}),
    )


def hardline() -> NetworkProfile:
    """Wired gigabit Ethernet to a building uplink: 1000/1000 Mbps, RTT 5 ms ± 1.

    Gigabit Ethernet (IEEE 802.3ab) line rate; ~5 ms RTT is a metro fibre path to the
    nearest cloud region (typical CDN/cloud edge latencies of 2–10 ms on business fibre).
    """
    return NetworkProfile("hardline", "wired gigabit, 1 Gbps / 5 ms", shaped(1000, 1000, 5, 1))


def bonded_cellular() -> NetworkProfile:
    """Bonded cellular backpack (several LTE/5G modems aggregated): 40 up / 60 down Mbps,
    RTT 60 ms ± 20.

    Vendors of bonded units (LiveU, TVU, Teradek Bond) quote 20–60 Mbps aggregate uplink with
    4–8 modems; bonding adds reordering/buffer delay, so 40–80 ms RTT with visible jitter.
    """
    return NetworkProfile(
        "bonded-cellular", "bonded LTE/5G, 40 Mbps up / 60 ms ± 20", shaped(40, 60, 60, 20)
    )


def cellular() -> NetworkProfile:
    """A single LTE modem: 15 up / 40 down Mbps, RTT 50 ms ± 20.

    Crowd-sourced LTE measurements (Ookla Speedtest, Opensignal national reports) put
    typical LTE upload at 10–20 Mbps and download 30–50 Mbps, latency ~40–60 ms.
    """
    return NetworkProfile("cellular", "LTE, 15 Mbps up / 50 ms ± 20", shaped(15, 40, 50, 20))


def hotspot() -> NetworkProfile:
    """A phone's Wi-Fi hotspot sharing its cellular link: 8 up / 20 down Mbps, RTT 60 ms ± 30.

    Tethering adds a Wi-Fi hop and the phone's NAT; measured hotspot uploads are commonly
    5–10 Mbps with 50–80 ms and jumpy latency (Wi-Fi contention + radio scheduling).
    """
    return NetworkProfile("hotspot", "phone hotspot, 8 Mbps up / 60 ms ± 30", shaped(8, 20, 60, 30))


def direct_modem() -> NetworkProfile:
    """A camera's own built-in/USB cellular modem: 5 up / 20 down Mbps, RTT 80 ms ± 40,
    upstream sliced into ~1400-byte pieces.

    A single low-category modem with a small antenna in a camera body: Cat-4 class uplinks
    reach 5 Mbps at best indoors; RTT 60–100 ms. The slicer emulates MTU-sized deliveries
    (1500-byte MTU minus headers) so devices that assume large reads are exercised.
    """
    return NetworkProfile(
        "direct-modem",
        "in-camera modem, 5 Mbps up / 80 ms ± 40, MTU-sized pieces",
        (
            *shaped(5, 20, 80, 40),
            ToxicSpec(
                "slicer", "upstream", {"average_size": 1400, "size_variation": 200, "delay": 0}
            ),
        ),
    )


def mesh_roam(period: float = 10.0, cut: float = 1.0) -> NetworkProfile:
    """A set on a Wi-Fi mesh, the device roaming between nodes: 100/100 Mbps, RTT 10 ms ± 4,
    and the link cut for `cut` s (default 1.0) every `period` s (default 10).

    802.11r-less roams and mesh backhaul re-selection typically interrupt traffic for
    0.5–2 s; a cut drops every live connection and refuses new ones (enabled=false).
    """
    return NetworkProfile(
        "mesh-roam",
        f"Wi-Fi mesh 100 Mbps / 10 ms with a {cut:g} s cut every {period:g} s",
        shaped(100, 100, 10, 4),
        phases=(Phase("connected", period - cut), Phase("roaming", cut, enabled=False)),
        repeat=True,
    )


def isp_outage(
    blackhole: float = 10.0, resets: float = 10.0, refused: float = 10.0
) -> NetworkProfile:
    """An ISP failure and recovery, played once: packets vanish (upstream swallowed, idle
    connections closed after 5 s), then connections reset, then refused, then the link
    comes back as cellular-like 15 Mbps / 50 ms.

    The three phases are how a broken uplink looks from a device: a dead route
    (timeouts), a middlebox or failing modem resetting flows, and DNS/gateway failure where
    nothing connects. Default 10 s each.
    """
    return NetworkProfile(
        "isp-outage",
        "blackhole, resets, refused; then recovered",
        shaped(15, 40, 50, 20),
        phases=(
            Phase(
                "blackhole",
                blackhole,
                toxics=(
                    ToxicSpec("timeout", "upstream", {"timeout": 5000}, name="outage_timeout"),
                ),
            ),
            Phase(
                "resets",
                resets,
                toxics=(ToxicSpec("reset_peer", "upstream", {"timeout": 0}, name="outage_reset"),),
            ),
            Phase("refused", refused, enabled=False),
        ),
        repeat=False,
    )


def blackout() -> NetworkProfile:
    """Everything down: the proxy does not listen (connect refused) and live links drop."""
    return NetworkProfile("blackout", "no network at all", enabled=False)


PROFILES: dict[str, NetworkProfile] = {
    p.name: p
    for p in (
        hardline(),
        bonded_cellular(),
        cellular(),
        hotspot(),
        mesh_roam(),
        direct_modem(),
        isp_outage(),
        blackout(),
    )
}


def get_profile(name: str) -> NetworkProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"network profile {name!r} unknown (one of {sorted(PROFILES)})") from None


class ProfileScheduler:
    """Plays a profile's phases in a daemon thread: `apply(phase)` at each phase start."""

    def __init__(
        self,
        profile: NetworkProfile,
        apply: Callable[[Phase | None], None],
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.profile = profile
        self._apply = apply
        self._on_error = on_error
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"profile-{profile.name}", daemon=True
        )
        self.errors: list[BaseException] = []

    def start(self) -> ProfileScheduler:
        self._thread.start()
        return self

    def _run(self) -> None:
        phases: Sequence[Phase] = self.profile.phases
        try:
            while not self._stop.is_set():
                for phase in phases:
                    if self._stop.is_set():
                        return
                    self._apply(phase)
                    if self._stop.wait(phase.seconds):
                        return
                if not self.profile.repeat:
                    self._apply(None)  # back on the base link
                    return
        except BaseException as exc:  # a failing API must not die silently in a thread
            self.errors.append(exc)
            if self._on_error is not None:
                self._on_error(exc)

    def stop(self, timeout: float = 10.0, *, join: bool = True) -> None:
        self._stop.set()
        if join and self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
