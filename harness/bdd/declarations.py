"""What the profile declares, checked against what the device did (Matter's TC-IDM-10.4 idea).

A profile's capabilities decide which scenarios apply and how they are judged, so a false
declaration can pass a device: it is checked against the oracle once the run is over, over
the whole request journal. A declaration is only judged when a scenario that exercises it
ran (a partial run that never uploaded a burst says nothing about `parallel`). Each
contradiction goes into the sealed results and the certificate ("declaration
contradicted", with its evidence) and keeps the device from being CERTIFIED.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harness.bdd.measures import max_overlap, part_put_spans
from harness.device.profile import DeviceProfile

REALTIME_PARTS = "/realtime_upload/parts"
# The scenarios that exercise a declaration: only after one of them ran is silence evidence
# (a smoke run's single small file says nothing about parallel parts or a growing file).
EXERCISED_BY = {
    "parallel": frozenset({"A burst of captures is uploaded concurrently",
                           "Upload speed reaches 50 Mbps when the network allows"}),
    "realtime": frozenset({"A growing file is uploaded while it is being recorded or when it completes"}),
}


@dataclass(frozen=True)
class Contradiction:
    """A declaration the device's own traffic contradicts, with what the oracle saw."""

    declaration: str
    evidence: str

    def row(self) -> dict[str, str]:
        return asdict(self)


def contradictions(profile: DeviceProfile, journal: Sequence[Mapping[str, Any]],
                   scenarios_run: Iterable[str]) -> list[Contradiction]:
    """Every capability the profile declares that the journal shows the device did not live up to
    (`scenarios_run`: the Gherkin names of the scenarios that ran to a verdict on the device)."""
    ran = set(scenarios_run)
    found: list[Contradiction] = []
    caps = profile.capabilities
    if "parallel" in caps and ran & EXERCISED_BY["parallel"]:
        spans = [(a, b) for _, a, b in part_put_spans(journal)]
        most = max_overlap(spans)
        if spans and most < 2:
            found.append(Contradiction(
                "capabilities: parallel",
                f"never had two part uploads in flight at once over the whole run (most {most}, {len(spans)} part PUTs)"))
    if "realtime" in caps and ran & EXERCISED_BY["realtime"]:
        realtime = sum(1 for r in journal if REALTIME_PARTS in str(r.get("path") or ""))
        if realtime == 0:
            found.append(Contradiction(
                "capabilities: realtime",
                "never asked for a real-time part URL (realtime_upload/parts), not even for a growing file"))
    return found
