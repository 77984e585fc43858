"""The oracle steps record a measurement for every item of the scenario that declares it, and a
failure names the measurement, its limit and the items."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.bdd.bench import Bench, ScenarioState, SessionBench
from harness.bdd.steps.oracle_steps import declaring, measure_all, out_of_limits, require
from harness.errors import DeliveryFailure
from harness.items.checklist import load_checklist
from harness.timeline import Timeline


def _bench(tmp_path: Path, *items: str) -> Bench:
    session = SessionBench(profile=None, workdir=tmp_path, seed=1, prompt=None, timeline=Timeline(),  # type: ignore[arg-type]
                           checklist=load_checklist())
    state = ScenarioState()
    state.items = list(items)
    return Bench(session, state)


def test_measured_for_each_declaring_item_only(tmp_path: Path) -> None:
    bench = _bench(tmp_path, "C2C-QUE-02", "C2C-RTY-01", "C2C-AUTH-01")
    assert declaring(bench, "uploads_resumed") == ["C2C-QUE-02", "C2C-RTY-01"]
    assert measure_all(bench, "uploads_resumed", 2)
    assert [m["item"] for m in bench.state.measurements] == ["C2C-QUE-02", "C2C-RTY-01"]
    assert out_of_limits(bench) == []


def test_a_failure_names_the_measurement_its_limit_and_items(tmp_path: Path) -> None:
    bench = _bench(tmp_path, "C2C-QUE-02", "C2C-RES-02")
    assert not measure_all(bench, "files_intact", 3, expected_files=4)
    assert out_of_limits(bench) == ["files_intact=3 outside == 4 files (C2C-QUE-02, C2C-RES-02)"]
    with pytest.raises(DeliveryFailure, match=r"time_to_deliver_s=130 outside <= 120 s \(C2C-QUE-02, C2C-RES-02\)"):
        require(bench, "time_to_deliver_s", 130, "late", deadline_s=120)


def test_symbolic_limits_come_from_the_scenario(tmp_path: Path) -> None:
    bench = _bench(tmp_path, "C2C-QA-05")
    assert measure_all(bench, "refreshes", 3, clock_jumps=3)
    assert not measure_all(bench, "refreshes", 2, clock_jumps=3)


def test_an_earlier_steps_figure_fails_its_own_item_not_the_scenario(tmp_path: Path) -> None:
    """A status figure out of limits (STAT-02) must not be re-raised by a later delivery step, or it
    would fail every item the scenario shares (STAT-01, UPL-02) instead of its own."""
    bench = _bench(tmp_path, "C2C-STAT-01", "C2C-STAT-02", "C2C-UPL-02")
    assert not bench.measure("C2C-STAT-02", "remaining_bytes_error", 9_999_999, part_size=2_097_152)
    mark = len(bench.state.measurements)
    assert measure_all(bench, "files_lost", 0)
    assert out_of_limits(bench, mark) == []
    require(bench, "files_corrupt", 0, "corrupt")  # does not raise for the STAT-02 figure
    assert out_of_limits(bench) != []  # the figure is still there: the plugin fails STAT-02 alone with it
