"""From a pytest outcome to a checklist verdict.

The rule that makes a certificate trustworthy: a device is only failed by evidence about
the device (an AssertionError in a Then step, or a DeviceFailure), and the bench's own
breakage (BenchFailure, or any other exception: a harness bug) is "error", never "fail".
What the bench did not see for itself is never "pass": the profile's word is "declared",
a person's yes is "operator-confirmed", an item that needs a person and gets none is
"operator", and an item whose scenarios did not all run is "not-run".

How firm an expectation is comes from the contract (c2c-api.md tags every fact [DOC], [SPEC],
[SDK], [OBS] or [INF]); each scenario carries the tag of the contract point it enforces as a
Gherkin tag (@evidence-doc ... @evidence-inferred). A failure of a scenario whose expectations
are all inferred is "fail (inferred)": the device may be right about the real service. It
ranks below "fail", "error", "operator" and "not-run" (those still decide an item) and above
every verdict that accepts an item, so it never counts as a pass; it does not block
CERTIFIED unless the run is strict (`c2c-certify run --strict`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from harness.errors import (
    BenchFailure,
    CloudError,
    ConfigError,
    DeviceFailure,
    FaultInjectionError,
    MediaError,
    OperatorTimeout,
    OperatorUnavailable,
    RelayError,
)

PASS, FAIL, ERROR, OPERATOR, NOT_APPLICABLE, NOT_RUN = "pass", "fail", "error", "operator", "not-applicable", "not-run"
DECLARED, OPERATOR_CONFIRMED = "declared", "operator-confirmed"
FAIL_INFERRED = "fail (inferred)"
# Worst first: per item the worst scenario verdict wins. A declaration or a person's word
# is weaker evidence than a measurement, so either one makes a passing item less than "pass".
# A failure resting only on inferred expectations is weaker than a firm one and than a bench
# that could not decide, and worse than anything that accepts the item.
PRECEDENCE = (FAIL, ERROR, OPERATOR, NOT_RUN, FAIL_INFERRED, OPERATOR_CONFIRMED, DECLARED, PASS,
              NOT_APPLICABLE)
# Evidence levels of the contract (c2c-api.md §0), as Gherkin tags "@evidence-<level>".
EVIDENCE_TAG = "evidence-"
INFERRED = "inferred"
EVIDENCE_LEVELS = ("doc", "spec", "sdk", "obs", INFERRED)
# Reasons a step skips a scenario on purpose (pytest.skip(f"{OPERATOR_SKIP}..."))
OPERATOR_SKIP = "operator: "
NOT_APPLICABLE_SKIP = "not-applicable: "


class NotApplicable(Exception):
    """Raised by a step when the profile declares the item not applicable."""


def verdict_for_exception(exc: BaseException | None) -> str:
    """Map what a scenario raised to a verdict (None = it passed)."""
    if exc is None:
        return PASS
    if isinstance(exc, OperatorUnavailable):
        return OPERATOR
    if isinstance(exc, NotApplicable):
        return NOT_APPLICABLE
    if isinstance(exc, DeviceFailure | AssertionError):
        return FAIL
    if isinstance(exc, BenchFailure):
        return ERROR
    return ERROR  # an unexpected exception is the bench's fault until shown otherwise


def error_cause(exc: BaseException | None) -> str:
    """Which part of the bench an "error" came from (the cause code a reviewer filters on)."""
    if exc is None:
        return "no-verdict"  # the scenario ended without any step that could judge the device
    for kind, cause in ((OperatorTimeout, "operator-timeout"), (RelayError, "relay"), (MediaError, "media"), (FaultInjectionError, "fault-injector"),
                        (CloudError, "emulator"), (ConfigError, "config")):
        if isinstance(exc, kind):
            return cause
    if type(exc).__name__ == "Failed" and "Timeout" in str(exc):
        return "timeout"  # pytest-timeout's backstop
    if isinstance(exc, BenchFailure):
        return "bench"
    return "harness-bug"


def verdict_for_skip(reason: str) -> str:
    """A skipped scenario: operator / not-applicable on purpose, anything else is an error."""
    reason = reason.removeprefix("Skipped: ")
    if reason.startswith(OPERATOR_SKIP) or "OperatorUnavailable" in reason:
        return OPERATOR
    if reason.startswith(NOT_APPLICABLE_SKIP):
        return NOT_APPLICABLE
    return ERROR


def weakened(verdict: str, *, declared: bool = False, attested: bool = False) -> str:
    """A passing scenario that rested on a declaration or an operator's yes is not a pass."""
    if verdict != PASS:
        return verdict
    if attested:
        return OPERATOR_CONFIRMED
    if declared:
        return DECLARED
    return PASS


def scenario_verdict(exc: BaseException | None, measurements: Sequence[dict[str, Any]] = (), *,
                     declared: bool = False, attested: bool = False) -> str:
    """A scenario's verdict: its exception, then any measurement outside its limits."""
    verdict = verdict_for_exception(exc)
    if verdict == PASS and any(m.get("passed") is False for m in measurements):
        return FAIL
    return weakened(verdict, declared=declared, attested=attested)


def item_verdicts(items: Sequence[str], exc: BaseException | None,
                  measurements: Sequence[dict[str, Any]] = (), *,
                  declared: Iterable[str] = (), attested: bool = False) -> dict[str, str]:
    """Per-item verdicts of one scenario: a measurement out of limits fails only its own item.

    `declared` names the items the scenario passed on the profile's word alone; `attested`
    says an operator's answer was the evidence (every item of the scenario rests on it).
    """
    base = verdict_for_exception(exc)
    said = set(declared)
    out = {i: weakened(base, declared=i in said, attested=attested) for i in items}
    if base == PASS:
        for m in measurements:
            if m.get("passed") is False and m.get("item") in out:
                out[m["item"]] = FAIL
    return out


def evidence_levels(tags: Iterable[str]) -> list[str]:
    """The evidence levels named by a scenario's tags (`evidence-doc` -> `doc`), sorted."""
    return sorted({t.removeprefix(EVIDENCE_TAG) for t in tags
                   if t.startswith(EVIDENCE_TAG) and t.removeprefix(EVIDENCE_TAG) in EVIDENCE_LEVELS})


def by_evidence(verdict: str, evidence: Iterable[str]) -> str:
    """A "fail" whose scenario enforces only inferred expectations is "fail (inferred)".

    A scenario with no evidence tag, or with any firm one beside [INF], stays a plain fail:
    only a failure that rests on inference alone is softened.
    """
    levels = set(evidence)
    if verdict == FAIL and levels and levels <= {INFERRED}:
        return FAIL_INFERRED
    return verdict


def combine(verdicts: Iterable[str], precedence: Sequence[str] = PRECEDENCE) -> str | None:
    """The worst verdict wins; None when there is nothing to combine."""
    present = set(verdicts)
    for v in precedence:
        if v in present:
            return v
    return None
