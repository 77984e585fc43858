"""The link model on a virtual clock: Mahimahi semantics, queue limits, delay, loss, outages."""

from __future__ import annotations

import struct

import pytest

from harness.errors import ConfigError
from harness.faults.network.packet.goodput import GoodputMeter, goodput_bps
from harness.faults.network.packet.shaper import DirectionShaper
from harness.faults.network.packet.spec import (
    DirectionSpec,
    LinkSpec,
    Outage,
    constant_trace,
    parse_mahimahi_trace,
)

FULL = b"\0" * 1500


def drive(shaper: DirectionShaper, until: float, step: float = 0.0005) -> list[tuple[float, int]]:
    """Advance a shaper on a fake clock; (time, size) of every packet it releases."""
    out, t = [], 0.0
    while t <= until:
        shaper.advance(t)
        out += [(t, len(p)) for p in shaper.pop_due(t)]
        t += step
    return out


def test_mahimahi_trace_parsing_and_constant_trace() -> None:
    assert parse_mahimahi_trace("1\n1\n\n3\n") == (1, 1, 3)
    assert constant_trace(12) == tuple(range(1, 1001))  # 12 Mbps = one packet per millisecond
    assert DirectionSpec(trace_ms=constant_trace(12)).capacity_bps == pytest.approx(12e6)
    assert DirectionSpec(trace_ms=(0, 5, 10)).capacity_bps == pytest.approx(3 * 12000 / 0.010)
    for bad in ("", "5\n3\n", "x\n", "0\n"):
        with pytest.raises(ConfigError):
            parse_mahimahi_trace(bad)


def test_spec_validation_and_round_trip() -> None:
    with pytest.raises(ConfigError):
        DirectionSpec()
    with pytest.raises(ConfigError):
        DirectionSpec(rate_bps=1e6, trace_ms=(1,))
    with pytest.raises(ConfigError):
        DirectionSpec(rate_bps=1e6, loss=1.0)
    with pytest.raises(ConfigError):
        Outage(2.0, 1.0)
    spec = LinkSpec.symmetric(trace_ms=(1, 2), delay_ms=20, queue_bytes=30000, outages=(Outage(1, 2),),
                              up_loss=0.01, seed=7, name="x")
    assert LinkSpec.from_dict(spec.to_dict()) == spec
    assert spec.up.loss == 0.01 and spec.down.loss == 0 and spec.rtt_ms == 40


def test_a_trace_delivers_one_full_packet_per_opportunity_after_the_delay() -> None:
    shaper = DirectionShaper(DirectionSpec(trace_ms=constant_trace(12), delay_ms=50), now=0.0, seed=1)
    for _ in range(100):
        shaper.offer(FULL, 0.0)
    out = drive(shaper, 0.2)
    assert len(out) == 100
    assert out[0][0] == pytest.approx(0.051, abs=0.001)  # first opportunity at 1 ms, then 50 ms
    assert out[-1][0] == pytest.approx(0.150, abs=0.001)  # one per millisecond


def test_small_packets_share_an_opportunity_and_unused_opportunities_are_lost() -> None:
    shaper = DirectionShaper(DirectionSpec(trace_ms=(10,)), now=0.0, seed=1)  # one per 10 ms
    shaper.advance(0.095)  # nine opportunities pass with nothing queued: not banked
    for _ in range(20):
        shaper.offer(b"\0" * 52, 0.095)  # ACK-sized: 28 fit in 1500 bytes
    shaper.advance(0.0999)
    assert shaper.pop_due(0.0999) == []
    shaper.advance(0.1)
    assert len(shaper.pop_due(0.1)) == 20  # all at the opportunity of 100 ms


def test_a_fixed_rate_and_a_long_packet_spanning_opportunities() -> None:
    shaper = DirectionShaper(DirectionSpec(rate_bps=1.2e6), now=0.0, seed=1)  # 1500 B per 10 ms
    shaper.offer(b"\0" * 3000, 0.0)
    out = drive(shaper, 0.05)
    assert out == [(pytest.approx(0.02, abs=0.0006), 3000)]  # needs two opportunities


def test_drop_tail_limits_in_packets_and_in_bytes() -> None:
    by_packets = DirectionShaper(DirectionSpec(rate_bps=1e6, queue_packets=3), now=0.0, seed=1)
    by_bytes = DirectionShaper(DirectionSpec(rate_bps=1e6, queue_bytes=3100), now=0.0, seed=1)
    for shaper in (by_packets, by_bytes):
        for _ in range(5):
            shaper.offer(FULL, 0.0)
    assert (by_packets.queued_packets, by_packets.stats.overflow) == (3, 2)
    assert (by_bytes.queued_packets, by_bytes.stats.overflow) == (2, 3)


def test_random_loss_is_seeded_and_near_its_rate() -> None:
    def lost(seed: int) -> int:
        shaper = DirectionShaper(DirectionSpec(rate_bps=1e9, loss=0.01), now=0.0, seed=seed)
        for _ in range(20000):
            shaper.offer(b"\0" * 100, 0.0)
        return shaper.stats.lost

    assert lost(3) == lost(3)
    assert 140 <= lost(3) <= 260  # 200 expected; binomial sd 14


def test_an_outage_holds_packets_and_link_down_drops_them() -> None:
    spec = DirectionSpec(trace_ms=constant_trace(12), outages=(Outage(0.0, 0.1),))
    shaper = DirectionShaper(spec, now=0.0, seed=1)
    shaper.offer(FULL, 0.0)
    out = drive(shaper, 0.2)
    assert [t for t, _ in out] == [pytest.approx(0.101, abs=0.001)]  # first opportunity after it
    shaper.offer(FULL, 0.2)
    shaper.set_down(True)
    shaper.offer(FULL, 0.2)
    shaper.advance(0.3)
    assert shaper.pop_due(0.3) == [] and shaper.stats.down_drops == 2
    shaper.set_down(False)
    shaper.offer(FULL, 0.3)
    shaper.advance(0.302)
    assert len(shaper.pop_due(0.302)) == 1


def _tcp(seq: int, payload: int) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + payload, 0, 0, 64, 6, 0, b"\n\0\0\2", b"\n\0\0\1")
    tcp = struct.pack("!HHIIBBHHH", 40000, 443, seq, 0, 5 << 4, 0x10, 1000, 0, 0)
    return ip + tcp + b"\0" * payload


def test_goodput_counts_each_segment_once() -> None:
    meter = GoodputMeter()
    meter.account(_tcp(1000, 1448), 10.0)
    meter.account(_tcp(1000, 1448), 10.05)  # a spurious retransmission
    meter.account(_tcp(2448, 1448), 10.15)
    meter.account(_tcp(3896, 0), 10.15)  # a pure ACK
    assert (meter.payload_bytes, meter.duplicate_bytes) == (2896, 1448)
    assert goodput_bps(meter.series(), 10.0, 10.2) == pytest.approx(2896 * 8 / 0.2)


def test_the_committed_traces_load_with_their_documented_capacity() -> None:
    from harness.faults.network.packet.spec import TRACES_DIR, load_mahimahi_trace

    expected = {"Verizon-LTE-short.up": 5.95, "TMobile-LTE-short.up.gz": 13.32,
                "ATT-LTE-driving-2016.up": 1.91, "TMobile-UMTS-driving.up": 0.94}
    for name, mbps in expected.items():
        trace = load_mahimahi_trace(TRACES_DIR / name)
        assert DirectionSpec(trace_ms=trace).capacity_bps / 1e6 == pytest.approx(mbps, abs=0.01), name
