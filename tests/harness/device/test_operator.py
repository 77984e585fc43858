"""The person on the bench: who answered, what, when; a silent person is a bench error, not a pass."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from harness.device.operator import ANSWERS_ENV, OperatorPrompt
from harness.errors import ConfigError, OperatorTimeout, OperatorUnavailable
from harness.items.verdicts import ERROR, NotApplicable, error_cause, verdict_for_exception


def test_an_attested_answer_records_who_when_and_the_question(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("C2C_OPERATOR", "ana")
    prompt = OperatorPrompt(interactive=True, stdin=io.StringIO("y\n"), stdout=io.StringIO())
    assert prompt.attest("Is the QR code on the screen?")
    [answer] = prompt.answers
    assert answer.operator == "ana" and answer.attests and answer.answer == "y"
    assert answer.question.startswith("Is the QR code on the screen?") and answer.at > 0


def test_a_person_who_does_not_answer_is_a_bench_error_with_its_cause() -> None:
    read, write = os.pipe()  # a terminal nobody types into
    try:
        with os.fdopen(read, "r") as stdin:
            prompt = OperatorPrompt(interactive=True, stdin=stdin, stdout=io.StringIO(), timeout=0.2)
            with pytest.raises(OperatorTimeout, match=r"within 0\.2 s") as info:
                prompt.attest("Does recording start on the SDI trigger?")
    finally:
        os.close(write)
    assert verdict_for_exception(info.value) == ERROR and error_cause(info.value) == "operator-timeout"
    [unanswered] = prompt.answers  # the question stays in the record, marked as not answered
    assert unanswered.timed_out and unanswered.answer == ""


def test_a_run_without_a_person_is_operator_not_pass() -> None:
    with pytest.raises(OperatorUnavailable):
        OperatorPrompt(interactive=False).attest("anything")


def test_an_attested_item_is_pass_fail_or_not_applicable_with_the_evidence_copied_and_hashed(tmp_path: Path) -> None:
    log = tmp_path / "sdi-trigger.log"
    log.write_text("REC started on SDI flag at 10:00:01:00\n", encoding="utf-8")
    reports = tmp_path / "reports"
    prompt = OperatorPrompt(interactive=True, stdin=io.StringIO(f"pass\n{log}\nfail\n\nn/a\n\n"), stdout=io.StringIO(),
                            operator="Ana Diaz", evidence_dir=reports / "operator-evidence", answer_file=None)
    assert prompt.attest("Does recording start on the SDI trigger?") is True
    assert prompt.attest("Does the device show the project?") is False
    with pytest.raises(NotApplicable):
        prompt.attest("Does the HDMI input trigger recording?")
    first, second, third = prompt.answers
    assert (first.verdict, second.verdict, third.verdict) == ("pass", "fail", "not-applicable")
    assert first.operator == "Ana Diaz" and first.at > 0 and first.question.endswith("[pass/fail/n/a]")
    digest = hashlib.sha256(log.read_bytes()).hexdigest()
    assert first.evidence_sha256 == digest and first.evidence is not None
    copied = reports / first.evidence
    assert copied.read_bytes() == log.read_bytes() and copied.parent.name == "operator-evidence"
    assert second.evidence is None and verdict_for_exception(NotApplicable("x")) == "not-applicable"


def test_an_unclear_answer_is_asked_again_then_refused() -> None:
    prompt = OperatorPrompt(interactive=True, stdin=io.StringIO("maybe\nperhaps\n"), stdout=io.StringIO(), answer_file=None)
    with pytest.raises(OperatorUnavailable, match="not pass, fail or n/a"):
        prompt.attest("Is the QR code on the screen?")


def test_a_timeout_is_recorded_as_an_unanswered_question(tmp_path: Path) -> None:
    read, write = os.pipe()
    try:
        with os.fdopen(read, "r") as stdin:
            prompt = OperatorPrompt(interactive=True, stdin=stdin, stdout=io.StringIO(), timeout=0.1, operator="bo",
                                    answer_file=None)
            with pytest.raises(OperatorTimeout):
                prompt.attest("Does recording start on the SDI trigger?")
    finally:
        os.close(write)
    [answer] = prompt.answers
    assert answer.timed_out and answer.attests and answer.operator == "bo" and answer.verdict is None


def test_the_answer_file_answers_a_non_interactive_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CI: prepared answers (with who answered and the evidence) instead of a terminal."""
    evidence = tmp_path / "trigger.mp4"
    evidence.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    answers = tmp_path / "answers.toml"
    answers.write_text(f'operator = "lab-ci"\n[[answer]]\nquestion = "Does  recording start on the SDI trigger?"\n'
                       f'answer = "pass"\nevidence = "{evidence}"\n', encoding="utf-8")
    monkeypatch.delenv("C2C_OPERATOR", raising=False)
    monkeypatch.setenv(ANSWERS_ENV, str(answers))
    prompt = OperatorPrompt(interactive=False, evidence_dir=tmp_path / "reports" / "operator-evidence")
    assert prompt.attest("Does recording start on the SDI trigger?")
    [answer] = prompt.answers
    assert answer.source == "answer file" and answer.operator == "lab-ci" and answer.verdict == "pass"
    assert answer.evidence_sha256 == hashlib.sha256(evidence.read_bytes()).hexdigest()
    with pytest.raises(OperatorUnavailable):  # a question the file does not answer still needs a person
        prompt.attest("Is the QR code on the screen?")
    answers.write_text("[[answer]]\nquestion = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"answer\[0\]"):
        OperatorPrompt().attest("anything")
