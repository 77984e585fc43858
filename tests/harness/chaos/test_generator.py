"""The generator: a schedule depends only on (seed, index), round-trips through JSON, and keeps
its faults within the vocabulary and its equipment unshared."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from harness.chaos.generator import LARGE_WRITE_S, PAUSE_MARGIN, generate, landing
from harness.chaos.schedule import Capture, Schedule, Step
from harness.errors import ConfigError
from harness.faults.vocabulary import Fault


def test_same_seed_and_index_give_the_same_schedule() -> None:
    assert generate(5, 17).to_json() == generate(5, 17).to_json()
    # whatever was drawn before: index 17 alone equals index 17 after 0..16
    for i in range(17):
        generate(5, i)
    assert generate(5, 17) == generate(5, 17)


def test_other_seeds_and_indexes_give_other_schedules() -> None:
    schedules = {generate(seed, i).to_json() for seed in (1, 2) for i in range(20)}
    assert len(schedules) == 40


def test_json_round_trip_is_exact(tmp_path: Path) -> None:
    for i in range(30):
        s = generate(9, i)
        assert Schedule.from_json(s.to_json()) == s
        assert Schedule.read(s.write(tmp_path / f"{i}.json")) == s


def test_every_fault_parses_in_the_vocabulary() -> None:
    for i in range(200):
        for step in generate(3, i).faults:
            assert step.fault is not None
            Fault.parse(step.fault)  # raises ConfigError on an unknown fault


def test_the_mix_covers_the_vocabulary_the_issue_lists() -> None:
    heads = {str(step.fault).split()[0] for i in range(300) for step in generate(4, i).faults}
    for needed in ("network:link-down", "network:switch-path", "network:cellular", "power:cycle",
                   "s3:slowdown", "s3:expired-url", "api:internal-error", "api:too-many-requests",
                   "auth:expire-tokens", "auth:refresh-failure", "cloud:pause", "media:vanish"):
        assert needed in heads, needed
    damaged = {c.corruption for i in range(300) for c in generate(4, i).captures}
    assert {"truncate", "zero-length"} <= damaged


def _windows(s: Schedule, head: str) -> list[tuple[float, float]]:
    return sorted((f.at, f.ends_at) for f in s.faults if str(f.fault).startswith(head))


def test_link_and_pause_faults_never_overlap_and_captures_avoid_pause_edges() -> None:
    for i in range(200):
        s = generate(6, i)
        for head in ("network:", "cloud:pause", "power:"):
            spans = _windows(s, head)
            assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), (i, head, spans)
        for start, stop in _windows(s, "cloud:pause"):
            for c in s.steps:
                if c.capture is not None:
                    first, last = landing(c)
                    for edge in (start, stop):
                        assert not first - PAUSE_MARGIN < edge < last + PAUSE_MARGIN, (i, c.capture.name, edge)


def test_a_large_capture_keeps_clear_of_a_pause_edge_for_as_long_as_its_copy_takes() -> None:
    """cc21's red: a 24 MB capture scheduled 2 s before a pause landed 1.08 s before it."""
    seen_large_before_pause = 0
    for i in range(400):
        s = generate(21, i)
        for start, _ in _windows(s, "cloud:pause"):
            for c in s.steps:
                if c.capture is not None and c.capture.kind == "large" and c.at <= start:
                    assert start - c.at >= LARGE_WRITE_S + PAUSE_MARGIN, (i, c.capture.name, c.at, start)
                    seen_large_before_pause += 1
    assert seen_large_before_pause > 50  # the rule was exercised, not vacuous


def test_file_faults_aim_at_a_capture_made_before_them() -> None:
    for i in range(300):
        s = generate(7, i)
        for f in s.faults:
            if f.file is not None:
                made = [c for c in s.steps if c.capture is not None and c.capture.name == f.file]
                assert made and made[0].at <= f.at


def test_without_fault_drops_exactly_that_fault_and_keeps_every_capture() -> None:
    s = next(generate(8, i) for i in range(50) if len(generate(8, i).faults) >= 3)
    smaller = s.without_fault(1)
    assert len(smaller.faults) == len(s.faults) - 1
    assert s.faults[1] not in smaller.faults
    assert smaller.captures == s.captures
    assert smaller.origin["shrunk_from"] == s.name


def test_bad_steps_and_documents_are_refused() -> None:
    with pytest.raises(ConfigError):
        Step(at=0.0)
    with pytest.raises(ConfigError):
        Step(at=0.0, fault="power:cycle", capture=Capture("a.jpg"))
    with pytest.raises(ConfigError):
        Capture("a.jpg", kind="mov")
    with pytest.raises(ConfigError):
        Schedule.from_json('{"format": "something else"}')
    with pytest.raises(ConfigError):
        Schedule.from_json("[1, 2]")


def _aimed(s: Schedule) -> list[Step]:
    return [f for f in s.faults if f.until_hit > 0 or f.when is not None]


def test_an_aimed_fault_brings_the_traffic_it_needs_placed_before_it() -> None:
    """A rule, a token expiry and a power cut aimed at a moment come with a capture at their own
    offset and sorted first, so the create, refresh or parts they wait for are on their way."""
    seen: set[str | None] = set()
    for i in range(300):
        s = generate(11, i, duration=3.0)
        for f in _aimed(s) + [f for f in s.faults if f.fault == "auth:expire-tokens"]:
            order = s.steps.index(f)
            before = [c for c in s.steps[:order] if c.capture is not None and c.at == f.at]
            assert before, (i, f.label())
            if f.when == "mid-upload":
                assert any(c.capture is not None and c.capture.kind == "large" for c in before), (i, f.label())
            if f.when == "at-refresh":
                assert any(g.fault == "auth:expire-tokens" and g.at == f.at for g in s.faults), (i, f.label())
            seen.add(f.when)
        for f in s.faults:
            if str(f.fault).startswith(("s3:", "api:", "auth:refresh-failure")):
                assert f.until_hit > 0, f.label()
    assert {"mid-upload", "at-create", "at-refresh"} <= seen


def test_no_aimed_fault_waits_where_a_pause_holds_its_traffic_back() -> None:
    for i in range(300):
        s = generate(12, i)
        for start, stop in _windows(s, "cloud:pause"):
            for f in _aimed(s):
                assert not (start - PAUSE_MARGIN <= f.at <= stop + PAUSE_MARGIN), (i, f.label(), start, stop)


def test_until_hit_and_moments_round_trip_and_show_in_labels() -> None:
    step = Step(at=1.0, fault="s3:slowdown x2", duration=2.0, until_hit=5.0)
    assert "until hit" in step.label()
    cut = Step(at=1.0, fault="power:cycle", when="at-create")
    s = Schedule(seed=1, index=1, steps=(step, cut))
    assert Schedule.from_json(s.to_json()) == s
    with pytest.raises(ConfigError):
        Step(at=1.0, fault="power:cycle", when="at-lunch")
    with pytest.raises(ConfigError):
        Step(at=1.0, fault="s3:slowdown", until_hit=-1.0)
