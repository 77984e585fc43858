"""The pytest plugin: inert when unused, verdicts and certificate when a scenario uses the bench."""

from __future__ import annotations

import hashlib
import json
import sys
import textwrap
from pathlib import Path

import pytest

from harness.certify.cli import plugin_args

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Subprocess pytest runs in a temp dir: make the (maybe uninstalled) project importable."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))

FEATURE = textwrap.dedent('''
    Feature: Declared and operator items
      @C2C-NETW-02 @declared
      Scenario: WPA2 Wi-Fi or Ethernet
        Given the device profile
        Then the profile declares "C2C-NETW-02" with evidence

      @C2C-STAT-01 @operator
      Scenario: Recording trigger
        Given the device profile
        Then the operator confirms "Does recording start on the SDI trigger?"

      @C2C-WF-01
      Scenario: An encoder's SDI trigger
        Given the device profile
        Then the bench breaks

      @C2C-QA-03
      Scenario: A step that breaks the bench
        Given the device profile
        Then the bench breaks

      @C2C-QA-04
      Scenario: A scenario that judges nothing
        Given the device profile
''')

MODULE = textwrap.dedent('''
    from pytest_bdd import scenarios, then
    from harness.bdd.steps import step_fixtures
    from harness.errors import CloudError

    globals().update(step_fixtures())

    @then("the bench breaks")
    def _breaks(bench):
        raise CloudError("emulator went away")

    scenarios("features")
''')


def test_plugin_is_inert_for_plain_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_ok():\n    assert 1\n")
    reports = pytester.path / "reports"
    result = pytester.runpytest_subprocess(*plugin_args(), "--strict-markers", f"--c2c-reports={reports}")
    result.assert_outcomes(passed=1)
    assert not reports.exists()


def test_checklist_ids_are_registered_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_marked='import pytest\n\n@pytest.mark.smoke\ndef test_ok():\n    assert 1\n')
    result = pytester.runpytest_subprocess(*plugin_args(), "--markers")
    out = result.stdout.str()
    assert "@pytest.mark.C2C-UPL-01: checklist item" in out and "@pytest.mark.smoke" in out


def test_declared_operator_and_error_verdicts(pytester: pytest.Pytester) -> None:
    pytester.mkdir("features")
    (pytester.path / "features" / "items.feature").write_text(FEATURE, encoding="utf-8")
    pytester.makepyfile(test_items=MODULE)
    reports = pytester.path / "reports"
    result = pytester.runpytest_subprocess(*plugin_args(), "--strict-markers", "--c2c-device=reference",
                                           f"--c2c-reports={reports}", "-p", "no:allure_pytest_bdd")
    result.assert_outcomes(passed=2, failed=2, skipped=1)
    cert = json.loads((reports / "certificate.json").read_text())
    items = cert["items"]
    # the profile's word is "declared" with its evidence, never "pass"
    assert items["C2C-NETW-02"]["verdict"] == "declared" and items["C2C-NETW-02"]["declared"]
    assert cert["summary"]["declared"] == 1 and cert["summary"]["measured"] == 0
    # WF-01 applies to encoders, the reference is a camera: decided before the scenario ran (it would break the bench)
    assert items["C2C-WF-01"]["verdict"] == "not-applicable" and "kind == encoder" in items["C2C-WF-01"]["reason"]
    assert items["C2C-QA-03"]["verdict"] == "error" and "[emulator] CloudError: emulator went away" in items["C2C-QA-03"]["reason"]
    # a scenario with no Then step has judged nothing: an error of the bench, never a pass
    assert items["C2C-QA-04"]["verdict"] == "error" and "[no-verdict]" in items["C2C-QA-04"]["reason"]
    results = json.loads((reports / "results.json").read_text())["results"]
    by_name = {r["scenario"]: r for r in results}
    assert by_name["Recording trigger"]["verdict"] == "operator"
    assert by_name["An encoder's SDI trigger"]["verdict"] == "not-applicable"
    assert "applies when kind == encoder" in by_name["An encoder's SDI trigger"]["reason"]
    assert by_name["WPA2 Wi-Fi or Ethernet"]["feature"] == "items.feature"
    assert cert["device"]["name"] == "reference" and cert["device"]["firmware"] == "1.0.0"
    assert (reports / "progress.jsonl").exists()
    # the run is recorded as it was asked for, and sealed to the bench that ran it
    assert "--c2c-device=reference" in cert["run"]["selection"]["argv"]
    assert cert["seal"]["results_sha256"] and cert["seal"]["profile_sha256"]
    assert cert["summary"]["exit_code"] != 0 and not cert["summary"]["certified"]


