"""The oracle's side of what a device shows: remaining files and bytes, per-file results.

A device's status sample is bracketed by two reads of the emulator's ledger, one just
before and one just after it, and compared with every oracle reading of the last
`LAG_S` seconds: a device learns that the cloud stored a part one response later (through a
slow link, tens of milliseconds), so it may show the cloud's state of a moment ago. It may
also be ahead by the bytes it has put on the wire that the cloud has not stored yet (the
unstored bytes of assets already created). Outside that band the distance is the error the
checklist limits (STAT-01: one file; STAT-02: one part).

Pure functions over rows plus one small sampler; the steps in device_display_steps.py use them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

LAG_S = 1.0  # how far behind the cloud a correct device's status may be


@dataclass(frozen=True)
class Remaining:
    """What is left to upload of the captures, as the cloud sees it."""

    count: int  # captures not complete in the cloud
    nbytes: int  # their bytes the cloud has not stored
    in_flight: int  # unstored bytes of captures whose asset exists (the device may have sent them)


def _rows_by_name(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        out.setdefault(str(r.get("name")), []).append(r)
    return out


class CapturedFile(Protocol):
    """What the oracle reads of a capture (harness.certify.ledger.Capture has it)."""

    @property
    def name(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def corruption(self) -> str | None: ...


def remaining(captures: Sequence[CapturedFile], rows: Iterable[Mapping[str, Any]]) -> Remaining:
    """Captures (with .name, .size, .corruption) not yet complete in the cloud, from ledger rows."""
    by_name = _rows_by_name(rows)
    count = nbytes = in_flight = 0
    for c in captures:
        if c.corruption:
            continue  # a device may rightly refuse damaged media: never "remaining" for the oracle
        mine = by_name.get(c.name, [])
        if any(r.get("completed_at") for r in mine):
            continue
        stored = max((min(int(c.size), int(r.get("bytes_stored") or 0)) for r in mine), default=0)
        count += 1
        nbytes += int(c.size) - stored
        if mine:
            in_flight += int(c.size) - stored
    return Remaining(count, nbytes, in_flight)


def one_part(captures: Sequence[Any], rows: Iterable[Mapping[str, Any]]) -> int:
    """The largest upload part among the captures (a single-part file is its own size)."""
    by_name = _rows_by_name(rows)
    best = 0
    for c in captures:
        parts = max((int(r.get("parts_expected") or 1) for r in by_name.get(c.name, [])), default=1)
        best = max(best, math.ceil(int(c.size) / max(1, parts)))
    return best


def band_error(value: float, low: float, high: float) -> float:
    """How far `value` lies outside [low, high] (0 inside)."""
    if value < low:
        return low - value
    if value > high:
        return value - high
    return 0.0


@dataclass
class RemainingSampler:
    """Bracketed samples of the device's remaining count/bytes against the cloud's."""

    read_oracle: Callable[[], Remaining]
    read_device: Callable[[], Mapping[str, Any]]
    history: list[tuple[float, Remaining]] = field(default_factory=list)
    count_error: float = 0.0
    bytes_error: float = 0.0
    samples: int = 0
    worst: dict[str, Any] = field(default_factory=dict)

    def _oracle(self) -> Remaining:
        r = self.read_oracle()
        now = time.monotonic()
        self.history.append((now, r))
        self.history = [(t, x) for t, x in self.history if t >= now - 10 * LAG_S]
        return r

    def sample(self, *, record: bool = True) -> tuple[float, float, dict[str, Any]]:
        """One bracketed sample: (count error, bytes error, the evidence). `record=False` while
        waiting for the device to show a new state (timed separately), not judged."""
        before_t = time.monotonic()
        before = self._oracle()
        queue = self.read_device().get("queue") or {}
        after = self._oracle()
        recent = [x for t, x in self.history if t >= before_t - LAG_S]
        dev_count = int(queue.get("remaining_count") or 0)
        dev_bytes = int(queue.get("remaining_bytes") or 0)
        count_err = band_error(dev_count, min(before.count, after.count), max(x.count for x in recent))
        ahead = max(before.in_flight, after.in_flight)
        bytes_err = band_error(dev_bytes, min(before.nbytes, after.nbytes) - ahead, max(x.nbytes for x in recent))
        evidence = {"device_count": dev_count, "oracle_count": [before.count, after.count],
                    "device_bytes": dev_bytes, "oracle_bytes": [before.nbytes, after.nbytes], "ahead_bytes": ahead}
        if not record:
            return count_err, bytes_err, evidence
        self.samples += 1
        if count_err > self.count_error or bytes_err > self.bytes_error:
            self.worst = evidence
        self.count_error = max(self.count_error, count_err)
        self.bytes_error = max(self.bytes_error, bytes_err)
        return count_err, bytes_err, evidence


def expected_state(outcome: str) -> set[str]:
    """Device file states that agree with the ledger's outcome for a capture."""
    if outcome == "intact":
        return {"done", "completed", "uploaded"}
    if outcome in {"rejected", "lost"}:
        return {"failed", "quarantined"}
    return {"queued", "uploading", "paused", "held", "failed"}


def state_mismatches(outcomes: Mapping[str, str], files: Iterable[Mapping[str, Any]]) -> list[str]:
    """Captures whose listed state disagrees with the cloud (or that the device does not list)."""
    listed: dict[str, str] = {}
    for f in files:
        listed[str(f.get("name"))] = str(f.get("state"))
    return [f"{name}: shown {listed.get(name)!r}, cloud says {outcome}" for name, outcome in outcomes.items()
            if listed.get(name) not in expected_state(outcome)]


def counter_mismatches(queue: Mapping[str, Any], outcomes: Mapping[str, str]) -> list[str]:
    """Queue counters below what the cloud knows of this scenario's captures alone (counters are
    cumulative over the device's life, so they may be higher, never lower)."""
    intact = sum(1 for o in outcomes.values() if o == "intact")
    refused = sum(1 for o in outcomes.values() if o in {"rejected", "lost"})
    shown_done = int(queue.get("completed") or 0)
    shown_failed = int(queue.get("failed") or 0) + int(queue.get("quarantined") or 0)
    out = []
    if shown_done < intact:
        out.append(f"completed counter {shown_done} < {intact} delivered")
    if shown_failed < refused:
        out.append(f"failed+quarantined counter {shown_failed} < {refused} not delivered")
    return out
