"""Seeded defects: the table is sound, every patch applies, and the bench catches the mutants.

The matrix runs each selected mutant through `c2c-certify run --device mutant:NAME --item ITEM
--smoke` against the real emulator and a real device process. By default a representative
subset runs (the machine is shared); C2C_MUTANTS=all runs all of them (or a comma list).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.certify.checklist import load_checklist
from tests.mutants.matrix import judge, run_mutant
from tests.mutants.table import MUTANTS, Mutant, get_mutant

REPO = Path(__file__).resolve().parents[2]
DEFAULT = ("logs-token",)


def test_at_least_twenty_mutants_on_real_items() -> None:
    checklist = load_checklist()
    assert len(MUTANTS) >= 20
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)
    for m in MUTANTS:
        assert m.item in checklist, m.name
        assert all(a in checklist for a in m.also), m.name
        assert m.item not in m.also


@pytest.mark.parametrize("name", [m.name for m in MUTANTS])
def test_every_patch_applies_to_the_reference_device(name: str) -> None:
    """Each patch target exists in reference_device (in a fresh interpreter, so patches never leak)."""
    code = f"from tests.mutants.table import get_mutant; get_mutant({name!r}).patch()"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-1500:]


def test_launcher_refuses_an_unknown_mutant() -> None:
    done = subprocess.run([sys.executable, "-m", "tests.mutants.launch", "no-such-defect", "--", "run"],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 3 and "unknown mutant" in done.stderr


def _cert(verdicts: dict[str, str]) -> dict:
    checklist = load_checklist()
    return {"items": {i.id: {"verdict": verdicts.get(i.id, "pass"), "automatable": i.automatable} for i in checklist}}


def test_judge_requires_the_item_and_nothing_else() -> None:
    m = get_mutant("no-version-header")
    assert judge(m, _cert({"C2C-HDR-01": "fail"}))["ok"]
    assert not judge(m, _cert({}))["ok"]
    assert not judge(m, _cert({"C2C-HDR-01": "error"}))["ok"]
    bad = judge(m, _cert({"C2C-HDR-01": "fail", "C2C-UPL-01": "fail"}))
    assert not bad["ok"] and bad["collateral"] == ["C2C-UPL-01"]
    loses = get_mutant("loses-queue")
    assert judge(loses, _cert({"C2C-QUE-03": "fail", "C2C-RTY-02": "fail"}))["ok"]


def _selected() -> list[Mutant]:
    wanted = os.environ.get("C2C_MUTANTS", "")
    if wanted == "all":
        return list(MUTANTS)
    names = [n for n in wanted.split(",") if n] or list(DEFAULT)
    return [get_mutant(n) for n in names]


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("mutant", _selected(), ids=lambda m: m.name)
def test_mutant_is_flagged_on_its_item_only(mutant: Mutant, tmp_path: Path) -> None:
    result = run_mutant(mutant, tmp_path / mutant.name)
    assert result["ok"], result
