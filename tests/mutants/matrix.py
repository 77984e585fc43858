"""Run the mutant matrix: each seeded defect must fail its item and no other automatable item.

Per mutant: `c2c-certify run --device mutant:NAME --item ITEM --smoke` (its own item's
scenarios plus the smoke set), or the full suite with `full=True`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.mutants.table import MUTANTS, Mutant

REPO = Path(__file__).resolve().parents[2]


def judge(mutant: Mutant, cert: dict[str, Any]) -> dict[str, Any]:
    """Whether the certificate flags the mutant's item and nothing else it should not."""
    items = cert["items"]
    failed = sorted(i for i, e in items.items() if e["verdict"] == "fail")
    errors = sorted(i for i, e in items.items() if e["verdict"] == "error")
    caught = items.get(mutant.item, {}).get("verdict") == "fail"
    allowed = {mutant.item, *mutant.also}
    collateral = [i for i in failed if i not in allowed and items[i].get("automatable")]
    ok = caught and not collateral
    note = "" if caught else f"{mutant.item} was {items.get(mutant.item, {}).get('verdict')!r}, not 'fail'"
    if collateral:
        note += f" also failed {collateral}"
    return {"mutant": mutant.name, "item": mutant.item, "ok": ok, "caught": caught, "failed": failed,
            "errors": errors, "collateral": collateral, "note": note.strip()}


def run_mutant(mutant: Mutant, reports: Path, *, full: bool = False, timeout: float = 600) -> dict[str, Any]:
    argv = [sys.executable, "-m", "harness.certify.cli", "run", "--device", f"mutant:{mutant.name}",
            "--reports", str(reports), "--quiet"]
    if not full:
        argv += ["--smoke", "--item", mutant.item]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)
    cert_path = reports / "certificate.json"
    if not cert_path.exists():
        return {"mutant": mutant.name, "item": mutant.item, "ok": False, "caught": False, "failed": [],
                "errors": [], "collateral": [], "note": f"no certificate (exit {done.returncode}): {done.stderr[-300:]}"}
    result = judge(mutant, json.loads(cert_path.read_text(encoding="utf-8")))
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def run_matrix(*, full: bool = False, out: Path, only: Sequence[str] | None = None) -> list[dict[str, Any]]:
    selected = [m for m in MUTANTS if not only or m.name in only]
    results = []
    for m in selected:
        results.append(run_mutant(m, out.parent / "mutants" / m.name, full=full))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"full": full, "results": results}, indent=2), encoding="utf-8")
    return results
