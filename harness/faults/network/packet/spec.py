"""What a packet-level link does, per direction: the parameters, and Mahimahi traces.

A direction is served by *delivery opportunities*: either a Mahimahi trace (one line = one
millisecond at which one 1500-byte packet may leave; the trace repeats with a period equal to
its last timestamp) or a fixed rate (one opportunity every 1500 * 8 / rate seconds). Packets
wait in a drop-tail queue (limit in packets and/or bytes, unlimited by default as in
Mahimahi), then cross a fixed one-way delay. Random loss (seeded) drops a packet as it
arrives; outage windows give no opportunities (packets wait, the queue overflows), like a
trace gap or a roaming hand-over.
"""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

TRACES_DIR = Path(__file__).resolve().parents[4] / "fixtures" / "traces"

PACKET_BYTES = 1500  # bytes one delivery opportunity may carry (Mahimahi's MTU-sized packet)


@dataclass(frozen=True)
class Outage:
    """No delivery opportunities from `start_s` to `end_s` after the spec was applied."""

    start_s: float
    end_s: float

    def __post_init__(self) -> None:
        if not 0 <= self.start_s < self.end_s:
            raise ConfigError(f"outage: need 0 <= start_s < end_s, got {self.start_s}..{self.end_s}")


@dataclass(frozen=True)
class DirectionSpec:
    """One direction of the link. Exactly one of `trace_ms` and `rate_bps` says the capacity."""

    trace_ms: tuple[int, ...] | None = None
    rate_bps: float | None = None
    delay_ms: float = 0.0
    queue_packets: int | None = None
    queue_bytes: int | None = None
    loss: float = 0.0
    outages: tuple[Outage, ...] = ()

    def __post_init__(self) -> None:
        if (self.trace_ms is None) == (self.rate_bps is None):
            raise ConfigError("a link direction needs exactly one of trace_ms and rate_bps")
        if self.trace_ms is not None:
            _check_trace(self.trace_ms)
        if self.rate_bps is not None and not self.rate_bps > 0:
            raise ConfigError(f"rate_bps must be > 0, got {self.rate_bps}")
        if self.delay_ms < 0:
            raise ConfigError(f"delay_ms must be >= 0, got {self.delay_ms}")
        for name in ("queue_packets", "queue_bytes"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1 (or None for unlimited), got {value}")
        if not 0 <= self.loss < 1:
            raise ConfigError(f"loss must be in [0, 1), got {self.loss}")

    @property
    def capacity_bps(self) -> float:
        """Mean capacity in wire bits per second (every opportunity carrying 1500 bytes)."""
        if self.rate_bps is not None:
            return self.rate_bps
        assert self.trace_ms is not None
        return len(self.trace_ms) * PACKET_BYTES * 8 / (self.trace_ms[-1] / 1000)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["trace_ms"] = list(self.trace_ms) if self.trace_ms is not None else None
        data["outages"] = [[o.start_s, o.end_s] for o in self.outages]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DirectionSpec:
        trace = data.get("trace_ms")
        return cls(
            trace_ms=tuple(int(t) for t in trace) if trace is not None else None,
            rate_bps=data.get("rate_bps"),
            delay_ms=float(data.get("delay_ms", 0.0)),
            queue_packets=data.get("queue_packets"),
            queue_bytes=data.get("queue_bytes"),
            loss=float(data.get("loss", 0.0)),
            outages=tuple(Outage(float(a), float(b)) for a, b in data.get("outages", ())),
        )


@dataclass(frozen=True)
class LinkSpec:
    """Both directions: `up` carries the device's packets to the host, `down` the answers."""

    up: DirectionSpec
    down: DirectionSpec
    seed: int = 1
    name: str = field(default="custom")

    @classmethod
    def symmetric(cls, *, seed: int = 1, name: str = "custom", **direction: Any) -> LinkSpec:
        """Same parameters both ways (loss too; pass `up_loss=` to lose only the device's packets)."""
        up_loss = direction.pop("up_loss", None)
        down = DirectionSpec(**direction)
        up = down if up_loss is None else replace(down, loss=up_loss)
        return cls(up=up, down=down, seed=seed, name=name)

    @property
    def rtt_ms(self) -> float:
        """The base round-trip time, without queueing or serialisation."""
        return self.up.delay_ms + self.down.delay_ms

    def to_dict(self) -> dict[str, Any]:
        return {"up": self.up.to_dict(), "down": self.down.to_dict(), "seed": self.seed, "name": self.name}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinkSpec:
        return cls(
            up=DirectionSpec.from_dict(data["up"]),
            down=DirectionSpec.from_dict(data["down"]),
            seed=int(data.get("seed", 1)),
            name=str(data.get("name", "custom")),
        )


def _check_trace(trace: Iterable[int]) -> None:
    values = list(trace)
    if not values:
        raise ConfigError("a Mahimahi trace needs at least one line")
    if any(b < a for a, b in itertools.pairwise(values)) or values[0] < 0:
        raise ConfigError("Mahimahi trace timestamps must be >= 0 and non-decreasing")
    if values[-1] <= 0:
        raise ConfigError("a Mahimahi trace's last timestamp (its period) must be > 0 ms")


def parse_mahimahi_trace(text: str, *, source: str = "<trace>") -> tuple[int, ...]:
    """Millisecond timestamps of a Mahimahi trace (blank lines ignored)."""
    values: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            values.append(int(line))
        except ValueError:
            raise ConfigError(f"{source}:{number}: not a millisecond timestamp: {line!r}") from None
    _check_trace(values)
    return tuple(values)


def load_mahimahi_trace(path: str | Path) -> tuple[int, ...]:
    """Read a Mahimahi trace file (e.g. fixtures/traces/Verizon-LTE-short.up; `.gz` too)."""
    path = Path(path)
    try:
        text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read trace {path}: {exc}") from exc
    return parse_mahimahi_trace(text, source=str(path))


def constant_trace(mbps: float, *, period_ms: int = 1000) -> tuple[int, ...]:
    """A Mahimahi trace of a fixed rate (12 Mbps = one 1500-byte packet every millisecond)."""
    count = round(mbps * 1e6 * period_ms / 1000 / (PACKET_BYTES * 8))
    if count < 1:
        raise ConfigError(f"{mbps} Mbps is less than one packet per {period_ms} ms")
    return tuple(max(1, round((i + 1) * period_ms / count)) for i in range(count))
