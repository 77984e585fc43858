"""What one scenario did, as typed fields: the captures, the journal cursor, the measurements
and everything a step leaves for a later step of the same scenario (issue #15, point 3).

Each field is named after what it holds; a value that is a structure is a small dataclass
(or a TypedDict where it is the cloud's own JSON shape), so a misspelt field is a type error,
not a silent `None` from a string-keyed dict.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from harness.certify.lost_grant import RefreshAnswers
from harness.machine import CpuStallMark

if TYPE_CHECKING:
    from harness.bdd.interception import TlsInterception
    from harness.bdd.steps.status_oracle import RemainingSampler
    from harness.faults.http.interceptor import Interceptor


@dataclass
class Capture:
    """A file the scenario captured (the manifest row the ledger starts from)."""

    name: str
    path: Path
    sha256: str | None
    size: int
    captured_at: float
    corruption: str | None = None
    kind: str = ""
    paused: bool | None = None

    def row(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "sha256": self.sha256, "size": self.size,
                "captured_at": self.captured_at, "corruption": self.corruption, "paused": self.paused}


@dataclass
class Grant:
    """The tokens the cloud issued on an approval (C2C-AUTH-03): whose, at which journal row and
    cloud time, and when the device's revoke of them was seen."""

    device_id: str
    issued_id: int
    issued_t: float
    revoked_t: float | None = None


@dataclass
class AlertWatch:
    """The background sampling of the device's status for user alerts (C2C-NET-02)."""

    stop: threading.Event
    thread: threading.Thread | None = None
    samples: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FaultEnd:
    """One fault's end: what it was, where the journal stood, whether uploads were pending."""

    what: str
    journal_id: int
    pending: list[str]
    ended: float = 0.0  # monotonic, right after the fault ended
    recovered: float | None = None  # monotonic, when an accepted upload was first seen after it
    resumed: int = 0  # accepted upload requests after it (at the last poll)

    @property
    def time_to_recover_s(self) -> float | None:
        return None if self.recovered is None else round(max(0.0, self.recovered - self.ended), 1)


class IdleWindow(TypedDict):
    """The real-time window the device stayed idle in, with the cloud's status beats (cloud time)."""

    start: float
    end: float
    beats: list[dict[str, Any]]


class AssetConflict(TypedDict):
    """The 409 fault armed on asset creation and the journal id it was armed at."""

    message: str
    count: int
    since: int


@dataclass
class ScenarioState:
    """What one scenario did: captures, start time, journal cursor, measurements, and what its
    steps leave for later steps."""

    started_at: float = field(default_factory=time.time)
    cpu_mark: CpuStallMark = field(default_factory=CpuStallMark.now)  # how starved the bench was since
    journal_since: int = 0
    journal_rows: list[dict[str, Any]] = field(default_factory=list)  # read so far, after journal_since
    captures: list[Capture] = field(default_factory=list)
    measurements: list[dict[str, Any]] = field(default_factory=list)
    pairing_code: str | None = None
    codes_seen: list[str] = field(default_factory=list)
    exercised: list[str] = field(default_factory=list)
    declared: dict[str, str] = field(default_factory=dict)  # item -> the profile's evidence text
    operator_mark: int = 0  # operator answers before this index belong to earlier scenarios
    interception: TlsInterception | None = None  # the TLS interceptor this scenario started

    # the scenario's checklist items (from its tags): steps name the item a skip is about
    items: list[str] = field(default_factory=list)
    # cloud settings and device mode to put back at cleanup
    restore_settings: dict[str, Any] = field(default_factory=dict)
    restore_mode: str | None = None
    paused_now: bool = False  # the cloud has the device paused: captures now are taken while paused
    url_pairing: bool = False
    device_name: str | None = None  # the name the cloud renamed the device to
    console_mark: tuple[int, int] | None = None  # (id of the device, console length) at the start
    # network
    network_profile: str | None = None
    upload_rate_mbps: float | None = None
    plain_http_baseline: int = 0  # plain-HTTP attempts trapped before the scenario
    interceptor: Interceptor | None = None
    interceptor_certificate: str | None = None  # the flaw the interceptor's certificate shows
    intercept_from: float | None = None  # wall clock
    # pairing
    issued_code: dict[str, Any] | None = None  # the pending-code row of the code the device shows
    code_client_id: str | None = None
    code_issued_at: float | None = None
    poll_error: str | None = None  # the error the cloud answers token polls with
    paired_journal_head: int = 0
    grant: Grant | None = None
    cancelled_at: float | None = None
    cancelled_cloud_t: float | None = None  # the cancel on the emulator's clock (journal `started_at`)
    asset_conflict: AssetConflict | None = None
    # media and uploads
    hero: dict[str, Any] | None = None  # the hero file's manifest entry
    proxy_row: dict[str, Any] | None = None  # the hero's proxy in the cloud's ledger
    captured_while_uploading: list[str] = field(default_factory=list)
    clock_jumps: list[int] = field(default_factory=list)  # journal head before each clock jump
    power_cut_hits: list[str] = field(default_factory=list)  # the file each power cut landed in
    paired_again: str | None = None  # why the bench paired the device again (a grant lost in a cut)
    refresh_answers: RefreshAnswers | None = None  # read once a power cut happened (lost_grant)
    tether_shots: int = 0  # shutter presses (frames shot) on a tethered camera
    fault_ends: list[FaultEnd] = field(default_factory=list)
    # status
    idle_window: IdleWindow | None = None
    remaining_sampler: RemainingSampler | None = None
    alert_watch: AlertWatch | None = None


