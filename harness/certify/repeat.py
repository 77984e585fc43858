"""Certify the same device N times and count, per item, how often the verdict differed.

A verdict that changes between two runs of the same firmware with the same seed is a flake:
of the device or of the bench, and a reviewer cannot trust either. `c2c-certify repeat N`
runs N whole certifications one after the other, each in its own reports folder, and writes

    <reports>/repeat.json   {"runs": N, "items": {"C2C-UPL-01": {"verdicts": [...], "differ": 0}}, ...}
    reports/bench/certify.json   certify_s (mean seconds per run) and verdict_diffs (params.workers)

`differ` counts the runs whose verdict is not the item's most common one.

`c2c-certify bench --workers 4` certifies once serially and once sharded, on the same machine
one after the other, and writes certify.json rows `certify_s` per worker count and
`verdict_diffs` (items whose verdict differs from the serial run's) per sharded count.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any


def verdict_diffs(certificates: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per item: every run's verdict, and how many runs differ from the most common one."""
    items: dict[str, list[str]] = {}
    for cert in certificates:
        for item_id, entry in cert.get("items", {}).items():
            items.setdefault(item_id, []).append(str(entry.get("verdict")))
    out: dict[str, dict[str, Any]] = {}
    for item_id, verdicts in sorted(items.items()):
        common, seen = Counter(verdicts).most_common(1)[0]
        out[item_id] = {"verdicts": verdicts, "most_common": common, "differ": len(verdicts) - seen}
    return out


def repeat(runs: int, certify: Callable[[Path], int], reports: Path) -> dict[str, Any]:
    """Run `certify(reports_dir)` `runs` times; summarise the verdicts of their certificates."""
    certificates: list[dict[str, Any]] = []
    seconds: list[float] = []
    statuses: list[int] = []
    for n in range(1, runs + 1):
        out = reports / f"run-{n:02d}"
        started = time.monotonic()
        statuses.append(certify(out))
        seconds.append(round(time.monotonic() - started, 1))
        cert_path = out / "certificate.json"
        certificates.append(json.loads(cert_path.read_text(encoding="utf-8")) if cert_path.exists() else {})
    items = verdict_diffs(certificates)
    summary = {
        "runs": runs,
        "exit_codes": statuses,
        "seconds": seconds,
        "headlines": [c.get("headline", "no certificate") for c in certificates],
        "items_that_differed": sorted(i for i, e in items.items() if e["differ"]),
        "verdict_diffs": sum(e["differ"] for e in items.values()),
        "items": items,
    }
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "repeat.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def bench_record(summary: Mapping[str, Any], *, device: str, workers: int = 1) -> dict[str, Any]:
    """The reports/bench/certify.json document for a repeat run."""
    seconds = list(summary.get("seconds", [])) or [0.0]
    params = {"device": device, "runs": summary.get("runs"), "workers": workers}
    return {"benchmark": "certify", "results": [
        {"name": "certify_s", "value": round(sum(seconds) / len(seconds), 1), "unit": "s", "params": params},
        {"name": "verdict_diffs", "value": summary.get("verdict_diffs", 0), "unit": "count", "params": params},
    ]}


def item_verdicts_of(cert: Mapping[str, Any]) -> dict[str, str]:
    return {item_id: str(entry.get("verdict")) for item_id, entry in cert.get("items", {}).items()}


def differing_items(serial: Mapping[str, Any], other: Mapping[str, Any]) -> list[str]:
    """Items whose verdict differs between two certificates (an item missing from one differs)."""
    a, b = item_verdicts_of(serial), item_verdicts_of(other)
    return sorted(i for i in set(a) | set(b) if a.get(i) != b.get(i))


def shard_bench_record(runs: Sequence[tuple[int, float, Mapping[str, Any]]], *, device: str,
                       selection: str) -> dict[str, Any]:
    """certify.json for serial vs sharded: `runs` is (workers, seconds, certificate), serial first."""
    if not runs or runs[0][0] != 1:
        raise ValueError("the serial run (workers=1) comes first: it is what the sharded runs are compared to")
    serial_s, serial = runs[0][1], runs[0][2]
    rows: list[dict[str, Any]] = []
    for workers, seconds, cert in runs:
        params = {"device": device, "workers": workers, "selection": selection,
                  "headline": cert.get("headline", "no certificate")}
        rows.append({"name": "certify_s", "value": round(seconds, 1), "unit": "s", "params": params})
        if workers > 1:
            diff = differing_items(serial, cert) if cert else ["(no certificate)"]
            rows.append({"name": "verdict_diffs", "value": len(diff), "unit": "count",
                         "params": {**params, "items": diff}})
            rows.append({"name": "parallel_ratio", "value": round(seconds / serial_s, 3) if serial_s else None,
                         "unit": "ratio", "params": params})
    return {"benchmark": "certify", "results": rows}
