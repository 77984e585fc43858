"""The packet profile table: same names as the proxy's, capacities from the traces, offered
capacity over a window (what throughput verdicts and links.json compare against)."""

from __future__ import annotations

import itertools

import pytest

from harness.faults.network.packet.profiles import (
    LINK_PROFILES,
    bonded,
    mbps_of,
    passthrough,
    trace,
)
from harness.faults.network.packet.spec import LinkSpec
from harness.faults.network.profiles import PROFILES


def test_every_packet_profile_is_a_name_the_proxy_knows_too() -> None:
    assert set(LINK_PROFILES) == {"cellular", "hotspot", "bonded-cellular", "mesh-roam", "direct-modem"}
    assert set(LINK_PROFILES) <= set(PROFILES)


@pytest.mark.parametrize(("name", "mbps"), [("cellular", 13.32), ("hotspot", 5.95), ("direct-modem", 1.91)])
def test_capacity_is_the_traces_mean_as_recorded_in_the_traces_readme(name: str, mbps: float) -> None:
    profile = LINK_PROFILES[name]
    assert profile.capacity_mbps == pytest.approx(mbps, abs=0.01)
    assert profile.describe()["trace"] == profile.traces[0]
    assert profile.why and profile.describe()["rtt_ms"] == 2 * profile.one_way_delay_ms


def test_bonded_cellular_is_both_traces_in_parallel() -> None:
    profile = LINK_PROFILES["bonded-cellular"]
    parts = [mbps_of(trace(name)) for name in profile.traces]
    assert len(parts) == 2
    assert profile.capacity_mbps == pytest.approx(sum(parts), rel=0.01)
    merged = bonded(profile.traces)
    assert all(b >= a for a, b in itertools.pairwise(merged))


def test_offered_capacity_follows_the_trace_including_its_gaps() -> None:
    profile = LINK_PROFILES["direct-modem"]
    values = trace(profile.traces[0])
    period_s = values[-1] / 1000
    assert profile.offered_mbps(0, period_s) == pytest.approx(profile.capacity_mbps, rel=0.001)
    assert profile.offered_mbps(period_s, 3 * period_s) == pytest.approx(profile.capacity_mbps, rel=0.001)
    gap_start, gap_end = max(itertools.pairwise(values), key=lambda pair: pair[1] - pair[0])
    assert gap_end - gap_start > 4000  # the README's longest gap: 4061 ms
    assert profile.offered_mbps((gap_start + 1) / 1000, gap_end / 1000) == 0.0
    assert LINK_PROFILES["mesh-roam"].offered_mbps(0, 5) == 100.0


def test_specs_travel_to_the_forwarder_intact() -> None:
    for profile in LINK_PROFILES.values():
        spec = profile.spec()
        assert LinkSpec.from_dict(spec.to_dict()) == spec
        assert spec.rtt_ms == 2 * profile.one_way_delay_ms
        assert spec.up.loss == profile.loss and spec.down.loss == 0.0
    assert passthrough().up.capacity_bps >= 1e9
