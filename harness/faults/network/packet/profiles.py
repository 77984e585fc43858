"""Packet-level network profiles: the cellular links of the checklist, from recorded traces.

Same names as the TCP proxy's profiles (harness/faults/network/profiles.py) so a scenario's
`Given the network profile "cellular"` means the field link on either backend; here the
device's own kernel TCP meets the link. Each profile says which trace, delay, queue and loss it
uses and why (`why`); `describe()` is what the timeline and the certificate name.

Uplink capacity comes from the Mahimahi traces in fixtures/traces (recorded on U.S. LTE/UMTS
networks with Saturator, Winstein et al. NSDI 2013; mean capacities in that folder's README).
The downlink carries only the cloud's answers and the device's ACK stream's reverse, so a fixed
rate is enough there. Random loss is the residue that reaches TCP after the radio's own
retransmissions (HARQ/RLC), typically well under 1 %, more on a shared Wi-Fi hop. Queues are
the base station's per-user buffer: deep on LTE (seconds of delay under load, the bufferbloat
Saturator measured), shallower on a small modem. The device's namespace defaults to a loss-based
TCP: CUBIC, Linux's default and what a camera's kernel runs, or Reno where the host allows a
namespace only that (DEVICE_CONGESTION_CONTROL). The bench machines default to BBR, which barely
reacts to random loss: on it one connection fills a lossy link and parallel uploads look no
better than one (measured: reports/bench/links.json), which is not what a device meets in the field.
"""

from __future__ import annotations

import bisect
import functools
import heapq
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ConfigError
from harness.faults.network.packet.spec import (
    PACKET_BYTES,
    TRACES_DIR,
    DirectionSpec,
    LinkSpec,
    load_mahimahi_trace,
)
from harness.faults.network.profiles import Phase

BACKEND = "packet"
# the device's TCP: CUBIC (Linux's default, what a camera's kernel runs), else Reno, the other
# loss-based algorithm, when the host lets a namespace use only that (these machines: "reno bbr")
DEVICE_CONGESTION_CONTROL = ("cubic", "reno")
PASSTHROUGH_MBPS = 1000.0  # the unshaped link: above what the forwarder carries (~650 Mbps)


@functools.cache
def trace(name: str) -> tuple[int, ...]:
    """A trace of fixtures/traces by file name, read once per process."""
    return load_mahimahi_trace(TRACES_DIR / name)


