"""The signed manifest of a reports folder: one changed byte anywhere is refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.certify.certificate import write_certificate
from harness.certify.cli import main
from harness.certify.manifest import MANIFEST, verify_folder, write_manifest
from harness.certify.seal import SealBroken, seal

DEVICE = {"name": "dut", "id": "dut", "kind": "camera", "firmware": "2.0.0", "not_applicable": {}}
FAKE_ALLURE = """#!/bin/sh
[ "$1" = generate ] || exit 3
mkdir -p html && echo "<html>report</html>" > html/index.html
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A finished run's folder as `c2c-certify run` leaves it."""
    monkeypatch.setenv("C2C_SEAL_KEY_FILE", str(tmp_path / "lab.key"))
    reports = tmp_path / "reports"
    (reports / "allure-results").mkdir(parents=True)
    results = [{"scenario": "Captured media is uploaded automatically", "items": ["C2C-UPL-01"], "verdict": "fail",
                "reason": "A.jpg lost", "measurements": []}]
    run = {"seed": 1, "finished_at": "2026-12-06T09:00:00Z"}
    (reports / "results.json").write_text(json.dumps(
        {"device": DEVICE, "run": run, "results": results, "seal": seal(DEVICE, run, results, {})}), encoding="utf-8")
    write_certificate(reports)
    (reports / "allure-results" / "abc-result.json").write_text('{"status": "failed"}', encoding="utf-8")
    (reports / "allure-results" / "abc-attachment.txt").write_text("device thread stacks", encoding="utf-8")
    (reports / "work").mkdir()
    (reports / "work" / "device.log").write_text("scratch, not evidence", encoding="utf-8")
    write_manifest(reports, version={"commit": "0" * 40, "dirty": False})
    return reports


def test_an_untouched_folder_verifies(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = verify_folder(folder)
    assert set(manifest["files"]) == {"results.json", "certificate.json", "certificate.html",
                                      "allure-results/abc-result.json", "allure-results/abc-attachment.txt"}
    assert manifest["device"]["firmware"] == "2.0.0" and manifest["bench"]["dirty"] is False
    assert main(["verify", str(folder)]) == 0
    assert "5 files verify" in capsys.readouterr().out
    (folder / "work" / "device.log").write_text("the bench's scratch may change")
    verify_folder(folder)


@pytest.mark.parametrize("path", ["results.json", "certificate.json", "allure-results/abc-attachment.txt"])
def test_one_changed_byte_is_refused_by_verify_and_report(folder: Path, path: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    target = folder / path
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(SealBroken, match=re.escape(f"changed: {path}")):
        verify_folder(folder)
    assert main(["verify", str(folder)]) == 1
    assert main(["report", "--reports", str(folder), "--allure", str(tmp_path / "no-allure")]) == 2
    assert "does not match its manifest" in capsys.readouterr().err


def test_added_missing_and_resigned_are_refused(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (folder / "allure-results" / "planted-result.json").write_text('{"status": "passed"}')
    with pytest.raises(SealBroken, match=r"added: allure-results/planted-result\.json"):
        verify_folder(folder)
    (folder / "allure-results" / "planted-result.json").unlink()
    (folder / "certificate.html").unlink()
    with pytest.raises(SealBroken, match=r"missing: certificate\.html"):
        verify_folder(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"].pop("certificate.html")  # hide the deletion by editing the manifest
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(SealBroken, match="signature"):
        verify_folder(folder)
    monkeypatch.setenv("C2C_SEAL_KEY_FILE", str(tmp_path / "forger.key"))
    write_manifest(folder, version={"commit": "1" * 40, "dirty": True})  # re-signed with another key
    monkeypatch.setenv("C2C_SEAL_KEY_FILE", str(tmp_path / "lab.key"))
    with pytest.raises(SealBroken, match="another bench"):
        verify_folder(folder)


def test_report_builds_from_a_verified_folder_and_leaves_it_verifying(folder: Path, tmp_path: Path) -> None:
    tool = tmp_path / "allure"
    tool.write_text(FAKE_ALLURE)
    tool.chmod(0o755)
    assert main(["report", "--reports", str(folder), "--allure", str(tool)]) == 0
    assert (folder / "html" / "index.html").exists()
    verify_folder(folder)  # html/ and the Allure extras are made from what is listed
