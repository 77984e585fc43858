"""What one schedule's run left behind: the history the checker judges (no processes needed).

Times are Unix seconds (the bench's wall clock, which the emulator also keeps unless a fault
advances its clock; the campaign never does).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

PAUSE_EDGE_S = 1.5
"""A capture this close to a pause window's start or stop may fall on either side of it in the
cloud's eyes (the cloud's pause starts after the bench asked; the cloud stamps a capture as its
now minus the device's offset, so a slow create moves it later): such a file may be withheld or
delivered, but never duplicated or corrupt."""


@dataclass(frozen=True)
class CaptureRecord:
    """A file the device was given: the ground truth (never the device's word)."""

    name: str
    sha256: str | None
    size: int
    captured_at: float
    path: str = ""
    corruption: str | None = None
    paused: bool | None = None
    """None: decided from the pause windows (the ledger's rule)."""

    def row(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "size": self.size, "captured_at": self.captured_at,
                "path": self.path, "corruption": self.corruption, "paused": self.paused}

    def decided(self, windows: list[dict[str, Any]], accepted: bool) -> CaptureRecord:
        """This capture with `paused` settled: at a pause edge, the side the cloud chose (it
        accepted the create: not paused)."""
        return replace(self, paused=not accepted) if near_pause_edge(self.captured_at, windows) else self


def near_pause_edge(at: float, windows: list[dict[str, Any]]) -> bool:
    for w in windows:
        for edge in (w.get("start"), w.get("stop")):
            if edge is not None and abs(at - float(edge)) < PAUSE_EDGE_S:
                return True
    return False


@dataclass
class FaultRecord:
    """One application of a schedule step's fault (a flap has one per repeat)."""

    step: int
    fault: str
    started_at: float
    stopped_at: float | None = None
    fired: bool | None = None
    """True: seen to act (a rule hit, a process killed, a link changed); False: never acted;
    None: no witness beyond its successful injection (counted as fired)."""
    note: str = ""
    aimed_at: float | None = None
    """When the request this fault waited for (`at-create`, `at-refresh`) reached the cloud."""
    answered_at: float | None = None
    """When the cloud let the held answer to that request go (the hold rule's word): after the
    fault was applied."""


@dataclass
class History:
    """The run of one schedule on one lane."""

    schedule: str
    lane: int
    started_at: float
    faults_end: float = 0.0
    finished_at: float = 0.0
    captures: list[CaptureRecord] = field(default_factory=list)
    faults: list[FaultRecord] = field(default_factory=list)
    cloud_rows: list[dict[str, Any]] = field(default_factory=list)
    device_files: list[dict[str, Any]] = field(default_factory=list)
    pause_windows: list[dict[str, Any]] = field(default_factory=list)
    device_alive: bool = True
    device_rows: int = 1
    """1 + the cloud device rows the lane's client id gained during the schedule (2+: the device
    paired again; a re-pair excused in an earlier schedule on the lane does not count)."""
    pairing_state: str | None = None
    revoked: bool = False
    repair_excused: str | None = None
    """Why the bench approved a second pairing (the grant was lost in flight), or None."""
    bench_error: str | None = None
    device_error: str | None = None

    @property
    def power_cuts(self) -> int:
        return sum(1 for f in self.faults if f.fault.startswith("power:"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
