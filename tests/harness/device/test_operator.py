"""The person on the bench: who answered, what, when; a silent person is a bench error, not a pass."""

from __future__ import annotations

import io
import os

import pytest

from harness.certify.verdicts import ERROR, error_cause, verdict_for_exception
from harness.device.operator import OperatorPrompt
from harness.errors import OperatorTimeout, OperatorUnavailable


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
    assert prompt.answers == []


def test_a_run_without_a_person_is_operator_not_pass() -> None:
    with pytest.raises(OperatorUnavailable):
        OperatorPrompt(interactive=False).attest("anything")
