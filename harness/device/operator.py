"""The person on the bench: prompts with an audit trail, and a device they drive by hand.

Operator items work like Matter's manual test steps: the question, the answer (pass / fail /
not-applicable, or a value or a choice the bench judges: harness/items/manual.py), who
answered (`--operator NAME`, else $C2C_OPERATOR, else the login), when,
and the evidence file the operator attached (copied into the reports folder, so the signed
manifest hashes it, with its SHA-256 in the answer). A person who does not answer within the
timeout is a bench error (cause operator-timeout), recorded too.

Non-interactive runs never pass an operator item silently: every prompt raises
OperatorUnavailable, which the certificate turns into the verdict "operator" -- unless an
answer file ($C2C_OPERATOR_ANSWERS, TOML, for CI and labs that record answers ahead) answers
that question:

    operator = "Ana Diaz"                       # optional; else --operator / $C2C_OPERATOR
    [[answer]]
    question = "Does recording start on the SDI trigger?"   # the question as the bench asks it
    answer = "pass"                             # pass | fail | n/a   (yes/no for actions; a number or an option)
    evidence = "/lab/2026-12-06/sdi-trigger.mp4"   # optional
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import select
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from harness.config_files import read_toml
from harness.device.profile import DeviceProfile
from harness.errors import ConfigError, OperatorTimeout, OperatorUnavailable
from harness.items.manual import Judged, Question
from harness.items.verdicts import NOT_APPLICABLE, PASS, NotApplicable
from harness.protocols import Power

ANSWERS_ENV = "C2C_OPERATOR_ANSWERS"
ATTEST_CHOICES = "[pass/fail/n/a]"


@dataclass
class OperatorAnswer:
    """Who answered what, when: evidence for an operator-verified item."""

    question: str
    answer: str
    operator: str
    at: float
    attests: bool = False  # the answer is the evidence for a verdict, not an action on the bench
    verdict: str | None = None  # pass | fail | not-applicable, for an attested item
    kind: str | None = None  # verdict | value | choice for an attested question (harness/items/manual.py)
    value: float | None = None  # the number a value question was answered with, in `unit`
    unit: str | None = None
    choice: str | None = None  # the option a choice question was answered with
    expected: str | None = None  # what the bench accepted (never shown to the person before the answer)
    evidence: str | None = None  # the attached file, relative to the reports folder
    evidence_sha256: str | None = None
    source: str = "terminal"  # terminal | answer file
    timed_out: bool = False  # nobody answered within the timeout (the scenario is a bench error)


@dataclass(frozen=True)
class FileAnswer:
    """One prepared answer from the answer file."""

    question: str
    answer: str
    evidence: str | None = None


def _norm(question: str) -> str:
    """A question without its answer form ("[pass/fail/n/a]", "[y/n]", "[a number in s, or n/a]"), spaces folded."""
    return re.sub(r"\s+", " ", re.sub(r"\s*\[[^\[\]]*\]\s*$", "", question)).strip().casefold()


def load_answer_file(path: Path) -> tuple[str | None, list[FileAnswer]]:
    """Read an answer file (operator name, answers); ConfigError naming the bad field."""
    data = read_toml(path, f"{ANSWERS_ENV} (answer file)")
    name = data.get("operator")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ConfigError(f"{path}: field 'operator' must be a non-empty string")
    out: list[FileAnswer] = []
    for n, raw in enumerate(data.get("answer", [])):
        where = f"{path}: answer[{n}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("question"), str) or not isinstance(raw.get("answer"), str):
            raise ConfigError(f"{where}: needs string fields 'question' and 'answer'")
        evidence = raw.get("evidence")
        if evidence is not None and not isinstance(evidence, str):
            raise ConfigError(f"{where}: field 'evidence' must be a path string")
        out.append(FileAnswer(raw["question"], raw["answer"], evidence))
    return name, out


def _default_operator() -> str:
    return os.environ.get("C2C_OPERATOR") or getpass.getuser()


def _answer_file() -> Path | None:
    value = os.environ.get(ANSWERS_ENV)
    return Path(value) if value else None


@dataclass
class OperatorPrompt:
    """Asks the bench operator on a terminal (or reads the answer file); refuses when nobody can answer."""

    interactive: bool = False
    stdin: IO[str] = field(default_factory=lambda: sys.stdin)
    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    operator: str = field(default_factory=_default_operator)
    answers: list[OperatorAnswer] = field(default_factory=list)
    timeout: float | None = 600.0  # seconds a person has to answer; then the bench gives up (error)
    evidence_dir: Path | None = None  # where attached files are copied (the reports folder's operator-evidence/)
    answer_file: Path | None = field(default_factory=_answer_file)
    _prepared: list[FileAnswer] | None = field(default=None, repr=False)

    def _from_file(self, question: str) -> FileAnswer | None:
        """The answer file's answer to this question, if it has one (first match by normalised text)."""
        if self.answer_file is None:
            return None
        if self._prepared is None:
            name, self._prepared = load_answer_file(self.answer_file)
            if name and not os.environ.get("C2C_OPERATOR"):
                self.operator = name
        want = _norm(question)
        return next((a for a in self._prepared if _norm(a.question) == want), None)

    def _read_line(self, question: str, *, attests: bool, optional: bool = False) -> str:
        if not self.interactive:
            raise OperatorUnavailable(f"needs an operator: {question}")
        self.stdout.write(f"\n[c2c-bench operator {self.operator}] {question}\n> ")
        self.stdout.flush()
        try:
            self._wait_for_answer(question)
        except OperatorTimeout:
            self.answers.append(OperatorAnswer(question, "", self.operator, time.time(), attests, timed_out=True))
            raise
        line = self.stdin.readline()
        if not line and not optional:
            raise OperatorUnavailable(f"no answer from the operator: {question}")
        return line.strip()

    def _ask(self, question: str, *, attests: bool = False) -> str:
        prepared = self._from_file(question)
        if prepared is not None:
            answer = prepared.answer.strip()
            self.answers.append(OperatorAnswer(question, answer, self.operator, time.time(), attests, source="answer file"))
            return answer
        answer = self._read_line(question, attests=attests)
        self.answers.append(OperatorAnswer(question, answer, self.operator, time.time(), attests))
        return answer

    def _wait_for_answer(self, question: str) -> None:
        """Wait up to `timeout` for a line on a real terminal or pipe (a StringIO answers at once)."""
        try:
            fd = self.stdin.fileno()
        except (AttributeError, OSError, ValueError):
            return
        if self.timeout is not None and not select.select([fd], [], [], self.timeout)[0]:
            raise OperatorTimeout(f"no answer from operator {self.operator} within {self.timeout:g} s: {question}")

    def confirm(self, question: str) -> bool:
        """Yes/no question about an action on the bench; True only on an explicit yes."""
        return self._ask(f"{question} [y/n]").lower() in {"y", "yes"}

    def attest(self, question: str) -> bool:
        """A question whose answer is the verdict's evidence, as a manual test step: pass (True),
        fail (False) or not-applicable (raises NotApplicable), then the evidence file. A scenario
        that passes on it is "operator-confirmed" (with who answered, when, the question and the
        evidence), never "pass"."""
        return self.answer(Question(question)).verdict == PASS

    def answer(self, question: Question) -> Judged:
        """Ask a checklist question (a verdict, a value or a choice, harness/items/manual.py) and judge
        the answer: an unclear one is asked again on a terminal, then refused (OperatorUnavailable);
        n/a raises NotApplicable; a question that requires evidence and gets no file is refused."""
        asked = question.prompt()
        answer = self._ask(asked, attests=True)
        record = self.answers[-1]
        judged = question.judge(answer)
        if judged.verdict is None and record.source == "terminal":
            answer = self._ask(f"Please answer {question.asks_for()}. {asked}", attests=True)
            record = self.answers[-1]
            judged = question.judge(answer)
        if judged.verdict is None:
            raise OperatorUnavailable(f"answer {judged.problem}: {question.text}")
        record.verdict, record.kind, record.value, record.choice = judged.verdict, question.kind, judged.value, judged.choice
        record.unit = question.unit or None
        record.expected = None if question.kind == "verdict" else question.expected()
        self._attach(record, question.text)
        if judged.verdict == NOT_APPLICABLE:
            raise NotApplicable(f"operator {self.operator}: not applicable: {question.text}")
        if question.evidence and record.evidence_sha256 is None:
            raise OperatorUnavailable(f"no evidence file attached, and the checklist requires one: {question.text}")
        return judged

    def _attach(self, record: OperatorAnswer, question: str) -> None:
        """Ask for (or read) the evidence file and copy it into the reports folder, hashed."""
        if record.source == "answer file":
            prepared = self._from_file(record.question)
            path = prepared.evidence if prepared else None
        else:
            path = self._read_line("Evidence file to attach (a path; Enter for none)", attests=False, optional=True) or None
        if not path:
            return
        source = Path(path).expanduser()
        if not source.is_file():
            raise OperatorUnavailable(f"evidence file {source} for {question!r} does not exist")
        record.evidence_sha256 = hashlib.sha256(source.read_bytes()).hexdigest()
        if self.evidence_dir is None:
            record.evidence = str(source)
            return
        self.evidence_dir.mkdir(parents=True, exist_ok=True)
        # named by its digest: a later run or retry into the same folder never overwrites another file
        target = self.evidence_dir / f"{record.evidence_sha256[:12]}-{source.name}"
        shutil.copyfile(source, target)
        record.evidence = str(Path(self.evidence_dir.name) / target.name)

    def ask(self, question: str) -> str:
        """Free-text answer (a pairing code read off a screen, a firmware version...)."""
        return self._ask(question)

    def evidence(self) -> list[dict[str, Any]]:
        return [asdict(a) for a in self.answers]


