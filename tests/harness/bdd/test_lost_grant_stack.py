"""A power cut that takes a token refresh's answer with it, on the real stack: the reference
device as a process, the emulator over TLS, a SIGKILL while the cloud holds the refresh's
answer. The certification must pair the device again (harness/certify/lost_grant.py), say so, and
then judge delivery as usual. Without the re-pair the device fails C2C-QUE-03 with every file
lost: it woke up holding a refresh token the cloud had already rotated.

The scenario runs through `c2c-certify run` with its own feature (C2C_FEATURES) and one step of
its own (a pytest plugin in the suite folder): the step library has no scenario for this,
because it tests the bench, not a checklist item.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

FEATURE = """\
Feature: A grant lost in a power cut
  @C2C-QUE-03
  Scenario: The power is cut while the cloud holds a token refresh's answer
    Given a paired device
    When the power is cut while the cloud holds the device's next token refresh
    And the power comes back
    And 2 "jpg" files are captured at once
    Then every captured file arrives intact within 120 seconds
"""

STEP = '''
"""The cut this test needs: the refresh carried out by the cloud, its answer held, the device killed."""

from pytest_bdd import when

from harness.bdd.bench import Bench
from harness.bdd.steps.common import wait_until
from harness.cloud.control import CloudControl


@when("the power is cut while the cloud holds the device's next token refresh")
def _cut_in_refresh(bench: Bench) -> None:
    cloud = bench.cloud
    assert isinstance(cloud, CloudControl)
    rule = cloud.hold("api", "/v2/auth/token", method="POST", hold_s=60)  # the run's one device
    cloud.expire_tokens(bench.cloud_device_id())  # its next request is refused: it refreshes
    wait_until(lambda: cloud.fault(rule).get("arrived_at") is not None, 60,
               "the device's token refresh to reach the cloud")
    bench.timeline.record("power", "cut", "start")
    bench.power.off()
    cloud.release_fault(rule)  # the cloud answers 200 to a dead device: the rotated pair is lost
    cloud.remove_fault(rule)
'''


def _certify(tmp_path: Path) -> dict[str, object]:
    # outside the checkout, as a vendor's own feature folder would be (the certification moves
    # pytest's rootdir up so allure-pytest-bdd can name the scenario)
    suite = tmp_path / "vendor-suite"
    suite.mkdir()
    return _certify_in(suite, tmp_path / "reports")


def _certify_in(suite: Path, reports: Path) -> dict[str, object]:
    (suite / "lost_grant.feature").write_text(FEATURE)
    (suite / "lost_grant_cut.py").write_text(textwrap.dedent(STEP))
    env = {**os.environ, "C2C_FEATURES": str(suite),
           "PYTHONPATH": os.pathsep.join([str(suite), str(REPO), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "harness.certify.cli", "run", "--device", "reference", "--quiet",
                          "--reports", str(reports), "--", "-p", "lost_grant_cut"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    results = reports / "results.json"
    assert results.is_file(), run.stdout[-3000:] + run.stderr[-3000:]
    [record] = json.loads(results.read_text())["results"]
    return dict(record)


@pytest.mark.slow
def test_the_bench_pairs_the_device_again_and_says_why(tmp_path: Path) -> None:
    record = _certify(tmp_path)
    assert record["verdict"] == "pass", json.dumps(record, indent=1)[:4000]
    said = " ".join(str(x) for x in record["exercised"])  # type: ignore[attr-defined]
    assert "paired the device again" in said and "refused" in said, said
