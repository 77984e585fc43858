"""The moments a fault may wait for, seen from the cloud (its ledger and journal), never the device.

`mid-upload`: a file of this run part-way into the cloud, between stored parts. `at-create`:
the cloud has just answered an asset create with success; `at-refresh`: it has just answered a
token request with 200 (a refresh: the lane is paired). The journal records a request when its
answer has been sent, so a power cut at such a moment lands in the few milliseconds in which the
device holds an answer it may not have stored yet (how long after, the fault's note says).
While a fault waits, the schedule goes on: captures happen and held faults end on time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness.chaos.schedule import Step
from harness.cloud.control import CloudControl
from harness.cloud.paths import ASSET_CREATE_PATH, TOKEN_PATH

WHEN_WAIT_S = 6.0
"""How long a moment is waited for: a capture is handed over after the device's 2 s quiet
period, and hashing and creating a 24 MiB file took 2.5 s more on a loaded bench."""
POLL_S = 0.02
"""How often the journal is read while a fault waits for a create or refresh (the cut's delay
after the answer)."""
ROWS_POLL_S = 0.1
"""How often the ledger is read for `mid-upload` (it lists every asset of the lane: heavier; the
gap between two parts of 8 MiB at the lane's 20 MB/s is 0.4 s)."""
ASSET_CREATE = re.compile(ASSET_CREATE_PATH)

Rows = Callable[[], list[dict[str, object]]]


@dataclass(frozen=True)
class Seen:
    """A moment that came: what was seen, and when the cloud answered (None: not a request)."""

    note: str
    answered_at: float | None = None


@dataclass
class Pending:
    """A fault whose time has come, waiting for its moment until `deadline` (schedule offset)."""

    step: Step
    number: int
    deadline: float
    cursor: int
    """The journal id the look for a create or refresh starts after."""
    next_look: float = 0.0
    """Monotonic time before which the ledger is not read again (`mid-upload`)."""


def journal_head(cloud: CloudControl, since: int) -> int:
    """The newest journal row id, paged on from `since`."""
    while rows := cloud.journal(since=since):
        since = max(int(str(r.get("id") or 0)) for r in rows)
    return since


def between_parts(row: dict[str, object]) -> bool:
    """Some parts stored (two when it has three or more, as in the certification's power-cut
    scenario, so a device that restarts from zero re-sends more than the one part allowed),
    not all, and the asset not complete."""
    expected = int(str(row.get("parts_expected") or 1))
    received = int(str(row.get("parts_received") or 0))
    return not row.get("completed_at") and expected >= 2 and min(2, expected - 1) <= received < expected


def _answered(row: dict[str, object], when: str) -> bool:
    status = int(str(row.get("status") or 0))
    path = str(row.get("path") or "").split("?", 1)[0]
    if row.get("method") != "POST":
        return False
    if when == "at-create":
        return 200 <= status < 300 and ASSET_CREATE.search(path) is not None
    return status == 200 and path == TOKEN_PATH


class MomentWatch:
    """Looks for the moment of each waiting fault; `reached` answers with a note or None."""

    def __init__(self, cloud: CloudControl, rows: Rows, cursor: int) -> None:
        self.cloud = cloud
        self.rows = rows
        self.cursor = cursor
        """A journal id at or before the newest row (the schedule's start)."""

    def wait_for(self, step: Step, number: int, now: float) -> Pending:
        """Start waiting for `step`'s moment (`now`: schedule offset); only what the cloud
        answers from here on counts."""
        if step.when != "mid-upload":
            self.cursor = journal_head(self.cloud, self.cursor)
        return Pending(step=step, number=number, deadline=now + WHEN_WAIT_S, cursor=self.cursor)

    def reached(self, pending: Pending) -> Seen | None:
        """What was seen (and how long ago) if the moment has come, else None."""
        when = pending.step.when
        if when == "mid-upload":
            if time.monotonic() < pending.next_look:
                return None
            pending.next_look = time.monotonic() + ROWS_POLL_S
            return Seen("between stored parts") if any(between_parts(r) for r in self.rows()) else None
        seen: dict[str, object] | None = None
        while page := self.cloud.journal(since=pending.cursor):
            pending.cursor = max(int(str(r.get("id") or 0)) for r in page)
            seen = seen or next((r for r in page if when is not None and _answered(r, when)), None)
        if seen is None:
            return None
        answered = float(str(seen.get("t") or 0.0))
        delay_ms = max(0.0, time.time() - answered) * 1000.0
        what = "create" if when == "at-create" else "token refresh"
        return Seen(f"{delay_ms:.0f} ms after the cloud answered a {what} ({seen.get('status')})", answered)
