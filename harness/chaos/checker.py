"""Judge one schedule's history: the delivery ledger plus the campaign's invariants.

The verdict is about the device, never the bench:
- `error`: a bench part failed (the schedule says nothing about the device);
- `inconclusive`: the device did nothing wrong, but a fault never acted (a rule nobody hit,
  a power cut of a device already off), so the schedule did not test what it says;
- `fail`: a violation below, whatever else happened (the faults that did act were enough);
- `pass`: every fault acted and nothing was violated.

Violations (each a category in the report):
- lost / duplicated / corrupt / unexpected: the ledger (harness.certify.ledger, shared with
  the certification) over captures vs the cloud's assets;
- leaked: a file captured while the device was paused reached the cloud;
- late: a file completed more than `recovery` seconds after the last fault ended;
- resent: bytes sent again to parts the cloud already held (or to assets abandoned for a new
  one) beyond one part per asset in flight, per disruption (power cut, link break or reset);
- repaired: the device paired again (a second device row for its client id, or a code shown)
  when no fault revoked its grant and no refresh answer was lost in flight (a refresh the cloud
  answered 200 while in flight during a link break or power cut, e.g. one whose answer the cloud
  held for a cut aimed at it: single-use refresh tokens make re-pairing the
  contract's answer, so the bench approves the new code as an operator would);
- crashed: the device process died by itself or did not boot again.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.certify.ledger import Ledger, build_ledger
from harness.chaos.history import History

VERDICTS = ("pass", "fail", "inconclusive", "error")
CATEGORIES = ("lost", "duplicated", "corrupt", "unexpected", "leaked", "late", "resent", "repaired", "crashed")
DISRUPTIONS = ("power:", "network:link-down", "network:switch-path", "s3:drop", "s3:request-timeout")
"""Faults that can break a part PUT after the cloud stored it but before the device read the 200."""
ANSWER_SLACK_S = 0.3
"""An asset the cloud completed this little before a disruption is still in flight for the
device: the 200 of its last part may not have been read (seen: a cut aimed at a create landed
3 ms after the cloud completed the file's only part; the device sent that part again)."""


@dataclass(frozen=True)
class Problem:
    category: str
    detail: str


@dataclass
class Verdict:
    schedule: str
    outcome: str
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    resent_bytes: int = 0
    resent_allowance: int = 0
    unfired: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def categories(self) -> list[str]:
        return sorted({p.category for p in self.problems})

    def signature(self) -> tuple[str, ...]:
        """What the failure is, to compare a replay or a shrunk schedule with the original."""
        return tuple(self.categories)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["categories"] = self.categories
        return out


def ledger_of(history: History) -> Ledger:
    # at a pause edge the cloud's side is whether it accepted the create (an asset exists; a
    # paused capture's create is refused), not whether the upload finished in time
    accepted = {str(r.get("name")) for r in history.cloud_rows}
    captures = [c.decided(history.pause_windows, c.name in accepted) for c in history.captures]
    return build_ledger([c.row() for c in captures], history.cloud_rows,
                        device_files=history.device_files, pause_windows=history.pause_windows,
                        drained=True)


def check(history: History, *, recovery: float) -> Verdict:
    """The verdict of one schedule's history (see the module docstring)."""
    if history.bench_error is not None:
        return Verdict(history.schedule, "error", error=history.bench_error)
    ledger = ledger_of(history)
    problems: list[Problem] = []
    for f in ledger.files:
        if f.outcome in ("lost", "duplicated", "corrupt"):
            problems.append(Problem(f.outcome, f"{f.name}{': ' + f.note if f.note else ''}"))
        elif f.outcome == "leaked":
            problems.append(Problem("leaked", f"{f.name} was captured while paused and reached the cloud"))
    problems += [Problem("unexpected", f"asset {u.get('asset_id')} named {u.get('name')} matches no capture")
                 for u in ledger.unexpected]
    bound = history.faults_end + recovery
    problems += [Problem("late", f"{f.name} completed {f.completed_at - history.faults_end:.1f} s after the "
                                 f"last fault (bound {recovery:g} s)")
                 for f in ledger.files if f.completed_at is not None and f.completed_at > bound]
    resent, allowance = resent_bytes(history)
    if resent > allowance:
        problems.append(Problem("resent", f"{resent} bytes re-sent, allowed {allowance} "
                                          f"(one part per asset in flight per disruption)"))
    repair_ok = history.revoked or (history.repair_excused is not None and history.pairing_state in (None, "paired"))
    if not repair_ok and (history.device_rows > 1 or history.pairing_state not in (None, "paired")):
        problems.append(Problem("repaired", f"the device paired again without a revoke "
                                            f"({history.device_rows} device rows, pairing {history.pairing_state})"))
    if not history.device_alive or history.device_error:
        problems.append(Problem("crashed", history.device_error or "the device process died"))
    unfired = [f"{r.fault} ({r.note or 'never acted'})" for r in history.faults if r.fired is False]
    outcome = "fail" if problems else ("inconclusive" if unfired else "pass")
    return Verdict(history.schedule, outcome, problems=problems, counts=ledger.counts, resent_bytes=resent,
                   resent_allowance=allowance, unfired=unfired)


def resent_bytes(history: History) -> tuple[int, int]:
    """(bytes re-sent, bytes allowed) for the schedule's assets.

    Re-sent: successful re-PUTs of parts the cloud already stored, plus what went into assets
    abandoned for a new one of the same name (unless an expired URL justified the new one).
    Allowed: per disruption, one part of every asset in flight at that moment (created, not
    complete ANSWER_SLACK_S before it): a part stored just before the break whose 200 the
    device never read."""
    rows = history.cloud_rows
    resent = sum(int(r.get("bytes_duplicate") or 0) for r in rows)
    expired = any(f.fault.startswith("s3:expired-url") for f in history.faults)
    if not expired:
        done = {str(r.get("name")) for r in rows if r.get("completed_at")}
        resent += sum(int(r.get("bytes_received") or 0) for r in rows
                      if not r.get("completed_at") and str(r.get("name")) in done)
    allowance = 0
    for f in history.faults:
        if not f.fault.startswith(DISRUPTIONS):
            continue
        stop = f.stopped_at or f.started_at
        for r in rows:
            created, completed = float(r.get("created_at") or 0.0), r.get("completed_at")
            if created <= stop and (completed is None or float(completed) >= f.started_at - ANSWER_SLACK_S):
                allowance += part_size(r)
    return resent, allowance


def part_size(row: dict[str, Any]) -> int:
    """The asset's (largest) part size."""
    size = int(row.get("part_size") or 0)
    if size:
        return size
    return math.ceil(int(row.get("filesize") or 0) / max(1, int(row.get("parts_expected") or 1)))
