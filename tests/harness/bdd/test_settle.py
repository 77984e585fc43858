"""The delivery wait stops early only for a file it is waiting for: a bad file the device rightly
gave up on must not cut short the wait for the good ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.bdd.state import ScenarioState
from harness.bdd.steps import oracle_steps
from harness.certify.ledger import FileVerdict, Ledger
from harness.timeline import Timeline


def _file(name: str, outcome: str, state: str | None) -> FileVerdict:
    return FileVerdict(name=name, outcome=outcome, captured_at=0.0, sha256=None, size=1, paused=False,
                       corruption=None, device_state=state)


_State = ScenarioState


@dataclass
class _SlowGoodFile:
    """The bad clip is 'failed' at once; the good one arrives after `polls` ledger reads."""

    polls: int
    reads: int = 0
    state: _State = field(default_factory=_State)
    timeline: Timeline = field(default_factory=Timeline)  # no power cut: nobody is paired again

    def ledger(self, *, drained: bool = True) -> Ledger:
        self.reads += 1
        good = "intact" if self.reads > self.polls else "pending"
        return Ledger(files=[_file("bad.jpg", "lost", "failed"), _file("good.jpg", good, "uploading")],
                      unexpected=[], drained=drained)


def test_a_failed_bad_file_does_not_end_the_wait_for_the_good_ones(monkeypatch: Any) -> None:
    monkeypatch.setattr(oracle_steps, "GAVE_UP_GRACE_S", 0.0)
    bench = _SlowGoodFile(polls=3)
    monkeypatch.setattr(oracle_steps, "wait_until", _fast_wait)
    ledger, took = oracle_steps._settle(bench, 5, lambda lg: all(f.outcome == "intact" for f in lg.files
                                                                 if f.name == "good.jpg"),
                                        "good.jpg", watched={"good.jpg"}, awaited={"good.jpg"})
    assert took is not None and bench.reads > 3 and ledger.files[1].outcome == "intact"


def test_an_awaited_file_the_device_gave_up_on_ends_the_wait(monkeypatch: Any) -> None:
    monkeypatch.setattr(oracle_steps, "GAVE_UP_GRACE_S", 0.0)
    bench = _SlowGoodFile(polls=10**6)
    monkeypatch.setattr(oracle_steps, "wait_until", _fast_wait)
    _, took = oracle_steps._settle(bench, 5, lambda lg: False, "bad.jpg", awaited={"bad.jpg"})
    assert took is None and bench.reads <= 3


def _fast_wait(condition: Any, timeout: float, what: str, *, interval: float = 0.5) -> Any:
    """wait_until without the pauses: the ledger above changes per read, not per second."""
    for _ in range(100):
        value = condition()
        if value:
            return value
    raise AssertionError(f"{what} never settled")
