"""Helpers shared by the step modules: polling with deadlines, status-or-operator checks.

Steps synchronise on conditions (poll with a deadline), never on bare sleeps, and they
only talk to the protocols through the `bench` fixture.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from harness.bdd.bench import Bench
from harness.errors import BenchFailure, DeviceFailure, DeviceTimeout, OperatorUnavailable
from harness.items.manual import Question
from harness.items.verdicts import PASS
from harness.machine import starved_note

T = TypeVar("T")
POLL_S = 0.25


def wait_until[T](predicate: Callable[[], T | None], timeout: float, what: str, *, interval: float = POLL_S) -> T:
    """Poll `predicate` until truthy; DeviceTimeout (a device failure) naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (DeviceFailure, OperatorUnavailable):
            raise
        except AssertionError as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f": {last_exc}" if last_exc else ""
            raise DeviceTimeout(f"after {timeout:.0f} s, still waiting for {what}{detail}")
        time.sleep(interval)


def hold_for(seconds: float, check: Callable[[], None] | None = None, *, interval: float = POLL_S) -> None:
    """Keep a condition true for `seconds` (an observation window, e.g. 'no more polls')."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check is not None:
            check()
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def status_or_operator(bench: Bench, question: str, check: Callable[[dict[str, Any]], bool],
                       timeout: float = 30.0) -> None:
    """Verify from the device's status when it has one, else ask the operator.

    Without status and without an interactive operator this raises OperatorUnavailable,
    which the certificate records as "operator" (never a silent pass).
    """
    if bench.has_status:
        wait_until(lambda: check(bench.device.status() or {}), timeout, f"device status to show: {question}")
        return
    if not bench.prompt.attest(question):
        raise DeviceFailure(f"operator says no: {question}")


def operator_judges(bench: Bench, question: Question) -> None:
    """Ask a person what the device shows (a value or a choice) and judge the answer here: the
    question never names the answer the bench expects, so a yes cannot be given on trust."""
    judged = bench.prompt.answer(question)
    if judged.verdict != PASS:
        shown = judged.value if judged.value is not None else judged.choice
        raise DeviceFailure(f"the operator reports {shown!r} for {question.text!r}; expected {question.expected()}")


def control_or_operator(bench: Bench, action: str, question: str, **args: Any) -> None:
    """Do a user action through the device's control API, or ask the operator to do it."""
    if bench.device.control(action, **args):
        bench.timeline.record("device", action, "mark", **{k: str(v) for k, v in args.items()})
        return
    if not bench.prompt.confirm(question):
        raise OperatorUnavailable(f"operator did not: {question}")


def issued_code(bench: Bench, code: str) -> dict[str, Any] | None:
    """The emulator's live pending code row whose user code the device shows, or None."""
    return next((c for c in bench.cloud.pending_codes() if str(c.get("user_code")) == code), None)


def device_status(bench: Bench) -> dict[str, Any]:
    return bench.device.status() or {}


def cpu_wait(share: float | None) -> dict[str, float]:
    """The bench's CPU starvation over the scenario, as a measurement's context (none without PSI)."""
    return {} if share is None else {"cpu_wait_share": round(share, 3)}


def refuse_on_starved_bench(share: float | None, what: str) -> None:
    """A speed verdict that failed on a CPU-starved bench is the bench's error, never the device's
    fail (harness.machine); a pass stands: load only ever slows a device down."""
    why = starved_note(share)
    if why:
        raise BenchFailure(f"{what}, but {why}")
