"""`c2c-certify retry`: rerun only what failed, keep every attempt, refuse another certification."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from harness.certify.certificate import write_certificate
from harness.certify.cli import main, plugin_args
from harness.certify.manifest import bench_version, write_manifest
from harness.certify.retry import retry_plan
from harness.certify.seal import profile_digest, seal
from harness.device.profile import PROFILE_DIR, load_profile
from harness.errors import ConfigError

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[3]

FEATURE = textwrap.dedent('''
    Feature: Retry
      @C2C-NETW-02 @declared
      Scenario: WPA2 Wi-Fi or Ethernet
        Given the device profile
        Then the profile declares "C2C-NETW-02" with evidence

      @C2C-HDR-01
      Scenario: Every request carries a semver firmware version header
        Given the device profile
        Then the bench breaks on the first attempt
''')

MODULE = textwrap.dedent('''
    from pathlib import Path
    from pytest_bdd import scenarios, then
    from harness.bdd.steps import step_fixtures
    from harness.errors import CloudError

    globals().update(step_fixtures())

    @then("the bench breaks on the first attempt")
    def _breaks_once():
        marker = Path("broke-once")
        if not marker.exists():
            marker.write_text("x")
            raise CloudError("emulator went away")

    scenarios("features")
''')


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("C2C_SEAL_KEY_FILE", str(tmp_path / "lab.key"))


def test_a_retry_reruns_only_the_failed_item_and_keeps_both_attempts(pytester: pytest.Pytester) -> None:
    pytester.mkdir("features")
    (pytester.path / "features" / "retry.feature").write_text(FEATURE, encoding="utf-8")
    pytester.makepyfile(test_retry=MODULE)
    first, second = pytester.path / "r1", pytester.path / "r2"
    common = [*plugin_args(), "--strict-markers", "--c2c-device=reference", "-p", "no:allure_pytest_bdd"]
    pytester.runpytest_subprocess(*common, f"--c2c-reports={first}").assert_outcomes(passed=1, failed=1)
    before = json.loads((first / "certificate.json").read_text())
    assert before["items"]["C2C-HDR-01"]["verdict"] == "error"
    result = pytester.runpytest_subprocess(*common, f"--c2c-reports={second}", "-m", "C2C-HDR-01",
                                           f"--c2c-prior={first / 'results.json'}")
    result.assert_outcomes(passed=1, deselected=1)
    after = json.loads((second / "certificate.json").read_text())
    qa = after["items"]["C2C-HDR-01"]
    assert qa["verdict"] == "pass" and qa["reason"].startswith("pass after 2 attempts")
    assert [(a["attempt"], a["verdict"]) for a in qa["attempts"]] == [(1, "error"), (2, "pass")]
    # the item that was not retried is carried forward as the first run recorded it
    assert after["items"]["C2C-NETW-02"]["verdict"] == "declared"
    assert after["run"]["selection"]["deselected"] == 0 and after["run"]["selection"]["retried_items"] == ["C2C-HDR-01"]
    assert after["run"]["history"][0]["seal_results_sha256"] == before["seal"]["results_sha256"]


def _sealed_run(tmp_path: Path, profile_path: Path, *, strict: bool = False) -> Path:
    profile = load_profile(profile_path)
    device = profile.summary()
    results = [{"scenario": "Every request carries a semver firmware version header", "items": ["C2C-HDR-01"],
                "verdict": "fail", "reason": "x-client-version: 1.00", "measurements": []}]
    run = {"device_arg": str(profile_path), "seed": 4, "selection": {"argv": [], "deselected": 60}, "strict": strict}
    bound = {"profile_sha256": profile_digest(profile.path, device)}
    reports = tmp_path / "earlier"
    reports.mkdir()
    (reports / "results.json").write_text(json.dumps(
        {"device": device, "run": run, "results": results, "seal": seal(device, run, results, bound)}))
    write_certificate(reports)
    write_manifest(reports)
    return reports


def test_retry_plans_the_failed_items_with_the_earlier_seed(tmp_path: Path) -> None:
    profile = tmp_path / "dut.toml"
    profile.write_text((PROFILE_DIR / "reference.toml").read_text().replace('name = "reference"', 'name = "dut"'))
    plan = retry_plan(_sealed_run(tmp_path, profile), ("fail",), str(bench_version()["commit"]))
    assert plan["items"] == ["C2C-HDR-01"] and plan["seed"] == 4 and plan["device"] == str(profile)
    assert not plan["strict"]


def test_a_strict_run_is_retried_strict(tmp_path: Path) -> None:
    """The policy for inferred failures is part of the certification: a retry keeps it."""
    profile = tmp_path / "dut.toml"
    profile.write_text((PROFILE_DIR / "reference.toml").read_text().replace('name = "reference"', 'name = "dut"'))
    plan = retry_plan(_sealed_run(tmp_path, profile, strict=True), ("fail",), str(bench_version()["commit"]))
    assert plan["strict"]


def test_retry_refuses_another_firmware(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "dut.toml"
    profile.write_text((PROFILE_DIR / "reference.toml").read_text().replace('name = "reference"', 'name = "dut"'))
    earlier = _sealed_run(tmp_path, profile)
    profile.write_text(profile.read_text().replace('firmware = "1.0.0"', 'firmware = "1.0.1"', 1))
    with pytest.raises(ConfigError, match=r"firmware 1\.0\.0 -> 1\.0\.1"):
        retry_plan(earlier, ("fail",), str(bench_version()["commit"]))
    assert main(["retry", "--from", str(earlier)]) == 2
    assert "another certification" in capsys.readouterr().err


def test_retry_refuses_another_profile_or_bench(tmp_path: Path) -> None:
    """Same firmware is not enough: a changed declaration or another harness is another certification."""
    profile = tmp_path / "dut.toml"
    profile.write_text((PROFILE_DIR / "reference.toml").read_text().replace('name = "reference"', 'name = "dut"'))
    earlier = _sealed_run(tmp_path, profile)
    commit = str(bench_version()["commit"])
    with pytest.raises(ConfigError, match=r"bench \w{12} -> 0123456789ab"):
        retry_plan(earlier, ("fail",), "0123456789abcdef")
    profile.write_text(profile.read_text().replace('"C2C-WF-05" = "the reference device makes no proxies"',
                                                   '"C2C-WF-05" = "no proxies on this firmware"', 1))
    with pytest.raises(ConfigError, match="the profile changed") as info:
        retry_plan(earlier, ("fail",), commit)
    assert "firmware" not in str(info.value)
