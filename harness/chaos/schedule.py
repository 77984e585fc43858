"""A fault schedule: what happens when, as data, so a failing one can be written out and replayed.

A schedule is a list of steps at offsets (seconds from its start): captures (a file the device
records, possibly damaged first) and faults (vocabulary text such as `network:link-down`, held
for `duration` seconds, `repeat` times with `gap` seconds between, e.g. a link flap). After the
last step comes the quiet recovery window: no fault, the device must deliver everything.
The JSON form round-trips exactly (`Schedule.from_json(s.to_json()) == s`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

FORMAT = "c2c-chaos-schedule/1"
CAPTURE_KINDS = ("jpg", "large")
WHENS = ("mid-upload", "at-create", "at-refresh")
"""Moments a fault waits for (see `Step.when`)."""
CORRUPTIONS = ("truncate", "zero-length")
"""Damage done to a file before the device sees it (a broken clip on the card)."""


@dataclass(frozen=True)
class Capture:
    """The device records one file: `kind` jpg (small) or large (`size` bytes, several parts)."""

    name: str
    kind: str = "jpg"
    size: int = 0
    corruption: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in CAPTURE_KINDS:
            raise ConfigError(f"capture {self.name}: kind {self.kind!r} is not one of {CAPTURE_KINDS}")
        if self.corruption is not None and self.corruption not in CORRUPTIONS:
            raise ConfigError(f"capture {self.name}: corruption {self.corruption!r} is not one of {CORRUPTIONS}")


@dataclass(frozen=True)
class Step:
    """One thing at `at` seconds: a capture, or a vocabulary fault held `duration` s.

    A fault on a captured file (`media:vanish`) names it in `file`.
    """

    at: float
    capture: Capture | None = None
    fault: str | None = None
    duration: float = 0.0
    repeat: int = 1
    gap: float = 0.0
    file: str | None = None
    when: str | None = None
    """A moment to wait for (up to a few seconds) before the fault: `mid-upload` = while one of
    the schedule's files is part-way into the cloud, between stored parts; `at-create` = as soon
    as the cloud has answered an asset create of this run; `at-refresh` = as soon as it has
    answered a token request (a refresh: the lane is paired) with 200. Not reached: the fault is
    not applied (and the schedule is inconclusive)."""
    until_hit: float = 0.0
    """For a fault that arms an emulator rule: if nobody has hit the rule when `duration` ends,
    it stays armed until its first hit, at most this many seconds more (the request it is meant
    for may come a little late: a capture is handed over after the device's quiet period)."""

    def __post_init__(self) -> None:
        if (self.capture is None) == (self.fault is None):
            raise ConfigError(f"step at {self.at}s must be exactly one of a capture or a fault")
        if self.when is not None and self.when not in WHENS:
            raise ConfigError(f"step at {self.at}s: when {self.when!r} is not one of {WHENS}")
        if self.at < 0 or self.duration < 0 or self.gap < 0 or self.repeat < 1 or self.until_hit < 0:
            raise ConfigError(f"step at {self.at}s: negative time or repeat < 1")

    @property
    def is_fault(self) -> bool:
        return self.fault is not None

    @property
    def ends_at(self) -> float:
        """When this step's last fault window closes (its start for a capture)."""
        return self.at + self.repeat * self.duration + (self.repeat - 1) * self.gap

    def label(self) -> str:
        if self.capture is not None:
            damage = f" ({self.capture.corruption})" if self.capture.corruption else ""
            return f"capture {self.capture.name}{damage}"
        times = f" x{self.repeat} every {self.duration + self.gap:g}s" if self.repeat > 1 else ""
        held = f" for {self.duration:g}s" if self.duration else ""
        target = f" {self.file}" if self.file else ""
        moment = f" {self.when}" if self.when else ""
        longer = f" (+<={self.until_hit:g}s until hit)" if self.until_hit else ""
        return f"{self.fault}{target}{moment}{held}{longer}{times}"


@dataclass(frozen=True)
class Schedule:
    """A seed's timeline for one device: steps, then a quiet recovery window of `recovery` s."""

    seed: int
    index: int
    steps: tuple[Step, ...]
    recovery: float = 45.0
    note: str = ""
    origin: dict[str, Any] = field(default_factory=dict)
    """Where it came from (generator version, a shrink's parent); not part of what is run."""

    @property
    def name(self) -> str:
        return f"s{self.seed}-{self.index:04d}"

    @property
    def faults(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.is_fault)

    @property
    def captures(self) -> tuple[Capture, ...]:
        return tuple(s.capture for s in self.steps if s.capture is not None)

    @property
    def faults_end(self) -> float:
        """Offset at which the last fault ends (0 without faults): the recovery window opens."""
        return max((s.ends_at for s in self.faults), default=0.0)

    @property
    def length(self) -> float:
        return max((s.ends_at for s in self.steps), default=0.0)

    def without_fault(self, number: int) -> Schedule:
        """The schedule minus its `number`-th fault (0-based over `faults`), for the shrinker.

        A fault aimed at a file keeps the file's capture; captures are never dropped."""
        target = self.faults[number]
        kept = tuple(s for s in self.steps if s is not target)
        return replace(self, steps=kept, origin={**self.origin, "shrunk_from": self.name})

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "seed": self.seed, "index": self.index, "recovery": self.recovery,
                "note": self.note, "origin": self.origin, "steps": [_step_dict(s) for s in self.steps]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schedule:
        if data.get("format") != FORMAT:
            raise ConfigError(f"not a chaos schedule: format {data.get('format')!r}, expected {FORMAT!r}")
        try:
            steps = tuple(_step_from(s) for s in data["steps"])
            return cls(seed=int(data["seed"]), index=int(data["index"]), steps=steps,
                       recovery=float(data.get("recovery", 45.0)), note=str(data.get("note", "")),
                       origin=dict(data.get("origin") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"chaos schedule: bad or missing field: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> Schedule:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"chaos schedule is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError("chaos schedule: the document must be a JSON object")
        return cls.from_dict(data)

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> Schedule:
        try:
            return cls.from_json(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read chaos schedule {path}: {exc}") from None


def _step_dict(step: Step) -> dict[str, Any]:
    out = {k: v for k, v in asdict(step).items() if v is not None}
    return out


def _step_from(data: dict[str, Any]) -> Step:
    capture = data.get("capture")
    return Step(
        at=float(data["at"]),
        capture=Capture(**capture) if isinstance(capture, dict) else None,
        fault=data.get("fault"),
        duration=float(data.get("duration", 0.0)),
        repeat=int(data.get("repeat", 1)),
        gap=float(data.get("gap", 0.0)),
        file=data.get("file"),
        when=data.get("when"),
        until_hit=float(data.get("until_hit", 0.0)),
    )
