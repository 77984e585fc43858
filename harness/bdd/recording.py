"""What a scenario records as evidence: measurements against the checklist's limits and what it
really exercised. (Its delivery ledger is `Bench.ledger`: it reads the whole bench.)"""

from __future__ import annotations

from typing import Any

from harness.items.checklist import Checklist
from harness.timeline import Timeline


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
