"""Seed -> schedule: a random but reproducible mix of the fault vocabulary while media is captured.

`generate(seed, index)` depends on nothing but its arguments (a `random.Random` seeded with the
text "seed/index"), so schedule 17 of seed 5 is the same on every machine and in every run,
whatever ran before it. Faults of one kind of equipment (the link, the pause flag) never
overlap, so each fault's window on the timeline is the time it really held.

A fault is drawn with the traffic it needs, so it acts instead of waiting in vain: an S3 or API
rule and a forced token expiry come with a capture made just before them (its create, refresh
and parts are what the rule answers; the rule stays armed until hit), a mid-upload power cut
with a large file of its own, a power cut aimed at a create with the capture that brings the
create, one aimed at a token refresh with the expiry and capture that bring the refresh.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from harness.chaos.moments import WHEN_WAIT_S
from harness.chaos.schedule import Capture, Schedule, Step

GENERATOR = "c2c-chaos-generator/6"
LARGE_SIZE = 24 * 1024 * 1024
"""A large capture: three parts at the reference device's 8 MiB part size (it asks for
size // part_size parts), so a power cut can land between stored parts."""
PAUSE_MARGIN = 2.0
"""Captures keep this far from a pause window's edges. The cloud stamps a capture as its now
minus the device's offset, so a create that spends L seconds in transit (a loaded bench, a
retried connection) moves the capture L seconds later: near an edge, which side it falls on
is a race (seen: a file captured 1.0 s before a pause held as captured inside it)."""
LARGE_WRITE_S = 1.5
"""How much later than its step a large capture may land in the watch folder: the runner copies
24 MB into it, which took 1.08 s on a loaded bench (a capture scheduled 2 s before a pause landed
inside PAUSE_MARGIN of it). Its side of a pause edge is kept clear of that too."""
UNTIL_HIT = 5.0
"""How long past its duration a rule waits for its first hit: the capture drawn with it is
handed over after the device's 2 s quiet period, later on a loaded bench."""
MOMENT_SPAN = WHEN_WAIT_S
"""How long the power line stays reserved for a cut that waits for its moment (as long as the
runner waits; a create or refresh comes about 2.5 s after the capture that brings it)."""
POWER_MOMENTS = ((None, 3), ("mid-upload", 3), ("at-create", 2), ("at-refresh", 2))
"""When a power cut lands, with weights: a random instant, between two stored parts, right
after the cloud answered a create, right after it answered a token refresh."""


@dataclass(frozen=True)
class Drawn:
    """A fault drawn from the menu: its steps, the equipment it occupies (none: shareable) and
    until when past its last step (the power line while a cut waits for its moment)."""

    steps: tuple[Step, ...]
    lanes: tuple[str, ...] = ()
    reserve: float = 0.0


FaultMaker = Callable[[random.Random, float, "DrawState"], Drawn]


@dataclass
class DrawState:
    """What the generator needs while it draws: the captures so far (for file faults)."""

    schedule_name: str
    captures: list[Step]

    def new_capture(self, at: float, rng: random.Random, *, allow_damage: bool = True) -> Step:
        n = len(self.captures) + 1
        corruption = rng.choice(("truncate", "zero-length")) if allow_damage and rng.random() < 0.12 else None
        step = Step(at=round(at, 2), capture=Capture(name=f"{self.schedule_name}-{n:02d}.jpg",
                                                      corruption=corruption))
        self.captures.append(step)
        return step

    def new_large(self, at: float) -> Step:
        """A large file (several parts) of the schedule's own, e.g. for a mid-upload power cut."""
        n = len(self.captures) + 1
        step = Step(at=round(at, 2), capture=Capture(name=f"{self.schedule_name}-{n:02d}.bin", kind="large",
                                                      size=LARGE_SIZE))
        self.captures.append(step)
        return step

    def target(self, at: float, rng: random.Random) -> Step:
        """An undamaged capture at `at` whose create and part bring the traffic a fault needs
        (sorted before a fault at the same offset, so it is in the folder first)."""
        return self.new_capture(at, rng, allow_damage=False)


def _r(x: float) -> float:
    return round(x, 2)


def _link_down(rng: random.Random, at: float, st: DrawState) -> Drawn:
    held = rng.uniform(0.3, 2.5)
    steps = [Step(at=_r(at), fault="network:link-down", duration=_r(held))]
    if held >= 0.8:  # a capture while offline
        steps.append(st.new_capture(at + held / 2, rng))
    return Drawn(tuple(steps), lanes=("network",))


