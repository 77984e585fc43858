"""Shrink a failing schedule: drop faults one at a time while it still fails the same way.

"The same way" = a `fail` verdict sharing at least one violation category with the original
(a lost file stays a lost file; a shrink that only turns up a different failure is not kept).
Every try is a real run on a lane, so the number of tries is bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from harness.chaos.checker import Verdict
from harness.chaos.schedule import Schedule

RunFn = Callable[[Schedule], Verdict]


@dataclass
class Shrunk:
    original: Schedule
    schedule: Schedule
    verdict: Verdict
    tries: int = 0
    log: list[str] = field(default_factory=list)


def same_failure(original: Verdict, candidate: Verdict) -> bool:
    return candidate.outcome == "fail" and bool(set(original.categories) & set(candidate.categories))


def shrink(schedule: Schedule, verdict: Verdict, run: RunFn, *, max_tries: int = 12) -> Shrunk:
    """Greedy one-fault-at-a-time removal, restarting after each kept removal (ddmin's last
    stage, enough for schedules of a handful of faults)."""
    result = Shrunk(original=schedule, schedule=schedule, verdict=verdict)
    if verdict.outcome != "fail":
        return result
    progress = True
    while progress and result.tries < max_tries and result.schedule.faults:
        progress = False
        for number in range(len(result.schedule.faults)):
            if result.tries >= max_tries:
                break
            candidate = result.schedule.without_fault(number)
            dropped = result.schedule.faults[number].label()
            got = run(candidate)
            result.tries += 1
            if same_failure(verdict, got):
                result.log.append(f"dropped {dropped}: still {', '.join(got.categories)}")
                result.schedule, result.verdict = candidate, got
                progress = True
                break
            result.log.append(f"kept {dropped}: without it {got.outcome} {', '.join(got.categories)}".rstrip())
    return result
