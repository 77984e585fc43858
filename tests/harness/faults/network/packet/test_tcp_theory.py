"""The packet-level link against TCP theory, with the kernel's own TCP (issue #22 part 3).

One link (12 Mbps Mahimahi trace both ways, 50 ms one-way delay each way = 100 ms base RTT,
BDP = 12 Mbit/s x 0.1 s = 150 kB = 100 packets of 1500 bytes) is reused; each test applies
its queue and loss, runs bulk flows from the namespace to the host for a few seconds, and
measures goodput at the link (unique TCP payload delivered, see goodput.py) after a warm-up.

The flows use Reno (TCP_CONGESTION per socket): the results below are Reno's. The machine's
default here is BBR, which is not loss-based; Mathis's formula and the one-BDP buffer rule do
not describe it.

- Queue >= BDP: after a loss Reno halves cwnd to (BDP + Q) / 2 >= BDP, so the link never
  idles: goodput reaches the payload capacity 12 Mbps x 1448/1500 = 11.58 Mbps, i.e. 96.5 %
  of the wire capacity. Asserted: >= 90 % of the wire capacity (12 Mbps).
- Queue = BDP / 20: after each loss cwnd falls to ~BDP / 2 and the link idles; slow start also
  ends early (its bursts overflow a 5-packet queue). Theory: at most ~3/4 of capacity on
  average. Asserted: < 90 %.
- 1 % random loss, large queue: Mathis et al. bound MSS / RTT x 1.22 / sqrt(p) = 1448 B x 8 /
  0.1 s x 12.2 = 1.41 Mbps (far below capacity, so loss alone limits the flow). Asserted:
  within a factor of two. Four flows each obey it independently (~4x): asserted >= 2x the
  bound and >= 1.5x what one flow got.
- RTT under load: a 400-packet queue (4 BDP) holds at least (Q - BDP) / 2 = 150 packets =
  150 ms after Reno's first halving, a 10-packet queue at most 10 ms. Asserted: the loaded RTT
  grows by >= 100 ms, and the small queue's stays below base + 50 ms.

Robustness: opportunities are scheduled in virtual time, so a forwarder that wakes late on a
loaded machine delivers the same packets a little later, never more than the trace allows.
Load can only starve the sender or forwarder and so *lower* a flow's goodput. For the
lower-bound checks a second try is therefore sound (taking the better of two cannot push a
result above what the link and TCP permit); upper-bound checks hold on every try.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from harness.faults.network.packet import LinkSpec, PacketLink, constant_trace
from harness.faults.network.packet.flows import run_bulk_flows
from tests.harness.faults.network.packet.conftest import needs_packet_links

pytestmark = needs_packet_links

CAPACITY_BPS = 12e6
ONE_WAY_MS = 50.0
RTT_S = 2 * ONE_WAY_MS / 1000
MSS = 1448  # 1500 - 20 (IPv4) - 20 (TCP) - 12 (timestamps option)
BDP_PACKETS = round(CAPACITY_BPS * RTT_S / 8 / 1500)  # 100
TRIES = 2


def spec(queue_packets: int, loss: float = 0.0) -> LinkSpec:
    """12 Mbps trace both ways; loss (if any) only on the data direction."""
    return LinkSpec.symmetric(trace_ms=constant_trace(12), delay_ms=ONE_WAY_MS, queue_packets=queue_packets,
                              up_loss=loss, seed=1, name=f"theory-q{queue_packets}-p{loss}")


@pytest.fixture(scope="module")
def link() -> Iterator[PacketLink]:
    with PacketLink(spec(BDP_PACKETS)) as link:
        yield link


def measure(link: PacketLink, queue_packets: int, *, loss: float = 0.0, flows: int = 1,
            seconds: float = 4.0, warmup_s: float = 1.5) -> dict[str, Any]:
    link.apply(spec(queue_packets, loss))
    before = link.stats()["up"]
    report = run_bulk_flows(link, flows=flows, seconds=seconds, warmup_s=warmup_s, congestion_control="reno")
    after = link.stats()["up"]
    assert report["connections"] == flows
    report["loss_realized"] = (after["lost"] - before["lost"]) / max(1, after["arrived"] - before["arrived"])
    print(f"queue={queue_packets} loss={loss} flows={flows}: goodput {report['goodput_bps'] / 1e6:.2f} Mbps "
          f"({report['goodput_bps'] / CAPACITY_BPS:.1%} of 12 Mbps), loaded RTT {report['rtt_loaded_ms']:.0f} ms, "
          f"realized loss {report['loss_realized']:.2%}")
    return report


def best_of(tries: int, run: Any, good_enough: Any) -> list[Any]:
    """Run up to `tries` times, stopping at the first result that meets the lower bound."""
    results = []
    for _ in range(tries):
        results.append(run())
        if good_enough(results[-1]):
            break
    return results


def test_a_queue_of_one_bdp_lets_one_flow_fill_the_link(link: PacketLink) -> None:
    results = best_of(TRIES, lambda: measure(link, int(1.5 * BDP_PACKETS)),
                      lambda r: r["goodput_bps"] >= 0.9 * CAPACITY_BPS)
    best = max(r["goodput_bps"] for r in results)
    assert best >= 0.9 * CAPACITY_BPS, [r["goodput_bps"] for r in results]
    assert all(r["goodput_bps"] <= CAPACITY_BPS * MSS / 1500 * 1.01 for r in results)  # never above the link


def test_a_queue_far_below_the_bdp_leaves_the_link_underused(link: PacketLink) -> None:
    report = measure(link, BDP_PACKETS // 20)
    assert report["goodput_bps"] < 0.9 * CAPACITY_BPS


def test_random_loss_holds_one_flow_near_the_mathis_bound_and_four_flows_get_more(link: PacketLink) -> None:
    p = 0.01
    mathis = MSS * 8 / RTT_S * 1.22 / math.sqrt(p)  # 1.41 Mbps
    one = best_of(TRIES, lambda: measure(link, 4 * BDP_PACKETS, loss=p, seconds=6.0, warmup_s=1.0),
                  lambda r: r["goodput_bps"] >= mathis / 2)
    assert all(r["goodput_bps"] <= 2 * mathis for r in one), [r["goodput_bps"] for r in one]
    single = max(r["goodput_bps"] for r in one)
    assert single >= mathis / 2, (single, mathis)
    four = best_of(TRIES, lambda: measure(link, 4 * BDP_PACKETS, loss=p, flows=4, seconds=6.0, warmup_s=1.0),
                   lambda r: r["goodput_bps"] >= max(2 * mathis, 1.5 * single))
    aggregate = max(r["goodput_bps"] for r in four)
    assert aggregate >= 2 * mathis and aggregate >= 1.5 * single, (aggregate, single, mathis)


def test_rtt_under_load_grows_with_the_queue(link: PacketLink) -> None:
    base_ms = RTT_S * 1000

    def pair() -> tuple[float, float]:
        small = measure(link, 10, seconds=3.0, warmup_s=1.0)["rtt_loaded_ms"]
        large = measure(link, 4 * BDP_PACKETS, seconds=3.0, warmup_s=1.0)["rtt_loaded_ms"]
        return small, large

    # A stalled forwarder on a loaded machine can only add delay, to both; a second pair is a
    # fresh measurement of the same claim, not a search for a lucky figure.
    tries = best_of(TRIES, pair, lambda r: r[0] < base_ms + 50 and r[1] >= r[0] + 100)
    small, large = tries[-1]
    assert small < base_ms + 50, tries
    assert large >= small + 100, tries
