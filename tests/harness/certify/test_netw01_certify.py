"""C2C-NETW-01 through the real certify path: the hardline figure in certificate.json is
busy-time based; on the packet-level cellular link the reference device uses at least 40 % of
what the trace offered and the certificate names the link, while one part at a time
(`mutant:no-parallel`) fails the item on the same link with every file delivered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.faults.network.packet import packet_links_available

REPO = Path(__file__).resolve().parents[3]
CELLULAR = "Uploads use what a lossy cellular uplink allows"
needs_packet_links = pytest.mark.skipif(packet_links_available() is not None,
                                        reason=f"packet-level links unavailable: {packet_links_available()}")


def _certify(reports: Path, device: str, *extra: str, timeout: float = 280) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "harness.certify.cli", "run", "--device", device,
                           "--item", "C2C-NETW-01", "--seed", "1", "--reports", str(reports), "--quiet", *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)
    cert_path = reports / "certificate.json"
    assert cert_path.exists(), done.stdout[-2000:] + done.stderr[-2000:]
    item: dict[str, Any] = json.loads(cert_path.read_text())["items"]["C2C-NETW-01"]
    return item


def _log(reports: Path) -> str:
    path = reports / "pytest.log"
    return path.read_text()[-4000:] if path.exists() else ""


@pytest.mark.slow
@pytest.mark.timeout(400)
@needs_packet_links
def test_netw01_measure_in_the_certificate(tmp_path: Path) -> None:
    """`c2c-certify run --item C2C-NETW-01` with the reference device, real emulator and TLS."""
    reports = tmp_path / "reports"
    item = _certify(reports, "reference", timeout=380)
    assert item["verdict"] == "pass", (item["reason"], _log(reports))
    (m,) = [m for m in item["measurements"] if m["name"] == "upload_Mbps"]
    assert (m["name"], m["unit"], m["low"], m["passed"]) == ("upload_Mbps", "Mbit/s", 50, True)
    ctx = m["context"]
    assert ctx["part_bytes"] >= 48 * 1024 * 1024 and ctx["accepted_parts"] >= 1
    assert 0 < ctx["busy_s"] <= ctx["span_s"] + 1e-3
    assert m["value"] == pytest.approx(ctx["part_bytes"] * 8 / 1e6 / ctx["busy_s"], rel=0.01)
    (share,) = [m for m in item["measurements"] if m["name"] == "link_utilization"]
    assert (share["unit"], share["low"], share["passed"]) == ("ratio", 0.4, True)
    ctx = share["context"]
    assert ctx["file_bytes"] == 32 * 1024 * 1024 and 0 < ctx["offered_Mbps"] < 40
    assert share["value"] == pytest.approx(ctx["device_Mbps"] / ctx["offered_Mbps"], abs=0.01)
    # the certificate names the link per item: the packet backend, the profile and its trace
    links = {(n["backend"], n["profile"]): n for n in item["networks"]}
    assert links[("packet", "cellular")]["trace"] == "TMobile-LTE-short.up.gz"
    assert links[("proxy", "hardline")]
    page = (reports / "certificate.html").read_text()
    assert "<i>network:</i> packet cellular: trace TMobile-LTE-short.up.gz" in page
    assert list((reports / "work").glob("run-*/packet-link-*/throughput-vs-capacity-*.svg"))


@pytest.mark.slow
@pytest.mark.timeout(400)
@needs_packet_links
def test_one_part_at_a_time_fails_netw01_on_the_lossy_cellular_link(tmp_path: Path) -> None:
    """The seeded defect the hardline scenario cannot see: the file arrives, at a fraction of the link."""
    reports = tmp_path / "reports"
    item = _certify(reports, "mutant:no-parallel", "--", "-k", "lossy", timeout=380)
    assert item["verdict"] == "fail", (item["reason"], _log(reports))
    by_name = {m["name"]: m for m in item["measurements"]}
    assert by_name["files_intact"]["value"] == 1, item["reason"]
    share = by_name["link_utilization"]
    assert share["passed"] is False and share["value"] < 0.4
    assert [s["name"] for s in item["scenarios"]] == [CELLULAR]
