"""`c2c-certify run --workers 2` against a serial run of the same items: real reference device,
real emulator and TLS, one device instance per worker. Item verdicts must be identical, and
the merged folder must verify against its signed manifest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
ITEMS = ("C2C-AUTH-01", "C2C-PROJ-01", "C2C-HDR-01", "C2C-SEC-01")


def certify(reports: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    argv = [sys.executable, "-m", "harness.certify.cli", "run", "--device", "reference", "--seed", "1",
            "--reports", str(reports), "--quiet", *extra]
    for item in ITEMS:
        argv += ["--item", item]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=1500, check=False)
    cert_path = reports / "certificate.json"
    assert cert_path.exists(), done.stdout[-2000:] + done.stderr[-2000:]
    return done, dict(json.loads(cert_path.read_text()))


@pytest.mark.slow
@pytest.mark.timeout(3000)
def test_sharded_run_gives_the_serial_verdicts_and_a_sealed_merged_folder(tmp_path: Path) -> None:
    serial_run, serial = certify(tmp_path / "serial")
    sharded_run, sharded = certify(tmp_path / "sharded", "--workers", "2")

    verdicts = {i: serial["items"][i]["verdict"] for i in ITEMS}
    assert {i: sharded["items"][i]["verdict"] for i in ITEMS} == verdicts, (
        {i: sharded["items"][i]["reason"] for i in ITEMS}, {i: serial["items"][i]["reason"] for i in ITEMS})
    assert verdicts == dict.fromkeys(ITEMS, "pass"), {i: serial["items"][i]["reason"] for i in ITEMS}
    assert sharded_run.returncode == serial_run.returncode
    assert sharded["summary"]["status"] == serial["summary"]["status"]

    results = json.loads((tmp_path / "sharded" / "results.json").read_text())
    shards = results["run"]["shards"]
    assert results["run"]["workers"] == 2 and len(shards) == 2, shards
    # two device instances, each against its own emulator: two journals, both in the seal
    assert all(s["journal_rows"] > 0 and s["scenarios"] > 0 for s in shards), shards
    assert len({s["journal_sha256"] for s in shards}) == 2
    assert len(list((tmp_path / "sharded" / "work").glob("run-*/device-*"))) >= 2
    assert [r["scenario"] for r in results["results"]] == [
        r["scenario"] for r in json.loads((tmp_path / "serial" / "results.json").read_text())["results"]]
    verify = subprocess.run([sys.executable, "-m", "harness.certify.cli", "verify", str(tmp_path / "sharded")],
                            cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert verify.returncode == 0, verify.stderr
    # one Allure results folder for the merged run: every scenario of both workers
    allure = [json.loads(p.read_text()) for p in (tmp_path / "sharded" / "allure-results").glob("*-result.json")]
    assert len(allure) == len(results["results"])
