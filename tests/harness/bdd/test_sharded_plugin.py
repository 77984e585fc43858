"""The plugin under pytest-xdist: each worker hands its shard to the controller, which writes one
sealed results.json and one certificate with the same verdicts as a serial run."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from harness.certify.cli import plugin_args
from harness.certify.seal import verify

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[3]

FEATURE = textwrap.dedent('''
    Feature: Items spread over workers
      @C2C-NETW-02 @declared
      Scenario: WPA2 Wi-Fi or Ethernet
        Given the device profile
        Then the profile declares "C2C-NETW-02" with evidence

      @C2C-QA-03
      Scenario: A step that breaks the bench
        Given the device profile
        Then the bench breaks

      @C2C-QA-04
      Scenario: A scenario that judges nothing
        Given the device profile

      @C2C-WF-01
      Scenario: An encoder's SDI trigger
        Given the device profile
        Then the bench breaks

      @C2C-SEC-02
      Scenario: A TLS interceptor scenario
        Given the device profile
        When a TLS interceptor is named in this step
        Then the worker is noted

      @C2C-SEC-02
      Scenario: Another TLS interceptor scenario
        Given the device profile
        When a TLS interceptor is named in this step
        Then the worker is noted
''')

MODULE = textwrap.dedent('''
    import os
    from pytest_bdd import scenarios, then, when
    from harness.bdd.steps import step_fixtures
    from harness.errors import CloudError

    globals().update(step_fixtures())

    @then("the bench breaks")
    def _breaks(bench):
        raise CloudError("emulator went away")

    @when("a TLS interceptor is named in this step")
    def _named(bench):
        pass

    @then("the worker is noted")
    def _noted(bench):
        with open("interceptor-workers.txt", "a", encoding="utf-8") as fh:
            fh.write(os.environ.get("PYTEST_XDIST_WORKER", "serial") + "\\n")

    scenarios("features")
''')


@pytest.fixture(autouse=True)
def _importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))


def _certify(pytester: pytest.Pytester, reports: Path, *xdist: str) -> dict[str, Any]:
    pytester.runpytest_subprocess(*plugin_args(), "--strict-markers", "--c2c-device=reference",
                                  f"--c2c-reports={reports}", "-p", "no:allure_pytest_bdd", *xdist)
    assert (reports / "certificate.json").exists(), sorted(p.name for p in reports.iterdir())
    return dict(json.loads((reports / "results.json").read_text()))


def test_a_sharded_run_writes_one_sealed_run_with_the_serial_verdicts(pytester: pytest.Pytester,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # when make test itself runs on xdist, its worker's name must not leak into the nested runs
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    pytester.mkdir("features")
    (pytester.path / "features" / "items.feature").write_text(FEATURE, encoding="utf-8")
    pytester.makepyfile(test_items=MODULE)
    serial = _certify(pytester, pytester.path / "serial")
    sharded = _certify(pytester, pytester.path / "sharded", "-n", "2", "--dist", "loadgroup")

    # the same rows in the same (collection) order, with the same verdicts and plain node ids
    assert [(r["nodeid"], r["verdict"], r["item_verdicts"]) for r in sharded["results"]] == \
        [(r["nodeid"], r["verdict"], r["item_verdicts"]) for r in serial["results"]]
    assert not any("@" in r["nodeid"] for r in sharded["results"])
    ser_cert = json.loads((pytester.path / "serial" / "certificate.json").read_text())
    sh_cert = json.loads((pytester.path / "sharded" / "certificate.json").read_text())
    assert {i: e["verdict"] for i, e in sh_cert["items"].items()} == {i: e["verdict"] for i, e in ser_cert["items"].items()}
    assert sh_cert["summary"]["status"] == ser_cert["summary"]["status"]
    # both workers ran scenarios and are named in the sealed run; the seal verifies over the merged rows
    run = sharded["run"]
    assert run["workers"] == 2 and sorted(s["worker"] for s in run["shards"]) == ["gw0", "gw1"]
    assert sum(s["scenarios"] for s in run["shards"]) == len(serial["results"])
    assert run["expected"] == serial["run"]["expected"] and run["selection"]["selected"] == 6
    verify(sharded)
    # the interceptor scenarios are one xdist group: one worker ran both
    noted = (pytester.path / "interceptor-workers.txt").read_text().split()
    assert noted[:2] == ["serial", "serial"] and len(noted) == 4 and len(set(noted[2:])) == 1, noted
    # progress: one "collected" event for the run, every scenario event names its worker
    events = [json.loads(line) for line in (pytester.path / "sharded" / "progress.jsonl").read_text().splitlines()]
    assert [e["scenarios"] for e in events if e["event"] == "collected"] == [6]
    assert {e["worker"] for e in events if e["event"] == "scenario"} == {"gw0", "gw1"}


def test_an_edited_merged_verdict_breaks_the_seal(pytester: pytest.Pytester) -> None:
    pytester.mkdir("features")
    (pytester.path / "features" / "items.feature").write_text(FEATURE, encoding="utf-8")
    pytester.makepyfile(test_items=MODULE)
    sharded = _certify(pytester, pytester.path / "sharded", "-n", "2", "--dist", "loadgroup")
    sharded["run"]["shards"][0]["journal_rows"] += 1
    from harness.certify.seal import SealBroken

    with pytest.raises(SealBroken, match="run_sha256"):
        verify(sharded)
