"""The shrinker on a stand-in run: it keeps exactly the faults the failure needs, never trades
the failure for another one, and stays within its budget of runs."""

from __future__ import annotations

from harness.chaos.checker import Problem, Verdict
from harness.chaos.schedule import Capture, Schedule, Step
from harness.chaos.shrink import shrink

FAULTS = ("network:link-down", "power:cycle off_time=0.2", "s3:slowdown x2", "cloud:pause", "api:internal-error x1")


def _schedule() -> Schedule:
    steps = [Step(at=0.0, capture=Capture("s1-0000-00.jpg"))]
    steps += [Step(at=1.0 + n, fault=f, duration=0.5) for n, f in enumerate(FAULTS)]
    return Schedule(seed=1, index=0, steps=tuple(steps))


def _verdict(s: Schedule, category: str | None) -> Verdict:
    if category is None:
        return Verdict(s.name, "pass")
    return Verdict(s.name, "fail", problems=[Problem(category, "x")])


def test_shrinks_to_the_two_faults_that_together_lose_a_file() -> None:
    runs: list[Schedule] = []

    def run(s: Schedule) -> Verdict:
        runs.append(s)
        faults = {str(f.fault) for f in s.faults}
        return _verdict(s, "lost" if {"power:cycle off_time=0.2", "cloud:pause"} <= faults else None)

    original = _schedule()
    result = shrink(original, run(original), run, max_tries=20)
    assert [f.fault for f in result.schedule.faults] == ["power:cycle off_time=0.2", "cloud:pause"]
    assert result.schedule.captures == original.captures
    assert result.verdict.categories == ["lost"]
    assert result.tries == len(runs) - 1


def test_a_different_failure_is_not_kept() -> None:
    def run(s: Schedule) -> Verdict:
        return _verdict(s, "lost" if len(s.faults) == len(FAULTS) else "duplicated")

    original = _schedule()
    result = shrink(original, run(original), run)
    assert result.schedule == original
    assert all(line.startswith("kept") for line in result.log)


def test_the_budget_of_runs_is_kept_and_a_passing_schedule_is_not_shrunk() -> None:
    calls = 0

    def run(s: Schedule) -> Verdict:
        nonlocal calls
        calls += 1
        return _verdict(s, "lost" if len(s.faults) == len(FAULTS) else None)

    original = _schedule()
    shrink(original, run(original), run, max_tries=3)
    assert calls == 1 + 3
    passing = shrink(original, _verdict(original, None), run)
    assert passing.tries == 0 and passing.schedule == original
