"""What a certification run keeps between scenarios, and the run-wide evidence read at its end.

The plugin holds one RunRecord per pytest session (in the config stash): each scenario's
result row, the profile's digest for the seal, what a -m / -k selection left out, and what
the whole run showed (journal digest, contradicted declarations, run-wide findings).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from harness.certify.seal import journal_digest
from harness.certify.verdicts import ERROR
from harness.protocols import CloudWitness, PlainHttpTrap

if TYPE_CHECKING:
    from harness.bdd.session import SessionBench


@dataclass
class RunRecord:
    """One run's results and what binds them (written to results.json at session end)."""

    results: list[dict[str, Any]] = field(default_factory=list)  # one row per scenario, as written
    used: bool = False  # a scenario asked for the bench
    device: dict[str, Any] | None = None  # the profile's summary
    bound: dict[str, Any] = field(default_factory=dict)  # profile and journal digests for the seal
    deselected: list[pytest.Item] = field(default_factory=list)
    expected: dict[str, list[str]] = field(default_factory=dict)  # item -> every scenario it has
    selected: int = 0
    contradictions: list[dict[str, Any]] = field(default_factory=list)
    run_findings: dict[str, Any] = field(default_factory=dict)
    status_api_seen: str | None = None  # a status API answered where the profile has none
    secret_scan: dict[str, Any] | None = None  # harness/bdd/secret_scan.py: where a known secret lies

    def scenarios_exercised(self) -> set[str]:
        """Scenarios (outline names) that ran to a verdict on the device (not skipped, not a bench error)."""
        return {str(r.get("outline")) for r in self.results
                if r.get("outcome") != "skipped" and r.get("verdict") != ERROR}

    def whole_journal(self, session: SessionBench) -> list[dict[str, Any]]:
        """Every journal row of the run (what the oracle saw), read once: its digest goes into the
        seal, the rows into the check of the profile's declarations against behaviour."""
        cloud = session.started_cloud()
        rows: list[dict[str, Any]] = []
        if cloud is None:
            self.bound.update(journal_sha256="", journal_rows=0)
            return rows

        def page(since: int) -> list[dict[str, Any]]:
            batch = cloud.journal(since=since)
            rows.extend(batch)
            return batch
        sha, count = journal_digest(page)
        self.bound.update(journal_sha256=sha, journal_rows=count)
        return rows

    def probe_status_api(self, session: SessionBench) -> None:
        """A profile that says "no status API" but launched the device with {status_port}: look there
        once per scenario while the device is still up; the first answer is the evidence."""
        if self.status_api_seen:
            return
        from harness.bdd.declarations import probe_status_api, status_port_to_probe
        from harness.device.software import SoftwareDevice, profile_placeholders

        device = session.started_device()  # never start a device just to probe it
        if not isinstance(device, SoftwareDevice):
            return
        port = status_port_to_probe(session.profile, profile_placeholders(session.profile), device.status_port)
        evidence = probe_status_api(port) if port is not None else None
        if evidence:
            self.status_api_seen = evidence


def sockets_of_run(session: SessionBench) -> list[dict[str, Any]]:
    """The emulator's status socket sessions (open ones too: the journal has a socket only once it closes)."""
    cloud = session.started_cloud()
    if not isinstance(cloud, CloudWitness):
        return []
    try:
        return list(cloud.websockets())
    except Exception:  # evidence gathering must never break the run's records
        return []


def plain_http_of_run(session: SessionBench) -> list[dict[str, Any]]:
    """Every plain-HTTP request of the run: the link's trap on the API port and the emulator's listener."""
    found: list[dict[str, Any]] = []
    network, cloud = session.started_network(), session.started_cloud()
    if isinstance(network, PlainHttpTrap):
        found += network.plain_http_attempts()
    if cloud is not None:
        found += cloud.plain_http_attempts()
    return found
