"""The person on the bench: prompts with an audit trail, and a device they drive by hand.

Non-interactive runs never pass an operator item silently: every prompt raises
OperatorUnavailable, which the certificate turns into the verdict "operator".
"""

from __future__ import annotations

import getpass
import os
import select
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from harness.device.profile import DeviceProfile
from harness.errors import OperatorTimeout, OperatorUnavailable
from harness.protocols import Power


@dataclass
class OperatorAnswer:
    """Who answered what, when: evidence for an operator-verified item."""

    question: str
    answer: str
    operator: str
    at: float
    attests: bool = False  # the answer is the evidence for a verdict, not an action on the bench


@dataclass
class OperatorPrompt:
    """Asks the bench operator on a terminal; refuses when the run is not interactive."""

    interactive: bool = False
    stdin: IO[str] = field(default_factory=lambda: sys.stdin)
    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    operator: str = field(default_factory=lambda: os.environ.get("C2C_OPERATOR") or getpass.getuser())
    answers: list[OperatorAnswer] = field(default_factory=list)
    timeout: float | None = 600.0  # seconds a person has to answer; then the bench gives up (error)

    def _ask(self, question: str, *, attests: bool = False) -> str:
        if not self.interactive:
            raise OperatorUnavailable(f"needs an operator: {question}")
        self.stdout.write(f"\n[c2c-bench operator {self.operator}] {question}\n> ")
        self.stdout.flush()
        self._wait_for_answer(question)
        line = self.stdin.readline()
        if not line:
            raise OperatorUnavailable(f"no answer from the operator: {question}")
        answer = line.strip()
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
        """Yes/no question; True only on an explicit yes."""
        return self._ask(f"{question} [y/n]").lower() in {"y", "yes"}

    def attest(self, question: str) -> bool:
        """A yes/no question whose answer is the verdict's evidence: a scenario that passes on it
        is "operator-confirmed" (with who answered, when and the question), never "pass"."""
        return self._ask(f"{question} [y/n]", attests=True).lower() in {"y", "yes"}

    def ask(self, question: str) -> str:
        """Free-text answer (a pairing code read off a screen, a firmware version...)."""
        return self._ask(question)

    def evidence(self) -> list[dict[str, Any]]:
        return [a.__dict__ for a in self.answers]


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
