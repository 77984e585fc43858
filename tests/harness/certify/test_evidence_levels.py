"""How firm each expectation is (issue #16 point 3): evidence tags, "fail (inferred)", --strict.

The rule: a scenario carries the c2c-api.md evidence level of the contract point it enforces
as a Gherkin tag (@evidence-doc, -spec, -sdk, -obs, -inferred). A failure of a scenario whose
expectations are all inferred is "fail (inferred)": ranked below fail, never a pass, listed
apart, and blocking CERTIFIED only in a strict run.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from harness.bdd.markers import BUILTIN_TAGS
from harness.certify.certificate import build_certificate, render_html, write_certificate
from harness.certify.cli import pytest_command, summary_text
from harness.certify.seal import seal
from harness.errors import ConfigError
from harness.items.checklist import DEFAULT_CHECKLIST, load_checklist, parse_checklist
from harness.items.verdicts import (
    DECLARED,
    ERROR,
    EVIDENCE_LEVELS,
    FAIL,
    FAIL_INFERRED,
    NOT_APPLICABLE,
    NOT_RUN,
    OPERATOR,
    OPERATOR_CONFIRMED,
    PASS,
    PRECEDENCE,
    by_evidence,
    combine,
    evidence_levels,
)
from tests.harness.certify.test_certificate import DEVICE, every_scenario
from tests.test_features import SCENARIOS

CHECKLIST = load_checklist()
SLOW_DOWN = "Asset creation answered 409 slow_down is retried after backing off"
INVALID_CLIENT = "Asset creation answered 409 invalid_client refreshes the token and replays"
FIRM_DEVICE = {**DEVICE, "not_applicable": {}}


# --- the verdict rule ----------------------------------------------------------------------------
@pytest.mark.parametrize(("verdict", "evidence", "expected"), [
    (FAIL, ["inferred"], FAIL_INFERRED),
    (FAIL, ["doc"], FAIL),
    (FAIL, ["doc", "inferred"], FAIL),  # any firm expectation keeps a failure firm
    (FAIL, [], FAIL),  # an untagged scenario is firm
    (PASS, ["inferred"], PASS),
    (ERROR, ["inferred"], ERROR),  # the bench broke: says nothing about the device
    (OPERATOR, ["inferred"], OPERATOR),
])
def test_only_a_failure_resting_on_inference_alone_is_softened(verdict: str, evidence: list[str],
                                                                 expected: str) -> None:
    assert by_evidence(verdict, evidence) == expected


def test_evidence_levels_come_from_evidence_tags_only() -> None:
    tags = ["C2C-RTY-03", "evidence-inferred", "smoke", "evidence-doc", "evidence-bogus"]
    assert evidence_levels(tags) == ["doc", "inferred"]


def test_fail_inferred_ranks_below_fail_and_above_every_accepting_verdict() -> None:
    rank = PRECEDENCE.index
    assert rank(FAIL) < rank(ERROR) < rank(OPERATOR) < rank(NOT_RUN) < rank(FAIL_INFERRED)
    for accepting in (OPERATOR_CONFIRMED, DECLARED, PASS, NOT_APPLICABLE):
        assert rank(FAIL_INFERRED) < rank(accepting)
    assert combine([PASS, FAIL_INFERRED]) == FAIL_INFERRED
    assert combine([FAIL_INFERRED, FAIL]) == FAIL
    assert combine([FAIL_INFERRED, ERROR]) == ERROR


def test_checklist_precedence_orders_the_new_verdict() -> None:
    assert CHECKLIST.precedence == PRECEDENCE
    data = tomllib.loads(DEFAULT_CHECKLIST.read_text(encoding="utf-8"))
    data["verdict_rules"]["precedence"] = [v for v in PRECEDENCE if v != FAIL_INFERRED]
    with pytest.raises(ConfigError, match="precedence"):
        parse_checklist(data)


# --- the tags in features/ ---------------------------------------------------------------------
def test_every_scenario_carries_exactly_one_evidence_tag() -> None:
    for feature, name, tags, _ in SCENARIOS:
        levels = evidence_levels(tags)
        assert len(levels) == 1, f"{feature}: {name!r} has evidence tags {levels or 'none'}"


def test_the_409_asset_create_scenarios_are_inferred() -> None:
    """c2c-api.md §3.8: 409 slow_down / invalid_client are [SPEC] messages with [INF] semantics."""
    levels = {name: evidence_levels(tags) for _, name, tags, _ in SCENARIOS}
    assert levels[SLOW_DOWN] == ["inferred"] and levels[INVALID_CLIENT] == ["inferred"]


def test_evidence_tags_are_known_markers() -> None:
    for level in EVIDENCE_LEVELS:
        assert f"evidence-{level}" in BUILTIN_TAGS


# --- the certificate -------------------------------------------------------------------------------
def results_with_inferred_failure() -> list[dict]:
    """Every checklist scenario passes but the 409 slow_down one, which fails on inference alone."""
    results = every_scenario()
    for r in results:
        r["evidence"] = ["doc"]
        if r["scenario"] == SLOW_DOWN:
            r.update(verdict=FAIL_INFERRED, item_verdicts={i: FAIL_INFERRED for i in r["items"]},
                     evidence=["inferred"], reason="AssertionError: backed off 0.0 s")
        elif r["scenario"] == INVALID_CLIENT:
            r["evidence"] = ["inferred"]
    return results


def test_an_inferred_failure_is_listed_apart_and_does_not_block() -> None:
    cert = build_certificate(results_with_inferred_failure(), FIRM_DEVICE, checklist=CHECKLIST)
    entry, summary = cert["items"]["C2C-RTY-03"], cert["summary"]
    assert entry["verdict"] == FAIL_INFERRED and "backed off" in entry["reason"]
    assert entry["evidence"] == ["doc", "inferred"]
    shown = {s["name"]: s for s in entry["scenarios"]}
    assert shown[SLOW_DOWN]["evidence"] == ["inferred"] and shown[INVALID_CLIENT]["evidence"] == ["inferred"]
    assert summary["inferred_failing"] == ["C2C-RTY-03"] and summary["failing"] == []
    assert summary["certified"] and summary["exit_code"] == 0
    assert summary["counts"][FAIL_INFERRED] == 1
    assert summary["measured"] == summary["counts"][PASS]  # never counted as a pass
    assert "1 failed only inferred expectations (not blocking" in cert["headline"]
    page = render_html(cert)
    assert "Failed only inferred expectations" in page and "fail (inferred)" in page
    assert "FAIL (inferred only; not blocking): C2C-RTY-03" in summary_text(cert, Path("reports"))


def test_strict_makes_an_inferred_failure_block() -> None:
    cert = build_certificate(results_with_inferred_failure(), FIRM_DEVICE, checklist=CHECKLIST,
                             run={"strict": True})
    summary = cert["summary"]
    assert summary["strict"] and summary["failing"] == ["C2C-RTY-03"]
    assert summary["status"] == "NOT CERTIFIED" and summary["exit_code"] == 1
    assert "(strict: blocking)" in cert["headline"]


def test_a_firm_failure_beside_an_inferred_one_is_a_fail() -> None:
    results = results_with_inferred_failure()
    for r in results:
        if r["scenario"] == INVALID_CLIENT:
            r.update(verdict=FAIL, evidence=["doc"], reason="AssertionError: re-paired")
    cert = build_certificate(results, FIRM_DEVICE, checklist=CHECKLIST)
    assert cert["items"]["C2C-RTY-03"]["verdict"] == FAIL
    assert cert["summary"]["status"] == "NOT CERTIFIED"


def test_an_inferred_failure_with_an_unrun_scenario_stays_not_run() -> None:
    results = [r for r in results_with_inferred_failure() if r["scenario"] != INVALID_CLIENT]
    cert = build_certificate(results, FIRM_DEVICE, checklist=CHECKLIST)
    assert cert["items"]["C2C-RTY-03"]["verdict"] == NOT_RUN
    assert not cert["summary"]["certified"]


def test_written_certificate_reads_strict_from_the_run(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("C2C_SEAL_KEY_FILE", str(tmp_path / "seal.key"))
    results, run = results_with_inferred_failure(), {"seed": 1, "strict": True}
    (tmp_path / "results.json").write_text(json.dumps(
        {"device": FIRM_DEVICE, "run": run, "results": results, "seal": seal(FIRM_DEVICE, run, results, {})}))
    cert = write_certificate(tmp_path, CHECKLIST)
    assert cert["summary"]["status"] == "NOT CERTIFIED"


def test_run_strict_reaches_the_plugin(tmp_path: Path) -> None:
    assert "--c2c-strict" in pytest_command("reference", reports=tmp_path, strict=True)
    assert "--c2c-strict" not in pytest_command("reference", reports=tmp_path)
