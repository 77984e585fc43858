"""The rules that keep a certificate honest (issue: verdict loopholes, points 1–6).

Each test builds the records a run would write and checks the certificate cannot say more
than the bench saw: a declaration never hides a failure, a missing capability never becomes
"not applicable" on its own, a partial run never certifies, a person's yes is not a pass,
the exit status is the certificate's, and an edited results file is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.certify.certificate import build_certificate, write_certificate
from harness.certify.cli import main
from harness.certify.manifest import write_manifest
from harness.certify.seal import SealBroken, bench_key, seal, verify
from harness.errors import CloudError, ConfigError, FaultInjectionError, MediaError, RelayError
from harness.items.checklist import load_checklist
from harness.items.verdicts import combine, error_cause

CHECKLIST = load_checklist()
CAMERA = {"name": "dut", "id": "dut", "kind": "camera", "firmware": "2.0.0", "not_applicable": {}}


def record(item_ids: list[str], verdict: str, scenario: str | None = None, **extra: Any) -> dict[str, Any]:
    name = scenario or CHECKLIST[item_ids[0]].scenarios[0].name
    return {"nodeid": f"suite.py::{name}", "scenario": name, "outline": name.split(" [", 1)[0], "feature": "x.feature",
            "items": item_ids, "verdict": verdict, "reason": extra.pop("reason", ""), "measurements": [], **extra}


def whole_run(**overrides: str) -> list[dict[str, Any]]:
    """A record per listed scenario, all passing unless `overrides` names a scenario's verdict."""
    by_name: dict[str, list[str]] = {}
    for item in CHECKLIST:
        for ref in item.scenarios:
            by_name.setdefault(ref.name, []).append(item.id)
    return [record(ids, overrides.get(name, "pass"), scenario=name) for name, ids in by_name.items()]


def test_a_declared_not_applicable_never_hides_a_scenario_that_ran_and_failed() -> None:
    """Point 1: the old certificate let [not_applicable] override any verdict."""
    device = {**CAMERA, "not_applicable": {"C2C-SEC-01": "we say so"}}
    results = whole_run(**{CHECKLIST["C2C-SEC-01"].scenarios[0].name: "fail"})
    cert = build_certificate(results, device, checklist=CHECKLIST)
    assert cert["items"]["C2C-SEC-01"]["verdict"] == "fail"
    assert "declares it not applicable" in cert["items"]["C2C-SEC-01"]["reason"]
    assert cert["summary"]["status"] == "NOT CERTIFIED" and cert["summary"]["exit_code"] == 1
    # and a passing scenario is a measurement: the declaration does not turn it into n/a either
    passed = build_certificate(whole_run(), device, checklist=CHECKLIST)
    assert passed["items"]["C2C-SEC-01"]["verdict"] == "pass"
    assert "C2C-SEC-01" not in passed["summary"]["declared_not_applicable"]


def test_a_missing_capability_on_a_required_item_needs_a_person_unless_declared() -> None:
    """Point 2: a skipped 'proxies' scenario used to make WF-04 silently not applicable."""
    name = CHECKLIST["C2C-WF-04"].scenarios[0].name
    results = whole_run(**{name: "not-applicable"})
    for r in results:
        if r["scenario"] == name:
            r["reason"] = "the profile declares no 'proxies' capability"
    cert = build_certificate(results, CAMERA, checklist=CHECKLIST)
    assert cert["items"]["C2C-WF-04"]["verdict"] == "operator"
    assert "a person verify" in cert["items"]["C2C-WF-04"]["reason"]
    assert cert["summary"]["status"] == "INCOMPLETE" and cert["summary"]["exit_code"] == 3
    declared = build_certificate(results, {**CAMERA, "not_applicable": {"C2C-WF-04": "makes no proxies"}},
                                 checklist=CHECKLIST)
    assert declared["items"]["C2C-WF-04"]["verdict"] == "not-applicable"
    assert declared["summary"]["declared_not_applicable"]["C2C-WF-04"] == "makes no proxies"


def test_a_partial_run_whose_only_scenario_did_not_apply_is_not_run_not_operator() -> None:
    """An --item run of UPL-01 on a device without 'tether' ran only the tethered scenario of
    QUE-03 (skipped: not applicable): QUE-03's own scenarios decide it, they were not run."""
    tethered = next(ref.name for ref in CHECKLIST["C2C-QUE-03"].scenarios if "Tethered" in ref.name)
    results = [record(["C2C-UPL-01", "C2C-QUE-03", "C2C-RES-01"], "not-applicable", scenario=tethered,
                      reason="not-applicable: the scenario applies when has(tether)")]
    cert = build_certificate(results, CAMERA, checklist=CHECKLIST, run={"selection": {"deselected": 50}})
    assert cert["items"]["C2C-QUE-03"]["verdict"] == "not-run"
    assert cert["items"]["C2C-RES-01"]["verdict"] == "not-run"
    assert "C2C-QUE-03" not in cert["summary"]["operator"]