def test_an_operators_yes_is_operator_confirmed_with_who_and_when(pytester: pytest.Pytester) -> None:
    """Interactive: the person's answer is recorded as the evidence, and the verdict says so."""
    pytester.mkdir("features")
    (pytester.path / "features" / "items.feature").write_text(FEATURE, encoding="utf-8")
    pytester.makepyfile(test_items=MODULE)
    reports = pytester.path / "reports"
    clip = pytester.path / "sdi-trigger.txt"
    clip.write_text("recording started on the SDI flag\n", encoding="utf-8")
    result = pytester.run(sys.executable, "-m", "pytest", *plugin_args(), "--strict-markers", "--c2c-device=reference",
                          f"--c2c-reports={reports}", "-p", "no:allure_pytest_bdd", "--c2c-interactive", "-s",
                          "-k", "Recording", stdin=f"pass\n{clip}\n".encode())
    assert result.ret == 0, result.stdout.str()[-2000:]
    results = json.loads((reports / "results.json").read_text())["results"]
    [record] = results
    assert record["verdict"] == "operator-confirmed"
    [answer] = record["operator_answers"]
    assert answer["question"].startswith("Does recording start") and answer["verdict"] == "pass" and answer["operator"]
    # the evidence file is copied into the reports folder (the manifest hashes it) with its digest in the record
    assert (reports / answer["evidence"]).read_bytes() == clip.read_bytes()
    assert answer["evidence_sha256"] == hashlib.sha256(clip.read_bytes()).hexdigest()
    cert = json.loads((reports / "certificate.json").read_text())
    assert cert["summary"]["partial"]  # -k left the other scenarios out


def test_suite_file_exists() -> None:
    assert (Path(__file__).resolve().parents[3] / "harness" / "bdd" / "suite.py").exists()


KNOWN_STATE_FEATURE = textwrap.dedent('''
    Feature: Each scenario starts from a known bench
      @C2C-QA-03
      Scenario: A scenario that leaves the link broken
        Given the device profile
        Then the link can no longer be restored

      @C2C-NETW-02 @declared
      Scenario: WPA2 Wi-Fi or Ethernet
        Given the device profile
        Then the profile declares "C2C-NETW-02" with evidence
''')

KNOWN_STATE_MODULE = textwrap.dedent('''
    from pytest_bdd import scenarios, then
    from harness.bdd.steps import step_fixtures
    from harness.errors import FaultInjectionError

    globals().update(step_fixtures())

    @then("the link can no longer be restored")
    def _break_link(bench):
        def broken():
            raise FaultInjectionError("toxiproxy API PATCH /proxies/c2c_api: HTTP 500: bind: address already in use")
        bench.network.clear = broken  # the cleanup swallows it; the next scenario must not

    scenarios("features")
''')


def test_a_scenario_after_a_bench_that_cannot_be_restored_is_an_error(pytester: pytest.Pytester) -> None:
    """The link is restored before each scenario: when it cannot be, that scenario is a bench
    error (never a device fail on a dead link, never a pass)."""
    pytester.mkdir("features")
    (pytester.path / "features" / "known.feature").write_text(KNOWN_STATE_FEATURE, encoding="utf-8")
    pytester.makepyfile(test_known=KNOWN_STATE_MODULE)
    reports = pytester.path / "reports"
    pytester.runpytest_subprocess(*plugin_args(), "--strict-markers", "--c2c-device=reference",
                                  f"--c2c-reports={reports}", "-p", "no:allure_pytest_bdd")
    items = json.loads((reports / "certificate.json").read_text())["items"]
    by_name = {r["scenario"]: r for r in json.loads((reports / "results.json").read_text())["results"]}
    assert by_name["A scenario that leaves the link broken"]["verdict"] == "pass"
    assert items["C2C-NETW-02"]["verdict"] == "error", items["C2C-NETW-02"]
    assert "[fault-injector]" in items["C2C-NETW-02"]["reason"] and "bind" in items["C2C-NETW-02"]["reason"]
