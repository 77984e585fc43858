"""One run out of N shards: the records pytest-xdist workers send back, merged for one certificate.

`c2c-certify run --workers N` certifies on N independent device instances (each xdist worker
builds its own emulator, link, media and device). Every worker ends its session by handing
the controller a `Shard` (harness.bdd.run_record.RunRecord.to_shard); the controller merges
them here into what a serial run would have written, and seals that (harness.certify.seal):

- scenario rows in collection order (the order a serial run writes them), each row as the
  worker wrote it;
- the journal digest over the shards' digests in worker order (each shard's own emulator
  journal was digested whole, as a serial run's is), rows summed; each shard's digest, row
  count and scenarios go into `run["shards"]`, which the seal covers;
- declarations contradicted and run-wide findings as a union: each was found by one device
  instance on its own journal, which is the unit a serial run judges too;
- the secret scan: every hit of every shard.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

from harness.certify.seal import digest
from harness.errors import ConfigError


class Shard(TypedDict):
    """What one worker ran and saw (plain JSON values: it crosses the execnet channel)."""

    worker: str
    order: list[str]  # node ids of the selected scenarios, in collection order
    results: list[dict[str, Any]]
    device: dict[str, Any] | None
    bound: dict[str, Any]  # profile_sha256, journal_sha256, journal_rows
    expected: dict[str, list[str]]
    selected: int
    deselected: list[str]  # scenario names a -m / -k selection left out
    contradictions: list[dict[str, Any]]
    run_findings: dict[str, str]
    secret_scan: dict[str, Any] | None


class Merged(TypedDict):
    """The merged shards, in the RunRecord's own terms."""

    results: list[dict[str, Any]]
    device: dict[str, Any] | None
    bound: dict[str, Any]
    expected: dict[str, list[str]]
    selected: int
    deselected: list[str]
    contradictions: list[dict[str, Any]]
    run_findings: dict[str, str]
    secret_scan: dict[str, Any] | None
    shards: list[dict[str, Any]]


def worker_key(worker: str) -> tuple[int, str]:
    """gw2 before gw10: xdist's worker ids in numeric order."""
    digits = worker.removeprefix("gw")
    return (int(digits), worker) if digits.isdigit() else (1 << 30, worker)


def merge_shards(shards: Sequence[Shard]) -> Merged:
    """The shards as one run; refuses shards that certified different profiles."""
    if not shards:
        raise ConfigError("merge: no shard came back from the workers")
    ordered = sorted(shards, key=lambda s: worker_key(s["worker"]))
    profiles = {s["bound"].get("profile_sha256") for s in ordered if s["device"] is not None}
    if len(profiles) > 1:
        raise ConfigError(f"merge: the workers certified {len(profiles)} different profiles; refusing to merge")
    order = {nodeid: n for n, nodeid in enumerate(_longest(s["order"] for s in ordered))}
    results = sorted((r for s in ordered for r in s["results"]),
                     key=lambda r: (order.get(str(r.get("nodeid")), len(order)), float(r.get("finished_at", 0))))
    used = [s for s in ordered if s["device"] is not None]
    per_shard = [{"worker": s["worker"], "journal_sha256": str(s["bound"].get("journal_sha256", "")),
                  "journal_rows": int(s["bound"].get("journal_rows", 0)), "scenarios": len(s["results"])}
                 for s in used]
    bound: dict[str, Any] = {
        "profile_sha256": next(iter(profiles), ""),
        "journal_sha256": digest([[p["worker"], p["journal_sha256"], p["journal_rows"]] for p in per_shard]),
        "journal_rows": sum(p["journal_rows"] for p in per_shard),
    }
    first = ordered[0]
    return Merged(
        results=results, device=next((s["device"] for s in used), None), bound=bound,
        expected=first["expected"], selected=first["selected"], deselected=first["deselected"],
        contradictions=_union_rows(s["contradictions"] for s in ordered),
        run_findings=_union_findings(s["run_findings"] for s in ordered),
        secret_scan=_union_scans([s["secret_scan"] for s in ordered]), shards=per_shard,
    )


def _longest(orders: Any) -> list[str]:
    """Every worker collects the same suite; the longest list is the whole selection."""
    best: list[str] = []
    for candidate in orders:
        if len(candidate) > len(best):
            best = list(candidate)
    return best


def _union_rows(groups: Any) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for rows in groups:
        for row in rows:
            key = str(row.get("declaration"))
            if key not in seen:
                seen.add(key)
                out.append(dict(row))
    return out


def _union_findings(groups: Any) -> dict[str, str]:
    found: dict[str, list[str]] = {}
    for findings in groups:
        for item_id, text in findings.items():
            found.setdefault(str(item_id), []).append(str(text))
    return {item_id: "; ".join(texts) for item_id, texts in sorted(found.items())}


def _union_scans(scans: Sequence[dict[str, Any] | None]) -> dict[str, Any] | None:
    present = [s for s in scans if s is not None]
    if not present:
        return None
    hits: list[Any] = []
    for scan in present:
        hits.extend(h for h in scan.get("hits", []) if h not in hits)
    # each shard searched its own run folder and the shared files: a shared file counts once per shard
    return {"files": sum(int(s.get("files", 0)) for s in present),
            "secrets": sum(int(s.get("secrets", 0)) for s in present), "hits": hits}