def _flap(rng: random.Random, at: float, st: DrawState) -> Drawn:
    return Drawn((Step(at=_r(at), fault="network:link-down", duration=_r(rng.uniform(0.2, 0.5)),
                       repeat=rng.randint(2, 4), gap=_r(rng.uniform(0.2, 0.6))),), lanes=("network",))


def _shaped(rng: random.Random, at: float, st: DrawState) -> Drawn:
    profile = rng.choice(("cellular", "hotspot", "direct-modem", "bonded-cellular"))
    return Drawn((Step(at=_r(at), fault=f"network:{profile}", duration=_r(rng.uniform(1.5, 4.0))),),
                 lanes=("network",))


def _reset(rng: random.Random, at: float, st: DrawState) -> Drawn:
    return Drawn((Step(at=_r(at), fault="network:switch-path"),), lanes=("network",))


def _power(rng: random.Random, at: float, st: DrawState) -> Drawn:
    off = rng.uniform(0.1, 1.0)
    moments = [m for m, _ in POWER_MOMENTS]
    when = rng.choices(moments, weights=[w for _, w in POWER_MOMENTS])[0]
    cut = Step(at=_r(at), fault=f"power:cycle off_time={_r(off)}", when=when)
    if when is None:  # a random instant
        return Drawn((cut,), lanes=("power",))
    if when == "mid-upload":
        return Drawn((st.new_large(at), cut), lanes=("power",), reserve=MOMENT_SPAN)
    if when == "at-create":
        return Drawn((st.target(at, rng), cut), lanes=("power",), reserve=MOMENT_SPAN)
    # at-refresh: expired tokens make the capture's create answer 401, the device refreshes
    return Drawn((st.target(at, rng), Step(at=_r(at), fault="auth:expire-tokens"), cut),
                 lanes=("power", "auth"), reserve=MOMENT_SPAN)


def _rule(text: str, lo: int, hi: int, extra: str = "") -> FaultMaker:
    def make(rng: random.Random, at: float, st: DrawState) -> Drawn:
        count = rng.randint(lo, hi)
        return Drawn((st.target(at, rng), Step(at=_r(at), fault=f"{text} x{count}{extra}",
                                                duration=_r(rng.uniform(1.5, 3.0)), until_hit=UNTIL_HIT)))
    return make


def _token_expiry(rng: random.Random, at: float, st: DrawState) -> Drawn:
    steps = [st.target(at, rng), Step(at=_r(at), fault="auth:expire-tokens")]
    if rng.random() < 0.5:  # the refresh that follows fails for a while (transiently)
        steps.append(Step(at=_r(at), fault="auth:refresh-failure kind=internal_error",
                          duration=_r(rng.uniform(1.0, 2.5)), until_hit=UNTIL_HIT))
    return Drawn(tuple(steps), lanes=("auth",))


def _pause(rng: random.Random, at: float, st: DrawState) -> Drawn:
    at = max(at, LARGE_WRITE_S + PAUSE_MARGIN)  # clear of the large file captured at 0
    held = rng.uniform(2.0 * PAUSE_MARGIN + 0.5, 2.0 * PAUSE_MARGIN + 2.0)
    inside = rng.uniform(at + PAUSE_MARGIN, at + held - PAUSE_MARGIN)
    return Drawn((Step(at=_r(at), fault="cloud:pause", duration=_r(held)),
                  st.new_capture(inside, rng, allow_damage=False)), lanes=("pause",))


def _vanish(rng: random.Random, at: float, st: DrawState) -> Drawn:
    victim = st.new_capture(at, rng, allow_damage=False)
    assert victim.capture is not None
    return Drawn((victim, Step(at=_r(at + rng.uniform(0.0, 0.8)), fault="media:vanish",
                               file=victim.capture.name)))