def test_an_item_passes_only_when_every_listed_scenario_and_example_ran() -> None:
    """Point 3: one passing scenario of AUTH-03 used to pass the item; a -k run went unnoticed."""
    _first, second = (ref.name for ref in CHECKLIST["C2C-AUTH-03"].scenarios)
    results = [r for r in whole_run() if r["scenario"] != second]
    cert = build_certificate(results, CAMERA, checklist=CHECKLIST)
    assert cert["items"]["C2C-AUTH-03"]["verdict"] == "not-run"
    assert cert["items"]["C2C-AUTH-03"]["missing_scenarios"] == [second]
    assert cert["summary"]["partial"] and cert["summary"]["status"] == "INCOMPLETE"
    # outline examples: the suite's own list of what exists (collected before -m/-k) is checked too
    expected = {"C2C-TNET-01": ["Uploads complete [profile=hardline, kind=mov]", "Uploads complete [profile=hardline, kind=jpg]"]}
    tnet = build_certificate(whole_run(), CAMERA, checklist=CHECKLIST,
                             run={"expected": expected, "selection": {"deselected": 1}})
    assert tnet["items"]["C2C-TNET-01"]["verdict"] == "not-run"
    assert tnet["summary"]["partial"] and not tnet["summary"]["certified"]


def test_an_operators_yes_is_not_a_pass_and_counts_only_where_the_checklist_allows_a_person() -> None:
    """Point 4: an operator's "y" used to be a plain pass."""
    answer = {"question": "Is the code on screen?", "answer": "y", "operator": "ana", "at": 1.0, "attests": True}
    status_item = CHECKLIST["C2C-STAT-01"]  # status, operator
    oracle_item = CHECKLIST["C2C-CTL-01"]  # oracle only
    overrides = {status_item.scenarios[0].name: "operator-confirmed", oracle_item.scenarios[0].name: "operator-confirmed"}
    results = whole_run(**overrides)
    for r in results:
        if r["scenario"] in overrides:
            r["operator_answers"] = [answer]
    cert = build_certificate(results, CAMERA, checklist=CHECKLIST)
    assert cert["items"]["C2C-STAT-01"]["verdict"] == "operator-confirmed"
    assert cert["items"]["C2C-STAT-01"]["operator_answers"] == [answer]
    assert "C2C-CTL-01" in cert["summary"]["unverified"]  # a person cannot stand in for the oracle
    assert cert["summary"]["operator_confirmed"] >= 1 and not cert["summary"]["certified"]


def test_the_status_line_and_the_exit_status_never_disagree() -> None:
    """Point 5: every status has exactly one exit status, and `run` returns the certificate's."""
    cases = {
        "CERTIFIED": build_certificate(whole_run(), CAMERA, checklist=CHECKLIST),
        "NOT CERTIFIED": build_certificate(whole_run(**{CHECKLIST["C2C-HDR-01"].scenarios[0].name: "fail"}), CAMERA,
                                           checklist=CHECKLIST),
        "INCOMPLETE": build_certificate(whole_run(**{CHECKLIST["C2C-HDR-01"].scenarios[0].name: "error"}), CAMERA,
                                        checklist=CHECKLIST),
    }
    codes = {status: cert["summary"]["exit_code"] for status, cert in cases.items()}
    assert codes == {"CERTIFIED": 0, "NOT CERTIFIED": 1, "INCOMPLETE": 3}
    for status, cert in cases.items():
        assert cert["summary"]["status"] == status and cert["headline"].startswith(status)
        assert cert["summary"]["certified"] == (status == "CERTIFIED")


def test_declared_items_are_listed_as_declared_never_counted_as_passes() -> None:
    results = whole_run(**{CHECKLIST["C2C-SEC-05"].scenarios[0].name: "declared"})
    cert = build_certificate(results, CAMERA, checklist=CHECKLIST)
    assert cert["items"]["C2C-SEC-05"]["verdict"] == "declared"
    s = cert["summary"]
    assert s["declared"] == 1 and s["measured"] == s["counts"]["pass"] and s["certified"]
    assert "1 declared" in cert["headline"]


@pytest.fixture
def sealed_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("C2C_SEAL_KEY_FILE", str(tmp_path / "bench.key"))
    reports = tmp_path / "reports"
    reports.mkdir()
    results = whole_run(**{CHECKLIST["C2C-HDR-01"].scenarios[0].name: "fail"})
    run = {"seed": 1, "selection": {"argv": ["suite.py"], "deselected": 0}}
    bound = {"profile_sha256": "ab" * 32, "journal_sha256": "cd" * 32, "journal_rows": 12}
    doc = {"device": CAMERA, "run": run, "results": results, "seal": seal(CAMERA, run, results, bound)}
    (reports / "results.json").write_text(json.dumps(doc), encoding="utf-8")
    return reports


