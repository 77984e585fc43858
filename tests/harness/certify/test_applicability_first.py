"""A run whose every scenario is decided not applicable before it starts still knows its device.

No scenario asks for the bench, so the session (emulator, device) never starts; the profile's
declarations must still decide the items and its digest must still bind the seal. Before, such
a run named the device by its argument only: a declared not-applicable item became "operator"
(needs a person) and the certificate said "firmware None, kind None".
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from harness.certify.cli import plugin_args
from harness.device.profile import load_profile

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[3]

FEATURE = textwrap.dedent('''
    Feature: Decided before it runs
      @C2C-WF-04
      Scenario: Proxies match their hero file
        Given the device profile
        Then the bench breaks
''')

MODULE = textwrap.dedent('''
    from pytest_bdd import scenarios, then
    from harness.bdd.steps import step_fixtures
    from harness.errors import CloudError

    globals().update(step_fixtures())

    @then("the bench breaks")
    def _breaks(bench):
        raise CloudError("a scenario that does not apply ran")

    scenarios("features")
''')


def test_a_run_of_only_not_applicable_scenarios_keeps_the_profiles_declarations(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("C2C_SEAL_KEY_FILE", str(pytester.path / "lab.key"))
    pytester.mkdir("features")
    (pytester.path / "features" / "proxies.feature").write_text(FEATURE, encoding="utf-8")
    pytester.makepyfile(test_proxies=MODULE)
    reports = pytester.path / "reports"
    result = pytester.runpytest_subprocess(*plugin_args(), "--strict-markers", "--c2c-device=reference",
                                           f"--c2c-reports={reports}", "-p", "no:allure_pytest_bdd")
    result.assert_outcomes(skipped=1)
    assert not (reports / "work").exists()  # nothing was started
    cert = json.loads((reports / "certificate.json").read_text())
    entry = cert["items"]["C2C-WF-04"]
    reference = load_profile("reference")
    assert entry["verdict"] == "not-applicable", entry["reason"]
    assert reference.not_applicable["C2C-WF-04"] in entry["reason"]
    assert cert["device"]["firmware"] == reference.firmware and cert["device"]["kind"] == "camera"
    assert cert["seal"]["profile_sha256"]