MENU: tuple[tuple[str, int, FaultMaker], ...] = (
    ("link-down", 3, _link_down),
    ("link-flap", 2, _flap),
    ("latency-bandwidth", 2, _shaped),
    ("connection-reset", 2, _reset),
    ("power-cut", 3, _power),
    ("s3-slowdown", 1, _rule("s3:slowdown", 1, 3)),
    ("s3-internal-error", 1, _rule("s3:internal-error", 1, 3)),
    ("s3-request-timeout", 1, _rule("s3:request-timeout", 1, 2)),
    ("s3-drop", 1, _rule("s3:drop", 1, 2)),
    ("s3-expired-url", 1, _rule("s3:expired-url", 1, 2)),
    ("api-5xx", 1, _rule("api:internal-error", 1, 3)),
    ("api-429", 1, _rule("api:too-many-requests", 1, 3, " retry_after=1")),
    ("api-409-slow-down", 1, _rule("api:conflict-slow-down", 1, 3)),
    ("token-expiry", 2, _token_expiry),
    ("cloud-pause", 2, _pause),
    ("vanishing-file", 1, _vanish),
)
KINDS = tuple(name for name, _, _ in MENU)


def generate(seed: int, index: int, *, duration: float = 6.0, recovery: float = 45.0,
             max_faults: int = 4) -> Schedule:
    """Schedule `index` of campaign `seed`: captures and 1..max_faults faults within `duration`
    seconds, then `recovery` seconds of quiet."""
    rng = random.Random(f"{seed}/{index}")
    name = Schedule(seed=seed, index=index, steps=()).name
    state = DrawState(schedule_name=name, captures=[])
    # a large file first, so power cuts and S3 errors meet an upload in progress
    large = Step(at=0.0, capture=Capture(name=f"{name}-00.bin", kind="large", size=LARGE_SIZE))
    for _ in range(rng.randint(1, 3)):
        state.new_capture(rng.uniform(0.0, duration), rng)
    busy: dict[str, float] = {}
    faults: list[Step] = []
    brought: dict[int, set[str]] = {}  # id(fault) -> the captures drawn with it at its offset
    weights = [w for _, w, _ in MENU]
    for _ in range(rng.randint(1, max_faults)):
        _, _, make = rng.choices(MENU, weights=weights)[0]
        drawn = make(rng, rng.uniform(0.2, duration), state)
        end = max(s.ends_at for s in drawn.steps) + drawn.reserve
        start = min(s.at for s in drawn.steps)
        if any(busy.get(lane, -1.0) > start for lane in drawn.lanes):
            # that equipment is held already: drop this draw (its captures stay, harmless)
            continue
        for lane in drawn.lanes:
            busy[lane] = end + 0.3
        for fault in (s for s in drawn.steps if s.is_fault):
            faults.append(fault)
            brought[id(fault)] = {s.capture.name for s in drawn.steps if s.capture is not None and s.at == fault.at}
    faults = [f for f in faults if not _aimed_into_pause(f, faults)]
    captures = [c for c in state.captures if not _near_pause_edge(c, faults)]
    kept = {c.capture.name for c in captures if c.capture is not None}
    # a fault goes with the capture it was drawn with (the traffic it waits for) or aims at
    faults = [f for f in faults if (f.file is None or f.file in kept) and brought[id(f)] <= kept]
    steps = sorted([large, *captures, *faults], key=lambda s: (s.at, s.capture is None))
    return Schedule(seed=seed, index=index, steps=tuple(steps), recovery=recovery,
                    origin={"generator": GENERATOR, "duration": duration})


def _aimed_into_pause(step: Step, faults: list[Step]) -> bool:
    """A fault that needs its capture's traffic, drawn where that capture is held back as paused
    (or near the pause's edge, where it is dropped): dropped, it could only wait in vain."""
    aimed = step.until_hit > 0 or step.when is not None or step.fault == "auth:expire-tokens"
    return aimed and any(f.fault == "cloud:pause" and f.at - PAUSE_MARGIN <= step.at <= f.ends_at + PAUSE_MARGIN
                         for f in faults)


def landing(capture: Step) -> tuple[float, float]:
    """When a capture may land in the watch folder: at its step, or up to LARGE_WRITE_S later
    for a large one (the copy takes that long on a loaded bench)."""
    late = LARGE_WRITE_S if capture.capture is not None and capture.capture.kind == "large" else 0.0
    return capture.at, capture.at + late


def _near_pause_edge(capture: Step, faults: list[Step]) -> bool:
    """A capture that may land too close to a pause's start or end (dropped: its side of the
    edge is a race; a file fault aimed at it goes with it)."""
    first, last = landing(capture)
    for f in faults:
        if f.fault == "cloud:pause":
            for edge in (f.at, f.ends_at):
                if first - PAUSE_MARGIN < edge < last + PAUSE_MARGIN:
                    return True
    return False
