"""What a certification run keeps between scenarios, and the run-wide evidence read at its end.

The plugin holds one RunRecord per pytest session (in the config stash): each scenario's
result row, the profile's digest for the seal, what a -m / -k selection left out, and what
the whole run showed (journal digest, contradicted declarations, run-wide findings).
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.certify.merge import Shard, merge_shards
from harness.certify.seal import journal_digest, seal
from harness.items.verdicts import ERROR
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
    deselected_names: list[str] = field(default_factory=list)  # scenarios (of checklist items) left out
    order: list[str] = field(default_factory=list)  # node ids of the selected scenarios, collection order
    expected: dict[str, list[str]] = field(default_factory=dict)  # item -> every scenario it has
    selected: int = 0
    contradictions: list[dict[str, Any]] = field(default_factory=list)
    run_findings: dict[str, Any] = field(default_factory=dict)
    status_api_seen: str | None = None  # a status API answered where the profile has none
    secret_scan: dict[str, Any] | None = None  # harness/bdd/secret_scan.py: where a known secret lies
    shards: list[Shard] = field(default_factory=list)  # what the xdist workers sent (controller only)
    shard_rows: list[dict[str, Any]] = field(default_factory=list)  # per worker: journal digest, rows

    def to_shard(self, worker: str) -> Shard:
        """This worker's part of a sharded run, for the controller (harness.certify.merge)."""
        return Shard(worker=worker, order=list(self.order), results=list(self.results), device=self.device,
                     bound=dict(self.bound), expected=dict(self.expected), selected=self.selected,
                     deselected=list(self.deselected_names), contradictions=list(self.contradictions),
                     run_findings=dict(self.run_findings), secret_scan=self.secret_scan)

    def absorb_shards(self) -> None:
        """On the xdist controller: become the merged run of every shard received."""
        if not self.shards:
            return
        merged = merge_shards(self.shards)
        self.results, self.device, self.bound = merged["results"], merged["device"], merged["bound"]
        self.expected, self.selected = merged["expected"], merged["selected"]
        self.deselected_names = merged["deselected"]
        self.contradictions, self.run_findings = merged["contradictions"], merged["run_findings"]
        self.secret_scan, self.shard_rows = merged["secret_scan"], merged["shards"]

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
        """A profile that says "no status API": look at the {status_port} the launch gave the device and
        at loopback status URLs its console printed, once per scenario while the device is still up;
        the first answer is the evidence."""
        if self.status_api_seen:
            return
        from harness.bdd.declarations import (
            console_status_evidence,
            probe_status_api,
            status_port_to_probe,
        )
        from harness.device.software import SoftwareDevice, profile_placeholders

        device = session.started_device()  # never start a device just to probe it
        if not isinstance(device, SoftwareDevice):
            return
        port = status_port_to_probe(session.profile, profile_placeholders(session.profile), device.status_port)
        evidence = probe_status_api(port) if port is not None else None
        evidence = evidence or console_status_evidence(session.profile, device.console_log)
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


def selection_of_run(config: pytest.Config, record: RunRecord) -> dict[str, Any]:
    """How this run chose its scenarios: the full argv, -m and -k, and what they left out."""
    return {
        "argv": [str(a) for a in config.invocation_params.args],
        "markexpr": str(config.getoption("markexpr", "") or ""),
        "keyword": str(config.getoption("keyword", "") or ""),
        "selected": record.selected,
        "deselected": len(record.deselected_names),
    }


def profile_of_run(config: pytest.Config, record: RunRecord) -> None:
    """Name the device from its profile when no scenario started the session: every selected one was
    not applicable, decided before it ran. Its declarations still decide the items (a declared
    not-applicable stays that, not "needs a person") and its digest still binds the seal."""
    from harness.certify.seal import profile_digest
    from harness.device.profile import load_profile

    arg = config.getoption("--c2c-device", default=None)
    if not arg:
        return
    profile = load_profile(arg)
    record.device = profile.summary() | {"not_applicable": dict(profile.not_applicable)}
    record.bound.setdefault("profile_sha256", profile_digest(profile.path, profile.summary()))


def write_run(config: pytest.Config, record: RunRecord, out: Path, *, workers: int = 0) -> None:
    """results.json (sealed) and the certificate of a finished run; a sharded run (`workers` > 0)
    also names its shards: each worker's journal digest, rows and scenario count."""
    out.mkdir(parents=True, exist_ok=True)
    if record.device is None:
        profile_of_run(config, record)
    device = record.device or {"name": config.getoption("--c2c-device")}
    run: dict[str, Any] = {
        "device_arg": config.getoption("--c2c-device"), "seed": config.getoption("--c2c-seed"),
        "smoke": config.getoption("--c2c-smoke"),
        "network": config.getoption("--c2c-network"), "interactive": config.getoption("--c2c-interactive"),
        "strict": bool(config.getoption("--c2c-strict", default=False)),
        "selection": selection_of_run(config, record), "expected": record.expected,
        "contradictions": record.contradictions,
        "run_findings": record.run_findings, "secret_scan": record.secret_scan,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if workers:
        run["workers"] = workers
        run["shards"] = record.shard_rows
    results = record.results
    prior = config.getoption("--c2c-prior", default=None)
    if prior:
        from harness.certify.retry import carry_forward

        results = carry_forward(Path(prior), results, run, deselected=record.deselected_names)
    document = {"device": device, "run": run, "results": results,
                "seal": seal(device, run, results, record.bound)}
    (out / "results.json").write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    try:
        from harness.certify.certificate import write_certificate

        write_certificate(out)
    except Exception:
        (out / "certificate-error.txt").write_text(traceback.format_exc(), encoding="utf-8")


def worker_output(config: pytest.Config) -> dict[str, Any] | None:
    """xdist's `workeroutput` on a worker (sent to the controller at the end), None elsewhere."""
    if not hasattr(config, "workerinput"):
        return None
    output: dict[str, Any] = config.workeroutput  # type: ignore[attr-defined]
    return output


def worker_id(config: pytest.Config) -> str:
    """gw0, gw1... on an xdist worker; '' in a serial run or on the controller."""
    if not hasattr(config, "workerinput"):
        return ""
    info: dict[str, Any] = config.workerinput
    return str(info.get("workerid", ""))
