"""What a scenario records as evidence: measurements against the checklist's limits, what it
really exercised, and its delivery ledger (captures vs what the cloud holds)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.certify.ledger import Ledger, build_ledger, window_start
from harness.items.checklist import Checklist
from harness.timeline import Timeline

if TYPE_CHECKING:
    from harness.bdd.bench import Bench


def record_measurement(checklist: Checklist, measurements: list[dict[str, Any]], item: str, name: str,
                       value: float, **context: float) -> bool:
    """Append a measurement checked against `item`'s limits; returns whether it is in limits."""
    m = checklist[item].measurement(name)
    passed = m.check(value, **context)
    limits = m.describe()
    for key, val in context.items():
        limits = limits.replace(key, f"{int(val)}" if float(val).is_integer() else f"{val:g}")
    measurements.append(
        {"item": item, "name": name, "value": value, "unit": m.unit, "low": m.low, "high": m.high,
         "limits": limits, "passed": passed, "context": context}
    )
    return passed


def note_exercised(exercised: list[str], what: str) -> None:
    """Say once what the scenario really exercised where it compresses the field."""
    if what not in exercised:
        exercised.append(what)


def pause_windows(timeline: Timeline) -> list[dict[str, Any]]:
    """The cloud-side pause windows on the timeline (captures inside them are held, not lost)."""
    return [w for w in timeline.windows() if w["layer"] == "cloud" and w["name"] == "pause"]


def scenario_ledger(bench: Bench, *, drained: bool = True) -> Ledger:
    """The scenario's delivery ledger: its captures against this device's assets in the cloud."""
    device_id = None
    with contextlib.suppress(Exception):
        device_id = bench.cloud_device_id()
    rows = bench.cloud.ledger(device_id)
    names = {c.name for c in bench.state.captures}
    if device_id is None:  # no device to attribute uploads to: only the captured names count
        rows = [r for r in rows if r.get("name") in names]
    # this device's assets created in this scenario's window (emulator time) that match no
    # capture are `unexpected`; files the bench gave it in other scenarios are excused
    manifest = {str(e.get("name") or Path(str(e.get("path", ""))).name) for e in bench.media.manifest()}
    known = (manifest | bench.session.captured_names) - names
    status = bench.device.status() or {}
    return build_ledger(
        [c.row() for c in bench.state.captures], rows, device_files=status.get("files", []),
        pause_windows=bench.pause_windows(), drained=drained, since=window_start(bench.journal()),
        known_names=known, proxies="proxies" in bench.profile.capabilities,
    )
