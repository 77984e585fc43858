"""Toxic types: their attribute schemas (as Toxiproxy v2.12.0 validates them) and what each
one does to a chunk on a link.

Deliberate departures from Go Toxiproxy, because its behaviour there is a bug or a crash:

* ``bandwidth`` with ``rate <= 0`` means *unlimited* (Go stalls forever at 0 and panics below).
* ``slicer`` with ``average_size <= 0`` is refused with 400 ``bad request body`` (Go recurses
  forever); a ``size_variation`` >= ``average_size`` is clamped instead of splitting badly.
* ``reset_peer`` always closes with an RST (``SO_LINGER`` on/0), also on connections that
  were already open when the toxic was added (Go sends a FIN there).
* toxicity and jitter draw from one seeded generator, so ``--seed`` makes a run repeatable.

Also different, on purpose: ``bandwidth`` paces in 10 ms slices (Go: 100 ms), so short
transfers keep the rate too; the per-link rate and the KB = 1000 bytes unit are Go's.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

#: type -> (Go struct name, ((attribute, Go type), ...)) in Go struct (= JSON key) order.
TOXIC_TYPES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "noop": ("NoopToxic", ()),
    "latency": ("LatencyToxic", (("latency", "int64"), ("jitter", "int64"))),
    "bandwidth": ("BandwidthToxic", (("rate", "int64"),)),
    "slow_close": ("SlowCloseToxic", (("delay", "int64"),)),
    "timeout": ("TimeoutToxic", (("timeout", "int64"),)),
    "reset_peer": ("ResetToxic", (("timeout", "int64"),)),
    "slicer": (
        "SlicerToxic",
        (("average_size", "int"), ("size_variation", "int"), ("delay", "int")),
    ),
    "limit_data": ("LimitDataToxic", (("bytes", "int64"),)),
}

DIRECTIONS = ("upstream", "downstream")


class ToxicSpecError(ValueError):
    """A toxic body the API must refuse with 400 ``bad request body: <message>``."""


def go_json_kind(value: Any) -> str:
    """The word Go's decoder uses for a JSON value it cannot put into a field."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def parse_direction(stream: str) -> str | None:
    """Go parses the stream case-insensitively; the string itself is kept verbatim."""
    lowered = stream.lower()
    return lowered if lowered in DIRECTIONS else None


def zero_attributes(toxic_type: str) -> dict[str, int]:
    return {key: 0 for key, _ in TOXIC_TYPES[toxic_type][1]}


def parse_attributes(
    toxic_type: str, raw: Any, base: dict[str, int] | None = None
) -> dict[str, int]:
    """Merge `raw` JSON attributes over `base` (zeros by default), validating like Go + our rules."""
    struct, schema = TOXIC_TYPES[toxic_type]
    out = dict(base) if base is not None else zero_attributes(toxic_type)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ToxicSpecError(
            f"json: cannot unmarshal {go_json_kind(raw).split(' ')[0]} into Go value of type toxics.{struct}"
        )
    for key, go_type in schema:
        if key not in raw or raw[key] is None:
            continue
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ToxicSpecError(
                f"json: cannot unmarshal {go_json_kind(value)} into Go struct field "
                f"{struct}.{key} of type {go_type}"
            )
        if not INT64_MIN <= value <= INT64_MAX:
            raise ToxicSpecError(
                f"json: cannot unmarshal number {value} into Go struct field {struct}.{key} of type {go_type}"
            )
        out[key] = value
    if toxic_type == "slicer" and out["average_size"] <= 0:
        raise ToxicSpecError("slicer average_size must be greater than 0")
    return out


@dataclass(eq=False)
class Toxic:
    """One configured toxic on a proxy. `version` changes on every update (restarts its stubs)."""

    name: str
    type: str
    stream: str
    direction: str
    toxicity: float
    attributes: dict[str, int]
    version: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }


@dataclass
class Chunk:
    """Bytes from one socket read (or end of stream), stamped with the loop time it arrived."""

    data: bytes
    t: float
    eof: bool = False


class CloseLink(Exception):
    """A toxic ends the connection: FIN normally, RST when `rst`."""

    def __init__(self, rst: bool = False) -> None:
        super().__init__("rst" if rst else "close")
        self.rst = rst


@dataclass
class ToxicRun:
    """A toxic's state on one link: whether its toxicity draw hit, and per-type counters."""

    version: int
    active: bool
    armed_at: float = 0.0  # timeout: last time the timer was (re)armed
    count: int = 0  # limit_data: bytes forwarded so far
    next_free: float = 0.0  # bandwidth: when the next piece may go
    extra: dict[str, Any] = field(default_factory=dict)


