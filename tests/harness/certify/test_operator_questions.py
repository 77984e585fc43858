"""Operator answers other than yes/no, through the plugin: a choice the checklist asks (C2C-WF-01)
and a value a step asks, judged by the bench; the attached file lands in the reports folder,
in the record with its SHA-256, in the certificate, and in the signed MANIFEST."""

from __future__ import annotations

import hashlib
import json
import sys
import textwrap
from pathlib import Path

import pytest

from harness.certify.certificate import render_html
from harness.certify.cli import plugin_args
from harness.certify.manifest import verify_folder, write_manifest
from harness.certify.seal import SealBroken
from harness.device.profile import PROFILE_DIR

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[3]

FEATURE = textwrap.dedent('''
    Feature: Operator questions
      @C2C-WF-01 @operator
      Scenario: Recording is triggered automatically by the camera and manually
        Given the device profile
        Then the operator confirms "Recording starts automatically on the camera's SDI/HDMI trigger and manually from the device"

      @C2C-QA-05 @operator
      Scenario: The operator reads how long the device takes to be ready
        Given the device profile
        Then the operator reads the time to ready
''')

MODULE = textwrap.dedent('''
    from pytest_bdd import scenarios, then
    from harness.bdd.steps import step_fixtures
    from harness.errors import DeviceFailure
    from harness.items.manual import Question

    globals().update(step_fixtures())

    READY = Question("How many seconds after power-on does the device show it is ready?", kind="value", unit="s", high=30)

    @then("the operator reads the time to ready")
    def _ready(bench):
        judged = bench.prompt.answer(READY)
        if judged.verdict != "pass":
            raise DeviceFailure(f"operator read {judged.value:g} s: {READY.text}")

    scenarios("features")
''')


def encoder_profile(path: Path) -> Path:
    """The reference profile as an encoder (C2C-WF-01 applies to encoders) without its WF-01 declaration."""
    text = (PROFILE_DIR / "reference.toml").read_text(encoding="utf-8")
    assert 'kind = "camera"\n' in text and '"C2C-WF-01" = ' in text
    text = text.replace('kind = "camera"\n', 'kind = "encoder"\n', 1)
    text = "\n".join(line for line in text.splitlines() if not line.startswith('"C2C-WF-01" = ')) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_choice_and_a_value_are_judged_by_the_bench_with_the_evidence_sealed(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("C2C_SEAL_KEY_FILE", str(pytester.path / "lab.key"))
    monkeypatch.setenv("C2C_OPERATOR", "Ana Diaz")
    profile = encoder_profile(pytester.path / "encoder.toml")
    pytester.mkdir("features")
    (pytester.path / "features" / "operator.feature").write_text(FEATURE, encoding="utf-8")
    pytester.makepyfile(test_operator=MODULE)
    reports = pytester.path / "reports"
    clip = pytester.path / "trigger-take.txt"
    clip.write_text("take 1: SDI flag -> REC; take 2: REC button -> REC\n", encoding="utf-8")
    # WF-01: "3" picks "both" (accepted), then the file; QA-05: a wrong unit is asked again, 45 s is over 30 s
    stdin = f"3\n{clip}\n12 min\n45\n\n".encode()
    result = pytester.run(sys.executable, "-m", "pytest", *plugin_args(), "--strict-markers", f"--c2c-device={profile}",
                          f"--c2c-reports={reports}", "-p", "no:allure_pytest_bdd", "--c2c-interactive", "-s",
                          stdin=stdin)
    out = result.stdout.str()
    assert "[1) the camera's trigger | 2) the device's own record control | 3) both | 4) neither | n/a]" in out
    by_name = {r["scenario"]: r for r in json.loads((reports / "results.json").read_text())["results"]}
    trigger = by_name["Recording is triggered automatically by the camera and manually"]
    assert trigger["verdict"] == "operator-confirmed", out[-3000:]
    [choice] = trigger["operator_answers"]
    assert (choice["kind"], choice["choice"], choice["verdict"], choice["expected"]) == ("choice", "both", "pass",
                                                                                           "one of: both")
    assert choice["operator"] == "Ana Diaz" and choice["at"] > 0 and choice["question"].startswith("Start a recording")
    assert (reports / choice["evidence"]).read_bytes() == clip.read_bytes()
    assert choice["evidence_sha256"] == hashlib.sha256(clip.read_bytes()).hexdigest()
    ready = by_name["The operator reads how long the device takes to be ready"]
    assert ready["verdict"] == "fail" and "operator read 45 s" in ready["reason"]
    unclear, value = ready["operator_answers"]
    assert unclear["answer"] == "12 min" and unclear["verdict"] is None
    assert (value["kind"], value["value"], value["unit"], value["expected"]) == ("value", 45.0, "s", "<= 30 s")
    cert = json.loads((reports / "certificate.json").read_text())
    assert cert["items"]["C2C-WF-01"]["verdict"] == "operator-confirmed"
    assert cert["items"]["C2C-QA-05"]["verdict"] == "fail"
    page = render_html(cert)
    assert "both &rarr; pass (accepts one of: both)" in page and "45 s &rarr; fail (accepts &lt;= 30 s)" in page
    # the attached file is listed in the signed manifest with the digest the record gives; one byte changed breaks it
    manifest = write_manifest(reports, version={"commit": "test", "dirty": False})
    assert manifest["files"][choice["evidence"]] == choice["evidence_sha256"]
    verify_folder(reports)
    copied = reports / choice["evidence"]
    copied.write_bytes(copied.read_bytes().replace(b"take 1", b"take 7"))
    with pytest.raises(SealBroken, match="changed: operator-evidence/"):
        verify_folder(reports)


def test_allure_shows_a_choice_by_its_words_and_the_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    """The person typed "3"; the report names the option and what the bench judged."""
    import allure

    from harness.bdd.scenario_report import label_verdict

    shown: dict[str, str] = {}
    monkeypatch.setattr(allure.dynamic, "parameter", lambda name, value, **_: shown.__setitem__(name, value))
    monkeypatch.setattr(allure.dynamic, "label", lambda *a, **k: None)
    monkeypatch.setattr(allure.dynamic, "tag", lambda *a, **k: None)
    label_verdict("operator-confirmed", {}, [{"attests": True, "operator": "Ana", "question": "Which? [1) a | 2) both]",
                                              "answer": "2", "choice": "both", "verdict": "pass"}])
    assert shown == {"operator Ana": "Which? [1) a | 2) both] -> both (pass)"}
