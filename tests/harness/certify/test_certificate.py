"""Verdict mapping and the certificate built from per-scenario results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.certify.certificate import build_certificate, render_html, write_certificate
from harness.certify.seal import seal
from harness.errors import (
    BenchFailure,
    CloudError,
    DeliveryFailure,
    DeviceFailure,
    DeviceTimeout,
    OperatorUnavailable,
    RelayInUse,
)
from harness.items.checklist import load_checklist
from harness.items.verdicts import (
    NotApplicable,
    combine,
    scenario_verdict,
    verdict_for_exception,
    verdict_for_skip,
)

CHECKLIST = load_checklist()
DEVICE = {"name": "dut", "id": "dut", "kind": "camera", "firmware": "1.2.3",
          "not_applicable": {"C2C-WF-04": "makes no proxies"}}


@pytest.mark.parametrize(("exc", "verdict"), [
    (None, "pass"),
    (AssertionError("x"), "fail"),
    (DeviceFailure("x"), "fail"),
    (DeliveryFailure("x"), "fail"),
    (DeviceTimeout("x"), "fail"),
    (BenchFailure("x"), "error"),
    (CloudError("emulator down"), "error"),
    (RelayInUse("busy"), "error"),
    (KeyError("harness bug"), "error"),
    (OperatorUnavailable("x"), "operator"),
    (NotApplicable("x"), "not-applicable"),
])
def test_exception_to_verdict(exc: BaseException | None, verdict: str) -> None:
    assert verdict_for_exception(exc) == verdict


def test_measurement_out_of_limits_fails_a_passing_scenario() -> None:
    assert scenario_verdict(None, [{"passed": True}]) == "pass"
    assert scenario_verdict(None, [{"passed": True}, {"passed": False}]) == "fail"
    assert scenario_verdict(CloudError("x"), [{"passed": False}]) == "error"


def test_skips_are_operator_na_or_error() -> None:
    assert verdict_for_skip("operator: needs a person") == "operator"
    assert verdict_for_skip("not-applicable: no tether") == "not-applicable"
    assert verdict_for_skip("Skipped: not-applicable: no tether") == "not-applicable"
    assert verdict_for_skip("some other reason") == "error"


def test_worst_verdict_wins() -> None:
    assert combine(["pass", "operator", "fail", "error"]) == "fail"
    assert combine(["pass", "error"]) == "error"
    assert combine(["pass", "not-applicable"]) == "pass"
    assert combine([]) is None


def rec(items: list[str], verdict: str, reason: str = "", measurements: list[dict] | None = None,
        scenario: str | None = None) -> dict:
    name = scenario or CHECKLIST[items[0]].scenarios[0].name
    return {"nodeid": f"suite.py::{name}", "scenario": name, "feature": "f.feature",
            "items": items, "verdict": verdict, "reason": reason, "measurements": measurements or []}


def every_scenario(verdict: str = "pass") -> list[dict]:
    """One record per scenario the checklist lists, each tagged with every item that lists it."""
    by_name: dict[str, list[str]] = {}
    for item in CHECKLIST:
        for ref in item.scenarios:
            by_name.setdefault(ref.name, []).append(item.id)
    return [rec(ids, verdict, scenario=name) for name, ids in by_name.items()]


def test_certificate_has_every_item_and_maps_verdicts() -> None:
    results = [
        rec(["C2C-UPL-01"], "pass"),
        rec(["C2C-UPL-01", "C2C-QA-01"], "fail", "DeliveryFailure: A.jpg lost"),
        rec(["C2C-SEC-02"], "error", "CloudError: emulator down"),
        rec(["C2C-NETW-02"], "operator", "OperatorUnavailable: needs an operator"),
        rec(["C2C-CTL-01"], "pass", measurements=[{"item": "C2C-CTL-01", "name": "resent_bytes_per_cut", "value": 10}]),
    ]
    cert = build_certificate(results, DEVICE, checklist=CHECKLIST, run={"seed": 3})
    items = cert["items"]
    assert set(items) == set(CHECKLIST.ids)
    assert items["C2C-UPL-01"]["verdict"] == "fail" and "A.jpg lost" in items["C2C-UPL-01"]["reason"]
    assert items["C2C-QA-01"]["verdict"] == "fail"
    assert items["C2C-SEC-02"]["verdict"] == "error" and "emulator down" in items["C2C-SEC-02"]["reason"]
    assert items["C2C-NETW-02"]["verdict"] == "operator"
    assert items["C2C-WF-04"]["verdict"] == "not-applicable" and "proxies" in items["C2C-WF-04"]["reason"]
    assert items["C2C-WF-01"]["verdict"] == "not-applicable" and "encoder" in items["C2C-WF-01"]["reason"]
    assert items["C2C-CTL-01"]["measurements"][0]["value"] == 10
    # kind: UPL-03 applies to camera/encoder/audio; an app is not-applicable
    app = build_certificate([], {**DEVICE, "kind": "app", "not_applicable": {}}, checklist=CHECKLIST)
    assert app["items"]["C2C-UPL-03"]["verdict"] == "not-applicable"
    assert items["C2C-HDR-01"]["verdict"] == "error" and "no scenario ran" in items["C2C-HDR-01"]["reason"]
    s = cert["summary"]
    assert "C2C-UPL-01" in s["failing"] and "C2C-SEC-02" in s["errors"] and not s["certified"]
    assert json.loads(json.dumps(cert)) == cert


def test_smoke_marks_unrun_items_not_run() -> None:
    cert = build_certificate([rec(["C2C-UPL-01"], "pass")], DEVICE, checklist=CHECKLIST, run={"smoke": True})
    assert cert["items"]["C2C-HDR-01"]["verdict"] == "not-run"
    assert cert["summary"]["automatable_ok"] and not cert["summary"]["certified"]


def test_all_pass_is_certified() -> None:
    cert = build_certificate(every_scenario(), {**DEVICE, "not_applicable": {}}, checklist=CHECKLIST)
    counts = cert["summary"]["counts"]
    assert cert["summary"]["certified"] and counts["pass"] + counts.get("not-applicable", 0) == len(CHECKLIST)
    assert cert["summary"]["exit_code"] == 0 and cert["headline"].startswith("CERTIFIED")
    assert cert["items"]["C2C-WF-02"]["verdict"] == "not-applicable"  # encoder/audio only


def test_write_certificate_and_html(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("C2C_SEAL_KEY_FILE", str(tmp_path / "seal.key"))
    results = [rec(["C2C-UPL-01"], "fail", "<script>x</script>")]
    (tmp_path / "results.json").write_text(json.dumps(
        {"device": DEVICE, "run": {"seed": 1}, "results": results, "seal": seal(DEVICE, {"seed": 1}, results, {})}))
    cert = write_certificate(tmp_path, CHECKLIST)
    assert json.loads((tmp_path / "certificate.json").read_text())["items"]["C2C-UPL-01"]["verdict"] == "fail"
    page = (tmp_path / "certificate.html").read_text()
    assert "<script>x" not in page and "&lt;script&gt;" in page and "C2C-UPL-01" in page
    assert "NOT CERTIFIED" in render_html(cert)


def test_a_measurement_fails_only_its_own_item() -> None:
    from harness.items.verdicts import item_verdicts

    m = [{"item": "C2C-CTL-01", "name": "resent_bytes_per_cut", "passed": False}]
    assert item_verdicts(["C2C-QUE-03", "C2C-CTL-01"], None, m) == {"C2C-QUE-03": "pass", "C2C-CTL-01": "fail"}
    assert item_verdicts(["C2C-QUE-03", "C2C-CTL-01"], CloudError("x"), m) == {"C2C-QUE-03": "error", "C2C-CTL-01": "error"}
    r = {**rec(["C2C-QUE-03", "C2C-CTL-01"], "fail"), "item_verdicts": {"C2C-QUE-03": "pass", "C2C-CTL-01": "fail"},
         "measurements": [{**m[0], "value": 9e6, "limits": "<= 8388608 bytes"}]}
    cert = build_certificate([r], DEVICE, checklist=CHECKLIST)
    assert cert["items"]["C2C-QUE-03"]["scenarios"][0]["verdict"] == "pass"
    assert cert["items"]["C2C-QUE-03"]["verdict"] in ("pass", "not-run")  # not-run: its other scenarios
    assert cert["items"]["C2C-CTL-01"]["verdict"] == "fail"


def test_operator_answers_show_as_manual_steps_with_evidence_and_timeouts() -> None:
    from harness.certify.certificate import render_html

    answered = {"question": "Does recording start on the SDI trigger? [pass/fail/n/a]", "answer": "pass", "verdict": "pass",
                "operator": "Ana Diaz", "at": 1.0, "attests": True, "evidence": "operator-evidence/ab12-sdi.mp4",
                "evidence_sha256": "ab12" * 16, "source": "terminal", "timed_out": False}
    silent = {**answered, "answer": "", "verdict": None, "evidence": None, "evidence_sha256": None, "timed_out": True}
    cert = {"items": {"C2C-WF-01": {"title": "t", "verdict": "operator-confirmed", "reason": "",
                                    "operator_answers": [answered, silent]}}, "summary": {}, "device": {}}
    page = render_html(cert)
    assert "operator Ana Diaz at 1970-01-01 00:00:01 UTC:</i> Does recording start" in page
    assert "&rarr; pass; evidence <code>operator-evidence/ab12-sdi.mp4</code> sha256 <code>ab12ab12ab12ab12</code>" in page
    assert "no answer (timed out)" in page