def test_report_refuses_results_edited_after_the_run(sealed_reports: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Point 6: `c2c-certify report` used to rebuild a certificate from any edited results.json."""
    assert write_certificate(sealed_reports)["summary"]["status"] == "NOT CERTIFIED"
    write_manifest(sealed_reports, version={"commit": "0" * 40, "dirty": False})
    doc = json.loads((sealed_reports / "results.json").read_text())
    for r in doc["results"]:
        r["verdict"] = "pass"  # the edit a vendor would like to make
    (sealed_reports / "results.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(SealBroken, match="results_sha256"):
        write_certificate(sealed_reports)
    assert main(["report", "--reports", str(sealed_reports), "--allure", str(sealed_reports / "none")]) == 2
    assert "changed: results.json" in capsys.readouterr().err


@pytest.mark.parametrize("edit", ["firmware", "journal", "signature", "unsealed"])
def test_the_seal_binds_firmware_journal_and_key(sealed_reports: Path, edit: str) -> None:
    doc = json.loads((sealed_reports / "results.json").read_text())
    if edit == "firmware":
        doc["device"]["firmware"] = "2.0.1"
    elif edit == "journal":
        doc["seal"]["journal_sha256"] = "00" * 32
    elif edit == "signature":
        doc["seal"]["signature"] = doc["seal"]["signature"][::-1]
    else:
        del doc["seal"]
    with pytest.raises(SealBroken):
        verify(doc)


def test_another_bench_key_is_named(sealed_reports: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = json.loads((sealed_reports / "results.json").read_text())
    monkeypatch.setenv("C2C_SEAL_KEY_FILE", str(tmp_path / "other.key"))
    bench_key()  # another lab's key, made on first use, readable by its owner only
    assert (tmp_path / "other.key").stat().st_mode & 0o777 == 0o600
    with pytest.raises(SealBroken, match="another bench"):
        verify(doc)


@pytest.mark.parametrize(("exc", "cause"), [
    (CloudError("down"), "emulator"), (RelayError("no answer"), "relay"), (MediaError("ffmpeg"), "media"),
    (FaultInjectionError("proxy port"), "fault-injector"), (ConfigError("bad field"), "config"),
    (KeyError("harness bug"), "harness-bug"), (None, "no-verdict"),
])
def test_a_bench_error_carries_its_cause(exc: BaseException | None, cause: str) -> None:
    assert error_cause(exc) == cause


def test_a_later_pass_never_overwrites_a_fail() -> None:
    name = CHECKLIST["C2C-HDR-01"].scenarios[0].name
    results = [*whole_run(**{name: "fail"}), record(["C2C-HDR-01"], "pass", scenario=name)]
    assert build_certificate(results, CAMERA, checklist=CHECKLIST)["items"]["C2C-HDR-01"]["verdict"] == "fail"
    assert combine(["pass", "declared", "operator-confirmed"]) == "operator-confirmed"
    assert combine(["not-applicable", "pass"]) == "pass"


def test_runs_that_start_together_share_one_new_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two certifications on a fresh bench (the mutant matrix runs two at once) must not race."""
    from concurrent.futures import ThreadPoolExecutor

    from harness.certify.seal import key_id

    monkeypatch.setenv("C2C_SEAL_KEY_FILE", str(tmp_path / "fresh" / "seal.key"))
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: key_id(bench_key().public_key()), range(16)))
    assert len(set(keys)) == 1
    assert sorted(p.name for p in (tmp_path / "fresh").iterdir()) == ["seal.key"]


def test_a_rule_for_every_request_fails_on_a_violation_outside_its_own_scenario() -> None:
    """A device that sends one plain-HTTP request in another scenario than SEC-01's (a one-off
    connectivity check at its first upload) passed SEC-01's own window; the whole run catches it."""
    from harness.bdd.run_witness import run_findings

    journal = [{"method": "POST", "path": "/v2/devices/assets", "scheme": "https", "client_version": "1.0.0"},
               {"method": "GET", "path": "/v2/devices/me", "scheme": "https", "client_version": "1.00"}]
    findings = run_findings(journal, [{"method": "GET", "path": "/v2/devices/me?x=1"}])
    assert set(findings) == {"C2C-HDR-01", "C2C-SEC-01"} and "GET /v2/devices/me" in findings["C2C-SEC-01"]
    cert = build_certificate(whole_run(), CAMERA, checklist=CHECKLIST, run={"run_findings": findings})
    for item in ("C2C-HDR-01", "C2C-SEC-01"):
        assert cert["items"][item]["verdict"] == "fail" and cert["items"][item]["reason"].startswith("whole run:")
    assert cert["summary"]["status"] == "NOT CERTIFIED"
    assert run_findings(journal[:1], []) == {}
    assert run_findings([{"method": "GET", "path": "/health", "scheme": "https"}], []) == {}  # the bench's probe
