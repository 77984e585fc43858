"""A failed scenario carries the device's thread stacks; a passing one does not ask for them.

Unit level: collect_evidence with a fake bench. Plugin level: a real pytest-bdd run (a pytest subprocess)
with the c2c_bench and allure-pytest-bdd plugins, a step that fails, and the Allure results
read back: the dump must be an attachment of the failed scenario (pytest-bdd does not tell
after_scenario that a step failed; the step_error hook does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from harness.bdd.bench import Bench, ScenarioState, SessionBench
from harness.bdd.evidence import collect_evidence, scenario_failed
from harness.errors import BenchFailure, DeviceFailure, OperatorUnavailable
from harness.protocols import StackDumps
from harness.timeline import Timeline

REPO = Path(__file__).resolve().parents[3]
DUMP = 'Thread 0x00007f01 (most recent call first):\n  File "heartbeat.py", line 190 in _socket_session\n'


class FakeCloud:
    def client_secret(self) -> str:
        return "s3cr3t-client-secret-value"

    def journal(self, since: int = 0) -> list[dict[str, Any]]:
        return []


class FakePrompt:
    answers: tuple[Any, ...] = ()


class ConsoleDevice:
    """A device with a console and no way to dump its stacks."""

    def __init__(self) -> None:
        self.console = ""

    def console_text(self) -> str:
        return self.console


class DumpingDevice(ConsoleDevice):
    def __init__(self, dump: str = DUMP, error: Exception | None = None) -> None:
        super().__init__()
        self.dump, self.error, self.asked = dump, error, 0

    def dump_stacks(self) -> str:
        self.asked += 1
        if self.error is not None:
            raise self.error
        self.console += self.dump  # the dump lands in the console, as faulthandler's does
        return self.dump


def make_bench(tmp_path: Path, device: Any) -> Bench:
    session = SessionBench(profile=None, workdir=tmp_path, seed=1, prompt=FakePrompt(),  # type: ignore[arg-type]
                           timeline=Timeline(), checklist=None,  # type: ignore[arg-type]
                           _cloud=FakeCloud(), _device=device)  # type: ignore[arg-type]
    return Bench(session, ScenarioState())


def test_a_failed_scenario_asks_the_device_for_its_stacks_first(tmp_path: Path) -> None:
    device = DumpingDevice()
    assert isinstance(device, StackDumps) and not isinstance(ConsoleDevice(), StackDumps)
    evidence = collect_evidence(make_bench(tmp_path, device), failed=True)
    assert evidence["device thread stacks"][0] == DUMP and device.asked == 1
    # asked before the console is read: the console excerpt already shows the dump
    assert next(iter(evidence)) == "device thread stacks"
    assert "_socket_session" in evidence["device console (this scenario)"][0]


def test_a_passing_scenario_never_signals_the_device(tmp_path: Path) -> None:
    device = DumpingDevice()
    evidence = collect_evidence(make_bench(tmp_path, device))
    assert device.asked == 0 and not any("stacks" in name for name in evidence)


def test_a_device_without_dumps_and_a_dump_that_fails(tmp_path: Path) -> None:
    assert not any("stacks" in n for n in collect_evidence(make_bench(tmp_path, ConsoleDevice()), failed=True))
    assert not any("stacks" in n for n in collect_evidence(make_bench(tmp_path, None), failed=True))
    assert not any("stacks" in n for n in collect_evidence(make_bench(tmp_path, DumpingDevice(dump="")), failed=True))
    broken = DumpingDevice(error=DeviceFailure("REF-1 is not running (exit code -9): no stacks to dump"))
    body, _ = collect_evidence(make_bench(tmp_path, broken), failed=True)["device thread stacks (unavailable)"]
    assert "not running" in body  # evidence gathering never raises, it says what is missing


@pytest.mark.parametrize(("exc", "measurements", "failed"), [
    (AssertionError("no heartbeat"), [], True),
    (DeviceFailure("timed out"), [], True),
    (BenchFailure("proxy died"), [], True),
    (RuntimeError("harness bug"), [], True),
    (OperatorUnavailable("needs a person"), [], False),
    (None, [{"name": "heartbeat_gap_s", "passed": False}], True),
    (None, [{"name": "heartbeat_gap_s", "passed": True}], False),
    (None, [], False),
])
def test_which_scenarios_count_as_failed(exc: BaseException | None, measurements: list[dict[str, Any]],
                                         failed: bool) -> None:
    assert scenario_failed(exc, measurements) is failed


FEATURE = """\
Feature: Presence
  Scenario: A stalled device
    Given a device
    Then the device beats

  Scenario: A healthy device
    Given a device
"""

CONFTEST = '''
import pytest

from harness.bdd.plugin import BENCH
from tests.harness.bdd.test_evidence_stacks import DumpingDevice, make_bench


@pytest.fixture
def bench(request, tmp_path):
    b = make_bench(tmp_path, DumpingDevice())
    request.node.stash[BENCH] = b
    return b
'''

SCENARIOS = '''
from pytest_bdd import given, scenarios, then

scenarios("presence.feature")


@given("a device")
def _device(bench):
    pass


@then("the device beats")
def _beats(bench):
    raise AssertionError("no heartbeat or socket activity seen")
'''


def _attachments(results: Path) -> dict[str, dict[str, str]]:
    """{scenario name: {attachment name: body}} from an Allure results directory."""
    out: dict[str, dict[str, str]] = {}
    for path in results.glob("*-result.json"):
        result = json.loads(path.read_text())
        found: dict[str, str] = {}
        todo = [result]
        while todo:
            node = todo.pop()
            for att in node.get("attachments", []):
                found[att["name"]] = (results / att["source"]).read_text()
            todo.extend(node.get("steps", []))
        out[result["name"]] = found
    return out


def test_the_dump_is_attached_to_the_failed_scenario_in_the_allure_results(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "presence.feature").write_text(FEATURE)
    (suite / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (suite / "test_presence.py").write_text(textwrap.dedent(SCENARIOS))
    results = tmp_path / "allure-results"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(suite),
                          "--alluredir", str(results), str(suite)],
                         cwd=suite, env=env, capture_output=True, text=True, timeout=120)
    assert "1 failed, 1 passed" in run.stdout, run.stdout[-3000:] + run.stderr[-2000:]
    attached = _attachments(results)
    assert attached["A stalled device"]["device thread stacks"] == DUMP
    assert "device thread stacks" not in attached["A healthy device"]
    assert "fault timeline" in attached["A healthy device"]  # the healthy one still has its evidence
