"""How a scenario's result is written down beside its verdict: the operator's answers, the
failure's one-line reason, the verdict as an Allure label, and the run's progress log.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.bdd.bench import Bench


def label_verdict(verdict: str, declared: dict[str, str], answers: list[dict[str, Any]]) -> None:
    """The certificate's verdict as an Allure label and tag, so a report never shows a declaration
    or a person's yes as a plain green pass."""
    with contextlib.suppress(Exception):  # reporting must never change a verdict
        import allure

        allure.dynamic.label("c2c-verdict", verdict)
        if verdict in ("operator-confirmed", "fail (inferred)"):
            allure.dynamic.tag(verdict)
        for item_id, text in declared.items():
            allure.dynamic.parameter(f"declared {item_id}", text)
        for answer in answers:
            if answer["attests"]:  # a choice by its words (the person may have typed its number), then the verdict
                said = answer.get("choice") or answer["answer"]
                allure.dynamic.parameter(f"operator {answer['operator']}",
                                         f"{answer['question']} -> {said} ({answer.get('verdict') or 'no verdict'})")


def operator_answers(b: Bench | None) -> list[dict[str, Any]]:
    """What the bench's person answered during this scenario: who, when, the question, the answer
    (pass / fail / not-applicable, or a value or a choice with what the bench accepts and the verdict
    it judged), the evidence file attached, and a timeout if nobody answered."""
    if b is None:
        return []
    return [asdict(a) for a in b.session.prompt.answers[b.state.operator_mark:]]


def failure_reason(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:500] if first else type(exc).__name__


def progress(config: pytest.Config, event: dict[str, Any]) -> None:
    reports = config.getoption("--c2c-reports", default=None)
    if not reports:
        return
    path = Path(reports) / "progress.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(event) + "\n")
