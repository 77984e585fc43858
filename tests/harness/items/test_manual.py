"""Operator questions as data: a verdict, a value or a choice, judged by the bench, with evidence."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest

from harness.device.operator import ANSWERS_ENV, OperatorPrompt
from harness.errors import ConfigError, OperatorUnavailable
from harness.items.checklist import load_checklist, parse_checklist
from harness.items.manual import Question, parse_question
from harness.items.verdicts import FAIL, NOT_APPLICABLE, PASS, NotApplicable

BOOT = Question("How many seconds after power-on does the device show it is ready?", kind="value", unit="s", high=30)
TRIGGER = Question("Which of them started a recording?", kind="choice",
                   choices=("the camera's trigger", "the device's own control", "both", "neither"), accept=("both",))


@pytest.mark.parametrize(("answer", "verdict", "value"), [
    ("12", PASS, 12.0), ("12 s", PASS, 12.0), ("30", PASS, 30.0), ("30.5", FAIL, 30.5), ("-1e1", PASS, -10.0),
    ("n/a", NOT_APPLICABLE, None), ("12 min", None, None), ("twelve", None, None), ("", None, None),
])
def test_a_value_is_judged_against_its_limits_and_unit(answer: str, verdict: str | None, value: float | None) -> None:
    judged = BOOT.judge(answer)
    assert (judged.verdict, judged.value) == (verdict, value)
    assert bool(judged.problem) == (verdict is None)


@pytest.mark.parametrize(("answer", "verdict", "choice"), [
    ("both", PASS, "both"), ("BOTH", PASS, "both"), ("3", PASS, "both"), ("neither", FAIL, "neither"),
    ("1", FAIL, "the camera's trigger"), ("5", None, None), ("yes", None, None), ("NA", NOT_APPLICABLE, None),
])
def test_a_choice_passes_only_on_an_accepted_option(answer: str, verdict: str | None, choice: str | None) -> None:
    judged = TRIGGER.judge(answer)
    assert (judged.verdict, judged.choice) == (verdict, choice)


def test_the_question_shows_the_form_of_the_answer_never_what_passes() -> None:
    assert BOOT.prompt().endswith("[a number in s, or n/a]") and "30" not in BOOT.prompt()
    assert "1) the camera's trigger | 2) the device's own control | 3) both | 4) neither | n/a" in TRIGGER.prompt()
    assert "accept" not in TRIGGER.prompt()
    assert (BOOT.expected(), TRIGGER.expected()) == ("<= 30 s", "one of: both")


@pytest.mark.parametrize(("raw", "message"), [
    ({"kind": "guess", "text": "Q?"}, "field 'kind' must be one of"),
    ({"kind": "value", "text": "Q?", "high": 3}, "needs field 'unit'"),
    ({"kind": "value", "text": "Q?", "unit": "s"}, "needs field 'low' or 'high'"),
    ({"kind": "value", "text": "Q?", "unit": "s", "low": 5, "high": 1}, "is above field 'high'"),
    ({"kind": "value", "text": "Q?", "unit": "s", "high": True}, "field 'high' must be a number"),
    ({"kind": "choice", "text": "Q?", "choices": ["a"], "accept": ["a"]}, "at least two distinct options"),
    ({"kind": "choice", "text": "Q?", "choices": ["a", "n/a"], "accept": ["a"]}, "may not list n/a"),
    ({"kind": "choice", "text": "Q?", "choices": ["a", "b"], "accept": ["c"]}, "non-empty subset of 'choices'"),
    ({"kind": "choice", "text": "Q?", "choices": ["a", "b"]}, "non-empty subset of 'choices'"),
    ({"kind": "verdict", "text": "Q?", "unit": "s"}, "belong to a value question"),
    ({"kind": "verdict", "text": "Q?", "choices": ["a", "b"]}, "belong to a choice question"),
    ({"kind": "verdict", "text": " "}, "field 'text' must be the question"),
    ({"text": "Q?", "evidence": "yes"}, "field 'evidence' must be true or false"),
    ({"text": "Q?", "hint": "x"}, "unknown field(s) ['hint']"),
])
def test_a_question_that_cannot_be_judged_is_refused_naming_its_field(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match="item C2C-X-01 field 'question'") as info:
        parse_question(raw, "item C2C-X-01 field 'question'")
    assert message in str(info.value)


def test_the_checklist_carries_questions_on_operator_items_only() -> None:
    checklist = load_checklist()
    question = checklist["C2C-WF-01"].question
    assert question is not None and question.kind == "choice" and question.accept == ("both",) and question.evidence
    import tomllib

    data = tomllib.loads(checklist.path.read_text(encoding="utf-8")) if checklist.path else {}
    automated = next(i for i in data["item"] if "operator" not in i["how_verified"])
    automated["question"] = {"text": "Q?"}
    with pytest.raises(ConfigError, match=f"item {automated['id']}: field 'question' needs 'operator'"):
        parse_checklist(data)


def test_a_value_asked_on_a_terminal_is_asked_again_until_it_is_one(tmp_path: Path) -> None:
    out = io.StringIO()
    prompt = OperatorPrompt(interactive=True, stdin=io.StringIO("12 min\n45\n\n"), stdout=out, operator="Ana",
                            answer_file=None)
    judged = prompt.answer(BOOT)
    assert judged.verdict == FAIL and judged.value == 45.0
    first, second = prompt.answers
    assert first.verdict is None and first.answer == "12 min"  # the unclear answer stays in the record
    assert "Please answer a number in s, or n/a." in second.question
    assert (second.kind, second.value, second.unit, second.expected, second.verdict) == ("value", 45.0, "s", "<= 30 s", FAIL)
    assert "30" not in out.getvalue().split("Please answer")[0]  # the limit was never shown before the answer


def test_a_choice_from_the_answer_file_with_its_evidence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clip = tmp_path / "trigger.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42 both")
    answers = tmp_path / "answers.toml"
    answers.write_text(f'operator = "lab-ci"\n[[answer]]\nquestion = "Which of them started a recording?"\n'
                       f'answer = "3"\nevidence = "{clip}"\n', encoding="utf-8")
    monkeypatch.delenv("C2C_OPERATOR", raising=False)
    monkeypatch.setenv(ANSWERS_ENV, str(answers))
    reports = tmp_path / "reports"
    prompt = OperatorPrompt(interactive=False, evidence_dir=reports / "operator-evidence")
    assert prompt.answer(TRIGGER).verdict == PASS
    [record] = prompt.answers
    assert (record.operator, record.kind, record.choice, record.source) == ("lab-ci", "choice", "both", "answer file")
    assert record.evidence and (reports / record.evidence).read_bytes() == clip.read_bytes()
    assert record.evidence_sha256 == hashlib.sha256(clip.read_bytes()).hexdigest()


def test_required_evidence_missing_is_no_answer_and_na_needs_none(tmp_path: Path) -> None:
    strict = Question("Which of them started a recording?", kind="choice", choices=TRIGGER.choices,
                      accept=("both",), evidence=True)
    prompt = OperatorPrompt(interactive=True, stdin=io.StringIO("both\n\nn/a\n"), stdout=io.StringIO(), answer_file=None,
                            evidence_dir=tmp_path / "operator-evidence")
    with pytest.raises(OperatorUnavailable, match="no evidence file attached, and the checklist requires one"):
        prompt.answer(strict)
    with pytest.raises(NotApplicable):
        prompt.answer(strict)
    assert [a.verdict for a in prompt.answers] == [PASS, NOT_APPLICABLE]  # the record keeps what was said


def test_every_question_in_the_checklist_is_asked_by_a_step_of_its_item() -> None:
    """A question no step asks would be dead data: each item's scenario reaches one of the two steps that ask it."""
    from pytest_bdd.parser import FeatureParser

    from harness.feature_files import FEATURES_DIR

    asking: dict[str, list[str]] = {}
    for path in sorted(FEATURES_DIR.glob("*.feature")):
        feature = FeatureParser(str(FEATURES_DIR), path.name).parse()
        for scenario in feature.scenarios.values():
            for tag in set(scenario.tags) | set(feature.tags):
                asking.setdefault(tag, []).extend(
                    s.name for s in scenario.steps
                    if s.name.startswith(f'the profile declares "{tag}"') or s.name.startswith("the operator confirms"))
    with_question = [item.id for item in load_checklist() if item.question is not None]
    assert len(with_question) >= 5
    assert all(asking.get(i) for i in with_question), {i: asking.get(i) for i in with_question}
