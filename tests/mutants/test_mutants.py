"""Seeded defects: the table is sound, every patch applies, and the bench catches every mutant.

The matrix certifies each mutant with `c2c-certify run --device mutant:NAME --item ITEM
--item <smoke items>` against a real emulator and a real device process, two mutants at a
time, once per session (a module fixture); each mutant then gets its own test asserting it
was flagged on its item, on no other automatable item, and that no scenario ended in a
bench error. C2C_MUTANTS=name,name narrows the matrix while debugging (default: all).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.items.checklist import load_checklist
from tests.mutants.matrix import (
    IDLE_MUTANTS,
    SMOKE_ITEMS,
    certify_argv,
    judge,
    run_matrix,
    table,
    write_table,
)
from tests.mutants.table import MUTANTS, Mutant, get_mutant

REPO = Path(__file__).resolve().parents[2]


def test_at_least_twenty_mutants_on_real_items() -> None:
    checklist = load_checklist()
    assert len(MUTANTS) >= 20
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)
    for m in MUTANTS:
        assert m.item in checklist, m.name
        assert all(a in checklist for a in m.also), m.name
        assert m.item not in m.also
        assert not set(m.also) & set(SMOKE_ITEMS), f"{m.name}: a smoke item may never be collateral"


def _failures_in_fresh_interpreters(argv: Callable[[Mutant], list[str]]) -> dict[str, str]:
    """Run `argv(mutant)` for every mutant, five fresh interpreters at a time (no patch leaks
    into another); the output of each that exited non-zero, by mutant name."""
    failures: dict[str, str] = {}
    for at in range(0, len(MUTANTS), 5):
        procs = {m.name: subprocess.Popen(argv(m), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          text=True) for m in MUTANTS[at:at + 5]}
        for name, proc in procs.items():
            out, _ = proc.communicate(timeout=120)
            if proc.returncode != 0:
                failures[name] = out[-800:]
    return failures


def test_every_patch_applies_to_the_reference_device() -> None:
    """Each patch target exists in reference_device."""
    failures = _failures_in_fresh_interpreters(lambda m: [
        sys.executable, "-c", f"from tests.mutants.table import get_mutant; get_mutant({m.name!r}).patch()"])
    assert not failures, failures


def test_every_patch_takes_every_call_its_target_takes() -> None:
    """A wrapper that drops a parameter breaks every caller that passes it: a second defect."""
    failures = _failures_in_fresh_interpreters(lambda m: [sys.executable, "-m", "tests.mutants.signature_check", m.name])
    assert not failures, failures


def test_launcher_refuses_an_unknown_mutant() -> None:
    done = subprocess.run([sys.executable, "-m", "tests.mutants.launch", "no-such-defect", "--", "run"],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 3 and "unknown mutant" in done.stderr


def _cert(verdicts: dict[str, str], ran: set[str] | None = None) -> dict[str, Any]:
    checklist = load_checklist()
    return {"items": {i.id: {"verdict": verdicts.get(i.id, "pass"), "automatable": i.automatable,
                             "scenarios": [{"name": "s"}] if ran is None or i.id in ran else [],
                             "reason": "why"} for i in checklist}}


def test_judge_requires_the_item_and_nothing_else() -> None:
    m = get_mutant("no-version-header")
    assert judge(m, _cert({"C2C-HDR-01": "fail"}))["ok"]
    assert not judge(m, _cert({}))["ok"]
    assert not judge(m, _cert({"C2C-HDR-01": "error"}))["ok"]
    bad = judge(m, _cert({"C2C-HDR-01": "fail", "C2C-UPL-01": "fail"}))
    assert not bad["ok"] and bad["collateral"] == ["C2C-UPL-01"]
    loses = get_mutant("loses-queue")
    assert judge(loses, _cert({"C2C-QUE-03": "fail", "C2C-RTY-02": "fail"}))["ok"]


def test_an_inferred_defect_is_caught_only_as_fail_inferred() -> None:
    """A defect only an [INF] expectation sees must come out 'fail (inferred)': a plain fail would
    mean a firm expectation caught it (wrongly tagged), a pass that the bench missed it."""
    m = get_mutant("slow-down-is-fatal")
    assert m.expect == "fail (inferred)"
    assert judge(m, _cert({"C2C-RTY-03": "fail (inferred)"}))["ok"]
    assert not judge(m, _cert({"C2C-RTY-03": "fail"}))["ok"]
    assert not judge(m, _cert({}))["ok"]
    collateral = judge(get_mutant("logs-token"), _cert({"C2C-SEC-04": "fail", "C2C-RTY-03": "fail (inferred)"}))
    assert collateral["collateral"] == ["C2C-RTY-03"]


def test_judge_attributes_a_scenario_shared_with_the_own_item() -> None:
    """A scenario tagged with QUE-03 and UPL-01 fails both; only an own-item-free failure is collateral."""
    loses = get_mutant("loses-queue")

    def cert(upl_scenarios: list[dict[str, str]], que_verdict: str = "fail") -> dict[str, Any]:
        c = _cert({"C2C-QUE-03": "fail", "C2C-UPL-01": "fail"})
        c["items"]["C2C-QUE-03"]["scenarios"] = [{"nodeid": "tether-cut", "verdict": que_verdict},
                                                 {"nodeid": "queue-cut", "verdict": "fail"}]
        c["items"]["C2C-UPL-01"]["scenarios"] = upl_scenarios
        return c

    shared = judge(loses, cert([{"nodeid": "tether-cut", "verdict": "fail"}, {"nodeid": "smoke", "verdict": "pass"}]))
    assert shared["ok"] and shared["shared"] == ["C2C-UPL-01"] and shared["collateral"] == []
    own_smoke = judge(loses, cert([{"nodeid": "tether-cut", "verdict": "fail"}, {"nodeid": "smoke", "verdict": "fail"}]))
    assert not own_smoke["ok"] and own_smoke["collateral"] == ["C2C-UPL-01"]
    passed_for_own = judge(loses, cert([{"nodeid": "tether-cut", "verdict": "fail"}], que_verdict="pass"))
    assert passed_for_own["caught"] and passed_for_own["collateral"] == ["C2C-UPL-01"]


def test_judge_counts_errors_only_on_items_that_ran() -> None:
    m = get_mutant("logs-token")
    ran = {"C2C-SEC-04", *SMOKE_ITEMS}
    not_run = {"C2C-QA-02": "error"}  # "no scenario ran for this item" in a selective run
    assert judge(m, _cert({"C2C-SEC-04": "fail", **not_run}, ran))["ok"]
    broken = judge(m, _cert({"C2C-SEC-04": "fail", "C2C-UPL-01": "error"}, ran))
    assert not broken["ok"] and broken["errors"] == ["C2C-UPL-01"]


def test_judge_requires_the_contradictions_a_mutant_makes() -> None:
    from dataclasses import replace

    m = replace(get_mutant("no-parallel"), contradicts=("capabilities: parallel",))
    cert = _cert({"C2C-OPT-05": "fail"})
    missing = judge(m, cert)
    assert not missing["ok"] and "not listed as contradicted" in missing["note"]
    cert["summary"] = {"contradicted": [{"declaration": "capabilities: parallel", "evidence": "most 1"}]}
    assert judge(m, cert)["ok"]


def test_quick_run_selects_the_own_item_and_the_smoke_items() -> None:
    argv = certify_argv(get_mutant("logs-token"), Path("/tmp/r"))
    assert argv[argv.index("--item") + 1] == "C2C-SEC-04"
    marks = argv[len(argv) - 1 - argv[::-1].index("-m") + 1]  # the last -m is the one pytest uses
    assert marks.startswith("(C2C-SEC-04) or (smoke and (")
    assert all(f"({i})" in marks for i in SMOKE_ITEMS)
    assert "--item" not in certify_argv(get_mutant("logs-token"), Path("/tmp/r"), full=True)


def test_a_full_run_can_be_sharded() -> None:
    full = certify_argv(get_mutant("logs-token"), Path("/tmp/r"), full=True, shards=4)
    assert full[full.index("--workers") + 1] == "4"
    assert "--workers" not in certify_argv(get_mutant("logs-token"), Path("/tmp/r"), full=True)


def test_table_shape() -> None:
    r = judge(get_mutant("logs-token"), _cert({"C2C-SEC-04": "fail"}))
    t = table([r], full=True, seconds=1.0)
    row = t["mutants"]["logs-token"]
    assert row["item"] == "C2C-SEC-04" and row["flagged_own_item"] and row["collateral"] == []
    assert row["verdicts"]["C2C-SEC-04"] == "fail"


def test_matrix_html_marks_expected_and_unexpected_cells(tmp_path: Path) -> None:
    """mutants.html beside mutants.json: own item caught is green, a collateral failure red."""
    caught = judge(get_mutant("logs-token"), _cert({"C2C-SEC-04": "fail"}))
    collateral = judge(get_mutant("no-version-header"), _cert({"C2C-HDR-01": "fail", "C2C-UPL-01": "fail"}))
    out = tmp_path / "mutants.json"
    write_table(out, table([caught, collateral], full=True, seconds=2.0))
    page = out.with_suffix(".html").read_text()
    assert json.loads(out.read_text())["mutants"]["logs-token"]["ok"]
    assert "<script" not in page and "<b>1/2</b>" in page
    assert "class='caught' title='C2C-SEC-04: fail'" in page
    assert "class='collateral' title='C2C-UPL-01: fail'" in page


def _selected() -> list[Mutant]:
    wanted = os.environ.get("C2C_MUTANTS", "all")
    if wanted == "all":
        return list(MUTANTS)
    return [get_mutant(n) for n in wanted.split(",") if n]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The quick matrix, run once for the module: six busy certifications at a time (a quick
    certification mostly waits on its device: 3.8 s of CPU in 15 s), plus one slot for each
    silent-heartbeat mutant, which only waits (300 s of watching a quiet device)."""
    work = tmp_path_factory.mktemp("mutants")
    selected = _selected()
    idle = sum(1 for m in selected if m.name in IDLE_MUTANTS)
    results = run_matrix(only=[m.name for m in selected], work=work, out=work / "mutants.json", workers=6 + idle)
    return {r["mutant"]: r for r in results}


