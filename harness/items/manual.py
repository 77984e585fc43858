"""Questions a person answers, as data: a verdict, a value read off the device, or a choice.

Matter's manual steps and CTS Verifier ask for pass / fail only, which makes every question a
leading one ("Does the device show 3 files?" invites a yes). A value or a choice asks what the
person sees and lets the bench judge it: the operator is shown the form of the answer (a
number in seconds, one of the listed options), never the limits or the accepted options.

    verdict   pass / fail / n/a, as before (the answer is the verdict)
    value     a number in `unit`, judged against the inclusive limits `low`..`high`
    choice    one of `choices` (its words or its number); the ones in `accept` pass, any other fails

Every kind also takes "n/a" (the item does not apply: NotApplicable, which still needs a
declaration on a required item). `evidence = true` makes the attached file mandatory (Matter
requires the log upload): an answer without one is no evidence, the bench cannot judge it.

In the checklist an operator item carries its question as a table:

    [item.question]
    kind = "choice"
    text = "What starts a recording on the device?"
    choices = ["the camera's SDI/HDMI trigger", "the device's own record control", "both", "neither"]
    accept = ["both"]
    evidence = true
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError
from harness.items.verdicts import FAIL, NOT_APPLICABLE, PASS

KINDS = ("verdict", "value", "choice")
NOT_APPLICABLE_WORDS = frozenset({"n/a", "na", "not-applicable", "not applicable"})
VERDICT_WORDS = {PASS: frozenset({"pass", "p", "y", "yes"}), FAIL: frozenset({"fail", "f", "n", "no"}),
                 NOT_APPLICABLE: NOT_APPLICABLE_WORDS}
_NUMBER = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*([^\d\s].*)?$")


@dataclass(frozen=True)
class Judged:
    """What an answer means: a verdict, or None when it is not an answer to the question
    (`problem` says why). `value` / `choice` keep what the person reported."""

    verdict: str | None
    value: float | None = None
    choice: str | None = None
    problem: str = ""


@dataclass(frozen=True)
class Question:
    """One question to a person, and how the bench judges the answer."""

    text: str
    kind: str = "verdict"
    unit: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    accept: tuple[str, ...] = ()
    evidence: bool = False  # an attached file is required

    def form(self) -> str:
        """The shape of the answer, shown with the question (never the limits or the accepted options)."""
        if self.kind == "value":
            return f"[a number in {self.unit}, or n/a]"
        if self.kind == "choice":
            return "[" + " | ".join(f"{n}) {c}" for n, c in enumerate(self.choices, 1)) + " | n/a]"
        return "[pass/fail/n/a]"

    def asks_for(self) -> str:
        """The form in words, for asking again after an answer that is none of it."""
        if self.kind == "value":
            return f"a number in {self.unit}, or n/a"
        if self.kind == "choice":
            return "one of the options (its number or its words), or n/a"
        return "pass, fail or n/a"

    def prompt(self) -> str:
        return f"{self.text} {self.form()}"

    def expected(self) -> str:
        """What the bench accepts, for the record and the certificate (after the answer)."""
        if self.kind == "value":
            if self.low is not None and self.high is not None:
                return f"{self.low:g}..{self.high:g} {self.unit}"
            return f">= {self.low:g} {self.unit}" if self.low is not None else f"<= {self.high:g} {self.unit}"
        if self.kind == "choice":
            return "one of: " + " | ".join(self.accept)
        return PASS

    def judge(self, answer: str) -> Judged:
        """The verdict an answer means; Judged(None, problem=...) when it is not one."""
        word = answer.strip()
        if word.casefold() in NOT_APPLICABLE_WORDS:
            return Judged(NOT_APPLICABLE)
        if self.kind == "value":
            return self._judge_value(word)
        if self.kind == "choice":
            picked = next((c for n, c in enumerate(self.choices, 1) if word.casefold() in (c.casefold(), str(n))), None)
            if picked is None:
                return Judged(None, problem=f"{word!r} is not one of the options {list(self.choices)}")
            return Judged(PASS if picked in self.accept else FAIL, choice=picked)
        verdict = next((v for v, words in VERDICT_WORDS.items() if word.casefold() in words), None)
        return Judged(verdict, problem="" if verdict else f"{word!r} is not pass, fail or n/a")

    def _judge_value(self, word: str) -> Judged:
        m = _NUMBER.match(word)
        if not m:
            return Judged(None, problem=f"{word!r} is not a number in {self.unit}")
        unit = (m.group(2) or "").strip()
        if unit and unit.casefold() != self.unit.casefold():
            return Judged(None, problem=f"{word!r} is in {unit!r}, the question asks for {self.unit}")
        value = float(m.group(1))
        if not math.isfinite(value):
            return Judged(None, problem=f"{word!r} is not a finite number")
        inside = (self.low is None or value >= self.low) and (self.high is None or value <= self.high)
        return Judged(PASS if inside else FAIL, value=value)


def _number(raw: Mapping[str, Any], key: str, where: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: field {key!r} must be a number")
    return float(value)


def _strings(raw: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where}: field {key!r} must be a list of non-empty strings")
    return tuple(value)


def parse_question(raw: Any, where: str) -> Question:
    """A question table from the checklist; ConfigError naming the field when it cannot be judged."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")
    unknown = set(raw) - {"kind", "text", "unit", "low", "high", "choices", "accept", "evidence"}
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}")
    kind = raw.get("kind", "verdict")
    if kind not in KINDS:
        raise ConfigError(f"{where}: field 'kind' must be one of {list(KINDS)}, got {kind!r}")
    text = raw.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{where}: field 'text' must be the question, a non-empty string")
    evidence = raw.get("evidence", False)
    if not isinstance(evidence, bool):
        raise ConfigError(f"{where}: field 'evidence' must be true or false")
    unit = raw.get("unit", "")
    if not isinstance(unit, str):
        raise ConfigError(f"{where}: field 'unit' must be a string")
    low, high = _number(raw, "low", where), _number(raw, "high", where)
    choices, accept = _strings(raw, "choices", where), _strings(raw, "accept", where)
    if kind == "value":
        if not unit.strip():
            raise ConfigError(f"{where}: a value question needs field 'unit'")
        if low is None and high is None:
            raise ConfigError(f"{where}: a value question needs field 'low' or 'high' (else every number passes)")
        if low is not None and high is not None and low > high:
            raise ConfigError(f"{where}: field 'low' ({low:g}) is above field 'high' ({high:g})")
    elif low is not None or high is not None or unit:
        raise ConfigError(f"{where}: fields 'unit', 'low' and 'high' belong to a value question")
    if kind == "choice":
        folded = [c.casefold() for c in choices]
        if len(choices) < 2 or len(set(folded)) != len(folded):
            raise ConfigError(f"{where}: field 'choices' needs at least two distinct options")
        if NOT_APPLICABLE_WORDS & set(folded):
            raise ConfigError(f"{where}: field 'choices' may not list n/a (every question takes it)")
        if not accept or set(accept) - set(choices):
            raise ConfigError(f"{where}: field 'accept' must be a non-empty subset of 'choices'")
    elif choices or accept:
        raise ConfigError(f"{where}: fields 'choices' and 'accept' belong to a choice question")
    return Question(text=text.strip(), kind=kind, unit=unit.strip(), low=low, high=high, choices=choices,
                    accept=accept, evidence=evidence)
