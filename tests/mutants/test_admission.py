"""When the matrix starts another run (tests/mutants/admission.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mutants.admission import RAMP_S, SPARE_CPU, Admission
from tests.mutants.patching import Mutant


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_below_least_starts_whatever_the_machine_says() -> None:
    gate = Admission(least=2, most=4, clock=Clock())
    assert gate.may_start(0, None) and gate.may_start(1, 0.0)
    gate.started()
    assert gate.may_start(1, 0.0)  # the ramp only holds back runs beyond `least`


def test_beyond_least_only_with_spare_cpu_after_the_ramp_and_never_past_most() -> None:
    clock = Clock()
    gate = Admission(least=2, most=3, clock=clock)
    assert not gate.may_start(2, None)  # no figure: no extra run
    assert not gate.may_start(2, SPARE_CPU - 0.01)
    assert gate.may_start(2, SPARE_CPU)
    gate.started()
    assert not gate.may_start(2, 0.9)  # the newest run has not reached its busy phase yet
    clock.t += RAMP_S
    assert gate.may_start(2, 0.9)
    assert not gate.may_start(3, 1.0)  # at `most`


def test_most_defaults_to_least_and_bad_bounds_are_refused() -> None:
    gate = Admission(least=2, most=2, clock=Clock())
    assert not gate.may_start(2, 1.0)
    with pytest.raises(ValueError, match="least"):
        Admission(least=3, most=2)


def _fake_runs(monkeypatch: pytest.MonkeyPatch, release_at: int) -> dict[str, int]:
    """run_mutant replaced by a run that holds until `release_at` runs are going at once (or 2 s)."""
    import threading

    from tests.mutants import matrix

    lock, go, seen = threading.Lock(), threading.Event(), {"now": 0, "peak": 0, "runs": 0}

    def run(mutant: Mutant, reports: Path, **_: object) -> dict[str, object]:
        with lock:
            seen["now"] += 1
            seen["runs"] += 1
            seen["peak"] = max(seen["peak"], seen["now"])
            if seen["now"] >= release_at:
                go.set()
        go.wait(timeout=2.0)
        with lock:
            seen["now"] -= 1
        name = mutant.name
        return {"mutant": name, "item": "C2C-UPL-01", "ok": True, "caught": True, "failed": ["C2C-UPL-01"],
                "errors": [], "collateral": [], "verdicts": {"C2C-UPL-01": "fail"}, "seconds": 0.0}

    class Idle:
        def share(self) -> float:
            return 1.0  # a machine with nothing to do

    monkeypatch.setattr(matrix, "run_mutant", run)
    monkeypatch.setattr(matrix, "IdleWindow", Idle)
    monkeypatch.setattr(matrix, "Admission", lambda least, most: Admission(least=least, most=most, ramp_s=0.0))
    return seen


def test_the_matrix_grows_to_most_on_an_idle_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.mutants.matrix import run_matrix
    from tests.mutants.table import MUTANTS

    seen = _fake_runs(monkeypatch, release_at=4)
    names = [m.name for m in MUTANTS[:6]]
    results = run_matrix(only=names, work=tmp_path, workers=2, most=4)
    assert seen["peak"] == 4 and seen["runs"] == 6
    assert sorted(r["mutant"] for r in results) == sorted(names)
    assert all(isinstance(r["started_s"], float) for r in results)  # the table says how many ran at once


def test_without_most_the_matrix_keeps_to_workers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.mutants.matrix import run_matrix
    from tests.mutants.table import MUTANTS

    seen = _fake_runs(monkeypatch, release_at=2)
    run_matrix(only=[m.name for m in MUTANTS[:5]], work=tmp_path, workers=2)
    assert seen["peak"] == 2 and seen["runs"] == 5