@pytest.mark.slow
@pytest.mark.timeout(1500)
@pytest.mark.parametrize("mutant", _selected(), ids=lambda m: m.name)
def test_mutant_is_flagged_on_its_item_only(mutant: Mutant, matrix: dict[str, dict[str, Any]]) -> None:
    result = matrix[mutant.name]
    assert result["ok"], result["note"] or result


def test_prune_bulk_keeps_the_records_and_drops_the_bulk(tmp_path: Path) -> None:
    from tests.mutants.matrix import prune_bulk

    run = tmp_path / "work" / "run-1"
    (run / "cloud").mkdir(parents=True)
    (run / "cloud" / "part-1").write_bytes(b"\0" * (2 << 20))
    (run / "device.log").write_text("kept")
    (run / "link").symlink_to(run / "cloud" / "part-1")
    assert prune_bulk(tmp_path / "work") == 2 << 20
    assert not (run / "cloud" / "part-1").exists() and (run / "device.log").read_text() == "kept"
    assert prune_bulk(tmp_path / "absent") == 0


def test_only_a_bench_error_earns_a_second_certification() -> None:
    """A run spoiled by the bench is certified again; a miss or a collateral failure never is
    (re-running those until they come out right would be the loophole)."""
    from tests.mutants.matrix import bench_error_only

    m = get_mutant("logs-token")
    ran = {"C2C-SEC-04", *SMOKE_ITEMS}
    assert not bench_error_only(judge(m, _cert({"C2C-SEC-04": "fail"}, ran)))
    assert bench_error_only(judge(m, _cert({"C2C-SEC-04": "fail", "C2C-UPL-01": "error"}, ran)))
    assert bench_error_only(judge(m, _cert({"C2C-SEC-04": "error"}, ran)))
    assert not bench_error_only(judge(m, _cert({"C2C-SEC-04": "pass", "C2C-UPL-01": "error"}, ran)))
    assert not bench_error_only(judge(m, _cert({"C2C-SEC-04": "fail", "C2C-UPL-01": "error", "C2C-QA-02": "fail"})))
    timed_out = {"mutant": m.name, "item": m.item, "ok": False, "caught": False, "failed": [], "errors": [],
                 "collateral": [], "verdicts": {}, "note": "bench error: did not finish"}
    assert bench_error_only(timed_out)