class OperatorDevice:
    """A device with no automation at all: every action is a prompt (implements Device)."""

    def __init__(self, profile: DeviceProfile, prompt: OperatorPrompt, power: Power) -> None:
        self.profile = profile
        self.name = profile.name
        self.kind = profile.kind
        self.firmware = profile.firmware
        self.prompt = prompt
        self._power = power

    def start(self) -> None:
        if not self.prompt.confirm(f"Switch on {self.name} and wait until it is ready. Is it ready?"):
            raise OperatorUnavailable(f"{self.name} was not started by the operator")

    def stop(self) -> None:
        self.prompt.confirm(f"Switch off {self.name}. Done?")

    def power(self) -> Power:
        return self._power

    def status(self) -> dict[str, Any] | None:
        return None

    def pairing_code(self, timeout: float) -> str:
        return self.prompt.ask(f"Type the 6-digit pairing code {self.name} shows (within {timeout:.0f} s)")

    def capture(self, files: Sequence[Path]) -> list[Path]:
        names = ", ".join(p.name for p in files)
        if not self.prompt.confirm(f"Record {len(files)} clip(s) on {self.name} ({names}). Done?"):
            raise OperatorUnavailable("capture was not performed")
        return list(files)

    def control(self, action: str, **args: Any) -> bool:
        return False

    def inspect_paths(self) -> list[Path]:
        return []
