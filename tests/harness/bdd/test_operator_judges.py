"""Questions to a person about what the device shows never name the expected answer; the bench
judges the value or the choice it is told."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import cast

import pytest

from harness.bdd.bench import Bench
from harness.bdd.steps.common import operator_judges
from harness.bdd.steps.device_display_steps import NETWORK_STATES
from harness.device.operator import OperatorPrompt
from harness.errors import DeviceFailure
from harness.items.manual import Question


def _bench(typed: str) -> tuple[Bench, io.StringIO]:
    shown = io.StringIO()
    prompt = OperatorPrompt(interactive=True, stdin=io.StringIO(typed), stdout=shown, answer_file=None)
    return cast(Bench, SimpleNamespace(prompt=prompt)), shown


def test_a_count_is_asked_for_not_offered() -> None:
    question = Question("How many files does the device show as remaining?", kind="value", unit="files", low=3, high=3)
    bench, shown = _bench("3\n\n")
    operator_judges(bench, question)
    assert "3" not in shown.getvalue().split("remaining?")[1]  # the form names the unit, never the count
    bench, _ = _bench("4\n\n")
    with pytest.raises(DeviceFailure, match=r"reports 4\.0 .* expected 3\.\.3 files"):
        operator_judges(bench, question)


def test_the_network_state_is_a_choice_and_only_the_right_one_passes() -> None:
    question = Question("What does the device show as its network state?", kind="choice",
                        choices=NETWORK_STATES, accept=("offline",))
    bench, shown = _bench("2\n\n")  # "offline" by its number
    operator_judges(bench, question)
    assert all(state in shown.getvalue() for state in NETWORK_STATES)
    bench, _ = _bench("online\n\n")
    with pytest.raises(DeviceFailure, match="'online'"):
        operator_judges(bench, question)