class LinkOps(Protocol):
    """What a toxic may ask of the link it runs on."""

    rng: random.Random

    def now(self) -> float: ...

    async def sleep(self, seconds: float, toxic: Toxic) -> None:
        """Sleep, returning early when `toxic` is removed from the proxy (held data flushes)."""
        ...


Emit = Callable[[Chunk], Awaitable[None]]


def slice_points(length: int, average: int, variation: int, rng: random.Random) -> list[int]:
    """Split points of a chunk by recursive halving with random shift (Go's slicer, iteratively)."""
    variation = max(0, min(variation, average - 1))
    points = [0]
    stack = [(0, length)]
    while stack:
        start, end = stack.pop()
        if (end - start) - average <= variation:
            points.append(end)
            continue
        mid = start + (end - start) // 2
        if variation > 0:
            mid += rng.randrange(-variation, variation)
        mid = max(start + 1, min(end - 1, mid))
        stack.append((mid, end))
        stack.append((start, mid))
    return points


async def run_toxic(toxic: Toxic, run: ToxicRun, item: Chunk, emit: Emit, link: LinkOps) -> None:
    """Apply one toxic to one chunk (or EOF); call `emit` for whatever goes on down the chain."""
    attrs = toxic.attributes
    kind = toxic.type
    if kind == "noop":
        await emit(item)
    elif kind == "latency":
        if item.eof:
            await emit(item)
            return
        delay = attrs["latency"]
        jitter = attrs["jitter"]
        if jitter > 0:
            delay += link.rng.randrange(-jitter, jitter)
        target = item.t + delay / 1000.0
        wait = target - link.now()
        if wait > 0:
            await link.sleep(wait, toxic)
        item.t = max(item.t, target)
        await emit(item)
    elif kind == "bandwidth":
        rate = attrs["rate"]
        if rate <= 0 or item.eof:
            await emit(item)
            return
        bps = rate * 1000.0
        piece = max(1, int(bps // 100))  # 10 ms worth per write keeps pacing smooth
        data = item.data
        for offset in range(0, len(data), piece):
            part = data[offset : offset + piece]
            now = link.now()
            if run.next_free < now - 0.05:  # idle: no credit for the gap; else catch up timer lag
                run.next_free = now
            run.next_free += len(part) / bps
            await emit(Chunk(part, item.t))
            wait = run.next_free - link.now()
            if wait > 0:
                await link.sleep(wait, toxic)
    elif kind == "slow_close":
        if item.eof and attrs["delay"] > 0:
            await link.sleep(attrs["delay"] / 1000.0, toxic)
        await emit(item)
    elif kind == "timeout":
        if item.eof:
            raise CloseLink()
        run.armed_at = link.now()  # data is swallowed; the timer restarts
    elif kind == "reset_peer":
        if attrs["timeout"] > 0:
            await link.sleep(attrs["timeout"] / 1000.0, toxic)
        raise CloseLink(rst=True)
    elif kind == "slicer":
        if item.eof:
            await emit(item)
            return
        points = slice_points(
            len(item.data), attrs["average_size"], attrs["size_variation"], link.rng
        )
        for start, end in itertools.pairwise(points):
            await emit(Chunk(item.data[start:end], item.t))
            if attrs["delay"] > 0:
                await link.sleep(attrs["delay"] / 1_000_000.0, toxic)
    elif kind == "limit_data":
        if item.eof:
            await emit(item)
            return
        remaining = attrs["bytes"] - run.count
        if remaining <= 0:
            raise CloseLink()
        if len(item.data) >= remaining:
            run.count += remaining
            await emit(Chunk(item.data[:remaining], item.t))
            raise CloseLink()
        run.count += len(item.data)
        await emit(item)
    else:  # pragma: no cover - the API refuses unknown types
        await emit(item)


def timeout_deadline(toxic: Toxic, run: ToxicRun) -> float | None:
    """When an idle link held by a `timeout` toxic must close (None: never)."""
    if toxic.type != "timeout" or not run.active or toxic.attributes["timeout"] <= 0:
        return None
    return run.armed_at + toxic.attributes["timeout"] / 1000.0


async def sleep_interruptible(seconds: float, wake: asyncio.Event) -> bool:
    """Sleep up to `seconds`; True if `wake` fired first."""
    try:
        await asyncio.wait_for(wake.wait(), seconds)
    except TimeoutError:
        return False
    return True
