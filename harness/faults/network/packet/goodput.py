"""Goodput at the bottleneck: unique TCP payload bytes the link delivered, per 100 ms.

Measured where the packets leave the link rather than where an application reads them: a
receiver hands data to the application only in order, so after a loss the bytes that waited
behind the hole arrive in one burst, and an application-side window can show more than the
link's capacity. Here every (flow, sequence number) counts once, when the link delivers it:
a retransmission of a packet the link dropped counts, a spurious duplicate does not.
"""

from __future__ import annotations

import struct
from collections import Counter

BIN_S = 0.1
_SEEN_LIMIT = 1 << 18  # (flow, seq) keys remembered; older ones are forgotten first


class GoodputMeter:
    """Counts unique TCP payload bytes of delivered IPv4 packets, binned by delivery time."""

    def __init__(self) -> None:
        self.payload_bytes = 0
        self.duplicate_bytes = 0
        self.bins: Counter[int] = Counter()
        self._seen: dict[tuple[bytes, int], None] = {}

    def account(self, packet: bytes, now: float) -> None:
        if len(packet) < 40 or packet[0] >> 4 != 4 or packet[9] != 6:
            return
        ihl = (packet[0] & 0x0F) * 4
        total = struct.unpack_from("!H", packet, 2)[0]
        if len(packet) < ihl + 20:
            return
        seq = struct.unpack_from("!I", packet, ihl + 4)[0]
        payload = total - ihl - (packet[ihl + 12] >> 4) * 4
        if payload <= 0:
            return
        key = (packet[12:20] + packet[ihl : ihl + 4], seq)  # addresses + ports, sequence
        if key in self._seen:
            self.duplicate_bytes += payload
            return
        self._seen[key] = None
        if len(self._seen) > _SEEN_LIMIT:
            del self._seen[next(iter(self._seen))]
        self.payload_bytes += payload
        self.bins[int(now / BIN_S)] += payload

    def series(self, since: float = 0.0) -> list[list[float]]:
        """[[bin start (monotonic s), payload bytes], ...] from `since` on, oldest first."""
        first = int(since / BIN_S)
        return [[index * BIN_S, count] for index, count in sorted(self.bins.items()) if index >= first]


def goodput_bps(series: list[list[float]], start: float, end: float) -> float:
    """Mean payload bits per second over [start, end) from a series (whole bins only)."""
    total = sum(count for t, count in series if start <= t and t + BIN_S <= end + 1e-9)
    first, last = int(start / BIN_S + 0.999999), int((end + 1e-9) / BIN_S)
    span = (last - first) * BIN_S
    return total * 8 / span if span > 0 else 0.0
