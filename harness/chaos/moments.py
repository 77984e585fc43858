"""The moments a fault may wait for, seen from the cloud, never the device.

`mid-upload`: a file of this run part-way into the cloud, between stored parts (its ledger).
`at-create` / `at-refresh`: an asset create / a token request (a refresh: the lane is paired)
of the lane's device has just reached the cloud. The bench arms a `hold` rule for the device
when the fault's time comes: the cloud carries the request out and keeps its answer back, says
when it arrived, the fault (a power cut) lands, and only then is the answer let go, so the cut
falls between the cloud's work and the device's knowing of it, every time. (The journal records
a request only once answered: a cut aimed from it landed after the answer, a race.)
While a fault waits, the schedule goes on: captures happen and held faults end on time.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness.chaos.schedule import Step
from harness.cloud.control import CloudControl
from harness.cloud.paths import ASSET_CREATE_PATH, TOKEN_RULE
from harness.errors import CloudError

WHEN_WAIT_S = 6.0
"""How long a moment is waited for: a capture is handed over after the device's 2 s quiet
period, and hashing and creating a 24 MiB file took 2.5 s more on a loaded bench."""
POLL_S = 0.02
"""How often a hold rule is asked whether its request arrived (the cut's delay after it)."""
ROWS_POLL_S = 0.1
"""How often the ledger is read for `mid-upload` (heavier; the gap between two parts of 8 MiB
at the lane's 20 MB/s is 0.4 s)."""
HOLD_S = 30.0
"""How long the cloud keeps a held answer if the bench never lets it go (a bench that broke
mid-fault): longer than any cut (off time and boot) the bench makes before releasing it."""
HELD = {"at-create": ("create", ASSET_CREATE_PATH), "at-refresh": ("token refresh", TOKEN_RULE)}
"""Moments taken by holding a request's answer: (what it is, the rule's path regex)."""

Rows = Callable[[], list[dict[str, object]]]


@dataclass(frozen=True)
class Seen:
    """A moment that came: what was seen, and when its request reached the cloud (None: not a
    request)."""

    note: str
    arrived_at: float | None = None


@dataclass
class Pending:
    """A fault whose time has come, waiting for its moment until `deadline` (schedule offset)."""

    step: Step
    number: int
    deadline: float
    rule_id: str | None = None
    """The hold rule armed for an `at-create` / `at-refresh` moment."""
    next_look: float = 0.0
    """Monotonic time before which the cloud is not asked again."""


def between_parts(row: dict[str, object]) -> bool:
    """Some parts stored (two when it has three or more, as in the certification's power-cut
    scenario, so a device that restarts from zero re-sends more than the one part allowed),
    not all, and the asset not complete."""
    expected = int(str(row.get("parts_expected") or 1))
    received = int(str(row.get("parts_received") or 0))
    return not row.get("completed_at") and expected >= 2 and min(2, expected - 1) <= received < expected


class MomentWatch:
    """Looks for the moment of each waiting fault; `reached` answers with a note or None."""

    def __init__(self, cloud: CloudControl, rows: Rows) -> None:
        self.cloud = cloud
        """The lane's view of the cloud: the hold rules it arms are its device's."""
        self.rows = rows

    def wait_for(self, step: Step, number: int, now: float) -> Pending:
        """Start waiting for `step`'s moment (`now`: schedule offset); for a request, arm the
        hold that will catch it."""
        held = HELD.get(step.when or "")
        rule_id = self.cloud.hold("api", held[1], method="POST", hold_s=HOLD_S) if held else None
        return Pending(step=step, number=number, deadline=now + WHEN_WAIT_S, rule_id=rule_id)

    def reached(self, pending: Pending) -> Seen | None:
        """What was seen (and how long ago) if the moment has come, else None."""
        if time.monotonic() < pending.next_look:
            return None
        if pending.rule_id is None:  # mid-upload
            pending.next_look = time.monotonic() + ROWS_POLL_S
            return Seen("between stored parts") if any(between_parts(r) for r in self.rows()) else None
        pending.next_look = time.monotonic() + POLL_S
        arrived = self.cloud.fault(pending.rule_id).get("arrived_at")
        if arrived is None:
            return None
        what = HELD[pending.step.when or ""][0]
        delay_ms = max(0.0, time.time() - float(arrived)) * 1000.0
        return Seen(f"{delay_ms:.0f} ms after a {what} reached the cloud, its answer held", float(arrived))

    def finish(self, pending: Pending) -> float | None:
        """Let a held answer go and remove the hold (the fault was applied, or never will be):
        the cloud's time the answer was let go (None: nothing was held)."""
        if pending.rule_id is None:
            return None
        released: float | None = None
        with contextlib.suppress(CloudError):  # gone already: the lane's rules were cleared
            rule = self.cloud.release(pending.rule_id)
            released = float(rule["released_at"]) if rule.get("released_at") is not None else None
            self.cloud.remove_fault(pending.rule_id)
        return released
