"""Upload throughput from the emulator's request journal (C2C-NETW-01).

A device uploads parts in parallel and sits idle between files (waiting for captures,
creating assets). Neither should bend the figure: the rate is the accepted part bytes
divided by the time at least one part PUT was in flight, i.e. the length of the union
of the PUTs' active intervals [started_at, started_at + duration_ms].

    rate = part_upload_rate(bench.journal())
    rate.mbps, rate.busy_s, rate.parts
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.cloud.paths import issued_part_url
from harness.errors import BenchFailure


@dataclass(frozen=True)
class Interval:
    """One request's active time (seconds, any clock shared by all) and bytes counted."""

    start: float
    duration: float
    nbytes: int = 0


@dataclass(frozen=True)
class UploadRate:
    """Bytes over the busy time, and the figures it came from (for the report)."""

    nbytes: int
    busy_s: float
    span_s: float
    parts: int
    first_start: float = 0.0  # when the first part PUT started (the journal's clock)

    @property
    def mbps(self) -> float:
        """Megabits (10^6) per second; 0 when nothing was active."""
        return self.nbytes * 8 / 1e6 / self.busy_s if self.busy_s > 0 else 0.0

    def describe(self) -> str:
        return (f"{self.nbytes} bytes in {self.parts} accepted part PUTs over {self.busy_s:.3f} s "
                f"with at least one part PUT in flight (first start to last end: "
                f"{self.span_s:.3f} s)")


def union_length(intervals: Iterable[Interval]) -> float:
    """Total time covered by at least one interval (overlaps counted once, gaps not at all)."""
    spans = sorted((i.start, i.start + max(i.duration, 0.0)) for i in intervals)
    total = 0.0
    current: tuple[float, float] | None = None
    for start, end in spans:
        if current is None or start > current[1]:
            if current is not None:
                total += current[1] - current[0]
            current = (start, end)
        elif end > current[1]:
            current = (current[0], end)
    if current is not None:
        total += current[1] - current[0]
    return total


def interval_rate(intervals: Sequence[Interval]) -> UploadRate:
    """Bytes of every interval over the length of their union."""
    if not intervals:
        return UploadRate(nbytes=0, busy_s=0.0, span_s=0.0, parts=0)
    first = min(i.start for i in intervals)
    span = max(i.start + max(i.duration, 0.0) for i in intervals) - first
    return UploadRate(nbytes=sum(i.nbytes for i in intervals), busy_s=union_length(intervals),
                      span_s=span, parts=sum(1 for i in intervals if i.nbytes), first_start=first)


def part_rates_mbps(journal: Iterable[Mapping[str, Any]]) -> list[float]:
    """Each accepted part PUT's own rate (its bytes over its own active time), in Mbit/s."""
    return [i.nbytes * 8 / 1e6 / i.duration for i in _part_intervals(journal) if i.nbytes and i.duration > 0]


def part_upload_rate(journal: Iterable[Mapping[str, Any]]) -> UploadRate:
    """Upload rate of the part PUTs in a journal excerpt (rows of GET /_bench/v1/journal).

    Bytes: request bodies of accepted (2xx) part PUTs. Time: the union of the active
    intervals of every part PUT, refused ones too (time the device spent on a failed PUT
    was not available for others). Rows without started_at/duration_ms (written by an
    older emulator) make the figure meaningless: a BenchFailure says so.
    """
    return interval_rate(_part_intervals(journal))


def _part_intervals(journal: Iterable[Mapping[str, Any]]) -> list[Interval]:
    intervals: list[Interval] = []
    for row in journal:
        if row.get("method") != "PUT" or not issued_part_url(str(row.get("path") or "")):
            continue
        started, duration_ms = row.get("started_at"), row.get("duration_ms")
        if started is None or duration_ms is None:
            raise BenchFailure(
                f"journal row {row.get('id')} has no started_at/duration_ms: the emulator "
                "that wrote it predates per-request timing, so throughput cannot be measured")
        accepted = 200 <= int(row.get("status") or 0) < 300
        intervals.append(Interval(start=float(started), duration=float(duration_ms) / 1000.0,
                                  nbytes=int(row.get("bytes_in") or 0) if accepted else 0))
    return intervals
