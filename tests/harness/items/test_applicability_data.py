"""Applicability is data in the checklist (`applies`, `[scenario_applies]`), never a step's special case.

A step that skips itself as not applicable when a capability is missing decides after the
scenario started (fixtures built, device launched) and hides the rule from check-profile and
the certificate's reason. These tests keep the rule in the checklist: no step module skips on
a capability, and every scenario that uses a step needing a capability is gated there.
"""

from __future__ import annotations

import ast
from pathlib import Path

from pytest_bdd.parser import FeatureParser

from harness.feature_files import FEATURES_DIR
from harness.items.checklist import codes, load_checklist

STEPS_DIR = Path(__file__).resolve().parents[3] / "harness" / "bdd" / "steps"
# Steps that only make sense on a device with a capability (their docstrings say the checklist gates them).
STEP_NEEDS = {"with a tethered virtual camera": "tether", "a paired device that makes proxies": "proxies"}


def capability_skips(source: str, name: str = "<module>") -> list[str]:
    """Functions that read `.capabilities` and call `pytest.skip`: applicability decided inside a step."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        inner = list(ast.walk(node))
        reads = any(isinstance(n, ast.Attribute) and n.attr == "capabilities" for n in inner)
        skips = any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "skip"
                    for n in inner)
        if reads and skips:
            found.append(f"{name}:{node.lineno} {node.name}")
    return found


def test_the_scan_finds_a_step_that_skips_on_a_capability() -> None:
    """The special case this replaced (tethered_steps.py before), so the scan is known to bite."""
    old = ('def _tethered(bench, name):\n'
           '    if "tether" not in bench.profile.capabilities:\n'
           '        pytest.skip(f"{NOT_APPLICABLE_SKIP}profile has no tethered camera")\n'
           '    _paired_device(bench)\n')
    assert capability_skips(old) == ["<module>:1 _tethered"]


def test_no_step_module_skips_on_a_capability() -> None:
    found = [hit for path in sorted(STEPS_DIR.glob("*.py"))
             for hit in capability_skips(path.read_text(encoding="utf-8"), path.name)]
    assert found == [], f"applicability belongs in checklist.toml ([scenario_applies] / applies): {found}"


def test_every_scenario_that_needs_a_capability_is_gated_by_the_checklist() -> None:
    checklist = load_checklist()
    without = {cap: codes("camera", set(STEP_NEEDS.values()) - {cap}) for cap in STEP_NEEDS.values()}
    with_all = codes("camera", set(STEP_NEEDS.values()))
    seen: dict[str, int] = {}
    for path in sorted(FEATURES_DIR.glob("*.feature")):
        for scenario in FeatureParser(str(FEATURES_DIR), path.name).parse().scenarios.values():
            for step in scenario.steps:
                for text, cap in STEP_NEEDS.items():
                    if text not in step.name:
                        continue
                    seen[cap] = seen.get(cap, 0) + 1
                    gate = checklist.scenario_applies.get(scenario.name)
                    assert gate is not None and cap in gate.capabilities, (path.name, scenario.name, cap)
                    assert not gate.evaluate(without[cap]) and gate.evaluate(with_all), (scenario.name, str(gate))
    assert set(seen) == set(STEP_NEEDS.values()), seen  # the steps are still in use: the check checks something
