"""C2C-NETW-01 through the real certify path: the figure in certificate.json is busy-time based."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_netw01_measure_in_the_certificate(tmp_path: Path) -> None:
    """`c2c-certify run --item C2C-NETW-01` with the reference device, real emulator and TLS."""
    reports = tmp_path / "reports"
    done = subprocess.run([sys.executable, "-m", "harness.certify.cli", "run", "--device", "reference",
                           "--item", "C2C-NETW-01", "--seed", "1", "--reports", str(reports), "--quiet"],
                          cwd=REPO, capture_output=True, text=True, timeout=280, check=False)
    cert_path = reports / "certificate.json"
    assert cert_path.exists(), done.stdout[-2000:] + done.stderr[-2000:]
    item = json.loads(cert_path.read_text())["items"]["C2C-NETW-01"]
    assert item["verdict"] == "pass", (item["reason"], (reports / "pytest.log").read_text()[-4000:])
    (m,) = [m for m in item["measurements"] if m["name"] == "upload_Mbps"]
    assert (m["name"], m["unit"], m["low"], m["passed"]) == ("upload_Mbps", "Mbit/s", 50, True)
    ctx = m["context"]
    assert ctx["part_bytes"] >= 48 * 1024 * 1024 and ctx["accepted_parts"] >= 1
    assert 0 < ctx["busy_s"] <= ctx["span_s"] + 1e-3
    assert m["value"] == pytest.approx(ctx["part_bytes"] * 8 / 1e6 / ctx["busy_s"], rel=0.01)
