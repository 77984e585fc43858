"""The link model of one direction, on a clock the caller passes in (so it is testable).

Mahimahi's semantics: each delivery opportunity lets 1500 bytes leave the queue (several
small packets, or part of a large one, whose rest waits for the next opportunity); an
opportunity that finds the queue empty is lost, a link never banks capacity. Opportunities
are scheduled in virtual time, so a forwarder that wakes late catches up instead of losing
capacity: lateness adds jitter, never a lower rate. A packet only uses opportunities after its
arrival, then leaves `delay_ms` after the opportunity that completed it.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import deque
from dataclasses import dataclass

from harness.faults.network.packet.spec import PACKET_BYTES, DirectionSpec


@dataclass
class DirectionStats:
    """Counters of one direction since the forwarder started."""

    arrived: int = 0
    delivered: int = 0
    delivered_bytes: int = 0
    lost: int = 0  # random loss
    overflow: int = 0  # drop-tail queue full
    down_drops: int = 0  # link down
    opportunities: int = 0  # opportunities that fell while the link was up and not in an outage
    max_queue_packets: int = 0
    max_queue_bytes: int = 0


class DirectionShaper:
    """Queue, opportunities, delay and loss of one direction."""

    def __init__(self, spec: DirectionSpec, *, now: float, seed: int) -> None:
        self.stats = DirectionStats()
        self._rng = random.Random()
        self._queue: deque[tuple[float, bytes]] = deque()  # (arrival, packet)
        self._queued_bytes = 0
        self._head_left = 0  # bytes of the head packet still to serve
        self._in_flight: deque[tuple[float, bytes]] = deque()  # (release time, packet)
        self._down = False
        self.configure(spec, now=now, seed=seed)

    # --- configuration ------------------------------------------------------------------
    def configure(self, spec: DirectionSpec, *, now: float, seed: int) -> None:
        """New parameters from `now` on; the opportunity schedule, outages and loss RNG restart.

        Reseeding makes every application of a spec lose the same packets (by arrival index).
        """
        self.spec = spec
        self._rng.seed(seed)
        self._t0 = now
        self._k = 0  # index of the next opportunity
        self._outages = sorted((now + o.start_s, now + o.end_s) for o in spec.outages)
        while self._queue and self._over_limit(0):
            self._drop_tail_excess()

    def set_down(self, down: bool) -> None:
        """Link down drops everything queued, in flight, and arriving, until it is up again."""
        self._down = down
        if down:
            self.stats.down_drops += len(self._queue) + len(self._in_flight)
            self._queue.clear()
            self._in_flight.clear()
            self._queued_bytes = 0
            self._head_left = 0

    @property
    def down(self) -> bool:
        return self._down

    # --- packets in ---------------------------------------------------------------------
    def offer(self, packet: bytes, now: float) -> None:
        """A packet arrives from the sender's side."""
        self.stats.arrived += 1
        if self._down:
            self.stats.down_drops += 1
            return
        if self.spec.loss and self._rng.random() < self.spec.loss:
            self.stats.lost += 1
            return
        if self._over_limit(len(packet)):
            self.stats.overflow += 1
            return
        if not self._queue:
            self._head_left = len(packet)
        self._queue.append((now, packet))
        self._queued_bytes += len(packet)
        self.stats.max_queue_packets = max(self.stats.max_queue_packets, len(self._queue))
        self.stats.max_queue_bytes = max(self.stats.max_queue_bytes, self._queued_bytes)

    def _over_limit(self, extra: int) -> bool:
        spec = self.spec
        if spec.queue_packets is not None and len(self._queue) + (1 if extra else 0) > spec.queue_packets:
            return True
        return spec.queue_bytes is not None and self._queued_bytes + extra > spec.queue_bytes

    def _drop_tail_excess(self) -> None:
        _, packet = self._queue.pop()
        self._queued_bytes -= len(packet)
        self.stats.overflow += 1
        if len(self._queue) == 0:
            self._head_left = 0

    # --- opportunities ------------------------------------------------------------------
    def _opportunity_time(self, k: int) -> float:
        spec = self.spec
        if spec.rate_bps is not None:
            return self._t0 + (k + 1) * PACKET_BYTES * 8 / spec.rate_bps  # the first one interval in
        trace = spec.trace_ms
        assert trace is not None
        cycle, index = divmod(k, len(trace))
        return self._t0 + (cycle * trace[-1] + trace[index]) / 1000

    def _skip_to(self, now: float) -> None:
        """Jump the schedule to the first opportunity after `now` (the queue is empty)."""
        spec = self.spec
        if spec.rate_bps is not None:
            self._k = max(self._k, math.floor((now - self._t0) * spec.rate_bps / (PACKET_BYTES * 8)))
            return
        trace = spec.trace_ms
        assert trace is not None
        elapsed_ms = (now - self._t0) * 1000
        cycle = int(elapsed_ms // trace[-1])
        index = bisect.bisect_right(trace, elapsed_ms - cycle * trace[-1])
        self._k = max(self._k, cycle * len(trace) + index)

    def _in_outage(self, t: float) -> bool:
        return any(start <= t < end for start, end in self._outages)

    def advance(self, now: float) -> None:
        """Use every opportunity up to `now`: move served packets into the delay line."""
        if not self._queue:
            self._skip_to(now)
            return
        delay = self.spec.delay_ms / 1000
        while self._queue:
            t = self._opportunity_time(self._k)
            if t > now:
                break
            self._k += 1
            if self._down or self._in_outage(t):
                continue
            self.stats.opportunities += 1
            credit = PACKET_BYTES
            while self._queue and credit > 0 and self._queue[0][0] <= t:
                used = min(credit, self._head_left)
                credit -= used
                self._head_left -= used
                if self._head_left == 0:
                    _, packet = self._queue.popleft()
                    self._queued_bytes -= len(packet)
                    self._in_flight.append((t + delay, packet))
                    if self._queue:
                        self._head_left = len(self._queue[0][1])
        if not self._queue:
            self._skip_to(now)

    def pop_due(self, now: float) -> list[bytes]:
        """Packets whose one-way delay has passed, in order, ready to be written out."""
        out: list[bytes] = []
        while self._in_flight and self._in_flight[0][0] <= now:
            packet = self._in_flight.popleft()[1]
            self.stats.delivered += 1
            self.stats.delivered_bytes += len(packet)
            out.append(packet)
        return out

    def next_event(self) -> float | None:
        """When this direction next needs the forwarder: an opportunity or a release."""
        times = []
        if self._queue:
            times.append(max(self._opportunity_time(self._k), self._queue[0][0]))
        if self._in_flight:
            times.append(self._in_flight[0][0])
        return min(times) if times else None

    @property
    def queued_packets(self) -> int:
        return len(self._queue)
