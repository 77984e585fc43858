"""`c2c-certify check-profile`: a readable but inconsistent profile is refused before anything runs."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.certify.cli import main
from harness.device.profile import PROFILE_DIR, parse_profile
from harness.device.profile_check import review

REFERENCE_TEXT = (PROFILE_DIR / "reference.toml").read_text(encoding="utf-8")

# Each broken profile: one edit of the reference profile's text, and the message it must get.
BROKEN: dict[str, tuple[Callable[[str], str], str]] = {
    "typo-capability": (lambda t: t.replace('"parallel",', '"paralel",', 1), "unknown capability 'paralel'"),
    "status-without-driver": (lambda t: t.replace('driver = "http-json"', 'driver = "none"', 1)
                              .replace('source = "status"', 'source = "console"\nregex = "code: (\\\\d{6})"', 1),
                              "declares 'status' but [status] driver"),
    "driver-without-status": (lambda t: t.replace('"status", ', "", 1), "'status' is not declared"),
    "cancel-without-control": (lambda t: t.replace('driver = "local-api"', 'driver = "none"', 1),
                               "declares 'cancel' but [control] driver"),
    "missing-program": (lambda t: t.replace('command = ["{python}"', 'command = ["/opt/vendor/no-such-uploader"', 1),
                        "launch.command[0]: program '/opt/vendor/no-such-uploader' is not found"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_inconsistent_profile_is_refused_with_its_own_message(case: str, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    edit, message = BROKEN[case]
    text = edit(REFERENCE_TEXT).replace('name = "reference"', f'name = "{case}"', 1)
    assert text != REFERENCE_TEXT.replace('name = "reference"', f'name = "{case}"', 1), "the edit did not apply"
    findings = [str(f) for f in review(parse_profile(tomllib.loads(text)))]
    assert any(message in f for f in findings), findings
    path = tmp_path / f"{case}.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["check-profile", str(path)]) == 2
    assert message in capsys.readouterr().err
    # and `run` refuses it before it starts an emulator or a device
    assert main(["run", "--device", str(path), "--reports", str(tmp_path / "reports")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "reports" / "results.json").exists()


@pytest.mark.parametrize("name", sorted(p.stem for p in PROFILE_DIR.glob("*.toml")))
def test_shipped_profiles_are_fit_to_certify(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-profile", name]) == 0
    assert "fit to certify" in capsys.readouterr().out


def test_check_profile_lists_the_items_that_do_not_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Applicability is decided from the profile's codes before the run, and shown first."""
    text = REFERENCE_TEXT.replace('"parallel", ', "", 1).replace('"priority", ', "", 1).replace('name = "reference"', 'name = "serial"', 1)
    path = tmp_path / "serial.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["check-profile", str(path)]) == 0
    out = capsys.readouterr().out
    assert "C2C-OPT-05 (has(parallel))" in out and "C2C-OPT-03 (has(priority))" in out
    assert "C2C-WF-01 (kind == encoder)" in out and "fit to certify" in out


def test_not_applicable_without_a_reason_is_refused_naming_the_field(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    text = REFERENCE_TEXT.replace('"C2C-WF-05" = "the reference device makes no proxies"', '"C2C-WF-05" = "  "', 1)
    assert text != REFERENCE_TEXT
    path = tmp_path / "no-reason.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["check-profile", str(path)]) == 2
    assert "[not_applicable] C2C-WF-05 needs a reason" in capsys.readouterr().err
