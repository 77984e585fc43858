"""When a fault ends (link back, power back, ISP episode over), how long the device takes to
upload again, observed on the cloud's journal.

The step that ends a fault wraps the end in `fault_ending`: it notes, while the fault still
holds, whether any captured file was still undelivered and where the journal stood; then
`poll_recovery` (called from every step that waits afterwards) stamps the first moment the
cloud has accepted an upload request after it. Times are bench time (monotonic), so an
emulator clock moved by other scenarios does not bend them; polled, so each figure is an
upper bound by the polling interval (0.5 s) plus the bench's own waits (a boot).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from harness.bdd.bench import Bench
from harness.bdd.measures import accepted_uploads
from harness.bdd.state import FaultEnd

__all__ = ["FaultEnd", "fault_ending", "fault_ends", "pending_uploads", "poll_recovery"]


def pending_uploads(bench: Bench) -> list[str]:
    """Captured files (not deliberately damaged, not captured while paused) not yet complete in the cloud."""
    done = {str(r.get("name")) for r in bench.cloud.ledger() if r.get("completed_at")}
    return [c.name for c in bench.state.captures if not c.corruption and not c.paused and c.name not in done]


@contextmanager
def fault_ending(bench: Bench, what: str) -> Iterator[None]:
    """Wrap the action that ends a fault (link_up, power on, clear): the state is read before it."""
    end = FaultEnd(what=what, journal_id=bench.session.journal_head(), pending=pending_uploads(bench))
    yield
    end.ended = time.monotonic()
    bench.state.fault_ends.append(end)


def fault_ends(bench: Bench) -> list[FaultEnd]:
    return list(bench.state.fault_ends)


def poll_recovery(bench: Bench) -> None:
    """Stamp, for each fault that left uploads pending, the first time an accepted upload follows it."""
    waiting = [e for e in fault_ends(bench) if e.pending]
    if not waiting:
        return
    since = min(e.journal_id for e in waiting)
    # a fault ends inside the scenario, so its rows are part of the scenario's (read incrementally)
    rows = ([r for r in bench.journal() if int(r["id"]) > since] if since >= bench.state.journal_since
            else bench.cloud.journal(since=since))
    now = time.monotonic()
    for e in waiting:
        e.resumed = accepted_uploads(rows, e.journal_id)
        if e.resumed and e.recovered is None:
            e.recovered = now