def bonded(names: tuple[str, ...]) -> tuple[int, ...]:
    """Several traces in parallel (modems bonded into one pipe): every one's opportunities.

    Each trace repeats with its own period; the bonded trace covers the longest period, the
    shorter ones replayed until it ends, so the mean capacity is the sum of the means.
    """
    traces = [trace(n) for n in names]
    period = max(t[-1] for t in traces)
    streams = []
    for values in traces:
        own = values[-1]
        repeats = -(-period // own)
        streams.append([v + r * own for r in range(repeats) for v in values if v + r * own <= period])
    merged = list(heapq.merge(*streams))
    if merged[-1] != period:
        merged.append(period)
    return tuple(merged)


def mbps_of(trace_ms: tuple[int, ...]) -> float:
    """A trace's mean capacity in Mbps (wire bits: every opportunity carries 1500 bytes)."""
    return len(trace_ms) * PACKET_BYTES * 8 / (trace_ms[-1] / 1000) / 1e6


@dataclass(frozen=True)
class LinkProfile:
    """A named packet-level link: uplink trace(s) or rate, delay, queue, loss, and timed gaps."""

    name: str
    summary: str
    why: str
    traces: tuple[str, ...] = ()  # uplink trace files; several = bonded; none = up_mbps
    up_mbps: float | None = None
    down_mbps: float = 40.0
    one_way_delay_ms: float = 25.0
    queue_packets: int | None = None  # uplink drop-tail queue (downlink unlimited)
    loss: float = 0.0  # uplink random loss (the device's packets: data, not ACKs)
    phases: tuple[Phase, ...] = ()  # enabled=False: link down (roaming gap), packets dropped
    repeat: bool = False
    seed: int = 1
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if bool(self.traces) == (self.up_mbps is not None):
            raise ConfigError(f"link profile {self.name}: needs traces or up_mbps, not both")

    def up_trace(self) -> tuple[int, ...] | None:
        if not self.traces:
            return None
        return trace(self.traces[0]) if len(self.traces) == 1 else bonded(self.traces)

    def spec(self) -> LinkSpec:
        up = DirectionSpec(
            trace_ms=self.up_trace(),
            rate_bps=self.up_mbps * 1e6 if self.up_mbps is not None else None,
            delay_ms=self.one_way_delay_ms, queue_packets=self.queue_packets, loss=self.loss,
        )
        down = DirectionSpec(rate_bps=self.down_mbps * 1e6, delay_ms=self.one_way_delay_ms)
        return LinkSpec(up=up, down=down, seed=self.seed, name=self.name)

    @property
    def capacity_mbps(self) -> float:
        """Mean uplink capacity (wire bits, outages not subtracted)."""
        found = self.up_trace()
        return mbps_of(found) if found is not None else float(self.up_mbps or 0.0)

    def offered_mbps(self, start_s: float, end_s: float) -> float:
        """Uplink capacity the link offered from `start_s` to `end_s` after the profile was
        applied (a trace restarts at its beginning on every application); gaps not subtracted."""
        found = self.up_trace()
        if found is None:
            return float(self.up_mbps or 0.0)
        period = found[-1]

        def before(t_s: float) -> int:  # opportunities at times < t_s, the trace repeating
            laps, rest = divmod(max(0.0, t_s) * 1000, period)
            return int(laps) * len(found) + bisect.bisect_left(found, rest)

        return (before(end_s) - before(start_s)) * PACKET_BYTES * 8 / max(1e-6, end_s - start_s) / 1e6

    def capacity_series(self, end_s: float, bin_s: float = 1.0) -> list[tuple[float, float]]:
        """(bin start, Mbit/s offered) per `bin_s` from the application to `end_s` (for plots)."""
        count = max(1, int(end_s / bin_s + 0.999999))
        return [(i * bin_s, self.offered_mbps(i * bin_s, (i + 1) * bin_s)) for i in range(count)]

    def describe(self) -> dict[str, Any]:
        """What the timeline and the certificate record: backend, trace and parameters."""
        return {
            "backend": BACKEND,
            "summary": self.summary,
            "trace": "+".join(self.traces) if self.traces else None,
            "up_capacity_mbps": round(self.capacity_mbps, 2),
            "up_rate_mbps": self.up_mbps,
            "down_mbps": self.down_mbps,
            "rtt_ms": 2 * self.one_way_delay_ms,
            "queue_packets": self.queue_packets,
            "loss": self.loss,
            "phases": [{"name": p.name, "seconds": p.seconds, "enabled": p.enabled} for p in self.phases],
            "repeat": self.repeat,
        }


def passthrough() -> LinkSpec:
    """The unshaped packet link under proxy-only profiles (hardline, isp-outage, blackout)."""
    rate = DirectionSpec(rate_bps=PASSTHROUGH_MBPS * 1e6)
    return LinkSpec(up=rate, down=rate, name="passthrough")


LINK_PROFILES: dict[str, LinkProfile] = {
    p.name: p
    for p in (
        LinkProfile(
            "cellular", "one LTE modem: T-Mobile LTE uplink trace (13.3 Mbps mean), 100 ms RTT, 0.5 % loss",
            why="A single commercial LTE modem (C2C-TNET-03). T-Mobile's LTE uplink is the faster of the "
                "two LTE recordings (p10/p90 3.3/25 Mbps per second, gaps up to 0.7 s); 50 ms one way is a "
                "loaded LTE path to a cloud region; 400 packets (600 kB, ~0.4 s at the mean rate) is a base "
                "station's per-user buffer; 0.5 % loss is what survives HARQ/RLC at the cell edge. This is "
                "the lossy long-RTT link: one loss-based connection stays near the Mathis bound (~2.5 Mbps), "
                "several in parallel approach the capacity.",
            traces=("TMobile-LTE-short.up.gz",), down_mbps=40.0, one_way_delay_ms=50.0, queue_packets=400,
            loss=0.005,
        ),
        LinkProfile(
            "hotspot", "phone hotspot: Verizon LTE uplink trace (5.95 Mbps mean) + Wi-Fi hop, 80 ms RTT, 1 % loss",
            why="A phone sharing its LTE link over Wi-Fi (C2C-TNET-04). Verizon's LTE uplink (p10/p90 2.3/10.6 "
                "Mbps, gaps to 1.7 s); 40 ms one way = LTE plus the Wi-Fi hop and the phone's NAT; a phone's "
                "small tethering buffer (200 packets); 1 % loss from Wi-Fi contention on top of the radio.",
            traces=("Verizon-LTE-short.up",), down_mbps=20.0, one_way_delay_ms=40.0, queue_packets=200,
            loss=0.01,
        ),
        LinkProfile(
            "bonded-cellular", "bonded modems: T-Mobile + Verizon LTE traces in parallel (19.3 Mbps), 60 ms RTT",
            why="A bonded cellular unit (C2C-TNET-02): two carriers' LTE uplinks aggregated, each trace "
                "replayed at once so the capacity is their sum and their dips rarely coincide; 30 ms one "
                "way plus the bonding server's reordering buffer (600 packets); 0.2 % loss, as bonding "
                "re-sends on the other modem what one loses.",
            traces=("TMobile-LTE-short.up.gz", "Verizon-LTE-short.up"), down_mbps=60.0, one_way_delay_ms=30.0,
            queue_packets=600, loss=0.002,
        ),
        LinkProfile(
            "mesh-roam", "Wi-Fi mesh, 100 Mbps / 10 ms, 1 s roaming gap every 10 s (packets lost)",
            why="Meshed routers with fast roaming (C2C-TNET-05): a wired-speed 100 Mbps hop with 5 ms one "
                "way; a hand-over between nodes loses every packet for 1 s every 10 s (no reset, no refusal: "
                "the device's TCP must ride it out with retransmissions, as in the field).",
            up_mbps=100.0, down_mbps=100.0, one_way_delay_ms=5.0, queue_packets=1000,
            phases=(Phase("connected", 9.0), Phase("roaming", 1.0, enabled=False)), repeat=True,
        ),
        LinkProfile(
            "direct-modem", "in-camera modem: AT&T LTE driving trace (1.9 Mbps mean, gaps to 4 s), 120 ms RTT",
            why="A camera's own small modem (C2C-TNET-06), moving: AT&T's LTE uplink recorded while driving "
                "(p10/p90 0.2/3.8 Mbps, gaps up to 4 s); 60 ms one way; a modem's small buffer (100 "
                "packets); 0.5 % loss.",
            traces=("ATT-LTE-driving-2016.up",), down_mbps=10.0, one_way_delay_ms=60.0, queue_packets=100,
            loss=0.005,
        ),
    )
}


def get_link_profile(name: str) -> LinkProfile | None:
    """The packet-level profile of that name, None if the name is a proxy-only profile."""
    return LINK_PROFILES.get(name)