def test_a_table_resumes_only_from_the_same_clean_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.mutants import matrix as mx

    ok = judge(get_mutant("logs-token"), _cert({"C2C-SEC-04": "fail"}))
    missed = judge(get_mutant("no-version-header"), _cert({}))
    out = tmp_path / "mutants.json"
    monkeypatch.setattr(mx, "source_commit", lambda: "abc")
    write_table(out, table([ok, missed], full=True, seconds=1.0))
    assert json.loads(out.read_text())["score"] == "1/2"
    assert set(mx.resumable(out, True)) == {"logs-token"}  # the miss runs again
    assert mx.resumable(out, False) == {}  # a quick table never stands for a full one
    monkeypatch.setattr(mx, "source_commit", lambda: "def")
    assert mx.resumable(out, True) == {}
    monkeypatch.setattr(mx, "source_commit", lambda: "abc+dirty")
    assert mx.resumable(out, True) == {}
    kept = mx.resumable(tmp_path / "absent.json", True)
    assert kept == {}


def test_a_spoiled_run_is_certified_again_alone_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.mutants import matrix as mx

    runs: list[str] = []
    m = get_mutant("logs-token")
    ran = {"C2C-SEC-04", *SMOKE_ITEMS}

    def fake_run(mutant: Mutant, reports: Path, **_: Any) -> dict[str, Any]:
        runs.append(reports.name)
        spoiled = {"C2C-UPL-01": "error"} if len(runs) == 1 else {}
        return {**judge(mutant, _cert({"C2C-SEC-04": "fail", **spoiled}, ran)), "note": "starved"}

    monkeypatch.setattr(mx, "run_mutant", fake_run)
    [result] = mx.run_matrix(only=[m.name], work=tmp_path, out=tmp_path / "mutants.json", full=True)
    assert runs == ["logs-token", "logs-token.again"]
    assert result["ok"] and result["first_run"].startswith("bench error, certified again alone: starved")
    assert json.loads((tmp_path / "mutants.json").read_text())["mutants"]["logs-token"]["first_run"]
